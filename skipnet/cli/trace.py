"""`skipnet trace`: the hand computation of SGD steps on the exercise network."""

from __future__ import annotations

from pathlib import Path

from ._args import add_dtype, add_loss, add_lr, floats


def add_parser(sub) -> None:
    p = sub.add_parser(
        "trace", help="walk training steps of the exercise network by hand (forward, chain rule, update)",
        description="Print the hand computation of one or more SGD steps on the exercise network "
                    "(1 input, layers 1-1-1 relu/relu/identity, no biases, learned skip 0 -> 2).")
    p.add_argument("--x", type=floats, default=[1.0], help="input value(s), comma-separated (default 1)")
    p.add_argument("--y", type=floats, default=[-3.0], help="target value(s) (default -3)")
    p.add_argument("--weights", type=floats, default=None,
                   help="the four weights layers.0, layers.1, layers.2, skips.0 (default 0.5,0.5,0.5,0.5)")
    add_loss(p, "l1", "loss (default l1)", choices=["l1", "mse", "bce"])
    add_lr(p, 1.0, "SGD learning rate (default 1)")
    p.add_argument("--steps", type=int, default=2, help="number of steps to show (default 2)")
    add_dtype(p)
    p.add_argument("--draw", metavar="FILE", default=None,
                   help="also draw each step as a computation graph: FILE (.svg, or .png with matplotlib) for "
                        "step 1, FILE's name with -step2, -step3, ... for the next steps")
    p.set_defaults(run=run)


def run(args) -> int:
    from ..network import Network

    if args.draw is not None and Path(args.draw).suffix.lower() not in (".svg", ".png"):
        raise ValueError(f"--draw {args.draw}: expected a .svg or .png file name")
    if args.draw is not None and Path(args.draw).suffix.lower() == ".png":
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise ValueError(f"--draw {args.draw}: a .png needs matplotlib (pip install 'skipnet[plot]'); "
                             "a .svg does not") from None
    if args.steps < 1:
        raise ValueError("--steps must be >= 1")
    if len(args.x) != len(args.y):
        raise ValueError(f"--x has {len(args.x)} values but --y has {len(args.y)}")
    net = Network.exercise(dtype=args.dtype)
    if args.weights is not None:
        if len(args.weights) != 4:
            raise ValueError(f"--weights needs 4 values (w0, w1, w2, skip), got {len(args.weights)}")
        names = ["layers.0.weight", "layers.1.weight", "layers.2.weight", "skips.0.weight"]
        net.set_parameters({n: [[w]] for n, w in zip(names, args.weights)})
    x = [[v] for v in args.x]
    y = [[v] for v in args.y]
    for step in range(args.steps):
        t = net.trace(x, y, loss=args.loss)
        if step < args.steps - 1 or args.steps == 1:
            t.apply(lr=args.lr)
        print(f"=== step {step + 1} ===")
        print(t)
        if args.draw is not None:
            target = Path(args.draw)
            if step:
                target = target.with_name(f"{target.stem}-step{step + 1}{target.suffix}")
            print(f"drew step {step + 1}: {t.draw(target)}")
        print()
    return 0

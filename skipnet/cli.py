"""The ``skipnet`` command line. Each subcommand is one function; errors are one line and exit code 2."""

from __future__ import annotations

import argparse
import sys


def _floats(text: str) -> list[float]:
    try:
        return [float(v) for v in text.replace(";", ",").split(",") if v.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from exc


def _add_trace(sub) -> None:
    p = sub.add_parser(
        "trace", help="walk training steps of the exercise network by hand (forward, chain rule, update)",
        description="Print the hand computation of one or more SGD steps on the exercise network "
                    "(1 input, layers 1-1-1 relu/relu/identity, no biases, learned skip 0 -> 2).")
    p.add_argument("--x", type=_floats, default=[1.0], help="input value(s), comma-separated (default 1)")
    p.add_argument("--y", type=_floats, default=[-3.0], help="target value(s) (default -3)")
    p.add_argument("--weights", type=_floats, default=None,
                   help="the four weights layers.0, layers.1, layers.2, skips.0 (default 0.5,0.5,0.5,0.5)")
    p.add_argument("--loss", default="l1", choices=["l1", "mse", "bce"], help="loss (default l1)")
    p.add_argument("--lr", type=float, default=1.0, help="SGD learning rate (default 1)")
    p.add_argument("--steps", type=int, default=2, help="number of steps to show (default 2)")
    p.add_argument("--dtype", default="float64", choices=["float32", "float64"])
    p.set_defaults(run=_run_trace)


def _run_trace(args) -> int:
    from .network import Network

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
        print()
    return 0


def _add_bench(sub) -> None:
    p = sub.add_parser(
        "bench", help="time skipnet against the NumPy reference, PyTorch and the hardware ceilings",
        description="Side-by-side timing of one training step of workloads W0-W4 (DESIGN.md section 5): "
                    "skipnet fused and per-op, the NumPy reference, PyTorch eager when installed, a hand "
                    "-written C loop (W0) and the step's GEMM time through NumPy (W1-W4), interleaved round "
                    "by round in this process; medians and paired ratios. Also element-wise kernels against "
                    "copy bandwidth, and scaling with data size and threads.")
    p.add_argument("--quick", action="store_true", help="3 short rounds (under a minute) instead of 7")
    p.add_argument("--json", metavar="FILE", default=None, help="also write the results as JSON")
    p.add_argument("--workloads", default=None,
                   help="comma-separated subset of W0,W1,W2,W3,W4 (default: all, plus the extra sections)")
    p.add_argument("--threads", type=int, default=None,
                   help="BLAS/OpenMP threads for every library (needs threadpoolctl; default: theirs)")
    p.set_defaults(run=_run_bench)


def _run_bench(args) -> int:
    from . import benchmark

    if args.threads is not None and args.threads < 1:
        raise ValueError("--threads must be >= 1")
    workloads = [w.strip() for w in args.workloads.split(",") if w.strip()] if args.workloads else None
    benchmark.run(quick=args.quick, workloads=workloads, json_path=args.json, threads=args.threads)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="skipnet", description="Train and explain feed-forward ReLU networks with skip connections.")
    from . import __version__

    parser.add_argument("--version", action="version", version=f"skipnet {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_trace(sub)
    _add_bench(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help()
        return 0
    try:
        return args.run(args)
    except (ValueError, TypeError, OSError, RuntimeError) as exc:
        print(f"skipnet {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())

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


def _add_demo(sub) -> None:
    p = sub.add_parser(
        "demo", help="run the exercise and the experiments that explain it; write an HTML/Markdown report",
        description="Reproduce and explain the exercise: (a) the hand step, (b) the dead next step, (c) a "
                    "falling loss curve, (d) runs stuck at ln 2 and their fixes, (e) learning rates, schedules "
                    "and the range test, (f) why skips help. Writes report.html (plots embedded), report.md, "
                    "report.json and the PNG plots into --out, and prints a summary.")
    p.add_argument("--out", default="skipnet-demo", help="output directory (default ./skipnet-demo)")
    p.add_argument("--quick", action="store_true", help="fewer seeds and epochs: seconds instead of a minute")
    p.add_argument("--jobs", type=int, default=None,
                   help="parallel workers for the seed and learning-rate sweeps (default: every core; "
                        "1 with --quick)")
    p.add_argument("--no-plots", action="store_true", help="write the report without figures")
    p.set_defaults(run=_run_demo)


def _run_demo(args) -> int:
    import time

    from .demo import run_demo
    from .report import write_report

    if args.jobs is not None and args.jobs == 0:
        raise ValueError("--jobs must be a positive number of workers or -1 (every core)")
    start = time.perf_counter()
    report = run_demo(quick=args.quick, n_jobs=args.jobs)
    paths = write_report(report, args.out, plots=not args.no_plots)
    print(f"skipnet demo ({'quick' if args.quick else 'full'}): {time.perf_counter() - start:.1f} s")
    print(report.summary())
    print(f"report: {paths['html']} (also report.md, report.json, {len(paths['figures'])} PNG files)")
    if paths["plots_error"]:
        print(f"no plots: {paths['plots_error']}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="skipnet", description="Train and explain feed-forward ReLU networks with skip connections.")
    from . import __version__

    parser.add_argument("--version", action="version", version=f"skipnet {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_trace(sub)
    _add_demo(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help()
        return 0
    try:
        return args.run(args)
    except (ValueError, TypeError, OSError) as exc:
        print(f"skipnet {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())

"""The ``skipnet`` command line. Each subcommand is one function; errors are one line and exit code 2."""

from __future__ import annotations

import argparse
import sys


def _list_of(convert, what: str):
    """An argparse type for comma-separated values, each converted by ``convert``."""
    def parse(text: str) -> list:
        try:
            return [convert(v) for v in text.replace(";", ",").split(",") if v.strip()]
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"expected comma-separated {what}, got {text!r}") from exc
    return parse


_floats = _list_of(float, "numbers")
_ints = _list_of(int, "integers")


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


# ------------------------------------------------------------------------------------------------ sweep
def _seeds(text: str) -> list[int]:
    """"N" -> 0..N-1, "A:B" -> A..B-1, "3,7,11" -> those seeds."""
    try:
        if ":" in text:
            start, stop = (int(v) for v in text.split(":"))
            return list(range(start, stop))
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected N, A:B or a comma-separated list of seeds, got {text!r}") from exc
    return list(range(values[0])) if len(values) == 1 and "," not in text else values


def _add_sweep(sub) -> None:
    p = sub.add_parser(
        "sweep", help="train one architecture for many seeds and learning rates in parallel",
        description="Train a ReLU network with every learning rate of --lrs for every seed of --seeds "
                    "(skipnet.sweep), print a summary per learning rate and optionally write the table of "
                    "runs as CSV. Data: a CSV file with a header or a .npy array (features and target "
                    "column), or a built-in data set.")
    p.add_argument("data", nargs="?", metavar="DATA",
                   help="CSV with a header or .npy (2-D); omit to use --dataset")
    p.add_argument("--target", default=None,
                   help="target column: a header name (CSV) or index (CSV, .npy); default: the last column")
    p.add_argument("--dataset", default="moons", choices=sorted(_DATASETS),
                   help="built-in binary classification data when DATA is omitted (default moons)")
    p.add_argument("--n-samples", type=int, default=200, help="samples of the built-in data set (default 200)")
    p.add_argument("--noise", type=float, default=0.2, help="noise of the built-in data set (default 0.2)")
    p.add_argument("--hidden", type=_ints, default=[16, 16], help="hidden widths (default 16,16)")
    p.add_argument("--skip", default="first-to-output", choices=["none", "first-to-output", "residual"],
                   help="skip connections (default first-to-output)")
    p.add_argument("--init", default="default", choices=["default", "he"], help="initialisation")
    p.add_argument("--dtype", default="float64", choices=["float32", "float64"])
    p.add_argument("--loss", default="bce", choices=["l1", "mse", "bce", "cross_entropy"],
                   help="loss (default bce)")
    p.add_argument("--optimizer", default="sgd", choices=["sgd", "adam"], help="optimizer (default sgd)")
    p.add_argument("--momentum", type=float, default=0.0, help="SGD momentum (default 0)")
    p.add_argument("--seeds", type=_seeds, default=list(range(10)),
                   help="N (seeds 0..N-1), A:B (A..B-1) or a list 3,7,11 (default 10)")
    p.add_argument("--lrs", type=_floats, default=[0.01, 0.1], help="learning rates (default 0.01,0.1)")
    p.add_argument("--epochs", type=int, default=50, help="epochs per run (default 50)")
    p.add_argument("--batch-size", type=int, default=32, help="mini-batch size (default 32)")
    p.add_argument("--val-split", type=float, default=0.0,
                   help="fraction of the data held out for val_loss (default 0: none)")
    p.add_argument("--backend", default="loky", choices=["loky", "threading", "dask", "serial"],
                   help="where runs execute (default loky: worker processes)")
    p.add_argument("--n-jobs", type=int, default=-1, help="parallel workers, -1 = every core (default -1)")
    p.add_argument("--address", default=None, help="Dask scheduler address for --backend dask "
                   "(default: a local cluster for this run)")
    p.add_argument("--out", default=None, metavar="CSV", help="write the table of runs to this CSV file")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=_run_sweep)


def _run_sweep(args) -> int:
    import numpy as np

    from .sweep import MLPFactory, sweep

    X, y = _load_xy(args.data, args.target) if args.data else _DATASETS[args.dataset](args.n_samples, args.noise)
    if not 0.0 <= args.val_split < 1.0:
        raise ValueError(f"--val-split must be in [0, 1), got {args.val_split}")
    validation = None
    if args.val_split > 0:
        order = np.random.default_rng(0).permutation(X.shape[0])
        n_val = round(args.val_split * X.shape[0])
        if not 0 < n_val < X.shape[0]:
            raise ValueError(f"--val-split {args.val_split} leaves no training or no validation rows")
        validation = (X[order[:n_val]], y[order[:n_val]])
        X, y = X[order[n_val:]], y[order[n_val:]]
    n_outputs = 1
    if args.loss == "cross_entropy":
        if np.any(y != np.round(y)) or y.min() < 0:
            raise ValueError("--loss cross_entropy needs integer class labels 0, 1, ... in the target column")
        n_outputs = max(2, int(y.max()) + 1)
    factory = MLPFactory(X.shape[1], tuple(args.hidden), n_outputs, None if args.skip == "none" else args.skip,
                         dtype=args.dtype, init=args.init)
    rows = sweep(factory, X, y, seeds=args.seeds, lrs=args.lrs, validation=validation, backend=args.backend,
                 n_jobs=args.n_jobs, address=args.address, as_frame=False,
                 progress=not args.quiet and sys.stderr.isatty(), loss=args.loss, optimizer=args.optimizer,
                 momentum=args.momentum, epochs=args.epochs, batch_size=args.batch_size)
    print(f"{_count(len(rows), 'run')}: {_count(len(args.seeds), 'seed')} x {_count(len(args.lrs), 'learning rate')}, "
          f"{X.shape[0]} training samples, {X.shape[1]} features, loss {args.loss}, {args.epochs} epochs, "
          f"backend {args.backend}")
    print(_sweep_summary(rows, args.lrs))
    if args.out:
        _write_rows(args.out, rows)
        print(f"table of runs written to {args.out}")
    return 0


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _sweep_summary(rows: list[dict], lrs: list[float]) -> str:
    """Per learning rate: runs, mean/median final loss, share on a plateau, mean dead fraction, early stops."""
    import numpy as np

    header = ["lr", "runs", "mean final loss", "median final loss", "plateau", "mean dead", "stopped early"]
    table = [header]
    for lr in lrs:
        group = [r for r in rows if r["lr"] == lr]
        final = np.array([r["final_loss"] for r in group], float)
        finite = final[np.isfinite(final)]
        table.append([
            _plain(lr), str(len(group)),
            f"{finite.mean():.4f}" if finite.size else "nan",
            f"{np.median(finite):.4f}" if finite.size else "nan",
            f"{np.mean([r['plateau'] for r in group]):.0%}",
            f"{np.mean([r['dead_fraction'] for r in group]):.0%}",
            str(sum(r["stopped_reason"] is not None for r in group)),
        ])
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    lines = ["  ".join(cell.rjust(w) for cell, w in zip(row, widths)) for row in table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _plain(value: float) -> str:
    import numpy as np

    return np.format_float_positional(value, trim="-")


def _write_rows(path: str, rows: list[dict]) -> None:
    import csv

    from .sweep import COLUMNS

    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(COLUMNS), extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: ("" if v is None else v) for k, v in row.items()})


def _load_xy(path: str, target: str | None):
    """Features and target column from a CSV with a header or a 2-D .npy array."""
    import numpy as np

    if path.endswith(".npy"):
        data = np.load(path, allow_pickle=False)
        names = [str(i) for i in range(data.shape[1])] if data.ndim == 2 else []
    else:
        import csv

        with open(path, newline="") as fh:
            names = [n.strip() for n in next(csv.reader(fh), [])]
        if not names:
            raise ValueError(f"{path} is empty: expected a CSV with a header row")
        try:
            data = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)
        except ValueError as exc:
            raise ValueError(f"{path}: every value below the header must be a number ({exc})") from exc
    if data.ndim != 2 or data.shape[1] < 2 or data.shape[0] < 1:
        raise ValueError(f"{path} must hold a 2-D table with at least one row and two columns, got shape "
                         f"{data.shape}")
    if target is None:
        col = data.shape[1] - 1
    elif target in names:
        col = names.index(target)
    else:
        try:
            col = int(target)
        except ValueError:
            raise ValueError(f"--target {target!r} is not a column of {path}; columns: {', '.join(names)}") from None
        if not -data.shape[1] <= col < data.shape[1]:
            raise ValueError(f"--target {col} is out of range for {data.shape[1]} columns")
        col %= data.shape[1]
    return np.delete(data, col, axis=1), data[:, col]


def _toy_rng(n: int, noise: float, minimum: int):
    """Check the built-in data set's options; its generator (fixed seed 0: the same data every time)."""
    import numpy as np

    if n < minimum:
        raise ValueError(f"--n-samples must be >= {minimum}, got {n}")
    if noise < 0:
        raise ValueError(f"--noise must be >= 0, got {noise}")
    return np.random.default_rng(0)


def _two_moons(n: int, noise: float):
    """Two interleaving half circles in 2-D, labels 0/1, with Gaussian noise (fixed seed 0)."""
    import numpy as np

    rng = _toy_rng(n, noise, minimum=2)
    n0 = n // 2
    t0, t1 = np.linspace(0, np.pi, n0), np.linspace(0, np.pi, n - n0)
    X = np.concatenate([np.c_[np.cos(t0), np.sin(t0)], np.c_[1 - np.cos(t1), 0.5 - np.sin(t1)]])
    y = np.r_[np.zeros(n0), np.ones(n - n0)]
    return X + rng.normal(0.0, noise, X.shape), y


def _xor(n: int, noise: float):
    """Points around the four corners (+-1, +-1), label 1 where the signs differ (fixed seed 0)."""
    import numpy as np

    rng = _toy_rng(n, noise, minimum=4)
    corners = np.array([[-1, -1], [-1, 1], [1, -1], [1, 1]], float)
    idx = np.arange(n) % 4
    X = corners[idx] + rng.normal(0.0, noise, (n, 2))
    return X, (corners[idx, 0] * corners[idx, 1] < 0).astype(float)


_DATASETS = {"moons": _two_moons, "xor": _xor}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="skipnet", description="Train and explain feed-forward ReLU networks with skip connections.")
    from . import __version__

    parser.add_argument("--version", action="version", version=f"skipnet {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_trace(sub)
    _add_sweep(sub)
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

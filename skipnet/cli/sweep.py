"""`skipnet sweep`: one architecture trained for many seeds and learning rates (skipnet.sweep)."""

from __future__ import annotations

import argparse
import sys

import numpy as np

from .._deprecation import DeprecatedOption
from . import _args as A
from ._dataset import encode_target
from ._paths import check_outputs, write_output

# the built-in data sets with a noise level: binary (bce), regression (l1, mse), classes (cross_entropy)
_DATASETS = ("moons", "xor", "sine", "spirals")


def seeds(text: str) -> list[int]:
    """"N" -> 0..N-1, "A:B" -> A..B-1, "3,7,11" -> those seeds."""
    try:
        if ":" in text:
            start, stop = (int(v) for v in text.split(":"))
            return list(range(start, stop))
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected N, A:B or a comma-separated list of seeds, got {text!r}") \
            from None
    return list(range(values[0])) if len(values) == 1 and "," not in text else values


def add_parser(sub) -> None:
    p = sub.add_parser(
        "sweep", help="train one architecture for many seeds and learning rates in parallel",
        description="Train a ReLU network with every learning rate of --lrs for every seed of --seeds "
                    "(skipnet.sweep), print a summary per learning rate and optionally write the table of "
                    "runs as CSV. Data: a CSV file with a header or a .npy array (features and target "
                    "column), or a built-in data set. As in `skipnet train`, features and (for l1/mse) the "
                    "target are standardised with the training rows' means and standard deviations, and "
                    "losses are reported in the target's units.",
        epilog="exit status: 0 on success; 2 for bad arguments, unreadable data or an unwritable --out "
               "(checked before the runs start).")
    p.add_argument("data", nargs="?", metavar="DATA",
                   help="CSV with a header or .npy (2-D); omit to use --dataset")
    p.add_argument("--target", default=None, metavar="COL",
                   help="the target column: a name (CSV) or an index (.npy; negative from the end); "
                        "default: the last column")
    p.add_argument("--dataset", default="moons", choices=_DATASETS,
                   help="skipnet.datasets set used when DATA is omitted (default moons): moons and xor for "
                        "bce, sine for l1/mse, spirals for cross_entropy")
    p.add_argument("--n-samples", type=int, default=200, help="samples of the built-in data set (default 200)")
    p.add_argument("--noise", type=float, default=None,
                   help="noise of the built-in data set (default: the data set's own)")
    A.add_architecture(p, hidden_help="hidden widths (default 16,16)",
                       skip_help="skip connections (default first-to-output)")
    p.add_argument("--init", default="default", choices=["default", "he"], help="initialisation")
    A.add_dtype(p)
    A.add_loss(p, "bce", "loss (default bce)")
    A.add_optimizer(p, "optimizer (default sgd)")
    A.add_momentum(p)
    p.add_argument("--seeds", type=seeds, default=list(range(10)),
                   help="N (seeds 0..N-1), A:B (A..B-1) or a list 3,7,11 (default 10)")
    p.add_argument("--lrs", type=A.floats, default=[0.01, 0.1], help="learning rates (default 0.01,0.1)")
    A.add_batches(p, epochs_help="epochs per run (default 50)", val_split=0.0,
                  val_split_help="fraction of the data held out for val_loss (default 0: none)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--parallel-backend", dest="backend", default="loky",
                       choices=["loky", "threading", "dask", "serial"],
                       help="where runs execute (default loky: worker processes)")
    where.add_argument("--backend", dest="backend", choices=["loky", "threading", "dask", "serial"],
                       default=argparse.SUPPRESS, action=DeprecatedOption, use="--parallel-backend",
                       help="deprecated spelling of --parallel-backend")
    p.add_argument("--n-jobs", type=int, default=-1, help="parallel workers, -1 = every core (default -1)")
    p.add_argument("--address", default=None, help="Dask scheduler address for --parallel-backend dask "
                   "(default: a local cluster for this run)")
    A.add_standardize(p)
    p.add_argument("--out", default=None, metavar="CSV", help="write the table of runs to this CSV file")
    A.add_quiet(p, "no progress bar")
    p.set_defaults(run=run)


def run(args) -> int:
    from ..sweep import MLPFactory, sweep

    A.check_val_split(args.val_split)
    A.check_at_least("--epochs", args.epochs, 1)
    check_outputs({"--out": args.out}, inputs={"DATA": args.data} if args.data else None)
    if args.data:
        X, y = _table(args.data, args.target)
    else:
        X, y = _builtin_data(args.dataset, args.n_samples, args.noise)
    y, _, n_outputs = encode_target(y, args.loss)
    validation = None
    if args.val_split > 0:
        order = np.random.default_rng(0).permutation(X.shape[0])
        n_val = round(args.val_split * X.shape[0])
        if not 0 < n_val < X.shape[0]:
            raise ValueError(f"--val-split {args.val_split} leaves no training or no validation rows")
        validation = (X[order[:n_val]], y[order[:n_val]])
        X, y = X[order[n_val:]], y[order[n_val:]]
    X, y, validation, unit = _standardized(args, X, y, validation)
    factory = MLPFactory(X.shape[1], tuple(args.hidden), n_outputs, A.skip_option(args.skip),
                         dtype=args.dtype, init=args.init)
    rows = sweep(factory, X, y, seeds=args.seeds, lrs=args.lrs, validation=validation,
                 parallel_backend=args.backend, n_jobs=args.n_jobs, address=args.address, as_frame=False,
                 progress=not args.quiet and sys.stderr.isatty(), loss=args.loss, optimizer=args.optimizer,
                 momentum=args.momentum, epochs=args.epochs, batch_size=args.batch_size)
    for row in rows:  # losses in the target's units, as `skipnet train` reports them
        row["final_loss"] *= unit
        row["val_loss"] *= unit
    print(f"{_count(len(rows), 'run')}: {_count(len(args.seeds), 'seed')} x {_count(len(args.lrs), 'learning rate')}, "
          f"{X.shape[0]} training samples, {X.shape[1]} features, loss {args.loss}, {args.epochs} epochs, "
          f"backend {args.backend}")
    print(summary(rows, args.lrs))
    if args.out:
        write_output(args.out, _csv(rows), "--out")
        print(f"table of runs written to {args.out}")
    return 0


def _standardized(args, X, y, validation):
    """(X, y, validation, loss unit) standardised as `skipnet train` does (skipnet._tabular.Standardizer
    fitted on the training rows), or as given with --no-standardize (unit 1)."""
    from .._tabular import Standardizer

    try:
        scaler = Standardizer.for_training(X, y, args.loss, args.standardize)
    except ValueError as exc:  # columns whose scale overflows
        raise ValueError(f"{args.data or '--dataset ' + args.dataset}: {exc}") from exc
    if validation is not None:
        validation = (scaler.x(validation[0]), scaler.targets(validation[1], args.loss))
    return scaler.x(X), scaler.targets(y, args.loss), validation, scaler.loss_unit(args.loss)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def summary(rows: list[dict], lrs: list[float]) -> str:
    """Per learning rate: runs, mean/median final loss, share on a plateau, mean dead fraction, early stops."""
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
    widths_ = [max(len(row[i]) for row in table) for i in range(len(header))]
    lines = ["  ".join(cell.rjust(w) for cell, w in zip(row, widths_)) for row in table]
    lines.insert(1, "  ".join("-" * w for w in widths_))
    return "\n".join(lines)


def _plain(value: float) -> str:
    """Plain decimals (0.001, not 1e-03) for learning rates of a sensible size, else the short form."""
    return np.format_float_positional(value, trim="-") if 1e-9 <= abs(value) < 1e9 else f"{value:g}"


def _csv(rows: list[dict]) -> str:
    """The table of runs as CSV text (sweep.COLUMNS; None as an empty cell)."""
    import csv
    import io

    from ..sweep import COLUMNS

    buffer = io.StringIO(newline="")
    writer = csv.DictWriter(buffer, fieldnames=list(COLUMNS), extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
    return buffer.getvalue()


def _table(path: str, target: str | None) -> tuple[np.ndarray, np.ndarray]:
    """Features and target of a CSV/.npy table; the target is --target, or the last column."""
    from .. import _tabular as T

    table = T.read_table(path)
    if table.n_columns < 2:
        raise ValueError(f"{table.path}: needs at least one feature column besides the target")
    col = table.n_columns - 1 if target is None else T.column_index(table, target)
    return np.delete(table.values, col, axis=1), table.values[:, col]


def _builtin_data(name: str, n: int, noise: float | None) -> tuple[np.ndarray, np.ndarray]:
    """A skipnet.datasets set (seed 0: the same data every time); --noise None keeps its default."""
    from .. import datasets

    kwargs = {} if noise is None else {"noise": noise}
    try:
        X, y = getattr(datasets, name)(n, seed=0, **kwargs)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"--dataset {name} (--n-samples {n}, --noise {noise}): {exc}") from exc
    return X, y.reshape(-1)

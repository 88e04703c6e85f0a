"""The ``skipnet`` command line. Each subcommand is one function; errors are one line and exit code 2."""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np


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
    p.add_argument("--quick", action="store_true", help="fewer seeds and epochs (the full demo takes seconds too)")
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


def _ints(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive layer widths such as 16,16, got {text!r}")
    return values


class _Parser(argparse.ArgumentParser):
    """argparse whose errors are one line on stderr (no usage dump) and exit code 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _add_train(sub) -> None:
    p = sub.add_parser(
        "train", help="train a network on a CSV or .npy table and save it as a safetensors model file",
        description="Train a feed-forward ReLU network on the columns of DATA (a CSV file with a header "
                    "row, or a 2-D .npy array) to predict the column --target, and save it. Features and "
                    "(for l1/mse) the target are standardised for training, and the scaling is folded "
                    "into the saved weights, so the model file works on raw columns.")
    p.add_argument("data", metavar="DATA", help="training table: .csv with a header row, or .npy")
    p.add_argument("--target", required=True, metavar="COL",
                   help="the column to predict: a name (CSV) or an index (.npy; negative from the end)")
    p.add_argument("--hidden", type=_ints, default=[16, 16], help="hidden layer widths (default 16,16)")
    p.add_argument("--skip", default="first-to-output", choices=["none", "first-to-output", "residual"],
                   help="skip connections (default first-to-output: hidden layer 0 into the output)")
    p.add_argument("--loss", default="l1", choices=["l1", "mse", "bce", "cross_entropy"],
                   help="l1 / mse regression, bce (two classes) or cross_entropy (classes) (default l1)")
    p.add_argument("--optimizer", default="sgd", choices=["sgd", "adam"], help="default sgd")
    p.add_argument("--lr", type=float, default=0.01, help="learning rate (default 0.01)")
    p.add_argument("--momentum", type=float, default=0.0, help="SGD momentum (default 0)")
    p.add_argument("--epochs", type=int, default=50, help="passes over the training rows (default 50)")
    p.add_argument("--batch-size", type=int, default=32, help="mini-batch size (default 32)")
    p.add_argument("--val-split", type=float, default=0.2,
                   help="fraction of rows held out for the validation loss (default 0.2; 0 for none)")
    p.add_argument("--dtype", default="float64", choices=["float32", "float64"])
    p.add_argument("--seed", type=int, default=0, help="seed of initialisation, split and shuffling (default 0)")
    p.add_argument("--no-standardize", dest="standardize", action="store_false",
                   help="train on the raw columns")
    p.add_argument("--out", default="model.safetensors", help="model file to write (default model.safetensors)")
    p.add_argument("--plot", metavar="PNG", help="also save the loss curves to this image (needs matplotlib)")
    p.add_argument("--quiet", action="store_true", help="no progress display")
    p.set_defaults(run=_run_train)


def _run_train(args) -> int:
    from . import _tabular as T
    from .network import Network
    from .trainer import Trainer

    if not 0 <= args.val_split < 1:
        raise ValueError(f"--val-split must lie in [0, 1), got {args.val_split}")
    if args.seed < 0:
        raise ValueError(f"--seed must be >= 0, got {args.seed}")
    if args.epochs < 1:
        raise ValueError(f"--epochs must be >= 1, got {args.epochs}")
    if args.skip != "none" and len(args.hidden) < 2:
        raise ValueError(f"--skip {args.skip} needs at least two hidden layers (e.g. --hidden 16,16), "
                         "or use --skip none")
    if args.plot:
        _require_matplotlib()
    table = T.read_table(args.data)
    target = T.column_index(table, args.target)
    if table.n_columns < 2:
        raise ValueError(f"{table.path}: needs at least one feature column besides the target")
    features = [c for c in range(table.n_columns) if c != target]
    X = table.values[:, features]
    y, classes, n_outputs = _encode_target(table.values[:, target], args.loss)

    rng = np.random.default_rng(args.seed)
    order = rng.permutation(X.shape[0])
    n_val = max(1, round(args.val_split * X.shape[0])) if args.val_split > 0 else 0
    if X.shape[0] - n_val < 1:
        raise ValueError(f"{table.path}: {X.shape[0]} row(s) leave nothing to train on after --val-split")
    train, val = order[n_val:], order[:n_val]
    regression = args.loss in ("l1", "mse")
    scaler = (T.Standardizer.fit(X[train], y[train] if regression else None) if args.standardize
              else T.Standardizer(np.zeros(X.shape[1]), np.ones(X.shape[1])))
    net = Network.mlp(X.shape[1], args.hidden, n_outputs, skip=None if args.skip == "none" else args.skip,
                      dtype=args.dtype, seed=args.seed)
    if args.standardize:
        scaler.check_foldable(net)

    def prepare(rows):
        targets = scaler.y(y[rows]) if regression else y[rows]
        return scaler.x(X[rows]), targets[:, None] if args.loss != "cross_entropy" else targets

    unit = scaler.y_scale if args.loss == "l1" else scaler.y_scale ** 2 if args.loss == "mse" else 1.0
    progress = _Progress(args.epochs, unit, quiet=args.quiet)
    trainer = Trainer(net, loss=args.loss, optimizer=args.optimizer, lr=args.lr, momentum=args.momentum,
                      batch_size=args.batch_size, epochs=args.epochs, seed=args.seed, callbacks=[progress])
    try:
        X_train, y_train = prepare(train)
        history = trainer.fit(X_train, y_train, validation=prepare(val) if n_val else None)
    finally:
        progress.close()
    if args.standardize:
        scaler.fold_into(net)  # the saved network maps raw columns to the raw target

    names = table.names or [str(c) for c in range(table.n_columns)]
    dataset = {"features": [names[c] for c in features], "target": names[target], "target_column": target,
               "n_columns": table.n_columns, "named_columns": table.names is not None, "loss": args.loss,
               "classes": None if classes is None else classes.tolist()}
    path = net.save(args.out, metadata={"dataset": json.dumps(dataset)})

    loss = history.epoch_loss * unit
    val_loss = history.val_loss * unit
    summary = f"trained {history.epochs_run} epochs ({history.steps_run} steps): {args.loss} loss "
    summary += f"{loss[-1]:.6g}" if len(loss) else "n/a"
    if len(val_loss):
        summary += f", validation loss {val_loss[-1]:.6g}"
    print(summary)
    if history.stopped_reason:
        print(f"stopped early: {history.stopped_reason}")
    print(f"model saved to {path.resolve()}")
    if args.plot:
        _plot_losses(args.plot, loss, val_loss, args.loss)
        print(f"loss plot saved to {args.plot}")
    return 0


def _encode_target(y: np.ndarray, loss: str) -> tuple[np.ndarray, np.ndarray | None, int]:
    """(targets, class labels or None, network outputs) for ``loss``: classification labels of any values
    become class indices 0..k-1 (bce: exactly two classes, one logit)."""
    if loss not in ("bce", "cross_entropy"):
        return y, None, 1
    classes, y = np.unique(y, return_inverse=True)
    if loss == "bce" and classes.size != 2:
        raise ValueError(f"--loss bce needs a target with exactly 2 values, got {classes.size}")
    if classes.size < 2:
        raise ValueError("a classification target needs at least 2 distinct values")
    return y, classes, classes.size if loss == "cross_entropy" else 1


class _Progress:
    """Trainer callback showing each epoch: a tqdm bar on a terminal, plain lines otherwise, or nothing.

    Losses are shown in the target's own units (``unit`` undoes the target standardisation)."""

    def __init__(self, epochs: int, unit: float, quiet: bool):
        self.epochs, self.unit, self.bar = epochs, unit, None
        self.mode = "quiet" if quiet else "lines"
        if not quiet and sys.stderr.isatty():
            try:
                from tqdm import tqdm
            except ImportError:  # tqdm is the optional `cli` extra: plain lines without it
                pass
            else:
                self.mode = "bar"
                self.bar = tqdm(total=epochs, desc="epoch", unit="epoch", file=sys.stderr, dynamic_ncols=True)

    def __call__(self, trainer, epoch, history) -> bool:
        done = len(history.epoch_loss)
        loss = history.epoch_loss[-1] * self.unit
        val = history.val_loss[-1] * self.unit if len(history.val_loss) else None
        if self.bar is not None:
            self.bar.set_postfix_str(f"loss {loss:.4g}" + (f", val loss {val:.4g}" if val is not None else ""),
                                     refresh=False)
            self.bar.update(1)
        elif self.mode == "lines":
            print(f"epoch {done}/{self.epochs}  loss {loss:.6g}" +
                  (f"  val loss {val:.6g}" if val is not None else ""), flush=True)
        return False

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _require_matplotlib() -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise ValueError("--plot needs matplotlib: pip install 'skipnet[plot]'") from None


def _plot_losses(path: str, loss, val_loss, name: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    epochs = np.arange(1, len(loss) + 1)
    ax.plot(epochs, loss, label="training")
    if len(val_loss):
        ax.plot(epochs[:len(val_loss)], val_loss, label="validation")
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"{name} loss")
    ax.legend()
    fig.tight_layout()
    try:
        fig.savefig(path)
    finally:
        plt.close(fig)


def _add_predict(sub) -> None:
    p = sub.add_parser(
        "predict", help="predict with a model file on a CSV or .npy table",
        description="Predict the target of every row of DATA with MODEL (written by `skipnet train` or "
                    "Network.save). DATA holds the feature columns; the target column named at training "
                    "time is ignored when present.")
    p.add_argument("model", metavar="MODEL", help="a .safetensors model file")
    p.add_argument("data", metavar="DATA", help="table of features: .csv with a header row, or .npy")
    p.add_argument("--out", help="write the predictions to this CSV file (default: print them)")
    p.set_defaults(run=_run_predict)


def _run_predict(args) -> int:
    from . import _tabular as T
    from . import io
    from .network import Network

    net = Network.load(args.model)
    dataset = _dataset_metadata(args.model, io.read_metadata(args.model), net.n_outputs)
    table = T.read_table(args.data)
    X = _feature_columns(table, dataset, net.n_inputs)
    out = net.predict(X).astype(np.float64)
    name = dataset["target"] if dataset and dataset["named_columns"] else "prediction"
    if dataset and dataset["loss"] in ("bce", "cross_entropy"):
        classes = np.asarray(dataset["classes"], np.float64)
        index = (out[:, 0] > 0).astype(int) if dataset["loss"] == "bce" else out.argmax(axis=1)
        columns = {name: classes[index]}
    elif out.shape[1] == 1:
        columns = {name: out[:, 0]}
    else:
        columns = {f"{name}_{k}": out[:, k] for k in range(out.shape[1])}
    T.write_table(args.out, columns)
    if args.out:
        print(f"{X.shape[0]} predictions saved to {args.out}")
    return 0


def _dataset_metadata(path: str, meta: dict, n_outputs: int) -> dict | None:
    """The training table's description stored by `skipnet train` (None for other model files), checked
    field by field: a model file may come from anywhere."""
    if "dataset" not in meta:
        return None
    try:
        dataset = json.loads(meta["dataset"])
        needed = {"features", "target", "target_column", "n_columns", "named_columns", "loss", "classes"}
        if not isinstance(dataset, dict) or not needed <= set(dataset):
            raise ValueError("missing keys")
        _check_dataset(dataset, n_outputs)
    except (ValueError, RecursionError) as exc:
        raise ValueError(f"{path}: the 'dataset' metadata is malformed ({exc})") from exc
    return dataset


def _check_dataset(dataset: dict, n_outputs: int) -> None:
    def is_int(v):
        return isinstance(v, int) and not isinstance(v, bool)

    features, n_columns, target_column = dataset["features"], dataset["n_columns"], dataset["target_column"]
    if not (isinstance(features, list) and all(isinstance(n, str) for n in features)
            and isinstance(dataset["target"], str) and isinstance(dataset["named_columns"], bool)):
        raise ValueError("features must be a list of names, target a name, named_columns true or false")
    if not (is_int(n_columns) and is_int(target_column) and 0 <= target_column < n_columns
            and len(features) == n_columns - 1):
        raise ValueError("target_column must index one of n_columns columns, the others being the features")
    if dataset["loss"] not in ("l1", "mse", "bce", "cross_entropy"):
        raise ValueError(f"unknown loss {dataset['loss']!r}")
    if dataset["loss"] in ("bce", "cross_entropy"):
        count, classes = (2 if dataset["loss"] == "bce" else n_outputs), dataset["classes"]
        if not (isinstance(classes, list) and len(classes) == count
                and all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in classes)):
            raise ValueError(f"classes must list the {count} numeric labels of the model's classes")


def _feature_columns(table, dataset: dict | None, n_inputs: int) -> np.ndarray:
    """The model's feature columns of ``table``, in training order."""
    if dataset is None:  # a model file not written by `skipnet train`: every column is a feature
        if table.n_columns != n_inputs:
            raise ValueError(f"{table.path}: the model takes {n_inputs} features, the table has "
                             f"{table.n_columns} columns")
        return table.values
    features, target = dataset["features"], dataset["target"]
    if table.names is not None and dataset["named_columns"]:
        extra = [n for n in table.names if n not in features and n != target]
        missing = [n for n in features if n not in table.names]
        if missing or extra:
            raise ValueError(f"{table.path}: " + "; ".join(
                ([f"missing feature column(s) {missing}"] if missing else []) +
                ([f"column(s) {extra} were not features at training time"] if extra else [])))
        return table.values[:, [table.names.index(n) for n in features]]
    # positional: the features alone, or every training column with the target at its place
    if table.n_columns == len(features):
        return table.values
    if table.n_columns == dataset["n_columns"]:
        return np.delete(table.values, dataset["target_column"], axis=1)
    raise ValueError(f"{table.path}: expected {len(features)} feature columns (or {dataset['n_columns']} "
                     f"with the target), got {table.n_columns}")


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
    p.add_argument("--target", default=None, metavar="COL",
                   help="the target column: a name (CSV) or an index (.npy; negative from the end); "
                        "default: the last column")
    p.add_argument("--dataset", default="moons", choices=_DATASETS,
                   help="skipnet.datasets set used when DATA is omitted (default moons): moons and xor for "
                        "bce, sine for l1/mse, spirals for cross_entropy")
    p.add_argument("--n-samples", type=int, default=200, help="samples of the built-in data set (default 200)")
    p.add_argument("--noise", type=float, default=None,
                   help="noise of the built-in data set (default: the data set's own)")
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
    from .sweep import MLPFactory, sweep

    if args.data:
        X, y = _sweep_table(args.data, args.target)
    else:
        X, y = _builtin_data(args.dataset, args.n_samples, args.noise)
    y, _, n_outputs = _encode_target(y, args.loss)
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
    return np.format_float_positional(value, trim="-")


def _write_rows(path: str, rows: list[dict]) -> None:
    import csv

    from .sweep import COLUMNS

    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(COLUMNS), extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: ("" if v is None else v) for k, v in row.items()})


def _sweep_table(path: str, target: str | None) -> tuple[np.ndarray, np.ndarray]:
    """Features and target of a CSV/.npy table; the target is --target, or the last column."""
    from . import _tabular as T

    table = T.read_table(path)
    if table.n_columns < 2:
        raise ValueError(f"{table.path}: needs at least one feature column besides the target")
    col = table.n_columns - 1 if target is None else T.column_index(table, target)
    return np.delete(table.values, col, axis=1), table.values[:, col]


def _builtin_data(name: str, n: int, noise: float | None) -> tuple[np.ndarray, np.ndarray]:
    """A skipnet.datasets set (seed 0: the same data every time); --noise None keeps its default."""
    from . import datasets

    kwargs = {} if noise is None else {"noise": noise}
    try:
        X, y = getattr(datasets, name)(n, seed=0, **kwargs)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"--dataset {name} (--n-samples {n}, --noise {noise}): {exc}") from exc
    return X, y.reshape(-1)


# the built-in data sets with a noise level: binary (bce), regression (l1, mse), classes (cross_entropy)
_DATASETS = ("moons", "xor", "sine", "spirals")


def _add_bench(sub) -> None:
    p = sub.add_parser(
        "bench", help="time skipnet against the NumPy reference, PyTorch, JAX and the hardware ceilings",
        description="Side-by-side timing of one training step of workloads W0-W4 (DESIGN.md section 5): "
                    "skipnet fused and per-op, the NumPy reference, PyTorch eager, JAX (the epoch under "
                    "lax.scan) and numba (W0) when installed, a hand-written C loop (W0) and the step's GEMM "
                    "time through NumPy (W1-W4), interleaved round by round in this process; medians and "
                    "paired ratios. Also element-wise kernels against "
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
    parser = _Parser(
        prog="skipnet", description="Train and explain feed-forward ReLU networks with skip connections.")
    from . import __version__

    parser.add_argument("--version", action="version", version=f"skipnet {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_trace(sub)
    _add_demo(sub)
    _add_train(sub)
    _add_predict(sub)
    _add_sweep(sub)
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

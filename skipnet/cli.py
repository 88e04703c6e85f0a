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
    X, y = table.values[:, features], table.values[:, target]
    classes: np.ndarray | None = None
    n_outputs = 1
    if args.loss in ("bce", "cross_entropy"):
        classes, y = np.unique(y, return_inverse=True)  # labels -> class indices 0..k-1
        if args.loss == "bce" and classes.size != 2:
            raise ValueError(f"--loss bce needs a target with exactly 2 values, got {classes.size}")
        if classes.size < 2:
            raise ValueError("a classification target needs at least 2 distinct values")
        n_outputs = classes.size if args.loss == "cross_entropy" else 1

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


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="skipnet", description="Train and explain feed-forward ReLU networks with skip connections.")
    from . import __version__

    parser.add_argument("--version", action="version", version=f"skipnet {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_trace(sub)
    _add_train(sub)
    _add_predict(sub)
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

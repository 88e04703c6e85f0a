"""`skipnet train`: fit a network to a CSV/.npy table and save it as a model file."""

from __future__ import annotations

import numpy as np

from . import _args as A
from ._dataset import Dataset, encode_target
from ._errors import CommandFailed
from ._paths import check_outputs, write_output
from ._plot import loss_curve, plot_format

_EXIT_STATUS = ("exit status: 0 when the model is saved; 1 when training diverged (the loss became "
                "non-finite or exploded): nothing is written to --out, an existing file there is left as "
                "it was, and the weights at the stop (the last with a finite loss) are saved only to "
                "--save-diverged PATH if given; 2 for bad arguments or unreadable input, reported before "
                "any training where possible (output paths are checked up front).")


def add_parser(sub) -> None:
    p = sub.add_parser(
        "train", help="train a network on a CSV or .npy table and save it as a safetensors model file",
        description="Train a feed-forward ReLU network on the columns of DATA (a CSV file with a header "
                    "row, or a 2-D .npy array) to predict the column --target, and save it. Features and "
                    "(for l1/mse) the target are standardised for training, and the scaling is folded "
                    "into the saved weights, so the model file works on raw columns.",
        epilog=_EXIT_STATUS)
    p.add_argument("data", metavar="DATA", help="training table: .csv with a header row, or .npy")
    p.add_argument("--target", required=True, metavar="COL",
                   help="the column to predict: a name (CSV) or an index (.npy; negative from the end)")
    A.add_architecture(p, hidden_help="hidden layer widths (default 16,16)",
                       skip_help="skip connections (default first-to-output: hidden layer 0 into the output)")
    A.add_loss(p, "l1", "l1 / mse regression, bce (two classes) or cross_entropy (classes) (default l1)")
    A.add_optimizer(p, "default sgd")
    A.add_lr(p, 0.01, "learning rate (default 0.01)")
    A.add_momentum(p)
    A.add_batches(p, epochs_help="passes over the training rows (default 50)", val_split=0.2, val_split_help=(
        "fraction of rows held out for the validation loss (default 0.2; 0 for none)"))
    A.add_dtype(p)
    p.add_argument("--seed", type=int, default=0, help="seed of initialisation, split and shuffling (default 0)")
    A.add_standardize(p)
    p.add_argument("--out", default="model.safetensors",
                   help="model file to write (default model.safetensors); not written if training diverges")
    p.add_argument("--save-diverged", metavar="PATH", default=None,
                   help="if training diverges, save the weights at the stop to PATH (another file than "
                        "--out) for inspection; the command still exits 1")
    p.add_argument("--plot", metavar="PNG", help="also save the loss curves to this image (needs matplotlib)")
    A.add_quiet(p, "no progress display")
    p.set_defaults(run=run)


def run(args) -> int:
    from .. import _tabular as T

    _check_options(args)
    check_outputs({"--out": args.out, "--save-diverged": args.save_diverged, "--plot": args.plot},
                  inputs={"DATA": args.data})
    image_format = plot_format(args.plot) if args.plot else None
    table = T.read_table(args.data)
    target = T.column_index(table, args.target)
    if table.n_columns < 2:
        raise ValueError(f"{table.path}: needs at least one feature column besides the target")
    X = np.delete(table.values, target, axis=1)
    y, classes, n_outputs = encode_target(table.values[:, target], args.loss)
    dataset = Dataset.of_table(table, target, args.loss, classes)

    net, history, unit = _fit(args, X, y, n_outputs)
    loss, val_loss = history.epoch_loss * unit, history.val_loss * unit
    _print_summary(args, history, loss, val_loss)
    diverged = _divergence(history)
    if diverged is None:
        print(f"model saved to {net.save(args.out, metadata=dataset.metadata()).resolve()}")
    elif args.save_diverged:
        net.save(args.save_diverged, metadata=dataset.metadata())
    if args.plot:
        write_output(args.plot, loss_curve(loss, val_loss, args.loss, image_format), "--plot")
        print(f"loss plot saved to {args.plot}")
    if diverged is not None:
        kept = (f"the weights at the stop saved to {args.save_diverged}" if args.save_diverged
                else "--save-diverged PATH keeps the weights at the stop")
        raise CommandFailed(f"training {diverged}; {args.out} not written (try a lower --lr; {kept})", code=1)
    return 0


def _check_options(args) -> None:
    """Refuse bad option values before reading anything (the Trainer checks its own options again)."""
    A.check_val_split(args.val_split)
    A.check_at_least("--seed", args.seed, 0)
    A.check_at_least("--epochs", args.epochs, 1)
    if args.skip != "none" and len(args.hidden) < 2:
        raise ValueError(f"--skip {args.skip} needs at least two hidden layers (e.g. --hidden 16,16), "
                         "or use --skip none")


def _fit(args, X: np.ndarray, y: np.ndarray, n_outputs: int):
    """Train on standardised columns (``y``: the targets of encode_target); return (network mapping raw
    columns to the raw target, History, the factor that turns its losses into the target's units)."""
    from .._tabular import Standardizer
    from ..network import Network
    from ..trainer import Trainer
    from ._progress import Progress

    rng = np.random.default_rng(args.seed)
    order = rng.permutation(X.shape[0])
    n_val = max(1, round(args.val_split * X.shape[0])) if args.val_split > 0 else 0
    if X.shape[0] - n_val < 1:
        raise ValueError(f"{args.data}: {X.shape[0]} row(s) leave nothing to train on after --val-split")
    train, val = order[n_val:], order[:n_val]
    try:
        scaler = Standardizer.for_training(X[train], y[train], args.loss, args.standardize)
    except ValueError as exc:  # columns whose scale overflows
        raise ValueError(f"{args.data}: {exc}") from exc
    net = Network.mlp(X.shape[1], args.hidden, n_outputs, skip=A.skip_option(args.skip), dtype=args.dtype,
                      seed=args.seed)
    if args.standardize:
        scaler.check_foldable(net)

    def prepare(rows):
        return scaler.x(X[rows]), scaler.targets(y[rows], args.loss)

    unit = scaler.loss_unit(args.loss)
    progress = Progress(args.epochs, unit, quiet=args.quiet)
    trainer = Trainer(net, loss=args.loss, optimizer=args.optimizer, lr=args.lr, momentum=args.momentum,
                      batch_size=args.batch_size, epochs=args.epochs, seed=args.seed, callbacks=[progress])
    try:
        X_train, y_train = prepare(train)
        history = trainer.fit(X_train, y_train, validation=prepare(val) if n_val else None)
    finally:
        progress.close()
    if args.standardize:
        scaler.fold_into(net)  # the saved network maps raw columns to the raw target
    return net, history, unit


def _divergence(history) -> str | None:
    """The divergence stop of ``history`` ("diverged at step ..."), or None if training did not diverge."""
    reason = history.stopped_reason or ""
    if reason.startswith("diverged"):
        return reason
    for warning in history.warnings:
        if warning.kind == "divergence":
            return warning.message
    return None


def _print_summary(args, history, loss: np.ndarray, val_loss: np.ndarray) -> None:
    summary = f"trained {history.epochs_run} epochs ({history.steps_run} steps): {args.loss} loss "
    summary += f"{loss[-1]:.6g}" if len(loss) else "n/a"
    if len(val_loss):
        summary += f", validation loss {val_loss[-1]:.6g}"
    print(summary)
    if history.stopped_reason:
        print(f"stopped early: {history.stopped_reason}")


"""Parser helpers shared by the commands: the one-line-error parser, the option value types, and the
options several commands take (each defined once here: flag, type, default, choices; a command passes its
own help text where it words an option for its purpose)."""

from __future__ import annotations

import argparse
import math

from .._validation import LOSSES as KERNEL_LOSSES

LOSSES = KERNEL_LOSSES  # the --loss choices: the kernels' table of losses
SKIPS = ("none", "first-to-output", "residual")
DTYPES = ("float32", "float64")
OPTIMIZERS = ("sgd", "adam")


class Parser(argparse.ArgumentParser):
    """argparse whose errors are one line on stderr (no usage dump) and exit code 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def floats(text: str) -> list[float]:
    """"1,2.5;3" -> [1.0, 2.5, 3.0] (commas or semicolons); finite numbers only."""
    try:
        values = [float(v) for v in text.replace(";", ",").split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None
    if not all(math.isfinite(v) for v in values):
        raise argparse.ArgumentTypeError(f"expected finite numbers, got {text!r}")
    return values


def widths(text: str) -> list[int]:
    """Hidden layer widths: "16,16" -> [16, 16]; every width a positive integer."""
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive layer widths such as 16,16, got {text!r}")
    return values


def skip_option(value: str) -> str | None:
    """The --skip choice as Network.mlp's ``skip`` argument ("none" -> None)."""
    return None if value == "none" else value


def check_val_split(value: float) -> None:
    """--val-split is a fraction in [0, 1) (NaN fails the comparison too)."""
    if not 0.0 <= value < 1.0:
        raise ValueError(f"--val-split must lie in [0, 1), got {value}")


def check_at_least(option: str, value: int, minimum: int) -> None:
    """ValueError unless ``value`` (of ``option``, e.g. "--epochs") is >= ``minimum``."""
    if value < minimum:
        raise ValueError(f"{option} must be >= {minimum}, got {value}")


# ------------------------------------------------------------------------------ shared options
def add_architecture(p: argparse.ArgumentParser, *, hidden_help: str, skip_help: str) -> None:
    """--hidden WIDTHS (default 16,16) and --skip (default first-to-output): Network.mlp's ``hidden``
    and ``skip`` (see skip_option)."""
    p.add_argument("--hidden", type=widths, default=[16, 16], help=hidden_help)
    p.add_argument("--skip", default="first-to-output", choices=SKIPS, help=skip_help)


def add_dtype(p: argparse.ArgumentParser) -> None:
    """--dtype float32 | float64 (default float64)."""
    p.add_argument("--dtype", default="float64", choices=list(DTYPES))


def add_loss(p: argparse.ArgumentParser, default: str, help: str, choices=LOSSES) -> None:
    """--loss, one of ``choices``."""
    p.add_argument("--loss", default=default, choices=choices, help=help)


def add_optimizer(p: argparse.ArgumentParser, help: str) -> None:
    """--optimizer sgd | adam (default sgd)."""
    p.add_argument("--optimizer", default="sgd", choices=list(OPTIMIZERS), help=help)


def add_lr(p: argparse.ArgumentParser, default: float, help: str) -> None:
    """--lr, the learning rate (a float; the Trainer checks it)."""
    p.add_argument("--lr", type=float, default=default, help=help)


def add_momentum(p: argparse.ArgumentParser) -> None:
    """--momentum, SGD's (default 0)."""
    p.add_argument("--momentum", type=float, default=0.0, help="SGD momentum (default 0)")


def add_batches(p: argparse.ArgumentParser, *, epochs_help: str, val_split: float,
                val_split_help: str) -> None:
    """--epochs (default 50, checked with check_at_least), --batch-size (default 32) and --val-split
    (checked with check_val_split)."""
    p.add_argument("--epochs", type=int, default=50, help=epochs_help)
    p.add_argument("--batch-size", type=int, default=32, help="mini-batch size (default 32)")
    p.add_argument("--val-split", type=float, default=val_split, help=val_split_help)


def add_standardize(p: argparse.ArgumentParser) -> None:
    """--no-standardize: ``args.standardize`` False (skipnet._tabular.Standardizer.for_training's
    ``enabled``)."""
    p.add_argument("--no-standardize", dest="standardize", action="store_false",
                   help="train on the raw columns")


def add_quiet(p: argparse.ArgumentParser, help: str) -> None:
    """--quiet: no progress display."""
    p.add_argument("--quiet", action="store_true", help=help)

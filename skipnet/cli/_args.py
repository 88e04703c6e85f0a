"""Parser helpers shared by the commands: the one-line-error parser and the option value types."""

from __future__ import annotations

import argparse
import math

from .._validation import LOSSES as KERNEL_LOSSES

LOSSES = KERNEL_LOSSES  # the --loss choices: the kernels' table of losses
SKIPS = ("none", "first-to-output", "residual")


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

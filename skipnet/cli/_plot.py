"""The loss-curve image of `skipnet train --plot` (matplotlib, an optional dependency)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

# formats matplotlib writes without external programs (pgf needs LaTeX)
_NEEDS_TOOLS = {"pgf"}


def plot_format(path: str | Path) -> str:
    """The image format of ``path`` (from its suffix; png without one), checked before any training:
    ValueError when matplotlib is missing or cannot write that format."""
    try:
        import matplotlib  # noqa: F401
        from matplotlib.backend_bases import FigureCanvasBase
    except ImportError:
        raise ValueError("--plot needs matplotlib: pip install 'skipnet[plot]'") from None
    suffix = Path(path).suffix.lower().lstrip(".")
    formats = sorted(set(FigureCanvasBase.get_supported_filetypes()) - _NEEDS_TOOLS)
    if suffix and suffix not in formats:
        raise ValueError(f"--plot {path}: unknown image format {suffix!r}; use one of {', '.join(formats)}")
    return suffix or "png"


def loss_curve(loss: np.ndarray, val_loss: np.ndarray, name: str, fmt: str = "png") -> bytes:
    """The training (and validation) loss per epoch as an image in format ``fmt``; ``loss`` and
    ``val_loss`` are 1-D arrays of epoch losses (``val_loss`` may be empty or shorter)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    try:
        epochs = np.arange(1, len(loss) + 1)
        ax.plot(epochs, loss, label="training")
        if len(val_loss):
            ax.plot(epochs[:len(val_loss)], val_loss, label="validation")
        ax.set_xlabel("epoch")
        ax.set_ylabel(f"{name} loss")
        ax.legend()
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format=fmt)
    finally:
        plt.close(fig)
    return buffer.getvalue()

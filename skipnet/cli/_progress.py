"""The progress display of `skipnet train`: a Trainer callback."""

from __future__ import annotations

import sys


class Progress:
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

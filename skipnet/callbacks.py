"""Training callbacks with Keras' conventions: EarlyStopping and ModelCheckpoint.

    es = sn.EarlyStopping(monitor="val_loss", patience=10, min_delta=0.0, restore_best=True)
    ck = sn.ModelCheckpoint("best.safetensors", monitor="val_loss", save_best_only=True)
    sn.Trainer(net, epochs=500, callbacks=[es, ck]).fit(X, y, validation=(Xv, yv))

The protocol (skipnet.Trainer): a callback is a callable ``callback(trainer, epoch, history)`` run after
every epoch; a truthy return stops training, and a returned string becomes ``History.stopped_reason``
(any other truthy value gives ``"callback"``). An object may also have ``on_fit_start(trainer,
has_validation)``, called by ``Trainer.fit`` before the first epoch (to reset its state, and to refuse
a fit it cannot serve with a ValueError).

``monitor`` is ``"val_loss"`` (the loss on ``fit``'s ``validation`` data after each epoch) or ``"loss"``
(the training epoch loss: the mean of the epoch's mini-batch losses, each taken before its update).
Lower is better. A non-finite value never counts as an improvement.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from . import _validation as V
from ._files import check_output_path
from ._settings import Checked, Setting

__all__ = ["EarlyStopping", "ModelCheckpoint"]

MONITORS = ("val_loss", "loss")


def _monitor(name, value):
    return V.check_choice(name, value, MONITORS)


def _patience(name, value):
    return V.check_int(name, value, minimum=0)


def _min_delta(name, value):
    return V.check_float(name, value, minimum=0.0)


def _path(name, value):
    if not isinstance(value, (str, os.PathLike)) or not os.fspath(value):
        raise TypeError(f"{name} must be a non-empty str or os.PathLike, got {type(value).__name__} {value!r}")
    return Path(os.fspath(value))


def _monitored(callback, trainer, history) -> float:
    """The value ``callback.monitor`` names, for the epoch just ended."""
    series = history.val_loss if callback.monitor == "val_loss" else history.epoch_loss
    return float(series[-1])


def _needs_validation(callback, has_validation: bool) -> None:
    if callback.monitor == "val_loss" and not has_validation:
        raise ValueError(f"{type(callback).__name__}(monitor='val_loss') needs validation data: pass "
                         "fit(X, y, validation=(X_val, y_val)), or monitor='loss' (the training loss)")


class EarlyStopping(Checked):
    """Stop training when the monitored loss has stopped improving (Keras' ``EarlyStopping``).

    An epoch improves when its value is below the best so far by more than ``min_delta``; after
    ``patience`` epochs in a row without improvement (Keras' count) training stops, with ``History.stopped_reason``
    starting with "early stopping". With ``restore_best`` the network then gets the weights it had
    at the end of the best epoch (as Keras, only when this callback stops the fit; see
    ``Trainer(restore_best=True)`` for the best weights however a fit ends). The state (``best``,
    ``wait``, ``best_epoch``, ``stopped_epoch``) is reset at the start of every fit.
    """

    monitor = Setting(_monitor, "'val_loss' (validation loss) or 'loss' (training epoch loss).")
    patience = Setting(_patience, "Epochs without improvement before stopping (>= 0).")
    min_delta = Setting(_min_delta, "Least decrease (>= 0) that counts as an improvement.")
    restore_best = Setting(V.check_bool, "On stopping, restore the weights of the best epoch.")

    def __init__(self, monitor: str = "val_loss", patience: int = 10, min_delta: float = 0.0,
                 restore_best: bool = True):
        self.monitor = monitor
        self.patience = patience
        self.min_delta = min_delta
        self.restore_best = restore_best
        self.on_fit_start(None, True)

    def on_fit_start(self, trainer, has_validation: bool) -> None:
        """Reset the state; ValueError when ``monitor="val_loss"`` and the fit has no validation data."""
        _needs_validation(self, has_validation)
        self.best = math.inf
        self.wait = 0
        self.best_epoch: int | None = None  # the trainer's epoch number (Trainer.epoch_count - 1)
        self.stopped_epoch: int | None = None
        self.best_weights: np.ndarray | None = None

    def __call__(self, trainer, epoch: int, history) -> str | None:
        value = _monitored(self, trainer, history)
        first_epoch = len(history.epoch_loss) == 1  # of this fit: never stops there (as Keras)
        self.wait += 1
        if value + self.min_delta < self.best:  # False for NaN
            self.best, self.best_epoch, self.wait = value, epoch, 0
            if self.restore_best:
                params = trainer.net.internals.params
                if self.best_weights is None:
                    self.best_weights = params.copy()
                else:
                    self.best_weights[...] = params
            return None
        if self.wait < self.patience or first_epoch:
            return None
        self.stopped_epoch = epoch
        reason = (f"early stopping: {self.monitor} has not improved by more than {self.min_delta:g} for "
                  f"{self.wait} epochs")
        if self.best_epoch is None:
            return reason + " (no finite value)"
        reason += f" (best {self.best:.6g} at epoch {self.best_epoch})"
        if self.best_weights is not None:
            trainer.net.internals.params[...] = self.best_weights  # under the fit's write guard
            reason += ", whose weights were restored"
        return reason

    def __repr__(self) -> str:
        return (f"EarlyStopping(monitor={self.monitor!r}, patience={self.patience}, "
                f"min_delta={self.min_delta:g}, restore_best={self.restore_best})")


class ModelCheckpoint(Checked):
    """Save the network after an epoch (Keras' ``ModelCheckpoint``), through ``Network.save``: atomic,
    so the file always holds a whole model.

    ``save_best_only=True`` saves only when the monitored loss is below the best so far (the file then
    holds the best epoch's weights); False saves after every epoch. ``last_saved_epoch`` and ``best``
    say what was written; the state is reset at the start of every fit.
    """

    path = Setting(_path, "File the network is saved to (safetensors, replaced atomically).")
    monitor = Setting(_monitor, "'val_loss' (validation loss) or 'loss' (training epoch loss).")
    save_best_only = Setting(V.check_bool, "Save only on an improvement of the monitored loss.")

    def __init__(self, path: str | os.PathLike, monitor: str = "val_loss", save_best_only: bool = True):
        self.path = path
        self.monitor = monitor
        self.save_best_only = save_best_only
        self.on_fit_start(None, True)

    def on_fit_start(self, trainer, has_validation: bool) -> None:
        """Reset the state; ValueError when ``monitor="val_loss"`` and the fit has no validation data,
        or when ``path`` cannot be written (a folder, a missing folder...), before any training."""
        _needs_validation(self, has_validation)
        if trainer is not None:
            check_output_path(self.path, "model file")
        self.best = math.inf
        self.last_saved_epoch: int | None = None

    def __call__(self, trainer, epoch: int, history) -> None:
        value = _monitored(self, trainer, history)
        if value < self.best:
            self.best = value
        elif self.save_best_only:
            return
        trainer.net.save(self.path)
        self.last_saved_epoch = epoch
        return

    def __repr__(self) -> str:
        return (f"ModelCheckpoint({str(self.path)!r}, monitor={self.monitor!r}, "
                f"save_best_only={self.save_best_only})")

"""Trainer and History: mini-batch training of a Network in place, with guards that say why it stopped.

Semantics (DESIGN.md section 2):
- ``fit`` trains the network in place and keeps the optimizer state, so a second ``fit`` continues.
- ``History.step_loss[i]`` is the loss of mini-batch i before its update; ``epoch_loss[e]`` is the mean
  of epoch e's per-sample losses measured that way (step losses weighted by batch size).
- With ``shuffle=False`` batches are taken in order, the last one possibly smaller; with ``shuffle=True``
  each epoch is a fresh permutation drawn from the trainer's seeded generator.
- Zero-gradient stop: at the end of an epoch in which every mini-batch gradient was exactly zero, the
  gradient over the whole training set is computed; if it is exactly zero and the optimizer would not
  move the weights either (no momentum left, no weight decay on a nonzero weight), training stops with
  ``stopped_reason`` set: no further step can change anything.
- Divergence guard: when a step's loss is NaN/inf or exceeds ``divergence_factor`` times the first loss
  of the fit, or an update makes a parameter non-finite, training stops and the network keeps the last
  weights that gave a finite (recorded) loss; the optimizer's state is reset, since its momentum or
  moments belong to the diverging trajectory, so a further fit (e.g. with a lower lr) starts afresh.

Schedules: ``schedule`` is None (constant ``lr``) or an object with ``lr(step, epoch) -> float`` (step
counts every mini-batch of this trainer, from 0), and optionally ``start(base_lr, steps_per_epoch,
epochs)``, called at the start of each fit, and ``epoch_end(epoch, loss)``, called with the epoch's
validation loss when there is one, else its training loss. See skipnet.schedules.
Callbacks: callables ``callback(trainer, epoch, history)`` run after every epoch; a truthy return stops
training with ``stopped_reason = "callback"``.

Diagnostics (``diagnose=True``, the default): between epochs, skipnet.diagnostics.TrainingMonitor adds
structured ``History.warnings``: ``"plateau"`` once per flat stretch of the epoch losses, with its cause
(ln 2 / constant output / dead layer / zero or tiny gradient / saddle) in ``data["cause"]``, and
``"dead_units"`` when ReLU units are first seen dead on the training data (layer, fraction, epoch),
checked after the first epoch, every ``diagnose_every`` epochs and on a plateau, never every epoch.
Each check costs about one forward pass over the training data. Other kinds: ``"zero_gradient"`` and
``"divergence"`` (the stops above).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import _validation as V
from .diagnostics import TrainingMonitor
from .optimizers import make_optimizer


@dataclass
class TrainingWarning:
    """A structured observation made during training (kind, step, epoch, human-readable message)."""

    kind: str
    message: str
    step: int | None = None
    epoch: int | None = None
    data: dict = field(default_factory=dict)

    def __str__(self):
        where = f"epoch {self.epoch}" if self.step is None else f"step {self.step} (epoch {self.epoch})"
        return f"[{self.kind}] {where}: {self.message}"


@dataclass
class History:
    """What one ``fit`` did. Arrays are float64; ``lr[i]`` is the rate used by step i."""

    step_loss: np.ndarray
    epoch_loss: np.ndarray
    val_loss: np.ndarray
    lr: np.ndarray
    warnings: list
    stopped_reason: str | None
    epochs_run: int
    steps_run: int

    @property
    def final_loss(self) -> float:
        return float(self.epoch_loss[-1]) if len(self.epoch_loss) else float("nan")


class Trainer:
    """Mini-batch training of ``net`` in place.

    Parameters mirror torch.optim: ``optimizer`` "sgd" (``momentum``, ``dampening``, ``nesterov``,
    ``weight_decay``) or "adam" (``betas``, ``eps``, ``weight_decay``); ``loss`` one of "l1", "mse",
    "bce", "cross_entropy". ``seed`` drives shuffling only (initialisation belongs to the Network).
    """

    def __init__(self, net, loss: str = "l1", optimizer: str = "sgd", lr: float = 0.01,
                 momentum: float = 0.0, weight_decay: float = 0.0, batch_size: int = 32, epochs: int = 20,
                 shuffle: bool = True, schedule=None, seed: int | None = 0, *, dampening: float = 0.0,
                 nesterov: bool = False, betas=(0.9, 0.999), eps: float = 1e-8,
                 divergence_factor: float | None = 1e6, callbacks=(), diagnose: bool = True,
                 diagnose_every: int = 10):
        self.net = V.check_network("net", net)
        self.loss = V.check_choice("loss", loss, V.LOSSES)
        self.lr = V.check_float("lr", lr, positive=True)
        self.batch_size = V.check_int("batch_size", batch_size, minimum=1)
        self.epochs = V.check_int("epochs", epochs, minimum=0)
        self.shuffle = V.check_bool("shuffle", shuffle)
        if schedule is not None and not callable(getattr(schedule, "lr", None)):
            raise TypeError("schedule must be None or an object with an lr(step, epoch) method "
                            "(see skipnet.schedules)")
        self.schedule = schedule
        if seed is not None:
            seed = V.check_int("seed", seed, minimum=0)
        self.seed = seed
        if divergence_factor is not None:
            divergence_factor = V.check_float("divergence_factor", divergence_factor, minimum=1.0,
                                              include_min=False)
        self.divergence_factor = divergence_factor
        if callable(callbacks) or not isinstance(callbacks, (list, tuple, type(None))):
            raise TypeError(f"callbacks must be a list of callables, got {callbacks!r}")
        self.callbacks = list(callbacks or ())
        for cb in self.callbacks:
            if not callable(cb):
                raise TypeError(f"callbacks must be callables, got {cb!r}")
        if not isinstance(diagnose, (bool, np.bool_)):
            raise TypeError(f"diagnose must be True or False, got {diagnose!r}")
        self.diagnose = bool(diagnose)
        self.diagnose_every = V.check_int("diagnose_every", diagnose_every, minimum=1)
        self._monitor = None  # (run, TrainingMonitor) of the current fit
        self.optimizer = make_optimizer(net, optimizer, momentum=momentum, dampening=dampening,
                                        nesterov=nesterov, weight_decay=weight_decay, betas=betas, eps=eps)
        self.rng = np.random.default_rng(seed)
        self.step_count = 0
        self.epoch_count = 0

    # ------------------------------------------------------------------ fit
    def fit(self, X, y, validation=None) -> History:
        """Train for ``epochs`` epochs on X (n, n_inputs), y; return the History of this fit."""
        net = self.net
        X, y = net._check_batch(X, y, self.loss)
        Xv = yv = None
        if validation is not None:
            Xv, yv = V.as_validation(validation, net.n_inputs, net.n_outputs, self.loss, net.dtype)
            net._check_workspace(Xv.shape[0])
        with net._exclusive():  # one thread at a time per network
            return self._fit(X, y, Xv, yv)

    def _fit(self, X, y, Xv, yv) -> History:
        run = _Run(self, X, y)
        if self.schedule is not None and hasattr(self.schedule, "start"):
            self.schedule.start(self.lr, run.steps_per_epoch, self.epochs)
        for _ in range(self.epochs):
            run.stopped = self._run_epoch(run)
            if run.stopped:
                break
            run.stopped = self._end_epoch(run, Xv, yv)
            if run.stopped:
                break
        return run.history()

    def _run_epoch(self, run: _Run) -> str | None:
        """One epoch of mini-batch steps, one kernel call per layer (the per-op path).

        Appends to run.step_loss / run.lr / run.epoch_loss; returns a stop reason or None."""
        net, engine, opt = self.net, self.net._engine, self.optimizer
        X, y, n, batch = run.X, run.y, run.X.shape[0], run.batch
        epoch = self.epoch_count
        order = self.rng.permutation(n) if self.shuffle else None
        total = 0.0
        run.all_zero = True
        for start in range(0, n, batch):
            if order is not None:
                idx = order[start:start + batch]
                Xb, yb = run.Xb[:idx.shape[0]], run.yb[:idx.shape[0]]
                np.take(X, idx, axis=0, out=Xb)
                np.take(y, idx, axis=0, out=yb)
            else:
                Xb, yb = X[start:start + batch], y[start:start + batch]
            lr = self._current_lr()
            value = engine.loss_and_gradients(Xb, yb, self.loss)
            if run.first_loss is None:
                run.first_loss = value
            reason = self._divergence(value, run.first_loss)
            if reason:
                return run.diverged(self.step_count, epoch, reason, value, lr)
            run.last_good[...] = net._params
            run.step_loss.append(value)
            run.lr.append(lr)
            total += value * Xb.shape[0]
            run.all_zero = run.all_zero and not net._grads.any()
            opt.step(lr)
            self.step_count += 1
            if not np.isfinite(net._params).all():
                return run.diverged(self.step_count - 1, epoch,
                                    f"the update with lr={lr:g} made a parameter non-finite", value, lr)
        run.epoch_loss.append(total / n)
        return None

    def _end_epoch(self, run: _Run, Xv, yv) -> str | None:
        """Checks between epochs: validation loss, schedule feedback, the zero-gradient stop, callbacks."""
        epoch = self.epoch_count
        self.epoch_count += 1
        monitored = run.epoch_loss[-1]
        if Xv is not None:
            run.val_loss.append(self._evaluate(Xv, yv))
            monitored = run.val_loss[-1]
        if self.schedule is not None and hasattr(self.schedule, "epoch_end"):
            self.schedule.epoch_end(epoch, monitored)
        if run.all_zero and self._stuck(run.X, run.y):
            reason = ("zero gradient: the loss gradient over the whole training set is exactly 0 and the "
                      "optimizer has nothing left to apply, so no further step can change anything")
            dead = self._dead_summary(run.X)
            if dead:
                reason += f" ({dead})"
            run.warnings.append(TrainingWarning("zero_gradient", reason, None, epoch,
                                                {"loss": run.epoch_loss[-1]}))
            return reason
        if self.diagnose:
            if self._monitor is None or self._monitor[0] is not run:
                self._monitor = (run, TrainingMonitor(self.net, run.X, run.y, self.loss, self.diagnose_every))
            for kind, message, data in self._monitor[1].end_epoch(epoch, run.epoch_loss):
                run.warnings.append(TrainingWarning(kind, message, None, epoch, data))
        if any(cb(self, epoch, run.history()) for cb in self.callbacks):
            return "callback"
        return None

    # ------------------------------------------------------------------ helpers
    def _current_lr(self) -> float:
        if self.schedule is None:
            return self.lr
        return V.check_float(f"the learning rate schedule.lr returned at step {self.step_count}",
                             self.schedule.lr(self.step_count, self.epoch_count), minimum=0.0)

    def _divergence(self, value: float, first_loss: float) -> str | None:
        if not np.isfinite(value):
            return f"the loss is {value}"
        if self.divergence_factor is not None and first_loss > 0 and value > self.divergence_factor * first_loss:
            return (f"the loss {value:.6g} exceeds {self.divergence_factor:g} x the first loss "
                    f"{first_loss:.6g}")
        return None

    def _evaluate(self, X, y) -> float:
        engine = self.net._engine
        value = engine.loss_and_gradients(X, y, self.loss)
        return float(value)

    def _stuck(self, X, y) -> bool:
        self.net._engine.loss_and_gradients(X, y, self.loss)
        return not self.net._grads.any() and self.optimizer.is_idle()

    def _dead_summary(self, X) -> str:
        """Which hidden layers output exactly zero for every training sample."""
        p = self.net._detailed_pass(X)
        dead = [k for k, layer in enumerate(self.net.layers[:-1])
                if layer.activation == "relu" and not p.h[k].any()]
        if not dead:
            return ""
        return "every ReLU unit of hidden layer" + ("s " if len(dead) > 1 else " ") + \
            ", ".join(map(str, dead)) + " is dead on the training data"


class _Run:
    """The state of one ``fit``: data, batch buffers, what has been recorded, the last good weights."""

    def __init__(self, trainer: Trainer, X, y):
        net = trainer.net
        self.trainer, self.X, self.y = trainer, X, y
        self.batch = min(trainer.batch_size, X.shape[0])
        self.steps_per_epoch = -(-X.shape[0] // self.batch)
        # gather buffers for shuffled batches, allocated once per fit
        self.Xb = np.empty((self.batch, X.shape[1]), net.dtype)
        self.yb = np.empty((self.batch,) + y.shape[1:], y.dtype)
        self.last_good = net._params.copy()  # the weights behind the last finite loss
        self.first_loss: float | None = None
        self.all_zero = False  # every mini-batch gradient of the current epoch was exactly zero
        self.step_loss: list[float] = []
        self.epoch_loss: list[float] = []
        self.val_loss: list[float] = []
        self.lr: list[float] = []
        self.warnings: list[TrainingWarning] = []
        self.stopped: str | None = None

    def diverged(self, step: int, epoch: int, reason: str, loss: float, lr: float) -> str:
        """Restore the last good weights, record why, and return the stop reason."""
        self.trainer.net._params[...] = self.last_good
        self.trainer.optimizer.reset()
        message = f"diverged at step {step} (epoch {epoch}): {reason}"
        self.warnings.append(TrainingWarning("divergence", message, step, epoch, {"loss": loss, "lr": lr}))
        return message

    def history(self) -> History:
        return History(np.asarray(self.step_loss, float), np.asarray(self.epoch_loss, float),
                       np.asarray(self.val_loss, float), np.asarray(self.lr, float), list(self.warnings),
                       self.stopped, len(self.epoch_loss), len(self.step_loss))

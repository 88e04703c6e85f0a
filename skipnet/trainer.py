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

Execution: on the cython backend ``fit`` runs the fused path by default (``fused=True``): whole epochs
of steps in one kernel call without the GIL (skipnet._kernels.FusedNet), several epochs per call when
nothing has to run in Python between them (no validation, callbacks, ``schedule.epoch_end`` or
diagnostics). It
follows the per-op path (``fused=False``, one kernel call per layer) step for step, with the same
results, guards, messages and random draws. A schedule's rates are computed before each call.

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
    ``fused`` (cython backend): run whole epochs per kernel call (default) or one call per layer.
    """

    def __init__(self, net, loss: str = "l1", optimizer: str = "sgd", lr: float = 0.01,
                 momentum: float = 0.0, weight_decay: float = 0.0, batch_size: int = 32, epochs: int = 20,
                 shuffle: bool = True, schedule=None, seed: int | None = 0, *, dampening: float = 0.0,
                 nesterov: bool = False, betas=(0.9, 0.999), eps: float = 1e-8,
                 divergence_factor: float | None = 1e6, callbacks=(), diagnose: bool = True,
                 diagnose_every: int = 10, fused: bool = True):
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
        if not isinstance(fused, (bool, np.bool_)):
            raise TypeError(f"fused must be True or False, got {fused!r}")
        self.fused = bool(fused)
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
        if self.fused and self.net.backend == "cython":
            self._fit_fused(run, Xv, yv)
            return run.history(copy=False)
        for _ in range(self.epochs):
            run.stopped = self._run_epoch(run)
            if run.stopped:
                break
            run.stopped = self._end_epoch(run, Xv, yv)
            if run.stopped:
                break
        return run.history(copy=False)

    def _run_epoch(self, run: _Run) -> str | None:
        """One epoch of mini-batch steps, one kernel call per layer (the per-op path).

        Appends to run.step_loss / run.lr / run.epoch_loss; returns a stop reason or None."""
        net, engine, opt = self.net, self.net._engine, self.optimizer
        X, y, n, batch = run.X, run.y, run.X.shape[0], run.batch
        epoch = self.epoch_count
        order = self.rng.permutation(n) if self.shuffle else None
        total = 0.0
        run.all_zero = True
        if run.last_good is None:
            run.last_good = net._params.copy()
        for start in range(0, n, batch):
            if order is not None:
                idx = order[start:start + batch]
                Xb, yb = run.gather_buffers()
                Xb, yb = Xb[:idx.shape[0]], yb[:idx.shape[0]]
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

    # ------------------------------------------------------------------ fused path
    def _fit_fused(self, run: _Run, Xv, yv) -> None:
        """All epochs of a fit through the fused kernel, in calls of one or more whole epochs."""
        net, opt = self.net, self.optimizer
        fused = net._engine.fused(run.batch)
        classes = self.loss == "cross_entropy"
        adam = opt.name == "adam"
        fused.bind(run.X, None if classes else run.y, run.y if classes else None,
                   opt.exp_avg if adam else opt.buffer, opt.exp_avg_sq if adam else None, self.loss, opt.name,
                   momentum=getattr(opt, "momentum", 0.0), dampening=getattr(opt, "dampening", 0.0),
                   weight_decay=opt.weight_decay, nesterov=getattr(opt, "nesterov", False),
                   beta1=getattr(opt, "beta1", 0.9), beta2=getattr(opt, "beta2", 0.999),
                   eps=getattr(opt, "eps", 1e-8), divergence_factor=self.divergence_factor)
        # Between two epochs Python must run for validation, callbacks, a schedule's epoch_end and the
        # diagnostics (which look at the weights of that epoch); otherwise one call takes several
        # epochs (bounded so the row orders stay small).
        between = Xv is not None or self.callbacks or hasattr(self.schedule, "epoch_end") or self.diagnose
        most = 1 if between else max(1, _ORDER_BUDGET // run.X.shape[0])
        try:
            end = self.epoch_count + self.epochs
            while self.epoch_count < end and not run.stopped:
                run.stopped = self._run_epochs_fused(run, fused, min(end - self.epoch_count, most), Xv, yv)
        finally:
            fused.unbind()

    def _run_epochs_fused(self, run: _Run, fused, count: int, Xv, yv) -> str | None:
        """Up to ``count`` epochs in one kernel call, then the between-epoch checks of each; returns a
        stop reason or None. The kernel returns early after an epoch of all-zero gradients, so the
        zero-gradient stop is checked before anything further is trained."""
        n, spe = run.X.shape[0], run.steps_per_epoch
        orders = None
        if self.shuffle:
            rng_state = self.rng.bit_generator.state
            orders = run.orders(count)
            for e in range(count):
                orders[e] = self.rng.permutation(n)
        steps = count * spe
        lrs, lr_error = self._fused_lrs(run, steps)
        if lr_error is not None:
            steps = len(lrs)
            if steps == 0:
                raise lr_error
        losses = run.step_loss.reserve(steps + 1)  # + 1: the kernel writes a diverging loss there
        opt = self.optimizer
        done, status, run.first_loss, zero_epoch = fused.run(
            orders, lrs, losses, run.totals(count), steps, spe, opt.steps, run.first_loss)
        run.step_loss.commit(done)
        run.lr.reserve(done)[:] = lrs[:done] if len(lrs) > 1 else lrs[0]
        run.lr.commit(done)
        self.step_count += done
        opt.steps += done
        # the last step attempted: the one that diverged or failed, else the last one run
        last = done if status == "loss" or lr_error is not None else done - 1
        completed = done // spe if status != "update" else last // spe
        if self.shuffle:
            # rewind the generator to where the per-op path would be: one draw per epoch begun
            begun = last // spe + 1
            if begun < count:
                self.rng.bit_generator.state = rng_state
                for _ in range(begun):
                    self.rng.permutation(n)
        totals = run.totals(count)
        if completed > 1:
            # several epochs per call only when nothing runs between them and none but the last can
            # have had all-zero gradients: their checks reduce to counting them
            run.epoch_loss.extend((totals[:completed - 1] / n).tolist())
            self.epoch_count += completed - 1
        if completed:
            run.epoch_loss.append(totals[completed - 1] / n)
            run.all_zero = zero_epoch
            reason = self._end_epoch(run, Xv, yv)
            if reason:
                return reason
        epoch = self.epoch_count
        if status == "loss":
            value = float(losses[done])
            lr = float(lrs[done] if len(lrs) > 1 else lrs[0])
            return run.diverged(self.step_count, epoch, self._divergence(value, run.first_loss), value, lr)
        if status == "update":
            lr = float(lrs[done - 1] if len(lrs) > 1 else lrs[0])
            return run.diverged(self.step_count - 1, epoch,
                                f"the update with lr={lr:g} made a parameter non-finite",
                                float(losses[done - 1]), lr)
        if lr_error is not None:
            raise lr_error
        return None

    def _fused_lrs(self, run: _Run, steps: int):
        """The learning rates of the next ``steps`` steps (one value when constant) and, if the
        schedule fails on one of them, its exception (the rates then stop before that step)."""
        if self.schedule is None:
            return np.array([self.lr]), None
        lrs = np.empty(steps)
        for g in range(steps):
            try:
                lrs[g] = self._scheduled_lr(self.step_count + g, self.epoch_count + g // run.steps_per_epoch)
            except Exception as exc:  # noqa: BLE001 - re-raised after the steps before it, as per-op
                return lrs[:g], exc
        return lrs, None

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
        return self._scheduled_lr(self.step_count, self.epoch_count)

    def _scheduled_lr(self, step: int, epoch: int) -> float:
        return V.check_float(f"the learning rate schedule.lr returned at step {step}",
                             self.schedule.lr(step, epoch), minimum=0.0)

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


# Row orders of the epochs of one fused call: at most this many entries (epochs x samples).
_ORDER_BUDGET = 1 << 17


class _Series:
    """A float64 series that grows by doubling: recording a step allocates nothing (amortised)."""

    def __init__(self, capacity: int):
        self.data = np.empty(capacity)
        self.size = 0

    def __len__(self) -> int:
        return self.size

    def reserve(self, count: int) -> np.ndarray:
        """A writable view of the next ``count`` slots (filled by the caller, then ``commit``)."""
        need = self.size + count
        if need > len(self.data):
            grown = np.empty(max(need, 2 * len(self.data)))
            grown[:self.size] = self.data[:self.size]
            self.data = grown
        return self.data[self.size:need]

    def commit(self, count: int) -> None:
        self.size += count

    def append(self, value: float) -> None:
        self.reserve(1)[0] = value
        self.size += 1

    def extend(self, values) -> None:
        self.reserve(len(values))[:] = values
        self.size += len(values)

    def array(self) -> np.ndarray:
        """The values so far (a view: a new fit records into a new series)."""
        return self.data[:self.size]


class _Run:
    """The state of one ``fit``: data, batch buffers, what has been recorded, the last good weights."""

    def __init__(self, trainer: Trainer, X, y):
        self.trainer, self.X, self.y = trainer, X, y
        self.batch = min(trainer.batch_size, X.shape[0])
        self.steps_per_epoch = -(-X.shape[0] // self.batch)
        self._gather = None
        self.last_good = None  # per-op path: the weights behind the last finite loss (a copy)
        self.first_loss: float | None = None
        self.all_zero = False  # every mini-batch gradient of the current epoch was exactly zero
        # room for every step of the fit up front (up to a limit; beyond it the series grow)
        capacity = min(max(trainer.epochs, 1) * self.steps_per_epoch + 1, 1 << 20)
        self.step_loss, self.lr = _Series(capacity), _Series(capacity)
        self.epoch_loss: list[float] = []
        self.val_loss: list[float] = []
        self.warnings: list[TrainingWarning] = []
        self.stopped: str | None = None
        self._orders = self._totals = None

    def gather_buffers(self):
        """(Xb, yb): the per-op path's buffers for shuffled batches, allocated once per fit."""
        if self._gather is None:
            X, y = self.X, self.y
            self._gather = (np.empty((self.batch, X.shape[1]), X.dtype), np.empty((self.batch,) + y.shape[1:], y.dtype))
        return self._gather

    def orders(self, epochs: int) -> np.ndarray:
        """An (epochs, n) int64 buffer for row orders, reused across the calls of a fit."""
        if self._orders is None or self._orders.shape[0] < epochs:
            self._orders = np.empty((epochs, self.X.shape[0]), np.int64)
        return self._orders[:epochs]

    def totals(self, epochs: int) -> np.ndarray:
        """A float64 buffer for per-epoch loss totals, reused across the calls of a fit."""
        if self._totals is None or self._totals.shape[0] < epochs:
            self._totals = np.empty(epochs)
        return self._totals[:epochs]

    def diverged(self, step: int, epoch: int, reason: str, loss: float, lr: float) -> str:
        """Restore the last good weights (the fused kernel has done so already), reset the optimizer
        state (it belongs to the diverging trajectory), record why, and return the stop reason."""
        if self.last_good is not None:
            self.trainer.net._params[...] = self.last_good
        self.trainer.optimizer.reset()
        message = f"diverged at step {step} (epoch {epoch}): {reason}"
        self.warnings.append(TrainingWarning("divergence", message, step, epoch, {"loss": loss, "lr": lr}))
        return message

    def history(self, copy: bool = True) -> History:
        """The History so far; ``copy=False`` (the final one) hands over the recorded arrays."""
        step_loss, lr = self.step_loss.array(), self.lr.array()
        if copy:
            step_loss, lr = step_loss.copy(), lr.copy()
        return History(step_loss, np.asarray(self.epoch_loss, float), np.asarray(self.val_loss, float), lr,
                       list(self.warnings), self.stopped, len(self.epoch_loss), len(self.step_loss))

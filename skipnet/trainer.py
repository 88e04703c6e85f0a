"""Trainer and History: mini-batch training of a Network in place, with guards that say why it stopped.

Semantics (docs/design.md section 3):

- ``fit`` trains the network in place and keeps the optimizer state, so a second ``fit`` continues.
- ``History.step_loss[i]`` is the loss of mini-batch i before its update; ``epoch_loss[e]`` is the mean
  of epoch e's per-sample losses measured that way (step losses weighted by batch size; with sample
  weights, by the batch's sum of weights).
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
of steps in one kernel call without the GIL (skipnet._kernels.FusedNet), several epochs per call unless
callbacks need the weights of each epoch: the kernel computes the validation loss and keeps the best
weights (``restore_best``) at each epoch's end itself, with the per-op path's bits. The diagnostics read
statistics the kernel keeps as it trains, and the kernel applies the plateau rule, keeping a copy of the
weights of the epoch where a plateau begins (a second plateau in one call ends it); a schedule with
feedback says through ``fixed_epochs()`` how many epochs its rates hold whatever the losses (one call
may take that many; its ``epoch_end`` is fed their losses afterwards). It follows the per-op path
(``fused=False``, one kernel call per layer) step for step, with the same results, guards, warnings,
messages and random draws. A schedule's rates are computed before each call: once per epoch when
``schedule.per == "epoch"`` (its rate then depends on the epoch alone), all at once through
``schedule.rates(steps, epochs)`` when it has one, else step by step.

Schedules: ``schedule`` is None (constant ``lr``) or an object with ``lr(step, epoch) -> float`` (step
counts every mini-batch of this trainer, from 0), and optionally ``start(base_lr, steps_per_epoch,
epochs)``, called at the start of each fit, ``epoch_end(epoch, loss)``, called with the epoch's
validation loss when there is one, else its training loss, ``fixed_epochs()``, ``per`` and ``rates``
(above). See skipnet.schedules.
Callbacks: callables ``callback(trainer, epoch, history)`` run after every epoch; a truthy return stops
training, with ``stopped_reason`` the returned string, or ``"callback"`` for any other truthy value. A
callback object's ``on_fit_start(trainer, has_validation)`` runs when ``fit`` starts (a ValueError there,
e.g. a validation loss to monitor without validation data, refuses the fit before any step). See
skipnet.callbacks (EarlyStopping, ModelCheckpoint).

Best epoch: ``History.best_epoch`` is the epoch of the fit (an index into ``epoch_loss`` / ``val_loss``)
with the lowest monitored loss (validation when given, else training), ``History.best_loss`` that loss.
With ``restore_best=True`` a copy of the weights is kept at each improvement (only then: no cost on
other epochs) and the fit ends with the weights of its best epoch, whatever ended it (the last epoch,
a callback, the zero-gradient stop or a divergence); the optimizer state is left as it was.

Diagnostics (``diagnose=True``, the default): skipnet.diagnostics.TrainingMonitor adds structured
``History.warnings``: ``"plateau"`` once per flat stretch of the epoch losses, with its cause (ln 2 /
constant output / dead layer / zero or tiny gradient / saddle) in ``data["cause"]``, worked out when the
warning is first read (from the weights of its epoch, kept with it), and ``"dead_units"`` when ReLU
units are first seen dead (layer, fraction, epoch): z <= 0 for every training sample of an epoch's steps,
as the kernels record while training (per hidden ReLU unit, the largest z of the epoch), checked after
the first epoch, every ``diagnose_every`` epochs and on the zero-gradient stop. They cost a
fit almost nothing. Other kinds: ``"zero_gradient"`` and ``"divergence"`` (the stops above).
"""

from __future__ import annotations

import math
import signal
import threading
from dataclasses import dataclass, field

import numpy as np

from . import _kernels as K
from . import _validation as V
from ._deprecation import keyword_from
from ._record import (
    CallRates,
    EpochRuns,
    RateRecord,
    Series,
    WrittenOnRead,
    all_same,
)
from ._settings import Checked, Fixed, Setting
from .diagnostics import DeadUnitsFound, PlateauFound, TrainingMonitor
from .network import Network
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


class _ExplainedOnRead(TrainingWarning):
    """A TrainingWarning whose message and data are worked out when first read (a plateau's cause, from
    the weights of its epoch kept with it; the dead units' report), so that finding them costs a fit
    almost nothing."""

    def __init__(self, kind: str, step: int | None, epoch: int | None, found: PlateauFound | DeadUnitsFound):
        self.kind, self.step, self.epoch, self.found = kind, step, epoch, found

    @property
    def message(self) -> str:
        return self.found.explain()[0]

    @property
    def data(self) -> dict:
        return self.found.explain()[1]


@dataclass
class History:
    """What one ``fit`` did. Arrays are float64; ``lr[i]`` is the rate used by step i (read-only when
    every step had the same rate: one value seen at every index, not an array filled per fit; written
    out when first read when a built-in schedule set the rates).

    ``best_epoch``: index (into ``epoch_loss``, and ``val_loss`` when validated) of the epoch with the
    lowest monitored loss, the validation loss when the fit had validation data, else the training
    loss; None when no epoch completed with a finite loss. ``best_loss``: that loss (NaN when none)."""

    step_loss: np.ndarray
    epoch_loss: np.ndarray
    val_loss: np.ndarray
    lr: np.ndarray = WrittenOnRead()  # noqa: RUF009 - a descriptor, one for the class: each History keeps its own value
    warnings: list
    stopped_reason: str | None
    epochs_run: int
    steps_run: int

    def __getstate__(self) -> dict:  # pickle and copy: the rates written out (a deferred record holds a function)
        _ = self.lr
        return dict(self.__dict__)

    @property
    def best_epoch(self) -> int | None:
        monitored = self.val_loss if len(self.val_loss) else self.epoch_loss
        finite = np.flatnonzero(np.isfinite(monitored))
        return int(finite[np.argmin(monitored[finite])]) if finite.size else None

    @property
    def best_loss(self) -> float:
        best = self.best_epoch
        return float("nan") if best is None else float((self.val_loss if len(self.val_loss) else
                                                        self.epoch_loss)[best])

    @property
    def final_loss(self) -> float:
        return float(self.epoch_loss[-1]) if len(self.epoch_loss) else float("nan")

    def _repr_html_(self) -> str:  # notebooks: the loss curve inline
        from ._views import history_html

        return history_html(self)


def _schedule(name, schedule):
    if schedule is not None and not callable(getattr(schedule, "lr", None)):
        raise TypeError(f"{name} must be None or an object with an lr(step, epoch) method "
                        "(see skipnet.schedules)")
    return schedule


def _seed(name, seed):
    return None if seed is None else V.check_int(name, seed, minimum=0)


def _generator(name, rng):
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"{name} must be a numpy.random.Generator (e.g. numpy.random.default_rng(seed)), got "
                        f"{type(rng).__name__}")
    return rng


def _divergence_factor(name, factor):
    return None if factor is None else V.check_float(name, factor, minimum=1.0, include_min=False)


def _callbacks(name, callbacks):
    if callable(callbacks) or not isinstance(callbacks, (list, tuple, type(None))):
        raise TypeError(f"{name} must be a list of callables, got {callbacks!r}")
    callbacks = list(callbacks or ())
    for cb in callbacks:
        if not callable(cb):
            raise TypeError(f"{name} must be callables, got {cb!r}")
    return callbacks


def _loss(name, loss):
    return V.check_choice(name, loss, V.LOSSES)


def _positive_float(name, value):
    return V.check_float(name, value, positive=True)


# counts past this are no count of steps or epochs a fit can reach (and overflow the kernels' integers)
MAX_COUNT = 2**62


def _count(minimum):
    return lambda name, value: V.check_int(name, value, minimum=minimum, maximum=MAX_COUNT)


_BOUND = ("a Trainer is bound to its network and optimizer (the optimizer's state belongs to that "
          "network); make a new Trainer for another network or optimizer")


class Trainer(Checked):
    """Mini-batch training of ``net`` in place.

    Parameters mirror torch.optim: ``optimizer`` "sgd" (``momentum``, ``dampening``, ``nesterov``,
    ``weight_decay``) or "adam" (``betas``, ``eps``, ``weight_decay``); ``loss`` one of "l1", "mse",
    "bce", "cross_entropy". ``fused`` (cython backend): run whole epochs per kernel call (default) or one
    call per layer.

    ``seed`` drives the shuffling only (the initialisation belongs to the Network) and defaults to 0,
    unlike ``Network(seed=None)``: the network's seed picks a starting point, and fresh entropy there
    makes repeated runs explore different ones, while the trainer's seed only orders the batches, so a
    fixed default makes ``Trainer(net).fit(X, y)`` from a seeded network reproducible, bit for bit,
    without being asked to. ``seed=None`` seeds the shuffling from fresh entropy.

    The first six parameters (``net, loss, optimizer, lr, momentum, weight_decay``) may be passed by
    position; passing ``batch_size`` or a later one positionally still works but is deprecated
    (FutureWarning): pass them by keyword.

    Every setting may be changed between fits and is validated when assigned, with the constructor's
    checks; ``net`` and ``optimizer`` are fixed (the optimizer's settings are its own attributes).
    Ctrl-C during ``fit`` (in the main thread) takes effect at the next whole step, within about 50 ms:
    the network, optimizer, counters, schedule and ``trainer.history`` are those after that step, and
    ``resume()`` finishes the interrupted fit exactly as if it had never stopped.
    """

    net = Fixed(_BOUND, "The Network trained in place.")
    optimizer = Fixed(_BOUND, "The optimizer (skipnet.optimizers.SGD or Adam) bound to ``net``.")
    loss = Setting(_loss, "'l1', 'mse', 'bce' (logits, 0/1 targets) or 'cross_entropy' (logits, classes).")
    lr = Setting(_positive_float, "Learning rate (> 0), or the base rate of a schedule.")
    batch_size = Setting(lambda name, value: V.check_int(name, value, minimum=1),
                         "Rows per mini-batch (more than the data: one batch of all rows).")
    epochs = Setting(_count(0), "Epochs per fit.")
    shuffle = Setting(V.check_bool, "Draw a fresh row order for each epoch (else rows in order).")
    schedule = Setting(_schedule, "None (constant lr) or a schedule with lr(step, epoch).")
    divergence_factor = Setting(_divergence_factor,
                                "Stop when a loss exceeds this times the fit's first loss (None: never).")
    callbacks = Setting(_callbacks, "Callables callback(trainer, epoch, history) run after each epoch.")
    diagnose = Setting(V.check_bool, "Add plateau and dead-unit warnings between epochs.")
    diagnose_every = Setting(_count(1), "Epochs between dead-unit checks.")
    restore_best = Setting(V.check_bool, "End each fit with the weights of its best epoch (History.best_epoch).")
    fused = Setting(V.check_bool, "On the cython backend, whole epochs per kernel call.")
    step_count = Setting(_count(0), "Mini-batch steps taken by this trainer (the schedules' step).")
    epoch_count = Setting(_count(0), "Epochs completed by this trainer (the schedules' epoch).")
    rng = Setting(_generator, "The generator the row orders are drawn from (assigning ``seed`` makes a new one).")

    @keyword_from("batch_size")
    def __init__(self, net, loss: str = "l1", optimizer: str = "sgd", lr: float = 0.01,
                 momentum: float = 0.0, weight_decay: float = 0.0, batch_size: int = 32, epochs: int = 20,
                 shuffle: bool = True, schedule=None, seed: int | None = 0, *, dampening: float = 0.0,
                 nesterov: bool = False, betas=(0.9, 0.999), eps: float = 1e-8,
                 divergence_factor: float | None = 1e6, callbacks=(), diagnose: bool = True,
                 diagnose_every: int = 10, fused: bool = True, restore_best: bool = False):
        if not isinstance(net, Network):
            raise TypeError(f"net must be a skipnet.Network, got {type(net).__name__}")
        Trainer.net.init(self, net)
        self.loss = loss
        self.lr = lr
        self.batch_size = batch_size
        self.epochs = epochs
        self.shuffle = shuffle
        self.schedule = schedule
        self.seed = seed
        self.divergence_factor = divergence_factor
        self.callbacks = callbacks
        self.diagnose = diagnose
        self.diagnose_every = diagnose_every
        self.fused = fused
        self.restore_best = restore_best
        self._monitor: TrainingMonitor | None = None  # the diagnostics' monitor, restarted for each fit
        self._snapshot: np.ndarray | None = None  # a fused call's weights where a plateau began
        self._unit_rows: np.ndarray | None = None  # a fused call's dead-unit statistics per epoch
        # what a fit holds in all, in parameter-sized buffers: the network's weights and gradients, the
        # optimizer state (SGD 1, Adam 2) and the last good weights (fused: the spare; per-op: a copy)
        params = net.internals.params
        V.check_memory(f"training a network of {params.size} parameters (weights, gradients, optimizer "
                       "state and the last good weights)", (4 if optimizer == "sgd" else 5) * params.nbytes)
        Trainer.optimizer.init(self, make_optimizer(net, optimizer, momentum=momentum, dampening=dampening,
                                                    nesterov=nesterov, weight_decay=weight_decay, betas=betas,
                                                    eps=eps))
        self.step_count = 0
        self.epoch_count = 0
        self.history: History | None = None  # of the last fit, or of the interrupted one so far
        self._interrupted: tuple | None = None  # (run, Xv, yv) of an interrupted fit

    @property
    def seed(self) -> int | None:
        """Seed of the shuffling generator (assigning it restarts the generator)."""
        return self._seed

    @seed.setter
    def seed(self, seed) -> None:
        self._seed = _seed("seed", seed)
        self.rng = np.random.default_rng(self._seed)

    # ------------------------------------------------------------------ fit
    def fit(self, X, y, validation=None, sample_weight=None) -> History:
        """Train for ``epochs`` epochs on X (n, n_inputs), y; return the History of this fit.

        sample_weight: None, or (n,) finite weights >= 0, not all 0. Each step's loss is then its batch's
        weighted mean sum_i w_i l_i / sum_i w_i (PyTorch's ``(loss * w).sum() / w.sum()``; a batch whose
        weights are all 0 has loss 0 and a zero gradient), and ``epoch_loss`` the weighted mean over the
        epoch. An integer weight counts its row that many times: with batches that hold the same rows
        (``shuffle=False`` and ``batch_size >= n``) the fit equals one on the repeated rows, to rounding;
        equal weights are the unweighted fit bit for bit. ``validation`` is (X_val, y_val), or
        (X_val, y_val, sample_weight_val) for a weighted validation loss (unweighted otherwise)."""
        core = self.net.internals
        self.optimizer.validate()
        X, y = core.check_batch(X, y, self.loss)
        weight = V.as_sample_weight(sample_weight, X.shape[0])
        Xv = yv = None
        if validation is not None:
            Xv, yv = V.as_validation(validation, self.net.n_inputs, self.net.n_outputs, self.loss, self.net.dtype)
            core.check_rows(Xv.shape[0])
        validation_weight = None if validation is None else V.as_validation_weight(validation, Xv.shape[0])
        self._start_callbacks(Xv is not None)
        with core.writing():  # one writer at a time per network
            self._interrupted = None
            run = _Run(self, X, y, weight)
            run.validation_weight = validation_weight
            if self.schedule is not None and hasattr(self.schedule, "start"):
                self.schedule.start(self.lr, run.steps_per_epoch, self.epochs)
            return self._train(run, Xv, yv)

    def _start_callbacks(self, has_validation: bool) -> None:
        """Each callback object's ``on_fit_start`` (resets its state; may refuse the fit)."""
        for cb in self.callbacks:
            start = getattr(cb, "on_fit_start", None)
            if callable(start):
                start(self, has_validation)

    def resume(self) -> History:
        """Finish the fit that Ctrl-C interrupted, from its last whole step, with the data, validation
        and epochs it was given; return the History of the whole fit (bit for bit the one an
        uninterrupted fit returns). RuntimeError when there is nothing to resume."""
        if self._interrupted is None:
            raise RuntimeError("there is no interrupted fit to resume (a fit was not interrupted, or a new "
                               "fit has started since)")
        with self.net.internals.writing():
            run, Xv, yv = self._interrupted
            self._interrupted = None
            return self._train(run, Xv, yv)

    def _train(self, run: _Run, Xv, yv) -> History:
        with _deferred_interrupt() as interrupt:
            run.interrupt, run.validation = interrupt, (Xv, yv)
            # what the schedule is: asked once per fit (resumed too), not per kernel call or epoch
            traits = _builtin_traits(self.schedule)
            run.builtin_schedule, run.rule_schedule = traits is not None, traits is not None and traits[1]
            run.feedback = traits[0] if traits is not None else hasattr(self.schedule, "epoch_end")
            try:
                if self.fused and self.net.backend == "cython":
                    self._fit_fused(run, Xv, yv)
                else:
                    while not run.stopped and self.epoch_count < run.end_epoch:
                        run.stopped = self._run_epoch(run)
                        if run.stopped:
                            break
                        run.stopped = self._end_epoch(run, Xv, yv, run.unit_max[None])
                        self._honour_interrupt(run)
                self._honour_interrupt(run)  # pressed during the last step: the fit is whole, say so
                run.restore_best()
            except _Interrupted:
                self.history = run.history()
                finish = ("trainer.resume() finishes the fit" if self._interrupted is not None
                          else "the fit had nothing left to do")
                raise KeyboardInterrupt(
                    f"training interrupted after step {self.step_count} (epoch {self.epoch_count}); "
                    f"trainer.history holds what was done, {finish}") from None
        self.history = run.history(copy=False)
        return self.history

    def _honour_interrupt(self, run: _Run) -> None:
        """At a whole step: if Ctrl-C was pressed, keep the run for resume() and stop."""
        if run.interrupt is not None and run.interrupt.pressed and not run.stopped:
            run.rewind_orders()
            if self.epoch_count < run.end_epoch:
                self._interrupted = (run, *run.validation)
            raise _Interrupted

    def _run_epoch(self, run: _Run) -> str | None:
        """The rest of the current epoch, one kernel call per layer per step (the per-op path).

        Appends to run.step_loss / run.lr / run.epoch_loss; returns a stop reason or None."""
        core, opt = self.net.internals, self.optimizer
        engine = core.engine
        X, y, n, batch = run.X, run.y, run.X.shape[0], run.batch
        epoch = self.epoch_count
        # the dead-unit statistics of the epochs the monitor checks (TrainingMonitor)
        unit_max = run.unit_max if self.diagnose and len(run.epoch_loss) % self.diagnose_every == 0 else None
        if run.epoch_step == 0:
            run.order = _permutation(self.rng, n) if self.shuffle else None
            run.epoch_total, run.all_zero = 0.0, True
            run.unit_max.fill(-np.inf)
        if run.last_good is None:
            run.last_good = core.params.copy()
        for j in range(run.epoch_step, run.steps_per_epoch):
            start = j * batch
            if run.order is not None:
                idx = run.order[start:start + batch]
                Xb, yb, wb = run.gather_buffers()
                Xb, yb = Xb[:idx.shape[0]], yb[:idx.shape[0]]
                np.take(X, idx, axis=0, out=Xb)
                np.take(y, idx, axis=0, out=yb)
                if wb is not None:
                    wb = wb[:idx.shape[0]]
                    np.take(run.weight, idx, out=wb)
            else:
                Xb, yb = X[start:start + batch], y[start:start + batch]
                wb = None if run.weight is None else run.weight[start:start + batch]
            lr = self._current_lr()
            if wb is None:
                value, rows = engine.loss_and_gradients(Xb, yb, self.loss, unit_max=unit_max), Xb.shape[0]
            else:  # rows: the batch's sum of weights, the fused path's arithmetic
                value, rows = engine.weighted_loss_and_gradients(Xb, yb, self.loss, wb, unit_max)
            if run.first_loss is None:
                run.first_loss = value
            reason = self._divergence(value, run.first_loss)
            if reason:
                return run.diverged(self.step_count, epoch, reason, value, lr)
            run.last_good[...] = core.params
            run.step_loss.append(value)
            run.lr.record(lr, 1)
            run.epoch_total += value * rows
            flags = opt.step(lr)
            run.all_zero = run.all_zero and not flags.grad_nonzero
            self._advance(steps=1)
            run.epoch_step = j + 1
            if flags.nonfinite:
                return run.diverged(self.step_count - 1, epoch,
                                    f"the update with lr={lr:g} made a parameter non-finite", value, lr)
            if run.epoch_step < run.steps_per_epoch:
                self._honour_interrupt(run)
        run.epoch_step = 0
        run.epoch_loss.append(run.epoch_total / run.weight_total)
        return None

    # ------------------------------------------------------------------ fused path
    def _fit_fused(self, run: _Run, Xv, yv) -> None:
        """All epochs of a fit through the fused kernel, in calls of one or more whole epochs."""
        with self.net.internals.engine.fused(run.batch) as fused:
            classes = self.loss == "cross_entropy"
            fused.bind(run.X, None if classes else run.y, run.y if classes else None, loss=self.loss,
                       divergence_factor=self.divergence_factor, sample_weight=run.weight,
                       **self.optimizer.fused_arguments())
            # Between two epochs Python must run for callbacks (they look at the weights of that epoch);
            # the kernel computes the validation loss and keeps the best weights at each epoch's end
            # (when its chunked validation pass gives _evaluate's bits: FusedNet.validates_exactly).
            # Otherwise one call takes several epochs, bounded so the row orders and dead-unit
            # statistics stay small, and by the epochs a schedule's rates stay fixed whatever the losses.
            # The diagnostics read statistics the kernel keeps; the kernel copies the weights of the
            # epoch where a plateau begins, so it is explained with them (a second plateau ends the call).
            in_kernel = not self.callbacks and (Xv is None or fused.validates_exactly(Xv.shape[0]))
            if in_kernel and Xv is not None:
                fused.bind_validation(Xv, None if classes else yv, yv if classes else None,
                                      run.validation_weight)
            checks = in_kernel and (Xv is not None or self.restore_best)
            most = 1 if not in_kernel else max(1, _ORDER_BUDGET // max(run.X.shape[0], run.unit_max.shape[0]))
            # a built-in schedule whose feedback rule the kernel applies (ReduceLROnPlateau) bounds no call
            run.rule_in_kernel = in_kernel and run.rule_schedule
            horizon = MAX_COUNT if run.rule_in_kernel or not run.feedback else None
            try:
                while self.epoch_count < run.end_epoch and not run.stopped:
                    count = min(run.end_epoch - self.epoch_count, most, horizon or self._schedule_horizon())
                    run.stopped = self._run_epochs_fused(run, fused, count, Xv, yv, checks)
                    self._honour_interrupt(run)
            finally:  # however the fit ends here (an exception too), orders drawn ahead are given back
                fused.unbind()
                run.rewind_orders()

    def _run_epochs_fused(self, run: _Run, fused, count: int, Xv, yv, checks: bool = False) -> str | None:
        """Up to ``count`` epochs (the one in progress first) in one kernel call, which pauses after
        about PAUSE_SECONDS so that Ctrl-C is seen, then the between-epoch checks of each epoch it
        completed; returns a stop reason or None. The kernel returns early after an epoch of all-zero
        gradients, so the zero-gradient stop is checked before anything further is trained. ``checks``:
        the kernel computes each epoch's validation loss (validation bound) and keeps the best weights
        (restore_best) itself."""
        spe, j0 = run.steps_per_epoch, run.epoch_step
        orders = run.orders_for(count) if self.shuffle else None
        count = count if orders is None else orders.shape[0]
        steps = count * spe - j0
        if run.rule_in_kernel:  # the kernel applies the schedule's rule: its rates are known afterwards
            rule = self.schedule.rule_state()  # (mode, ..., cooldown, current, best, counters)
            current, reduced = rule[8], run.reduced(count)
            lrs, lr_error, rates = np.array([current]), None, None
        else:
            rates = self._fused_rates(run, steps)
            lrs, lr_error = rates.values, rates.error
            if lr_error is not None:
                steps = rates.steps
                if steps == 0:
                    raise lr_error
        losses = run.step_loss.reserve(steps + 1)  # + 1: the kernel writes a diverging loss there
        totals = run.totals(count)
        opt = self.optimizer
        stats = self._diagnostics_arguments(run, count) if self.diagnose else {}
        if checks:
            stats.update(run.epoch_checks(count, Xv is not None, self.restore_best))
        if rates is None:
            stats["reduce_on_plateau"] = (*rule, run.weight_total, reduced)
        per_epoch = rates is not None and rates.epochs is not None
        done, status, run.first_loss, zero_epoch, epoch_total, epoch_zero = fused.run(
            orders, lrs, losses, totals, steps, spe, opt.steps, run.first_loss, j0, run.epoch_total,
            run.all_zero, PAUSE_SECONDS if run.interrupt is not None else 0.0, lrs_per_epoch=per_epoch,
            rate_plan=None if rates is None else rates.plan, **stats)
        if checks and self.restore_best:
            run.best_value = float(stats["best_value"][0])
        run.step_loss.commit(done)
        if rates is None:
            rates = self._rule_rates(run, lrs, reduced, done, status, fused.rule_state)
        # the rate of the step that diverged (its loss) or failed (its update), read before the buffer goes
        failed_lr = rates.at(done if status == "loss" else done - 1) if status in ("loss", "update") else None
        rates.finish(run.lr, done)
        self._advance(steps=done)
        opt.count_steps(done)
        position = j0 + done  # steps into the epochs of this call
        # the last step attempted: the one that diverged or failed, else the last one run
        last = position if status == "loss" or lr_error is not None else position - 1
        completed = position // spe if status != "update" else last // spe
        run.use_orders(begun=last // spe + 1, completed=completed)
        run.epoch_step = position % spe if status in ("ok", "paused", "plateau") else 0
        run.epoch_total, run.all_zero = epoch_total, epoch_zero
        if completed:
            # several epochs per call only when nothing but schedule feedback and the diagnostics runs
            # between them, and none but the last can have had all-zero gradients or begun a plateau
            run.epoch_loss.extend([total / run.weight_total for total in totals[:completed].tolist()])
            run.all_zero = zero_epoch  # of the epoch just completed (the kernel stops after such a one)
            unit_epochs, val_losses = stats.get("unit_epochs"), stats.get("val_losses")
            level, plateaus = ..., []
            if self.diagnose:  # where the kernel found plateaus beginning, with those epochs' weights
                level = fused.watch_level
                if 0 <= fused.plateau_epoch < completed:
                    plateaus.append((fused.plateau_epoch, stats["plateau_params"]))
                if status == "plateau":
                    plateaus.append((completed - 1, None))
            # unit_epochs: the rows of this call's epochs (the buffer may hold more)
            reason = self._end_epoch(run, Xv, yv, unit_epochs, completed, level,
                                     None if val_losses is None else val_losses[:completed], checks, plateaus,
                                     fused.dead_seen if self.diagnose else None)
            run.all_zero = epoch_zero  # of the epoch in progress
            if reason:
                return reason
        epoch = self.epoch_count
        if status == "loss":
            value = float(losses[done])
            return run.diverged(self.step_count, epoch, self._divergence(value, run.first_loss), value,
                                failed_lr)
        if status == "update":
            lr = failed_lr
            return run.diverged(self.step_count - 1, epoch,
                                f"the update with lr={lr:g} made a parameter non-finite",
                                float(losses[done - 1]), lr)
        if lr_error is not None:
            raise lr_error
        return None

    def _fused_rates(self, run: _Run, steps: int) -> CallRates:
        """The learning rates of the next ``steps`` steps, for one kernel call."""
        schedule = self.schedule
        if schedule is None:
            return CallRates(np.array([self.lr]), steps, [(steps, float(self.lr))])
        per = getattr(schedule, "per", None)
        if run.builtin_schedule:
            pieces = getattr(schedule, "pieces", None)
            if pieces is None:  # ReduceLROnPlateau with its rule outside the kernel: one rate per epoch of the call
                epochs = (run.epoch_step + steps - 1) // run.steps_per_epoch + 1
                return _epoch_call_rates(schedule.epoch_rates(self.epoch_count, epochs), steps,
                                         run.steps_per_epoch, run.epoch_step, None)
            # planned (every other built-in schedule): the kernel computes the call's rates from the plan
            if per == "epoch":
                return CallRates.planned(pieces, self.epoch_count, steps, (run.epoch_step, run.steps_per_epoch))
            return CallRates.planned(pieces, self.step_count, steps)
        if per == "epoch":
            return self._epoch_rates(run, steps)
        lrs = np.empty(steps)
        spe, j0 = run.steps_per_epoch, run.epoch_step
        rates = getattr(schedule, "rates", None)
        if per == "step" and callable(rates):  # many rates in one call
            steps_of = np.arange(self.step_count, self.step_count + steps)
            # the epoch of step g is epoch_count + (j0 + g) // spe: each epoch's number spe times (an
            # integer division per step would cost more than the fused step itself on small networks)
            epochs_of = np.repeat(np.arange(self.epoch_count, self.epoch_count + (j0 + steps - 1) // spe + 1),
                                  spe)[j0:j0 + steps]
            lrs = np.asarray(rates(steps_of, epochs_of), dtype=np.float64)
            if lrs.shape == (steps,) and np.isfinite(lrs).all() and (lrs >= 0).all():
                lrs = lrs.copy()  # the record keeps it, and the schedule may keep it too
                return CallRates(lrs, steps, [(steps, lrs)])
            lrs = np.empty(steps)  # a rate that lr() refuses: step by step, to raise where it does
        for g in range(steps):
            try:
                lrs[g] = self._scheduled_lr(self.step_count + g, self.epoch_count + (j0 + g) // spe)
            except Exception as exc:  # noqa: BLE001 - re-raised after the steps before it, as per-op
                return CallRates(lrs[:g], g, [(g, lrs[:g])], exc)
        return CallRates(lrs, steps, [(steps, lrs)])

    def _epoch_rates(self, run: _Run, steps: int) -> CallRates:
        """The rates of a schedule of the user's with one rate per epoch: asked once per epoch of the call
        (with the epoch's first step, as the per-op path asks), given to the kernel as one value per
        epoch (_epoch_call_rates)."""
        spe, j0, first = run.steps_per_epoch, run.epoch_step, self.epoch_count
        epochs = (j0 + steps - 1) // spe + 1
        error, values = None, []
        for epoch in range(first, first + epochs):
            step = self.step_count if epoch == first else self.step_count + (epoch - first) * spe - j0
            try:
                values.append(self._scheduled_lr(step, epoch))
            except Exception as exc:  # noqa: BLE001 - re-raised after the steps before it, as per-op
                error = exc
                break
        if len(values) < epochs:  # the steps of the epochs before the refused rate
            steps = min(steps, len(values) * spe - j0) if values else 0
        return _epoch_call_rates(values, steps, spe, j0, error)

    def _rule_rates(self, run: _Run, lrs: np.ndarray, reduced: np.ndarray, done: int, status: str,
                    state: tuple) -> CallRates:
        """After a kernel call that applied the schedule's rule (ReduceLROnPlateau) to the epochs it
        completed: the rates of its steps (``lrs``, the call's one rate ``[first]``, until the rule lowered it,
        ``reduced[e]`` not NaN: after epoch e of the call), which the rule's state and reductions are handed
        back to."""
        first = lrs.item()
        spe, j0 = run.steps_per_epoch, run.epoch_step
        covered = done + (status == "loss")  # the steps ran, and the one whose loss diverged
        fed = (j0 + done - (status == "update")) // spe  # the epochs whose end the rule saw
        # the rule only ever lowers the rate: when it ends where it began, nothing was lowered (the usual call)
        lowered = [] if state[0] == first else \
            [(e, new) for e, new in enumerate(reduced[:fed].tolist()) if not math.isnan(new)]
        if fed:
            self.schedule.take_rule_state(state, [(self.epoch_count + e, new) for e, new in lowered] if lowered else ())
        if not lowered:
            return CallRates(lrs, covered, [(covered, first)])
        values = [first] * ((j0 + covered - 1) // spe + 1)  # one per epoch with a step covered
        for e, new in lowered:
            values[e + 1:] = [new] * (len(values) - e - 1)
        return _epoch_call_rates(values, covered, spe, j0, None)

    def _end_epoch(self, run: _Run, Xv, yv, unit_epochs=None, count: int = 1, level=...,
                   val_losses=None, kernel_checked: bool = False, plateaus=(), dead_seen=None) -> str | None:
        """Checks after the last ``count`` epochs (recorded in run.epoch_loss; count > 1 only without
        callbacks, and with validation or restore_best only when the fused kernel did their part):
        validation loss (``val_losses``: the kernel's, one per epoch, else evaluated here), the best
        weights (``kernel_checked``: the kernel kept them), schedule feedback, the zero-gradient stop
        (the last epoch), diagnostics (``unit_epochs``: their dead-unit statistics; ``level`` and
        ``plateaus``, ``dead_seen``: the fused kernel's plateau level after the last, the plateaus it
        found and whether it saw dead units, see TrainingMonitor.end_epochs), callbacks."""
        first = self.epoch_count
        epoch = first + count - 1  # the last
        self._advance(epochs=count)
        if Xv is not None:
            if val_losses is None:
                run.val_loss.append(self._evaluate(Xv, yv, run.validation_weight))
            else:
                run.val_loss.extend(val_losses.tolist())
        monitored = run.val_loss if Xv is not None else run.epoch_loss  # per epoch, these last
        if self.restore_best and not kernel_checked:
            run.keep_if_best(monitored[-1])
        if run.feedback and not run.rule_in_kernel:
            for e in range(first, epoch + 1):
                self.schedule.epoch_end(e, monitored[e - epoch - 1])
        stuck = run.all_zero and self._stuck(run.X, run.y, run.weight)
        if self.diagnose:  # a stuck epoch always checks its dead units: they explain the stop
            monitor = run.monitor or self._monitor_for(run)  # a fused call has restarted it
            for e, kind, message, data in monitor.end_epochs(epoch, run.epoch_loss, count, unit_epochs, stuck, level,
                                                             plateaus, dead_seen):
                run.warnings.append(_ExplainedOnRead(kind, None, e, message)
                                    if isinstance(message, (PlateauFound, DeadUnitsFound))
                                    else TrainingWarning(kind, message, None, e, data))
        if stuck:
            reason = ("zero gradient: the loss gradient over the whole training set is exactly 0 and the "
                      "optimizer has nothing left to apply, so no further step can change anything")
            dead = self._dead_summary(run.X)
            if dead:
                reason += f" ({dead})"
            run.warnings.append(TrainingWarning("zero_gradient", reason, None, epoch,
                                                {"loss": run.epoch_loss[-1]}))
            return reason
        for cb in self.callbacks:
            stop = cb(self, epoch, run.history())
            if stop:
                return stop if isinstance(stop, str) else "callback"
        return None

    # ------------------------------------------------------------------ helpers
    def _advance(self, steps: int = 0, epochs: int = 0) -> None:
        """Count ``steps`` more steps and ``epochs`` more epochs done. The counters are written past the
        settings' checks (a Python call per write, several per fit): counted here, they need only
        their bound checked."""
        step_count, epoch_count = self.step_count + steps, self.epoch_count + epochs
        if step_count > MAX_COUNT or epoch_count > MAX_COUNT:
            raise ValueError(f"step_count and epoch_count must stay <= {MAX_COUNT}: {self.step_count} + {steps} "
                             f"and {self.epoch_count} + {epochs}")
        state = self.__dict__
        state["step_count"], state["epoch_count"] = step_count, epoch_count

    def _monitor_for(self, run: _Run) -> TrainingMonitor:
        """The diagnostics' monitor of this fit: the trainer's, restarted at the fit's first use (made
        anew only when ``diagnose_every`` changed). Kept on the run: a Trainer attribute written per fit
        would go through the settings' checks."""
        monitor = run.monitor
        if monitor is None:
            monitor = self._monitor
            if monitor is None or monitor.every != self.diagnose_every:
                monitor = self._monitor = TrainingMonitor(self.net, run.X, run.y, self.loss, self.diagnose_every,
                                                          explain_later=True)
            else:
                monitor.restart(run.X, run.y, self.loss)
            run.monitor = monitor
        return monitor

    def _diagnostics_arguments(self, run: _Run, epochs: int) -> dict:
        """FusedNet.run's arguments for the diagnostics of a call of up to ``epochs`` epochs: the kernel
        keeps the dead-unit statistics of the epochs due for a check, applies the plateau rule, and
        copies the weights of the first epoch where a plateau begins (then runs on). Its buffers are
        the trainer's, reused from fit to fit (the monitor reads the rows of statistics during the
        call's checks only, and copies the weights it keeps). One function for all of it: this runs
        once per fused call, often right after a kernel that has pushed it out of the caches."""
        monitor = self._monitor_for(run)
        rows = self._unit_rows
        if rows is None or len(rows) < epochs:  # (epochs, hidden ReLU units) of the network's dtype
            rows = self._unit_rows = np.empty((epochs, len(run.unit_max)), self.net.dtype)
        arguments = {"unit_max": run.unit_max, "unit_epochs": rows, "stats_every": monitor.every,
                     "stats_epoch": len(run.epoch_loss)}
        # the rule needs a window of this fit's epoch losses: before that, with no level reported, it
        # does nothing (a short fit's first call leaves it out)
        if len(run.epoch_loss) + epochs >= monitor.window or monitor.level is not None:
            tail = np.asarray(run.epoch_loss[-monitor.window:], dtype=np.float64) if run.epoch_loss else _NO_LOSSES
            if self._snapshot is None:
                self._snapshot = np.empty_like(self.net.internals.params)
            arguments["watch"] = (monitor.window, monitor.rtol, monitor.level, run.weight_total, tail)
            arguments["plateau_params"] = self._snapshot
        return arguments

    def _schedule_horizon(self) -> int:
        """How many epochs from now the schedule's rates stay what they are whatever losses it is fed:
        the epochs one fused call may take (a schedule with feedback that cannot say: 1)."""
        if self.schedule is None or not hasattr(self.schedule, "epoch_end"):
            return MAX_COUNT
        fixed = getattr(self.schedule, "fixed_epochs", None)
        horizon = fixed() if callable(fixed) else 1
        return MAX_COUNT if horizon is None else max(1, int(horizon))

    def _current_lr(self) -> float:
        if self.schedule is None:
            return self.lr
        return self._scheduled_lr(self.step_count, self.epoch_count)

    def _scheduled_lr(self, step: int, epoch: int) -> float:
        return V.check_float(f"the learning rate schedule.lr returned at step {step}",
                             self.schedule.lr(step, epoch), minimum=0.0)

    def _divergence(self, value: float, first_loss: float) -> str | None:
        """Why the loss ``value`` diverged (the kernels' rule, K.loss_diverged), or None."""
        if not K.loss_diverged(value, first_loss, self.divergence_factor):
            return None
        if not np.isfinite(value):
            return f"the loss is {value}"
        return f"the loss {value:.6g} exceeds {self.divergence_factor:g} x the first loss {first_loss:.6g}"

    def _evaluate(self, X, y, weight=None) -> float:
        return float(self.net.internals.engine.loss_value(X, y, self.loss, weight))

    def _stuck(self, X, y, weight=None) -> bool:
        core = self.net.internals
        core.engine.loss_and_gradients(X, y, self.loss, weight)
        return not core.grads.any() and self.optimizer.is_idle()

    def _dead_summary(self, X) -> str:
        """Which hidden layers output exactly zero for every training sample."""
        p = self.net.internals.detailed_pass(X)
        dead = [k for k, layer in enumerate(self.net.layers[:-1])
                if layer.activation == "relu" and not p.h[k].any()]
        if not dead:
            return ""
        return "every ReLU unit of hidden layer" + ("s " if len(dead) > 1 else " ") + \
            ", ".join(map(str, dead)) + " is dead on the training data"


class _Interrupted(Exception):
    """Ctrl-C seen at a whole step; the run is kept for Trainer.resume()."""


class _InterruptFlag:
    __slots__ = ("pressed",)

    def __init__(self):
        self.pressed = False


class _deferred_interrupt:
    """In the main thread, with Python's default SIGINT handler: Ctrl-C sets a flag that the fit checks
    at whole steps (a second Ctrl-C raises at once, for a callback that never returns). Elsewhere
    (other threads, custom handlers) nothing changes and the flag is None. The handler is swapped with
    the low-level ``_signal`` functions where they exist: ``signal.signal`` wraps them in enum
    conversions that cost more than a short fit's whole kernel call."""

    __slots__ = ("flag", "previous")

    def __enter__(self) -> _InterruptFlag | None:
        self.flag = self.previous = None
        if (threading.current_thread() is not threading.main_thread()
                or _getsignal(signal.SIGINT) is not signal.default_int_handler):
            return None
        flag = self.flag = _InterruptFlag()

        def handler(signum, frame):
            if flag.pressed:
                raise KeyboardInterrupt
            flag.pressed = True

        self.previous = _setsignal(signal.SIGINT, handler)
        return flag

    def __exit__(self, *exc) -> None:
        if self.flag is not None:
            _setsignal(signal.SIGINT, self.previous)


try:  # CPython's C functions behind signal.signal / signal.getsignal
    from _signal import getsignal as _getsignal
    from _signal import signal as _setsignal
except ImportError:  # pragma: no cover - other implementations
    _getsignal, _setsignal = signal.getsignal, signal.signal


# The module of the built-in schedules (a layer above this one: named, not imported).
_SCHEDULES = "skipnet.schedules"
# What a fit asks of a built-in schedule's class, worked out once per class: (fed each epoch's loss, its
# rule runs in the fused kernel). Asked of the instance, it would be a few Python calls per fit.
_BUILTIN_TRAITS: dict[type, tuple[bool, bool]] = {}


def _builtin_traits(schedule) -> tuple[bool, bool] | None:
    """(takes feedback, applies its rule in the kernel) of a built-in schedule; None for any other (or
    None). A built-in schedule takes feedback unless its class's epoch_end does nothing (fixed_epochs
    None), and no instance can change that (their attributes are their settings)."""
    kind = type(schedule)
    traits = _BUILTIN_TRAITS.get(kind)
    if traits is None and kind.__module__ == _SCHEDULES:
        traits = _BUILTIN_TRAITS[kind] = (schedule.fixed_epochs() is not None,
                                          callable(getattr(schedule, "rule_state", None)))
    return traits


# Seconds of steps after which a fused kernel call pauses, so that Ctrl-C takes effect promptly.
PAUSE_SECONDS = 0.05


# Row orders of the epochs of one fused call: at most this many entries (epochs x samples).
_ORDER_BUDGET = 1 << 17


def _epoch_call_rates(values: list[float], steps: int, spe: int, j0: int, error) -> CallRates:
    """CallRates of ``steps`` steps from step ``j0`` of an epoch, ``values[e]`` the rate of the call's
    epoch e (one for each epoch the steps touch): for the kernel one value when they are all the same,
    else one per epoch; recorded as one run per epoch."""
    if all_same(values):
        return CallRates(np.array(values[:1]), steps, [(steps, values[0])] if values else [], error)
    # the first epoch from step j0, the ones between whole, the last up to the call's end
    counts = [spe - j0] + [spe] * (len(values) - 2) + [steps - (len(values) - 1) * spe + j0]
    return CallRates(np.array(values), steps, [(steps, EpochRuns(values, counts))], error, epochs=(j0, spe))


# The plateau rule's tail before a fit's first epoch (the kernel only reads it).
_NO_LOSSES = np.empty(0)


def _draw_orders(rng: np.random.Generator, out: np.ndarray) -> None:
    """Fill each row of ``out`` (k, n) int64 with a uniform permutation of 0..n-1 from ``rng``: the very
    draws, and the generator state after them, of k calls of ``_permutation(rng, n)`` (the per-op path's
    one draw per epoch), in one kernel call (K.draw_orders: a third of Generator.permutation's time)."""
    K.draw_orders(rng, out)


def _permutation(rng: np.random.Generator, n: int) -> np.ndarray:
    """One epoch's row order (n,) int64, drawn as _draw_orders draws each row."""
    order = np.empty((1, n), np.int64)
    K.draw_orders(rng, order)
    return order[0]


class _Run:
    """The state of one ``fit``: data, batch buffers, what has been recorded, the last good weights,
    and where it stands (epoch to end at, step within the epoch in progress), so it can be resumed."""

    def __init__(self, trainer: Trainer, X, y, weight=None):
        self.trainer, self.X, self.y = trainer, X, y
        # sample weights (n,) float64 or None; epoch losses are sums of loss x weight over this total
        self.weight = weight
        self.weight_total = X.shape[0] if weight is None else float(weight.sum())
        self.validation_weight: np.ndarray | None = None  # weights of the validation loss, if any
        self.batch = min(trainer.batch_size, X.shape[0])
        self.steps_per_epoch = -(-X.shape[0] // self.batch)
        self.end_epoch = trainer.epoch_count + trainer.epochs
        self._gather = None
        self.last_good = None  # per-op path: the weights behind the last finite loss (a copy)
        # restore_best: the weights at the end of the best epoch so far and its monitored loss
        self.best_params: np.ndarray | None = None
        self.best_value = np.inf
        self._val_losses: np.ndarray | None = None  # fused path: the kernel's validation losses
        self.first_loss: float | None = None
        # the epoch in progress: steps done, their sum of loss x rows, whether every gradient was zero
        self.epoch_step, self.epoch_total, self.all_zero = 0, 0.0, True
        self.order: np.ndarray | None = None  # its row order (per-op path; fused after a rewind)
        # room for every step of the fit up front (up to a limit; beyond it the series grow)
        capacity = min(max(trainer.epochs, 1) * self.steps_per_epoch + 1, 1 << 20)
        self.step_loss, self.lr = Series(capacity), RateRecord()
        self.epoch_loss: list[float] = []
        self.val_loss: list[float] = []
        self.warnings: list[TrainingWarning] = []
        self.stopped: str | None = None
        self.interrupt = None
        self.validation = (None, None)
        self.rule_in_kernel = False  # the fused kernel applies the schedule's feedback rule (_fit_fused)
        self.feedback = False  # the schedule is fed each epoch's loss (Trainer._train)
        self.builtin_schedule = False  # it is one of skipnet.schedules' (Trainer._train)
        self.rule_schedule = False  # a built-in one whose feedback rule a fused kernel can apply
        self._reduced = None
        self._totals = None
        self.monitor = None  # the trainer's diagnostics monitor, once restarted for this fit
        # the diagnostics' dead-unit statistics: per hidden ReLU unit, the largest z of the epoch in
        # progress (the kernels keep it; those of each epoch of a fused call go to the trainer's buffer)
        self.unit_max = np.empty(trainer.net.internals.hidden_relu_units, trainer.net.dtype)
        self.unit_max.fill(-np.inf)
        # fused path: row orders drawn ahead in batches; rows [start, end) of _orders are the epoch in
        # progress (or the next) and those after it; rows before `begun` have been begun; the batch
        # drawn last starts at row `batch_row`, drawn from generator state `batch_state`
        self._orders = None
        self._start = self._end = self._begun = self._batch_row = 0
        self._batch_state = None

    def gather_buffers(self):
        """(Xb, yb, wb): the per-op path's buffers for shuffled batches (wb None when unweighted),
        allocated once per fit."""
        if self._gather is None:
            X, y = self.X, self.y
            self._gather = (np.empty((self.batch, X.shape[1]), X.dtype), np.empty((self.batch,) + y.shape[1:], y.dtype),
                            None if self.weight is None else np.empty(self.batch))
        return self._gather

    def orders_for(self, epochs: int) -> np.ndarray:
        """Row orders (k, n) for the next fused call, k <= epochs, the epoch in progress first. Orders
        are drawn from the trainer's generator as the per-op path draws them, one per epoch begun; a
        batch is drawn ahead only when every earlier one has been begun (see rewind_orders)."""
        n, rng = self.X.shape[0], self.trainer.rng
        if self._begun == self._end:  # nothing drawn ahead: a new batch
            keep = 1 if self.epoch_step else 0
            if self._orders is None or self._orders.shape[0] < epochs:
                self._orders = np.empty((max(epochs, 1), n), np.int64)
            if keep:
                in_progress = self.order if self._end == 0 else self._orders[self._start].copy()
                self._orders[0] = in_progress
            self._batch_state = rng.bit_generator.state
            _draw_orders(rng, self._orders[keep:epochs])
            self._start, self._begun, self._end, self._batch_row = 0, keep, epochs, keep
        return self._orders[self._start:min(self._end, self._start + epochs)]

    def use_orders(self, begun: int, completed: int) -> None:
        """After a fused call: ``begun`` of its orders were begun, ``completed`` epochs completed."""
        if self._orders is not None and self._end:
            self._begun = max(self._begun, self._start + begun)
            self._start += completed

    def rewind_orders(self) -> None:
        """Leave the generator as the per-op path leaves it (one draw per epoch begun): forget the
        orders drawn ahead and not begun; the epoch in progress keeps its order in ``order``."""
        if self._orders is None or self._end == 0:
            return
        if self.epoch_step:
            self.order = self._orders[self._start].copy()
        if self._begun < self._end:
            rng = self.trainer.rng
            rng.bit_generator.state = self._batch_state
            _draw_orders(rng, self._orders[self._batch_row:self._begun].copy())
        self._start = self._begun = self._end = self._batch_row = 0

    def totals(self, epochs: int) -> np.ndarray:
        """A float64 buffer for per-epoch loss totals, reused across the calls of a fit."""
        if self._totals is None or self._totals.shape[0] < epochs:
            self._totals = np.empty(epochs)
        return self._totals[:epochs]

    def reduced(self, epochs: int) -> np.ndarray:
        """A float64 buffer for the rates a kernel-applied schedule rule lowered to after each epoch of a
        call (NaN: kept), reused across the calls of a fit."""
        if self._reduced is None or self._reduced.shape[0] < epochs:
            self._reduced = np.empty(epochs)
        return self._reduced[:epochs]

    def diverged(self, step: int, epoch: int, reason: str, loss: float, lr: float) -> str:
        """Restore the last good weights (the fused kernel has done so already), reset the optimizer
        state (it belongs to the diverging trajectory), record why, and return the stop reason."""
        if self.last_good is not None:
            self.trainer.net.internals.params[...] = self.last_good
        self.trainer.optimizer.reset()
        message = f"diverged at step {step} (epoch {epoch}): {reason}"
        self.warnings.append(TrainingWarning("divergence", message, step, epoch, {"loss": loss, "lr": lr}))
        return message

    def epoch_checks(self, epochs: int, validation: bool, best: bool) -> dict:
        """FusedNet.run's arguments for the checks at each epoch's end of a call of ``epochs`` epochs:
        a buffer for the validation losses, and the best weights with the best monitored value so far
        (the kernel keeps them as keep_if_best does), reused across the calls of a fit."""
        args: dict = {}
        if validation:
            if self._val_losses is None or self._val_losses.shape[0] < epochs:
                self._val_losses = np.empty(epochs)
            args["val_losses"] = self._val_losses[:epochs]
        if best:
            if self.best_params is None:
                self.best_params = np.empty_like(self.trainer.net.internals.params)
            args.update(best=self.best_params, best_value=np.array([self.best_value]),
                        weight_total=float(self.weight_total))
        return args

    def keep_if_best(self, monitored: float) -> None:
        """Copy the weights when the epoch just ended improved the monitored loss (NaN never does)."""
        if monitored < self.best_value:
            self.best_value = monitored
            params = self.trainer.net.internals.params
            if self.best_params is None:
                self.best_params = params.copy()
            else:
                self.best_params[...] = params

    def restore_best(self) -> None:
        """At the end of a fit with ``restore_best``: put back the best epoch's weights, if any."""
        if self.trainer.restore_best and self.best_value < np.inf:  # else nothing kept (NaN never is)
            self.trainer.net.internals.params[...] = self.best_params

    def history(self, copy: bool = True) -> History:
        """The History so far; ``copy=False`` (the final one) hands over the recorded arrays."""
        step_loss = self.step_loss.array()
        lr = self.lr.array() if copy else self.lr.deferred()
        if copy:
            step_loss, lr = step_loss.copy(), lr.copy()
        epoch_loss, val_loss = np.asarray(self.epoch_loss, float), np.asarray(self.val_loss, float)
        return History(step_loss, epoch_loss, val_loss, lr, list(self.warnings), self.stopped,
                       len(self.epoch_loss), len(self.step_loss))

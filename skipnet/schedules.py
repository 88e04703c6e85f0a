"""Learning-rate schedules and the learning-rate range test (``lr_find``).

A schedule is handed to ``Trainer(schedule=...)``. The trainer calls ``start(base_lr, steps_per_epoch,
epochs)`` at the start of every ``fit`` (``base_lr`` is the trainer's ``lr``), ``lr(step, epoch)`` before
every mini-batch step, and ``epoch_end(epoch, loss)`` after every epoch (the validation loss when there
is one, else the training loss). ``step`` and ``epoch`` are the trainer's counters: they count from 0
and keep counting across fits, so a second ``fit`` continues the schedule where the first left it.

Each schedule says in ``per`` whether its position is the mini-batch step (``"step"``) or the epoch
(``"epoch"``), and computes its rate from that position in closed form (the formulas of the
``torch.optim.lr_scheduler`` class named in each docstring). Schedules with a planned length (cosine,
one-cycle) never overrun: asked for a position past the end they hold their last value. Nothing needs
to be called in a particular order beyond ``start`` before the first ``lr``.

Settings are checked when assigned, after construction too, by the constructor's own checks: a bad
value (``OneCycle().three_phase = "yes"``) or a misspelt name raises, an assignment that contradicts
another setting raises and changes nothing, and a started schedule re-plans with the new value.

Used on their own, outside a Trainer::

    s = CosineLR(warmup=10)
    s.start(base_lr=0.1, steps_per_epoch=50, epochs=20)
    rates = [s.lr(step, step // 50) for step in range(1000)]
"""

from __future__ import annotations

import bisect
import copy
import functools
import math
import numbers
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from . import _kernels as K
from . import _validation as V
from ._deprecation import keyword_from
from ._format import fmt
from .network import Network
from .optimizers import make_optimizer

PER = ("step", "epoch")
# Counts (steps, epochs, patience) above 2**53 lose exactness as floats and overflow float formulas.
MAX_COUNT = 2**53
_MISSING = object()


def _count(name: str, minimum: int) -> Callable:
    return lambda value: V.check_int(name, value, minimum=minimum, maximum=MAX_COUNT)


def _optional(check: Callable) -> Callable:
    return lambda value: None if value is None else check(value)


def _rate_check(name: str, **bounds) -> Callable:
    return lambda value: V.check_float(name, value, **bounds)


def _below_one(name: str) -> Callable:
    """A real number in (0, 1)."""
    def check(value):
        value = V.check_float(name, value, minimum=0.0, include_min=False)
        if value >= 1:
            raise ValueError(f"{name} must be < 1, got {value}")
        return value
    return check


class Schedule:
    """Base class: ``base_lr`` comes from ``start``; subclasses define ``_rate(position)``.

    Settings are validated when assigned, after construction too, by the same check the constructor
    uses (``_checks``: setting name -> check); an assignment that would leave the settings inconsistent
    (e.g. CosineLR's ``total`` not above ``warmup``, or a started OneCycle's new plan impossible) raises
    and leaves the schedule unchanged. A started schedule re-plans when a setting changes.
    """

    per = "epoch"
    _checks: ClassVar[dict[str, Callable]] = {"per": lambda value: V.check_choice("per", value, PER),
                                              "base_lr": _rate_check("base_lr", positive=True)}
    _fixed: tuple[str, ...] = ()  # class-level facts that no instance may change (e.g. per)

    def __init__(self):
        object.__setattr__(self, "base_lr", None)  # until start
        object.__setattr__(self, "_fit", None)  # (steps_per_epoch, epochs) of the last start

    def __copy__(self):
        """A shallow copy (what a fit records of a schedule whose rates it writes out later)."""
        twin = object.__new__(type(self))
        twin.__dict__.update(self.__dict__)
        return twin

    def __setattr__(self, name: str, value) -> None:
        if name in self._fixed:
            raise AttributeError(f"{type(self).__name__}.{name} is fixed to {getattr(type(self), name)!r}")
        check = self._checks.get(name)
        if check is None:
            if not name.startswith("_") and type(self).__module__ == __name__:  # a typo, not a new setting
                raise AttributeError(f"{type(self).__name__} has no setting {name!r}; its settings are "
                                     f"{', '.join(n for n in self._checks if n not in self._fixed)}")
            object.__setattr__(self, name, value)
            return
        old = self.__dict__.get(name, _MISSING)
        self._commit({name: check(value)})
        if old is not _MISSING and old != self.__dict__[name]:
            self._changed(name)

    def _commit(self, values: dict) -> None:
        """Set ``values`` (already checked one by one), then check them together and re-plan a started
        schedule; on failure restore the previous values and raise."""
        old = {name: self.__dict__.get(name, _MISSING) for name in values}
        for name, value in values.items():
            object.__setattr__(self, name, value)
        try:
            self._check_settings()
            if self._fit is not None:
                self._plan(*self._fit)
        except BaseException:
            for name, value in old.items():
                if value is _MISSING:
                    object.__delattr__(self, name)
                else:
                    object.__setattr__(self, name, value)
            raise

    def _check_settings(self) -> None:
        """Checks across settings (each one alone passed its own check); settings not yet set are absent."""

    def _plan(self, steps_per_epoch: int, epochs: int) -> None:
        """Prepare the rates of a fit of this length (called by start, and when a started schedule's
        setting changes); raise ValueError when the settings do not fit it. What it works out is not a
        setting: it is written to ``self.__dict__``, past the settings' checks."""

    def _changed(self, name: str) -> None:
        """Called after setting ``name`` took a new value (state that depends on it may reset)."""

    def start(self, base_lr: float, steps_per_epoch: int, epochs: int) -> None:
        """Called by the Trainer at the start of every fit with its ``lr`` and the fit's length."""
        if not (type(base_lr) is float and 0.0 < base_lr < math.inf and type(steps_per_epoch) is int
                and 1 <= steps_per_epoch <= MAX_COUNT and type(epochs) is int and 0 <= epochs <= MAX_COUNT):
            # what a Trainer passes goes by at a glance (once per fit); anything else through the checks
            steps_per_epoch = V.check_int("steps_per_epoch", steps_per_epoch, minimum=1, maximum=MAX_COUNT)
            epochs = V.check_int("epochs", epochs, minimum=0, maximum=MAX_COUNT)
            base_lr = self._checks["base_lr"](base_lr)
        self._begin(base_lr, (steps_per_epoch, epochs))

    def _begin(self, base_lr: float, fit: tuple[int, int]) -> None:
        """start() after its argument checks: the settings, each checked when assigned, are consistent
        already, so only the plan is made (on failure, the previous start is kept)."""
        state = self.__dict__
        old = state["base_lr"], state["_fit"]
        if old == (base_lr, fit):  # as the last start: its plan holds (a setting's change re-plans at once)
            return
        state["base_lr"], state["_fit"] = base_lr, fit
        try:
            self._plan(*fit)
        except BaseException:
            state["base_lr"], state["_fit"] = old
            raise

    def lr(self, step: int, epoch: int) -> float:
        """The learning rate for mini-batch ``step`` (counted over the whole run) in ``epoch``."""
        if self.base_lr is None or self._fit is None:
            raise RuntimeError(f"{type(self).__name__}.start(base_lr, steps_per_epoch, epochs) must be "
                               "called before lr() (the Trainer does this at the start of fit)")
        # a trainer's counters stop at MAX_COUNT; positions past it are not exact as floats
        step = V.check_int("step", step, minimum=0, maximum=MAX_COUNT)
        epoch = V.check_int("epoch", epoch, minimum=0, maximum=MAX_COUNT)
        return float(self._rate(step if self.per == "step" else epoch))

    def rates(self, steps, epochs) -> np.ndarray:
        """The rates of many steps at once: ``lr(step, epoch)`` for each pair of ``steps`` and ``epochs``
        (equal-length integer sequences), bit for bit, as float64. A Trainer's fused path asks for a
        kernel call's rates this way."""
        if self.base_lr is None or self._fit is None:
            self.lr(0, 0)  # raises the not-started error
        positions = np.asarray(steps if self.per == "step" else epochs, dtype=np.int64)
        if positions.size and positions.min() < 0:
            raise ValueError("steps and epochs must be >= 0")
        return self._rates(positions)

    def _rates(self, positions: np.ndarray) -> np.ndarray:
        """_rate at each position; subclasses with per-step rates compute them as arrays."""
        return np.array([self._rate(int(p)) for p in positions], dtype=np.float64)

    def step_rates(self, out: np.ndarray, first_step: int) -> Callable[[np.ndarray], None]:
        """Write the rates of the consecutive steps ``first_step``, ``first_step + 1``, ... into ``out``
        (float64, 1-D, contiguous, writable): what ``lr(step, epoch)`` gives each of them, bit for bit, for a
        schedule whose rate depends on the step alone (``per == "step"``; ValueError otherwise). A
        Trainer's fused path fills a kernel call's rates this way, with no per-step arrays of positions.

        Returns ``fill(other)``, which writes the same rates into another such array (as many as it
        holds) whatever is done to the schedule afterwards: how a fit records them, written out only
        if ``History.lr`` is read."""
        if self.per != "step":
            raise ValueError(f"step_rates needs a schedule with per='step', this one is per={self.per!r}")
        if self.base_lr is None or self._fit is None:
            self.lr(0, 0)  # raises the not-started error
        first_step = V.check_int("first_step", first_step, minimum=0, maximum=MAX_COUNT)
        flags = getattr(out, "flags", None)
        if not (isinstance(out, np.ndarray) and out.dtype == np.float64 and out.ndim == 1
                and flags.writeable and flags.c_contiguous):
            raise TypeError("out must be a writable, contiguous 1-D float64 numpy array")
        if out.size:
            self._fill(first_step, out)
        return functools.partial(copy.copy(self)._fill, first_step)  # a copy: a later setting re-plans this one

    def epoch_rates(self, first_epoch: int, count: int) -> list[float]:
        """The rates of the ``count`` epochs from ``first_epoch`` on: what ``lr(step, epoch)`` gives in each
        of them, bit for bit, for a schedule whose rate depends on the epoch alone (``per == "epoch"``;
        ValueError otherwise). A Trainer's fused path asks a kernel call's rates this way."""
        if self.per != "epoch":
            raise ValueError(f"epoch_rates needs a schedule with per='epoch', this one is per={self.per!r}")
        if self.base_lr is None or self._fit is None:
            self.lr(0, 0)  # raises the not-started error
        first_epoch = V.check_int("first_epoch", first_epoch, minimum=0, maximum=MAX_COUNT)
        count = V.check_int("count", count, minimum=0, maximum=MAX_COUNT)
        rate = self._rate
        return [float(rate(epoch)) for epoch in range(first_epoch, first_epoch + count)]

    def _fill(self, first: int, out: np.ndarray) -> None:
        """out[k] = _rate(first + k); subclasses with a faster way for consecutive positions override it."""
        out[:] = self._rates(np.arange(first, first + out.size, dtype=np.int64))

    def epoch_end(self, epoch: int, loss: float) -> None:
        """Feedback after each epoch; only ReduceLROnPlateau uses it."""

    def fixed_epochs(self) -> int | None:
        """How many epochs from now the rates stay what they are whatever losses ``epoch_end`` is fed
        (None: always, the schedule takes no feedback). A Trainer's fused path runs that many epochs in
        one kernel call and feeds their losses afterwards. A subclass that overrides ``epoch_end``
        without this method gets 1 (feedback after every epoch)."""
        return None if type(self).epoch_end is Schedule.epoch_end else 1

    def _rate(self, position: int) -> float:
        raise NotImplementedError

    def __repr__(self):
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({fields})"


class _Piecewise(Schedule):
    """A schedule planned as pieces (K.schedule_rates: constant, linear, cosine, geometric, the last rate
    held): the rate of one position, of many, and a run of consecutive ones, all from the same expressions."""

    _pieces: tuple  # worked out by _plan: the rows of K.schedule_rates, one after the other

    @property
    def pieces(self) -> tuple | None:
        """The plan of the last ``start`` as K.schedule_rates reads it, a flat tuple of rows (begin, kind, a, b,
        c, d, block), one per piece (None before start): a Trainer's fused kernel computes a call's rates
        from it, with the expressions of lr() and rates()."""
        return self.__dict__.get("_pieces")

    def _rate(self, t):
        return K.schedule_rate(self._pieces, t)

    def _rates(self, positions):
        positions = np.ascontiguousarray(positions, dtype=np.int64)
        out = np.empty(positions.shape)
        K.schedule_rates_at(self._pieces, positions.reshape(-1), out.reshape(-1))
        return out

    def _fill(self, first, out):
        K.schedule_rates(self._pieces, first, out)

    # A Trainer asks these once per kernel call, often right after a kernel that pushed them out of the
    # caches: arguments that are what a Trainer passes go straight to the kernel, which checks the buffer
    # (anything it refuses is explained by the base class's checks).

    def step_rates(self, out: np.ndarray, first_step: int) -> Callable[[np.ndarray], None]:
        pieces = self.__dict__.get("_pieces") if self.per == "step" else None  # none before start
        if pieces is None or type(out) is not np.ndarray or type(first_step) is not int \
                or not 0 <= first_step <= MAX_COUNT:
            return super().step_rates(out, first_step)
        try:
            K.schedule_rates(pieces, first_step, out)
        except (TypeError, ValueError, BufferError):
            super().step_rates(out, first_step)  # raises, saying what out should be
            raise
        return functools.partial(K.schedule_rates, pieces, first_step)  # the plan is a tuple: frozen

    step_rates.__doc__ = Schedule.step_rates.__doc__

    def epoch_rates(self, first_epoch: int, count: int) -> list[float]:
        pieces = self.__dict__.get("_pieces") if self.per == "epoch" else None
        if pieces is None or type(first_epoch) is not int or type(count) is not int \
                or not (0 <= first_epoch <= MAX_COUNT and 0 <= count <= MAX_COUNT):
            return super().epoch_rates(first_epoch, count)
        out = np.empty(count)
        K.schedule_rates(pieces, first_epoch, out)
        return out.tolist()

    epoch_rates.__doc__ = Schedule.epoch_rates.__doc__


class StepLR(_Piecewise):
    """Per epoch: ``base_lr * gamma ** (epoch // step_size)`` (torch.optim.lr_scheduler.StepLR)."""

    per = "epoch"
    _fixed = ("per",)
    _checks: ClassVar = {**Schedule._checks, "step_size": _count("step_size", 1),
               "gamma": _rate_check("gamma", positive=True, maximum=1.0)}

    def __init__(self, step_size: int, gamma: float = 0.1):
        super().__init__()
        self.step_size = step_size
        self.gamma = gamma

    def _plan(self, steps_per_epoch, epochs):
        self.__dict__["_pieces"] = (0, K.PIECE_GEOMETRIC, self.base_lr, self.gamma, 0.0, 0.0, self.step_size)


class ExponentialLR(_Piecewise):
    """Per epoch: ``base_lr * gamma ** epoch`` (torch.optim.lr_scheduler.ExponentialLR)."""

    per = "epoch"
    _fixed = ("per",)
    _checks: ClassVar = {**Schedule._checks, "gamma": _rate_check("gamma", positive=True, maximum=1.0)}

    def __init__(self, gamma: float):
        super().__init__()
        self.gamma = gamma

    def _plan(self, steps_per_epoch, epochs):
        self.__dict__["_pieces"] = (0, K.PIECE_GEOMETRIC, self.base_lr, self.gamma, 0.0, 0.0, 1)


class CosineLR(_Piecewise):
    """Linear warm-up, then cosine annealing to ``min_lr``; per step (default) or per epoch.

    With ``t`` the position (``per``), ``W = warmup`` and ``T = total``:

    - ``t < W``: ``base_lr * (f + (1 - f) * t / W)`` with ``f = warmup_start_factor``
      (torch LinearLR(start_factor=f, total_iters=W));
    - ``W <= t < T``: ``min_lr + (base_lr - min_lr) * (1 + cos(pi * (t - W) / (T - W))) / 2``
      (torch CosineAnnealingLR(T_max=T - W, eta_min=min_lr) after the warm-up);
    - ``t >= T``: ``min_lr``, held (torch's cosine would climb back up; a planned decay should not).

    ``total`` defaults to the length of the fit given to ``start``: ``steps_per_epoch * epochs`` when
    ``per="step"``, ``epochs`` when ``per="epoch"``.
    """

    _checks: ClassVar = {**Schedule._checks, "warmup": _count("warmup", 0), "total": _optional(_count("total", 1)),
               "min_lr": _rate_check("min_lr", minimum=0.0),
               "warmup_start_factor": _rate_check("warmup_start_factor", minimum=0.0, include_min=False,
                                                  maximum=1.0)}

    def __init__(self, warmup: int = 0, total: int | None = None, min_lr: float = 0.0,
                 warmup_start_factor: float = 1.0 / 3.0, per: str = "step"):
        super().__init__()
        self.per = per
        self.warmup = warmup
        self.total = total
        self.min_lr = min_lr
        self.warmup_start_factor = warmup_start_factor

    def _check_settings(self):
        total, warmup = getattr(self, "total", None), getattr(self, "warmup", 0)
        if total is not None and total <= warmup:
            raise ValueError(f"total ({total}) must be larger than warmup ({warmup})")

    def _plan(self, steps_per_epoch, epochs):
        if self.min_lr > self.base_lr:
            raise ValueError(f"min_lr ({self.min_lr:g}) must not exceed the base learning rate "
                             f"({self.base_lr:g})")
        planned = self.total
        if planned is None:
            planned = steps_per_epoch * epochs if self.per == "step" else epochs
            if planned <= self.warmup:
                raise ValueError(f"CosineLR: the fit has {planned} {self.per}s, not more than "
                                 f"warmup={self.warmup}; lower warmup or train longer")
        # the warm-up's line, the cosine from step warmup on, then min_lr, held
        self.__dict__["_pieces"] = K.cosine_plan(planned, self.warmup, self.base_lr, self.min_lr, self.warmup_start_factor)


class OneCycle(_Piecewise):
    """Per step: the one-cycle policy of torch.optim.lr_scheduler.OneCycleLR (learning rate only).

    The peak is ``max_lr`` (default: the trainer's ``lr``); the rate starts at ``max_lr / div_factor``,
    rises to ``max_lr`` by step ``pct_start * total - 1``, then falls to ``max_lr / div_factor /
    final_div_factor`` at step ``total - 1`` (``anneal`` "cos" or "linear"; ``three_phase`` as torch).
    Past ``total - 1`` it holds that final rate instead of raising "Tried to step N times". ``total``
    defaults to ``steps_per_epoch * epochs`` of the fit given to ``start``. Momentum is not cycled.
    ``three_phase`` is taken by keyword (positionally: deprecated, FutureWarning).
    """

    per = "step"
    _fixed = ("per",)
    _checks: ClassVar = {**Schedule._checks, "max_lr": _optional(_rate_check("max_lr", positive=True)),
               "total": _optional(_count("total", 2)), "pct_start": _below_one("pct_start"),
               "anneal": lambda value: V.check_choice("anneal", value, ("cos", "linear")),
               "div_factor": _rate_check("div_factor", minimum=1.0),
               "final_div_factor": _rate_check("final_div_factor", minimum=1.0),
               "three_phase": lambda value: V.check_bool("three_phase", value)}

    @keyword_from("three_phase")
    def __init__(self, max_lr: float | None = None, total: int | None = None, pct_start: float = 0.3,
                 anneal: str = "cos", div_factor: float = 25.0, final_div_factor: float = 1e4,
                 three_phase: bool = False):
        super().__init__()
        self.max_lr = max_lr
        self.total = total
        self.three_phase = three_phase
        self.pct_start = pct_start
        self.anneal = anneal
        self.div_factor = div_factor
        self.final_div_factor = final_div_factor

    def _check_settings(self):
        pct_start = getattr(self, "pct_start", None)
        if getattr(self, "three_phase", False) and pct_start is not None and pct_start >= 0.5:
            raise ValueError(f"pct_start must be < 0.5 with three_phase=True, got {pct_start}")

    def _plan(self, steps_per_epoch, epochs):
        """torch's breakpoints, each phase checked to have steps (K.one_cycle_plan)."""
        total = self.total if self.total is not None else steps_per_epoch * epochs
        peak = self.max_lr if self.max_lr is not None else self.base_lr
        self.__dict__["_pieces"] = K.one_cycle_plan(total, self.pct_start, peak, self.div_factor,
                                                    self.final_div_factor, self.three_phase, self.anneal == "cos")


def _check_best(value) -> float:
    """The best loss so far: a real number, +-inf before the first epoch, never NaN."""
    if type(value) is float and not math.isnan(value):
        return value  # the common case: the rule's own state, handed back after every fused call
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"best must be a real number, got {type(value).__name__} {value!r}")
    try:
        value = float(value)
    except OverflowError:  # a Python int beyond the float range
        value = math.inf if value > 0 else -math.inf
    if math.isnan(value):
        raise ValueError("best must not be NaN")
    return value


def _check_reductions(value) -> list[tuple[int, float]]:
    """A list of (epoch, new_lr) pairs."""
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
        raise TypeError(f"reductions must be a list of (epoch, lr) pairs, got {type(value).__name__}")
    out = []
    for i, pair in enumerate(value):
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise TypeError(f"reductions[{i}] must be an (epoch, lr) pair, got {pair!r}")
        out.append((V.check_int(f"reductions[{i}] epoch", pair[0], minimum=0),
                    V.check_float(f"reductions[{i}] lr", pair[1], minimum=0.0)))
    return out


class ReduceLROnPlateau(Schedule):
    """Per epoch, fed by ``epoch_end``: torch.optim.lr_scheduler.ReduceLROnPlateau's rule.

    An epoch is better when (mode "min") ``loss < best * (1 - threshold)`` (threshold_mode "rel") or
    ``loss < best - threshold`` ("abs"); mode "max" mirrors these. After more than ``patience`` epochs
    without improvement the rate becomes ``max(lr * factor, min_lr)`` (skipped when that changes it by
    no more than ``eps``), the count restarts, and for ``cooldown`` epochs bad epochs are not counted.
    A NaN loss counts as a bad epoch. The state (best, counters, current rate) carries over between fits
    of the same trainer; ``start`` sets the rate to ``base_lr`` only on its first call. ``reductions``
    lists (epoch, new_lr) of every reduction. Assigning a new ``mode`` forgets ``best``.
    ``min_lr`` and ``eps`` are taken by keyword (positionally: deprecated, FutureWarning).
    """

    per = "epoch"
    _fixed = ("per",)
    _checks: ClassVar = {**Schedule._checks, "mode": lambda value: V.check_choice("mode", value, ("min", "max")),
               "factor": _below_one("factor"), "patience": _count("patience", 0),
               "threshold": _rate_check("threshold", minimum=0.0),
               "threshold_mode": lambda value: V.check_choice("threshold_mode", value, ("rel", "abs")),
               "cooldown": _count("cooldown", 0), "min_lr": _rate_check("min_lr", minimum=0.0),
               "eps": _rate_check("eps", minimum=0.0),
               # state, also validated: the rate in use, the best loss, the counters, the record
               "current": _rate_check("current", minimum=0.0), "best": _check_best,
               "num_bad_epochs": _count("num_bad_epochs", 0), "cooldown_counter": _count("cooldown_counter", 0),
               "reductions": _check_reductions}

    @keyword_from("min_lr")
    def __init__(self, mode: str = "min", factor: float = 0.1, patience: int = 10, threshold: float = 1e-4,
                 threshold_mode: str = "rel", cooldown: int = 0, min_lr: float = 0.0, eps: float = 1e-8):
        super().__init__()
        self.mode = mode
        self.factor = factor
        self.patience = patience
        self.threshold = threshold
        self.threshold_mode = threshold_mode
        self.cooldown = cooldown
        self.min_lr = min_lr
        self.eps = eps
        object.__setattr__(self, "current", None)  # until the first start
        self.best = self._worst()
        self.num_bad_epochs = 0
        self.cooldown_counter = 0
        self.reductions = []

    def _worst(self) -> float:
        return math.inf if self.mode == "min" else -math.inf

    def _changed(self, name):
        if name == "mode":  # a best loss of the other direction means nothing in this one
            object.__setattr__(self, "best", self._worst())

    def _begin(self, base_lr, fit):
        state = self.__dict__  # nothing to plan (the rate is the rule's state): Schedule._begin's writes alone
        state["base_lr"], state["_fit"] = base_lr, fit
        if state["current"] is None:  # the rate carries over between fits
            state["current"] = base_lr

    def _rate(self, epoch):
        return self.current

    def _is_better(self, loss: float) -> bool:
        if self.mode == "min":
            return loss < (self.best * (1.0 - self.threshold) if self.threshold_mode == "rel"
                           else self.best - self.threshold)
        return loss > (self.best * (1.0 + self.threshold) if self.threshold_mode == "rel"
                       else self.best + self.threshold)

    def fixed_epochs(self) -> int:
        """A reduction needs more than ``patience`` bad epochs after the cooldown: until then the rate
        holds whatever the losses (Schedule.fixed_epochs)."""
        if self.cooldown_counter > 0:
            return self.cooldown_counter + self.patience + 1
        return self.patience - self.num_bad_epochs + 1

    def rule_state(self) -> tuple:
        """The rule and its state as a fused kernel applies it at each epoch's end (csrc/rate_rule.h,
        FusedNet.run's ``reduce_on_plateau``): (mode, threshold_mode, threshold, factor, min_lr, eps,
        patience, cooldown, current, best, num_bad_epochs, cooldown_counter). After ``start``."""
        if self.current is None:
            raise RuntimeError("ReduceLROnPlateau.start() must be called before rule_state()")
        return (self.mode, self.threshold_mode, self.threshold, self.factor, self.min_lr, self.eps, self.patience,
                self.cooldown, self.current, self.best, self.num_bad_epochs, self.cooldown_counter)

    def take_rule_state(self, state, reductions) -> None:
        """Continue from where a fused kernel's application of the rule left it: ``state`` (current, best,
        num_bad_epochs, cooldown_counter) after the epochs it fed, which made ``reductions`` ((epoch,
        new_lr) pairs, appended to ``self.reductions``): the state ``epoch_end`` of those epochs leaves."""
        if self.current is None:
            raise RuntimeError("ReduceLROnPlateau.start() must be called before take_rule_state()")
        if isinstance(state, (str, bytes)) or not isinstance(state, (tuple, list)) or len(state) != 4:
            raise ValueError(f"state must be (current, best, num_bad_epochs, cooldown_counter), got {state!r}")
        checks = self._checks
        current, best, num_bad_epochs, cooldown_counter = state
        # what a kernel hands back passes its checks at a glance (a Trainer does this after every fused call)
        if not (type(current) is float and 0.0 <= current < math.inf and type(best) is float and not math.isnan(best)
                and type(num_bad_epochs) is int and 0 <= num_bad_epochs <= MAX_COUNT
                and type(cooldown_counter) is int and 0 <= cooldown_counter <= MAX_COUNT):
            current, best = checks["current"](current), checks["best"](best)
            num_bad_epochs = checks["num_bad_epochs"](num_bad_epochs)
            cooldown_counter = checks["cooldown_counter"](cooldown_counter)
        added = checks["reductions"](reductions) if reductions else ()
        state = self.__dict__  # the rule's own state: consistent by its checks alone
        state["current"], state["best"] = current, best
        state["num_bad_epochs"], state["cooldown_counter"] = num_bad_epochs, cooldown_counter
        self.reductions.extend(added)

    def epoch_end(self, epoch: int, loss: float) -> None:
        if self.current is None:
            raise RuntimeError("ReduceLROnPlateau.start() must be called before epoch_end()")
        epoch = V.check_int("epoch", epoch, minimum=0)
        if type(loss) is not float and (isinstance(loss, (bool, np.bool_)) or not isinstance(loss, numbers.Real)):
            raise TypeError(f"loss must be a real number, got {type(loss).__name__} {loss!r}")
        loss = float(loss)
        # the rule's own updates keep the state valid: set directly, not through the setting checks
        # (a Trainer calls this after every epoch)
        state = self.__dict__
        if self._is_better(loss):
            state["best"], state["num_bad_epochs"] = loss, 0
        else:
            state["num_bad_epochs"] += 1
        if self.cooldown_counter > 0:
            state["cooldown_counter"] -= 1
            state["num_bad_epochs"] = 0
        if self.num_bad_epochs > self.patience:
            new = max(self.current * self.factor, self.min_lr)
            if self.current - new > self.eps:
                state["current"] = new
                self.reductions.append((epoch, new))
            state["cooldown_counter"] = self.cooldown
            state["num_bad_epochs"] = 0


# ------------------------------------------------------------------------- the learning-rate range test
SUGGESTION_METHODS = ("valley", "steepest", "minimum")


@dataclass(frozen=True)
class LRFinderResult:
    """The curve of a learning-rate range test and the rate it suggests (a record: read-only).

    ``lrs``, ``losses`` (raw mini-batch losses, each measured before the step taken with ``lrs[i]``) and
    ``smoothed`` (bias-corrected exponential moving average of the losses) have one entry per step run.
    ``suggestions`` holds every method's rate; ``suggestion`` is the one of ``method`` (None when the
    sweep stopped too early to judge).
    """

    lrs: np.ndarray
    losses: np.ndarray
    smoothed: np.ndarray
    suggestion: float | None
    method: str
    suggestions: dict
    stopped_reason: str | None
    lr_min: float
    lr_max: float
    steps: int
    optimizer: str
    beta: float
    divergence_factor: float
    best_index: int = field(default=0)

    @property
    def diverge_factor(self) -> float:
        """Deprecated spelling of ``divergence_factor`` (Trainer's name for the same rule)."""
        warnings.warn("LRFinderResult.diverge_factor is deprecated; use divergence_factor",
                      DeprecationWarning, stacklevel=2)
        return self.divergence_factor

    @property
    def best_lr(self) -> float:
        """The rate at which the smoothed loss was lowest (usually too large to train with)."""
        return float(self.lrs[self.best_index])

    def __str__(self) -> str:
        n = len(self.lrs)
        lines = [(f"learning-rate range test: {n} {self.optimizer} steps with the rate growing exponentially "
                  f"from {fmt(self.lr_min, 3)} to {fmt(self.lrs[-1], 3)} (planned {self.steps} steps up to "
                  f"{fmt(self.lr_max, 3)}), on a copy of the network"),
                  f"smoothed loss: exponential moving average (beta {self.beta:g}) with bias correction",
                  f"lowest smoothed loss {fmt(self.smoothed[self.best_index], 4)} at lr {fmt(self.best_lr, 3)}"]
        lines.append("stopped: " + self.stopped_reason if self.stopped_reason else
                     "the sweep reached lr_max without diverging: raise lr_max to see where training breaks")
        if self.suggestion is None:
            lines.append("no suggestion: too few steps before the loss diverged; lower lr_min")
            return "\n".join(lines)
        why = {"valley": "two-thirds of the way down the longest stretch over which the smoothed loss keeps "
                         "falling (fastai's 'valley')",
               "steepest": "where the smoothed loss falls fastest per decade of learning rate",
               "minimum": "a tenth of the rate at the lowest smoothed loss"}
        lines.append(f"suggested lr: {fmt(self.suggestion, 3)}, {why[self.method]}")
        others = ", ".join(f"{m} {fmt(v, 3)}" for m, v in self.suggestions.items()
                           if m != self.method and v is not None)
        if others:
            lines.append(f"other rules: {others}")
        lines.append("the loss falls fastest well below the rate where it bottoms out; rates near or above "
                     f"{fmt(self.best_lr, 3)} are at the edge of divergence")
        return "\n".join(lines)

    def plot(self, ax=None):
        """Plot raw and smoothed loss against the rate (log x) with the suggestion; returns the axes."""
        from ._plotting import plot_lr_find

        return plot_lr_find(self, ax)


def _valley(losses: np.ndarray) -> int:
    """fastai's 'valley': the index two-thirds down the longest decreasing subsequence of ``losses``.

    lds[i], the length of the longest strictly decreasing subsequence ending at i, comes from patience
    sorting in O(n log n) (fastai's double loop is O(n^2): minutes for a range test of 10,000 steps);
    the first index of the greatest length ends the stretch, as in fastai."""
    tails: list[float] = []  # tails[k]: the largest last value of a decreasing run of length k + 1
    lds = np.empty(len(losses), int)
    for i, value in enumerate(-np.asarray(losses, float)):  # decreasing losses = increasing negatives
        k = bisect.bisect_left(tails, value)
        tails[k:k + 1] = [value]
        lds[i] = k + 1
    max_end = int(np.argmax(lds))
    max_start = max_end - int(lds[max_end]) if lds[max_end] > 1 else 0
    sections = (max_end - max_start) / 3
    return max_start + int(sections) + int(sections / 2)


def _suggest(lrs: np.ndarray, smoothed: np.ndarray) -> dict:
    """Every rule's suggested rate; as fastai, the first tenth and the last 5 points are left out."""
    n = len(lrs)
    lo, hi = n // 10, n - 5
    if hi - lo < 3:
        return {m: None for m in SUGGESTION_METHODS}
    lrs_t, loss_t = lrs[lo:hi], smoothed[lo:hi]
    slope = np.gradient(loss_t, np.log(lrs_t))
    return {"valley": float(lrs_t[_valley(loss_t)]),
            "steepest": float(lrs_t[int(np.argmin(slope))]),
            "minimum": float(lrs_t[int(np.argmin(loss_t))] / 10.0)}


@keyword_from("steps")
def lr_find(net, X, y, loss: str = "l1", lr_min: float = 1e-7, lr_max: float = 10.0, steps: int = 100, *,
            optimizer: str = "sgd", batch_size: int = 32, beta: float = 0.98, divergence_factor: float = 4.0,
            method: str = "valley", seed: int | None = 0, diverge_factor: float | None = None,
            **optimizer_options) -> LRFinderResult:
    """The learning-rate range test (Smith 2015; fastai's ``lr_find``), on a copy of ``net``.

    Trains a copy of the network for up to ``steps`` mini-batch steps on (X, y) with the rate growing
    exponentially, ``lr_i = lr_min * (lr_max / lr_min) ** (i / (steps - 1))``, recording each step's
    loss and its bias-corrected exponential moving average (``beta``). Stops early when the smoothed loss
    exceeds ``divergence_factor`` times its best so far or a loss is not finite. ``net`` is not changed.
    (``diverge_factor`` is the deprecated spelling of ``divergence_factor``.)

    ``method`` picks the suggestion: "valley" (default; fastai's rule, robust to noise), "steepest"
    (the steepest descent of the smoothed loss against log lr) or "minimum" (the rate at the lowest
    smoothed loss divided by 10). All three are in ``result.suggestions``. Mini-batches are drawn from
    shuffled passes over the data (``seed``); ``optimizer_options`` (momentum, weight_decay, betas, ...)
    go to the optimizer as in Trainer. ``steps`` and the parameters after it are taken by keyword
    (``steps`` positionally: deprecated, FutureWarning).
    """
    if not isinstance(net, Network):
        raise TypeError(f"net must be a skipnet.Network, got {type(net).__name__}")
    if diverge_factor is not None:
        warnings.warn("lr_find(diverge_factor=...) is deprecated; use divergence_factor=... (Trainer's name)",
                      DeprecationWarning, stacklevel=2)
        divergence_factor = diverge_factor
    lr_min = V.check_float("lr_min", lr_min, positive=True)
    lr_max = V.check_float("lr_max", lr_max, positive=True)
    if lr_max <= lr_min:
        raise ValueError(f"lr_max ({lr_max:g}) must be larger than lr_min ({lr_min:g})")
    steps = V.check_int("steps", steps, minimum=2)
    V.check_memory(f"a range test of {steps} steps", 32 * steps)  # lrs, losses, smoothed, temporaries
    batch_size = V.check_int("batch_size", batch_size, minimum=1)
    beta = V.check_float("beta", beta, minimum=0.0, maximum=1.0)
    if beta >= 1:
        raise ValueError(f"beta must be < 1, got {beta}")
    divergence_factor = V.check_float("divergence_factor", divergence_factor, minimum=1.0, include_min=False)
    method = V.check_choice("method", method, SUGGESTION_METHODS)
    X, y = net.internals.check_batch(X, y, loss)

    work = net.copy()
    opt = make_optimizer(work, optimizer, **optimizer_options)
    rng = np.random.default_rng(seed)
    n, batch = X.shape[0], min(batch_size, X.shape[0])
    lrs = lr_min * (lr_max / lr_min) ** (np.arange(steps) / (steps - 1))
    losses, smoothed = [], []
    avg, best, stopped = 0.0, math.inf, None
    order, cursor = rng.permutation(n), 0
    for i, lr in enumerate(lrs):
        if cursor + batch > n:
            order, cursor = rng.permutation(n), 0
        idx = order[cursor:cursor + batch]
        cursor += batch
        value = float(work.internals.engine.loss_and_gradients(X[idx], y[idx], loss))
        avg = beta * avg + (1.0 - beta) * value
        smooth = avg / (1.0 - beta ** (i + 1))
        losses.append(value)
        smoothed.append(smooth)
        if not math.isfinite(smooth):
            stopped = f"the loss became {value} at lr {fmt(lr, 3)}"
            break
        if smooth > divergence_factor * best:
            stopped = (f"the smoothed loss {fmt(smooth, 4)} exceeded {divergence_factor:g} x its best "
                       f"{fmt(best, 4)} at lr {fmt(lr, 3)}")
            break
        best = min(best, smooth)
        if opt.step(float(lr)).nonfinite:
            stopped = f"the update at lr {fmt(lr, 3)} made a parameter non-finite"
            break
    lrs = lrs[:len(losses)]
    smoothed_arr = np.asarray(smoothed)
    finite = np.where(np.isfinite(smoothed_arr), smoothed_arr, np.inf)
    suggestions = _suggest(lrs, smoothed_arr)
    return LRFinderResult(lrs=lrs, losses=np.asarray(losses), smoothed=smoothed_arr,
                          suggestion=suggestions[method], method=method, suggestions=suggestions,
                          stopped_reason=stopped, lr_min=lr_min, lr_max=lr_max, steps=steps,
                          optimizer=optimizer, beta=beta, divergence_factor=divergence_factor,
                          best_index=int(np.argmin(finite)))

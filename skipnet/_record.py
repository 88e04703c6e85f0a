"""What a fit records step by step, and how: float series that grow by doubling (Series), the
learning-rate record kept as runs and written out when read (RateRecord), the rates of one fused kernel
call (CallRates: values, or a built-in schedule's plan the kernel computes them from), and dataclass
fields worked out on first read (WrittenOnRead, for History.lr)."""

from __future__ import annotations

import functools
import math

import numpy as np

from . import _kernels as K


class Deferred:
    """A value worked out when first read: ``make()`` returns it."""

    __slots__ = ("make",)

    def __init__(self, make):
        self.make = make


class WrittenOnRead:
    """A dataclass field that may be given as a Deferred: its value is made on the first read and kept."""

    def __set_name__(self, owner, name: str) -> None:
        self.slot = "_" + name

    def __get__(self, obj, owner=None):
        if obj is None:
            raise AttributeError(self.slot[1:])  # to dataclass: a field without a default
        value = obj.__dict__[self.slot]
        if isinstance(value, Deferred):
            value = obj.__dict__[self.slot] = value.make()
        return value

    def __set__(self, obj, value) -> None:
        obj.__dict__[self.slot] = value


class Series:
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


class RateRecord:
    """The learning rate of each step, kept as runs and written out when read: a run of steps at one
    rate is one number, and a built-in schedule's per-step rates are its formula (a frozen copy of the
    schedule). Filling a fresh array of a fit's steps costs more than a small network's whole fit (each
    new page of a large array is a page fault). While every step so far had the same rate, ``array()``
    is a read-only view that shows it at every index."""

    FLUSH_RUNS = 64  # runs kept unwritten at most: the per-op path records one per step

    def __init__(self):
        self.size = 0
        self.runs: list[tuple[int, object]] = []  # (count, a float | an array of >= count | fill(out))
        self.written = Series(0)  # the steps before the runs, written out

    def __len__(self) -> int:
        return self.size

    def record(self, rates, count: int) -> None:
        """Append the rates of ``count`` steps: a float (all of them), an array of at least ``count``
        (the first ``count``; the caller hands it over and never changes it), or ``fill(out)``, which
        writes the ``count`` rates into ``out`` when they are read."""
        if count <= 0:
            return
        self.size += count
        if isinstance(rates, float) and self.runs and isinstance(self.runs[-1][1], float) \
                and same_float(rates, self.runs[-1][1]):
            self.runs[-1] = (self.runs[-1][0] + count, rates)
            return
        self.runs.append((count, rates))
        if len(self.runs) > self.FLUSH_RUNS:
            self._write_out()

    def _write_out(self) -> None:
        for count, rates in self.runs:
            out = self.written.reserve(count)
            if callable(rates):
                rates(out)
            else:
                out[:] = rates[:count] if isinstance(rates, np.ndarray) else rates
            self.written.commit(count)
        self.runs.clear()

    def _one_rate(self) -> bool:
        """Every step so far had the same rate, kept as one number (or there is no step)."""
        return not len(self.written) and len(self.runs) <= 1 and all(isinstance(r, float) for _, r in self.runs)

    def array(self) -> np.ndarray:
        if self._one_rate():
            # one value seen at every index (np.broadcast_to's view, built at a third of its cost)
            one = np.array([self.runs[0][1] if self.runs else 0.0])
            view = np.ndarray((self.size,), np.float64, one, strides=(0,))
            view.flags.writeable = False
            return view
        self._write_out()
        return self.written.array()

    def deferred(self) -> np.ndarray | Deferred:
        """array(), or the promise of it when that would write out rates nobody has read yet (the
        series is not recorded into afterwards)."""
        if self._one_rate():
            return self.array()  # a view, no writing
        return Deferred(self.array) if self.runs else self.array()


class CallRates:
    """The learning rates of one fused kernel call: ``values`` for the kernel (one rate for all steps, one
    per step, or with ``epochs`` = (first_step, steps_per_epoch) one per epoch of the call, the first
    for the epoch of its first step, FusedNet.run's lrs_per_epoch), the ``steps`` they cover (fewer
    than asked when the schedule refused a rate: ``error``, re-raised after those steps), and their
    record for History.lr: (count, rates) runs, the rates of each as RateRecord.record takes them.
    ``plan``: instead of values, (pieces, first, per_epoch), FusedNet.run's rate_plan (see planned)."""

    def __init__(self, values: np.ndarray | None, steps: int, record, error: Exception | None = None,
                 epochs: tuple[int, int] | None = None, plan: tuple | None = None):
        self.values, self.steps, self.record, self.error, self.plan = values, steps, record, error, plan
        self.epochs = epochs  # not None: one rate per epoch (FusedNet.run's lrs_per_epoch)

    @classmethod
    def planned(cls, pieces: tuple, first: int, steps: int, epochs: tuple[int, int] | None = None) -> CallRates:
        """The rates of ``steps`` steps of a schedule planned as ``pieces`` (K.schedule_rates), at positions
        first, first + 1, ... (per step), or with ``epochs`` = (first_step, steps_per_epoch) one per epoch
        from epoch ``first`` (per epoch): the kernel computes them from the plan, and the record writes
        them out from it when History.lr is read (the plan is a tuple: frozen)."""
        if epochs is None:
            fill = functools.partial(K.schedule_rates, pieces, first)
        else:
            fill = functools.partial(K.schedule_epoch_rates, pieces, first, *epochs)
        return cls(None, steps, [(steps, fill)], None, epochs, (pieces, first, epochs is not None))

    def at(self, step: int) -> float:
        """The rate of step ``step`` of the call."""
        if self.plan is not None:
            pieces, first, per_epoch = self.plan
            return K.schedule_rate(pieces, first + ((self.epochs[0] + step) // self.epochs[1] if per_epoch else step))
        if len(self.values) == 1:
            return float(self.values[0])
        if self.epochs is not None:
            first_step, steps_per_epoch = self.epochs
            return float(self.values[(first_step + step) // steps_per_epoch])
        return float(self.values[step])

    def finish(self, series: RateRecord, done: int) -> None:
        """Record the rates of the ``done`` steps the kernel ran."""
        for count, rates in self.record:
            series.record(rates, min(count, done))
            done -= min(count, done)


class EpochRuns:
    """fill(out): the rates of consecutive epochs, ``values[e]`` for ``counts[e]`` steps each, as many of
    them as ``out`` holds (the steps a kernel call ran)."""

    def __init__(self, values: list[float], counts: list[int]):
        self.values, self.counts = values, counts

    def __call__(self, out: np.ndarray) -> None:
        out[:] = np.repeat(self.values, self.counts)[:len(out)]


def all_same(values: list[float]) -> bool:
    """Every value is the first, bit for bit (0.0 and -0.0 differ)."""
    if not values or values.count(values[0]) != len(values):
        return not values
    return values[0] != 0 or len({math.copysign(1.0, v) for v in values}) == 1


def same_float(a: float, b: float) -> bool:
    """a and b are the same float, bit for bit (0.0 and -0.0 differ)."""
    return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)

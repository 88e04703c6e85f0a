"""The implementations that need nothing beyond skipnet's own dependencies: skipnet's fused and per-op
paths, its fit at the Trainer's defaults, the NumPy reference, and W1-W4's ceiling, the step's matrix
products through NumPy."""

from __future__ import annotations

import copy
import time

import numpy as np

from ..network import Network
from ..trainer import Trainer
from .timing import Impl
from .workloads import LR, Workload

# Trainer options that leave one training step and nothing else: batches in order, no divergence guard,
# no diagnostics (an extra: about one forward pass over the data every 10 epochs, and the fused path
# then runs one epoch per kernel call)
STEP_ONLY = {"shuffle": False, "divergence_factor": None, "diagnose": False}
DEFAULTS = "skipnet fit (defaults)"
FUSED = "skipnet fused"


class SkipnetFit(Impl):
    """``Trainer.fit`` timed from a fixed start: by default with STEP_ONLY's options, fused (whole epochs
    per kernel call) or per-op, or the NumPy reference (backend="numpy").

    options: the Trainer's keyword arguments beyond loss, optimizer, lr, batch_size and epochs, in place
    of STEP_ONLY and ``fused`` ({} is the Trainer's defaults, what a user's fit runs; see ``defaults``).
    Blocks are fits of up to ``fit_epochs`` epochs, or, with ``whole_fits``, of exactly that many."""

    def __init__(self, w: Workload, X: np.ndarray, y: np.ndarray, fused: bool = True, backend: str = "cython",
                 *, options: dict | None = None, name: str | None = None, fit_epochs: int = 20,
                 whole_fits: bool = False):
        self.name = name or ("numpy reference" if backend == "numpy" else
                             f"skipnet {'fused' if fused else 'per-op'}")
        self.net = w.make(0) if backend == "cython" else _rebuild(w.make(0), backend)
        self.start = self.net.internals.params.copy()
        self.X, self.y = X, y
        self.steps_per_epoch = -(-len(X) // w.batch)
        self.fit_epochs, self.whole_fits = fit_epochs, whole_fits
        options = {**STEP_ONLY, "fused": fused} if options is None else options
        self.schedule = options.get("schedule")
        self._prepared = []  # fresh copies of the schedule made ahead (prepare), one per fit to come
        self.trainer = Trainer(self.net, loss="l1", optimizer="sgd", lr=LR, batch_size=w.batch, epochs=1,
                               **options)

    def prepare(self, fits: int = 1) -> None:
        """Make the schedule's fresh copies for the next ``fits`` fits now, so that no fit is preceded by
        the copy (a deep copy runs enough Python to leave the caches and branch predictors in another
        state than the fits of variants without a schedule find them)."""
        if self.schedule is not None:
            self._prepared.extend(copy.deepcopy(self.schedule) for _ in range(fits))

    def block(self, steps: int) -> tuple[float, int]:
        """Fits of up to ``fit_epochs`` epochs each (the history of a fit grows with its steps), every
        one from the fixed start as a first fit (weights, the trainer's counters, a fresh copy of the
        schedule); a slow implementation gets part of an epoch, unless blocks are whole fits."""
        epochs = max(1, round(steps / self.steps_per_epoch))
        X, y = self.X, self.y
        if self.whole_fits:
            epochs = self.fit_epochs * max(1, round(epochs / self.fit_epochs))
        elif epochs == 1 and steps < self.steps_per_epoch:
            rows = steps * self.trainer.batch_size
            X, y = X[:rows], y[:rows]
        elapsed, done = 0.0, 0
        trainer = self.trainer
        while epochs > 0:
            self.net.internals.params[...] = self.start
            trainer.step_count = trainer.epoch_count = 0
            if self.schedule is not None:  # schedules keep state across fits (ReduceLROnPlateau's rate)
                trainer.schedule = self._prepared.pop() if self._prepared else copy.deepcopy(self.schedule)
            trainer.epochs = min(epochs, self.fit_epochs)
            epochs -= trainer.epochs
            t = time.perf_counter()
            hist = trainer.fit(X, y)
            elapsed += time.perf_counter() - t
            done += hist.steps_run
        return elapsed, done


def defaults(w: Workload, X: np.ndarray, y: np.ndarray, **kwargs) -> SkipnetFit:
    """``Trainer(net, loss=, optimizer=, lr=, batch_size=, epochs=).fit(X, y)`` with nothing else set
    (diagnostics on, shuffling, the divergence guard, fused): what a user's fit runs, timed like the fused
    row of STEP_ONLY, in blocks of as many steps as it. kwargs: SkipnetFit's name, fit_epochs, whole_fits."""
    impl = SkipnetFit(w, X, y, options={}, **{"name": DEFAULTS, **kwargs})
    impl.same_blocks_as = FUSED  # fits of the fused row's length: the per-fit costs weigh alike
    return impl


def _rebuild(net: Network, backend: str) -> Network:
    copy = Network(net.n_inputs, net.layers, net.skips, dtype=net.dtype.name, seed=net.seed, backend=backend)
    copy.internals.params[...] = net.internals.params
    return copy


class GemmFloor(Impl):
    """The step's matrix products through np.matmul (outputs preallocated), one step after the other:
    timed in blocks like every implementation, so that a busy machine slows it down alike."""

    name = "GEMM floor"

    def __init__(self, w: Workload, X: np.ndarray, y: np.ndarray):
        net = w.make(0)
        self.products = []
        rng = np.random.default_rng(0)
        widths = [net.n_inputs] + [layer.units for layer in net.layers]
        dt = net.dtype

        def product(a_shape, b_shape, ta=False, tb=False):
            a = rng.standard_normal(a_shape[::-1] if ta else a_shape).astype(dt)
            b = rng.standard_normal(b_shape[::-1] if tb else b_shape).astype(dt)
            a, b = (a.T if ta else a), (b.T if tb else b)
            self.products.append((a, b, np.empty((a.shape[0], b.shape[1]), dt)))

        B = w.batch
        for k, layer in enumerate(net.layers):  # z = h @ W.T; dW = dz.T @ h; dh = dz @ W
            fan_in, out = widths[k], layer.units
            product((B, fan_in), (fan_in, out), tb=True)
            product((out, B), (B, fan_in), ta=True)
            if k > 0:
                product((B, out), (out, fan_in))
        for s in net.skips:
            if not s.identity:
                fan_in, out = widths[s.src + 1], widths[s.dst + 1]
                product((B, fan_in), (fan_in, out), tb=True)
                product((out, B), (B, fan_in), ta=True)
                if s.src >= 0:
                    product((B, out), (out, fan_in))

    def block(self, steps: int) -> tuple[float, int]:
        products = self.products
        t = time.perf_counter()
        for _ in range(steps):
            for a, b, c in products:
                np.matmul(a, b, out=c)
        return time.perf_counter() - t, steps

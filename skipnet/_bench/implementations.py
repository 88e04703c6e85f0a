"""The implementations that need nothing beyond skipnet's own dependencies: skipnet's fused and per-op
paths, the NumPy reference, and W1-W4's ceiling, the step's matrix products through NumPy."""

from __future__ import annotations

import time

import numpy as np

from ..network import Network
from ..trainer import Trainer
from .timing import Impl
from .workloads import LR, Workload


class SkipnetFit(Impl):
    """``Trainer.fit`` with ``diagnose=False`` (the diagnostics are an extra, not part of a training
    step): fused (whole epochs per kernel call) or per-op, or the NumPy reference (backend="numpy")."""

    def __init__(self, w: Workload, X: np.ndarray, y: np.ndarray, fused: bool = True, backend: str = "cython"):
        self.name = "numpy reference" if backend == "numpy" else f"skipnet {'fused' if fused else 'per-op'}"
        self.net = w.make(0) if backend == "cython" else _rebuild(w.make(0), backend)
        self.start = self.net.internals.params.copy()
        self.X, self.y = X, y
        self.steps_per_epoch = -(-len(X) // w.batch)
        self.trainer = Trainer(self.net, loss="l1", optimizer="sgd", lr=LR, batch_size=w.batch, epochs=1,
                               shuffle=False, fused=fused, divergence_factor=None, diagnose=False)

    def block(self, steps: int) -> tuple[float, int]:
        """Fits of up to 20 epochs each (the history of a fit grows with its steps), every one from
        the fixed start; a slow implementation gets part of an epoch."""
        epochs = max(1, round(steps / self.steps_per_epoch))
        X, y = self.X, self.y
        if epochs == 1 and steps < self.steps_per_epoch:
            rows = steps * self.trainer.batch_size
            X, y = X[:rows], y[:rows]
        elapsed, done = 0.0, 0
        while epochs > 0:
            self.net.internals.params[...] = self.start
            self.trainer.epochs = min(epochs, 20)
            epochs -= self.trainer.epochs
            t = time.perf_counter()
            hist = self.trainer.fit(X, y)
            elapsed += time.perf_counter() - t
            done += hist.steps_run
        return elapsed, done


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

"""The strongest peers of ``skipnet bench`` (DESIGN.md section 5), when installed: JAX with the whole
epoch under ``jax.jit`` + ``lax.scan``, and for W0 a numba ``@njit`` epoch loop.

Both train the benchmark's networks with the same math as skipnet (L1 loss, mean over all outputs; plain
SGD; no shuffling), from the same fixed start in every timed block, and expose ``block(steps)`` like the
other implementations in ``skipnet.benchmark``.
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np


def limit_xla_threads(threads: int | None) -> str | None:
    """Start JAX's CPU backend on ``threads`` cores. XLA's flags alone do not hold its thread pool
    to one core (measured: W3 ran at 1.8 CPU-seconds per second with them), so the pool's threads
    are created while this thread is pinned to ``threads`` CPUs and keep that affinity; this thread
    is unpinned afterwards. Works only before JAX's first use in the process. Returns what was done."""
    if threads is None:
        return None
    if "jax" in sys.modules:
        return "not limited: jax was imported before the benchmark started"
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen="
                               f"{'true' if threads > 1 else 'false'} intra_op_parallelism_threads={threads}"
                               ).strip()
    if not hasattr(os, "sched_setaffinity"):
        return f"XLA_FLAGS={os.environ['XLA_FLAGS']} (no affinity on this platform)"
    allowed = os.sched_getaffinity(0)
    cpus = set(sorted(allowed)[:threads])
    os.sched_setaffinity(0, cpus)
    try:
        import jax

        jax.numpy.zeros(1).block_until_ready()  # creates the backend and its threads, pinned
    except ImportError:
        return None
    finally:
        os.sched_setaffinity(0, allowed)
    return f"XLA_FLAGS={os.environ['XLA_FLAGS']}; XLA's threads pinned to CPUs {sorted(cpus)}"


def _jax_forward(net, jnp):
    """yhat = f(params, x) for the network's plan: layers, skips (learned: x @ W.T; identity: x)."""
    relu = [layer.activation == "relu" for layer in net.layers]
    bias = [layer.bias for layer in net.layers]
    into = {k: [(i, s) for i, s in enumerate(net.skips) if s.dst == k] for k in range(len(net.layers))}

    def forward(params, x):
        h = {-1: x}
        for k in range(len(net.layers)):
            z = h[k - 1] @ params[f"layers.{k}.weight"].T
            if bias[k]:
                z = z + params[f"layers.{k}.bias"]
            for i, s in into[k]:
                z = z + (h[s.src] if s.identity else h[s.src] @ params[f"skips.{i}.weight"].T)
            h[k] = jnp.maximum(z, 0) if relu[k] else z
        return h[len(net.layers) - 1]

    return forward


class JaxScan:
    """One epoch per call: ``jax.jit`` of ``lax.scan`` over the epoch's stacked batches, parameters
    in and out (donated); the epoch ends by reading the loss, which waits for JAX's dispatch."""

    name = "jax scan"

    def __init__(self, w, X, y, lr: float):
        import jax
        import jax.numpy as jnp

        if np.dtype(w.dtype) == np.float64:
            jax.config.update("jax_enable_x64", True)
        net = w.make(0)
        self.jax = jax
        self.start = {k: v.copy() for k, v in net.parameters().items()}
        self.steps_per_epoch = len(X) // w.batch
        if self.steps_per_epoch * w.batch != len(X):
            raise ValueError(f"{w.name}: {len(X)} samples are not a whole number of batches of {w.batch}")
        shape = (self.steps_per_epoch, w.batch)
        self.Xs = jnp.asarray(X.reshape(shape + X.shape[1:]))
        self.Ys = jnp.asarray(y.reshape(shape + y.shape[1:]))
        forward = _jax_forward(net, jnp)

        def loss(params, xb, yb):
            return jnp.mean(jnp.abs(forward(params, xb) - yb))

        def step(params, batch):
            value, grads = jax.value_and_grad(loss)(params, *batch)
            return jax.tree_util.tree_map(lambda p, g: p - lr * g, params, grads), value

        def epoch(params, Xs, Ys):
            return jax.lax.scan(step, params, (Xs, Ys))

        self.epoch = jax.jit(epoch, donate_argnums=0)

    def block(self, steps):
        epochs = max(1, round(steps / self.steps_per_epoch))
        params = {k: self.jax.device_put(v) for k, v in self.start.items()}
        t = time.perf_counter()
        for _ in range(epochs):
            params, losses = self.epoch(params, self.Xs, self.Ys)
            float(losses[-1])
        return time.perf_counter() - t, epochs * self.steps_per_epoch


def _numba_epoch(njit):
    @njit(cache=False, fastmath=False)
    def exercise_epoch(x, y, w, lr, losses):
        """The exercise step (1-1-1 relu/relu/identity, no bias, learned skip 0 -> 2, L1, SGD, batch 1)
        over the epoch, the weights in local variables; as the hand C loop."""
        a, b, c, s = w[0], w[1], w[2], w[3]
        total = 0.0
        for i in range(x.shape[0]):
            z0 = a * x[i]
            h0 = z0 if z0 > 0 else 0.0
            z1 = b * h0
            h1 = z1 if z1 > 0 else 0.0
            r = c * h1 + s * h0 - y[i]
            g = 1.0 if r > 0 else (-1.0 if r < 0 else 0.0)
            losses[i] = abs(r)
            total += abs(r)
            dz1 = g * c if z1 > 0 else 0.0
            dz0 = dz1 * b + g * s if z0 > 0 else 0.0
            a -= lr * dz0 * x[i]
            b -= lr * dz1 * h0
            c -= lr * g * h1
            s -= lr * g * h0
        w[0], w[1], w[2], w[3] = a, b, c, s
        return total

    return exercise_epoch


class NumbaEpoch:
    """W0's step as a numba ``@njit`` loop, one epoch per call (PEERS.md's strongest peer on W0)."""

    name = "numba epoch"

    def __init__(self, w, X, y, lr: float):
        from numba import njit

        if w.name != "W0":
            raise ValueError("the numba loop is written for W0's exercise network only")
        self.fn = _numba_epoch(njit)
        self.x, self.y = np.ascontiguousarray(X[:, 0]), np.ascontiguousarray(y[:, 0])
        self.w = np.empty(4)
        self.losses = np.empty(len(self.x))
        self.lr = lr
        self.w[...] = 0.5
        self.fn(self.x, self.y, self.w, lr, self.losses)  # compile outside the timed blocks

    def block(self, steps):
        epochs = max(1, round(steps / len(self.x)))
        self.w[...] = 0.5
        t = time.perf_counter()
        for _ in range(epochs):
            self.fn(self.x, self.y, self.w, self.lr, self.losses)
        return time.perf_counter() - t, epochs * len(self.x)

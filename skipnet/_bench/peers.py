"""The peers of ``skipnet bench`` that are other libraries, each optional (imported when constructed):
PyTorch eager, and the strongest peers of docs/design.md section 5, JAX with the whole epoch under
``jax.jit`` + ``lax.scan`` and, for W0, a numba ``@njit`` epoch loop.

All of them train the benchmark's networks with the same math as skipnet (L1 loss, mean over all
outputs; plain SGD; no shuffling), from the same fixed start in every timed block, and expose
``block(steps)`` (timing.Impl).
"""

from __future__ import annotations

import time

import numpy as np

from ..network import Network
from .timing import Impl
from .workloads import LR, Workload


class TorchEager(Impl):
    """PyTorch eager: an nn.Module of nn.Linear layers with the network's weights, F.l1_loss,
    torch.optim.SGD; zero_grad / forward / backward / step per step."""

    name = "torch eager"

    def __init__(self, w: Workload, X: np.ndarray, y: np.ndarray):
        import torch

        self.torch = torch
        net = w.make(0)
        self.model = torch_module(net, torch)
        self.start = {k: v.clone() for k, v in self.model.state_dict().items()}
        self.X, self.y = torch.from_numpy(X), torch.from_numpy(y)
        self.batch = w.batch
        self.opt = torch.optim.SGD(self.model.parameters(), lr=LR)

    def block(self, steps: int) -> tuple[float, int]:
        F = self.torch.nn.functional
        self.model.load_state_dict(self.start)
        n, b = len(self.X), self.batch
        t = time.perf_counter()
        for i in range(steps):
            start = (i * b) % n
            xb, yb = self.X[start:start + b], self.y[start:start + b]
            self.opt.zero_grad()
            loss = F.l1_loss(self.model(xb), yb)
            loss.backward()
            self.opt.step()
        return time.perf_counter() - t, steps


def torch_module(net: Network, torch):
    """The network as an nn.Module of nn.Linear layers (skips: nn.Linear without bias, or identity),
    with the skipnet network's weights."""

    class SkipNetModule(torch.nn.Module):
        def __init__(self):
            super().__init__()
            widths = [net.n_inputs] + [layer.units for layer in net.layers]
            self.layers = torch.nn.ModuleList(torch.nn.Linear(widths[k], layer.units, bias=layer.bias)
                                              for k, layer in enumerate(net.layers))
            self.skips = torch.nn.ModuleList(
                torch.nn.Identity() if s.identity else torch.nn.Linear(widths[s.src + 1], widths[s.dst + 1],
                                                                       bias=False)
                for s in net.skips)
            self.relu = [layer.activation == "relu" for layer in net.layers]

        def forward(self, x):
            h = {-1: x}
            for k, layer in enumerate(self.layers):
                z = layer(h[k - 1])
                for skip, module in zip(net.skips, self.skips):
                    if skip.dst == k:
                        z = z + module(h[skip.src])
                h[k] = torch.relu(z) if self.relu[k] else z
            return h[len(self.layers) - 1]

    module = SkipNetModule()
    dtype = torch.float64 if net.dtype == np.float64 else torch.float32
    module.to(dtype)
    with torch.no_grad():
        for name, value in net.parameters().items():
            module.get_parameter(name).copy_(torch.from_numpy(value))
    return module


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


class JaxScan(Impl):
    """One epoch per call: ``jax.jit`` of ``lax.scan`` over the epoch's stacked batches, parameters
    in and out (donated); the epoch ends by reading the loss, which waits for JAX's dispatch."""

    name = "jax scan"

    def __init__(self, w: Workload, X: np.ndarray, y: np.ndarray, lr: float = LR):
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

    def block(self, steps: int) -> tuple[float, int]:
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


class NumbaEpoch(Impl):
    """W0's step as a numba ``@njit`` loop, one epoch per call (the strongest peer on W0)."""

    name = "numba epoch"

    def __init__(self, w: Workload, X: np.ndarray, y: np.ndarray, lr: float = LR):
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

    def block(self, steps: int) -> tuple[float, int]:
        epochs = max(1, round(steps / len(self.x)))
        self.w[...] = 0.5
        t = time.perf_counter()
        for _ in range(epochs):
            self.fn(self.x, self.y, self.w, self.lr, self.losses)
        return time.perf_counter() - t, epochs * len(self.x)

"""Side-by-side timing of skipnet against its peers and ceilings (``skipnet bench``, bench/compare.py).

Workloads W0-W4 are those of DESIGN.md section 5: one SGD step (L1 loss, lr 0.01, no shuffling) of a
ReLU network with a learned skip from the first hidden layer into the output. Every implementation
trains from the same fixed start in each timed block (so no run drifts into subnormal weights), and
all of them run in this one process, interleaved: in each round every implementation times one block
of whole epochs lasting at least ``block`` seconds, in an order that rotates from round to round, after
one untimed warm-up block. Reported per implementation: the median and fastest time per step, and
the paired ratio to every other implementation (the median over rounds of the ratio of the two
times measured in the same round), which is what survives a noisy, shared machine.

Implementations: skipnet fused (``Trainer.fit`` with ``diagnose=False``, whole epochs per kernel
call; the diagnostics are an extra, not part of a training step), skipnet per-op
(``fused=False``), the NumPy reference (``backend="numpy"``), PyTorch eager when installed (an
``nn.Module`` of ``nn.Linear`` layers, ``F.l1_loss``, ``torch.optim.SGD``), the strongest peers when
installed (JAX with the epoch under ``jax.jit`` + ``lax.scan``; for W0 a numba ``@njit`` epoch loop;
``skipnet._compiled_peers``), and the ceilings:
a hand-written C loop of the exercise step for W0 (compiled here with the system C compiler and
called through ctypes, one epoch per call), and for W1-W4 the step's GEMM time through NumPy (the
step's products, each with ``np.matmul(..., out=)``, run back to back step after step).

Further sections: element-wise kernels against a plain copy's bandwidth (1M elements, and one W4 layer in
cache), epoch time against data size, and two networks trained in two threads against one after the other.
"""

from __future__ import annotations

import ctypes
import json
import os
import platform
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from . import _compiled_peers as compiled_peers
from . import _kernels as K
from .network import Dense, Network, Skip
from .trainer import Trainer

LR = 0.01


@dataclass(frozen=True)
class Workload:
    """One benchmark workload: the network, its batch and data size, and the targets it is held to."""

    name: str
    description: str
    batch: int
    dtype: str
    n_samples: int
    make: Callable[[int], Network]  # seed -> network

    def data(self):
        """Inputs N(0, 1) and targets from a fixed random teacher of the same architecture."""
        rng = np.random.default_rng(1234)
        teacher = self.make(4321)
        X = rng.standard_normal((self.n_samples, teacher.n_inputs)).astype(teacher.dtype)
        return X, teacher.forward(X)


def _exercise(seed: int) -> Network:
    net = Network.exercise()
    if seed != 0:  # a teacher: other weights, same architecture
        net._params[...] = np.random.default_rng(seed).uniform(-1, 1, net._params.size)
    return net


def _residual(seed: int) -> Network:
    hidden = 16
    layers = [Dense(64, "relu") for _ in range(hidden)] + [Dense(1, "identity")]
    skips = [Skip(k - 2, k, identity=True) for k in range(1, hidden, 2)] + [Skip(0, hidden)]
    return Network(64, layers, skips, dtype="float32", seed=seed)


WORKLOADS = {
    "W0": Workload("W0", "exercise net 1-1-1-1, no bias, batch 1, float64", 1, "float64", 1000, _exercise),
    "W1": Workload("W1", "2-16-16-1, batch 32, float32", 32, "float32", 3200,
                   lambda s: Network.mlp(2, (16, 16), 1, skip="first-to-output", dtype="float32", seed=s)),
    "W2": Workload("W2", "32-128-128-128-1, batch 64, float32", 64, "float32", 6400,
                   lambda s: Network.mlp(32, (128,) * 3, 1, skip="first-to-output", dtype="float32", seed=s)),
    "W3": Workload("W3", "784-1024-1024-10, batch 256, float32", 256, "float32", 2560,
                   lambda s: Network.mlp(784, (1024, 1024), 10, skip="first-to-output", dtype="float32",
                                         seed=s)),
    "W4": Workload("W4", "64-[64 x 16, 8 residual blocks]-1, batch 128, float32", 128, "float32", 12800,
                   _residual),
}

# the targets of DESIGN.md section 5: (implementation, peer, "<=" or ">=", bound), on paired ratios
TARGETS = {
    "W0": [("skipnet fused", "C loop", "<=", 3.0)],
    "W1": [("torch eager", "skipnet fused", ">=", 100.0), ("numpy reference", "skipnet fused", ">=", 20.0)],
    "W2": [("skipnet fused", "GEMM floor", "<=", 1.2)],
    "W3": [("skipnet fused", "GEMM floor", "<=", 1.1), ("skipnet fused", "torch eager", "<=", 1.0)],
    "W4": [("skipnet fused", "GEMM floor", "<=", 1.3), ("torch eager", "skipnet fused", ">=", 4.0)],
}

# DESIGN.md section 5's goals beyond the targets: ahead of the strongest peer (when installed), at the
# peer's time ratio given; W0's strongest is a hand loop like the C loop, reported beside it
GOALS = {
    "W0": [("skipnet fused", "jax scan", "<=", 0.4), ("skipnet fused", "numba epoch", "<=", 1.0)],
    "W1": [("skipnet fused", "jax scan", "<=", 0.3)],
    "W2": [("skipnet fused", "jax scan", "<=", 0.75)],
    "W3": [("skipnet fused", "jax scan", "<=", 1.0)],
    "W4": [("skipnet fused", "jax scan", "<=", 0.7)],
}


# --------------------------------------------------------------------------- implementations
class _Impl:
    """A way to run training steps: ``block(steps)`` trains about that many steps from the fixed start
    and returns (seconds, steps run)."""

    name = ""

    def block(self, steps: int) -> tuple[float, int]:
        raise NotImplementedError


class _Skipnet(_Impl):
    def __init__(self, w: Workload, X, y, fused: bool = True, backend: str = "cython"):
        self.name = "numpy reference" if backend == "numpy" else f"skipnet {'fused' if fused else 'per-op'}"
        self.net = w.make(0) if backend == "cython" else _rebuild(w.make(0), backend)
        self.start = self.net._params.copy()
        self.X, self.y = X, y
        self.steps_per_epoch = -(-len(X) // w.batch)
        self.trainer = Trainer(self.net, loss="l1", optimizer="sgd", lr=LR, batch_size=w.batch, epochs=1,
                               shuffle=False, fused=fused, divergence_factor=None, diagnose=False)

    def block(self, steps):
        """Fits of up to 20 epochs each (the history of a fit grows with its steps), every one from
        the fixed start; a slow implementation gets part of an epoch."""
        epochs = max(1, round(steps / self.steps_per_epoch))
        X, y = self.X, self.y
        if epochs == 1 and steps < self.steps_per_epoch:
            rows = steps * self.trainer.batch_size
            X, y = X[:rows], y[:rows]
        elapsed, done = 0.0, 0
        while epochs > 0:
            self.net._params[...] = self.start
            self.trainer.epochs = min(epochs, 20)
            epochs -= self.trainer.epochs
            t = time.perf_counter()
            hist = self.trainer.fit(X, y)
            elapsed += time.perf_counter() - t
            done += hist.steps_run
        return elapsed, done


def _rebuild(net: Network, backend: str) -> Network:
    copy = Network(net.n_inputs, net.layers, net.skips, dtype=net.dtype.name, seed=net.seed, backend=backend)
    copy._params[...] = net._params
    return copy


class _Torch(_Impl):
    name = "torch eager"

    def __init__(self, w: Workload, X, y):
        import torch

        self.torch = torch
        net = w.make(0)
        self.model = _torch_module(net, torch)
        self.start = {k: v.clone() for k, v in self.model.state_dict().items()}
        self.X, self.y = torch.from_numpy(X), torch.from_numpy(y)
        self.batch = w.batch
        self.opt = torch.optim.SGD(self.model.parameters(), lr=LR)

    def block(self, steps):
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


def _torch_module(net: Network, torch):
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


_C_LOOP = r"""
#include <math.h>
/* One epoch of the exercise step: layers 1-1-1 relu/relu/identity, no bias, learned skip 0 -> 2,
   L1 loss, SGD, batch 1; w = (w0, w1, w2, skip); the loss of each step goes to losses. */
double exercise_epoch(const double *x, const double *y, long n, double *w, double lr, double *losses)
{
    double a = w[0], b = w[1], c = w[2], s = w[3], total = 0;
    for (long i = 0; i < n; i++) {
        double z0 = a * x[i], h0 = z0 > 0 ? z0 : 0;
        double z1 = b * h0, h1 = z1 > 0 ? z1 : 0;
        double r = c * h1 + s * h0 - y[i];
        double g = (r > 0 ? 1.0 : (r < 0 ? -1.0 : 0.0));
        losses[i] = fabs(r);
        total += fabs(r);
        double dz1 = z1 > 0 ? g * c : 0;
        double dz0 = z0 > 0 ? dz1 * b + g * s : 0;
        a -= lr * dz0 * x[i];
        b -= lr * dz1 * h0;
        c -= lr * g * h1;
        s -= lr * g * h0;
    }
    w[0] = a; w[1] = b; w[2] = c; w[3] = s;
    return total;
}
"""


class _CLoop(_Impl):
    """The exercise step as a hand-written C loop (gcc -O2, baseline x86-64), one epoch per call."""

    name = "C loop"

    def __init__(self, w: Workload, X, y):
        cc = shutil.which("cc") or shutil.which("gcc")
        if cc is None:
            raise RuntimeError("no C compiler (cc) on PATH")
        self.dir = tempfile.mkdtemp(prefix="skipnet-bench-")
        src, lib = os.path.join(self.dir, "loop.c"), os.path.join(self.dir, "loop.so")
        with open(src, "w") as f:
            f.write(_C_LOOP)
        subprocess.run([cc, "-O2", "-shared", "-fPIC", "-o", lib, src, "-lm"], check=True, capture_output=True)
        self.fn = ctypes.CDLL(lib).exercise_epoch
        dp = ctypes.POINTER(ctypes.c_double)
        self.fn.argtypes = [dp, dp, ctypes.c_long, dp, ctypes.c_double, dp]
        self.fn.restype = ctypes.c_double
        self.x, self.y = np.ascontiguousarray(X[:, 0]), np.ascontiguousarray(y[:, 0])
        self.w = np.empty(4)
        self.losses = np.empty(len(self.x))
        self.ptrs = [a.ctypes.data_as(dp) for a in (self.x, self.y, self.w, self.losses)]

    def block(self, steps):
        epochs = max(1, round(steps / len(self.x)))
        x, y, w, losses = self.ptrs
        self.w[...] = 0.5
        t = time.perf_counter()
        for _ in range(epochs):
            self.fn(x, y, len(self.x), w, LR, losses)
        return time.perf_counter() - t, epochs * len(self.x)


class _GemmFloor(_Impl):
    """The step's matrix products through np.matmul (outputs preallocated), one step after the other:
    timed in blocks like every implementation, so that a busy machine slows it down alike."""

    name = "GEMM floor"

    def __init__(self, w: Workload, X, y):
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

    def block(self, steps):
        products = self.products
        t = time.perf_counter()
        for _ in range(steps):
            for a, b, c in products:
                np.matmul(a, b, out=c)
        return time.perf_counter() - t, steps


# --------------------------------------------------------------------------- the interleaved protocol
@dataclass
class Result:
    workload: str
    per_step: dict = field(default_factory=dict)   # impl -> [seconds per step, one per round]
    skipped: dict = field(default_factory=dict)    # impl -> reason

    def median(self, impl):
        return statistics.median(self.per_step[impl])

    def best(self, impl):
        return min(self.per_step[impl])

    def ratio(self, impl, peer):
        """Median over rounds of time(impl) / time(peer) measured in the same round."""
        return statistics.median(a / b for a, b in zip(self.per_step[impl], self.per_step[peer]))


def _time_workload(w: Workload, rounds: int, block: float, torch_ok: bool, log, compiled: bool = True,
                   settle: float = 0.15) -> Result:
    X, y = w.data()
    result = Result(w.name)
    makers = [("skipnet fused", lambda: _Skipnet(w, X, y, fused=True)),
              ("skipnet per-op", lambda: _Skipnet(w, X, y, fused=False)),
              ("numpy reference", lambda: _Skipnet(w, X, y, backend="numpy"))]
    if torch_ok:
        makers.append(("torch eager", lambda: _Torch(w, X, y)))
    if compiled:
        makers.append(("jax scan", lambda: compiled_peers.JaxScan(w, X, y, LR)))
        if w.name == "W0":
            makers.append(("numba epoch", lambda: compiled_peers.NumbaEpoch(w, X, y, LR)))
    makers.append(("C loop", lambda: _CLoop(w, X, y)) if w.name == "W0" else
                  ("GEMM floor", lambda: _GemmFloor(w, X, y)))
    impls = []
    for name, make in makers:
        try:
            impls.append(make())
        except Exception as exc:  # noqa: BLE001 - an optional peer that cannot run is reported, not fatal
            result.skipped[name] = f"{type(exc).__name__}: {exc}"
    # steps per block: grow a warm-up block until it lasts a quarter of a block, then scale it
    steps = {}
    for impl in impls:
        count, (seconds, done) = 1, impl.block(1)
        while seconds < block / 4:
            count *= 4
            seconds, done = impl.block(count)
        steps[impl.name] = max(1, int(done * block / seconds))
        impl.block(steps[impl.name])  # the untimed warm-up block
        result.per_step[impl.name] = []
    for r in range(rounds):
        order = impls[r % len(impls):] + impls[:r % len(impls)]
        for impl in order:
            seconds, done = impl.block(steps[impl.name])
            result.per_step[impl.name].append(seconds / done)
            time.sleep(settle)  # let this library's worker threads go idle before the next one runs
        log(f"  {w.name} round {r + 1}/{rounds}")
    return result


# --------------------------------------------------------------------------- extra sections
def _elementwise(rounds: int, size: int = 1 << 20) -> dict:
    """GB/s (bytes read + written) of the element-wise kernels on float32 and of a plain copy."""
    rng = np.random.default_rng(0)
    # one buffer, the arrays 1 KiB + 256 bytes apart modulo 4 KiB: arrays that start at the same
    # address modulo 4 KiB (as separate large allocations do) slow reading one while writing another
    stride = size + 320
    pool = np.empty(4 * stride, np.float32)
    a, b, out = (pool[i * stride:i * stride + size] for i in range(3))
    a[...], b[...] = rng.standard_normal(size), rng.standard_normal(size)
    a2, b2, out2 = a.reshape(-1, 1), b.reshape(-1, 1), out.reshape(-1, 1)
    nbytes = size * 4
    kernels = {
        "copy (np.copyto)": (lambda: np.copyto(out, a), 2 * nbytes),
        "relu_fwd": (lambda: K.relu_fwd(a, out), 2 * nbytes),
        "relu_bwd": (lambda: K.relu_bwd(b, a, out), 3 * nbytes),
        "add_into (skip)": (lambda: K.add_into(out, a, True), 3 * nbytes),
        "l1 loss + gradient": (lambda: K.l1_loss(a2, b2, out2), 3 * nbytes),
        "numpy maximum(a, 0)": (lambda: np.maximum(a, 0, out=out), 2 * nbytes),
    }
    speeds = {name: [] for name in kernels}
    for _ in range(rounds):
        for name, (fn, moved) in kernels.items():
            fn()
            best = float("inf")
            for _ in range(5):
                t = time.perf_counter()
                for _ in range(10):
                    fn()
                best = min(best, (time.perf_counter() - t) / 10)
            speeds[name].append(moved / best / 1e9)
    copy = speeds["copy (np.copyto)"]
    return {name: {"GB/s": statistics.median(v),
                   "of copy": statistics.median(x / y for x, y in zip(v, copy))} for name, v in speeds.items()}


def _threads_over_serial(jobs) -> float:
    """Wall time of the jobs in one thread each, over their time one after the other. The threads
    are started before the clock and wait at a barrier, so that what is timed is the jobs, not the
    creation of threads (which took 0.5-6 ms here, under the GIL, against jobs of tens of ms)."""
    t = time.perf_counter()
    for job in jobs:
        job()
    serial = time.perf_counter() - t
    ready, go = threading.Barrier(len(jobs) + 1), threading.Barrier(len(jobs) + 1)

    def worker(job):
        ready.wait()
        go.wait()
        job()

    workers = [threading.Thread(target=worker, args=(job,)) for job in jobs]
    for th in workers:
        th.start()
    ready.wait()
    t = time.perf_counter()
    go.wait()
    for th in workers:
        th.join()
    return (time.perf_counter() - t) / serial


def _scaling(rounds: int) -> dict:
    """W1's fused epoch time at n and 10n samples (per-fit costs, ~0.1 ms, taken out); two W1
    networks, each fitting 12 epochs of 32,000 samples (about 50 ms) from a fixed start, in two
    threads against in turn, with two controls of the same length in the same rounds."""
    w = WORKLOADS["W1"]
    rng = np.random.default_rng(0)
    X = rng.standard_normal((32000, 2)).astype(np.float32)
    y = np.sin(X[:, :1]) * X[:, 1:]

    def fit(net, n, epochs=3, start=None):
        if start is not None:  # every fit from the same weights: none drifts into dead units
            net._params[...] = start
        Trainer(net, loss="l1", lr=LR, batch_size=w.batch, epochs=epochs, shuffle=False,
                divergence_factor=None, diagnose=False).fit(X[:n], y[:n])

    linear, threads, control, blas = [], [], [], []
    try:  # the machine's own parallelism: the hand C loop in two threads (ctypes releases the GIL),
        # over 400 copies of W0's data so that one call runs for milliseconds: with calls of a few
        # microseconds, the threads would mostly wait for the GIL between them
        X0, y0 = WORKLOADS["W0"].data()
        loops = [_CLoop(WORKLOADS["W0"], np.tile(X0, (400, 1)), np.tile(y0, (400, 1))) for _ in range(2)]
    except Exception:  # noqa: BLE001 - no C compiler: no control measurement
        loops = None
    from threadpoolctl import threadpool_limits  # a dependency of skipnet (sweeps)

    # a second control, compute-bound like W1's tiles: float32 products through NumPy's BLAS, held to
    # one thread, ~50 ms per thread (ctypes-free: NumPy releases the GIL around gemm)
    mats = [[np.random.default_rng(i).standard_normal((256, 256)).astype(np.float32) for _ in range(3)]
            for i in range(2)]

    def gemms(a, b, c, count):
        for _ in range(count):
            np.matmul(a, b, out=c)

    def best_of(net, start, repeats, n, epochs):
        """The fastest of a few fits of net from start (other work on the machine only ever adds time)."""
        best = float("inf")
        for _ in range(repeats):
            t = time.perf_counter()
            fit(net, n, epochs, start)
            best = min(best, time.perf_counter() - t)
        return best

    def epoch_time(net, start, repeats, n):
        """Seconds per epoch: fits of 4 and of 1 epoch differ by 3 epochs and no per-fit cost."""
        return (best_of(net, start, repeats, n, 4) - best_of(net, start, repeats, n, 1)) / 3

    net = w.make(0)
    start = net._params.copy()
    fit(net, 3200, start=start)  # warm-up: workspaces, caches
    for _ in range(rounds):
        linear.append(epoch_time(net, start, 5, 32000) / epoch_time(net, start, 10, 3200) / 10)
    nets = [w.make(0), w.make(1)]
    starts = [n._params.copy() for n in nets]
    for net, start in zip(nets, starts):
        fit(net, 3200, start=start)
    for _ in range(rounds + 2):
        threads.append(_threads_over_serial([lambda net=net, s=s: fit(net, 32000, 12, s)
                                             for net, s in zip(nets, starts)]))
        if loops:
            seconds, steps_run = loops[0].block(1)
            steps = int(0.05 / max(seconds / steps_run, 1e-12))
            control.append(_threads_over_serial([lambda loop=loop, n=steps: loop.block(n) for loop in loops]))
        with threadpool_limits(1, user_api="blas"):
            t = time.perf_counter()
            gemms(*mats[0], 10)
            count = max(1, int(0.05 / ((time.perf_counter() - t) / 10)))
            blas.append(_threads_over_serial([lambda m=m, k=count: gemms(*m, k) for m in mats]))
    out = {"10x data: time / (10 x time)": statistics.median(linear),
           "two threads / serial": statistics.median(threads)}
    if control:
        out["control, C loop: two threads / serial"] = statistics.median(control)
    if blas:
        out["control, sgemm 256: two threads / serial"] = statistics.median(blas)
        # what the machine's state at the time takes out: W1's ratio over the control's, round by round
        out["two threads / serial, over the sgemm control's"] = statistics.median(
            a / b for a, b in zip(threads, blas))
    return out


# --------------------------------------------------------------------------- report
def _fmt(seconds: float) -> str:
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6), ("ns", 1e-9)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def _check(result: Result, target) -> tuple[str, float | None, bool | None]:
    impl, peer, op, bound = target
    text = f"{impl} / {peer} {op} {bound:g}"
    if impl not in result.per_step or peer not in result.per_step:
        return text, None, None
    value = result.ratio(impl, peer)
    return text, value, (value <= bound) if op == "<=" else (value >= bound)


def run(quick: bool = False, workloads=None, json_path: str | None = None, threads: int | None = None,
        log=print, rounds: int | None = None, block: float | None = None, torch: bool = True,
        compiled: bool = True) -> dict:
    """Run the comparison, print the tables, and return (and optionally write as JSON) the results.

    threads: BLAS/OpenMP threads for every library (threadpoolctl, torch.set_num_threads); None
    keeps their defaults (here: one per core). rounds, block: override the protocol's (7 rounds of
    0.25 s blocks; 3 of 0.05 s with quick). torch=False leaves PyTorch out even when installed;
    compiled=False leaves out JAX and numba (the strongest peers, timed when installed)."""
    if threads is not None:
        try:
            from threadpoolctl import threadpool_limits
        except ImportError as exc:
            raise RuntimeError("threads= needs threadpoolctl (pip install 'skipnet[bench]')") from exc
        with threadpool_limits(threads):
            return _run(quick, workloads, json_path, threads, log, rounds, block, torch, compiled)
    return _run(quick, workloads, json_path, threads, log, rounds, block, torch, compiled)


def _versions(*modules) -> dict:
    out = {}
    for name in modules:
        try:
            out[name] = __import__(name).__version__
        except ImportError:
            out[name] = None
    return out


def _run(quick, workloads, json_path, threads, log, rounds, block, use_torch, compiled) -> dict:
    rounds = rounds or (3 if quick else 7)
    block = block or (0.05 if quick else 0.25)
    # OpenBLAS's idle workers spin for about 0.1 s after a call; with more than one thread per library,
    # a library's spinning workers would take the cores of the next one timed (W3 at two threads:
    # skipnet fused / floor 2.4-2.8 after a 0.02 s pause, 1.12-1.25 after 0.15 s)
    settle = 0.02 if threads == 1 else 0.15
    torch_ok, torch_version = False, None
    if use_torch:
        try:
            import torch

            torch_ok, torch_version = True, torch.__version__
            if threads is not None:
                torch.set_num_threads(threads)
        except ImportError:
            pass
    xla_flags = compiled_peers.limit_xla_threads(threads) if compiled else None
    names = list(workloads or WORKLOADS)
    unknown = [n for n in names if n not in WORKLOADS]
    if unknown:
        raise ValueError(f"unknown workload(s) {unknown}; choose from {list(WORKLOADS)}")
    machine = {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
               "python": platform.python_version(), "numpy": np.__version__, "torch": torch_version,
               "simd": K.get_simd(), "blas_threshold": K.get_blas_threshold(), "threads": threads,
               **(_versions("jax", "numba") if compiled else {}), "xla_flags": xla_flags}
    log(f"skipnet bench: {rounds} rounds, blocks of >= {block:g} s; {machine}")
    report = {"machine": machine, "quick": quick, "workloads": {}, "elementwise": None,
              "elementwise_in_cache": None, "scaling": None}
    for name in names:
        w = WORKLOADS[name]
        res = _time_workload(w, rounds, block, torch_ok, log, compiled, settle)
        impls = list(res.per_step)
        log(f"\n{name}: {w.description}")
        log(f"  {'implementation':<17} {'median/step':>12} {'fastest':>10}   paired ratio to: "
            + "  ".join(f"{p:>15}" for p in impls))
        for impl in impls:
            ratios = "  ".join(f"{res.ratio(impl, p):>15.3g}" for p in impls)
            log(f"  {impl:<17} {_fmt(res.median(impl)):>12} {_fmt(res.best(impl)):>10}   {'':17}{ratios}")
        for impl, why in res.skipped.items():
            log(f"  {impl}: skipped ({why})")
        checks, goals = [], []
        for kind, bounds, out in (("target", TARGETS, checks), ("goal", GOALS, goals)):
            for target in bounds.get(name, []):
                text, value, ok = _check(res, target)
                if kind == "goal" and value is None:
                    continue  # the peer is not installed
                out.append({"target": text, "value": value, "met": ok})
                verdict = "n/a" if ok is None else ("met" if ok else "MISSED")
                log(f"  {kind} {text}: {'-' if value is None else f'{value:.3g}'} ({verdict})")
        report["workloads"][name] = {
            "description": w.description,
            "median_per_step": {i: res.median(i) for i in impls},
            "fastest_per_step": {i: res.best(i) for i in impls},
            "paired_ratio": {i: {p: res.ratio(i, p) for p in impls} for i in impls},
            "per_round": res.per_step, "skipped": res.skipped, "targets": checks, "goals": goals}
    if workloads is None:
        # 1M elements measure memory bandwidth; one W4 layer (128 x 64) stays in cache, where SIMD tells
        for key, size, what in [("elementwise", 1 << 20, "1M float32"),
                                ("elementwise_in_cache", 8192, "8192 float32 (one W4 layer, in cache)")]:
            report[key] = _elementwise(rounds, size)
            log(f"\nelement-wise kernels, {what} (bytes read + written):")
            for name, v in report[key].items():
                log(f"  {name:<22} {v['GB/s']:6.1f} GB/s  {100 * v['of copy']:5.0f}% of copy")
        report["scaling"] = _scaling(rounds)
        log("\nscaling (W1, fused; the control shows what two threads of plain C get on this machine now):")
        for name, v in report["scaling"].items():
            log(f"  {name}: {v:.3g}")
    if json_path:
        with open(json_path, "w") as f:
            json.dump(report, f, indent=1)
        log(f"\nwrote {json_path}")
    return report

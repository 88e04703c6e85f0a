"""The sections of ``skipnet bench`` beyond the workloads: the element-wise kernels against a plain
copy's bandwidth, and W1's epoch time against data size and against two networks in two threads."""

from __future__ import annotations

import statistics
import time

import numpy as np

from .. import _kernels as K
from ..trainer import Trainer
from .c_loop import CLoop
from .timing import threads_over_serial
from .workloads import LR, WORKLOADS


def elementwise(rounds: int, size: int = 1 << 20) -> dict:
    """GB/s (bytes read + written) of the element-wise kernels on ``size`` float32 elements and of a
    plain copy, medians over rounds: {kernel: {"GB/s": ..., "of copy": ...}}."""
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


def scaling(rounds: int) -> dict:
    """W1's fused epoch time at n and 10n samples (the per-fit costs taken out); two W1
    networks, each fitting 12 epochs of 32,000 samples (about 50 ms) from a fixed start, in two
    threads against in turn, with two controls of the same length in the same rounds."""
    w = WORKLOADS["W1"]
    rng = np.random.default_rng(0)
    X = rng.standard_normal((32000, 2)).astype(np.float32)
    y = np.sin(X[:, :1]) * X[:, 1:]

    def fit(net, n, epochs=3, start=None):
        if start is not None:  # every fit from the same weights: none drifts into dead units
            net.internals.params[...] = start
        Trainer(net, loss="l1", lr=LR, batch_size=w.batch, epochs=epochs, shuffle=False,
                divergence_factor=None, diagnose=False).fit(X[:n], y[:n])

    linear, threads, control, blas = [], [], [], []
    try:  # the machine's own parallelism: the hand C loop in two threads (ctypes releases the GIL),
        # over 400 copies of W0's data so that one call runs for milliseconds: with calls of a few
        # microseconds, the threads would mostly wait for the GIL between them
        X0, y0 = WORKLOADS["W0"].data()
        loops = [CLoop(WORKLOADS["W0"], np.tile(X0, (400, 1)), np.tile(y0, (400, 1))) for _ in range(2)]
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
    start = net.internals.params.copy()
    fit(net, 3200, start=start)  # warm-up: workspaces, caches
    for _ in range(rounds):
        linear.append(epoch_time(net, start, 5, 32000) / epoch_time(net, start, 10, 3200) / 10)
    nets = [w.make(0), w.make(1)]
    starts = [n.internals.params.copy() for n in nets]
    for net, start in zip(nets, starts):
        fit(net, 3200, start=start)
    for _ in range(rounds + 2):
        threads.append(threads_over_serial([lambda net=net, s=s: fit(net, 32000, 12, s)
                                             for net, s in zip(nets, starts)]))
        if loops:
            seconds, steps_run = loops[0].block(1)
            steps = int(0.05 / max(seconds / steps_run, 1e-12))
            control.append(threads_over_serial([lambda loop=loop, n=steps: loop.block(n) for loop in loops]))
        with threadpool_limits(1, user_api="blas"):
            t = time.perf_counter()
            gemms(*mats[0], 10)
            count = max(1, int(0.05 / ((time.perf_counter() - t) / 10)))
            blas.append(threads_over_serial([lambda m=m, k=count: gemms(*m, k) for m in mats]))
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

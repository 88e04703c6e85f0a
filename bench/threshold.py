"""Where BLAS gemm starts to beat the register tiles: time each product form of a dense layer both ways.

    python bench/threshold.py [--threads N] [--simd avx2|baseline]

For each shape (n, k, m) -- batch n, fan-in k, fan-out m -- and each of the three products of a layer
(forward X @ W.T, weight gradient dZ.T @ X, input gradient dZ @ W), the best of several runs through
the tiles (threshold forced high) and through BLAS (threshold 0), float32, interleaved. Prints the
ratio tile / BLAS against m*n*k; the library's threshold (skipnet._kernels.set_blas_threshold) is the
size above which BLAS wins consistently.
"""

from __future__ import annotations

import argparse
import contextlib
import time

import numpy as np

from skipnet import _kernels as K

SHAPES = [(n, k, m) for n in (32, 64, 128, 256) for k, m in
          ((16, 16), (32, 32), (64, 64), (128, 128), (256, 256), (512, 512), (64, 1), (128, 10), (784, 64),
           (1024, 10), (784, 1024), (1024, 1024))]


def best_time(fn, repeats=7):
    fn()
    reps, t = 1, 0.0
    while t < 2e-3:
        start = time.perf_counter()
        for _ in range(reps):
            fn()
        t = time.perf_counter() - start
        reps *= 2
    reps //= 2
    best = t / reps
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(reps):
            fn()
        best = min(best, (time.perf_counter() - start) / reps)
    return best


def measure(n, k, m, rng):
    """{(product, path): seconds} for one layer shape, float32."""
    X = rng.standard_normal((n, k)).astype(np.float32)
    W = rng.standard_normal((m, k)).astype(np.float32)
    dZ = rng.standard_normal((n, m)).astype(np.float32)
    Z, dW, dX = np.empty((n, m), np.float32), np.empty((m, k), np.float32), np.empty((n, k), np.float32)
    empty = np.empty(0, np.float32)
    forward = lambda: K.dense_fwd(X, W, empty, Z, False, False)
    weight_grad = lambda: K.dense_bwd(dZ, X, W, dW, empty, dX[:0], False, False, False)
    both_grads = lambda: K.dense_bwd(dZ, X, W, dW, empty, dX, False, True, False)
    times = {}
    for path, threshold in (("tile", 1 << 62), ("blas", 0)):
        K.set_blas_threshold(threshold)
        times["X@W.T", path] = best_time(forward)
        times["dZ.T@X", path] = best_time(weight_grad)
        times["dZ@W", path] = max(best_time(both_grads) - times["dZ.T@X", path], 1e-9)  # dX alone
    return times


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None, help="BLAS threads (threadpoolctl)")
    parser.add_argument("--simd", choices=("avx2", "baseline"), default=None,
                        help="the tiles' code (skipnet._kernels.set_simd; default: the best available)")
    args = parser.parse_args(argv)
    if args.simd:
        K.set_simd(args.simd)
    limit = contextlib.nullcontext()
    if args.threads:
        from threadpoolctl import threadpool_limits

        limit = threadpool_limits(args.threads)
    rng = np.random.default_rng(0)
    old = K.get_blas_threshold()
    rows = []
    try:
        with limit:
            for n, k, m in SHAPES:
                times = measure(n, k, m, rng)
                for name in ("X@W.T", "dZ.T@X", "dZ@W"):
                    rows.append((n * k * m, n, k, m, name, times[name, "tile"], times[name, "blas"]))
    finally:
        K.set_blas_threshold(old)
    print(f"{'m*n*k':>10} {'n':>4} {'k':>4} {'m':>4} {'product':>7} {'tile':>10} {'blas':>10} {'tile/blas':>9}")
    for size, n, k, m, name, tile, blas in sorted(rows):
        print(f"{size:>10} {n:>4} {k:>4} {m:>4} {name:>7} {tile * 1e6:>8.2f}us {blas * 1e6:>8.2f}us "
              f"{tile / blas:>9.2f}")


if __name__ == "__main__":
    main()

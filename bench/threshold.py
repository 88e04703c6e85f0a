"""Where BLAS gemm starts to beat the register tiles: time each product form of a dense layer both ways.

    python bench/threshold.py [--threads N] [--simd baseline|generic512|avx2|avx512] [--runs R]

For each shape (n, k, m) -- batch n, fan-in k, fan-out m -- and each of the three products of a layer
(forward X @ W.T, weight gradient dZ.T @ X, input gradient dZ @ W), the best of several runs through
the tiles (threshold forced high) and through BLAS (threshold 0), float32, each product called on its
own (skipnet._kernels.matmul_views), tile and BLAS blocks alternating; with --runs R, each path's best
over R passes through every shape (a pass takes about 10 s), so that a block that met other work on the
machine in one pass does not decide a threshold. Prints the
ratio tile / BLAS against m*n*k, then per product form the threshold (a power of two) that keeps every
measured product closest to the better of the two paths, with the worst ratio it leaves (1.10: one
product 10% slower than the better path) and the library's current default for the form
(skipnet._kernels.blas_thresholds, which bench/README.md records per host and level).
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


def calls_per_block(fn):
    """How many calls of fn take about 2 ms."""
    fn()
    reps, t = 1, 0.0
    while t < 2e-3:
        start = time.perf_counter()
        for _ in range(reps):
            fn()
        t = time.perf_counter() - start
        reps *= 2
    return max(reps // 2, 1)


def block_time(fn, reps):
    start = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - start) / reps


def measure(n, k, m, rng, rounds=7):
    """{(product, path): seconds} for one layer shape, float32: each product form called directly
    (skipnet._kernels.matmul_views with the operands' strides as a dense layer has them), the best of
    `rounds` blocks per path, tile and BLAS blocks alternating so that both see the same machine."""
    X = rng.standard_normal((n, k)).astype(np.float32)
    W = rng.standard_normal((m, k)).astype(np.float32)
    dZ = rng.standard_normal((n, m)).astype(np.float32)
    Z, dW, dX = np.empty((n, m), np.float32), np.empty((m, k), np.float32), np.empty((n, k), np.float32)
    products = {"X@W.T": lambda: K.matmul_views(X, W.T, Z, False),
                "dZ.T@X": lambda: K.matmul_views(dZ.T, X, dW, False),
                "dZ@W": lambda: K.matmul_views(dZ, W, dX, False)}
    paths = (("tile", 1 << 62), ("blas", 0))
    times = {}
    for name, fn in products.items():
        K.set_blas_threshold(paths[0][1])
        reps = calls_per_block(fn)
        for round_ in range(rounds):
            for path, threshold in paths[::-1] if round_ % 2 else paths:
                K.set_blas_threshold(threshold)
                if round_ == 0:
                    fn()  # warm-up
                t = block_time(fn, reps)
                times[name, path] = min(t, times.get((name, path), t))
    return times


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None, help="BLAS threads (threadpoolctl)")
    parser.add_argument("--simd", choices=("baseline", "generic512", "avx2", "avx512"), default=None,
                        help="the tiles' level (skipnet._kernels.set_simd; default: the CPU's best)")
    parser.add_argument("--runs", type=int, default=1,
                        help="passes through every shape; each path's best time over them (default 1)")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error(f"--runs must be at least 1, got {args.runs}")
    if args.simd and K.set_simd(args.simd) != args.simd:
        parser.error(f"this CPU cannot run --simd {args.simd} (it runs {', '.join(K.simd_levels())})")
    defaults = K.blas_thresholds()
    limit = contextlib.nullcontext()
    if args.threads:
        from threadpoolctl import threadpool_limits

        limit = threadpool_limits(args.threads)
    rng = np.random.default_rng(0)
    old = K.get_blas_threshold()
    best = {}
    try:
        with limit:
            for _ in range(args.runs):
                for n, k, m in SHAPES:
                    for key, t in measure(n, k, m, rng).items():
                        best[(n, k, m, *key)] = min(t, best.get((n, k, m, *key), t))
    finally:
        K.set_blas_threshold(old)
    rows = [(n * k * m, n, k, m, name, best[n, k, m, name, "tile"], best[n, k, m, name, "blas"])
            for n, k, m in SHAPES for name in ("X@W.T", "dZ.T@X", "dZ@W")]
    print(f"simd {K.get_simd()} (CPU: {K.cpu_simd_level()}), BLAS {K.simd_report()['blas']}, "
          f"best of {args.runs} run{'s' * (args.runs > 1)}")
    print(f"{'m*n*k':>10} {'n':>4} {'k':>4} {'m':>4} {'product':>12} {'tile':>10} {'blas':>10} {'tile/blas':>9}")
    for size, n, k, m, name, tile, blas in sorted(rows):
        print(f"{size:>10} {n:>4} {k:>4} {m:>4} {name:>12} {tile * 1e6:>8.2f}us {blas * 1e6:>8.2f}us "
              f"{tile / blas:>9.2f}")
    print()
    print(f"{'product':>12} {'best threshold':>14} {'worst ratio':>11} {'default':>9} {'worst at default':>16}")
    for name in defaults:
        form = [(size, tile, blas) for size, _, _, _, product, tile, blas in rows if product == name]
        exponent = min(range(10, 31), key=lambda e: (worst_ratio(form, 1 << e), -e))
        print(f"{name:>12} {'2^' + str(exponent):>14} {worst_ratio(form, 1 << exponent):>11.2f} "
              f"{defaults[name]:>9} {worst_ratio(form, defaults[name]):>16.2f}")


def worst_ratio(form, threshold):
    """The largest time / (the better path's time) over one form's products, BLAS from threshold up."""
    return max((blas if size >= threshold else tile) / min(tile, blas) for size, tile, blas in form)


if __name__ == "__main__":
    main()

"""Each kernel of skipnet._kernels against its NumPy equivalent, 1x1 up to 1024x1024, both dtypes.

A dense layer of size s is a batch of s rows, s inputs and s outputs; element-wise kernels and losses
work on s x s elements; optimizer updates on s x s parameters."""

import numpy as np
import pytest

from skipnet import _kernels as K

SIZES = [1, 16, 64, 256, 1024]
DTYPES = ["float32", "float64"]


def _arrays(size, dtype, count, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((size, size)).astype(dtype) for _ in range(count)]


def _params(impl, size, dtype):
    return pytest.mark.parametrize("impl,size,dtype", [(i, s, d) for s in SIZES for d in DTYPES for i in impl])


@_params(["skipnet", "numpy"], SIZES, DTYPES)
def test_dense_forward(benchmark, impl, size, dtype):
    X, W, Z = _arrays(size, dtype, 3)
    b = np.zeros(size, dtype)
    benchmark.group = f"dense forward {size}x{size} {dtype}"
    if impl == "skipnet":
        benchmark(K.dense_fwd, X, W, b, Z, True, False)
    else:
        benchmark(lambda: np.add(np.matmul(X, W.T, out=Z), b, out=Z))


@_params(["skipnet", "numpy"], SIZES, DTYPES)
def test_dense_backward(benchmark, impl, size, dtype):
    dZ, X, W, dW, dX = _arrays(size, dtype, 5)
    db = np.empty(size, dtype)
    benchmark.group = f"dense backward {size}x{size} {dtype}"
    if impl == "skipnet":
        benchmark(K.dense_bwd, dZ, X, W, dW, db, dX, True, True, False)
    else:
        def step():
            np.matmul(dZ.T, X, out=dW)
            dZ.sum(axis=0, out=db)
            np.matmul(dZ, W, out=dX)
        benchmark(step)


@_params(["skipnet", "numpy"], SIZES, DTYPES)
def test_relu_forward(benchmark, impl, size, dtype):
    Z, H = (a.reshape(-1) for a in _arrays(size, dtype, 2))
    benchmark.group = f"relu forward {size}x{size} {dtype}"
    if impl == "skipnet":
        benchmark(K.relu_fwd, Z, H)
    else:
        benchmark(np.maximum, Z, 0, out=H)


@_params(["skipnet", "numpy"], SIZES, DTYPES)
def test_relu_backward(benchmark, impl, size, dtype):
    dH, Z, dZ = (a.reshape(-1) for a in _arrays(size, dtype, 3))
    benchmark.group = f"relu backward {size}x{size} {dtype}"
    if impl == "skipnet":
        benchmark(K.relu_bwd, dH, Z, dZ)
    else:
        benchmark(lambda: np.multiply(dH, Z > 0, out=dZ))


@_params(["skipnet", "numpy"], SIZES, DTYPES)
def test_skip_addition(benchmark, impl, size, dtype):
    Y, X = (a.reshape(-1) for a in _arrays(size, dtype, 2))
    benchmark.group = f"identity-skip addition {size}x{size} {dtype}"
    if impl == "skipnet":
        benchmark(K.add_into, Y, X, True)
    else:
        benchmark(np.add, Y, X, out=Y)


LOSSES = {
    "l1": (K.l1_loss, lambda z, y, g: (np.sign(np.subtract(z, y, out=g), out=g), np.abs(z - y).mean())),
    "mse": (K.mse_loss, lambda z, y, g: (np.subtract(z, y, out=g), np.mean(g * g))),
    "bce": (K.bce_loss, lambda z, y, g: (np.subtract(1 / (1 + np.exp(-z)), y, out=g),
                                         np.mean(np.logaddexp(0, z) - y * z))),
}


@pytest.mark.parametrize("loss", list(LOSSES))
@_params(["skipnet", "numpy"], SIZES, DTYPES)
def test_loss_and_gradient(benchmark, loss, impl, size, dtype):
    Z, Y, G = _arrays(size, dtype, 3)
    if loss == "bce":
        Y = (Y > 0).astype(dtype)
    benchmark.group = f"{loss} loss + gradient {size}x{size} {dtype}"
    kernel, numpy_version = LOSSES[loss]
    benchmark(kernel, Z, Y, G) if impl == "skipnet" else benchmark(numpy_version, Z, Y, G)


@_params(["skipnet", "numpy"], SIZES, DTYPES)
def test_cross_entropy(benchmark, impl, size, dtype):
    Z, G = _arrays(size, dtype, 2)
    T = np.random.default_rng(1).integers(0, size, size)
    benchmark.group = f"cross-entropy + gradient {size}x{size} {dtype}"
    if impl == "skipnet":
        benchmark(K.cross_entropy_loss, Z, T, G)
    else:
        rows = np.arange(size)

        def numpy_version():
            shifted = Z - Z.max(axis=1, keepdims=True)
            lse = np.log(np.exp(shifted).sum(axis=1, keepdims=True))
            np.exp(shifted - lse, out=G)
            G[rows, T] -= 1
            return np.mean(lse[:, 0] - shifted[rows, T])
        benchmark(numpy_version)


@_params(["skipnet", "numpy"], SIZES, DTYPES)
def test_sgd_update(benchmark, impl, size, dtype):
    P, G, B = (a.reshape(-1) for a in _arrays(size, dtype, 3))
    benchmark.group = f"SGD update (momentum 0.9) {size}x{size} {dtype}"
    if impl == "skipnet":
        benchmark(K.sgd_step, P, G, B, 1e-6, 0.9, 0.0, 0.0, False, False)
    else:
        def numpy_version():
            np.multiply(B, 0.9, out=B)
            np.add(B, G, out=B)
            np.subtract(P, 1e-6 * B, out=P)
        benchmark(numpy_version)


@_params(["skipnet", "numpy"], SIZES, DTYPES)
def test_adam_update(benchmark, impl, size, dtype):
    P, G, M, V = (a.reshape(-1) for a in _arrays(size, dtype, 4))
    V = np.abs(V)
    benchmark.group = f"Adam update {size}x{size} {dtype}"
    if impl == "skipnet":
        benchmark(K.adam_step, P, G, M, V, 1e-6, 0.9, 0.999, 1e-8, 0.0, 10)
    else:
        def numpy_version():
            M[...] = 0.9 * M + 0.1 * G
            V[...] = 0.999 * V + 0.001 * G * G
            np.subtract(P, (1e-6 / (1 - 0.9**10)) * M / (np.sqrt(V / (1 - 0.999**10)) + 1e-8), out=P)
        benchmark(numpy_version)


@pytest.mark.parametrize("impl", ["skipnet", "numpy"])
@pytest.mark.parametrize("rows", [1000, 100000])
def test_row_orders(benchmark, impl, rows):
    """A shuffled epoch's row order: skipnet's draw (K.draw_orders, what every shuffled fit draws per
    epoch) against Generator.permuted, NumPy's way (the one skipnet drew with before)."""
    rng = np.random.default_rng(0)
    out = np.empty((1, rows), np.int64)
    benchmark.group = f"row order of {rows} rows"
    if impl == "skipnet":
        benchmark(K.draw_orders, rng, out)
    else:
        def numpy_version():
            out[...] = np.arange(rows)
            rng.permuted(out, axis=1, out=out)
        benchmark(numpy_version)

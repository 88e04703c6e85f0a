"""Every SIMD level this build and CPU can run (skipnet._kernels.simd_levels(): generic512 runs the
AVX-512 level's 64-byte source on any x86-64): products against NumPy, element-wise loops, losses and
fused fits bit for bit equal across levels, the AVX2 intrinsic loops against their template forms,
set_simd's fallbacks and simd_report."""

import numpy as np
import pytest
from _helpers import assert_close

import skipnet as sn
from skipnet import _kernels as K

LEVELS = K.simd_levels()
SPECIALS = [np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-40, -1e-310]


@pytest.fixture(autouse=True)
def default_level():
    """Every test leaves the default level (the CPU's best) and the default BLAS thresholds behind."""
    yield
    K.set_simd(K.cpu_simd_level())
    K.set_blas_threshold(-1)


@pytest.fixture(params=LEVELS)
def level(request):
    assert K.set_simd(request.param) == request.param
    return request.param


@pytest.fixture
def tiles_only():
    K.set_blas_threshold(2**62)


def _products(X, W, dZ, b, accumulate, rng):
    """The three products of a dense layer through the kernels: Z = X @ W.T + b (+ Z0), dW = dZ.T @ X,
    dX = dZ @ W (+ dX0); and the forward again with the ReLU from the tiles' epilogue."""
    n, k, m = X.shape[0], X.shape[1], W.shape[0]
    Z0, dX0 = rng.normal(size=(n, m)).astype(X.dtype), rng.normal(size=(n, k)).astype(X.dtype)
    Z, dX, dW = Z0.copy(), dX0.copy(), np.full((m, k), np.nan, X.dtype)
    K.dense_fwd(X, W, b, Z, True, accumulate)
    K.dense_bwd(dZ, X, W, dW, np.empty(0, X.dtype), dX, False, True, accumulate)
    Zr, H = np.full((n, m), np.nan, X.dtype), np.full((n, m), np.nan, X.dtype)
    K.dense_fwd_relu(X, W, b, Zr, H, True)
    return (Z0, dX0), (Z, dW, dX), (Zr, H)


# m, n, k over 1..40, off the multiples of every tile (6 and 12 rows; 4-32 columns) and of the
# transposes (4, 8 and 16 lanes), plus a few whole tiles and blocks of kc; a last panel of exactly one
# vector, read in place (k = 16, 24, 40); forwards into fewer than 16 units over k of 8 vectors or
# more, as dot products (m = 10 and 3: blocks of 4 rows x 2 columns, their edges, a tail of k), and
# one below that k (5, 17, 3: the tiles, its W.T packed through a zero-padded block)
EDGE_SHAPES = [(1, 1, 1), (1, 40, 1), (40, 1, 1), (1, 1, 40), (5, 17, 3), (11, 9, 33), (13, 31, 16),
               (12, 32, 16), (23, 16, 40), (25, 39, 37), (36, 33, 17), (40, 40, 40), (7, 130, 20),
               (30, 3, 150), (17, 300, 45), (6, 24, 24), (9, 260, 10), (5, 130, 3)]


@pytest.mark.parametrize("n,k,m", EDGE_SHAPES)
@pytest.mark.parametrize("accumulate", [False, True])
def test_tile_products_at_every_level(n, k, m, accumulate, dtype, level, tiles_only):
    rng = np.random.default_rng(n + 41 * k + 1681 * m)
    X, W = rng.normal(size=(n, k)).astype(dtype), rng.normal(size=(m, k)).astype(dtype)
    dZ, b = rng.normal(size=(n, m)).astype(dtype), rng.normal(size=m).astype(dtype)
    (Z0, dX0), (Z, dW, dX), (Zr, H) = _products(X, W, dZ, b, accumulate, rng)
    x, w, dz = X.astype(float), W.astype(float), dZ.astype(float)
    z0, dx0 = (Z0, dX0) if accumulate else (0, 0)
    assert_close(Z, z0 + x @ w.T + b, dtype, np.abs(z0) + np.abs(x) @ np.abs(w).T + np.abs(b) + 1)
    assert_close(dW, dz.T @ x, dtype, np.abs(dz).T @ np.abs(x) + 1)
    assert_close(dX, dx0 + dz @ w, dtype, np.abs(dx0) + np.abs(dz) @ np.abs(w) + 1)
    if not accumulate:  # the epilogue's bias and ReLU: the same bits as the plain forward
        np.testing.assert_array_equal(Zr, Z)
        np.testing.assert_array_equal(H, np.where(Z > 0, Z, 0))
        _assert_residual_epilogue(X, W, b, Z, rng)


@pytest.mark.parametrize("rows", [13, 25])
def test_rows_four_kib_apart_give_the_bits_of_each_row_alone(rows, dtype, level, tiles_only):
    """A read in place with rows a multiple of 4 KiB apart (X of a 1024-wide float layer, dZ into one)
    runs in blocks of 8 rows instead of the 64-byte tiles' 12: every row of the forward and of the
    input gradient is the bits of that row computed alone (one row, one block)."""
    wide = 4096 // np.dtype(dtype).itemsize
    rng = np.random.default_rng(rows)
    X, W = rng.normal(size=(rows, wide)).astype(dtype), rng.normal(size=(40, wide)).astype(dtype)
    dZ, W2 = rng.normal(size=(rows, wide)).astype(dtype), rng.normal(size=(wide, 40)).astype(dtype)
    b = rng.normal(size=40).astype(dtype)
    Z, dX = np.empty((rows, 40), dtype), np.empty((rows, 40), dtype)
    K.dense_fwd(X, W, b, Z, True, False)
    K.dense_bwd(dZ, X[:, :40].copy(), W2, np.empty((wide, 40), dtype), np.empty(0, dtype), dX, False, True, False)
    for i in range(rows):
        z, dx = np.empty((1, 40), dtype), np.empty((1, 40), dtype)
        K.dense_fwd(X[i:i + 1], W, b, z, True, False)
        K.dense_bwd(dZ[i:i + 1], X[i:i + 1, :40].copy(), W2, np.empty((wide, 40), dtype), np.empty(0, dtype), dx,
                    False, True, False)
        np.testing.assert_array_equal(_bits(Z[i:i + 1]), _bits(z))
        np.testing.assert_array_equal(_bits(dX[i:i + 1]), _bits(dx))
    x, w, dz, w2 = (a.astype(float) for a in (X, W, dZ, W2))
    assert_close(Z, x @ w.T + b, dtype, np.abs(x) @ np.abs(w).T + np.abs(b) + 1)
    assert_close(dX, dz @ w2, dtype, np.abs(dz) @ np.abs(w2) + 1)


# (batch, fan-in): whole passes of 8 vectors, passes of 4, 2 and 1, columns past the last vector, and
# a batch over two blocks of kc
@pytest.mark.parametrize("n,k", [(300, 70), (33, 300), (7, 16), (260, 129), (5, 3)])
@pytest.mark.parametrize("accumulate", [False, True])
def test_a_one_unit_layers_weight_gradient_is_the_first_row_of_a_two_unit_layers(n, k, accumulate, dtype, level,
                                                                                   tiles_only):
    """dW = dZ.T @ X with one row (a layer of one unit) runs several vectors of columns per pass over
    the batch: the bits of row 0 of the same product with two rows (the tiles), and NumPy's values."""
    rng = np.random.default_rng(n + 7 * k + accumulate)
    X, dZ = rng.normal(size=(n, k)).astype(dtype), rng.normal(size=(n, 2)).astype(dtype)
    dW0 = rng.normal(size=(2, k)).astype(dtype)
    one, two = dW0[:1].copy(), dW0.copy()
    for dW, dz in ((one, dZ[:, :1].copy()), (two, dZ)):
        K.matmul_views(dz.T, X, dW, accumulate)
    np.testing.assert_array_equal(_bits(one[0]), _bits(two[0]))
    x, dz = X.astype(float), dZ[:, :1].astype(float)
    assert_close(one, (dW0[:1] if accumulate else 0) + dz.T @ x, dtype,
                 (np.abs(dW0[:1]) if accumulate else 0) + np.abs(dz).T @ np.abs(x) + 1)


def _bits(a):
    """The array's bits (NaNs and the sign of zero included), to compare for equality."""
    return a.view(np.uint32 if a.dtype == np.float32 else np.uint64)


@pytest.mark.parametrize("n,k,m", EDGE_SHAPES + [(64, 1100, 8), (0, 5, 3), (4, 5, 0)])
@pytest.mark.parametrize("accumulate", [False, True])
@pytest.mark.parametrize("with_bias", [False, True])
@pytest.mark.parametrize("products", ["tiles", "blas"])
def test_relu_backward_as_the_input_gradient_leaves_the_product(n, k, m, accumulate, with_bias, products,
                                                                 dtype, level):
    """dense_bwd_relu (the backward pass's input gradient into a ReLU layer): the layer below's dZ and
    bias gradient taken as dX leaves the tiles' registers (or after a BLAS product, or past the tiles'
    1024-column sum) are the bits of dense_bwd then relu_bwd_bias_grad (relu_bwd), special values in
    z and in the gradient included."""
    K.set_blas_threshold(2**62 if products == "tiles" else 0)
    rng = np.random.default_rng(n + 41 * k + 1681 * m + 7 * accumulate)
    X, W = rng.normal(size=(n, k)).astype(dtype), rng.normal(size=(m, k)).astype(dtype)
    dZ, Zb = rng.normal(size=(n, m)).astype(dtype), rng.normal(size=(n, k)).astype(dtype)
    if n * m:
        dZ.flat[rng.integers(0, n * m, size=3)] = rng.choice(SPECIALS, size=3)
    if n * k:
        Zb.flat[rng.integers(0, n * k, size=min(n * k, 12))] = rng.choice(SPECIALS, size=min(n * k, 12))
    dX0 = rng.normal(size=(n, k)).astype(dtype)
    dW, dX, db = np.full((m, k), np.nan, dtype), dX0.copy(), np.full(k if with_bias else 0, np.nan, dtype)
    K.dense_bwd_relu(dZ, X, W, dW, dX, Zb, db, accumulate)
    dW_ref, dX_ref, db_ref = np.full((m, k), np.nan, dtype), dX0.copy(), np.full(k, np.nan, dtype)
    K.dense_bwd(dZ, X, W, dW_ref, np.empty(0, dtype), dX_ref, False, True, accumulate)
    if with_bias:
        K.relu_bwd_bias_grad(dX_ref, Zb, dX_ref, db_ref)
        np.testing.assert_array_equal(_bits(db), _bits(db_ref))
    else:
        K.relu_bwd(dX_ref.ravel(), Zb.ravel(), dX_ref.ravel())
    np.testing.assert_array_equal(_bits(dX), _bits(dX_ref))
    if m:
        np.testing.assert_array_equal(_bits(dW), _bits(dW_ref))
    # the ReLU's backward itself, against NumPy: the gradient passes where z > 0 only
    if m and k and n:
        ref = np.where(Zb > 0, (dX0.astype(float) if accumulate else 0) + dZ.astype(float) @ W.astype(float), 0)
        finite = np.isfinite(ref)
        assert_close(dX[finite], ref[finite], dtype, np.abs(ref[finite]) + 1)
        assert np.all(dX[Zb <= 0] == 0) and np.all(dX[np.isnan(Zb)] == 0)


def test_dense_bwd_relu_rejects_mismatched_shapes():
    a = np.zeros((4, 3))
    with pytest.raises(ValueError, match="Z_below"):
        K.dense_bwd_relu(np.zeros((4, 2)), a, np.zeros((2, 3)), np.zeros((2, 3)), a.copy(), np.zeros((4, 2)),
                         np.zeros(0), False)
    with pytest.raises(ValueError, match="db_below"):
        K.dense_bwd_relu(np.zeros((4, 2)), a, np.zeros((2, 3)), np.zeros((2, 3)), a.copy(), a.copy(),
                         np.zeros(2), False)


def _assert_residual_epilogue(X, W, b, Z, rng):
    """dense_fwd_relu with a residual R: the bits of the plain forward Z, then add_into(Z, R), then relu."""
    R = _with_specials(rng, Z.size, Z.dtype).reshape(Z.shape)
    expected = Z.copy()
    K.add_into(expected.ravel(), R.ravel(), True)
    Zr, H = np.full_like(Z, np.nan), np.full_like(Z, np.nan)
    K.dense_fwd_relu(X, W, b, Zr, H, True, R)
    np.testing.assert_array_equal(Zr, expected)
    relu = np.empty_like(Z)
    K.relu_fwd(expected.ravel(), relu.ravel())
    np.testing.assert_array_equal(H, relu)


@pytest.mark.parametrize("n,k,m", [(5, 17, 3), (40, 1, 23), (17, 300, 45), (64, 64, 64)])
def test_the_residual_epilogue_through_blas(n, k, m, dtype):
    rng = np.random.default_rng(n * k * m)
    X, W = rng.normal(size=(n, k)).astype(dtype), rng.normal(size=(m, k)).astype(dtype)
    b = rng.normal(size=m).astype(dtype)
    K.set_blas_threshold(1)  # every product through gemm: the bias as a prefill, R and the ReLU after
    Z = np.empty((n, m), dtype)
    K.dense_fwd(X, W, b, Z, True, False)
    _assert_residual_epilogue(X, W, b, Z, rng)
    with pytest.raises(ValueError, match="R must have Z's shape"):
        K.dense_fwd_relu(X, W, b, Z, np.empty_like(Z), True, np.empty((n, m + 1), dtype))


@pytest.mark.parametrize("m,n,k", [(16, 16, 16), (9, 33, 32), (3, 17, 48), (40, 1, 23), (1, 37, 5)])
@pytest.mark.parametrize("a_transposed", [False, True])
@pytest.mark.parametrize("b_transposed", [False, True])
def test_every_product_form_from_views(m, n, k, a_transposed, b_transposed, dtype, level, tiles_only):
    """A @ B with A and B given as arrays or as transposed views (the weight gradient's dZ.T, the
    forward's W.T: the in-register transposes of 4, 8 and 16 lanes), accumulated or not."""
    rng = np.random.default_rng(m * n * k + a_transposed + 2 * b_transposed)
    A = rng.normal(size=(k, m)).astype(dtype).T if a_transposed else rng.normal(size=(m, k)).astype(dtype)
    B = rng.normal(size=(n, k)).astype(dtype).T if b_transposed else rng.normal(size=(k, n)).astype(dtype)
    a, b = A.astype(float), B.astype(float)
    C = np.full((m, n), np.nan, dtype)
    K.matmul_views(A, B, C, False)
    assert_close(C, a @ b, dtype, np.abs(a) @ np.abs(b) + 1)
    C0 = rng.normal(size=(m, n)).astype(dtype)
    C = C0.copy()
    K.matmul_views(A, B, C, True)
    assert_close(C, C0 + a @ b, dtype, np.abs(C0) + np.abs(a) @ np.abs(b) + 1)


def test_matmul_views_rejects_bad_operands():
    A, B = np.ones((4, 6)), np.ones((6, 5))
    with pytest.raises(ValueError, match="shapes"):
        K.matmul_views(A, B[:5], np.empty((4, 5)), False)
    with pytest.raises(ValueError, match="unit stride"):
        K.matmul_views(A[:, ::2], B[:3], np.empty((4, 5)), False)


def _with_specials(rng, size, dtype):
    x = rng.normal(size=size).astype(dtype)
    x[rng.permutation(size)[: size // 2]] = rng.choice(SPECIALS, size // 2)
    return x


def _elementwise_and_loss_outputs(size, dtype):
    """Every SIMD-dispatched element-wise loop and batch loss on data with NaN, +-inf, +-0 and
    subnormals: {name: output}."""
    rng = np.random.default_rng(size)
    a, b = _with_specials(rng, size, dtype), _with_specials(rng, size, dtype)
    out = {"relu_fwd": np.empty_like(a), "relu_bwd": np.empty_like(a), "add_into": b.copy()}
    K.relu_fwd(a, out["relu_fwd"])
    K.relu_bwd(b, a, out["relu_bwd"])
    K.add_into(out["add_into"], a, True)
    rows, cols = (3, size) if size > 100 else (size, 5)
    dz, bias = _with_specials(rng, rows * cols, dtype).reshape(rows, cols), _with_specials(rng, cols, dtype)
    z = dz.copy()
    K.dense_fwd(np.zeros((rows, 0), dtype), np.zeros((cols, 0), dtype), bias, z, True, True)
    out["bias rows"] = z
    out["bias gradient"] = np.empty(cols, dtype)
    K.dense_bwd(dz, np.zeros((rows, 0), dtype), np.zeros((cols, 0), dtype), np.zeros((cols, 0), dtype),
                out["bias gradient"], np.zeros((rows, 0), dtype), True, False, False)
    zz = _with_specials(rng, rows * cols, dtype).reshape(rows, cols)
    out["relu_bwd + bias gradient"], out["its bias gradient"] = np.empty_like(dz), np.empty(cols, dtype)
    K.relu_bwd_bias_grad(dz, zz, out["relu_bwd + bias gradient"], out["its bias gradient"])
    for name, momentum, decay, nesterov in [("sgd", 0.0, 0.0, False), ("sgd momentum", 0.9, 1e-2, False),
                                            ("sgd nesterov", 0.9, 1e-2, True)]:
        p, buf = a.copy(), rng.normal(size=size).astype(dtype)
        flags = K.sgd_step(p, b, buf, 0.1, momentum, 0.1, decay, nesterov, False)
        out[name], out[name + " buffer"], out[name + " flags"] = p, buf, np.array(flags)
    p, m1, m2 = rng.normal(size=size).astype(dtype), np.zeros(size, dtype), np.zeros(size, dtype)
    out["adam flags"] = np.array(K.adam_step(p, b, m1, m2, 1e-2, 0.9, 0.999, 1e-8, 1e-2, 3))
    out["adam"], out["adam m"], out["adam v"] = p, m1, m2
    for name, kernel in [("l1", K.l1_loss), ("mse", K.mse_loss)]:
        g = np.empty((size, 1), dtype)
        out[name] = np.array(kernel(a.reshape(-1, 1), b.reshape(-1, 1), g), dtype=np.float64)
        out[name + " gradient"] = g
    return out


def _bits(x):
    x = np.asarray(x)
    return x.view({4: np.uint32, 8: np.uint64}[x.dtype.itemsize]) if x.dtype.kind == "f" else x


@pytest.mark.parametrize("size", [1, 7, 8, 15, 16, 17, 31, 33, 64, 300])
def test_elementwise_loops_and_losses_give_the_same_bits_at_every_level(size, dtype):
    outputs = {}
    for name in LEVELS:
        K.set_simd(name)
        outputs[name] = _elementwise_and_loss_outputs(size, dtype)
    first = outputs[LEVELS[0]]
    for name in LEVELS[1:]:
        for key, value in first.items():
            np.testing.assert_array_equal(_bits(outputs[name][key]), _bits(value), err_msg=f"{key} at {name}")


@pytest.mark.parametrize("size", [0, 1, 7, 8, 9, 31, 1000, 4099])
def test_intrinsic_loops_match_their_template_forms(size):
    if not K.cpu_has_avx2():
        with pytest.raises(RuntimeError, match="AVX2"):
            K.check_intrinsic_forms(np.zeros(1, np.float32), np.zeros(1, np.float32), 0.1)
        return
    rng = np.random.default_rng(size)
    for _ in range(3):
        a, b = _with_specials(rng, size, np.float32), _with_specials(rng, size, np.float32)
        for lr in (0.1, 1e30, 0.0):
            assert K.check_intrinsic_forms(a, b, lr) == ()
        assert K.check_intrinsic_forms(b, a, 0.5) == ()


def test_intrinsic_check_rejects_unequal_lengths():
    with pytest.raises(ValueError, match="equal lengths"):
        K.check_intrinsic_forms(np.zeros(3, np.float32), np.zeros(2, np.float32), 0.1)


@pytest.mark.parametrize("loss", ["l1", "mse"])
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_a_fused_fit_through_blas_gives_the_same_bits_at_every_level(loss, optimizer):
    """A short fused fit with every product through BLAS (the tiles round differently per level) gives
    the same bits at every level: the loops and losses share one order of operations."""
    K.set_blas_threshold(0)
    rng = np.random.default_rng(5)
    X, y = rng.normal(size=(45, 6)), rng.normal(size=(45, 2))
    runs = []
    for name in LEVELS:
        K.set_simd(name)
        net = sn.Network.mlp(n_inputs=6, hidden=(17, 9), n_outputs=2, skip="first-to-output",
                             dtype="float32", seed=1)
        hist = sn.Trainer(net, loss=loss, optimizer=optimizer, lr=0.01, batch_size=8, epochs=3,
                          seed=2).fit(X, y)
        runs.append((name, np.asarray(hist.step_loss), net.parameters()))
    _, losses0, params0 = runs[0]
    for name, losses, params in runs[1:]:
        np.testing.assert_array_equal(_bits(losses), _bits(losses0), err_msg=name)
        for key, value in params0.items():
            np.testing.assert_array_equal(_bits(params[key]), _bits(value), err_msg=f"{key} at {name}")


def test_a_fused_fit_on_the_tiles_follows_numpy_at_every_level(level, tiles_only):
    rng = np.random.default_rng(6)
    X, y = rng.normal(size=(40, 5)), rng.normal(size=(40, 1))
    results = []
    for backend in ("cython", "numpy"):
        net = sn.Network.mlp(n_inputs=5, hidden=(19, 13), n_outputs=1, skip="first-to-output",
                             dtype="float64", seed=3, backend=backend)
        hist = sn.Trainer(net, loss="mse", lr=0.01, batch_size=16, epochs=2, seed=4).fit(X, y)
        results.append((np.asarray(hist.step_loss), net.parameters()))
    assert_close(results[0][0], results[1][0], "float64")
    for key, value in results[1][1].items():
        assert_close(results[0][1][key], value, "float64")


def test_set_simd_falls_back_to_the_best_level_below():
    available = set(LEVELS)
    assert "baseline" in available and K.cpu_simd_level() in available
    assert "generic512" not in (K.cpu_simd_level(),)
    expected_avx512 = "avx512" if "avx512" in available else "avx2" if "avx2" in available else "baseline"
    assert K.set_simd("avx512") == expected_avx512 == K.get_simd()
    assert K.set_simd("avx2") == ("avx2" if "avx2" in available else "baseline")
    assert K.set_simd("generic512") == ("generic512" if "generic512" in available else "baseline")
    assert K.set_simd("baseline") == "baseline" == K.get_simd()
    assert K.cpu_has_avx2() == ("avx2" in available)
    for bad in ("sse2", "AVX2", ""):
        with pytest.raises(ValueError, match="simd must be one of"):
            K.set_simd(bad)
    assert K.get_simd() == "baseline"  # a rejected name changes nothing


def test_simd_report_names_each_path():
    for name in LEVELS:
        K.set_simd(name)
        report = K.simd_report()
        assert set(report) == {"tiles", "elementwise", "losses", "blas"}
        assert report["tiles"] == report["elementwise"] == report["losses"] == name
    blas = report["blas"]
    assert blas == "unknown" or set(blas) == {"internal_api", "version", "architecture"}


def test_blas_thresholds_follow_the_level_until_overridden():
    forms = {"X@W.T", "dZ.T@X", "dZ@W"}
    for name in LEVELS:
        K.set_simd(name)
        thresholds = K.blas_thresholds()
        assert set(thresholds) == forms and all(v > 0 for v in thresholds.values())
        assert K.get_blas_threshold() == -1
    K.set_blas_threshold(1000)
    K.set_simd(LEVELS[0])
    assert K.blas_thresholds() == dict.fromkeys(forms, 1000) and K.get_blas_threshold() == 1000
    K.set_blas_threshold(-5)
    assert K.get_blas_threshold() == -1 and set(K.blas_thresholds().values()) != {1000}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("rows,cols", [(0, 5), (7, 0), (1, 1), (37, 300), (64, 64), (5, 513)])
def test_relu_backward_with_the_bias_gradient_is_the_two_loops_bit_for_bit(level, dtype, rows, cols):
    rng = np.random.default_rng(rows * 1000 + cols)
    dh = _with_specials(rng, rows * cols, dtype).reshape(rows, cols)
    z = _with_specials(rng, rows * cols, dtype).reshape(rows, cols)
    dz, db = np.full_like(dh, 7.0), np.full(cols, 7.0, dtype)
    K.relu_bwd_bias_grad(dh, z, dz, db)
    expected = np.empty_like(dh)
    K.relu_bwd(dh.ravel(), z.ravel(), expected.ravel())
    expected_db = np.full(cols, 7.0, dtype)
    empty = np.zeros((cols, 0), dtype)
    K.dense_bwd(expected, np.zeros((rows, 0), dtype), empty, empty, expected_db, np.zeros((rows, 0), dtype),
                True, False, False)
    np.testing.assert_array_equal(dz, expected)
    np.testing.assert_array_equal(db, expected_db)
    in_place = dh.copy()
    K.relu_bwd_bias_grad(in_place, z, in_place, db)  # dZ may be dH
    np.testing.assert_array_equal(in_place, expected)
    np.testing.assert_array_equal(db, expected_db)


def test_relu_backward_with_the_bias_gradient_refuses_mismatched_shapes():
    a = np.zeros((3, 4))
    with pytest.raises(ValueError, match="one shape"):
        K.relu_bwd_bias_grad(a, a, a, np.zeros(5))
    with pytest.raises(ValueError, match="one shape"):
        K.relu_bwd_bias_grad(a, np.zeros((2, 4)), a, np.zeros(4))


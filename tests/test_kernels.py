"""Every kernel against the math of the reference, on random shapes, both dtypes, both product paths."""

import numpy as np
import pytest
from _helpers import assert_close

from skipnet import _kernels as K
from skipnet import reference

SHAPES = [(1, 1, 1), (1, 3, 2), (7, 5, 3), (33, 17, 9), (64, 128, 128), (5, 1, 130), (130, 65, 1)]


@pytest.mark.parametrize("n,k,m", SHAPES)
@pytest.mark.parametrize("has_bias", [True, False])
@pytest.mark.parametrize("accumulate", [False, True])
def test_dense_fwd(n, k, m, has_bias, accumulate, dtype, blas_path):
    rng = np.random.default_rng(n * 1000 + k * 10 + m)
    X = rng.normal(size=(n, k)).astype(dtype)
    W = rng.normal(size=(m, k)).astype(dtype)
    b = rng.normal(size=m).astype(dtype) if has_bias else np.empty(0, dtype)
    Z0 = rng.normal(size=(n, m)).astype(dtype)
    Z = Z0.copy()
    K.dense_fwd(X, W, b, Z, has_bias, accumulate)
    x64, w64 = X.astype(np.float64), W.astype(np.float64)
    expected = x64 @ w64.T + (b.astype(np.float64) if has_bias else 0) + (Z0 if accumulate else 0)
    scale = np.abs(x64) @ np.abs(w64).T + 1 + (np.abs(Z0) if accumulate else 0)
    assert_close(Z, expected, dtype, scale)
    if not accumulate:  # the same product with the ReLU from its epilogue: the same Z, H = relu(Z)
        Z2, H = np.full_like(Z, np.nan), np.full_like(Z, np.nan)
        K.dense_fwd_relu(X, W, b, Z2, H, has_bias)
        np.testing.assert_array_equal(Z2, Z)
        np.testing.assert_array_equal(H, np.where(Z > 0, Z, 0))


@pytest.mark.parametrize("n,k,m", SHAPES)
@pytest.mark.parametrize("has_bias", [True, False])
@pytest.mark.parametrize("need_dx,accumulate_dx", [(True, False), (True, True), (False, False)])
def test_dense_bwd(n, k, m, has_bias, need_dx, accumulate_dx, dtype, blas_path):
    rng = np.random.default_rng(n * 7 + k * 3 + m)
    dZ = rng.normal(size=(n, m)).astype(dtype)
    X = rng.normal(size=(n, k)).astype(dtype)
    W = rng.normal(size=(m, k)).astype(dtype)
    dW = np.full((m, k), np.nan, dtype)
    db = np.full(m, np.nan, dtype) if has_bias else np.empty(0, dtype)
    dX0 = rng.normal(size=(n, k)).astype(dtype)
    dX = dX0.copy() if need_dx else np.empty((0, 0), dtype)
    K.dense_bwd(dZ, X, W, dW, db, dX, has_bias, need_dx, accumulate_dx)
    dz64, x64, w64 = dZ.astype(float), X.astype(float), W.astype(float)
    assert_close(dW, dz64.T @ x64, dtype, np.abs(dz64).T @ np.abs(x64) + 1)
    if has_bias:
        assert_close(db, dz64.sum(0), dtype, np.abs(dz64).sum(0) + 1)
    if need_dx:
        expected = dz64 @ w64 + (dX0 if accumulate_dx else 0)
        assert_close(dX, expected, dtype, np.abs(dz64) @ np.abs(w64) + 1 + np.abs(dX0))


# Layer shapes (n, k, m) whose three products (forward n x m over k, weight gradient m x k over n, input
# gradient n x k over m) reach every edge of the register tiles: rows left over after blocks of 6,
# columns left over after panels of 2 vectors (and panels of at most one vector), sums longer than one
# block of 256, column blocks beyond the packed buffer, in both SIMD versions and dtypes.
TILE_SHAPES = [(6, 16, 16), (11, 9, 3), (13, 300, 20), (300, 40, 7), (37, 530, 45), (4, 70, 129),
               (257, 3, 2), (5, 1, 17)]


@pytest.mark.parametrize("n,k,m", TILE_SHAPES)
@pytest.mark.parametrize("accumulate", [False, True])
def test_register_tile_edges(n, k, m, accumulate, dtype, simd):
    rng = np.random.default_rng(n + 7 * k + 31 * m)
    X, W = rng.normal(size=(n, k)).astype(dtype), rng.normal(size=(m, k)).astype(dtype)
    dZ, b = rng.normal(size=(n, m)).astype(dtype), rng.normal(size=m).astype(dtype)
    Z0, dX0 = rng.normal(size=(n, m)).astype(dtype), rng.normal(size=(n, k)).astype(dtype)
    Z, dX, dW = Z0.copy(), dX0.copy(), np.full((m, k), np.nan, dtype)
    old = K.get_blas_threshold()
    K.set_blas_threshold(2**62)
    Zr, H = np.full_like(Z, np.nan), np.full_like(Z, np.nan)
    try:
        K.dense_fwd(X, W, b, Z, True, accumulate)
        K.dense_bwd(dZ, X, W, dW, np.empty(0, dtype), dX, False, True, accumulate)
        K.dense_fwd_relu(X, W, b, Zr, H, True)
    finally:
        K.set_blas_threshold(old)
    if not accumulate:  # bias and ReLU from the epilogue, in every tile edge: the same bits
        np.testing.assert_array_equal(Zr, Z)
        np.testing.assert_array_equal(H, np.where(Z > 0, Z, 0))
    x, w, dz = X.astype(float), W.astype(float), dZ.astype(float)
    z0, dx0 = (Z0, dX0) if accumulate else (0, 0)
    assert_close(Z, z0 + x @ w.T + b, dtype, np.abs(z0) + np.abs(x) @ np.abs(w).T + np.abs(b) + 1)
    assert_close(dW, dz.T @ x, dtype, np.abs(dz).T @ np.abs(x) + 1)
    assert_close(dX, dx0 + dz @ w, dtype, np.abs(dx0) + np.abs(dz) @ np.abs(w) + 1)


def test_blas_threshold_defaults_follow_the_simd_level_until_set():
    old_simd, old_threshold = K.get_simd(), K.get_blas_threshold()
    try:
        K.set_blas_threshold(-1)
        defaults = {}
        for level in K.simd_levels():
            K.set_simd(level)
            assert K.get_blas_threshold() == -1  # the defaults per level and product form apply
            defaults[level] = K.blas_thresholds()
        if "avx2" in defaults and K.cpu_simd_level() == "avx2":  # the SSE2 tiles lose to BLAS earlier
            assert all(defaults["baseline"][f] < defaults["avx2"][f] for f in defaults["avx2"])
        K.set_blas_threshold(1000)
        K.set_simd("baseline")
        assert K.get_blas_threshold() == 1000 and set(K.blas_thresholds().values()) == {1000}
        K.set_blas_threshold(-5)
        assert K.get_blas_threshold() == -1 and K.blas_thresholds() == defaults["baseline"]
    finally:
        K.set_simd(old_simd)
        K.set_blas_threshold(old_threshold)


@pytest.mark.parametrize("size", [1, 2, 17, 1000])
def test_relu_and_skip_add(size, dtype):
    rng = np.random.default_rng(size)
    z = rng.normal(size=size).astype(dtype)
    z[::3] = 0  # the kink: relu(0) = 0 and relu'(0) = 0
    h = np.empty_like(z)
    K.relu_fwd(z, h)
    np.testing.assert_array_equal(h, reference.relu(z))
    dh = rng.normal(size=size).astype(dtype)
    dz = np.empty_like(z)
    K.relu_bwd(dh, z, dz)
    np.testing.assert_array_equal(dz, dh * reference.relu_derivative(z))
    inplace = dh.copy()
    K.relu_bwd(inplace, z, inplace)
    np.testing.assert_array_equal(inplace, dz)
    y = rng.normal(size=size).astype(dtype)
    y0 = y.copy()
    K.add_into(y, z, True)
    np.testing.assert_array_equal(y, y0 + z)
    K.add_into(y, z, False)
    np.testing.assert_array_equal(y, z)


# lengths around the vector widths (4 and 8 floats, 2 and 4 doubles) and the 256-column block of the
# bias gradient
EDGE_SIZES = [1, 3, 4, 7, 8, 9, 15, 16, 17, 33, 300]
SPECIALS = [np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-40, -1e-310]


def _with_specials(rng, size, dtype):
    x = rng.normal(size=size).astype(dtype)
    x[rng.permutation(size)[: size // 2]] = rng.choice(SPECIALS, size // 2)
    return x


def _elementwise_outputs(size, dtype):
    """Every element-wise kernel on inputs with NaN, +-inf, +-0 and subnormals: the outputs in order."""
    rng = np.random.default_rng(size)
    a, b = _with_specials(rng, size, dtype), _with_specials(rng, size, dtype)
    out = {}
    out["relu_fwd"] = np.empty_like(a)
    K.relu_fwd(a, out["relu_fwd"])
    out["relu_bwd"] = np.empty_like(a)
    K.relu_bwd(b, a, out["relu_bwd"])
    out["relu_bwd in place"] = b.copy()
    K.relu_bwd(out["relu_bwd in place"], a, out["relu_bwd in place"])
    out["add_into"] = b.copy()
    K.add_into(out["add_into"], a, True)
    n, m = (3, size) if size > 100 else (size, 5)
    dz = _with_specials(rng, n * m, dtype).reshape(n, m)
    bias = _with_specials(rng, m, dtype)
    empty = np.zeros((n, 0), dtype)
    for accumulate in (False, True):  # k = 0: the bias rows alone, no product
        z = dz.copy()
        K.dense_fwd(empty, np.zeros((m, 0), dtype), bias, z, True, accumulate)
        out[f"bias rows, accumulate={accumulate}"] = z
    out["bias gradient"] = np.empty(m, dtype)
    K.dense_bwd(dz, empty, np.zeros((m, 0), dtype), np.zeros((m, 0), dtype), out["bias gradient"],
                np.zeros((n, 0), dtype), True, False, False)
    grads = rng.normal(size=size).astype(dtype)
    grads[::5] = 0
    for name, momentum, nesterov in [("sgd", 0.0, False), ("sgd momentum", 0.9, False), ("sgd nesterov", 0.9, True)]:
        p, buf = rng.normal(size=size).astype(dtype), rng.normal(size=size).astype(dtype)
        K.sgd_step(p, grads, buf, 0.1, momentum, 0.1, 1e-2, nesterov, False)
        out[name], out[name + " buffer"] = p, buf
    out["sgd plain"] = a.copy()  # no momentum, no weight decay: the loop of its own
    out["sgd plain flags"] = np.array(K.sgd_step(out["sgd plain"], b, np.zeros_like(a), 0.1, 0, 0, 0, False, False))
    p, m1, m2 = rng.normal(size=size).astype(dtype), np.zeros(size, dtype), np.zeros(size, dtype)
    K.adam_step(p, grads, m1, m2, 1e-2, 0.9, 0.999, 1e-8, 1e-2, 3)
    out["adam"], out["adam m"], out["adam v"] = p, m1, m2
    for name, kernel in [("l1", K.l1_loss), ("mse", K.mse_loss)]:
        g = np.empty((size, 1), dtype)
        value = kernel(a.reshape(-1, 1), b.reshape(-1, 1), g)
        out[name], out[name + " gradient"] = np.array(value), g
        g = a.reshape(-1, 1).copy()
        value = kernel(g, b.reshape(-1, 1), g)  # the gradient over yhat, as the fused loop may write it
        out[name + " in place"], out[name + " gradient in place"] = np.array(value), g
    return out, (a, b, dz, bias)


@pytest.mark.parametrize("size", EDGE_SIZES)
def test_elementwise_kernels_give_the_same_bits_at_both_simd_levels(size, dtype):
    if not K.cpu_has_avx2():
        pytest.skip("this CPU has no AVX2/FMA")
    old = K.get_simd()
    try:
        outputs = []
        for level in ("baseline", "avx2"):
            K.set_simd(level)
            outputs.append(_elementwise_outputs(size, dtype)[0])
    finally:
        K.set_simd(old)
    for name, base in outputs[0].items():
        if base.dtype.kind != "f":  # the update's flags
            np.testing.assert_array_equal(outputs[1][name], base, err_msg=name)
            continue
        bits = np.uint32 if base.dtype == np.float32 else np.uint64
        np.testing.assert_array_equal(outputs[1][name].view(bits), base.view(bits), err_msg=name)


@pytest.mark.parametrize("size", EDGE_SIZES)
def test_elementwise_kernels_on_special_values(size, dtype, simd):
    out, (a, b, dz, bias) = _elementwise_outputs(size, dtype)
    with np.errstate(invalid="ignore"):
        # relu(NaN) = 0 and relu'(NaN) = 0: a comparison with NaN is false
        np.testing.assert_array_equal(out["relu_fwd"], np.where(a > 0, a, 0))
        np.testing.assert_array_equal(out["relu_bwd"], np.where(a > 0, b, 0))
        np.testing.assert_array_equal(out["relu_bwd in place"], out["relu_bwd"])
        np.testing.assert_array_equal(out["add_into"], b + a)
        np.testing.assert_array_equal(out["bias rows, accumulate=False"], np.broadcast_to(bias, dz.shape))
        np.testing.assert_array_equal(out["bias rows, accumulate=True"], dz + bias)
        # row by row in double: numpy's reduction over axis 0 of a C array adds whole rows in order
        np.testing.assert_array_equal(out["bias gradient"], dz.astype(np.float64).sum(0).astype(dtype))
        sgd = (a.astype(np.float64) - 0.1 * b.astype(np.float64)).astype(dtype)
        np.testing.assert_array_equal(out["sgd plain"], sgd)
        np.testing.assert_array_equal(out["sgd plain flags"], [(b != 0).any(), not np.isfinite(sgd).all()])
    for name in ("l1", "mse"):
        np.testing.assert_array_equal(out[name + " in place"], out[name])
        np.testing.assert_array_equal(out[name + " gradient in place"], out[name + " gradient"])


LOSS_KERNELS = {"l1": K.l1_loss, "mse": K.mse_loss, "bce": K.bce_loss, "cross_entropy": K.cross_entropy_loss}


@pytest.mark.parametrize("loss", list(LOSS_KERNELS))
@pytest.mark.parametrize("n,m", [(1, 1), (1, 3), (7, 2), (64, 5)])
def test_losses_match_reference(loss, n, m, dtype):
    rng = np.random.default_rng(n + m)
    if loss == "cross_entropy" and m < 2:
        m = 2
    yhat = (rng.normal(size=(n, m)) * 3).astype(dtype)
    if loss == "cross_entropy":
        y = rng.integers(0, m, n).astype(np.int64)
    elif loss == "bce":
        y = rng.integers(0, 2, (n, m)).astype(dtype)
    else:
        y = rng.normal(size=(n, m)).astype(dtype)
        y.flat[0] = yhat.flat[0]  # a tie: sign(0) = 0 for l1
    grad = np.empty_like(yhat)
    value = LOSS_KERNELS[loss](yhat, y, grad)
    ref_value, ref_grad = reference.loss_and_gradient(loss, yhat, y)
    assert_close(value, ref_value, dtype)
    assert_close(grad, ref_grad, dtype)
    if loss == "l1":
        assert grad.flat[0] == 0


def test_loss_edge_values_match_pytorch_conventions():
    # L1Loss(mean): input [-1, 0, 1, 2], target [0, 0, 0, 2] -> grad [-0.25, 0, 0.25, 0]
    g = np.empty((1, 4))
    assert K.l1_loss(np.array([[-1.0, 0, 1, 2]]), np.array([[0.0, 0, 0, 2]]), g) == 0.5
    np.testing.assert_array_equal(g, [[-0.25, 0, 0.25, 0]])
    # BCEWithLogits: x=0 -> ln 2 for y in {0, 1}; x=100, y=0 -> 100; x=1000, y=1 -> 0; no overflow
    g = np.empty((1, 1))
    for x, y, expected in [(0.0, 0.0, np.log(2)), (0.0, 1.0, np.log(2)), (100.0, 0.0, 100.0),
                           (1000.0, 1.0, 0.0), (-1000.0, 0.0, 0.0)]:
        assert K.bce_loss(np.array([[x]]), np.array([[y]]), g) == pytest.approx(expected, abs=1e-15)
        assert np.isfinite(g).all()
    # cross-entropy with huge logits stays finite (max subtracted)
    g = np.empty((1, 3))
    value = K.cross_entropy_loss(np.array([[1000.0, 0.0, -1000.0]]), np.array([1]), g)
    assert value == pytest.approx(1000.0) and np.isfinite(g).all()
    np.testing.assert_allclose(g, [[1.0, -1.0, 0.0]], atol=1e-300)


@pytest.mark.parametrize("momentum,dampening,nesterov,weight_decay",
                         [(0, 0, False, 0), (0.9, 0, False, 0), (0.9, 0.1, False, 1e-2), (0.8, 0, True, 1e-3)])
def test_sgd_matches_reference(momentum, dampening, nesterov, weight_decay, dtype):
    rng = np.random.default_rng(0)
    p = rng.normal(size=37).astype(dtype)
    buf = np.zeros_like(p)
    ref = reference.SGD(momentum, dampening, weight_decay, nesterov)
    ref_params = {"p": p.copy()}
    for step in range(5):
        g = rng.normal(size=37).astype(dtype)
        K.sgd_step(p, g, buf, 0.1, momentum, dampening, weight_decay, nesterov, step == 0)
        ref.step(ref_params, {"p": g}, 0.1)
        assert_close(p, ref_params["p"], dtype)


UPDATES = {
    "sgd": lambda p, g: K.sgd_step(p, g, np.zeros_like(p), 0.5, 0, 0, 0, False, False),
    "sgd momentum": lambda p, g: K.sgd_step(p, g, np.zeros_like(p), 0.5, 0.9, 0, 1e-3, False, False),
    "adam": lambda p, g: K.adam_step(p, g, np.zeros_like(p), np.zeros_like(p), 0.5, 0.9, 0.999, 1e-8, 0, 1),
}


@pytest.mark.parametrize("update", list(UPDATES))
@pytest.mark.parametrize("size", EDGE_SIZES)
def test_update_flags_see_every_position(update, size, dtype, simd):
    # the flags the trainer's zero-gradient and divergence checks read, from a single element anywhere
    step = UPDATES[update]
    p = np.ones(size, dtype)
    assert step(p, np.full(size, -0.0, dtype)) == (False, False)
    tiny, huge = np.finfo(dtype).smallest_subnormal, np.finfo(dtype).max
    for i in {0, size // 2, size - 1}:
        g = np.zeros(size, dtype)
        g[i] = tiny
        assert step(np.ones(size, dtype), g) == (True, False), i
        p = np.ones(size, dtype)
        p[i] = huge
        g[i] = -huge if update != "adam" else np.nan  # p - lr g overflows; Adam's step is about lr
        assert step(p, g) == (True, True), i


def test_zero_weight_decay_adds_no_term():
    # as torch.optim: with weight_decay=0 an infinite parameter stays infinite rather than 0 * inf = NaN
    p = np.array([np.inf, 1.0])
    K.sgd_step(p, np.array([1.0, 1.0]), np.zeros(2), 0.5, 0.9, 0, 0.0, False, True)
    ref = {"p": np.array([np.inf, 1.0])}
    reference.SGD(momentum=0.9).step(ref, {"p": np.array([1.0, 1.0])}, 0.5)
    np.testing.assert_array_equal(p, [np.inf, 0.5])
    np.testing.assert_array_equal(ref["p"], p)


def test_adam_matches_reference(dtype):
    rng = np.random.default_rng(1)
    p = rng.normal(size=41).astype(dtype)
    m, v = np.zeros_like(p), np.zeros_like(p)
    ref = reference.Adam(0.9, 0.999, 1e-8, 1e-2)
    ref_params = {"p": p.copy()}
    for step in range(1, 6):
        g = rng.normal(size=41).astype(dtype)
        K.adam_step(p, g, m, v, 1e-2, 0.9, 0.999, 1e-8, 1e-2, step)
        ref.step(ref_params, {"p": g}, 1e-2)
        assert_close(p, ref_params["p"], dtype)


def test_adam_first_step_is_lr_times_sign():
    # with bias correction the first Adam step moves every parameter by about lr * sign(g)
    p = np.zeros(3)
    K.adam_step(p, np.array([2.0, -0.5, 1e-3]), np.zeros(3), np.zeros(3), 0.1, 0.9, 0.999, 1e-8, 0.0, 1)
    np.testing.assert_allclose(p, [-0.1, 0.1, -0.1], rtol=1e-4)


def test_one_divergence_rule_for_every_training_loop():
    """K.loss_diverged is the C rule the fused kernels apply; the trainer's per-op path asks it too."""
    assert K.loss_diverged(float("nan"), 1.0, None) and K.loss_diverged(float("inf"), 1.0, 10.0)
    assert K.loss_diverged(10.5, 1.0, 10.0) and not K.loss_diverged(10.0, 1.0, 10.0)
    assert not K.loss_diverged(1e300, 1.0, None)  # no factor: only a non-finite loss diverges
    assert not K.loss_diverged(5.0, 0.0, 2.0)  # a first loss of 0 gives no scale


@pytest.mark.parametrize("shape", [(0,), (1,), (7,), (33, 5), (4, 3, 2)])
def test_all_finite_reads_any_c_contiguous_float_buffer(shape, dtype):
    x = np.arange(int(np.prod(shape)), dtype=dtype).reshape(shape)
    assert K.all_finite(x) is True
    for bad in (np.nan, np.inf, -np.inf):
        if x.size:
            y = x.copy()
            y.flat[x.size // 2] = bad
            assert K.all_finite(y) is False


def test_all_finite_refuses_what_it_cannot_read_as_floats():
    with pytest.raises(TypeError, match="float32 or float64"):
        K.all_finite(np.zeros(3, np.int64))
    with pytest.raises(TypeError, match="float32 or float64"):
        K.all_finite(np.zeros(3, ">f8"))  # not the machine's byte order: its buffer format says so
    with pytest.raises(ValueError, match="C-contiguous"):
        K.all_finite(np.zeros((4, 3))[:, 1])


def test_the_loss_table_is_the_kernels_and_the_validators():
    """The losses are numbered once (csrc/loss_terms.h); the Python side accepts exactly those names."""
    from skipnet import _validation as V

    assert K.LOSS_NAMES == ("l1", "mse", "bce", "cross_entropy")
    assert K.LOSS_KINDS == {name: kind for kind, name in enumerate(K.LOSS_NAMES)}
    assert V.LOSSES == K.LOSS_NAMES
    assert set(V.OPTIMIZERS) == set(K.OPTIMIZER_KINDS)

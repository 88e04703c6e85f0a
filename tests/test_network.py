"""Network: architecture, flat parameters, and per-op passes agreeing with the reference."""

import numpy as np
import pytest
from _helpers import assert_close, random_architecture, random_targets

import skipnet as sn
from skipnet import reference

LOSSES = ["l1", "mse", "bce", "cross_entropy"]


def _pair(rng, dtype):
    n_inputs, layers, skips = random_architecture(rng)
    seed = int(rng.integers(2**31))
    return [sn.Network(n_inputs, layers, skips, dtype=dtype, seed=seed, backend=b) for b in ("cython", "numpy")]


@pytest.mark.parametrize("case", range(25))
@pytest.mark.parametrize("loss", LOSSES)
def test_cython_matches_reference_on_random_networks(case, loss, dtype, blas_path):
    rng = np.random.default_rng(case)
    fast, ref = _pair(rng, dtype)
    while loss == "cross_entropy" and fast.n_outputs < 2:
        fast, ref = _pair(rng, dtype)
    n = int(rng.choice([1, 3, 17]))
    X = rng.normal(size=(n, fast.n_inputs))
    y = random_targets(rng, loss, n, fast.n_outputs)
    assert_close(fast.forward(X), ref.forward(X), dtype)
    lf, gf = fast.gradients(X, y, loss)
    lr, gr = ref.gradients(X, y, loss)
    assert_close(lf, lr, dtype)
    assert gf.keys() == gr.keys()
    # float32 sums cancel: bound errors by the largest gradient entry of the network
    scale = max(np.abs(g).max() for g in gr.values()) + 1e-6
    for name in gf:
        assert_close(gf[name], gr[name], dtype, scale=scale)


def test_reference_module_directly_reproduces_exercise():
    layers = [sn.Dense(1, "relu", False), sn.Dense(1, "relu", False), sn.Dense(1, "identity", False)]
    skips = [sn.Skip(0, 2)]
    params = {n: np.array([[0.5]]) for n in ["layers.0.weight", "layers.1.weight", "layers.2.weight",
                                             "skips.0.weight"]}
    yhat, cache = reference.forward(params, layers, skips, np.array([[1.0]]))
    loss, dyhat = reference.loss_and_gradient("l1", yhat, np.array([[-3.0]]))
    grads = reference.backward(params, layers, skips, cache, dyhat)
    assert (yhat[0, 0], loss) == (0.375, 3.375)
    assert [grads[n][0, 0] for n in params] == [0.75, 0.25, 0.25, 0.5]


def test_parameter_layout_and_names():
    net = sn.Network.mlp(3, (4, 5), n_outputs=2, skip="first-to-output", seed=0)
    shapes = {name: p.shape for name, p in net.parameters().items()}
    assert shapes == {"layers.0.weight": (4, 3), "layers.0.bias": (4,), "layers.1.weight": (5, 4),
                      "layers.1.bias": (5,), "layers.2.weight": (2, 5), "layers.2.bias": (2,),
                      "skips.0.weight": (2, 4)}
    assert net.n_parameters == sum(np.prod(s) for s in shapes.values())
    # views share the one flat buffer
    assert all(np.shares_memory(v, net.internals.params) for v in net.internals.param_views.values())
    # parameters() returns copies
    p = net.parameters()
    p["layers.0.weight"][...] = 7
    assert not (net.parameters()["layers.0.weight"] == 7).any()


def test_default_init_is_nn_linear_uniform_and_seeded():
    net = sn.Network.mlp(100, (400,), n_outputs=1, seed=3)
    w = net.parameters()["layers.0.weight"]
    bound = 1 / np.sqrt(100)
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.99 * bound
    assert abs(w.std() - bound / np.sqrt(3)) < 0.01 * bound / np.sqrt(3) * 10
    same = sn.Network.mlp(100, (400,), n_outputs=1, seed=3)
    np.testing.assert_array_equal(net.internals.params, same.internals.params)
    other = sn.Network.mlp(100, (400,), n_outputs=1, seed=4)
    assert not np.array_equal(net.internals.params, other.internals.params)
    f32 = sn.Network.mlp(100, (400,), n_outputs=1, seed=3, dtype="float32")
    np.testing.assert_array_equal(f32.internals.params, net.internals.params.astype(np.float32))


def test_he_init():
    net = sn.Network.mlp(200, (300,), n_outputs=1, seed=0, init="he")
    p = net.parameters()
    assert abs(p["layers.0.weight"].std() - np.sqrt(2 / 200)) < 0.02 * np.sqrt(2 / 200)
    assert (p["layers.0.bias"] == 0).all()


def test_mlp_skip_kinds():
    first = sn.Network.mlp(2, (16, 16), skip="first-to-output")
    assert first.skips == (sn.Skip(0, 2),)
    res = sn.Network.mlp(64, [64] * 16, skip="residual")
    assert res.skips == tuple(sn.Skip(k - 2, k, identity=True) for k in range(1, 16, 2))
    assert sn.Network.mlp(3, (8, 8, 8, 8), skip="residual").skips == (sn.Skip(1, 3, identity=True),)
    with pytest.raises(ValueError, match="at least two hidden layers"):
        sn.Network.mlp(2, (16,), skip="first-to-output")
    with pytest.raises(ValueError, match="equal widths"):
        sn.Network.mlp(2, (4, 4, 8, 5), skip="residual")


def test_set_parameters_validates_everything_before_writing():
    net = sn.Network.exercise()
    before = net.parameters()
    with pytest.raises(ValueError, match="shape"):
        net.set_parameters({"layers.0.weight": [[1.0]], "layers.1.weight": [1.0, 2.0]})
    with pytest.raises(ValueError, match="unknown parameter 'nope'"):
        net.set_parameters({"nope": [[1.0]]})
    with pytest.raises(ValueError, match="NaN"):
        net.set_parameters({"layers.0.weight": [[np.nan]]})
    with pytest.raises(TypeError, match="real numbers"):
        net.set_parameters({"layers.0.weight": [["a"]]})
    assert all((net.parameters()[k] == v).all() for k, v in before.items())
    net.set_parameters({"skips.0.weight": [[2]]})
    assert net.parameters()["skips.0.weight"][0, 0] == 2.0


def test_copy_is_independent():
    net = sn.Network.mlp(2, (3, 3), skip="first-to-output", seed=1)
    clone = net.copy()
    clone.internals.params[...] = 0
    assert net.internals.params.any()
    assert repr(clone).startswith("Network(n_inputs=2")


@pytest.mark.parametrize("kwargs,error,match", [
    ({"n_inputs": 0, "layers": [sn.Dense(1, "identity")]}, ValueError, "n_inputs"),
    ({"n_inputs": 1, "layers": []}, ValueError, "non-empty"),
    ({"n_inputs": 1, "layers": [sn.Dense(1, "relu")]}, ValueError, "output layer"),
    ({"n_inputs": 1, "layers": ["x"]}, TypeError, r"layers\[0\]"),
    ({"n_inputs": 1, "layers": [sn.Dense(2), sn.Dense(1, "identity")], "skips": [sn.Skip(-1, 5)]}, ValueError, "dst"),
    ({"n_inputs": 3, "layers": [sn.Dense(2), sn.Dense(1, "identity")], "skips": [sn.Skip(-1, 1, identity=True)]},
     ValueError, "identity skip needs equal widths"),
    ({"n_inputs": 1, "layers": [sn.Dense(1, "identity")], "dtype": "float16"}, ValueError, "dtype"),
    ({"n_inputs": 1, "layers": [sn.Dense(1, "identity")], "backend": "torch"}, ValueError, "backend"),
    ({"n_inputs": 1, "layers": [sn.Dense(1, "identity")], "seed": -1}, ValueError, "seed"),
])
def test_bad_architectures(kwargs, error, match):
    with pytest.raises(error, match=match):
        sn.Network(**kwargs)


@pytest.mark.parametrize("make,error,match", [
    (lambda: sn.Dense(0), ValueError, "units"),
    (lambda: sn.Dense(2, "tanh"), ValueError, "activation"),
    (lambda: sn.Dense(2.5), TypeError, "units"),
    (lambda: sn.Skip(1, 2), ValueError, "src <= dst - 2"),
    (lambda: sn.Skip(-2, 2), ValueError, "src"),
])
def test_bad_layers_and_skips(make, error, match):
    with pytest.raises(error, match=match):
        make()


@pytest.mark.parametrize("X,error,match", [
    ([1.0, 2.0], ValueError, "2-D"),
    ([[1.0, 2.0]], ValueError, "1 columns"),
    ([[np.nan]], ValueError, "NaN"),
    ([[1 + 2j]], TypeError, "real numbers"),
    ([["a"]], TypeError, "real numbers"),
    (np.empty((0, 1)), None, None),
])
def test_forward_input_validation(X, error, match, backend):
    net = sn.Network.exercise(backend=backend)
    if error is None:
        assert net.forward(X).shape == (0, 1)
        return
    with pytest.raises(error, match=match):
        net.forward(X)


def test_forward_converts_once_and_never_modifies_input():
    net = sn.Network.mlp(3, (4, 4), seed=0)
    X = np.asfortranarray(np.random.default_rng(0).normal(size=(5, 3)))
    X_int = np.arange(15).reshape(5, 3)
    before = X.copy()
    np.testing.assert_allclose(net.forward(X), net.forward(np.ascontiguousarray(X)))
    np.testing.assert_array_equal(X, before)
    assert net.forward(X_int).dtype == np.float64
    strided = np.random.default_rng(1).normal(size=(10, 6))[::2, ::2]
    np.testing.assert_allclose(net.forward(strided), net.forward(strided.copy()))


@pytest.mark.parametrize("loss,y,error,match", [
    ("l1", [[1.0], [2.0]], ValueError, r"shape \(1, 1\)"),
    ("bce", [[2.0]], ValueError, r"\[0, 1\]"),
    ("cross_entropy", [0], ValueError, "at least 2 units"),
    ("hinge", [[1.0]], ValueError, "loss must be one of"),
    ("l1", [[np.inf]], ValueError, "NaN or infinity"),
])
def test_gradients_target_validation(loss, y, error, match):
    net = sn.Network.exercise()
    with pytest.raises(error, match=match):
        net.gradients([[1.0]], y, loss=loss)


def test_cross_entropy_targets():
    net = sn.Network.mlp(2, (4,), n_outputs=3, seed=0)
    X = np.ones((3, 2))
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        net.gradients(X, [0, 1, 3], loss="cross_entropy")
    with pytest.raises(ValueError, match="integer class"):
        net.gradients(X, [0, 1, 0.5], loss="cross_entropy")
    a = net.gradients(X, [0, 1, 2], loss="cross_entropy")[0]
    b = net.gradients(X, np.array([[0.0], [1.0], [2.0]]), loss="cross_entropy")[0]
    assert a == b

"""Sample weights: the weighted mean loss sum_i w_i l_i / sum_i w_i, its gradient, and fits with it.

An integer weight counts its row that many times, so weighted losses, gradients and whole fits (with
batches that hold the same rows) equal those on repeated rows, to rounding (sums run in another order).
Equal weights are the unweighted fit bit for bit, and the fused path is the per-op path bit for bit.
"""

import warnings

import numpy as np
import pytest
from _helpers import assert_close, random_architecture, random_targets

import skipnet as sn
from skipnet import _kernels as K
from skipnet import reference
from skipnet.sklearn import SkipNetClassifier, SkipNetRegressor

LOSSES = ["l1", "mse", "bce", "cross_entropy"]
# (backend, fused): the fused and the per-op path of the kernels, and the reference
PATHS = [("cython", True), ("cython", False), ("numpy", False)]


def _problem(seed, loss, n=9, dtype="float64", backend="cython"):
    """A random network, data and integer weights (some 0) for ``loss``."""
    rng = np.random.default_rng(seed)
    n_inputs, layers, skips = random_architecture(rng)
    while loss == "cross_entropy" and layers[-1].units < 2:
        n_inputs, layers, skips = random_architecture(rng)
    X = rng.normal(size=(n, n_inputs))
    y = random_targets(rng, loss, n, layers[-1].units)
    weight = rng.integers(0, 4, n)
    weight[0] = 2  # never all zero
    def make():
        return sn.Network(n_inputs, layers, skips, dtype=dtype, seed=seed, backend=backend)
    return make, X, y, weight


@pytest.mark.parametrize("case", range(3))
@pytest.mark.parametrize("loss", LOSSES)
def test_gradients_with_integer_weights_equal_repeated_rows(case, loss, dtype, backend):
    make, X, y, weight = _problem(10 + case, loss, dtype=dtype, backend=backend)
    rows = np.repeat(np.arange(len(weight)), weight)
    net = make()
    value, grads = net.gradients(X, y, loss, sample_weight=weight)
    value_rep, grads_rep = net.gradients(X[rows], y[rows], loss)
    assert_close(value, value_rep, dtype)
    for name in grads:
        assert_close(grads[name], grads_rep[name], dtype, scale=np.abs(grads_rep[name]).max() + 1e-3)


@pytest.mark.parametrize(("backend_", "fused"), PATHS)
@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("optimizer", [{"optimizer": "sgd", "momentum": 0.9}, {"optimizer": "adam"}])
def test_fit_with_integer_weights_equals_the_fit_on_repeated_rows(backend_, fused, loss, optimizer, dtype):
    make, X, y, weight = _problem(20, loss, dtype=dtype, backend=backend_)
    rows = np.repeat(np.arange(len(weight)), weight)
    # shuffle=False and batch_size >= n: every step sees the same rows, once weighted, once repeated
    options = dict(loss=loss, lr=0.01, batch_size=64, epochs=6, shuffle=False, fused=fused, **optimizer)
    weighted, repeated = make(), make()
    hw = sn.Trainer(weighted, **options).fit(X, y, sample_weight=weight)
    hr = sn.Trainer(repeated, **options).fit(X[rows], y[rows])
    assert_close(hw.step_loss, hr.step_loss, dtype)
    assert_close(hw.epoch_loss, hr.epoch_loss, dtype)
    scale = np.abs(repeated.internals.params).max()
    assert_close(weighted.internals.params, repeated.internals.params, dtype, scale=10 * scale)
    assert not np.array_equal(weighted.internals.params, make().internals.params)  # it trained


@pytest.mark.parametrize("case", range(6))
@pytest.mark.parametrize("loss", LOSSES)
def test_weighted_fused_is_the_per_op_path_bit_for_bit(case, loss, dtype):
    make, X, y, _ = _problem(30 + case, loss, n=23, dtype=dtype)
    weight = np.random.default_rng(case).random(23) * (np.arange(23) % 4 != 1)  # real weights, some 0
    options = {"loss": loss, "lr": 0.02, "batch_size": 1 + case, "epochs": 4, "shuffle": bool(case % 2), "seed": case,
                   "momentum": 0.5 if case % 3 else 0.0}
    runs = []
    for fused in (True, False):
        net = make()
        runs.append((sn.Trainer(net, fused=fused, **options).fit(X, y, sample_weight=weight), net))
    (hf, nf), (hp, np_) = runs
    np.testing.assert_array_equal(hf.step_loss, hp.step_loss)
    np.testing.assert_array_equal(hf.epoch_loss, hp.epoch_loss)
    np.testing.assert_array_equal(nf.internals.params, np_.internals.params)


@pytest.mark.parametrize("momentum", [0.0, 0.5])
@pytest.mark.parametrize("batch", [1, 3])
def test_weighted_width1_networks_match_per_op(momentum, batch, dtype):
    """The scalar path knows no weights: weighted fits of width-1 networks run the general loop."""
    X = np.linspace(-1, 2, 7)[:, None]
    y = 0.5 - X
    weight = np.array([1.0, 0.0, 2.5, 1.0, 3.0, 0.5, 1.0])
    runs = []
    for fused in (True, False):
        net = sn.Network.exercise()
        net = sn.Network(1, net.layers, net.skips, dtype=dtype, seed=0)
        trainer = sn.Trainer(net, loss="mse", lr=0.05, momentum=momentum, batch_size=batch, epochs=5,
                             shuffle=True, seed=1, fused=fused)
        runs.append((trainer.fit(X, y, sample_weight=weight), net))
    np.testing.assert_array_equal(runs[0][0].step_loss, runs[1][0].step_loss)
    np.testing.assert_array_equal(runs[0][1].internals.params, runs[1][1].internals.params)


@pytest.mark.parametrize(("backend_", "fused"), PATHS)
def test_equal_weights_are_the_unweighted_fit_bit_for_bit(backend_, fused):
    make, X, y, _ = _problem(40, "mse", n=17)
    options = {"loss": "mse", "lr": 0.02, "batch_size": 5, "epochs": 3, "seed": 0, "fused": fused}
    a, b = make(), make()
    ha = sn.Trainer(a, **options).fit(X, y, sample_weight=np.full(17, 2.5))
    hb = sn.Trainer(b, **options).fit(X, y)
    np.testing.assert_array_equal(ha.step_loss, hb.step_loss)
    np.testing.assert_array_equal(a.internals.params, b.internals.params)


@pytest.mark.parametrize("loss", LOSSES)
def test_kernel_matches_the_reference(loss, dtype):
    rng = np.random.default_rng(5)
    n, m = 11, 3
    yhat = rng.normal(size=(n, m)).astype(dtype)
    y = random_targets(rng, loss, n, m)
    y = y if loss == "cross_entropy" else y.astype(dtype)
    weight = rng.random(n) * (rng.random(n) > 0.3)
    weight[0] = 0.7
    grad = np.empty_like(yhat)
    value, total = K.weighted_loss(loss, yhat, y, weight, grad)
    ref_value, ref_grad, ref_total = reference.weighted_loss_and_gradient(loss, yhat, y, weight)
    assert total == pytest.approx(ref_total, rel=1e-15)
    assert_close(value, ref_value, dtype)
    assert_close(grad, ref_grad, dtype)
    assert not grad[weight == 0].any()


@pytest.mark.parametrize("loss", LOSSES)
def test_a_batch_of_zero_weights_has_loss_0_and_gradient_0(loss):
    yhat = np.array([[1.0, -2.0], [0.5, 3.0]])
    y = np.array([0, 1]) if loss == "cross_entropy" else np.array([[1.0, 0.0], [0.0, 1.0]])
    grad = np.full_like(yhat, 7.0)
    assert K.weighted_loss(loss, yhat, y, np.zeros(2), grad) == (0.0, 0.0)
    assert not grad.any()
    value, ref_grad, total = reference.weighted_loss_and_gradient(loss, yhat, y, np.zeros(2))
    assert (value, total) == (0.0, 0.0) and not ref_grad.any()


@pytest.mark.parametrize("fused", [True, False])
def test_zero_weight_batches_leave_the_weights_and_epoch_loss_is_the_weighted_mean(fused):
    make, X, y, _ = _problem(50, "l1", n=9)
    weight = np.array([1.0, 2.0, 1.0, 0.0, 0.0, 0.0, 3.0, 0.5, 1.0])
    net = make()
    trainer = sn.Trainer(net, loss="l1", lr=0.05, batch_size=3, epochs=1, shuffle=False, fused=fused)
    history = trainer.fit(X, y, sample_weight=weight)
    assert history.step_loss[1] == 0.0  # the all-zero batch
    batch_sums = weight.reshape(3, 3).sum(axis=1)
    assert history.epoch_loss[0] == pytest.approx(np.dot(history.step_loss, batch_sums) / weight.sum(), rel=1e-14)
    # the same fit without the zero-weight rows' batch gives the same weights (plain SGD: a zero
    # gradient is no update)
    keep = np.r_[0:3, 6:9]
    other = make()
    sn.Trainer(other, loss="l1", lr=0.05, batch_size=3, epochs=1, shuffle=False,
               fused=fused).fit(X[keep], y[keep], sample_weight=weight[keep])
    np.testing.assert_array_equal(net.internals.params, other.internals.params)


@pytest.mark.parametrize("loss", ["l1", "bce", "cross_entropy"])
def test_weighted_gradients_against_finite_differences(loss, backend):
    eps, checked = 1e-6, 0
    for case in range(6):
        make, X, y, _ = _problem(60 + case, loss, n=5, backend=backend)
        weight = np.random.default_rng(case).random(5) + np.array([0, 0, 1, 0, 2])
        net = make()
        _, grads = net.gradients(X, y, loss, sample_weight=weight)
        flat = net.internals.params
        numeric = np.empty_like(flat)
        for i in range(flat.size):
            old = flat[i]
            flat[i] = old + eps
            up = net.gradients(X, y, loss, sample_weight=weight)[0]
            flat[i] = old - eps
            down = net.gradients(X, y, loss, sample_weight=weight)[0]
            flat[i] = old
            numeric[i] = (up - down) / (2 * eps)
        analytic = np.concatenate([grads[name].ravel() for name in net.parameter_names])
        if loss == "l1":  # kinks: compare only where the residuals and ReLUs are away from 0
            p = net.internals.detailed_pass(X)
            if np.abs(p.h[-1] - y).min() < 1e-3 or any(np.abs(z).min() < 1e-3 for z in p.z[:-1]):
                continue
        np.testing.assert_allclose(analytic, numeric, rtol=1e-5, atol=1e-7)
        checked += 1
    assert checked >= 3


BAD_WEIGHTS = [
    ([-1.0, 1.0, 1.0, 1.0], ">= 0"),
    ([np.nan, 1.0, 1.0, 1.0], "NaN"),
    ([np.inf, 1.0, 1.0, 1.0], "NaN or infinity"),
    ([1.0, 1.0, 1.0], r"shape \(4,\)"),
    (np.ones((4, 2)), r"shape \(4,\)"),
    ([0.0, 0.0, 0.0, 0.0], "zero for every sample"),
    (["a", "b", "c", "d"], "real numbers"),
]


@pytest.mark.parametrize(("bad", "message"), BAD_WEIGHTS)
def test_bad_weights_are_refused_naming_sample_weight(bad, message):
    net = sn.Network.mlp(n_inputs=2, hidden=(3,), n_outputs=1, seed=0)
    X, y = np.ones((4, 2)), np.zeros((4, 1))
    before = net.internals.params.copy()
    kind = TypeError if message == "real numbers" else ValueError
    with pytest.raises(kind, match=f"sample_weight.*{message}"):
        net.gradients(X, y, "mse", sample_weight=bad)
    with pytest.raises(kind, match=f"sample_weight.*{message}"):
        sn.Trainer(net, loss="mse").fit(X, y, sample_weight=bad)
    np.testing.assert_array_equal(net.internals.params, before)


@pytest.mark.parametrize("fused", [True, False])
def test_a_validation_triple_weights_the_validation_loss(fused):
    make, X, y, weight = _problem(70, "mse", n=12)
    Xv, yv = X[:5] + 0.5, y[:5]
    wv = np.array([0.0, 1.0, 4.0, 1.0, 2.0])
    net = make()
    trainer = sn.Trainer(net, loss="mse", lr=0.01, batch_size=4, epochs=1, fused=fused)
    history = trainer.fit(X, y, validation=(Xv, yv, wv), sample_weight=weight)
    assert history.val_loss[0] == net.gradients(Xv, yv, "mse", sample_weight=wv)[0]
    assert history.val_loss[0] != net.gradients(Xv, yv, "mse")[0]
    with pytest.raises(ValueError, match="validation sample_weight must be >= 0"):
        trainer.fit(X, y, validation=(Xv, yv, -wv))
    with pytest.raises(ValueError, match="validation must be a pair"):
        trainer.fit(X, y, validation=(Xv, yv, wv, wv))


# ------------------------------------------------------------------------------ estimators
FAST = {"hidden_layer_sizes": (8, 8), "epochs": 5, "random_state": 0, "batch_size": 16}


def _labels(n=40, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    y = np.where(X[:, 0] > 0.6, "spam", np.where(X[:, 1] > 0, "eggs", "ham"))
    return X, y


def _fit_params(est):
    return est.network_.internals.params


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_balanced_class_weight_is_the_balanced_sample_weights():
    X, y = _labels()
    classes, index = np.unique(y, return_inverse=True)
    balanced = len(y) / (len(classes) * np.bincount(index))
    a = SkipNetClassifier(**FAST, class_weight="balanced").fit(X, y)
    b = SkipNetClassifier(**FAST).fit(X, y, sample_weight=balanced[index])
    np.testing.assert_array_equal(_fit_params(a), _fit_params(b))
    np.testing.assert_array_equal(a.loss_curve_, b.loss_curve_)
    c = SkipNetClassifier(**FAST).fit(X, y)
    assert not np.array_equal(_fit_params(a), _fit_params(c))


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_class_weight_dict_with_string_labels_times_sample_weight():
    X, y = _labels()
    sample_weight = np.arange(len(y)) % 3 + 1.0
    class_weight = {"spam": 3.0, "ham": 0.5}  # eggs: 1
    per_sample = np.array([class_weight.get(label, 1.0) for label in y]) * sample_weight
    a = SkipNetClassifier(**FAST, class_weight=class_weight).fit(X, y, sample_weight=sample_weight)
    b = SkipNetClassifier(**FAST).fit(X, y, sample_weight=per_sample)
    np.testing.assert_array_equal(_fit_params(a), _fit_params(b))


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_binary_class_weight_and_partial_fit():
    X, y = _labels()
    y = np.where(y == "spam", "spam", "other")
    a = SkipNetClassifier(**FAST, class_weight={"spam": 4}).partial_fit(X, y, classes=["other", "spam"])
    b = SkipNetClassifier(**FAST).partial_fit(X, y, classes=["other", "spam"],
                                              sample_weight=np.where(y == "spam", 4.0, 1.0))
    np.testing.assert_array_equal(_fit_params(a), _fit_params(b))
    with pytest.raises(ValueError, match="class_weight='balanced' is not supported by partial_fit"):
        SkipNetClassifier(**FAST, class_weight="balanced").partial_fit(X, y, classes=["other", "spam"])


@pytest.mark.parametrize(("class_weight", "message"), [
    ("heavy", "class_weight must be None, 'balanced' or a dict"),
    ({"spam": 1.0, "nonsense": 2.0}, "does not fit the classes"),
    ({"spam": -1.0}, "finite weights >= 0"),
    ({"spam": 0.0, "eggs": 0.0, "ham": 0.0}, "zero for every sample"),
])
def test_bad_class_weight_is_refused(class_weight, message):
    X, y = _labels()
    with pytest.raises(ValueError, match=message):
        SkipNetClassifier(**FAST, class_weight=class_weight).fit(X, y)


@pytest.mark.parametrize("make", [SkipNetRegressor, SkipNetClassifier])
def test_estimators_integer_weights_equal_repeated_rows(make):
    X, y = _labels()
    if make is SkipNetRegressor:
        y = X[:, 0] - 2 * X[:, 1]
    weight = np.arange(len(y)) % 3
    rows = np.repeat(np.arange(len(y)), weight)
    options = {"hidden_layer_sizes": (8, 8), "epochs": 5, "random_state": 0, "batch_size": 200, "shuffle": False}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = make(**options).fit(X, y, sample_weight=weight)
        b = make(**options).fit(X[rows], y[rows])
    np.testing.assert_allclose(a.loss_curve_, b.loss_curve_, rtol=1e-12)
    np.testing.assert_allclose(_fit_params(a), _fit_params(b), rtol=1e-9, atol=1e-12)


def test_estimator_refuses_bad_sample_weight():
    X, y = _labels()
    with pytest.raises(ValueError, match="sample_weight must be >= 0"):
        SkipNetRegressor(**FAST).fit(X, X[:, 0], sample_weight=-np.ones(len(y)))
    with pytest.raises(ValueError, match=r"sample_weight must have shape \(40,\)"):
        SkipNetClassifier(**FAST).fit(X, y, sample_weight=np.ones(41))


def test_classifier_refuses_weights_that_leave_one_class():
    X, y = _labels()
    with pytest.raises(ValueError, match="only one class, \\['ham'\\], with a positive weight"):
        SkipNetClassifier(**FAST).fit(X, y, sample_weight=(y == "ham").astype(float))


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_early_stopping_keeps_the_weights_of_the_held_out_rows():
    X, y = _labels(n=60)
    weight = np.where(y == "spam", 5.0, 1.0)
    est = SkipNetClassifier(**FAST, early_stopping=True, validation_fraction=0.25).fit(X, y, sample_weight=weight)
    assert len(est.validation_loss_curve_) == est.n_iter_
    other = SkipNetClassifier(**FAST, early_stopping=True, validation_fraction=0.25).fit(X, y)
    assert est.validation_loss_curve_[0] != other.validation_loss_curve_[0]

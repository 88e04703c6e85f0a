"""scikit-learn estimators: the whole check_estimator suite, composition, pickling, and scores on
scikit-learn's bundled data sets against MLPRegressor / MLPClassifier with the same hidden sizes."""

import pickle
import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn")

from sklearn.base import clone
from sklearn.compose import TransformedTargetRegressor
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris, make_classification
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.model_selection import GridSearchCV, KFold, StratifiedKFold, cross_validate
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

import skipnet as sn
from skipnet.sklearn import SkipNetClassifier, SkipNetRegressor

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

FAST = {"hidden_layer_sizes": (16, 16), "epochs": 30, "lr": 0.01}
# no fixed validation set across partial_fit calls; MLPRegressor and MLPClassifier raise the same way
PARTIAL_FIT_WITH_EARLY_STOPPING = "partial_fit rejects early_stopping=True, as the MLPs do"
ESTIMATORS = [
    SkipNetRegressor(**FAST),
    SkipNetRegressor(hidden_layer_sizes=(16, 16), skip="residual", loss="l1", optimizer="sgd", lr=0.05,
                     momentum=0.9, epochs=30),
    SkipNetClassifier(**FAST),
    SkipNetClassifier(hidden_layer_sizes=8, skip=None, optimizer="sgd", lr=0.1, epochs=30, backend="numpy"),
    SkipNetRegressor(**FAST, early_stopping=True, n_iter_no_change=3),
    SkipNetClassifier(**FAST, early_stopping=True, n_iter_no_change=3),
]


# integer weights equal repeated rows, but early stopping holds out a random share of the rows, and which
# rows it holds out changes when rows are repeated
SPLIT_OF_REPEATED_ROWS = "early_stopping's validation split differs between repeated and weighted rows"


def _expected_failures(estimator):
    if not estimator.early_stopping:
        return {}
    failures = {name: PARTIAL_FIT_WITH_EARLY_STOPPING for name in
                ("check_fit_score_takes_y", "check_n_features_in_after_fitting",
                 "check_estimators_partial_fit_n_features")}
    failures["check_sample_weight_equivalence_on_dense_data"] = SPLIT_OF_REPEATED_ROWS
    return failures


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=_expected_failures, xfail_strict=True)
def test_scikit_learn_check_suite(estimator, check):
    check(estimator)


# ------------------------------------------------------------------------------------- data helpers
def _regression(n=200, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    return X, np.sin(X[:, 0]) + X[:, 1] * X[:, 2]


def _classes(n=240, n_classes=3, seed=0):
    return make_classification(n, n_features=5, n_informative=3, n_redundant=0, n_classes=n_classes,
                               n_clusters_per_class=1, random_state=seed)


# ------------------------------------------------------------------------------------- behaviour
def test_init_only_stores_and_fit_validates_with_named_errors():
    X, y = _regression(40)
    bad = {"lr": -1.0, "epochs": 0, "hidden_layer_sizes": (4, 0), "batch_size": "big", "loss": "huber",
           "optimizer": "rmsprop", "dtype": "float16", "validation_fraction": 1.5, "n_iter_no_change": 0,
           "skip": "dense", "momentum": -0.1, "tol": -1.0}
    for name, value in bad.items():
        est = SkipNetRegressor(**{name: value, "early_stopping": name == "validation_fraction"})
        assert getattr(est, name) == value  # stored untouched
        with pytest.raises((ValueError, TypeError), match=name.split("_")[0] if name != "hidden_layer_sizes"
                           else "hidden_layer_sizes"):
            est.fit(X, y)
        assert not hasattr(est, "network_")  # nothing half-fitted


def test_first_to_output_needs_two_hidden_layers():
    X, y = _regression(40)
    with pytest.raises(ValueError, match="at least two hidden layers"):
        SkipNetRegressor(hidden_layer_sizes=(8,), skip="first-to-output").fit(X, y)
    SkipNetRegressor(hidden_layer_sizes=8, skip=None, epochs=2).fit(X, y)


def test_regressor_uses_skipnet_network_and_trainer():
    X, y = _regression()
    reg = SkipNetRegressor(hidden_layer_sizes=(8, 6), loss="l1", optimizer="sgd", lr=0.05, batch_size=16,
                           epochs=4, n_iter_no_change=None, random_state=3, shuffle=False).fit(X, y)
    net = reg.network_
    assert isinstance(net, sn.Network) and [ly.units for ly in net.layers] == [8, 6, 1]
    assert net.skips == (sn.Skip(0, 2),)
    assert reg.n_iter_ == 4 and reg.t_ == 4 * 13 and len(reg.loss_curve_) == 4
    # the same network trained by hand with the Trainer gives the same curve and weights
    twin = sn.Network.mlp(3, (8, 6), 1, skip="first-to-output", seed=net.seed)
    hist = sn.Trainer(twin, loss="l1", optimizer="sgd", lr=0.05, momentum=0.9, batch_size=16, epochs=4,
                      shuffle=False).fit(X, y)
    assert np.array_equal(hist.epoch_loss, reg.loss_curve_)
    assert twin.internals.params.tobytes() == net.internals.params.tobytes()
    assert reg.predict(X).shape == (200,)
    assert np.array_equal(reg.predict(X), net.predict(X)[:, 0])


def test_l1_regression_is_robust_to_outliers():
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, size=(400, 2))
    clean = X[:, 0] - 2 * X[:, 1]
    y = clean.copy()
    y[rng.random(400) < 0.15] += 40.0  # one-sided gross outliers drag the mean, not the median
    kw = {"hidden_layer_sizes": (16, 16), "lr": 0.01, "epochs": 150, "random_state": 0}
    l1 = SkipNetRegressor(loss="l1", **kw).fit(X, y)
    mse = SkipNetRegressor(loss="mse", **kw).fit(X, y)
    err_l1 = np.abs(l1.predict(X) - clean).mean()
    err_mse = np.abs(mse.predict(X) - clean).mean()
    assert err_l1 < 0.5 < err_mse


def test_multi_output_regression():
    X, y = _regression()
    Y = np.column_stack([y, -y, 2 * X[:, 0]])
    reg = SkipNetRegressor(**FAST, random_state=0).fit(X, Y)
    assert reg.n_outputs_ == 3 and reg.predict(X).shape == (200, 3)
    assert reg.score(X, Y) > 0.5


def test_classifier_binary_uses_one_logit_and_bce():
    X, y = _classes(n_classes=2)
    labels = np.where(y == 1, "yes", "no")
    clf = SkipNetClassifier(**FAST, random_state=0).fit(X, labels)
    assert list(clf.classes_) == ["no", "yes"] and clf.network_.n_outputs == 1
    z = clf.decision_function(X)
    proba = clf.predict_proba(X)
    assert z.shape == (240,) and proba.shape == (240, 2)
    assert np.allclose(proba.sum(axis=1), 1.0) and np.allclose(proba[:, 1], 1 / (1 + np.exp(-z)))
    assert np.allclose(clf.predict_log_proba(X), np.log(proba))
    assert np.array_equal(clf.predict(X), np.where(z > 0, "yes", "no"))
    assert clf.score(X, labels) > 0.9
    # the training loss is binary cross-entropy on the logits
    loss, _ = clf.network_.gradients(X, (labels == "yes").astype(float)[:, None], loss="bce")
    assert loss < clf.loss_curve_[0]


def test_classifier_multiclass_uses_cross_entropy_and_any_labels():
    X, y = _classes(n_classes=3)
    labels = np.array([10, -1, 7])[y]
    clf = SkipNetClassifier(**FAST, random_state=0).fit(X, labels)
    assert list(clf.classes_) == [-1, 7, 10] and clf.network_.n_outputs == 3
    proba = clf.predict_proba(X)
    assert proba.shape == (240, 3) and np.allclose(proba.sum(axis=1), 1.0)
    assert np.array_equal(clf.predict(X), clf.classes_[proba.argmax(axis=1)])
    assert np.allclose(np.exp(clf.predict_log_proba(X)), proba)
    assert clf.score(X, labels) > 0.85


def test_extreme_logits_stay_finite():
    X, y = _classes(n_classes=2)
    clf = SkipNetClassifier(**FAST, random_state=0).fit(X, y)
    with np.errstate(all="raise"):
        proba = clf.predict_proba(X * 1e4)
        log_proba = clf.predict_log_proba(X * 1e4)
    assert np.isfinite(proba).all() and np.isfinite(log_proba).all()


def test_unfitted_estimators_raise_not_fitted():
    X, _ = _regression(5)
    for est in (SkipNetRegressor(), SkipNetClassifier()):
        for method in ("predict", "predict_proba", "decision_function"):
            if hasattr(est, method):
                with pytest.raises(NotFittedError):
                    getattr(est, method)(X)


def test_tol_rule_stops_like_the_mlps():
    X, y = _regression()
    reg = SkipNetRegressor(**{**FAST, "epochs": 100}, tol=1e9, n_iter_no_change=4).fit(X, y)
    # epoch 1 sets the best loss; epochs 2..6 do not improve by tol: stop after more than 4 of them
    assert reg.n_iter_ == 6 and reg.stopped_reason_ == "callback"
    with pytest.warns(ConvergenceWarning, match="Maximum epochs"):
        SkipNetRegressor(**{**FAST, "epochs": 3}).fit(X, y)
    full = SkipNetRegressor(**{**FAST, "epochs": 7}, tol=1e9, n_iter_no_change=None).fit(X, y)
    assert full.n_iter_ == 7 and full.stopped_reason_ is None


def test_early_stopping_records_validation_loss_and_keeps_the_best_epoch():
    X, y = _regression(300)
    reg = SkipNetRegressor(hidden_layer_sizes=(32, 32), lr=0.03, epochs=200, early_stopping=True,
                           validation_fraction=0.2, n_iter_no_change=5, random_state=0).fit(X, y)
    assert len(reg.validation_loss_curve_) == reg.n_iter_ == len(reg.loss_curve_) < 200
    assert reg.best_validation_loss_ == min(reg.validation_loss_curve_)
    # the kept weights are those of the best validation epoch: recompute its loss on the same split
    rng = np.random.RandomState(0)
    rng.randint(2**31 - 1)  # the network seed
    from sklearn.model_selection import train_test_split

    _, X_val, _, y_val = train_test_split(X, y, test_size=0.2, random_state=rng.randint(2**31 - 1))
    val_loss, _ = reg.network_.gradients(X_val, y_val[:, None], loss="mse")
    assert val_loss == pytest.approx(reg.best_validation_loss_, rel=1e-12)
    without = SkipNetRegressor(**FAST).fit(X, y)
    assert not hasattr(without, "validation_loss_curve_")


def test_warm_start_and_partial_fit_continue():
    X, y = _regression()
    reg = SkipNetRegressor(**FAST, warm_start=True, n_iter_no_change=None, random_state=0).fit(X, y)
    first = reg.network_
    reg.set_params(epochs=5).fit(X, y)
    assert reg.network_ is first and reg.n_iter_ == 35 and len(reg.loss_curve_) == 35
    with pytest.raises(ValueError, match="targets"):
        reg.fit(X, np.column_stack([y, y]))
    part = SkipNetRegressor(**FAST, random_state=0)
    for _ in range(3):
        part.partial_fit(X, y)
    assert part.n_iter_ == 3 and len(part.loss_curve_) == 3
    assert part.loss_curve_[2] < part.loss_curve_[0]


def test_classifier_partial_fit_needs_classes_first():
    X, y = _classes()
    clf = SkipNetClassifier(**FAST, random_state=0)
    with pytest.raises(ValueError, match="classes must be passed"):
        clf.partial_fit(X, y)
    clf.partial_fit(X[:10], y[:10], classes=[0, 1, 2])
    clf.partial_fit(X[10:], y[10:])
    assert list(clf.classes_) == [0, 1, 2] and clf.n_iter_ == 2
    with pytest.raises(ValueError, match="not in classes"):
        clf.partial_fit(X, y + 5)
    with pytest.raises(ValueError, match="differ"):
        clf.partial_fit(X, y, classes=[0, 1])
    with pytest.raises(ValueError, match="at least 2 classes"):
        SkipNetClassifier().fit(X, np.zeros(len(X)))


def test_partial_fit_continues_after_pickling():
    X, y = _classes()
    a = SkipNetClassifier(**FAST, optimizer="adam", random_state=0).partial_fit(X, y, classes=[0, 1, 2])
    b = pickle.loads(pickle.dumps(a))
    a.partial_fit(X, y)
    b.partial_fit(X, y)  # same weights, same Adam moments, same shuffling generator
    assert np.array_equal(a.decision_function(X), b.decision_function(X))


def test_pickle_round_trip_predicts_identically():
    X, y = _classes()
    for est in (SkipNetClassifier(**FAST, random_state=0).fit(X, y),
                SkipNetRegressor(**FAST, dtype="float32", random_state=0).fit(X, y.astype(float))):
        back = pickle.loads(pickle.dumps(est))
        assert np.array_equal(back.predict(X), est.predict(X))
        assert back.get_params() == est.get_params()


def test_same_random_state_same_model_and_float32():
    X, y = _regression()
    a = SkipNetRegressor(**FAST, random_state=7).fit(X, y)
    b = clone(a).fit(X, y)
    assert np.array_equal(a.predict(X), b.predict(X))
    c = SkipNetRegressor(**FAST, random_state=7, dtype="float32").fit(X, y)
    assert c.network_.dtype == np.float32 and c.predict(X).dtype == np.float64
    assert np.abs(c.predict(X) - a.predict(X)).max() < 1e-2


def test_pipeline_and_grid_search():
    X, y = _classes()
    pipe = make_pipeline(StandardScaler(), SkipNetClassifier(**FAST, random_state=0))
    grid = GridSearchCV(pipe, {"skipnetclassifier__hidden_layer_sizes": [(8, 8), (16, 16)],
                               "skipnetclassifier__lr": [0.003, 0.03]}, cv=3)
    grid.fit(X, y)
    assert set(grid.best_params_) == {"skipnetclassifier__hidden_layer_sizes", "skipnetclassifier__lr"}
    assert grid.score(X, y) > 0.85
    fitted = grid.best_estimator_[-1]
    assert fitted.hidden_layer_sizes == grid.best_params_["skipnetclassifier__hidden_layer_sizes"]
    back = pickle.loads(pickle.dumps(grid))
    assert np.array_equal(back.predict(X), grid.predict(X))


def test_dataframe_feature_names():
    pd = pytest.importorskip("pandas")
    X, y = _regression()
    frame = pd.DataFrame(X, columns=["a", "b", "c"])
    reg = SkipNetRegressor(**FAST).fit(frame, y)
    assert list(reg.feature_names_in_) == ["a", "b", "c"]
    with pytest.raises(ValueError, match="feature names"):
        reg.predict(frame[["c", "b", "a"]])


# ------------------------------------------------------------------------------------- real data
# Same hidden sizes, same folds, same scaling; each library's defaults for the rest (Adam, lr 1e-3,
# batches of min(200, n), at most 200 epochs with the tol / n_iter_no_change rule).
HIDDEN = (32, 32)


def _scaled_regressor(estimator):
    return TransformedTargetRegressor(make_pipeline(StandardScaler(), estimator), transformer=StandardScaler())


def _cv_means(make, X, y, cv, scoring):
    out = cross_validate(make(), X, y, cv=cv, scoring=scoring)
    return {name: float(np.mean(out[f"test_{name}"])) for name in scoring}


def test_diabetes_regression_matches_mlp_regressor():
    X, y = load_diabetes(return_X_y=True)
    cv = KFold(5, shuffle=True, random_state=0)
    scoring = ("r2", "neg_mean_absolute_error")
    mlp = _cv_means(lambda: _scaled_regressor(MLPRegressor(hidden_layer_sizes=HIDDEN, random_state=0)), X, y,
                    cv, scoring)
    mse = _cv_means(lambda: _scaled_regressor(SkipNetRegressor(HIDDEN, loss="mse", random_state=0)), X, y,
                    cv, scoring)
    l1 = _cv_means(lambda: _scaled_regressor(SkipNetRegressor(HIDDEN, loss="l1", random_state=0)), X, y,
                   cv, scoring)
    print(f"diabetes 5-fold: R2 MLP {mlp['r2']:.3f}, skipnet mse {mse['r2']:.3f}, l1 {l1['r2']:.3f}; "
          f"MAE MLP {-mlp['neg_mean_absolute_error']:.2f}, skipnet mse {-mse['neg_mean_absolute_error']:.2f}, "
          f"l1 {-l1['neg_mean_absolute_error']:.2f}")
    assert mse["r2"] >= mlp["r2"] - 0.03
    # L1 training targets the absolute error, which MLPRegressor cannot train for
    assert -l1["neg_mean_absolute_error"] <= -mlp["neg_mean_absolute_error"] * 1.02


@pytest.mark.parametrize("loader", [load_breast_cancer, load_iris])
def test_classification_matches_mlp_classifier(loader):
    X, y = loader(return_X_y=True)
    cv = StratifiedKFold(5, shuffle=True, random_state=0)
    scoring = ("accuracy", "neg_log_loss")
    mlp = _cv_means(lambda: make_pipeline(StandardScaler(), MLPClassifier(hidden_layer_sizes=HIDDEN,
                                                                          random_state=0)), X, y, cv, scoring)
    ours = _cv_means(lambda: make_pipeline(StandardScaler(), SkipNetClassifier(HIDDEN, random_state=0)), X, y,
                     cv, scoring)
    print(f"{loader.__name__} 5-fold: accuracy MLP {mlp['accuracy']:.4f}, skipnet {ours['accuracy']:.4f}; "
          f"log loss MLP {-mlp['neg_log_loss']:.3f}, skipnet {-ours['neg_log_loss']:.3f}")
    assert ours["accuracy"] >= mlp["accuracy"] - 0.02
    assert -ours["neg_log_loss"] <= -mlp["neg_log_loss"] + 0.05


class _HalvingSchedule:
    """Halve the rate every epoch; counts its start() calls to show each fit works on a copy."""

    def __init__(self):
        self.starts = 0

    def start(self, base_lr, steps_per_epoch, epochs):
        self.base, self.starts = base_lr, self.starts + 1

    def lr(self, step, epoch):
        return self.base * 0.5 ** epoch


def test_schedule_is_used_on_a_copy_and_verbose_prints(capsys):
    X, y = _regression()
    schedule = _HalvingSchedule()
    reg = SkipNetRegressor(**{**FAST, "epochs": 3}, schedule=schedule, n_iter_no_change=None, verbose=True,
                           random_state=0).fit(X, y)
    assert schedule.starts == 0  # the parameter itself is never mutated (clone / get_params stay valid)
    used = reg._trainer.schedule
    assert used is not schedule and used.starts == 1 and used.lr(0, 2) == 0.0025
    lines = capsys.readouterr().out.splitlines()
    assert [ln.split(",")[0] for ln in lines] == ["Epoch 1", "Epoch 2", "Epoch 3"]
    assert lines[0] == f"Epoch 1, loss = {reg.loss_curve_[0]:.8f}"


# ------------------------------------------------------------------------------------- values changed after fit
def test_partial_fit_validates_what_set_params_changed():
    X, y = _regression(40)
    reg = SkipNetRegressor(**FAST, random_state=0).partial_fit(X, y)
    for name, value, error in [("lr", "0.1", TypeError), ("momentum", -1.0, ValueError),
                               ("nesterov", "no", TypeError), ("shuffle", "yes", TypeError),
                               ("warm_start", "no", TypeError), ("weight_decay", float("nan"), ValueError),
                               ("schedule", object(), TypeError), ("verbose", "loud", TypeError),
                               ("tol", -1.0, ValueError), ("epochs", 0, ValueError), ("init", "xavier", ValueError)]:
        est = pickle.loads(pickle.dumps(reg)).set_params(**{name: value})
        t_before, weights = est.t_, est.network_.parameters()
        with pytest.raises(error, match=name):
            est.partial_fit(X, y)
        assert est.t_ == t_before
        for key, value in est.network_.parameters().items():
            np.testing.assert_array_equal(value, weights[key])


@pytest.mark.parametrize("change", [{"hidden_layer_sizes": (16, 8)}, {"hidden_layer_sizes": (16, 16, 16)},
                                    {"dtype": "float32"}, {"skip": "residual"}, {"backend": "numpy"}])
def test_continuing_after_the_architecture_changed_is_refused(change):
    """warm_start and partial_fit continue network_: a changed architecture raises (as the MLPs raise
    for changed classes) instead of training the old network; fit without warm_start rebuilds."""
    X, y = _regression(40)
    reg = SkipNetRegressor(**FAST, random_state=0).fit(X, y)
    net = reg.network_
    name = next(iter(change))
    reg.set_params(**change)
    with pytest.raises(ValueError, match=f"{name} changed from .* since the network was built"):
        reg.partial_fit(X, y)
    reg.set_params(warm_start=True)
    with pytest.raises(ValueError, match=f"{name} changed"):
        reg.fit(X, y)
    assert reg.network_ is net
    reg.set_params(warm_start=False).fit(X, y)
    assert reg.network_ is not net and reg.network_.dtype == np.dtype(reg.dtype)
    reg.partial_fit(X, y)  # continues the rebuilt network


def test_partial_fit_takes_a_new_lr_and_a_new_optimizer():
    X, y = _regression(40)
    reg = SkipNetRegressor(**FAST, optimizer="adam", random_state=0).partial_fit(X, y)
    trainer = reg._trainer
    reg.set_params(lr=0.5, batch_size=7).partial_fit(X, y)
    assert reg._trainer is trainer and trainer.lr == 0.5 and trainer.batch_size == 7  # moments kept
    reg.set_params(optimizer="sgd").partial_fit(X, y)
    assert reg._trainer is not trainer and reg._trainer.optimizer.name == "sgd"


def test_overwritten_fitted_attributes_give_clear_errors():
    X, y = _classes(60)
    clf = SkipNetClassifier(**FAST, random_state=0).fit(X, y)
    other = SkipNetClassifier(**FAST, random_state=0).fit(X[:, :3], y % 2)
    cases = [("network_", "a network", TypeError, "network_ must be the skipnet.Network"),
             ("network_", other.network_, ValueError, "n_features_in_ .* does not match network_"),
             ("classes_", other.classes_, ValueError, "classes_ holds 2 labels but network_ has 3 outputs"),
             ("classes_", [0, 1, 2], ValueError, "classes_ must be the 1-D array"),
             ("classes_", np.array([2, 1, 0]), ValueError, "distinct labels in sorted order"),
             ("classes_", np.array([0, "a", 1], dtype=object), ValueError, "comparable labels"),
             ("n_features_in_", 4.0, ValueError, "n_features_in_"),
             ("n_outputs_", 1, ValueError, "n_outputs_ is 1")]
    for name, value, error, message in cases:
        broken = pickle.loads(pickle.dumps(clf))
        setattr(broken, name, value)
        for method in (broken.predict, broken.predict_proba, broken.score):
            with pytest.raises(error, match=message):
                method(X, y) if method == broken.score else method(X)
    reg = SkipNetRegressor(**FAST, random_state=0).fit(*_regression(40))
    for name, value in [("n_iter_", -1), ("t_", "many"), ("loss_curve_", None)]:
        broken = pickle.loads(pickle.dumps(reg))
        setattr(broken, name, value)
        with pytest.raises(ValueError, match=name):
            broken.partial_fit(*_regression(40))
    broken = pickle.loads(pickle.dumps(reg))
    broken.network_ = broken.network_.copy()  # a network the estimator did not build
    np.testing.assert_array_equal(broken.predict(_regression(40)[0]), reg.predict(_regression(40)[0]))
    with pytest.raises(ValueError, match="network_ is not the network this estimator built"):
        broken.partial_fit(*_regression(40))


def test_a_failed_fit_leaves_the_fitted_estimator_as_it_was():
    X, y = _regression(40)
    reg = SkipNetRegressor(**FAST, optimizer="sgd", momentum=0.0, random_state=0).fit(X, y)
    expected = reg.predict(X)
    reg.set_params(nesterov=True)  # refused by the optimizer, after the data were validated
    with pytest.raises(ValueError, match="nesterov"):
        reg.fit(np.c_[X, X], y)
    assert reg.n_features_in_ == 3
    np.testing.assert_array_equal(reg.predict(X), expected)
    # a convergence warning comes once the fit is complete: as an error, it leaves a consistent estimator
    reg.set_params(nesterov=False, tol=0.0, n_iter_no_change=10**6)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        with pytest.raises(ConvergenceWarning, match="Maximum epochs"):
            reg.fit(np.c_[X, X], y)
    assert reg.n_features_in_ == reg.network_.n_inputs == 6
    assert reg.predict(np.c_[X, X]).shape == (40,)


def test_inputs_beyond_float64_or_memory_are_refused_by_name():
    X, y = _regression(40)
    reg = SkipNetRegressor(**FAST, random_state=0).fit(X, y)
    with pytest.raises(ValueError, match="X holds a number too large for float64"):
        reg.predict([[10**400, 1.0, 2.0]])
    with pytest.raises(ValueError, match="y holds a number too large for float64"):
        SkipNetRegressor(**FAST).fit(X[:2], [10**400, 1])
    huge = np.broadcast_to(np.ones((1, 3)), (10**12, 3))  # no memory of its own; 22 TiB as float64
    with pytest.raises(ValueError, match=r"X of shape \(1000000000000, 3\) .* would need"):
        reg.predict(huge)
    with pytest.raises(ValueError, match="would need"):
        SkipNetClassifier(**FAST).fit(huge, np.broadcast_to(np.int64(1), (10**12,)))

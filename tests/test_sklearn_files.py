"""Estimator defaults as the MLPs', and est.save / Estimator.load: safetensors, no pickle, identical predictions."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn")
pd = pytest.importorskip("pandas")

import skipnet as sn
from skipnet.sklearn import SkipNetClassifier, SkipNetRegressor


def _frame(n=60, seed=0):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(n, 3)), columns=["age", "height", "weight"])
    labels = np.array(["cat", "dog", "owl"])[(X["age"] > 0).to_numpy(int) + (X["height"] > 0.5).to_numpy(int)]
    return X, labels, (X["age"] - 2 * X["weight"]).to_numpy()


def test_default_architecture_is_the_mlps_and_auto_skip():
    X, labels, y = _frame()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # few epochs: a convergence warning
        reg = SkipNetRegressor(epochs=2, random_state=0).fit(X, y)
        assert [layer.units for layer in reg.network_.layers] == [100, 1] and reg.network_.skips == ()
        clf = SkipNetClassifier(hidden_layer_sizes=(8, 8), epochs=2, random_state=0).fit(X, labels)
    assert len(clf.network_.skips) == 1 and clf.network_.skips[0].src == 0
    assert SkipNetRegressor().get_params()["hidden_layer_sizes"] == (100,)


@pytest.mark.parametrize("kind", ["classifier", "regressor"])
def test_save_load_round_trip(kind, tmp_path):
    X, labels, y = _frame()
    if kind == "classifier":
        est = SkipNetClassifier(hidden_layer_sizes=(8, 6), epochs=5, random_state=3, early_stopping=True,
                                n_iter_no_change=None, lr=0.01, dtype="float32")
        est.fit(X, labels)
    else:
        est = SkipNetRegressor(hidden_layer_sizes=(8,), loss="l1", epochs=5, random_state=3, batch_size=16,
                               n_iter_no_change=None)
        est.fit(X, y)
    path = est.save(tmp_path / "est.safetensors")
    raw = path.read_bytes()
    assert b"pickle" not in raw and b"\x80\x04" not in raw[:8]
    loaded = type(est).load(path)
    assert loaded.get_params() == est.get_params()
    for name in ("n_features_in_", "n_outputs_", "loss_curve_", "n_iter_", "t_", "stopped_reason_", "best_loss_"):
        assert getattr(loaded, name) == getattr(est, name), name
    np.testing.assert_array_equal(loaded.feature_names_in_, ["age", "height", "weight"])
    Xnew = _frame(20, seed=1)[0]
    if kind == "classifier":
        assert loaded.classes_.dtype == est.classes_.dtype and loaded.classes_.tolist() == ["cat", "dog", "owl"]
        assert loaded.validation_loss_curve_ == est.validation_loss_curve_
        np.testing.assert_array_equal(loaded.predict_proba(Xnew), est.predict_proba(Xnew))
    np.testing.assert_array_equal(loaded.predict(Xnew), est.predict(Xnew))
    # the file is also a plain network file
    np.testing.assert_array_equal(sn.Network.load(path).predict(Xnew.to_numpy()), est.network_.predict(Xnew.to_numpy()))
    # a loaded estimator keeps training (a warm start on the same architecture)
    loaded.set_params(warm_start=True, epochs=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loaded.fit(X, labels if kind == "classifier" else y)
    assert loaded.n_iter_ == est.n_iter_ + 1


def test_load_refuses_other_files(tmp_path):
    X, labels, _ = _frame()
    clf = SkipNetClassifier(hidden_layer_sizes=(4,), epochs=2, n_iter_no_change=None, random_state=0).fit(X, labels)
    path = clf.save(tmp_path / "clf.safetensors")
    with pytest.raises(ValueError, match="SkipNetClassifier.load"):
        SkipNetRegressor.load(path)
    net_path = sn.Network.exercise().save(tmp_path / "net.safetensors")
    with pytest.raises(ValueError, match="not an estimator file"):
        SkipNetClassifier.load(net_path)
    # a tampered entry: the classes no longer match the network
    from skipnet import _modelfile as MF
    entry = json.loads(MF.read_metadata(path)["skipnet.estimator"])
    entry["classes"]["values"] = ["cat", "dog", "owl", "yak"]
    clf.network_.save(tmp_path / "bad.safetensors", metadata={"skipnet.estimator": json.dumps(entry)})
    with pytest.raises(ValueError, match="bad.safetensors.*classes_"):
        SkipNetClassifier.load(tmp_path / "bad.safetensors")


def test_save_refuses_what_json_cannot_hold(tmp_path):
    X, _, y = _frame()
    reg = SkipNetRegressor(hidden_layer_sizes=(4,), epochs=2, n_iter_no_change=None,
                           random_state=np.random.RandomState(0)).fit(X, y)
    with pytest.raises(ValueError, match="random_state"):
        reg.save(tmp_path / "r.safetensors")
    assert not (tmp_path / "r.safetensors").exists()
    with pytest.raises(Exception, match="not fitted|fit"):
        SkipNetRegressor().save(tmp_path / "r.safetensors")


def test_a_class_weight_mapping_round_trips(tmp_path):
    X, y = sn.datasets.moons(60, noise=0.1, seed=0)
    labels = np.where(y.ravel() > 0, "yes", "no")
    clf = SkipNetClassifier(hidden_layer_sizes=(6,), epochs=3, random_state=0,
                            class_weight={"no": 1.0, "yes": 3.0}).fit(X, labels)
    back = SkipNetClassifier.load(clf.save(tmp_path / "clf.safetensors"))
    assert back.class_weight == {"no": 1.0, "yes": 3.0}
    np.testing.assert_array_equal(back.predict_proba(X), clf.predict_proba(X))

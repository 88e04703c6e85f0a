"""EarlyStopping, ModelCheckpoint, the callback protocol and Trainer(restore_best=True)."""

from __future__ import annotations

import types

import numpy as np
import pytest

import skipnet as sn


def _data(n=120, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    y = (X @ [1.0, -2.0, 0.5])[:, None] + 0.3 * rng.normal(size=(n, 1))
    return X[:90], y[:90], X[90:], y[90:]


def _net():
    return sn.Network.mlp(3, (16, 16), skip="first-to-output", seed=1)


def _mse(net, X, y):
    return float(np.mean((net.predict(X) - y) ** 2))


def _feed(callback, values, monitor="val_loss"):
    """Run a callback over a scripted series of monitored values; the epoch it stops at, or None."""
    trainer = types.SimpleNamespace(net=_net())
    callback.on_fit_start(trainer, True)
    for epoch in range(len(values)):
        series = np.asarray(values[:epoch + 1], float)
        history = types.SimpleNamespace(val_loss=series, epoch_loss=series)
        if callback(trainer, epoch, history):
            return epoch
    return None


def test_early_stopping_counts_patience_as_keras():
    assert _feed(sn.EarlyStopping(patience=2), [3, 2, 2.5, 2.4, 1]) == 3
    assert _feed(sn.EarlyStopping(patience=0), [3, 2, 2.5]) == 2
    assert _feed(sn.EarlyStopping(patience=2), [3, 2, 2.5, 1.9, 1.8, 1.7]) is None
    # min_delta: 1.95 is not an improvement on 2 by more than 0.1
    assert _feed(sn.EarlyStopping(patience=1, min_delta=0.1), [3, 2, 1.95]) == 2
    assert _feed(sn.EarlyStopping(patience=1), [np.nan, np.nan]) == 1  # NaN never improves


def test_early_stopping_restores_the_best_weights_and_the_checkpoint_holds_them(tmp_path):
    X, y, Xv, yv = _data()
    net, path = _net(), tmp_path / "best.safetensors"
    es = sn.EarlyStopping(patience=3)
    ck = sn.ModelCheckpoint(path)
    hist = sn.Trainer(net, loss="mse", lr=0.05, epochs=500, callbacks=[es, ck]).fit(X, y, validation=(Xv, yv))
    assert hist.stopped_reason.startswith("early stopping"), hist.stopped_reason
    assert hist.epochs_run < 500 and hist.epochs_run == hist.best_epoch + 4
    assert hist.best_loss == pytest.approx(hist.val_loss.min()) == pytest.approx(es.best)
    assert _mse(net, Xv, yv) == pytest.approx(hist.best_loss, rel=1e-12)  # restored
    assert ck.last_saved_epoch == hist.best_epoch
    saved = sn.Network.load(path).parameters()
    for name, value in net.parameters().items():
        np.testing.assert_array_equal(saved[name], value)


def test_early_stopping_without_restore_keeps_the_last_weights():
    X, y, Xv, yv = _data()
    net = _net()
    hist = sn.Trainer(net, loss="mse", lr=0.05, epochs=500,
                      callbacks=[sn.EarlyStopping(patience=3, restore_best=False)]).fit(X, y, validation=(Xv, yv))
    assert _mse(net, Xv, yv) == pytest.approx(hist.val_loss[-1], rel=1e-12)
    assert hist.val_loss[-1] > hist.best_loss


def test_monitor_loss_uses_the_training_loss_and_val_loss_needs_validation():
    X, y, _, _ = _data()
    net = _net()
    before = net.parameters()
    for cb in (sn.EarlyStopping(), sn.ModelCheckpoint("never-written.safetensors")):
        with pytest.raises(ValueError, match="needs validation data"):
            sn.Trainer(net, loss="mse", callbacks=[cb]).fit(X, y)
    for name, value in net.parameters().items():  # refused before any step
        np.testing.assert_array_equal(value, before[name])
    es = sn.EarlyStopping(monitor="loss", patience=2, min_delta=10.0)
    hist = sn.Trainer(net, loss="mse", lr=0.01, epochs=50, callbacks=[es]).fit(X, y)
    assert hist.epochs_run == 3 and hist.stopped_reason.startswith("early stopping: loss")
    assert hist.best_epoch == int(np.argmin(hist.epoch_loss)) and hist.val_loss.size == 0


def test_checkpoint_refuses_an_unwritable_path_before_training(tmp_path):
    X, y, _, _ = _data()
    net = _net()
    before = net.parameters()["layers.0.weight"]
    (tmp_path / "folder.safetensors").mkdir()
    for path in (tmp_path / "folder.safetensors", tmp_path / "missing" / "m.safetensors"):
        with pytest.raises(ValueError, match="model file"):
            sn.Trainer(net, loss="mse", callbacks=[sn.ModelCheckpoint(path, monitor="loss")]).fit(X, y)
    np.testing.assert_array_equal(net.parameters()["layers.0.weight"], before)


def test_checkpoint_every_epoch(tmp_path):
    X, y, _, _ = _data()
    ck = sn.ModelCheckpoint(tmp_path / "last.safetensors", monitor="loss", save_best_only=False)
    net = _net()
    sn.Trainer(net, loss="mse", lr=0.01, epochs=4, callbacks=[ck]).fit(X, y)
    assert ck.last_saved_epoch == 3
    np.testing.assert_array_equal(sn.Network.load(ck.path).parameters()["skips.0.weight"],
                                  net.parameters()["skips.0.weight"])


def test_callback_protocol_reasons():
    X, y, _, _ = _data()
    hist = sn.Trainer(_net(), loss="mse", epochs=5, callbacks=[lambda t, e, h: e == 1]).fit(X, y)
    assert hist.stopped_reason == "callback" and hist.epochs_run == 2
    hist = sn.Trainer(_net(), loss="mse", epochs=5, callbacks=[lambda t, e, h: "enough" if e == 2 else None]).fit(X, y)
    assert hist.stopped_reason == "enough" and hist.epochs_run == 3


@pytest.mark.parametrize("fused", [True, False])
def test_restore_best_after_divergence(fused):
    X, y, Xv, yv = _data()

    def blow_up(trainer, epoch, history):
        if epoch == 4:
            trainer.lr = 1e6  # the next epoch diverges

    net = _net()
    trainer = sn.Trainer(net, loss="mse", lr=0.05, epochs=20, callbacks=[blow_up], restore_best=True,
                         fused=fused)
    hist = trainer.fit(X, y, validation=(Xv, yv))
    assert hist.stopped_reason.startswith("diverged")
    assert hist.best_epoch == int(np.argmin(hist.val_loss))
    assert _mse(net, Xv, yv) == pytest.approx(hist.best_loss, rel=1e-12)


def test_restore_best_same_on_both_paths_and_history_best_without_validation():
    X, y, _, _ = _data()
    results = []
    for fused in (True, False):
        net = _net()
        hist = sn.Trainer(net, loss="mse", lr=0.3, epochs=15, restore_best=True, fused=fused).fit(X, y)
        assert hist.best_epoch == int(np.argmin(hist.epoch_loss))
        assert hist.best_loss == hist.epoch_loss.min()
        results.append(net.parameters())
    for name in results[0]:
        np.testing.assert_allclose(results[0][name], results[1][name], rtol=1e-12, atol=1e-14)
    empty = sn.Trainer(_net(), epochs=0).fit(X, y)
    assert empty.best_epoch is None and np.isnan(empty.best_loss)


def test_settings_are_checked_on_assignment():
    with pytest.raises(ValueError, match="monitor"):
        sn.EarlyStopping(monitor="accuracy")
    with pytest.raises(ValueError, match="patience"):
        sn.EarlyStopping(patience=-1)
    with pytest.raises(ValueError, match="min_delta"):
        sn.EarlyStopping(min_delta=-0.1)
    with pytest.raises(TypeError, match="path"):
        sn.ModelCheckpoint(3)
    es, ck = sn.EarlyStopping(), sn.ModelCheckpoint("m.safetensors")
    with pytest.raises(TypeError, match="restore_best"):
        es.restore_best = "yes"
    with pytest.raises(TypeError, match="save_best_only"):
        ck.save_best_only = 1
    with pytest.raises(TypeError, match="restore_best"):
        sn.Trainer(_net(), restore_best="no")

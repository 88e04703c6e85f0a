"""Validation and restore_best inside the fused kernel (FusedNet.bind_validation, run(val_losses=, best=)).

The kernel computes each epoch's validation loss with the per-op path's cores on the same values (a
chunked forward whose rows do not depend on their chunk, then one loss call over all rows), and keeps the
best epoch's weights as the per-op path's keep_if_best does, so a fit with validation or restore_best gives
the per-op path's History and weights to the last bit while taking several epochs per kernel call.
"""

import os
import signal
import threading

import numpy as np
import pytest

import skipnet as sn
from skipnet import _kernels as K
from skipnet import trainer as trainer_module


class _CountingFused:
    """A FusedNet wrapper that counts run() calls (everything else is the wrapped object's)."""

    def __init__(self, fused, calls):
        self._fused, self._calls = fused, calls

    def run(self, *args, **kwargs):
        self._calls.append(kwargs)
        return self._fused.run(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._fused, name)


def _count_runs(net):
    """A list that receives the keyword arguments of each FusedNet.run call of ``net``'s fits."""
    calls = []
    engine = net.internals.engine
    make = engine.make_fused
    engine.make_fused = lambda batch: _CountingFused(make(batch), calls)
    return calls


def _regression(dtype="float64", n=240, n_inputs=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, n_inputs)).astype(dtype)
    y = (np.sin(X[:, :1]) * 2 - X[:, 1:2] + 0.1 * rng.standard_normal((n, 1))).astype(dtype)
    return X, y


def _classes(n=240, n_inputs=3, n_classes=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, n_inputs))
    return X, np.argmax(X @ rng.standard_normal((n_inputs, n_classes)), axis=1)


def _fit(fused, make_net, X, y, validation, fit_kwargs=None, **options):
    net = make_net()
    calls = _count_runs(net)
    trainer = sn.Trainer(net, fused=fused, **options)
    history = trainer.fit(X, y, validation=validation, **(fit_kwargs or {}))
    return history, net, trainer, calls


def _assert_same(fused, per_op):
    (hf, nf, tf, _), (hp, np_, tp, _) = fused, per_op
    for name in ("step_loss", "epoch_loss", "val_loss", "lr"):
        np.testing.assert_array_equal(getattr(hf, name), getattr(hp, name), err_msg=name)
    assert [str(w) for w in hf.warnings] == [str(w) for w in hp.warnings]
    assert hf.stopped_reason == hp.stopped_reason
    assert hf.best_epoch == hp.best_epoch
    np.testing.assert_array_equal(hf.best_loss, hp.best_loss)
    assert (tf.step_count, tf.epoch_count) == (tp.step_count, tp.epoch_count)
    np.testing.assert_array_equal(nf.internals.params, np_.internals.params)


def _mlp(dtype="float64", n_inputs=3, n_outputs=1, seed=1):
    return lambda: sn.Network.mlp(n_inputs, (8, 8), n_outputs, skip="first-to-output", dtype=dtype, seed=seed)


class _RisingLR:
    """A per-epoch rate that grows tenfold each epoch: the fit improves, then diverges."""

    per = "epoch"

    def lr(self, step, epoch):
        return 0.01 * 10.0 ** epoch


CASES = {
    "pair": {"validation": "pair"},
    "weighted triple": {"validation": "triple"},
    "restore_best with validation": {"validation": "pair", "restore_best": True},
    "restore_best without validation": {"restore_best": True},
    "shuffled, weighted fit": {"validation": "pair", "restore_best": True, "shuffle": True, "sample_weight": True},
    "divergence": {"validation": "pair", "restore_best": True, "schedule": _RisingLR, "lr": 0.01, "epochs": 8},
    "divergence without validation": {"restore_best": True, "schedule": _RisingLR, "lr": 0.01, "epochs": 8},
    "plateau schedule": {"validation": "pair", "restore_best": True, "lr": 0.3, "epochs": 20,
                         "schedule": lambda: sn.ReduceLROnPlateau(patience=2, factor=0.5)},
    "adam": {"validation": "triple", "restore_best": True, "optimizer": "adam", "lr": 0.01},
    "plateau warnings": {"validation": "pair", "restore_best": True, "lr": 1e-6},
}


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("case", list(CASES))
def test_regression_fits_match_the_per_op_path(case, dtype):
    spec = dict(CASES[case])
    X, y = _regression(dtype)
    Xt, yt, Xv, yv = X[:160], y[:160], X[160:], y[160:]
    kind = spec.pop("validation", None)
    rng = np.random.default_rng(3)
    validation = {None: None, "pair": (Xv, yv), "triple": (Xv, yv, rng.uniform(0, 2, len(Xv)))}[kind]
    fit_kwargs = {"sample_weight": rng.uniform(0.5, 1.5, len(Xt))} if spec.pop("sample_weight", False) else {}
    make_schedule = spec.pop("schedule", lambda: None)
    options = {"loss": "mse", "lr": 0.05, "batch_size": 16, "epochs": 12, "shuffle": False} | spec
    runs = [_fit(fused, _mlp(dtype), Xt, yt, validation, fit_kwargs, schedule=make_schedule(), **options)
            for fused in (True, False)]
    _assert_same(*runs)
    history, net, _, calls = runs[0]
    if validation is not None:
        assert len(history.val_loss) == history.epochs_run
    if case.startswith("divergence"):
        assert any(w.kind == "divergence" for w in history.warnings)
    if case == "plateau schedule":  # reduced on the validation losses, several epochs per call
        assert len(np.unique(history.lr)) > 1 and len(calls) < history.epochs_run
    else:  # "plateau warnings": on the training losses, found by the kernel, which runs on
        assert len(calls) == 1
    if case == "plateau warnings":
        assert "plateau" in [w.kind for w in history.warnings]
    if options.get("restore_best"):  # the network holds the weights of the best epoch
        assert history.best_epoch is not None
        if validation is not None and len(validation) == 2:
            assert net.internals.engine.loss_value(Xv, yv, "mse") == history.best_loss


@pytest.mark.parametrize("loss", ["cross_entropy", "bce"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_classification_fits_match_the_per_op_path(loss, dtype):
    X, t = _classes()
    X = X.astype(dtype)
    if loss == "bce":
        y, n_outputs = (t[:, None] == 0).astype(dtype), 1
    else:
        y, n_outputs = t, 3
    weights = np.random.default_rng(5).uniform(0, 1, 80)
    for validation in [(X[160:], y[160:]), (X[160:], y[160:], weights)]:
        runs = [_fit(fused, _mlp(dtype, n_outputs=n_outputs), X[:160], y[:160], validation, loss=loss, lr=0.1,
                     batch_size=32, epochs=10, restore_best=True) for fused in (True, False)]
        _assert_same(*runs)


def test_width_one_network_matches_the_per_op_path():
    """The exercise's network (the scalar path): at batch size 1 the fused path is the per-op path's
    to the last bit, validation and restore_best included."""
    rng = np.random.default_rng(2)
    X = rng.uniform(-2, 2, (60, 1))
    y = 0.5 * X - 1.0
    runs = [_fit(fused, sn.Network.exercise, X[:40], y[:40], (X[40:], y[40:]), loss="l1", lr=0.05,
                 batch_size=1, epochs=6, restore_best=True) for fused in (True, False)]
    _assert_same(*runs)
    assert len(runs[0][3]) == 1


def test_width_one_network_trains_the_same_with_validation():
    """At larger batches the width-1 network's fit with validation leaves the scalar register loop for
    the batch loop's scalar step: the training is the same, bit for bit."""
    rng = np.random.default_rng(4)
    X = rng.uniform(-2, 2, (90, 1))
    y = 0.5 * X - 1.0
    plain = _fit(True, sn.Network.exercise, X[:60], y[:60], None, loss="mse", lr=0.02, batch_size=8, epochs=5)
    checked = _fit(True, sn.Network.exercise, X[:60], y[:60], (X[60:], y[60:]), loss="mse", lr=0.02,
                   batch_size=8, epochs=5)
    np.testing.assert_array_equal(plain[0].step_loss, checked[0].step_loss)
    np.testing.assert_array_equal(plain[1].internals.params, checked[1].internals.params)
    per_op = _fit(False, sn.Network.exercise, X[:60], y[:60], (X[60:], y[60:]), loss="mse", lr=0.02,
                  batch_size=8, epochs=5)
    # the per-op path's validation loss of the fused path's final weights: the kernel's last value
    assert checked[1].internals.engine.loss_value(X[60:], y[60:], "mse") == checked[0].val_loss[-1]
    np.testing.assert_allclose(checked[0].val_loss, per_op[0].val_loss, rtol=1e-12)


@pytest.mark.parametrize("options", [{"validation": True}, {"restore_best": True},
                                     {"validation": True, "restore_best": True}])
def test_validation_and_restore_best_take_one_kernel_call(options):
    X, y = _regression()
    validation = (X[160:], y[160:]) if options.get("validation") else None
    fit = _fit(True, _mlp(), X[:160], y[:160], validation, loss="mse", lr=0.05, batch_size=16, epochs=15,
               restore_best=options.get("restore_best", False), diagnose=False)
    assert len(fit[3]) == 1
    assert fit[0].epochs_run == 15
    # a callback still needs Python after every epoch
    fit = _fit(True, _mlp(), X[:160], y[:160], validation, loss="mse", lr=0.05, batch_size=16, epochs=15,
               restore_best=options.get("restore_best", False), diagnose=False, callbacks=[lambda *a: None])
    assert len(fit[3]) == 15


def test_zero_gradient_stop_matches_the_per_op_path():
    """Every ReLU dead and no output bias: the fit stops after its first epoch, whose validation loss
    and weights are kept."""
    def make_net():
        net = sn.Network(3, [sn.Dense(8), sn.Dense(1, "identity", bias=False)], dtype="float64", seed=0)
        net.set_parameters({"layers.0.bias": np.full(8, -100.0)})
        return net

    X, y = _regression()
    runs = [_fit(fused, make_net, X[:160], y[:160], (X[160:], y[160:]), loss="mse", batch_size=16, epochs=5,
                 restore_best=True) for fused in (True, False)]
    _assert_same(*runs)
    assert runs[0][0].stopped_reason.startswith("zero gradient") and len(runs[0][0].val_loss) == 1


class _InterruptAtStep:
    """A constant rate that presses Ctrl-C when asked for the rate of step ``at`` (once)."""

    def __init__(self, at):
        self.at = at

    def lr(self, step, epoch):
        if step == self.at:
            self.at = None
            os.kill(os.getpid(), signal.SIGINT)
        return 0.05


@pytest.mark.skipif(threading.current_thread() is not threading.main_thread(),
                    reason="signals reach the main thread only")
def test_paused_and_resumed_fits_match_the_per_op_path(monkeypatch):
    """Fused calls that pause after a step or two (mid-epoch), and a fit interrupted and resumed: the
    validation losses, best epoch and restored weights of one uninterrupted per-op fit."""
    monkeypatch.setattr(trainer_module, "PAUSE_SECONDS", 1e-5)
    X, y = _regression()
    options = {"loss": "mse", "batch_size": 16, "epochs": 8, "restore_best": True}
    per_op = _fit(False, _mlp(), X[:160], y[:160], (X[160:], y[160:]), schedule=_InterruptAtStep(None), **options)
    paused = _fit(True, _mlp(), X[:160], y[:160], (X[160:], y[160:]), schedule=_InterruptAtStep(None), **options)
    _assert_same(paused, per_op)
    assert len(paused[3]) > 8  # calls that ended mid-epoch
    net = _mlp()()
    trainer = sn.Trainer(net, schedule=_InterruptAtStep(37), **options)
    with pytest.raises(KeyboardInterrupt, match="resume"):
        trainer.fit(X[:160], y[:160], validation=(X[160:], y[160:]))
    _assert_same((trainer.resume(), net, trainer, None), per_op)


def test_validation_larger_than_a_batch_goes_in_chunks():
    """More validation rows than a batch, not a multiple of it: chunks of the batch size and a last
    smaller one, the same loss as the per-op path's single pass."""
    X, y = _regression(n=400)
    runs = [_fit(fused, _mlp(), X[:100], y[:100], (X[100:], y[100:]), loss="l1", lr=0.05, batch_size=7,
                 epochs=4) for fused in (True, False)]
    _assert_same(*runs)
    assert len(runs[0][3]) == 1 and "val_losses" in runs[0][3][0]


def test_blas_sized_validation_is_evaluated_between_calls():
    """When the whole validation pass would run a product through BLAS gemm, whose sums may differ from
    the chunks' register tiles, the loss is evaluated in Python after each epoch, as before."""
    X, y = _regression(n=300)
    previous = K.get_blas_threshold()
    try:
        K.set_blas_threshold(16 * 8 * 8 + 1)  # over 16 rows: the 8x8 products go to BLAS
        net = _mlp()()
        fused = net.internals.engine.make_fused(16)
        assert fused.validates_exactly(16) and not fused.validates_exactly(200)
        runs = [_fit(f, _mlp(), X[:100], y[:100], (X[100:], y[100:]), loss="mse", batch_size=16, epochs=3)
                for f in (True, False)]
    finally:
        K.set_blas_threshold(previous)
    _assert_same(*runs)
    assert len(runs[0][3]) == 3 and "val_losses" not in runs[0][3][0]


def test_run_refuses_checks_it_cannot_do():
    X, y = _regression()
    net = _mlp()()
    core = net.internals
    fused = core.engine.make_fused(16)
    state = np.zeros_like(core.params)
    fused.bind(X, y, None, state, None, loss="mse", optimizer="sgd")
    args = (None, np.array([0.01]), np.empty(11), np.empty(1), 10, 10, 0, None)
    with pytest.raises(RuntimeError, match="bind_validation"):
        fused.run(*args, val_losses=np.empty(1))
    with pytest.raises(ValueError, match="best_value"):
        fused.run(*args, best=np.empty_like(core.params))
    with pytest.raises(ValueError, match="weight_total"):
        fused.run(*args, best=np.empty_like(core.params), best_value=np.array([np.inf]))
    with pytest.raises(ValueError, match=f"best must have {core.params.shape[0]} entries"):
        fused.run(*args, best=np.empty(3), best_value=np.array([np.inf]), weight_total=240.0)
    with pytest.raises(ValueError, match="at least one row"):
        fused.bind_validation(X[:0], y[:0], None)
    fused.bind_validation(X[:50], y[:50], None)
    best, best_value, val_losses = np.empty_like(core.params), np.array([np.inf]), np.empty(1)
    status = fused.run(*args, val_losses=val_losses, best=best, best_value=best_value)[1]
    assert status == "ok"
    np.testing.assert_array_equal(best, core.params)  # one epoch: the best one, its weights kept
    assert best_value[0] == val_losses[0] == core.engine.loss_value(X[:50], y[:50], "mse")
    fused.unbind()
    fused.bind(X, y, None, state, None, loss="mse", optimizer="sgd")
    with pytest.raises(RuntimeError, match="bind_validation"):  # unbind() dropped the validation set
        fused.run(*args, val_losses=np.empty(1))
    fused.unbind()

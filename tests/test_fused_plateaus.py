"""Plateaus inside a fused call: the kernel copies the weights of the epoch where a plateau begins and
trains on (csrc/watch.h, train.pxi, scalar_impl.h); a second plateau in the same call ends it. The
warnings are the per-op path's: same kind, epoch, message and data, the cause worked out from the
weights of the plateau's own epoch."""

import numpy as np
import pytest
from _helpers import CountingFused

import skipnet as sn


class _Bump:
    """A rate that lets the loss leave a plateau for a few epochs, then stall again."""

    per = "epoch"  # the rate depends on the epoch alone: a fused call takes every epoch

    def __init__(self, *bumps: int, width: int = 3, rate: float = 0.2):
        self.bumps, self.width, self.rate = bumps, width, rate

    def lr(self, step, epoch):
        return self.rate if any(b <= epoch < b + self.width for b in self.bumps) else 1e-9


def _scalar_net(dtype):
    """The exercise's 1-1-1-1 network (the scalar loop, its weights in registers); float32: with biases,
    the other shape compiled in whole."""
    if dtype == "float64":
        return sn.Network.exercise()
    return sn.Network.mlp(1, (1, 1), skip="first-to-output", dtype=dtype, seed=3)


def _batch_net(dtype):
    return sn.Network.mlp(3, (8, 6), skip="first-to-output", dtype=dtype, seed=2)


def _data(n_inputs, dtype, n=24):
    rng = np.random.default_rng(11)
    X = rng.normal(size=(n, n_inputs)).astype(dtype)
    return X, (X.sum(axis=1, keepdims=True) * 0.7 - 0.2).astype(dtype)


def _fit(make, X, y, fused, **options):
    net = make()
    counter = CountingFused(net.internals.engine)
    trainer = sn.Trainer(net, fused=fused, **options)
    return trainer.fit(X, y), net, counter.calls


def _plateaus(history):
    return [w for w in history.warnings if w.kind == "plateau"]


def _assert_same_warnings(fused, per_op):
    assert [(w.kind, w.epoch, w.step) for w in fused.warnings] == [(w.kind, w.epoch, w.step) for w in per_op.warnings]
    for a, b in zip(fused.warnings, per_op.warnings):
        assert a.message == b.message
        np.testing.assert_equal(a.data, b.data)
    for a, b in zip(_plateaus(fused), _plateaus(per_op)):  # explained with the same weights, bit for bit
        np.testing.assert_array_equal(a.found.params, b.found.params)


CASES = {
    # (network, batch size, options, plateau epochs, fused calls)
    "scalar loop, one plateau": (_scalar_net, 1, {"lr": 1e-6}, [4], 1),
    "batch loop, one plateau": (_batch_net, 8, {"lr": 1e-6}, [4], 1),
    "scalar loop, two plateaus": (_scalar_net, 1, {"schedule": _Bump(8)}, [4, 15], 2),
    "batch loop, two plateaus": (_batch_net, 8, {"schedule": _Bump(8)}, [4, 15], 2),
    "scalar loop, three plateaus": (_scalar_net, 1, {"schedule": _Bump(8, 19, width=1, rate=0.5)}, [4, 13, 24], 2),
    "batch loop, three plateaus": (_batch_net, 8, {"schedule": _Bump(8, 19, width=1, rate=0.5)}, [4, 13, 24], 2),
}


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("case", list(CASES))
def test_plateaus_mid_call_give_the_per_op_warnings(case, dtype):
    make, batch, options, epochs, calls = CASES[case]
    X, y = _data(make(dtype).n_inputs, dtype)
    options = {"loss": "mse", "batch_size": batch, "epochs": 30, "shuffle": False} | options
    fused, net_f, n_calls = _fit(lambda: make(dtype), X, y, True, **options)
    per_op, net_p, _ = _fit(lambda: make(dtype), X, y, False, **options)
    if "scalar" in case:
        assert net_f.internals.engine.make_fused(1).scalar
    np.testing.assert_array_equal(fused.step_loss, per_op.step_loss)
    np.testing.assert_array_equal(net_f.internals.params, net_p.internals.params)
    assert [w.epoch for w in _plateaus(fused)] == epochs
    _assert_same_warnings(fused, per_op)
    # the first plateau of a call no longer ends it: it runs on to a second (which ends it) or to the end
    assert n_calls == calls
    # a plateau's weights are those of its epoch, not the fit's last ones
    assert not np.array_equal(_plateaus(fused)[0].found.params, net_f.internals.params)


@pytest.mark.parametrize("shuffle", [False, True])
def test_a_plateau_mid_call_with_validation_and_restore_best(shuffle):
    X, y = _data(3, "float64", n=40)
    options = {"loss": "mse", "batch_size": 8, "epochs": 20, "lr": 1e-6, "restore_best": True, "shuffle": shuffle}
    out = []
    for fused in (True, False):
        history, net, calls = _fit(lambda: _batch_net("float64"), X[:30], y[:30], fused, **options)
        out.append((history, net, calls))
    (hf, nf, calls), (hp, np_, _) = out
    np.testing.assert_array_equal(hf.step_loss, hp.step_loss)
    np.testing.assert_array_equal(nf.internals.params, np_.internals.params)
    assert [w.epoch for w in _plateaus(hf)] == [4]
    _assert_same_warnings(hf, hp)
    assert calls == 1


@pytest.mark.parametrize("make", [_scalar_net, _batch_net])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_the_kernel_copies_the_weights_where_a_plateau_begins(make, dtype):
    """FusedNet.run(plateau_params=...): the weights at the end of the first epoch where a plateau
    begins, plateau_epoch its index; without the buffer the call stops there, as before."""
    net = make(dtype)
    batch = 1 if make is _scalar_net else 8
    X, y = _data(net.n_inputs, dtype)
    spe = -(-len(X) // batch)
    epochs = 12

    def run(snapshot, n_epochs=epochs):
        copy = net.copy()
        fused = copy.internals.engine.make_fused(batch)
        fused.bind(X, y, None, loss="mse", **sn.Trainer(copy, lr=1e-9).optimizer.fused_arguments())
        watch = (5, 1e-3, None, float(len(X)), np.empty(0))
        out = fused.run(None, np.array([1e-9]), np.zeros(n_epochs * spe + 1), np.zeros(n_epochs),
                        n_epochs * spe, spe, 0, None, watch=watch, plateau_params=snapshot)
        fused.unbind()
        return out, fused.plateau_epoch, fused.watch_level, copy.internals.params.copy()

    (done, status, *_), epoch, level, weights = run(None)
    assert (done, status, epoch) == (5 * spe, "plateau", -1)  # stopped where it began: epoch 4
    snapshot = np.full_like(net.internals.params, np.nan)
    (done, status, *_), epoch, level_on, _ = run(snapshot)
    assert (done, status, epoch) == (epochs * spe, "ok", 4)  # ran on
    np.testing.assert_array_equal(snapshot, weights)
    assert level_on is not None and level_on == pytest.approx(level)
    with pytest.raises(ValueError, match="plateau_params"):
        run(np.zeros(3, dtype))

"""The exercise (docs/design.md section 1), reproduced exactly on every backend and dtype."""

import numpy as np
import pytest

import skipnet as sn

NAMES = ["layers.0.weight", "layers.1.weight", "layers.2.weight", "skips.0.weight"]


@pytest.fixture
def net(backend, dtype):
    return sn.Network.exercise(dtype=dtype, backend=backend)


def test_first_step(net):
    t = net.trace([[1.0]], [[-3.0]], loss="l1")
    assert t.yhat.shape == (1, 1) and t.yhat[0, 0] == 0.375
    assert t.loss == 3.375
    assert [t.grads[n][0, 0] for n in NAMES] == [0.75, 0.25, 0.25, 0.5]
    assert t.dead_units == {0: [], 1: []}
    np.testing.assert_array_equal([t.z[k][0, 0] for k in range(3)], [0.5, 0.25, 0.375])
    np.testing.assert_array_equal([t.h[k][0, 0] for k in range(2)], [0.5, 0.25])


def test_apply_then_second_step_is_stuck(net):
    net.trace([[1.0]], [[-3.0]], loss="l1").apply(lr=1.0)
    params = net.parameters()
    assert [params[n][0, 0] for n in NAMES] == [-0.25, 0.25, 0.25, 0.0]
    t2 = net.trace([[1.0]], [[-3.0]], loss="l1")
    assert t2.loss == 3.0
    assert t2.all_gradients_zero
    assert all((g == 0).all() for g in t2.grads.values())
    assert t2.dead_units == {0: [0], 1: [0]}
    # relu'(0) = 0: z1 = 0.25 * 0 lands exactly on the kink and passes no gradient
    assert t2.z[1][0, 0] == 0 and t2.dz[1][0, 0] == 0
    # and the loss stays 3 forever
    t2.apply(lr=1.0)
    assert net.trace([[1.0]], [[-3.0]], loss="l1").loss == 3.0


def test_trace_table_shows_hand_computation(net):
    t = net.trace([[1.0]], [[-3.0]], loss="l1")
    t.apply(lr=1.0)
    text = str(t)
    for needle in ["z2", "= 0.375", "= 3.375", "0.5·0.25 + 0.5·0.5", "dL/dW0", "= 0.75",
                   "dL/dh0 · relu'(z0) = 0.75 · 1", "0.5 - 1 · 0.75", "= -0.25"]:
        assert needle in text, needle
    assert "e-0" not in text  # plain decimal notation
    text2 = str(net.trace([[1.0]], [[-3.0]], loss="l1"))
    assert "every gradient is exactly 0" in text2 and "dead ReLU units" in text2


def test_gradients_api_matches_trace(net):
    loss, grads = net.gradients([[1.0]], [[-3.0]], loss="l1")
    assert loss == 3.375
    assert [grads[n][0, 0] for n in NAMES] == [0.75, 0.25, 0.25, 0.5]
    assert net.forward([[1.0]])[0, 0] == 0.375
    assert net.predict([[1.0]]).dtype == np.dtype(net.dtype)


def test_trainer_stops_on_zero_gradient(net):
    hist = sn.Trainer(net, loss="l1", optimizer="sgd", lr=1.0, batch_size=1, epochs=100,
                      shuffle=False).fit([[1.0]], [[-3.0]])
    np.testing.assert_array_equal(hist.step_loss, [3.375, 3.0])
    assert hist.epochs_run == 2
    assert hist.stopped_reason is not None and hist.stopped_reason.startswith("zero gradient")
    assert "dead" in hist.stopped_reason
    # the first step's update kills both ReLUs; the second step (epoch 1) sees z <= 0 in both and finds
    # every gradient exactly 0: its dead units are reported with the stop they explain
    assert [w.kind for w in hist.warnings] == ["dead_units", "zero_gradient"]
    assert [w.epoch for w in hist.warnings] == [1, 1] and hist.warnings[0].data["dead_layers"] == [0, 1]
    assert [net.parameters()[n][0, 0] for n in NAMES] == [-0.25, 0.25, 0.25, 0.0]

"""Trainer: semantics of fit, backends agreeing over many steps, and the guards that stop training."""

import numpy as np
import pytest
from _helpers import assert_close, random_architecture, random_targets

import skipnet as sn


def _data(rng, n, n_inputs, loss, n_outputs):
    return rng.normal(size=(n, n_inputs)), random_targets(rng, loss, n, n_outputs)


@pytest.mark.parametrize("case", range(6))
@pytest.mark.parametrize("loss", ["l1", "mse", "bce", "cross_entropy"])
@pytest.mark.parametrize("opt", [{"optimizer": "sgd"}, {"optimizer": "sgd", "momentum": 0.9, "nesterov": True,
                                                              "weight_decay": 1e-3},
                                 {"optimizer": "adam", "weight_decay": 1e-4}])
def test_backends_follow_the_same_trajectory(case, loss, opt, dtype):
    rng = np.random.default_rng(case)
    n_inputs, layers, skips = random_architecture(rng)
    while loss == "cross_entropy" and layers[-1].units < 2:
        n_inputs, layers, skips = random_architecture(rng)
    nets = [sn.Network(n_inputs, layers, skips, dtype=dtype, seed=case, backend=b) for b in ("cython", "numpy")]
    X, y = _data(rng, 23, n_inputs, loss, layers[-1].units)
    hists = [sn.Trainer(net, loss=loss, lr=0.01, batch_size=5, epochs=4, seed=1, **opt).fit(X, y)
             for net in nets]
    assert_close(hists[0].step_loss, hists[1].step_loss, dtype, scale=np.abs(hists[1].step_loss).max())
    scale = np.abs(nets[1].internals.params).max()
    assert_close(nets[0].internals.params, nets[1].internals.params, dtype, scale=scale * (100 if dtype == "float32" else 1))


def test_batches_in_order_and_step_loss_before_update():
    rng = np.random.default_rng(0)
    net = sn.Network.mlp(2, (8, 8), skip="first-to-output", seed=0)
    X, y = rng.normal(size=(10, 2)), rng.normal(size=(10, 1))
    start = net.copy()
    hist = sn.Trainer(net, loss="mse", lr=0.05, batch_size=4, epochs=1, shuffle=False).fit(X, y)
    assert hist.steps_run == 3 and len(hist.step_loss) == 3  # batches of 4, 4, 2
    expected = []
    trainer = sn.Trainer(start, loss="mse", lr=0.05)
    for a, b in [(0, 4), (4, 8), (8, 10)]:
        loss, _grads = start.gradients(X[a:b], y[a:b], "mse")
        expected.append(loss)
        trainer.optimizer.step(0.05)
    np.testing.assert_allclose(hist.step_loss, expected, rtol=1e-14)
    np.testing.assert_allclose(hist.epoch_loss, [(4 * expected[0] + 4 * expected[1] + 2 * expected[2]) / 10])
    np.testing.assert_array_equal(net.internals.params, start.internals.params)


def test_second_fit_continues_with_optimizer_state():
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(40, 3)), rng.normal(size=(40, 1))
    a = sn.Network.mlp(3, (6, 6), skip="first-to-output", seed=2)
    b = a.copy()
    ta = sn.Trainer(a, loss="l1", optimizer="adam", lr=0.01, batch_size=8, epochs=3, seed=5)
    ta.fit(X, y)
    ta.fit(X, y)
    sn.Trainer(b, loss="l1", optimizer="adam", lr=0.01, batch_size=8, epochs=6, seed=5).fit(X, y)
    np.testing.assert_array_equal(a.internals.params, b.internals.params)


def test_same_seed_is_bit_identical_and_shuffle_depends_on_seed():
    rng = np.random.default_rng(2)
    X, y = rng.normal(size=(50, 2)), rng.normal(size=(50, 1))
    runs = []
    for seed in (7, 7, 8):
        net = sn.Network.mlp(2, (5, 5), seed=0)
        runs.append(sn.Trainer(net, loss="mse", lr=0.05, batch_size=7, epochs=3, seed=seed).fit(X, y).step_loss)
    np.testing.assert_array_equal(runs[0], runs[1])
    assert not np.array_equal(runs[0], runs[2])


def test_the_shuffling_generator_is_checked_when_assigned():
    """trainer.rng draws the row orders: a Generator of the user's own serves (the same as seed= for
    default_rng(seed)); anything else is refused when assigned, not deep inside the next fit."""
    rng = np.random.default_rng(2)
    X, y = rng.normal(size=(20, 2)), rng.normal(size=(20, 1))
    runs = []
    for assign in (False, True):
        trainer = sn.Trainer(sn.Network.mlp(2, (4,), seed=0), lr=0.05, batch_size=3, epochs=2, seed=0 if assign else 9)
        if assign:
            trainer.rng = np.random.default_rng(9)
        runs.append(trainer.fit(X, y).step_loss)
    np.testing.assert_array_equal(*runs)
    for bad in (np.random.RandomState(0), 9, None, "rng"):
        with pytest.raises(TypeError, match="rng must be a numpy.random.Generator"):
            trainer.rng = bad
    assert isinstance(trainer.rng, np.random.Generator)


def test_training_reduces_loss_and_records_validation():
    rng = np.random.default_rng(3)
    X = rng.uniform(-2, 2, size=(256, 1))
    y = np.sin(X) + 0.5 * X
    net = sn.Network.mlp(1, (32, 32), skip="first-to-output", seed=0)
    hist = sn.Trainer(net, loss="mse", optimizer="adam", lr=0.01, batch_size=32, epochs=40, seed=0).fit(
        X, y, validation=(X[:64], y[:64]))
    assert hist.epoch_loss[-1] < 0.1 * hist.epoch_loss[0]
    assert len(hist.val_loss) == 40 and hist.val_loss[-1] < 0.1 * hist.val_loss[0]
    assert hist.stopped_reason is None and hist.lr.shape == hist.step_loss.shape


def test_divergence_guard_keeps_last_finite_weights(backend):
    rng = np.random.default_rng(4)
    X, y = rng.normal(size=(64, 2)), rng.normal(size=(64, 1)) * 10
    net = sn.Network.mlp(2, (16, 16), skip="first-to-output", seed=0, backend=backend)
    hist = sn.Trainer(net, loss="mse", lr=1e6, batch_size=16, epochs=50).fit(X, y)
    assert hist.stopped_reason.startswith("diverged at step")
    assert hist.warnings[-1].kind == "divergence"
    assert np.isfinite(net.internals.params).all()
    assert np.isfinite(hist.step_loss).all()
    # the kept weights are those that produced the last recorded (finite) loss
    last_batch_loss = hist.step_loss[-1]
    assert np.isfinite(net.gradients(X, y, "mse")[0])
    assert last_batch_loss < 1e300


def test_one_zero_gradient_batch_does_not_stop_training():
    # sample 0 is on the dead side of every unit (zero gradient); sample 1 is not
    net = sn.Network(1, [sn.Dense(1, "relu", bias=False), sn.Dense(1, "identity", bias=False)], seed=0)
    net.set_parameters({"layers.0.weight": [[1.0]], "layers.1.weight": [[1.0]]})
    X, y = np.array([[-1.0], [1.0]]), np.array([[5.0], [5.0]])
    hist = sn.Trainer(net, loss="l1", lr=0.1, batch_size=1, epochs=3, shuffle=False).fit(X, y)
    assert hist.stopped_reason is None and hist.steps_run == 6


def test_momentum_keeps_moving_after_gradient_vanishes():
    net = sn.Network.exercise()
    hist = sn.Trainer(net, loss="l1", lr=1.0, momentum=0.9, batch_size=1, epochs=5, shuffle=False).fit(
        [[1.0]], [[-3.0]])
    assert hist.stopped_reason is None  # the momentum buffer still moves the weights
    assert net.parameters()["layers.0.weight"][0, 0] < -0.25


def test_schedule_protocol_and_callbacks():
    class Halving:
        def start(self, base_lr, steps_per_epoch, epochs):
            self.base, self.calls = base_lr, []

        def lr(self, step, epoch):
            return self.base * 0.5**epoch

        def epoch_end(self, epoch, loss):
            self.calls.append((epoch, loss))

    rng = np.random.default_rng(5)
    X, y = rng.normal(size=(20, 2)), rng.normal(size=(20, 1))
    sched = Halving()
    seen = []

    def stop_after_two(trainer, epoch, history):
        seen.append(history.epochs_run)
        return epoch == 1

    hist = sn.Trainer(sn.Network.mlp(2, (4,), seed=0), lr=0.2, batch_size=10, epochs=5, schedule=sched,
                      callbacks=[stop_after_two]).fit(X, y)
    np.testing.assert_array_equal(hist.lr, [0.2, 0.2, 0.1, 0.1])
    assert [e for e, _ in sched.calls] == [0, 1]
    assert hist.stopped_reason == "callback" and seen == [1, 2]


@pytest.mark.parametrize("kwargs,error,match", [
    ({"lr": 0}, ValueError, "lr must be > 0"),
    ({"lr": float("nan")}, ValueError, "lr must be finite"),
    ({"batch_size": 0}, ValueError, "batch_size"),
    ({"epochs": -1}, ValueError, "epochs"),
    ({"optimizer": "rmsprop"}, ValueError, "optimizer"),
    ({"loss": "hinge"}, ValueError, "loss"),
    ({"momentum": -0.1}, ValueError, "momentum"),
    ({"nesterov": True}, ValueError, "nesterov"),
    ({"optimizer": "adam", "betas": (0.9, 1.0)}, ValueError, "betas"),
    ({"schedule": 3}, TypeError, "schedule"),
    ({"batch_size": 2.0}, TypeError, "batch_size"),
])
def test_bad_trainer_options(kwargs, error, match):
    with pytest.raises(error, match=match):
        sn.Trainer(sn.Network.exercise(), **kwargs)


def test_bad_fit_input():
    trainer = sn.Trainer(sn.Network.exercise())
    with pytest.raises(ValueError, match="X is empty"):
        trainer.fit(np.empty((0, 1)), np.empty((0, 1)))
    with pytest.raises(ValueError, match="validation"):
        trainer.fit([[1.0]], [[1.0]], validation=([[1.0]],))
    with pytest.raises(ValueError, match="validation X"):
        trainer.fit([[1.0]], [[1.0]], validation=([[1.0, 2.0]], [[1.0]]))
    with pytest.raises(TypeError, match="net must be"):
        sn.Trainer("net")
    # batch_size larger than the data is fine: one batch of everything
    hist = sn.Trainer(sn.Network.exercise(), batch_size=100, epochs=1).fit([[1.0], [2.0]], [[0.0], [1.0]])
    assert hist.steps_run == 1


@pytest.mark.parametrize("fused", [True, False])
def test_a_constant_rate_is_recorded_as_one_value_seen_at_every_step(fused):
    """History.lr of a fit at one rate is a read-only view (no array filled per fit); with a schedule it
    is an ordinary array; both paths record the same values."""
    X = np.linspace(-1, 1, 40).reshape(-1, 1)
    histories = []
    for schedule in (None, sn.schedules.StepLR(1, gamma=0.5)):
        net = sn.Network.mlp(1, (4, 4), 1, seed=0)
        h = sn.Trainer(net, lr=0.1, batch_size=8, epochs=3, fused=fused, schedule=schedule).fit(X, -X)
        histories.append(h)
    constant, scheduled = histories
    assert constant.lr.shape == (15,) and not constant.lr.flags.writeable
    np.testing.assert_array_equal(constant.lr, np.full(15, 0.1))
    assert scheduled.lr.flags.writeable
    np.testing.assert_array_equal(scheduled.lr, np.repeat([0.1, 0.05, 0.025], 5))


def test_a_rate_record_keeps_every_value_when_the_rate_changes_mid_fit():
    """Two fits of one trainer at different rates each record their own rate, and a fit whose rate
    changes between epochs (a per-epoch schedule) records every step's value."""
    X = np.linspace(-1, 1, 40).reshape(-1, 1)
    net = sn.Network.mlp(1, (4,), 1, seed=0)
    trainer = sn.Trainer(net, lr=0.1, batch_size=8, epochs=2)
    first = trainer.fit(X, -X)
    trainer.lr = 0.2
    second = trainer.fit(X, -X)
    np.testing.assert_array_equal(first.lr, np.full(10, 0.1))
    np.testing.assert_array_equal(second.lr, np.full(10, 0.2))

    class Changing(sn.schedules.Schedule):
        per = "epoch"

        def _rate(self, position):
            return 0.3 if position < 2 else 0.1

    h = sn.Trainer(sn.Network.mlp(1, (4,), 1, seed=0), lr=0.3, batch_size=8, epochs=3,
                   schedule=Changing()).fit(X, -X)
    np.testing.assert_array_equal(h.lr, np.repeat([0.3, 0.3, 0.1], 5))

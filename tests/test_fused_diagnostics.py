"""Diagnostics and schedules that cost the fused path nothing: the dead-unit statistics the kernels keep
(per hidden ReLU unit, the largest z over an epoch's steps), the plateau rule the kernel applies as it
trains (csrc/watch.h; tests/test_fused_plateaus.py), and schedules whose rates hold for several epochs.

Whatever the calls' lengths, a fused fit must give the per-op path's warnings, rates and weights."""

import numpy as np
import pytest
from _helpers import CountingFused

import skipnet as sn
from skipnet import _kernels as K
from skipnet.schedules import CosineLR, ExponentialLR, OneCycle, ReduceLROnPlateau, StepLR


def _fit_both(make_net, X, y, **options):
    out = []
    for fused in (True, False):
        net = make_net()
        trainer = sn.Trainer(net, fused=fused, **options)
        out.append((trainer.fit(X, y), net))
    return out


def _assert_same_fit(fused, per_op):
    (hf, nf), (hp, np_) = fused, per_op
    np.testing.assert_array_equal(hf.step_loss, hp.step_loss)
    np.testing.assert_array_equal(hf.lr, hp.lr)
    np.testing.assert_array_equal(nf.internals.params, np_.internals.params)
    assert hf.stopped_reason == hp.stopped_reason
    assert [(w.kind, w.epoch, w.message) for w in hf.warnings] == \
        [(w.kind, w.epoch, w.message) for w in hp.warnings]


# ------------------------------------------------------------------ the statistics the kernels keep
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_unit_statistics_of_one_step_are_the_forward_pass_maxima(dtype):
    rng = np.random.default_rng(0)
    net = sn.Network.mlp(3, (6, 5, 4), dtype=dtype, seed=2, skip="first-to-output")
    X = rng.normal(size=(20, 3)).astype(dtype)
    y = rng.normal(size=(20, 1)).astype(dtype)
    expected = np.concatenate([z.max(axis=0) for z in net.internals.detailed_pass(X).z[:-1]])
    fused = net.internals.engine.make_fused(20)
    assert fused.n_units == 15
    fused.bind(X, y, None, np.zeros_like(net.internals.params), None, "l1", "sgd")
    unit_max, unit_epochs = np.zeros(15, dtype), np.zeros((1, 15), dtype)
    losses, totals = np.zeros(2), np.zeros(1)
    done, status, *_ = fused.run(None, np.array([0.01]), losses, totals, 1, 1, 0, None,
                                 unit_max=unit_max, unit_epochs=unit_epochs)
    fused.unbind()
    assert (done, status) == (1, "ok")
    np.testing.assert_array_equal(unit_epochs[0], expected)
    np.testing.assert_array_equal(unit_max, expected)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("rows", [1, 2, 7])
def test_unit_statistics_at_every_simd_level_and_width(dtype, rows, simd):
    # widths that take every part of the fold (csrc/watch.h) at each level: groups of four vectors, single
    # vectors (even and odd rows), the narrower widths left over, scalars
    rng = np.random.default_rng(rows)
    net = sn.Network.mlp(3, (70, 37, 16, 9, 1), dtype=dtype, seed=5)
    X = rng.normal(size=(rows, 3)).astype(dtype)
    y = rng.normal(size=(rows, 1)).astype(dtype)
    z = net.internals.detailed_pass(X).z[:-1]
    expected = np.concatenate([zk.max(axis=0) for zk in z])
    n_units = expected.size
    fused = net.internals.engine.make_fused(rows)
    fused.bind(X, y, None, np.zeros_like(net.internals.params), None, "l1", "sgd")
    unit_max, unit_epochs = np.full(n_units, -np.inf, dtype), np.zeros((1, n_units), dtype)
    done, status, *_ = fused.run(None, np.array([0.0]), np.zeros(2), np.zeros(1), 1, 1, 0, None,
                                 unit_max=unit_max, unit_epochs=unit_epochs)
    fused.unbind()
    assert (done, status) == (1, "ok")
    np.testing.assert_array_equal(unit_epochs[0], expected)


@pytest.mark.parametrize("make", [
    lambda: sn.Network.exercise(),                                                   # the scalar path
    lambda: sn.Network.mlp(1, (1, 1, 1), seed=3, skip="first-to-output"),            # scalar, biases
    lambda: sn.Network.mlp(4, (7, 3), seed=4, dtype="float32"),                      # the batch path
])
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_unit_statistics_follow_every_step_as_the_per_op_path_does(make, optimizer):
    rng = np.random.default_rng(1)
    net = make()
    X = rng.normal(size=(9, net.n_inputs)).astype(net.dtype)
    y = rng.normal(size=(9, 1)).astype(net.dtype)
    n_units = sum(layer.units for layer in net.layers[:-1])
    epochs, batch = 3, 2
    spe = -(-9 // batch)
    # the per-op path's statistics, step by step
    ref = make()
    trainer = sn.Trainer(ref, loss="mse", optimizer=optimizer, lr=0.05, batch_size=batch, epochs=1,
                         shuffle=False, fused=False, diagnose=False)
    expected = []
    for _ in range(epochs):
        unit_max = np.full(n_units, -np.inf, ref.dtype)
        for j in range(spe):
            with ref.internals.writing():
                ref.internals.engine.loss_and_gradients(X[j * batch:(j + 1) * batch], y[j * batch:(j + 1) * batch],
                                                        "mse", unit_max=unit_max)
                trainer.optimizer.step(0.05)
        expected.append(unit_max)
    # the fused kernel's
    fused = net.internals.engine.make_fused(batch)
    opt = sn.Trainer(net, optimizer=optimizer, lr=0.05).optimizer
    fused.bind(X, y, None, loss="mse", **opt.fused_arguments())
    unit_max, unit_epochs = np.zeros(n_units, net.dtype), np.zeros((epochs, n_units), net.dtype)
    done, status, *_ = fused.run(None, np.array([0.05]), np.zeros(epochs * spe + 1), np.zeros(epochs),
                                 epochs * spe, spe, 0, None, unit_max=unit_max, unit_epochs=unit_epochs)
    fused.unbind()
    assert (done, status) == (epochs * spe, "ok")
    np.testing.assert_array_equal(unit_epochs, np.array(expected))


def test_plateau_rule_is_the_monitors():
    assert K.plateau_begins(np.array([2.0, 2.0, 2.0]), 3, 1e-3, None) == (True, 2.0)  # reported from now
    assert K.plateau_begins(np.array([-1.0, -1.0, -1.0]), 3, 1e-3, None) == (True, 1.0)  # |mean|
    assert K.plateau_begins(np.array([1.0, 1.0]), 3, 1e-3, None) == (False, None)  # not a window yet
    assert K.plateau_begins(np.array([1.0, 1.0, 1.0]), 3, 1e-3, 1.0) == (False, 1.0)  # being reported
    assert K.plateau_begins(np.array([1.0, 1.0, 1.5]), 3, 1e-3, 1.0) == (False, None)  # left it
    assert K.plateau_begins(np.array([1.5, 1.5, 1.5]), 3, 1e-3, 1.0) == (True, 1.5)  # left, a new one
    assert K.plateau_begins(np.array([0.0, 0.0, 0.0]), 3, 1e-3, None) == (True, 0.0)  # absolute at 0
    assert K.plateau_begins(np.array([1.0, np.nan, 1.0]), 3, 1e-3, None) == (False, None)
    assert K.plateau_begins(np.array([1.0, 1.0005, 1.0]), 3, 1e-3, None)[0]
    assert not K.plateau_begins(np.array([1.0, 1.002, 1.0]), 3, 1e-3, None)[0]
    with pytest.raises(ValueError, match="window"):
        K.plateau_begins(np.ones(3), 1, 1e-3, None)
    with pytest.raises(ValueError, match="window"):
        sn.diagnostics.TrainingMonitor(sn.Network.mlp(1, 2), np.ones((2, 1)), np.ones((2, 1)), "l1",
                                       window=K.PLATEAU_MAX_WINDOW + 1)


# ------------------------------------------------------------------ whole fits, both paths
def test_dying_units_are_reported_alike_in_calls_of_many_epochs():
    rng = np.random.default_rng(5)
    X, y = rng.normal(size=(40, 3)), rng.normal(size=(40, 1))
    fused, per_op = _fit_both(lambda: sn.Network.mlp(3, (12, 12), seed=6), X, y, loss="l1", lr=0.6,
                              batch_size=8, epochs=40, diagnose_every=3)
    _assert_same_fit(fused, per_op)
    assert any(w.kind == "dead_units" for w in fused[0].warnings)


@pytest.mark.parametrize("shuffle", [False, True])
def test_a_plateau_is_found_without_ending_the_call(shuffle):
    rng = np.random.default_rng(7)
    X, y = rng.normal(size=(32, 2)), (rng.random((32, 1)) > 0.5).astype(float)
    make = lambda: sn.Network.mlp(2, (4, 4), seed=1)
    fused, per_op = _fit_both(make, X, y, loss="bce", lr=1e-9, batch_size=8, epochs=30, shuffle=shuffle)
    _assert_same_fit(fused, per_op)
    plateaus = [w for w in fused[0].warnings if w.kind == "plateau"]
    assert len(plateaus) == 1 and plateaus[0].epoch == 4 and plateaus[0].data["start_epoch"] == 0
    net = make()
    counter = CountingFused(net.internals.engine)
    sn.Trainer(net, loss="bce", lr=1e-9, batch_size=8, epochs=30, shuffle=shuffle).fit(X, y)
    assert counter.calls == 1  # the kernel keeps the plateau epoch's weights and runs on


def test_a_stuck_fit_reports_its_dead_units_with_the_stop():
    fused, per_op = _fit_both(sn.Network.exercise, [[1.0]], [[-3.0]], loss="l1", lr=1.0, batch_size=1,
                              epochs=50, shuffle=False)
    _assert_same_fit(fused, per_op)
    assert [(w.kind, w.epoch) for w in fused[0].warnings] == [("dead_units", 1), ("zero_gradient", 1)]


@pytest.mark.parametrize("make_schedule", [
    lambda: StepLR(step_size=3, gamma=0.5), lambda: ExponentialLR(gamma=0.9),
    lambda: CosineLR(total=25, warmup=2), lambda: CosineLR(total=25, per="step"),
    lambda: OneCycle(max_lr=0.05), lambda: ReduceLROnPlateau(patience=1, factor=0.5, threshold=0.05),
    lambda: ReduceLROnPlateau(patience=0, cooldown=2, factor=0.7, threshold=0.2),
], ids=["step", "exponential", "cosine", "cosine-per-step", "onecycle", "plateau", "plateau-cooldown"])
def test_built_in_schedules_give_the_per_op_rates(make_schedule):
    rng = np.random.default_rng(9)
    X, y = rng.normal(size=(30, 2)), rng.normal(size=(30, 1))
    out = []
    for fused in (True, False):
        net, schedule = sn.Network.mlp(2, (6, 6), seed=2), make_schedule()
        trainer = sn.Trainer(net, loss="mse", lr=0.05, batch_size=7, epochs=25, schedule=schedule, fused=fused)
        out.append(((trainer.fit(X, y), net), schedule))
    (fused, schedule_f), (per_op, schedule_p) = out
    _assert_same_fit(fused, per_op)
    assert getattr(schedule_f, "reductions", None) == getattr(schedule_p, "reductions", None)
    if isinstance(schedule_f, ReduceLROnPlateau):
        assert schedule_f.reductions  # the test reduces the rate at least once


@pytest.mark.parametrize("make_schedule", [None, lambda: CosineLR(total=20), lambda: StepLR(step_size=2)])
def test_defaults_train_in_one_call(make_schedule):
    """diagnose=True (the default) and a schedule without feedback no longer end the call per epoch."""
    rng = np.random.default_rng(3)
    X, y = rng.normal(size=(64, 4)), rng.normal(size=(64, 1))
    net = sn.Network.mlp(4, (16, 16), seed=0, dtype="float32")
    counter = CountingFused(net.internals.engine)
    schedule = make_schedule() if make_schedule else None
    history = sn.Trainer(net, loss="l1", lr=0.01, batch_size=16, epochs=20, schedule=schedule).fit(X, y)
    assert sum(w.kind == "plateau" for w in history.warnings) <= 1
    assert counter.calls == 1  # a plateau's weights are copied in the kernel, which runs on


def test_reduce_on_plateau_holds_its_rate_for_the_epochs_it_says():
    schedule = ReduceLROnPlateau(patience=3, cooldown=2)
    schedule.start(0.1, 10, 100)
    assert schedule.fixed_epochs() == 4
    schedule.epoch_end(0, 1.0)
    schedule.epoch_end(1, 1.0)
    assert schedule.fixed_epochs() == 3
    for epoch in range(2, 2 + 3):
        assert schedule.current == 0.1
        schedule.epoch_end(epoch, 1.0)
    assert schedule.current == pytest.approx(0.01)  # reduced after 4 bad epochs: the fixed ones ran out
    assert schedule.fixed_epochs() == 2 + 3 + 1  # cooldown, then patience + 1
    assert StepLR(step_size=2).fixed_epochs() is None


def test_a_feedback_schedule_that_cannot_say_gets_an_epoch_per_call():
    class Halving:
        def __init__(self):
            self.rate = 0.02

        def lr(self, step, epoch):
            return self.rate

        def epoch_end(self, epoch, loss):
            self.rate /= 2

    rng = np.random.default_rng(4)
    X, y = rng.normal(size=(16, 2)), rng.normal(size=(16, 1))
    fused, per_op = [], []
    for out, flag in ((fused, True), (per_op, False)):
        net = sn.Network.mlp(2, (5,), seed=1)
        out.extend((sn.Trainer(net, lr=0.02, batch_size=4, epochs=6, schedule=Halving(), fused=flag).fit(X, y),
                    net))
    _assert_same_fit(fused, per_op)
    assert len(set(fused[0].lr)) == 6


@pytest.mark.parametrize("make", [sn.Network.exercise, lambda: sn.Network.mlp(3, (5, 4), seed=8)])
def test_only_the_epochs_due_for_a_check_keep_statistics(make):
    rng = np.random.default_rng(2)
    net = make()
    X = rng.normal(size=(12, net.n_inputs))
    y = rng.normal(size=(12, 1))
    epochs, batch = 7, 3
    spe = 12 // batch
    n_units = sum(layer.units for layer in net.layers[:-1])

    def run(every, first_epoch):
        copy = net.copy()
        fused = copy.internals.engine.make_fused(batch)
        fused.bind(X, y, None, loss="l1", **sn.Trainer(copy, lr=0.05).optimizer.fused_arguments())
        unit_epochs = np.full((epochs, n_units), np.nan)
        done, status, *_ = fused.run(None, np.array([0.05]), np.zeros(epochs * spe + 1), np.zeros(epochs),
                                     epochs * spe, spe, 0, None, unit_max=np.zeros(n_units),
                                     unit_epochs=unit_epochs, stats_every=every, stats_epoch=first_epoch)
        fused.unbind()
        assert (done, status) == (epochs * spe, "ok")
        return unit_epochs, copy.internals.params

    every_epoch, weights = run(1, 0)
    assert not np.isnan(every_epoch).any()
    for every, first_epoch in ((3, 0), (3, 2), (10, 1)):
        due, same_weights = run(every, first_epoch)
        kept = [(first_epoch + e) % every == 0 for e in range(epochs)]
        np.testing.assert_array_equal(due[kept], every_epoch[kept])
        assert np.isnan(due[~np.array(kept)]).all()  # the others cost nothing: nothing written
        np.testing.assert_array_equal(same_weights, weights)


def test_a_loss_that_leaves_its_plateau_can_plateau_again_alike_on_both_paths():
    class Bump:
        per = "epoch"  # the rate depends on the epoch alone

        def lr(self, step, epoch):
            return 0.2 if 8 <= epoch < 11 else 1e-9

    rng = np.random.default_rng(11)
    X, y = rng.normal(size=(24, 3)), rng.normal(size=(24, 1))
    fused, per_op = _fit_both(lambda: sn.Network.mlp(3, (8,), seed=2), X, y, loss="mse", batch_size=6,
                              epochs=30, schedule=Bump())
    _assert_same_fit(fused, per_op)
    assert [w.epoch for w in fused[0].warnings if w.kind == "plateau"] == [4, 15]


@pytest.mark.parametrize("make", [lambda: sn.Network.mlp(1, (1, 1), seed=3, skip="first-to-output"),  # scalar
                                  lambda: sn.Network.mlp(3, (5, 4), seed=8, dtype="float32")])      # batch
@pytest.mark.parametrize("dead", [False, True])
def test_the_kernel_says_whether_a_kept_epoch_saw_a_dead_unit(make, dead):
    """FusedNet.dead_seen: a row the call wrote into unit_epochs has a unit whose largest z is <= 0, so
    the monitor need not read the rows when it is False."""
    net = make()
    # every hidden unit alive (a large bias, positive weights after layer 0), or every unit of the first
    # hidden layer dead
    net.set_parameters({"layers.1.weight": np.abs(net.parameters()["layers.1.weight"]),
                        **{f"layers.{k}.bias": np.full(net.layers[k].units, 10.0) for k in (0, 1)}})
    if dead:
        net.set_parameters({"layers.0.weight": np.zeros_like(net.parameters()["layers.0.weight"]),
                            "layers.0.bias": -np.ones(net.layers[0].units)})
    rng = np.random.default_rng(6)
    X = rng.normal(size=(12, net.n_inputs)).astype(net.dtype)
    y = rng.normal(size=(12, 1)).astype(net.dtype)
    n_units, epochs, spe = net.internals.hidden_relu_units, 4, 4
    fused = net.internals.engine.make_fused(3)
    fused.bind(X, y, None, loss="l1", **sn.Trainer(net, lr=0.05).optimizer.fused_arguments())
    unit_epochs = np.full((epochs, n_units), np.nan, net.dtype)
    done, status, *_ = fused.run(None, np.array([1e-4]), np.zeros(epochs * spe + 1), np.zeros(epochs),
                                 epochs * spe, spe, 0, None, unit_max=np.zeros(n_units, net.dtype),
                                 unit_epochs=unit_epochs, stats_every=2, stats_epoch=1)
    fused.unbind()
    assert (done, status) == (epochs * spe, "ok")
    kept = unit_epochs[1::2]  # epochs 1 and 3 of the call are due
    assert not np.isnan(kept).any()
    assert fused.dead_seen == dead == bool((kept <= 0).any())


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_dead_units_of_is_numpys_nonzero_of_the_units_at_or_below_zero(dtype):
    """K.dead_units_of, the monitor's check of a row of statistics: the units whose largest z is <= 0,
    -0.0 and -inf included, NaN not (a NaN z is passed over, so it never made a unit dead)."""
    rng = np.random.default_rng(3)
    for n in (0, 1, 5, 33, 300):
        row = rng.normal(size=n).astype(dtype)
        row[rng.random(n) < 0.2] = 0.0
        specials = [-0.0, np.nan, -np.inf, np.inf]
        row[rng.integers(0, max(n, 1), size=min(n, 4))] = specials[:min(n, 4)] if n else []
        assert K.dead_units_of(row) == (row <= 0).nonzero()[0].tolist()
    for bad in (np.zeros((2, 3), dtype), np.zeros(6, dtype)[::2], np.zeros(3, "int64"), [0.0, -1.0]):
        with pytest.raises(ValueError, match="unit_max must be a C-contiguous 1-D"):
            K.dead_units_of(bad)

"""How a fused fit gets and records a schedule's rates: the cosine phases by angle addition
(K.cosine_rates), ``Schedule.step_rates`` against ``lr``/``rates`` bit for bit, and History.lr of fused
and per-op fits, the same bits whichever path ran and whenever it is read."""

import math

import numpy as np
import pytest
from _helpers import assert_same_states, failed_fit_states

import skipnet as sn
from skipnet import _kernels as K
from skipnet import schedules as S
from skipnet._record import RateRecord


# ---------------------------------------------------------------------------------------- the kernel
@pytest.mark.parametrize("first,n,block", [(0, 1, 1), (0, 500, 22), (37, 1000, 31), (5, 3, 100),
                                           (999, 64, 8), (0, 4096, 64)])
def test_cosine_rates_runs_equal_single_steps_bit_for_bit_and_the_cosine(first, n, block, simd):
    # a run's vector loop is the SIMD level's (elementwise.h), a single step's the baseline's: the same bits
    theta0, delta, offset, scale = 0.3, math.pi / 1234.5, 0.001, 0.05
    run = np.empty(n)
    K.cosine_rates(run, first, offset, scale, theta0, delta, block)
    steps = np.arange(first, first + n, dtype=np.int64)
    single = np.empty(n)
    K.cosine_rates_at(steps[::-1].copy(), single, offset, scale, theta0, delta, block)  # any order
    np.testing.assert_array_equal(run, single[::-1])
    direct = offset + scale * (1.0 + np.cos(theta0 + steps * delta))
    # the reference's own angle is rounded at its magnitude: an error of a few ulp of the largest angle
    angle_ulp = np.spacing(theta0 + (first + n) * delta)
    np.testing.assert_allclose(run, direct, rtol=0, atol=4 * scale * (angle_ulp + np.finfo(float).eps))


def test_cosine_rates_never_fall_below_the_offset(simd):
    n = 2001  # a half turn ending at exactly pi: 1 + cos rounds to either side of 0 there
    out = np.empty(n)
    K.cosine_rates(out, 0, 0.0, 0.5, 0.0, math.pi / (n - 1), 7)
    assert out.min() >= 0.0 and out[-1] < 1e-15 and out[0] == 1.0


@pytest.mark.parametrize("call,error,match", [
    (lambda: K.cosine_rates(np.empty(3), 0, 0.0, 1.0, 0.0, 0.1, 0), ValueError, "block"),
    (lambda: K.cosine_rates(np.empty(3), -1, 0.0, 1.0, 0.0, 0.1, 4), ValueError, "first"),
    (lambda: K.cosine_rates(np.empty(3), 0, 0.0, 1.0, 0.0, math.nan, 4), ValueError, "delta"),
    (lambda: K.cosine_rates_at(np.array([1, -2]), np.empty(2), 0.0, 1.0, 0.0, 0.1, 4), ValueError, "steps"),
    (lambda: K.cosine_rates_at(np.array([1, 2]), np.empty(3), 0.0, 1.0, 0.0, 0.1, 4), ValueError, "out"),
    (lambda: K.cosine_rates(np.empty(3, np.float32), 0, 0.0, 1.0, 0.0, 0.1, 4), ValueError, "dtype"),
])
def test_cosine_rates_refuse_bad_arguments(call, error, match):
    with pytest.raises(error, match=match):
        call()


def _plan_of_every_kind():
    """A rise, a cosine, a constant, a second cosine, steps down by 0.9 every 7 positions and the last
    rate held (K.schedule_rates' pieces)."""
    return (0, K.PIECE_LINEAR, 0.01, 0.09, -0.5, 10.5, 0,
            10, K.PIECE_COSINE, 0.001, 0.0495, 0.0, math.pi / 90, 9,
            100, K.PIECE_CONSTANT, 0.001, 0.0, 0.0, 0.0, 0,
            120, K.PIECE_COSINE, 0.0005, 0.02, 0.4, math.pi / 77, 8,
            200, K.PIECE_GEOMETRIC, 0.002, 0.9, 0.0, 0.0, 7,
            230, K.PIECE_HOLD, 0.0, 0.0, 0.0, 0.0, 0)


@pytest.mark.parametrize("first,n", [(0, 260), (0, 1), (9, 3), (95, 30), (150, 51), (199, 2), (203, 20),
                                     (226, 6), (240, 7)])
def test_schedule_rates_runs_equal_single_positions_bit_for_bit_and_the_formulas(first, n, simd):
    pieces = _plan_of_every_kind()
    run = np.full(n, np.nan)
    K.schedule_rates(pieces, first, run)
    t = np.arange(first, first + n, dtype=np.int64)
    single = np.full(n, np.nan)
    K.schedule_rates_at(pieces, t[::-1].copy(), single)  # any order
    np.testing.assert_array_equal(run, single[::-1])
    tf = t.astype(float)
    # the geometric piece as Python computes StepLR's rate: the same bits
    steps_down = [0.002 * 0.9 ** ((min(p, 229) - 200) // 7) for p in t.tolist()]  # held: position 229's
    expected = np.select(
        [t < 10, t < 100, t < 120, t < 200],
        [0.09 * ((tf + 0.5) / 10.5) + 0.01, 0.001 + 0.0495 * (1 + np.cos((tf - 10) * math.pi / 90)), 0.001,
         0.0005 + 0.02 * (1 + np.cos(0.4 + (tf - 120) * math.pi / 77))], steps_down)
    np.testing.assert_allclose(run, expected, rtol=1e-13, atol=1e-17)
    assert run[t >= 200].tolist() == [r for p, r in zip(t.tolist(), steps_down) if p >= 200]
    assert [K.schedule_rate(pieces, int(p)) for p in t] == run.tolist()
    held = np.empty(2)
    K.schedule_rates_at(pieces, np.array([229, 10**15]), held)  # held however far past the plan
    assert held[0] == held[1] and (t[-1] < 229 or held[0] == run[-1])


@pytest.mark.parametrize("pieces,match", [
    ((), "1 to 8 rows"),
    ((0, 0, 1.0, 0, 0, 0), "1 to 8 rows"),
    ((0, 0, 1.0, 0, 0, 0, 0) * 9, "1 to 8 rows"),
    ((1, 0, 1.0, 0, 0, 0, 0), "begin at 0"),
    ((0, 0, 1.0, 0, 0, 0, 0, 0, 0, 2.0, 0, 0, 0, 0), "after the one before"),
    ((0, 0, 1.0, 0, 0, 0, 0, 5.5, 0, 2.0, 0, 0, 0, 0), "whole"),
    ((0, 0, 1.0, 0, 0, 0, 0, math.nan, 0, 2.0, 0, 0, 0, 0), "whole"),
    ((0, 5, 1.0, 0, 0, 0, 0), "kind"),
    ((0, 0.5, 1.0, 0, 0, 0, 0), "kind"),
    ((0, K.PIECE_HOLD, 0, 0, 0, 0, 0), "kind"),
    ((0, K.PIECE_CONSTANT, 1.0, 0, 0, 0, 0, 5, K.PIECE_HOLD, 0, 0, 0, 0, 0, 9, 0, 1.0, 0, 0, 0, 0), "kind"),
    ((0, K.PIECE_CONSTANT, math.inf, 0, 0, 0, 0), "not finite"),
    ((0, K.PIECE_LINEAR, 1.0, 1.0, 0.0, 0.0, 0), "length"),
    ((0, K.PIECE_COSINE, 1.0, 1.0, 0.0, 0.1, 0), "block"),
    ((0, K.PIECE_COSINE, 1.0, 1.0, 0.0, math.nan, 3), "not finite"),
    ((0, K.PIECE_GEOMETRIC, 1.0, 0.5, 0.0, 0.0, 0), "block"),
    ((0, K.PIECE_GEOMETRIC, 1.0, 0.5, 0.0, 0.0, 2.5), "block"),
    ((0, K.PIECE_GEOMETRIC, 1.0, math.inf, 0.0, 0.0, 2), "not finite"),
])
def test_schedule_rates_refuse_a_bad_plan(pieces, match):
    with pytest.raises(ValueError, match=match):
        K.schedule_rates(pieces, 0, np.empty(4))
    with pytest.raises(ValueError, match=match):
        K.schedule_rates_at(pieces, np.arange(4), np.empty(4))
    with pytest.raises(ValueError, match=match):
        K.schedule_rate(pieces, 3)


def test_schedule_rates_refuse_bad_positions_and_buffers():
    plan = (0, K.PIECE_CONSTANT, 1.0, 0, 0, 0, 0)
    with pytest.raises(ValueError, match="first"):
        K.schedule_rates(plan, -1, np.empty(2))
    with pytest.raises(ValueError, match="positions"):
        K.schedule_rates_at(plan, np.array([0, -3]), np.empty(2))
    with pytest.raises(ValueError, match="position"):
        K.schedule_rate(plan, -1)
    with pytest.raises(ValueError, match="out"):
        K.schedule_rates_at(plan, np.array([0, 3]), np.empty(3))
    with pytest.raises(TypeError):
        K.schedule_rates(list(plan), 0, np.empty(2))


@pytest.mark.parametrize("schedule", [S.CosineLR(), S.OneCycle()], ids=repr)
def test_a_plan_beyond_the_positions_pieces_take_is_refused_at_start(schedule):
    with pytest.raises(ValueError, match=rf"plans fewer than 2\*\*53 positions, this fit would have {2**60}"):
        schedule.start(0.1, steps_per_epoch=2**30, epochs=2**30)
    schedule.start(0.1, steps_per_epoch=2**26, epochs=2**26)  # 2**52 steps: planned
    assert 0.001 < schedule.lr(2**51, 2**25) < 0.1 and 0 <= schedule.lr(2**52 - 1, 2**26 - 1) < 0.001


# ---------------------------------------------------------------------------------- step_rates
def _per_step_schedules():
    return [S.CosineLR(), S.CosineLR(warmup=30, min_lr=0.001), S.CosineLR(warmup=5, total=120, min_lr=0.01),
            S.OneCycle(), S.OneCycle(pct_start=0.25, anneal="linear"), S.OneCycle(three_phase=True),
            S.OneCycle(max_lr=0.3, total=77, div_factor=10.0)]


@pytest.mark.parametrize("schedule", _per_step_schedules(), ids=repr)
def test_step_rates_give_lr_and_rates_bit_for_bit(schedule):
    schedule.start(0.1, steps_per_epoch=17, epochs=9)  # 153 steps: the ranges below run past the plan
    for first, n in [(0, 153), (0, 1), (5, 40), (100, 90), (152, 3), (400, 5)]:
        out = np.full(n, np.nan)
        schedule.step_rates(out, first)
        steps = np.arange(first, first + n)
        np.testing.assert_array_equal(out, schedule.rates(steps, steps // 17))
        assert [schedule.lr(int(s), int(s) // 17) for s in steps[:8]] == out[:8].tolist()
    assert np.all(np.isfinite(out)) and out.min() >= 0


def test_step_rates_follow_the_closed_forms():
    cosine = S.CosineLR(warmup=10, min_lr=0.001)
    cosine.start(0.1, steps_per_epoch=10, epochs=10)
    t = np.arange(100.0)
    expected = np.where(t < 10, 0.1 * (1 / 3 + (2 / 3) * t / 10),
                        0.001 + 0.099 * (1 + np.cos(np.pi * (t - 10) / 90)) / 2)
    out = np.empty(100)
    cosine.step_rates(out, 0)
    np.testing.assert_allclose(out, expected, rtol=1e-14)


def test_step_rates_are_refused_where_they_mean_nothing():
    with pytest.raises(RuntimeError, match="start"):
        S.CosineLR().step_rates(np.empty(3), 0)
    epoch = S.StepLR(2)
    epoch.start(0.1, 10, 3)
    with pytest.raises(ValueError, match="per='step'"):
        epoch.step_rates(np.empty(3), 0)
    cosine = S.CosineLR()
    cosine.start(0.1, 10, 3)
    read_only = np.empty(3)
    read_only.flags.writeable = False
    for out in (np.empty(3, np.float32), np.empty((3, 1)), [0.0, 0.0], np.empty(6)[::2], read_only):
        with pytest.raises(TypeError, match="out"):
            cosine.step_rates(out, 0)
    with pytest.raises(ValueError, match="first_step"):
        cosine.step_rates(np.empty(3), -1)


class _Halving(S.Schedule):
    """A schedule of a user's own, per step: base_lr halved every 10 steps."""

    per = "step"

    def _rate(self, step):
        return self.base_lr * 0.5 ** (step // 10)


@pytest.mark.parametrize("schedule", [S.CosineLR(warmup=3), S.OneCycle(three_phase=True), _Halving()], ids=repr)
def test_step_rates_return_a_fill_that_keeps_the_rates_whatever_the_schedule_does_next(schedule):
    schedule.start(0.1, steps_per_epoch=10, epochs=3)
    out = np.full(25, np.nan)
    fill = schedule.step_rates(out, 4)
    schedule.start(0.5, steps_per_epoch=7, epochs=5)  # a new plan
    again, shorter = np.full(25, np.nan), np.full(7, np.nan)
    fill(again)
    fill(shorter)
    np.testing.assert_array_equal(again, out)
    np.testing.assert_array_equal(shorter, out[:7])
    assert not np.array_equal(schedule.rates(np.arange(4, 29), np.zeros(25, np.int64)), out)


@pytest.mark.parametrize("schedule,formula", [
    (S.StepLR(3, gamma=0.5), lambda e: 0.1 * 0.5 ** (e // 3)),
    (S.StepLR(1, gamma=0.9), lambda e: 0.1 * 0.9 ** (e // 1)),
    (S.ExponentialLR(0.8), lambda e: 0.1 * 0.8 ** e),
    (S.ExponentialLR(1 - 2**-53), lambda e: 0.1 * (1 - 2**-53) ** e),
], ids=repr)
def test_step_and_exponential_rates_are_their_formulas_bit_for_bit(schedule, formula):
    """StepLR and ExponentialLR are planned as one geometric piece: the bits of the Python formula in their
    docstrings (a float raised to an int), from lr, rates and epoch_rates alike."""
    schedule.start(0.1, steps_per_epoch=4, epochs=9)
    epochs = [0, 1, 2, 3, 5, 8, 40, 1000, 10**6, 2**40, 2**53 - 1, 2**53]
    expected = [formula(e) for e in epochs]
    assert [schedule.lr(0, e) for e in epochs] == expected
    assert schedule.rates(np.zeros(len(epochs), np.int64), np.array(epochs)).tolist() == expected
    assert schedule.epoch_rates(0, 60) == [formula(e) for e in range(60)]
    assert schedule.epoch_rates(2**40 - 3, 7) == [formula(e) for e in range(2**40 - 3, 2**40 + 4)]
    with pytest.raises(ValueError, match="epoch"):  # past a trainer's counters: refused, not a wrong power
        schedule.lr(0, 2**53 + 1)


def _per_epoch_schedules():
    return [S.StepLR(3), S.StepLR(step_size=1, gamma=0.9), S.ExponentialLR(0.8),
            S.CosineLR(per="epoch"), S.CosineLR(warmup=2, total=7, min_lr=0.01, per="epoch"),
            S.ReduceLROnPlateau(patience=0)]


@pytest.mark.parametrize("schedule", _per_epoch_schedules(), ids=repr)
def test_epoch_rates_give_lr_bit_for_bit(schedule):
    schedule.start(0.1, steps_per_epoch=4, epochs=9)
    if isinstance(schedule, S.ReduceLROnPlateau):  # a reduced rate, held
        schedule.epoch_end(0, 1.0)
        schedule.epoch_end(1, 2.0)
    for first, count in [(0, 9), (0, 1), (4, 3), (8, 5), (30, 2), (3, 0)]:
        got = schedule.epoch_rates(first, count)
        assert type(got) is list and all(type(r) is float for r in got)
        assert got == [schedule.lr(4 * e, e) for e in range(first, first + count)]


def test_epoch_rates_are_refused_where_they_mean_nothing():
    with pytest.raises(RuntimeError, match="start"):
        S.StepLR(2).epoch_rates(0, 3)
    cosine = S.CosineLR()
    cosine.start(0.1, 10, 3)
    with pytest.raises(ValueError, match="per='epoch'"):
        cosine.epoch_rates(0, 3)
    step = S.StepLR(2)
    step.start(0.1, 10, 3)
    for args, error, match in [((-1, 3), ValueError, "first_epoch"), ((0, -1), ValueError, "count"),
                               ((0.5, 3), TypeError, "first_epoch"), ((0, "3"), TypeError, "count")]:
        with pytest.raises(error, match=match):
            step.epoch_rates(*args)


# ------------------------------------------------------------------------------- History.lr of fits
def _fit(schedule, fused, epochs=6, **options):
    rng = np.random.default_rng(3)
    X, y = rng.normal(size=(40, 2)), rng.normal(size=(40, 1))
    net = sn.Network.mlp(2, (6, 6), seed=2)
    trainer = sn.Trainer(net, loss="mse", lr=0.05, batch_size=4, epochs=epochs, schedule=schedule, seed=1,
                         fused=fused, **options)
    return trainer.fit(X, y), net


@pytest.mark.parametrize("make", [S.CosineLR, S.OneCycle, lambda: S.StepLR(2, gamma=0.5),
                                  lambda: S.ExponentialLR(0.8), lambda: S.ReduceLROnPlateau(patience=1, threshold=0.5),
                                  lambda: S.CosineLR(per="epoch", warmup=2)],
                         ids=["cosine", "one-cycle", "step", "exponential", "on-plateau", "cosine-per-epoch"])
@pytest.mark.parametrize("diagnose", [False, True])
def test_fused_fits_record_the_rates_the_per_op_path_uses(make, diagnose):
    (fused, net_f), (per_op, net_p) = (_fit(make(), fused, diagnose=diagnose) for fused in (True, False))
    np.testing.assert_array_equal(fused.lr, per_op.lr)
    np.testing.assert_array_equal(fused.step_loss, per_op.step_loss)
    np.testing.assert_array_equal(net_f.internals.params, net_p.internals.params)
    assert fused.lr.shape == (60,) and len(set(fused.lr.tolist())) > 1


@pytest.mark.parametrize("make", [lambda: S.StepLR(1, gamma=0.5), lambda: S.CosineLR(per="epoch", warmup=2)],
                         ids=["step", "cosine-per-epoch"])
def test_paused_fused_calls_start_mid_epoch_with_the_per_op_rates(make, monkeypatch):
    """A kernel call that pauses after a step or two leaves the next one to start mid-epoch, with one
    rate per epoch of the call from the epoch in progress (FusedNet.run's lrs_per_epoch)."""
    from skipnet import trainer as T

    monkeypatch.setattr(T, "PAUSE_SECONDS", 1e-9)  # every call pauses after its first clock reading
    (fused, net_f), (per_op, net_p) = (_fit(make(), fused) for fused in (True, False))
    np.testing.assert_array_equal(fused.lr, per_op.lr)
    np.testing.assert_array_equal(fused.step_loss, per_op.step_loss)
    np.testing.assert_array_equal(net_f.internals.params, net_p.internals.params)
    assert len(set(fused.lr.tolist())) > 2


def test_a_recorded_schedule_is_frozen_at_the_fit():
    schedule = S.CosineLR(min_lr=0.01)
    hist, _ = _fit(schedule, True)
    expected = np.empty(60)
    schedule.step_rates(expected, 0)
    schedule.min_lr = 0.02  # re-plans the schedule: the fit's record must not follow
    schedule.start(0.5, 3, 3)
    np.testing.assert_array_equal(hist.lr, expected)
    assert hist.lr is hist.lr  # written out once


def test_a_second_fit_continues_the_schedule_and_the_record():
    schedule = S.CosineLR(total=200)
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(40, 2)), rng.normal(size=(40, 1))
    trainer = sn.Trainer(sn.Network.mlp(2, (4,), seed=0), loss="mse", lr=0.1, batch_size=8, epochs=4,
                         schedule=schedule)
    first, second = trainer.fit(X, y), trainer.fit(X, y)
    expected = np.empty(40)
    schedule.step_rates(expected, 0)
    np.testing.assert_array_equal(np.concatenate([first.lr, second.lr]), expected)


# ------------------------------------------------------------------------------------ the record
def test_rate_series_keeps_runs_and_writes_them_out_in_order():
    series = RateRecord()
    series.record(0.1, 3)
    series.record(0.1, 2)
    view = series.array()
    assert view.shape == (5,) and not view.flags.writeable and set(view.tolist()) == {0.1}
    series.record(np.array([1.0, 2.0, 3.0, 99.0]), 3)
    series.record(lambda out: out.__setitem__(slice(None), np.arange(len(out)) + 10.0), 2)
    series.record(0.5, 0)  # nothing
    deferred = series.deferred()
    assert not isinstance(deferred, np.ndarray)
    expected = [0.1] * 5 + [1.0, 2.0, 3.0, 10.0, 11.0]
    assert deferred.make().tolist() == expected and len(series) == 10
    series.record(0.25, 1)
    assert series.array().tolist() == expected + [0.25]


def test_rate_series_writes_out_many_runs_as_they_come():
    series = RateRecord()
    for step in range(3 * RateRecord.FLUSH_RUNS):
        series.record(float(step), 1)
        assert len(series.runs) <= RateRecord.FLUSH_RUNS
    np.testing.assert_array_equal(series.array(), np.arange(3.0 * RateRecord.FLUSH_RUNS))


def test_fits_in_many_threads_keep_their_own_rates():
    from concurrent.futures import ThreadPoolExecutor

    makes = [S.CosineLR, S.OneCycle, lambda: S.StepLR(1, gamma=0.7), lambda: S.CosineLR(min_lr=0.02)] * 3
    expected = [_fit(make(), True)[0] for make in makes]
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda make: _fit(make(), True)[0], makes))
    for a, b in zip(expected, got):
        np.testing.assert_array_equal(a.lr, b.lr)
        np.testing.assert_array_equal(a.step_loss, b.step_loss)


@pytest.mark.parametrize("make", [S.CosineLR, lambda: S.StepLR(1, gamma=3.0 ** -0.5)], ids=["cosine", "step"])
def test_a_diverging_fit_records_the_rates_up_to_the_step_that_diverged(make):
    runs = []
    for fused in (True, False):
        net = sn.Network.mlp(1, (4,), seed=0)
        X = np.linspace(-1, 1, 16)[:, None]
        y = np.where(np.arange(16) < 12, 0.5, 1e5)[:, None]  # the rows of step 6 of epoch 0 diverge
        trainer = sn.Trainer(net, loss="mse", lr=0.1, batch_size=2, epochs=4, schedule=make(), shuffle=False,
                             fused=fused)
        runs.append(trainer.fit(X, y))
    fused, per_op = runs
    assert fused.stopped_reason.startswith("diverged at step 6")
    assert fused.stopped_reason == per_op.stopped_reason and fused.steps_run == 6
    np.testing.assert_array_equal(fused.lr, per_op.lr)
    assert len(fused.lr) == fused.steps_run


def test_a_history_with_deferred_rates_pickles_and_copies_with_them():
    import copy
    import pickle

    hist, _ = _fit(S.OneCycle(), True)
    twin = pickle.loads(pickle.dumps(hist))
    np.testing.assert_array_equal(twin.lr, hist.lr)
    fresh, _ = _fit(S.OneCycle(), True)  # not read before the copy
    np.testing.assert_array_equal(copy.deepcopy(fresh).lr, hist.lr)
    np.testing.assert_array_equal(twin.step_loss, hist.step_loss)


@pytest.mark.parametrize("bad", [ArithmeticError("no rate for epoch 2"), -0.5, float("nan")], ids=repr)
def test_a_per_epoch_schedule_that_fails_mid_fit_stops_where_the_per_op_path_does(bad):
    class Fails:
        per = "epoch"

        def lr(self, step, epoch):
            if epoch < 2:
                return 0.05 / (1 + epoch)
            if isinstance(bad, Exception):
                raise bad
            return bad

    states = failed_fit_states(Fails, (ArithmeticError, ValueError))
    assert_same_states(states)
    assert states[0][2:4] == (16, 16)


# ---------------------------------------------------------------- the kernel computes rates from the plan
def _planned(schedule, spe=7, epochs=9):
    schedule.start(0.1, steps_per_epoch=spe, epochs=epochs)
    return schedule.pieces


@pytest.mark.parametrize("schedule", [S.CosineLR(warmup=5), S.OneCycle(three_phase=True), S.StepLR(2, 0.5),
                                      S.ExponentialLR(0.8), S.CosineLR(per="epoch")], ids=repr)
def test_schedule_epoch_rates_are_the_plans_rate_of_each_steps_epoch(schedule):
    pieces = _planned(schedule)
    for first_epoch, first_step, spe, n in [(0, 0, 7, 63), (3, 5, 7, 20), (2, 6, 7, 1), (0, 0, 1, 9), (40, 2, 3, 0)]:
        out = np.full(n, np.nan)
        K.schedule_epoch_rates(pieces, first_epoch, first_step, spe, out)
        expected = [K.schedule_rate(pieces, first_epoch + (first_step + k) // spe) for k in range(n)]
        np.testing.assert_array_equal(out.view(np.int64), np.array(expected).view(np.int64))
    for args, match in [((-1, 0, 7), "first_epoch"), ((0, 7, 7), "first_step"), ((0, -1, 7), "first_step")]:
        with pytest.raises(ValueError, match=match):
            K.schedule_epoch_rates(pieces, *args, np.empty(3))


def test_a_piecewise_schedule_shows_its_plan_read_only():
    cosine = S.CosineLR(warmup=2)
    assert cosine.pieces is None  # before start
    pieces = _planned(cosine)
    assert type(pieces) is tuple and len(pieces) % K.PIECE_COLUMNS == 0
    out = np.empty(10)
    K.schedule_rates(pieces, 3, out)
    assert out.tolist() == [cosine.lr(3 + k, 0) for k in range(10)]
    with pytest.raises(AttributeError, match="no setting 'pieces'"):
        cosine.pieces = ()
    cosine.warmup = 4  # a started schedule re-plans: the property shows the new plan
    assert cosine.pieces != pieces
    assert not hasattr(S.ReduceLROnPlateau(), "pieces")  # its rate is the rule's state, not a plan


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("schedule,per_epoch", [(S.CosineLR(warmup=3), False), (S.OneCycle(), False),
                                                (S.StepLR(1, 0.5), True), (S.CosineLR(per="epoch"), True)],
                         ids=repr)
@pytest.mark.parametrize("width", [1, 5])  # the scalar path and the batch path
def test_fused_run_with_a_plan_trains_as_with_its_rates_bit_for_bit(schedule, per_epoch, width, dtype):
    """FusedNet.run(rate_plan=...) fills the call's rates from the plan into a buffer of its own: the same
    steps, losses and weights as the rates given as an array, from any first step of an epoch."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(12, 1)).astype(dtype)
    y = rng.normal(size=(12, 1)).astype(dtype)
    pieces = _planned(schedule, spe=4, epochs=6)
    runs = []
    for planned in (False, True):
        net = sn.Network.mlp(1, (width, width), 1, skip="first-to-output", seed=5, dtype=dtype)
        with net.internals.engine.fused(3) as fused:
            fused.bind(X, y, None, np.zeros_like(net.internals.params), None, "l1", "sgd")
            out = []
            for first_position, first_step, n_steps in [(0, 0, 9), (9, 1, 2), (11, 3, 13)]:
                # positions: steps, or the epochs of a per-epoch schedule (the call's first one)
                position = first_position // 4 if per_epoch else first_position
                if planned:
                    lrs = None
                    plan = (pieces, position, per_epoch)
                else:
                    epochs = (first_step + n_steps - 1) // 4 + 1
                    lrs = np.empty(epochs if per_epoch else n_steps)
                    K.schedule_rates(pieces, position, lrs)
                    plan = None
                losses, totals = np.full(n_steps + 1, np.nan), np.zeros(8)
                result = fused.run(None, lrs, losses, totals, n_steps, 4, first_position, None, first_step,
                                   lrs_per_epoch=per_epoch, rate_plan=plan)
                out.append((result, losses.copy(), totals.copy()))
            fused.unbind()
        runs.append((out, net.internals.params.copy()))
    (calls_a, params_a), (calls_b, params_b) = runs
    np.testing.assert_array_equal(params_a, params_b)
    for (ra, la, ta), (rb, lb, tb) in zip(calls_a, calls_b):
        assert ra == rb
        np.testing.assert_array_equal(la, lb)
        np.testing.assert_array_equal(ta, tb)


def test_fused_run_refuses_a_plan_that_is_not_one():
    net = sn.Network.mlp(1, (3,), 1, seed=0)
    pieces = _planned(S.CosineLR())
    X = np.ones((6, 1))
    with net.internals.engine.fused(2) as fused:
        fused.bind(X, X, None, np.zeros_like(net.internals.params), None, "l1", "sgd")
        for plan, error, match in [([pieces, 0, False], ValueError, "rate_plan must be"),
                                   ((pieces, 0), ValueError, "rate_plan must be"),
                                   ((pieces[:-1], 0, False), ValueError, "pieces must be"),
                                   ((pieces, -1, False), ValueError, "first position"),
                                   ((pieces, 2**53, False), ValueError, "first position"),
                                   (("x", 0, False), TypeError, "tuple")]:
            with pytest.raises(error, match=match):
                fused.run(None, None, np.empty(4), np.empty(2), 3, 3, 0, None, rate_plan=plan)
        fused.unbind()

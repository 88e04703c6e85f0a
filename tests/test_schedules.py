"""Learning-rate schedules against PyTorch's formulas (and torch itself when installed), and lr_find."""

import math

import numpy as np
import pytest

import skipnet as sn
from skipnet import datasets
from skipnet import schedules as S


def rates(schedule, n, base=0.1, steps_per_epoch=10, epochs=10, per_epoch=False):
    schedule.start(base, steps_per_epoch, epochs)
    return np.array([schedule.lr(0 if per_epoch else t, t if per_epoch else t // steps_per_epoch)
                     for t in range(n)])


def torch_rates(make, n, base=0.1, metrics=None):
    """The rate torch's scheduler gives for each of n steps (stepping after each optimizer step)."""
    torch = pytest.importorskip("torch")
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=base)
    scheduler = make(opt, torch.optim.lr_scheduler)
    out = []
    for i in range(n):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        scheduler.step() if metrics is None else scheduler.step(metrics[i])
    return np.array(out)


# ------------------------------------------------------------------------------ closed forms, by hand
def test_step_and_exponential_by_hand():
    np.testing.assert_allclose(rates(S.StepLR(3, gamma=0.5), 8, per_epoch=True),
                               0.1 * 0.5 ** (np.arange(8) // 3), rtol=1e-15)
    np.testing.assert_allclose(rates(S.ExponentialLR(0.9), 6, per_epoch=True), 0.1 * 0.9 ** np.arange(6),
                               rtol=1e-15)
    assert S.StepLR(2).per == S.ExponentialLR(0.5).per == "epoch"


def test_cosine_with_warmup_by_hand():
    s = S.CosineLR(warmup=4, min_lr=0.01)
    assert s.per == "step"
    got = rates(s, 30, steps_per_epoch=2, epochs=10)  # planned total 20 steps
    t = np.arange(30)
    warm = 0.1 * (1 / 3 + (2 / 3) * t / 4)
    cos = 0.01 + 0.09 * (1 + np.cos(np.pi * (t - 4) / 16)) / 2
    expected = np.where(t < 4, warm, np.where(t < 20, cos, 0.01))
    np.testing.assert_allclose(got, expected, rtol=1e-14)
    assert got[4] == pytest.approx(0.1) and got[19] > 0.01
    # per epoch with an explicit total: positions are epochs
    e = S.CosineLR(total=5, per="epoch")
    np.testing.assert_allclose(rates(e, 7, per_epoch=True), [*(0.05 * (1 + np.cos(np.pi * np.arange(5) / 5))), 0, 0])


def test_one_cycle_by_hand_and_no_overrun():
    s = S.OneCycle(pct_start=0.25, div_factor=10, final_div_factor=100)
    got = rates(s, 60, base=1.0, steps_per_epoch=4, epochs=10)  # 40 planned steps, asked for 60
    assert got[0] == pytest.approx(0.1)                  # max_lr / div_factor
    assert got[9] == pytest.approx(1.0)                  # the peak at pct_start * total - 1
    assert got[39] == pytest.approx(0.001)               # initial / final_div_factor at total - 1
    np.testing.assert_array_equal(got[40:], got[39])     # held past the plan, no "Tried to step" error
    assert np.all(np.diff(got[:10]) > 0) and np.all(np.diff(got[9:40]) < 0)


def test_reduce_on_plateau_rule_by_hand():
    s = S.ReduceLROnPlateau(factor=0.5, patience=1, threshold=0.1, cooldown=1, min_lr=0.02)
    s.start(0.1, 1, 10)
    seen = []
    for epoch, loss in enumerate([1.0, 0.95, 0.95, 0.5, 0.49, 0.49, 0.49, 0.49, 0.49, 0.49]):
        seen.append(s.lr(epoch, epoch))
        s.epoch_end(epoch, loss)
    # 0.95 is not 10% better than 1.0: bad epochs 1, 2 -> reduce after epoch 2; cooldown 1 epoch;
    # 0.5 is better; then 0.49 is not 10% better: bad 4, 5 -> reduce after 5; cooldown; bad 7, 8 -> 0.02 floor
    assert seen == [0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025, 0.025, 0.025, 0.02]
    assert [e for e, _ in s.reductions] == [2, 5, 8]
    assert s.per == "epoch"


# ------------------------------------------------------------------------------ against torch itself
def test_against_torch_schedulers():
    np.testing.assert_allclose(rates(S.StepLR(3, 0.5), 12, per_epoch=True),
                               torch_rates(lambda o, L: L.StepLR(o, 3, 0.5), 12), rtol=1e-13)
    np.testing.assert_allclose(rates(S.ExponentialLR(0.8), 12, per_epoch=True),
                               torch_rates(lambda o, L: L.ExponentialLR(o, 0.8), 12), rtol=1e-13)
    np.testing.assert_allclose(rates(S.CosineLR(min_lr=0.001), 50, steps_per_epoch=5, epochs=10),
                               torch_rates(lambda o, L: L.CosineAnnealingLR(o, T_max=50, eta_min=0.001), 50),
                               rtol=1e-12, atol=1e-15)
    warm = torch_rates(lambda o, L: L.SequentialLR(
        o, [L.LinearLR(o, start_factor=0.25, total_iters=10), L.CosineAnnealingLR(o, T_max=40, eta_min=0.001)],
        milestones=[10]), 50)
    np.testing.assert_allclose(
        rates(S.CosineLR(warmup=10, min_lr=0.001, warmup_start_factor=0.25), 50, steps_per_epoch=5, epochs=10),
        warm, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("kwargs", [{}, {"three_phase": True, "anneal": "linear"},
                                    {"pct_start": 0.1, "div_factor": 5.0, "final_div_factor": 50.0}])
def test_one_cycle_against_torch(kwargs):
    torch_kwargs = {"three_phase": kwargs.get("three_phase", False),
                    "anneal_strategy": kwargs.get("anneal", "cos"), "pct_start": kwargs.get("pct_start", 0.3),
                    "div_factor": kwargs.get("div_factor", 25.0),
                    "final_div_factor": kwargs.get("final_div_factor", 1e4), "cycle_momentum": False}
    expected = torch_rates(lambda o, L: L.OneCycleLR(o, max_lr=0.1, total_steps=100, **torch_kwargs), 100)
    np.testing.assert_allclose(rates(S.OneCycle(**kwargs), 100), expected, rtol=1e-12, atol=1e-16)


@pytest.mark.parametrize("kwargs", [{}, {"threshold_mode": "abs", "threshold": 0.01},
                                    {"mode": "max", "patience": 2}, {"cooldown": 3, "factor": 0.5, "min_lr": 0.004}])
def test_reduce_on_plateau_against_torch(kwargs):
    rng = np.random.default_rng(0)
    metrics = np.r_[np.linspace(1, 0.5, 10), np.full(20, 0.5), rng.uniform(0.4, 0.6, 40), [np.nan, 0.3]]
    if kwargs.get("mode") == "max":
        metrics = -metrics
    kwargs = {"patience": 3, **kwargs}
    expected = torch_rates(lambda o, L: L.ReduceLROnPlateau(o, **kwargs), len(metrics), metrics=metrics)
    s = S.ReduceLROnPlateau(**kwargs)
    s.start(0.1, 1, len(metrics))
    got = []
    for epoch, metric in enumerate(metrics):
        got.append(s.lr(epoch, epoch))
        s.epoch_end(epoch, metric)
    np.testing.assert_allclose(got, expected, rtol=1e-15)


# ------------------------------------------------------------------------------ with the Trainer
def test_trainer_uses_the_schedule_per_step_and_continues_across_fits():
    X, y = datasets.sine(40, seed=1)
    schedule = S.CosineLR(warmup=3)
    trainer = sn.Trainer(sn.Network.mlp(1, (8,), seed=0), loss="mse", lr=0.05, batch_size=10, epochs=5,
                         schedule=schedule)
    first = trainer.fit(X, y)
    t = np.arange(20)
    expected = np.where(t < 3, 0.05 * (1 / 3 + (2 / 3) * t / 3),
                        0.025 * (1 + np.cos(np.pi * (t - 3) / 17)))
    np.testing.assert_allclose(first.lr, expected, rtol=1e-14)
    second = trainer.fit(X, y)  # the trainer's step counter continues: past the plan the rate holds at 0
    np.testing.assert_array_equal(second.lr, 0.0)


def test_trainer_with_reduce_on_plateau():
    # an epoch counts as better only when the loss falls by 20%: the rate is cut whenever it does not
    X, y = datasets.sine(40, seed=1)
    s = S.ReduceLROnPlateau(patience=0, threshold=0.2, factor=0.5)
    hist = sn.Trainer(sn.Network.mlp(1, (8,), seed=0), loss="mse", lr=0.1, batch_size=10, epochs=8,
                      schedule=s).fit(X, y)
    replay = S.ReduceLROnPlateau(patience=0, threshold=0.2, factor=0.5)
    replay.start(0.1, 4, 8)
    expected = []
    for epoch, loss in enumerate(hist.epoch_loss):
        expected += [replay.lr(0, epoch)] * 4
        replay.epoch_end(epoch, loss)
    np.testing.assert_array_equal(hist.lr, expected)  # the trainer feeds each epoch's loss, once
    assert s.reductions == replay.reductions and len(s.reductions) >= 1


@pytest.mark.parametrize("make,error,match", [
    (lambda: S.StepLR(0), ValueError, "step_size"),
    (lambda: S.StepLR(2, gamma=0), ValueError, "gamma"),
    (lambda: S.StepLR(2.5), TypeError, "step_size"),
    (lambda: S.ExponentialLR(1.5), ValueError, "gamma"),
    (lambda: S.CosineLR(warmup=5, total=5), ValueError, "total"),
    (lambda: S.CosineLR(per="batch"), ValueError, "per"),
    (lambda: S.CosineLR(warmup_start_factor=0), ValueError, "warmup_start_factor"),
    (lambda: S.OneCycle(pct_start=1.0), ValueError, "pct_start"),
    (lambda: S.OneCycle(three_phase=True, pct_start=0.6), ValueError, "pct_start"),
    (lambda: S.OneCycle(anneal="exp"), ValueError, "anneal"),
    (lambda: S.ReduceLROnPlateau(factor=1.0), ValueError, "factor"),
    (lambda: S.ReduceLROnPlateau(mode="up"), ValueError, "mode"),
    (lambda: S.ReduceLROnPlateau(patience=-1), ValueError, "patience"),
])
def test_bad_arguments(make, error, match):
    with pytest.raises(error, match=match):
        make()


# Each setting with a bad value: the constructor and an assignment afterwards raise the same error.
BAD_SETTINGS = [
    (S.StepLR, {"step_size": 2}, "step_size", 0, ValueError),
    (S.StepLR, {"step_size": 2}, "step_size", 2.5, TypeError),
    (S.StepLR, {"step_size": 2}, "gamma", float("nan"), ValueError),
    (S.ExponentialLR, {"gamma": 0.5}, "gamma", "0.5", TypeError),
    (S.CosineLR, {}, "warmup", -1, ValueError),
    (S.CosineLR, {}, "min_lr", float("inf"), ValueError),
    (S.CosineLR, {}, "per", "batch", ValueError),
    (S.CosineLR, {}, "total", 10**400, ValueError),
    (S.OneCycle, {}, "three_phase", "yes", TypeError),
    (S.OneCycle, {}, "three_phase", 1, TypeError),
    (S.OneCycle, {}, "max_lr", -1.0, ValueError),
    (S.OneCycle, {}, "total", 1, ValueError),
    (S.OneCycle, {}, "div_factor", 0.0, ValueError),
    (S.OneCycle, {}, "anneal", None, ValueError),
    (S.ReduceLROnPlateau, {}, "factor", 1.0, ValueError),
    (S.ReduceLROnPlateau, {}, "threshold_mode", "relative", ValueError),
    (S.ReduceLROnPlateau, {}, "cooldown", None, TypeError),
    (S.ReduceLROnPlateau, {}, "eps", -1e-8, ValueError),
]


@pytest.mark.parametrize("cls,args,name,value,error", BAD_SETTINGS)
def test_settings_are_checked_when_assigned_as_in_the_constructor(cls, args, name, value, error):
    with pytest.raises(error, match=name) as at_construction:
        cls(**{**args, name: value})
    schedule = cls(**args)
    before = repr(schedule)
    with pytest.raises(error, match=name) as at_assignment:
        setattr(schedule, name, value)
    assert str(at_assignment.value) == str(at_construction.value)  # the same check
    assert repr(schedule) == before  # nothing changed


def test_state_of_reduce_on_plateau_is_checked_when_assigned():
    s = S.ReduceLROnPlateau()
    for name, value, error in [("current", -0.1, ValueError), ("current", None, TypeError),
                               ("best", float("nan"), ValueError), ("best", "low", TypeError),
                               ("num_bad_epochs", -1, ValueError), ("cooldown_counter", 1.5, TypeError),
                               ("reductions", [(0, "x")], TypeError), ("reductions", None, TypeError),
                               ("base_lr", 0.0, ValueError)]:
        with pytest.raises(error, match=name):
            setattr(s, name, value)
    s.best = 10**400  # beyond the float range: +inf, as before the first epoch
    assert s.best == math.inf
    s.reductions = ((3, 0.01),)
    assert s.reductions == [(3, 0.01)]
    with pytest.raises(TypeError, match="loss must be a real number"):
        s.start(0.1, 1, 1) or s.epoch_end(0, "low")


def test_inconsistent_assignments_are_refused_and_rolled_back():
    s = S.CosineLR(warmup=2, total=10)
    with pytest.raises(ValueError, match=r"total \(2\) must be larger than warmup \(2\)"):
        s.total = 2
    with pytest.raises(ValueError, match="warmup"):
        s.warmup = 10
    assert (s.total, s.warmup) == (10, 2)
    s.start(0.1, 5, 4)
    with pytest.raises(ValueError, match="min_lr"):
        s.min_lr = 0.5  # above the base rate of the started fit
    assert s.min_lr == 0.0
    one = S.OneCycle(pct_start=0.6)
    with pytest.raises(ValueError, match="three_phase"):
        one.three_phase = True
    assert one.three_phase is False
    one.start(0.1, 10, 10)
    rates = [one.lr(t, 0) for t in range(100)]
    with pytest.raises(ValueError, match="pct_start"):
        one.pct_start = 0.001  # no room for the rise in 100 steps
    assert [one.lr(t, 0) for t in range(100)] == rates and one.pct_start == 0.6


def test_a_started_schedule_follows_its_new_settings():
    """A change after start re-plans: the rates equal those of a schedule made with the new value."""
    for make, name, value in [(lambda: S.OneCycle(), "max_lr", 2.0), (lambda: S.OneCycle(), "total", 40),
                              (lambda: S.CosineLR(warmup=3), "total", 50),
                              (lambda: S.CosineLR(total=50), "total", None),
                              (lambda: S.CosineLR(warmup=3), "per", "epoch")]:
        changed, fresh = make(), make()
        changed.start(0.1, 10, 10)
        setattr(changed, name, value)
        setattr(fresh, name, value)
        fresh.start(0.1, 10, 10)
        np.testing.assert_array_equal([changed.lr(t, t // 10) for t in range(120)],
                                      [fresh.lr(t, t // 10) for t in range(120)])


def test_a_start_like_the_last_keeps_its_plan(monkeypatch):
    """start with the base rate and fit length of the last start plans nothing (a fit again of the same
    length); a setting changed in between has re-planned already, and another length plans anew."""
    for make, name, value in [(S.OneCycle, "max_lr", 2.0), (S.CosineLR, "min_lr", 0.01)]:
        schedule, fresh = make(), make()
        plans = []
        original = type(schedule)._plan
        monkeypatch.setattr(type(schedule), "_plan", lambda self, *fit, plans=plans, original=original:
                            (plans.append(fit), original(self, *fit)))
        schedule.start(0.1, 10, 10)
        schedule.start(0.1, 10, 10)
        assert plans == [(10, 10)]
        setattr(schedule, name, value)
        schedule.start(0.1, 10, 10)
        assert plans == [(10, 10)] * 2
        schedule.start(0.1, 10, 12)
        schedule.start(0.2, 10, 12)
        assert plans == [(10, 10)] * 2 + [(10, 12)] * 2
        setattr(fresh, name, value)
        fresh.start(0.2, 10, 12)
        np.testing.assert_array_equal([schedule.lr(t, 0) for t in range(130)], [fresh.lr(t, 0) for t in range(130)])


def test_typos_and_fixed_facts_are_refused():
    with pytest.raises(AttributeError, match="CosineLR has no setting 'warmup_steps'.*warmup"):
        S.CosineLR().warmup_steps = 10
    with pytest.raises(AttributeError, match="StepLR.per is fixed to 'epoch'"):
        S.StepLR(2).per = "step"

    class Custom(S.StepLR):  # a subclass of the user's own may add attributes
        pass

    custom = Custom(2)
    custom.note = "mine"
    assert custom.note == "mine"


def test_a_new_mode_forgets_the_best_loss():
    s = S.ReduceLROnPlateau(patience=0)
    s.start(0.1, 1, 1)
    s.epoch_end(0, 1.0)
    assert s.best == 1.0
    s.mode = "min"  # unchanged: kept
    assert s.best == 1.0
    s.mode = "max"
    assert s.best == -math.inf
    s.epoch_end(1, 0.5)  # the first epoch in "max" mode improves on nothing seen in that mode
    assert s.best == 0.5 and s.reductions == []


def test_lr_find_result_is_read_only():
    net, X, y = _sine_problem()
    result = sn.lr_find(net, X, y, loss="mse", steps=20)
    with pytest.raises(AttributeError):
        result.suggestion = 1.0


def test_misuse_is_explained():
    with pytest.raises(RuntimeError, match=r"start\(base_lr"):
        S.StepLR(2).lr(0, 0)
    with pytest.raises(ValueError, match="warmup"):
        S.CosineLR(warmup=100).start(0.1, steps_per_epoch=5, epochs=10)
    with pytest.raises(ValueError, match="min_lr"):
        S.CosineLR(min_lr=1.0).start(0.1, 5, 10)
    with pytest.raises(ValueError, match="pct_start"):
        S.OneCycle(pct_start=0.05).start(0.1, steps_per_epoch=2, epochs=5)  # 0.5 steps of rise
    s = S.StepLR(2)
    s.start(0.1, 1, 1)
    with pytest.raises(ValueError, match="step"):
        s.lr(-1, 0)


# ------------------------------------------------------------------------------ lr_find
def _sine_problem():
    X, y = datasets.sine(256, noise=0.1, seed=0)
    return sn.Network.mlp(1, (32, 32), seed=0), X, y


def test_lr_find_suggests_a_rate_that_trains():
    net, X, y = _sine_problem()
    before = net.internals.params.copy()
    result = sn.lr_find(net, X, y, loss="mse", lr_min=1e-5, lr_max=10.0, steps=100)
    np.testing.assert_array_equal(net.internals.params, before)  # only a copy was trained
    assert result.stopped_reason is not None and "exceeded 4 x its best" in result.stopped_reason
    assert len(result.lrs) == len(result.losses) == len(result.smoothed) < 100
    assert 1e-5 < result.suggestion < result.best_lr
    assert set(result.suggestions) == {"valley", "steepest", "minimum"}
    assert "suggested lr" in str(result) and "valley" in str(result)
    hist = sn.Trainer(net, loss="mse", lr=result.suggestion, batch_size=32, epochs=30, seed=0).fit(X, y)
    assert hist.stopped_reason is None
    assert hist.final_loss < 0.5 * hist.epoch_loss[0]


def test_lr_find_curve_and_smoothing():
    net, X, y = _sine_problem()
    result = sn.lr_find(net, X, y, loss="mse", lr_min=1e-4, lr_max=1e-2, steps=30, beta=0.9)
    assert result.stopped_reason is None and len(result.lrs) == 30  # a gentle sweep runs to the end
    np.testing.assert_allclose(result.lrs, 1e-4 * 100 ** (np.arange(30) / 29), rtol=1e-12)
    avg, expected = 0.0, []
    for i, value in enumerate(result.losses):
        avg = 0.9 * avg + 0.1 * value
        expected.append(avg / (1 - 0.9 ** (i + 1)))
    np.testing.assert_allclose(result.smoothed, expected, rtol=1e-12)
    assert "reached lr_max without diverging" in str(result)
    steep = sn.lr_find(net, X, y, loss="mse", lr_min=1e-4, lr_max=1e-2, steps=30, beta=0.9, method="steepest")
    assert steep.suggestion == result.suggestions["steepest"] and steep.method == "steepest"


def test_lr_find_that_diverges_at_once_gives_no_suggestion():
    net, X, y = _sine_problem()
    result = sn.lr_find(net, X, y, loss="mse", lr_min=100.0, lr_max=1e6, steps=50)
    assert result.suggestion is None and result.stopped_reason
    assert "no suggestion" in str(result)


@pytest.mark.parametrize("kwargs,error,match", [
    ({"lr_min": 0}, ValueError, "lr_min"),
    ({"lr_min": 1.0, "lr_max": 0.5}, ValueError, "lr_max"),
    ({"steps": 1}, ValueError, "steps"),
    ({"beta": 1.0}, ValueError, "beta"),
    ({"divergence_factor": 1.0}, ValueError, "divergence_factor"),
    ({"method": "magic"}, ValueError, "method"),
    ({"optimizer": "rmsprop"}, ValueError, "optimizer"),
    ({"loss": "hinge"}, ValueError, "loss"),
])
def test_lr_find_bad_input(kwargs, error, match):
    net, X, y = _sine_problem()
    with pytest.raises(error, match=match):
        sn.lr_find(net, X, y, **{"loss": "mse", **kwargs})
    with pytest.raises(TypeError, match="net"):
        sn.lr_find("net", X, y)


def test_lr_find_plot():
    pytest.importorskip("matplotlib")
    net, X, y = _sine_problem()
    ax = sn.lr_find(net, X, y, loss="mse", lr_min=1e-5, steps=40).plot()
    assert ax.get_xscale() == "log" and len(ax.lines) >= 3
    import matplotlib.pyplot as plt

    plt.close(ax.figure)
    assert math.isfinite(ax.get_ylim()[1])


def test_lr_find_diverge_factor_is_a_deprecated_spelling_of_divergence_factor():
    X, y = np.linspace(-1, 1, 40).reshape(20, 2), np.linspace(0, 1, 20)[:, None]
    net = sn.Network.mlp(2, (4,), seed=0)
    new = sn.lr_find(net, X, y, loss="mse", steps=30, divergence_factor=2.0)
    with pytest.warns(DeprecationWarning, match="divergence_factor"):
        old = sn.lr_find(net, X, y, loss="mse", steps=30, diverge_factor=2.0)
    np.testing.assert_array_equal(new.losses, old.losses)
    assert new.divergence_factor == 2.0
    with pytest.warns(DeprecationWarning):
        assert old.diverge_factor == 2.0

"""ReduceLROnPlateau's rule inside the fused kernel (csrc/rate_rule.h): a fused fit with that schedule
runs in one kernel call and gives the per-op path's rates, losses, weights and schedule state bit for
bit, on the batch loop and on the scalar loop, with and without validation, diagnostics, sample
weights, pauses and divergence."""

import math

import numpy as np
import pytest
from _helpers import CountingFused

import skipnet as sn
from skipnet import _kernels as K
from skipnet import schedules as S

RULES = [{"patience": 0}, {"patience": 2, "cooldown": 1, "factor": 0.5, "min_lr": 1e-3},
         {"patience": 1, "threshold": 0.1, "threshold_mode": "abs", "mode": "max"},
         {"patience": 0, "threshold": 0.0, "factor": 0.9, "eps": 1e-3}, {"patience": 3, "cooldown": 2, "threshold": 0.05}]


def _data(n=40, features=2, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, features)), rng.normal(size=(n, 1))


def _state(schedule):
    return (schedule.current, schedule.best, schedule.num_bad_epochs, schedule.cooldown_counter,
            list(schedule.reductions))


def _fit_both(make_net, X, y, rule, fits=1, count_calls=False, fit_kwargs=None, **options):
    """Fused and per-op fits of the same start with ReduceLROnPlateau(**rule): per path (histories,
    weights, schedule state, kernel calls of the fused path)."""
    out = []
    for fused in (True, False):
        net = make_net()
        counter = CountingFused(net.internals.engine) if fused and count_calls else None
        schedule = S.ReduceLROnPlateau(**rule)
        trainer = sn.Trainer(net, loss="l1", schedule=schedule, fused=fused,
                             **{"lr": 0.05, "batch_size": 8, "epochs": 30, **options})
        histories = [trainer.fit(X, y, **(fit_kwargs or {})) for _ in range(fits)]
        out.append((histories, net.internals.params.copy(), _state(schedule),
                    counter.calls if counter is not None else None))
    return out


def _assert_same(fused, per_op):
    (histories, params, state, _), (histories_op, params_op, state_op, _) = fused, per_op
    for h, h_op in zip(histories, histories_op, strict=True):
        np.testing.assert_array_equal(h.lr, h_op.lr)
        np.testing.assert_array_equal(h.step_loss, h_op.step_loss)
        np.testing.assert_array_equal(h.epoch_loss, h_op.epoch_loss)
        np.testing.assert_array_equal(h.val_loss, h_op.val_loss)
        assert h.stopped_reason == h_op.stopped_reason
        assert [(w.kind, w.epoch, w.message) for w in h.warnings] == \
            [(w.kind, w.epoch, w.message) for w in h_op.warnings]
    np.testing.assert_array_equal(params, params_op)
    assert state == state_op


@pytest.mark.parametrize("rule", RULES, ids=repr)
@pytest.mark.parametrize("loop", ["batch", "scalar"])
def test_the_rule_in_the_kernel_gives_the_per_op_fit_in_one_call(rule, loop):
    if loop == "batch":
        X, y = _data()
        make, options = (lambda: sn.Network.mlp(2, (5, 5), seed=1)), {}
    else:  # width-1 chains with plain SGD run the register loop of scalar.h
        X, y = _data(features=1)
        make, options = sn.Network.exercise, {"batch_size": 1, "diagnose": False}
    fused, per_op = _fit_both(make, X, y, rule, count_calls=True, **options)
    _assert_same(fused, per_op)
    assert fused[3] == 1  # 30 epochs, one kernel call
    if rule == RULES[0]:
        assert len(fused[2][4]) >= 3  # the rule did lower the rate, several times


@pytest.mark.parametrize("options", [
    {"diagnose": False}, {"restore_best": True}, {"shuffle": False}, {"optimizer": "adam"},
    {"momentum": 0.9}, {"diagnose_every": 1}, {"batch_size": 40}, {"batch_size": 7}], ids=repr)
def test_the_rule_in_the_kernel_with_other_options(options):
    X, y = _data()
    _assert_same(*_fit_both(lambda: sn.Network.mlp(2, (5, 5), skip="first-to-output", seed=2), X, y,
                            RULES[1], **options))


def test_the_rule_reads_the_validation_loss_computed_in_the_kernel():
    X, y = _data()
    Xv, yv = _data(17, seed=5)
    fused, per_op = _fit_both(lambda: sn.Network.mlp(2, (5, 5), seed=1), X, y, {"patience": 0, "threshold": 0.01},
                              count_calls=True, fit_kwargs={"validation": (Xv, yv)})
    _assert_same(fused, per_op)
    assert fused[3] == 1 and fused[2][4]  # one call, and the rule lowered the rate


def test_the_rule_with_sample_weights_and_float32():
    X, y = _data()
    weights = np.random.default_rng(3).uniform(0, 2, size=len(X))
    fused, per_op = _fit_both(lambda: sn.Network.mlp(2, (4, 4), dtype="float32", seed=4), X, y, RULES[0],
                              fit_kwargs={"sample_weight": weights})
    _assert_same(fused, per_op)


@pytest.mark.parametrize("loop", ["batch", "scalar"])
def test_the_state_carries_over_to_the_next_fit(loop):
    X, y = _data(features=2 if loop == "batch" else 1)
    make = (lambda: sn.Network.mlp(2, (5, 5), seed=1)) if loop == "batch" else sn.Network.exercise
    options = {"epochs": 7} if loop == "batch" else {"epochs": 7, "batch_size": 1, "diagnose": False}
    fused, per_op = _fit_both(make, X, y, RULES[4], fits=3, **options)
    _assert_same(fused, per_op)


def test_a_diverging_fit_stops_where_the_per_op_path_does():
    X, y = _data()
    y = y * 1e3
    fused, per_op = _fit_both(lambda: sn.Network.mlp(2, (8, 8), seed=0), X, y, {"patience": 0, "factor": 0.99},
                              lr=5.0, divergence_factor=2.0, optimizer="sgd", momentum=0.9)
    _assert_same(fused, per_op)
    history = fused[0][0]
    assert history.stopped_reason is not None and history.epochs_run < 30, history.stopped_reason
    assert any(w.kind == "divergence" for w in history.warnings)


def test_paused_calls_resume_the_rule_where_it_was(monkeypatch):
    """A kernel call that pauses (Ctrl-C is looked for between calls) hands the rule's state back
    mid-fit; the next call goes on from it."""
    from skipnet import trainer as T

    monkeypatch.setattr(T, "PAUSE_SECONDS", 1e-9)  # every call pauses after its first clock reading
    X, y = _data(200)
    fused, per_op = _fit_both(lambda: sn.Network.mlp(2, (16, 16), seed=1), X, y, RULES[0], count_calls=True)
    _assert_same(fused, per_op)
    assert fused[3] > 1


def test_callbacks_take_the_rule_back_to_python():
    """A callback ends every kernel call at its epoch: the schedule is fed in Python, the same bits."""
    X, y = _data()
    seen = []
    fused, per_op = _fit_both(lambda: sn.Network.mlp(2, (5, 5), seed=1), X, y, RULES[0], count_calls=True,
                              callbacks=[lambda trainer, epoch, history: seen.append(epoch)])
    _assert_same(fused, per_op)
    assert fused[3] == 30 and seen == list(range(30)) * 2  # a call per epoch; both fits saw every epoch
    assert fused[2][4]  # and the rule, fed in Python, lowered the rate


def test_rule_state_and_take_rule_state():
    s = S.ReduceLROnPlateau(mode="max", factor=0.5, patience=2, threshold=0.01, threshold_mode="abs",
                            cooldown=1, min_lr=1e-4, eps=1e-9)
    with pytest.raises(RuntimeError, match="start"):
        s.rule_state()
    with pytest.raises(RuntimeError, match="start"):
        s.take_rule_state((0.1, 1.0, 0, 0), [])
    s.start(0.2, 10, 5)
    assert s.rule_state() == ("max", "abs", 0.01, 0.5, 1e-4, 1e-9, 2, 1, 0.2, -math.inf, 0, 0)
    s.take_rule_state((0.1, 3.0, 1, 0), [(4, 0.1)])
    assert _state(s) == (0.1, 3.0, 1, 0, [(4, 0.1)])
    for state, reductions, error in [((0.1, math.nan, 0, 0), [], ValueError), ((-1.0, 1.0, 0, 0), [], ValueError),
                                     ((0.1, 1.0, -1, 0), [], ValueError), ((0.1, 1.0, 0), [], ValueError),
                                     ((0.1, 1.0, 0, 0), [(1,)], TypeError)]:
        with pytest.raises(error):
            s.take_rule_state(state, reductions)
        assert _state(s) == (0.1, 3.0, 1, 0, [(4, 0.1)])  # refused: nothing changed


def test_the_kernel_refuses_a_bad_rule():
    net = sn.Network.mlp(2, (3,), seed=0)
    X, y = _data(8)
    good = ("min", "rel", 1e-4, 0.1, 0.0, 1e-8, 2, 0, 0.1, math.inf, 0, 0, 8.0, np.empty(4))
    with net.internals.engine.fused(4) as fused:
        fused.bind(X, y, None, np.zeros_like(net.internals.params), None, "l1", "sgd")
        for index, value, match in [(0, "down", "mode"), (1, "relative", "threshold_mode"),
                                    (6, -1, "patience"), (7, K.MAX_RULE_COUNT + 1, "patience"),
                                    (3, 1.0, "factor"), (12, 0.0, "weight_total"), (9, math.nan, "NaN"),
                                    (13, np.empty(1), "reduced"), (13, np.empty(4, np.float32), "reduced")]:
            bad = list(good)
            bad[index] = value
            with pytest.raises(ValueError, match=match):
                fused.run(None, np.array([0.1]), np.empty(9), np.empty(4), 8, 2, 0, None,
                          reduce_on_plateau=tuple(bad))
        done, status, *_ = fused.run(None, np.array([0.1]), np.empty(9), np.empty(4), 8, 2, 0, None,
                                     reduce_on_plateau=good)
        assert (done, status) == (8, "ok") and len(fused.rule_state) == 4

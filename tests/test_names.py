"""Public names only grow: old spellings keep working, identically, and warn (FutureWarning) naming the
new one. Covers the arguments past the sixth passed by position, sweep's backend= (parallel_backend=),
skipnet sweep --backend (--parallel-backend), the per-layer records of GradientFlow and DeadUnits
(by_layer, by_skip) and the seeds' defaults."""

from __future__ import annotations

import dataclasses
import inspect
import warnings
from pathlib import Path

import numpy as np
import pytest

import skipnet as sn
from skipnet import diagnostics as D
from skipnet import schedules as S
from skipnet._deprecation import keyword_from, renamed_keywords
from skipnet.cli import main
from skipnet.sweep import MLPFactory

HERE = Path(__file__).resolve()
X = np.linspace(-1, 1, 24).reshape(12, 2)
Y = (X[:, :1] * X[:, 1:] > 0).astype(float)


def _silently(call):
    """call() with every warning an error: the spelling it uses is not deprecated."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return call()


def _deprecated(call, *names):
    """call() under pytest.warns: one FutureWarning naming each of ``names`` and the keyword to use,
    attributed to the caller's line (this file), not to skipnet's wrapper."""
    with pytest.warns(FutureWarning) as record:
        result = call()
    futures = [w for w in record if issubclass(w.category, FutureWarning)]
    assert len(futures) == 1, [str(w.message) for w in futures]
    message = str(futures[0].message)
    for name in names:
        assert f"{name}=..." in message, message
    assert Path(futures[0].filename).resolve() == HERE, futures[0].filename
    return result


def _history_arrays(hist):
    return {name: getattr(hist, name) for name in ("step_loss", "epoch_loss", "val_loss", "lr")}


def _assert_same_fit(a, b):
    (hist_a, net_a), (hist_b, net_b) = a, b
    for name, value in _history_arrays(hist_a).items():
        np.testing.assert_array_equal(value, _history_arrays(hist_b)[name], err_msg=name)  # bit for bit
    assert (hist_a.stopped_reason, hist_a.epochs_run) == (hist_b.stopped_reason, hist_b.epochs_run)
    for name, value in net_a.parameters().items():
        np.testing.assert_array_equal(value, net_b.parameters()[name], err_msg=name)


# ------------------------------------------------------------------------------ Trainer by position
def _fit(make_trainer):
    net = sn.Network.mlp(2, (4, 4), skip="first-to-output", seed=3)
    return make_trainer(net).fit(X, Y), net


def test_trainer_keeps_six_positional_parameters_silent():
    by_keyword = _silently(lambda: _fit(lambda net: sn.Trainer(
        net, loss="bce", optimizer="sgd", lr=0.3, momentum=0.5, weight_decay=0.01, batch_size=5, epochs=4)))
    by_position = _silently(lambda: _fit(lambda net: sn.Trainer(
        net, "bce", "sgd", 0.3, 0.5, 0.01, batch_size=5, epochs=4)))
    _assert_same_fit(by_position, by_keyword)


def test_trainer_seventh_and_later_positional_warn_and_train_identically():
    by_keyword = _silently(lambda: _fit(lambda net: sn.Trainer(
        net, loss="bce", optimizer="sgd", lr=0.3, momentum=0.5, weight_decay=0.01, batch_size=5, epochs=4,
        shuffle=True, schedule=S.StepLR(2, gamma=0.5), seed=7)))
    by_position = _deprecated(lambda: _fit(lambda net: sn.Trainer(
        net, "bce", "sgd", 0.3, 0.5, 0.01, 5, 4, True, S.StepLR(2, gamma=0.5), 7)),
        "batch_size", "epochs", "shuffle", "schedule", "seed")
    _assert_same_fit(by_position, by_keyword)
    net = sn.Network.mlp(2, (3,), seed=0)
    only_batch = _deprecated(lambda: sn.Trainer(net, "l1", "sgd", 0.1, 0.0, 0.0, 8), "batch_size")
    assert only_batch.batch_size == 8 and only_batch.epochs == 20


def test_the_warning_names_the_class_and_only_the_parameters_given():
    net = sn.Network.mlp(2, (3,), seed=0)
    with pytest.warns(FutureWarning, match=r"^Trainer: passing batch_size, epochs positionally is "
                                           r"deprecated; pass batch_size=\.\.\., epochs=\.\.\."):
        sn.Trainer(net, "l1", "sgd", 0.1, 0.0, 0.0, 8, 2)


def test_signatures_are_unchanged_by_the_deprecation():
    """Only the warning is new: the parameters are still positional-or-keyword, as documented."""
    kinds = {name: p.kind for name, p in inspect.signature(sn.Trainer).parameters.items()}
    assert list(kinds)[:11] == ["net", "loss", "optimizer", "lr", "momentum", "weight_decay", "batch_size",
                                "epochs", "shuffle", "schedule", "seed"]
    assert {kinds[name] for name in list(kinds)[:11]} == {inspect.Parameter.POSITIONAL_OR_KEYWORD}
    assert "init" in inspect.signature(sn.Network).parameters
    assert list(inspect.signature(MLPFactory).parameters) == ["n_inputs", "hidden", "n_outputs", "skip",
                                                              "bias", "dtype", "backend", "init"]


def test_too_many_positional_arguments_is_the_call_s_own_type_error():
    net = sn.Network.mlp(2, (3,), seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(TypeError):
            sn.Trainer(net, "l1", "sgd", 0.1, 0.0, 0.0, 8, 2, True, None, 0, "extra")


# ------------------------------------------------------------------------------ the other callables
def _layers():
    return [sn.Dense(3), sn.Dense(1, activation="identity")]


def _net_parameters(net):
    return net.parameters(), net.init, net.seed, net.backend


def _same(a, b):
    np.testing.assert_equal(a, b)


def _started_rates(schedule):
    schedule.start(0.1, 10, 4)
    return [schedule.lr(step, step // 10) for step in range(40)]


# (label, keyword call, positional call, names warned, comparison of the results)
CALLS = [
    ("Network init",
     lambda: sn.Network(2, _layers(), (), "float64", 5, "numpy", init="he"),
     lambda: sn.Network(2, _layers(), (), "float64", 5, "numpy", "he"), ["init"],
     lambda a, b: _same(_net_parameters(a), _net_parameters(b))),
    ("Network.mlp seed, backend, init",
     lambda: sn.Network.mlp(2, (4,), 1, None, True, "float32", seed=2, backend="numpy", init="he"),
     lambda: sn.Network.mlp(2, (4,), 1, None, True, "float32", 2, "numpy", "he"), ["seed", "backend", "init"],
     lambda a, b: _same(_net_parameters(a), _net_parameters(b))),
    ("MLPFactory backend, init",
     lambda: MLPFactory(2, (4,), 1, None, True, "float64", backend="numpy", init="he"),
     lambda: MLPFactory(2, (4,), 1, None, True, "float64", "numpy", "he"), ["backend", "init"],
     lambda a, b: (_same(a, b), _same(_net_parameters(a(3)), _net_parameters(b(3))))),
    ("lr_find steps",
     lambda: sn.lr_find(sn.Network.mlp(2, (4,), seed=1), X, Y, "bce", 1e-4, 1.0, steps=20),
     lambda: sn.lr_find(sn.Network.mlp(2, (4,), seed=1), X, Y, "bce", 1e-4, 1.0, 20), ["steps"],
     lambda a, b: _same((a.lrs, a.losses, a.suggestion), (b.lrs, b.losses, b.suggestion))),
    ("OneCycle three_phase",
     lambda: S.OneCycle(0.5, 40, 0.3, "linear", 10.0, 100.0, three_phase=True),
     lambda: S.OneCycle(0.5, 40, 0.3, "linear", 10.0, 100.0, True), ["three_phase"],
     lambda a, b: _same(_started_rates(a), _started_rates(b))),
    ("ReduceLROnPlateau min_lr, eps",
     lambda: S.ReduceLROnPlateau("min", 0.5, 1, 1e-3, "abs", 1, min_lr=0.01, eps=1e-6),
     lambda: S.ReduceLROnPlateau("min", 0.5, 1, 1e-3, "abs", 1, 0.01, 1e-6), ["min_lr", "eps"],
     lambda a, b: _same(repr(a), repr(b))),
    ("explain_plateau rtol",
     lambda: D.explain_plateau(sn.Network.exercise(), [[1.0]], [[-3.0]], "l1", [3.0] * 8, 5, rtol=1e-3),
     lambda: D.explain_plateau(sn.Network.exercise(), [[1.0]], [[-3.0]], "l1", [3.0] * 8, 5, 1e-3), ["rtol"],
     lambda a, b: _same((a.start, a.level, a.cause), (b.start, b.level, b.cause))),
    ("TrainingMonitor rtol, explain_later",
     lambda: D.TrainingMonitor(sn.Network.exercise(), X[:, :1], Y, "l1", 5, 5, rtol=1e-2, explain_later=True),
     lambda: D.TrainingMonitor(sn.Network.exercise(), X[:, :1], Y, "l1", 5, 5, 1e-2, True),
     ["rtol", "explain_later"], lambda a, b: _same((a.rtol, a.explain_later), (b.rtol, b.explain_later))),
]


@pytest.mark.parametrize("label, by_keyword, by_position, names, compare", CALLS, ids=[c[0] for c in CALLS])
def test_positional_past_the_sixth_warns_and_gives_the_same_result(label, by_keyword, by_position, names,
                                                                     compare):
    expected = _silently(by_keyword)
    got = _deprecated(by_position, *names)
    compare(got, expected)


def test_keyword_from_refuses_a_parameter_the_function_lacks():
    with pytest.raises(TypeError, match="no positional parameter 'c'"):
        keyword_from("c")(lambda a, b: None)
    with pytest.raises(TypeError, match="does not fit"):
        renamed_keywords(old="missing")(lambda a, new=1: None)


# ------------------------------------------------------------------------------ sweep's parallel backend
def _sweep(**kwargs):
    return sn.sweep(MLPFactory(n_inputs=2, hidden=(3, 3), skip="first-to-output"), X, Y, seeds=[0, 1],
                    lrs=[0.1], loss="bce", epochs=3, batch_size=4, as_frame=False, keep_history=True,
                    **kwargs)


def _same_rows(rows, expected):
    for got, want in zip(rows, expected, strict=True):
        _same(*({k: v for k, v in row.items() if k != "history"} for row in (got, want)))
        _same(_history_arrays(got["history"]), _history_arrays(want["history"]))


def test_sweep_backend_is_a_deprecated_alias_of_parallel_backend():
    expected = _silently(lambda: _sweep(parallel_backend="serial"))
    rows = _deprecated(lambda: _sweep(backend="serial"), "parallel_backend")
    _same_rows(rows, expected)
    threaded = _deprecated(lambda: _sweep(backend="threading", n_jobs=2), "parallel_backend")
    _same_rows(threaded, expected)
    assert "parallel_backend" in inspect.signature(sn.sweep).parameters
    assert "backend" not in inspect.signature(sn.sweep).parameters


def test_sweep_refuses_both_spellings_and_bad_values_under_either():
    with pytest.raises(TypeError, match="parallel_backend= or its deprecated spelling backend=, not both"):
        _sweep(parallel_backend="serial", backend="serial")
    with pytest.raises(ValueError, match="parallel_backend must be one of"):
        _sweep(parallel_backend="multiprocessing")
    with pytest.warns(FutureWarning), pytest.raises(ValueError, match="parallel_backend must be one of"):
        _sweep(backend="multiprocessing")


def test_cli_sweep_backend_is_a_deprecated_alias(tmp_path, capsys):
    args = ["sweep", "--dataset", "xor", "--n-samples", "24", "--hidden", "3,3", "--seeds", "2",
            "--lrs", "0.1", "--epochs", "2", "--quiet", "--out"]
    assert main([*args, str(tmp_path / "new.csv"), "--parallel-backend", "serial"]) == 0
    new = capsys.readouterr()
    assert "deprecated" not in new.err
    assert main([*args, str(tmp_path / "old.csv"), "--backend", "serial"]) == 0
    old = capsys.readouterr()
    assert "warning: option --backend is deprecated; use --parallel-backend" in old.err
    assert old.out.replace("old.csv", "new.csv") == new.out and "backend serial" in old.out
    assert (tmp_path / "old.csv").read_text() == (tmp_path / "new.csv").read_text()
    with pytest.raises(SystemExit) as stop:  # argparse's own error: exit status 2, one line
        main([*args, str(tmp_path / "both.csv"), "--backend", "serial", "--parallel-backend", "serial"])
    assert stop.value.code == 2 and not (tmp_path / "both.csv").exists()
    assert "--parallel-backend: not allowed with argument --backend" in capsys.readouterr().err


# ------------------------------------------------------------------------------ per-layer records
def _stuck_exercise():
    net = sn.Network.exercise()
    net.trace([[1.0]], [[-3.0]], loss="l1").apply(lr=1.0)  # both ReLUs dead after the hand step
    return net


def test_gradient_flow_by_layer_holds_the_rows_as_frozen_records():
    net = sn.Network.mlp(2, (4, 4), skip="first-to-output", seed=0)
    net2 = sn.Network(2, [sn.Dense(3), sn.Dense(3), sn.Dense(1, "identity", bias=False)],
                      [sn.Skip(-1, 1), sn.Skip(0, 2, identity=False)], seed=1)
    for network in (net, net2):
        flow = D.gradient_flow(network, X, Y, "mse")
        assert list(flow.by_layer) == list(range(len(network.layers)))
        for k, record in flow.by_layer.items():
            assert isinstance(record, D.LayerGradient)
            assert dataclasses.asdict(record) == flow.layers[k]  # the same numbers as the old rows
        assert list(flow.by_skip) == [row["skip"] for row in flow.skips]
        for i, record in flow.by_skip.items():
            assert isinstance(record, D.SkipGradient)
            assert dataclasses.asdict(record) == next(row for row in flow.skips if row["skip"] == i)
    grads = net.gradients(X, Y, loss="mse")[1]
    flow = D.gradient_flow(net, X, Y, "mse")
    assert flow.by_layer[1].weight_norm == pytest.approx(np.linalg.norm(grads["layers.1.weight"]))
    assert flow.by_layer[2].bias_norm == pytest.approx(np.linalg.norm(grads["layers.2.bias"]))
    assert flow.by_skip[0].weight_norm == pytest.approx(np.linalg.norm(grads["skips.0.weight"]))
    assert (flow.by_skip[0].src, flow.by_skip[0].dst) == (0, 2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        flow.by_layer[0].weight_norm = 0.0
    no_bias = D.gradient_flow(sn.Network.exercise(), [[1.0]], [[-3.0]], "l1")
    assert no_bias.by_layer[0] == D.LayerGradient(0, 0.75, None, 0.75)  # the exercise's numbers


def test_old_forms_are_unchanged_and_silent():
    flow = _silently(lambda: D.gradient_flow(sn.Network.exercise(), [[1.0]], [[-3.0]], "l1"))
    rows = _silently(lambda: flow.layers)
    assert isinstance(rows, list) and all(isinstance(row, dict) for row in rows)
    assert list(rows[0]) == ["layer", "weight_norm", "bias_norm", "signal_norm"]
    assert _silently(lambda: flow.skips) == [{"skip": 0, "src": 0, "dst": 2, "weight_norm": 0.5}]
    dead = _silently(lambda: D.dead_units(_stuck_exercise(), [[1.0]]))
    assert isinstance(dead.layers, dict) and dead.layers[0].max_preactivation[0] == -0.25


def test_dead_units_and_gradient_flow_join_on_the_layer():
    net = _stuck_exercise()
    dead = D.dead_units(net, [[1.0]])
    flow = D.gradient_flow(net, [[1.0]], [[-3.0]], "l1")
    assert dead.by_layer is dead.layers
    assert set(dead.by_layer) <= set(flow.by_layer)  # hidden ReLU layers among all layers
    for k, record in dead.by_layer.items():
        assert isinstance(record, D.LayerDeadUnits) and record.layer == k
        assert record.fraction == 1.0 and flow.by_layer[k].weight_norm == 0.0  # dead: nothing flows


# ------------------------------------------------------------------------------ seeds
def test_seed_defaults_differ_on_purpose():
    """Network: None (fresh entropy); Trainer: 0 (the shuffling reproducible by default)."""
    assert inspect.signature(sn.Network).parameters["seed"].default is None
    assert inspect.signature(sn.Network.mlp).parameters["seed"].default is None
    assert inspect.signature(sn.Trainer).parameters["seed"].default == 0
    assert sn.Network.mlp(2, (3,)).seed is None
    first = _fit(lambda net: sn.Trainer(net, loss="bce", batch_size=5, epochs=3))
    again = _fit(lambda net: sn.Trainer(net, loss="bce", batch_size=5, epochs=3))
    _assert_same_fit(first, again)

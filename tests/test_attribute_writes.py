"""Values assigned after construction: every public data attribute of Network, Trainer, the optimizers,
the schedules, the estimators (before and after fit), a Trace and the diagnostics' per-layer records
gets hostile values, then the public methods run; each failure must be a clean
ValueError/TypeError/AttributeError/RuntimeError with a message, never a crash, another exception or a
non-finite result. The probes run in subprocesses (see _attribute_harness); add a kind of object by
adding a Case to CASES and its name to a test below."""

from __future__ import annotations

import copy
import dataclasses
import functools
import math

import numpy as np
import pytest
from _attribute_harness import Case, public_data_attributes, run_cases

import skipnet as sn
from skipnet import exercises
from skipnet import schedules as S

# ------------------------------------------------------------------------------------------ schedules
_SCHEDULES = {
    "StepLR": lambda: S.StepLR(2, gamma=0.5),
    "ExponentialLR": lambda: S.ExponentialLR(0.9),
    "CosineLR": lambda: S.CosineLR(warmup=3, min_lr=0.001),
    "OneCycle": lambda: S.OneCycle(pct_start=0.3, three_phase=True),
    "ReduceLROnPlateau": lambda: S.ReduceLROnPlateau(patience=0, cooldown=1, min_lr=1e-4),
}
_OTHERS = {  # a differently configured instance of each (its attribute values are probed too)
    "StepLR": lambda: S.StepLR(7, gamma=1.0),
    "ExponentialLR": lambda: S.ExponentialLR(0.5),
    "CosineLR": lambda: S.CosineLR(warmup=10, total=20, per="epoch"),
    "OneCycle": lambda: S.OneCycle(max_lr=2.0, total=100, anneal="linear"),
    "ReduceLROnPlateau": lambda: _started(S.ReduceLROnPlateau(mode="max", threshold_mode="abs")),
}


def _started(schedule):
    schedule.start(0.1, 10, 5)
    return schedule


def _rate_is_sane(schedule, step, epoch):
    rate = schedule.lr(step, epoch)
    assert isinstance(rate, float) and math.isfinite(rate) and rate >= 0, f"lr({step}, {epoch}) = {rate!r}"


def _train_with(schedule):
    X = np.linspace(-1, 1, 16).reshape(8, 2)
    net = sn.Network.mlp(2, (3,), seed=0)
    hist = sn.Trainer(net, loss="mse", lr=0.05, batch_size=4, epochs=2, schedule=schedule).fit(X, X[:, :1])
    assert np.isfinite(hist.lr).all() and (hist.lr >= 0).all(), hist.lr


SCHEDULE_CALLS = [
    ("lr before start", lambda s: _rate_is_sane(s, 0, 0)),
    ("start", lambda s: s.start(0.1, 10, 5)),
    ("lr", lambda s: _rate_is_sane(s, 7, 0)),
    ("epoch_end", lambda s: s.epoch_end(0, 1.0)),
    ("epoch_end NaN", lambda s: s.epoch_end(1, math.nan)),
    ("lr later", lambda s: _rate_is_sane(s, 49, 4)),
    ("lr past the plan", lambda s: _rate_is_sane(s, 10**6, 10**5)),
    ("repr", repr),
    ("deepcopy", copy.deepcopy),
    ("Trainer.fit", _train_with),
]

CASES: dict[str, Case] = {}
for _name, _make in _SCHEDULES.items():
    CASES[_name] = Case(make=_make, calls=SCHEDULE_CALLS, other=_OTHERS[_name])
    CASES[f"{_name} started"] = Case(make=lambda make=_make: _started(make()), calls=SCHEDULE_CALLS,
                                     other=_OTHERS[_name])


# ------------------------------------------------------------------------------------------ estimators
def _data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(24, 2))
    return X, X[:, 0] - X[:, 1], (X[:, 0] > 0).astype(int)


# tol and n_iter_no_change stop every fit after two epochs, so a huge epochs value cannot hang a probe
_FAST = {"hidden_layer_sizes": (3, 3), "epochs": 3, "n_iter_no_change": 1, "tol": 1e300, "random_state": 0,
         "batch_size": 8}


def _regressor():
    from skipnet.sklearn import SkipNetRegressor

    return SkipNetRegressor(**_FAST)


def _classifier():
    from skipnet.sklearn import SkipNetClassifier

    return SkipNetClassifier(**_FAST)


def _fitted(kind: str):
    """A freshly fitted estimator (a fit of this size takes less time than a deep copy of one)."""
    X, y, labels = _data()
    return _regressor().fit(X, y) if kind == "regressor" else _classifier().fit(X, labels)


def _describes_its_network(estimator):
    """After a successful (partial) fit, network_ is the network the parameters ask for."""
    net = estimator.network_
    sizes = estimator.hidden_layer_sizes
    sizes = (sizes,) if isinstance(sizes, int) else tuple(sizes)
    assert tuple(layer.units for layer in net.layers[:-1]) == sizes, (net, sizes)
    assert net.dtype == np.dtype(estimator.dtype) and net.backend == estimator.backend, net


def _other(kind: str):
    """Another fitted estimator: other features (3), outputs (2 targets, 3 classes) and parameters."""
    from skipnet.sklearn import SkipNetClassifier, SkipNetRegressor

    rng = np.random.default_rng(1)
    X = rng.normal(size=(30, 3))
    options = {"hidden_layer_sizes": (4,), "skip": None, "optimizer": "sgd", "lr": 0.01, "epochs": 2,
               "dtype": "float32", "schedule": S.StepLR(1), "random_state": 1, "backend": "numpy"}
    if kind == "regressor":
        return SkipNetRegressor(loss="l1", **options).fit(X, X[:, :2])
    return SkipNetClassifier(**options).fit(X, np.arange(30) % 3)


def _finite(values, rows):
    values = np.asarray(values)
    assert values.shape[0] == rows, values.shape
    if values.dtype.kind == "f":
        assert np.isfinite(values).all(), values


def _estimator_calls(kind: str):
    X, y, labels = _data()
    target = y if kind == "regressor" else labels
    calls = [("predict", lambda e: _finite(e.predict(X), len(X))),
             ("score", lambda e: _finite([e.score(X, target)], 1)),
             ("partial_fit", lambda e: _describes_its_network(
                 e.partial_fit(X, target, **({} if kind == "regressor" else {"classes": [0, 1]}))))]
    if kind == "classifier":
        calls += [("predict_proba", lambda e: _finite(e.predict_proba(X), len(X))),
                  ("predict_log_proba", lambda e: e.predict_log_proba(X)),
                  ("decision_function", lambda e: _finite(e.decision_function(X), len(X)))]
    return calls + [("fit", lambda e: _describes_its_network(e.fit(X, target))),
                    ("predict after fit", lambda e: _finite(e.predict(X), len(X))),
                    ("get_params", lambda e: e.get_params()), ("repr", repr)]


def _estimator_attributes(estimator) -> list[str]:
    """Public data attributes with the constructor parameters (scikit-learn hides nothing, but a
    parameter equal to None still counts)."""
    return sorted(set(public_data_attributes(estimator)) | set(estimator.get_params()))


for _kind, _make_unfitted in (("regressor", _regressor), ("classifier", _classifier)):
    CASES[f"{_kind} unfitted"] = Case(make=_make_unfitted, calls=_estimator_calls(_kind),
                                      attributes=_estimator_attributes, other=functools.partial(_other, _kind))
    CASES[f"{_kind} fitted"] = Case(make=functools.partial(_fitted, _kind),
                                    calls=_estimator_calls(_kind), attributes=_estimator_attributes,
                                    other=functools.partial(_other, _kind))


# ------------------------------------------------------------------------------------------ traces
def _trace():
    return sn.Network.exercise().trace([[1.0], [2.0]], [[-3.0], [0.5]], loss="l1")


def _applied(trace, lr):
    new = trace.apply(lr)
    assert all(np.isfinite(value).all() for value in new.values()), new


CASES["Trace"] = Case(make=_trace, other=lambda: sn.Network.mlp(2, (3, 3), n_outputs=2).trace(
    [[1.0, 2.0]], [1], loss="cross_entropy"), calls=[
    ("str", str), ("table", lambda t: t.table), ("repr", repr), ("all_gradients_zero", lambda t: t.all_gradients_zero),
    ("apply", lambda t: _applied(t, 0.1)), ("str after apply", str), ("apply huge", lambda t: _applied(t, 1e308))])


# ------------------------------------------------------------------------------------------ networks, trainers, optimizers
def _xy(n_inputs=2, n=12):
    X = np.linspace(-1, 1, n * n_inputs).reshape(n, n_inputs)
    return X, X[:, :1] * 0.5


def _network():
    return sn.Network.mlp(2, (4, 3), skip="first-to-output", seed=0)


def _other_network():  # another architecture: other widths, depth, outputs, dtype, backend
    return sn.Network.mlp(5, (7,), n_outputs=3, seed=1, dtype="float32", backend="numpy")


def _predicts(net):
    X, _ = _xy()
    out = net.predict(X)
    assert out.shape == (12, 1) and np.isfinite(out).all(), out


def _saves(net):
    import tempfile

    with tempfile.TemporaryDirectory() as folder:  # never a path the probe was given
        path = net.save(f"{folder}/m.safetensors")
        back = sn.Network.load(path)
        np.testing.assert_array_equal(back.predict(_xy()[0]), net.predict(_xy()[0]))


def _fits(trainer):
    X, y = _xy()
    hist = trainer.fit(X, y)
    assert np.isfinite(hist.step_loss).all() or hist.stopped_reason, hist
    _predicts(trainer.net)


NETWORK_CALLS = [
    ("predict", _predicts), ("gradients", lambda n: n.gradients(*_xy())),
    ("trace", lambda n: str(n.trace(_xy()[0][:1], _xy()[1][:1]))),
    ("parameters", lambda n: n.parameters()), ("copy", lambda n: _predicts(n.copy())), ("save/load", _saves),
    ("fit", lambda n: _fits(sn.Trainer(n, loss="mse", epochs=2, batch_size=5))),
    ("fit per-op", lambda n: _fits(sn.Trainer(n, loss="mse", epochs=2, batch_size=5, fused=False))),
    ("dead_units", lambda n: sn.diagnostics.dead_units(n, _xy()[0])), ("repr", repr),
    ("deepcopy", lambda n: _predicts(copy.deepcopy(n))),
]
CASES["Network"] = Case(make=_network, calls=NETWORK_CALLS, other=_other_network)


def _trainer(optimizer="adam", fused=True):
    # the callback ends every fit after three epochs, so a huge epochs value cannot hang a probe
    return sn.Trainer(_network(), loss="mse", optimizer=optimizer, lr=0.05, batch_size=5, epochs=2,
                      momentum=0.5 if optimizer == "sgd" else 0.0, fused=fused,
                      callbacks=[lambda trainer, epoch, history: epoch >= 2])


def _other_trainer():
    net = _other_network()
    return sn.Trainer(net, loss="cross_entropy", optimizer="sgd", lr=1.0, batch_size=2, epochs=1,
                      schedule=S.StepLR(1), seed=None, callbacks=[lambda t, e, h: False])


def _step_then_predict(optimizer):
    """A step's flags report a non-finite update, and a caller heeds them; unreported, every parameter
    is finite (its outputs may still overflow for absurd settings such as weight_decay = 1e308)."""
    if optimizer.step(0.1).nonfinite:
        raise RuntimeError("the step reported a non-finite parameter")
    assert np.isfinite(optimizer.net.internals.params).all()
    assert optimizer.net.predict(_xy()[0]).shape == (12, 1)


TRAINER_CALLS = [("fit", _fits), ("fit again", _fits), ("repr", repr), ("predict", lambda t: _predicts(t.net))]
for _opt in ("sgd", "adam"):
    for _fused in (True, False):
        CASES[f"Trainer {_opt}{'' if _fused else ' per-op'}"] = Case(
            make=functools.partial(_trainer, _opt, _fused), calls=TRAINER_CALLS, other=_other_trainer)
    CASES[f"optimizer {_opt}"] = Case(
        make=lambda opt=_opt: _trainer(opt).optimizer, other=lambda: _other_trainer().optimizer,
        calls=[("step, then predict", _step_then_predict), ("reset", lambda o: o.reset()),
               ("is_idle", lambda o: o.is_idle())])


CASES["Trace views"] = Case(make=_trace, calls=[("svg", lambda t: t.svg()), ("html", lambda t: t._repr_html_())])


# ------------------------------------------------------------------------------------------ exercises
CASES["Exercise"] = Case(make=exercises.seed_exercise, other=lambda: exercises.generate(seed=3), calls=[
    ("worksheet", lambda e: e.worksheet()), ("solution", lambda e: e.solution()),
    ("check", lambda e: str(exercises.check(e, {"z0": "0.5"}))), ("to_json", lambda e: e.to_json())])


# ------------------------------------------------------------------------------------------ callbacks
def _fit_with(callback, validation=True):
    X = np.linspace(-1, 1, 32).reshape(16, 2)
    net = sn.Network.mlp(2, (3, 3), skip="first-to-output", seed=0)
    hist = sn.Trainer(net, loss="mse", lr=0.05, batch_size=4, epochs=4, callbacks=[callback]).fit(
        X, X[:, :1], validation=(X, X[:, :1]) if validation else None)
    assert np.isfinite(net.predict(X)).all() and hist.epochs_run >= 1, hist


CALLBACK_CALLS = [("repr", repr), ("deepcopy", copy.deepcopy), ("Trainer.fit", _fit_with),
                  ("Trainer.fit without validation", lambda cb: _fit_with(cb, validation=False))]
CASES["EarlyStopping"] = Case(make=lambda: sn.EarlyStopping(patience=1), calls=CALLBACK_CALLS,
                              other=lambda: sn.EarlyStopping("loss", patience=3, min_delta=0.5, restore_best=False))


def _checkpoint():
    import tempfile
    return sn.ModelCheckpoint(tempfile.mkdtemp() + "/m.safetensors", save_best_only=False)


# the path is probed by test_callbacks (a hostile path here would write into the working folder)
CASES["ModelCheckpoint"] = Case(make=_checkpoint, calls=CALLBACK_CALLS,
                                attributes=lambda cb: [a for a in public_data_attributes(cb) if a != "path"],
                                other=lambda: sn.ModelCheckpoint("other.safetensors", monitor="loss"))


# ------------------------------------------------------------------------------ diagnostics records
def _flow():
    net = sn.Network.mlp(2, (3, 3), skip="first-to-output", seed=0)
    return sn.diagnostics.gradient_flow(net, *_xy())


def _records_agree(record):
    """A record is frozen: whatever was assigned, it still holds the numbers gradient_flow gave it."""
    fresh = (_flow().by_layer[0] if isinstance(record, sn.diagnostics.LayerGradient) else _flow().by_skip[0])
    assert record == fresh, (record, fresh)


RECORD_CALLS = [("repr", repr), ("asdict", dataclasses.asdict), ("hash", hash), ("equal", _records_agree)]
CASES["LayerGradient"] = Case(make=lambda: _flow().by_layer[0], calls=RECORD_CALLS,
                              other=lambda: _flow().by_layer[2])
CASES["SkipGradient"] = Case(make=lambda: _flow().by_skip[0], calls=RECORD_CALLS,
                             other=lambda: sn.diagnostics.gradient_flow(
                                 sn.Network.exercise(), [[1.0]], [[-3.0]]).by_skip[0])


# ------------------------------------------------------------------------ the training monitor
def _monitor_data(n=16):
    X = np.linspace(-1, 1, 2 * n).reshape(n, 2)
    return X, np.abs(X[:, :1]) - 0.5


def _monitor(explain_later=False, **settings):
    net = sn.Network.mlp(2, (4, 3), skip="first-to-output", seed=0)
    weight, bias = net.parameters()["layers.0.weight"], net.parameters()["layers.0.bias"]
    weight[1], bias[1] = 0.0, -1.0  # a unit dead on the data: a dead-unit warning to write
    net.set_parameters({"layers.0.weight": weight, "layers.0.bias": bias})
    return sn.diagnostics.TrainingMonitor(net, *_monitor_data(), "mse", every=1, window=3,
                                          explain_later=explain_later, **settings)


def _warnings_are_sane(warnings):
    for kind, message, data in warnings:
        if data is None:  # explain_later: a finding, explained when read
            message, data = message.explain()
        assert kind in ("plateau", "dead_units") and isinstance(message, str) and message, (kind, message)
        assert isinstance(data, dict), data


FLAT = [0.5] * 6
MONITOR_CALLS = [
    ("end_epoch", lambda m: _warnings_are_sane(m.end_epoch(0, [0.9]))),
    ("end_epoch plateau", lambda m: _warnings_are_sane(m.end_epoch(5, FLAT, dead_check=True))),
    ("end_epochs", lambda m: [found.explain() if not isinstance(found, str) else found
                              for _, _, found, _ in m.end_epochs(9, FLAT + [0.7, 0.6, 0.6, 0.6], 4)]),
    ("restart", lambda m: m.restart(*_monitor_data(8), "l1")),
    ("end_epoch after restart", lambda m: _warnings_are_sane(m.end_epoch(5, FLAT, dead_check=True))),
    ("repr", repr),
]
CASES["TrainingMonitor"] = Case(make=_monitor, calls=MONITOR_CALLS,
                                other=lambda: sn.diagnostics.TrainingMonitor(
                                    sn.Network.exercise(), [[1.0]], [[-3.0]], "l1", every=3, window=7, rtol=0.5))
CASES["TrainingMonitor explain_later"] = Case(make=lambda: _monitor(explain_later=True), calls=MONITOR_CALLS)


def _found(kind):
    monitor = _monitor(explain_later=True)
    for _, found_kind, found, _ in monitor.end_epochs(5, FLAT, 6, dead_check=True):
        if found_kind == kind:
            return found
    raise AssertionError(f"no {kind} found")


def _explains(found):
    message, data = found.explain()
    assert isinstance(message, str) and message and isinstance(data, dict), (message, data)


FOUND_CALLS = [("explain", _explains), ("repr", repr)]
CASES["PlateauFound"] = Case(make=lambda: _found("plateau"), calls=FOUND_CALLS)
CASES["DeadUnitsFound"] = Case(make=lambda: _found("dead_units"), calls=FOUND_CALLS)


# ------------------------------------------------------------------------------------------ tests
def _assert_clean(names):
    failures = run_cases(__file__, names)
    assert not failures, f"{len(failures)} unclean failures:\n" + "\n".join(failures[:60])


def test_networks_survive_attribute_writes():
    """Before: net.n_inputs = 5000 made predict read out of bounds and a fit die with SIGSEGV."""
    _assert_clean(["Network"])


def test_trainers_and_optimizers_survive_attribute_writes():
    """Before: trainer.optimizer or trainer.net of another network, then fit: SIGSEGV; trainer.lr = -1
    trained by gradient ascent; trainer.batch_size = 0 gave ZeroDivisionError."""
    _assert_clean([name for name in CASES if name.startswith(("Trainer", "optimizer"))])


def test_schedules_and_traces_survive_attribute_writes():
    _assert_clean([name for name in CASES if name.split()[0] in _SCHEDULES] + ["Trace", "Trace views", "Exercise"])


def test_callbacks_survive_attribute_writes():
    _assert_clean(["EarlyStopping", "ModelCheckpoint"])


def test_diagnostics_records_survive_attribute_writes():
    """GradientFlow.by_layer / by_skip records are frozen: every assignment is refused, cleanly."""
    _assert_clean(["LayerGradient", "SkipGradient"])


def test_training_monitor_and_its_findings_survive_attribute_writes():
    """Before: monitor.every = 0 divided by zero, monitor.window = 1 or rtol = -1 were taken as given."""
    _assert_clean(["TrainingMonitor", "TrainingMonitor explain_later", "PlateauFound", "DeadUnitsFound"])


@pytest.mark.parametrize("kind", ["regressor", "classifier"])
def test_estimators_survive_attribute_writes(kind):
    pytest.importorskip("sklearn")
    _assert_clean([f"{kind} unfitted", f"{kind} fitted"])


def test_harness_reports_unclean_failures(tmp_path):
    """The harness itself: a crash-free but unclean object is reported, and so is a killed process."""
    module = tmp_path / "probed.py"
    module.write_text(
        "import os, signal\n"
        "from _attribute_harness import Case\n"
        "class Fragile:\n"
        "    def __init__(self):\n"
        "        self.size = 3\n"
        "    def total(self):\n"
        "        return 10 / self.size\n"
        "    def die(self):\n"
        "        if self.size == 'x':\n"
        "            os.kill(os.getpid(), signal.SIGSEGV)\n"
        "    def spin(self):\n"
        "        while self.size == -1:\n"
        "            pass\n"
        "CASES = {'fragile': Case(make=Fragile, calls=[('total', lambda f: f.total()),\n"
        "                                             ('spin', lambda f: f.spin())], seconds=1),\n"
        "         'dying': Case(make=Fragile, calls=[('die', lambda f: f.die())])}\n")
    failures = run_cases(module, ["fragile"])
    assert any("size = 0, then total: ZeroDivisionError" in f for f in failures), failures
    assert any("size = -1: ran past its time limit" in f for f in failures), failures
    assert not any("size = None," in f for f in failures)  # a TypeError with a message is clean
    died = run_cases(module, ["dying"])
    # under the sanitizer run the signal is AddressSanitizer's, whose report fills the last lines shown
    named = "dying: size = str 'x'" in died[0] or "AddressSanitizer" in died[0]
    assert len(died) == 1 and "killed by signal" in died[0] and named, died

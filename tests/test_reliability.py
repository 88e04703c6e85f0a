"""Reliability at the boundary: bad input is refused clearly, absurd sizes before allocation, networks
survive pickling, the divergence guard keeps the last finite weights, and results are bit-reproducible."""

import copy
import math
import pickle
from pathlib import Path

import numpy as np
import pytest
from _helpers import run_python, training_digest

import skipnet as sn
from skipnet import _engine
from skipnet import _validation as V
from skipnet.trainer import _permutation

TESTS_DIR = str(Path(__file__).resolve().parent)


def _net(**kw):
    return sn.Network.mlp(2, (3, 3), seed=0, **kw)


# ------------------------------------------------------------------ bad input: one clear error each
BAD_CALLS = [
    # what, call, exception, message
    ("masked X", lambda: _net().forward(np.ma.masked_array(np.ones((2, 2)), mask=[[1, 0], [0, 0]])),
     TypeError, "X is a masked array"),
    ("object X holding None", lambda: _net().forward(np.array([[1.0, None]], object)), TypeError,
     "X must hold real numbers.*NoneType"),
    ("None as X", lambda: _net().forward(None), TypeError, "X must hold real numbers"),
    ("strings as X", lambda: _net().forward([["1", "2"]]), TypeError, "X must hold real numbers"),
    ("datetimes as X", lambda: _net().forward(np.zeros((1, 2), "M8[D]")), TypeError, "X must hold real"),
    ("ragged X", lambda: _net().forward([[1, 2], [3]]), ValueError, "X must be a rectangular array"),
    ("X overflowing float32", lambda: _net(dtype="float32").forward([[1e300, 0.0]]), ValueError,
     "X has values too large for float32"),
    ("y overflowing float32", lambda: _net(dtype="float32").gradients([[1.0, 0.0]], [[-1e39]]), ValueError,
     "y has values too large for float32"),
    ("parameter overflowing float32",
     lambda: _net(dtype="float32").set_parameters({"layers.0.bias": [1e39, 0, 0]}), ValueError,
     "parameter 'layers.0.bias' has values too large for float32"),
    ("layers: a single Dense", lambda: sn.Network(1, sn.Dense(1, "identity")), TypeError,
     "layers must be a sequence of skipnet.Dense, got a single one"),
    ("layers: None", lambda: sn.Network(1, None), TypeError, "layers must be a sequence"),
    ("layers: a string", lambda: sn.Network(1, "dense"), TypeError, "layers must be a sequence"),
    ("skips: a single Skip",
     lambda: sn.Network(1, [sn.Dense(1), sn.Dense(1), sn.Dense(1, "identity")], skips=sn.Skip(0, 2)),
     TypeError, "skips must be a sequence of skipnet.Skip"),
    ("skips: a Dense", lambda: sn.Network(1, [sn.Dense(1, "identity")], skips=[sn.Dense(1)]), TypeError,
     r"skips\[0\] must be a skipnet.Skip"),
    ("hidden: None", lambda: sn.Network.mlp(1, None), TypeError, "hidden must be a sequence"),
    ("hidden: a string", lambda: sn.Network.mlp(1, "16,16"), TypeError, "hidden must be a sequence"),
    ("Dense.units beyond BLAS ints", lambda: sn.Dense(2**31), ValueError, "Dense.units must be <= 2147483647"),
    ("n_inputs beyond BLAS ints", lambda: sn.Network(2**40, [sn.Dense(1, "identity")]), ValueError,
     "n_inputs must be <= 2147483647"),
    ("Dense.bias a string", lambda: sn.Dense(1, bias="yes"), TypeError, "Dense.bias must be True or False"),
    ("Skip.src a bool", lambda: sn.Skip(True, 3), TypeError, "Skip.src must be an integer"),
    ("Skip.identity an int", lambda: sn.Skip(0, 2, identity=1), TypeError, "Skip.identity must be True"),
    ("shuffle a string", lambda: sn.Trainer(_net(), shuffle="no"), TypeError, "shuffle must be True or False"),
    ("nesterov a string", lambda: sn.Trainer(_net(), momentum=0.9, nesterov="no"), TypeError,
     "nesterov must be True or False"),
    ("callbacks a bare function", lambda: sn.Trainer(_net(), callbacks=print), TypeError,
     "callbacks must be a list of callables"),
    ("schedule returning a string",
     lambda: sn.Trainer(_net(), schedule=type("S", (), {"lr": lambda self, s, e: "0.1"})()).fit(
         np.ones((3, 2)), np.ones(3)), TypeError, "the learning rate schedule.lr returned at step 0 must be a real number, got str '0.1'"),
    ("schedule returning NaN",
     lambda: sn.Trainer(_net(), schedule=type("S", (), {"lr": lambda self, s, e: math.nan})()).fit(
         np.ones((3, 2)), np.ones(3)), ValueError, "schedule.lr returned at step 0 must be finite, got nan"),
    ("lr beyond the float range", lambda: sn.Trainer(_net(), lr=10**400), ValueError, "lr must be finite"),
    ("validation pair of None", lambda: sn.Trainer(_net()).fit(np.ones((3, 2)), np.ones(3), validation=(None, None)),
     TypeError, "validation X must hold real numbers"),
    ("Trace of a non-network", lambda: sn.Trace("net", [[1.0]], [[1.0]]), TypeError,
     "net must be a skipnet.Network, got str"),
    ("diagnostics of a non-network", lambda: sn.diagnostics.dead_units(None, [[1.0]]), TypeError,
     "net must be a skipnet.Network, got NoneType"),
    ("plateau of strings", lambda: sn.diagnostics.detect_plateau(["a"] * 6), TypeError,
     "losses must hold real numbers"),
    ("output_spread rtol NaN", lambda: sn.diagnostics.output_spread(_net(), [[1.0, 2.0]], rtol=math.nan),
     ValueError, "rtol must be finite"),
    ("a dtype string NumPy parses with ast", lambda: sn.Network(1, [sn.Dense(1, "identity")], dtype="f8,("),
     TypeError, "dtype must be 'float32' or 'float64', got 'f8,\\('"),
    ("a structured dtype", lambda: sn.Network(1, [sn.Dense(1, "identity")], dtype="f8,f8"), ValueError,
     "dtype must be 'float32' or 'float64', got 'void128'"),
    ("class labels out of range",
     lambda: sn.Network.mlp(2, (3,), n_outputs=3).gradients(np.ones((2, 2)), [0, 3], "cross_entropy"),
     ValueError, r"class indices in \[0, 3\)"),
    ("class labels as strings",
     lambda: sn.Network.mlp(2, (3,), n_outputs=3).gradients(np.ones((2, 2)), ["a", "b"], "cross_entropy"),
     TypeError, "y must hold real numbers"),
]


@pytest.mark.parametrize("what,call,error,match", BAD_CALLS, ids=[c[0] for c in BAD_CALLS])
def test_bad_input_gets_one_clear_error(what, call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_numbers_in_object_arrays_and_dataframes_are_accepted():
    net = _net()
    expected = net.forward([[1.0, 0.0], [0.0, 3.0]])
    np.testing.assert_array_equal(net.forward(np.array([[True, 0], [0.0, 3]], object)), expected)
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"a": [True, False], "b": [0.0, 3.0]})  # mixed columns: an object array
    np.testing.assert_array_equal(net.forward(frame), expected)
    loss, _ = net.gradients(frame, pd.Series([1.0, 2.0]), "mse")
    assert loss == net.gradients([[1.0, 0.0], [0.0, 3.0]], [[1.0], [2.0]], "mse")[0]
    with pytest.raises(TypeError, match="NAType"):
        net.forward(pd.DataFrame({"a": pd.array([1.0, None], dtype="Float64"), "b": [0.0, 3.0]}))


@pytest.mark.parametrize("loss", ["mse", "cross_entropy"])
def test_misaligned_buffers_are_realigned_before_any_kernel(loss):
    """A contiguous array whose buffer is not 8-byte aligned (dask hands such arrays to sweep workers)
    reached the kernels as it was: UBSan reported the misaligned loads (undefined behaviour)."""
    from test_fuzz import _unaligned

    rng = np.random.default_rng(0)
    net = sn.Network.mlp(3, (4, 4), n_outputs=3, seed=0)
    X = rng.normal(size=(5, 3))
    y = rng.integers(0, 3, 5) if loss == "cross_entropy" else rng.normal(size=(5, 3))
    Xu, yu = _unaligned(X), _unaligned(y)
    checked = V.as_features("X", Xu, 3, net.dtype)
    assert checked.flags.aligned and checked.flags.c_contiguous and V.as_features("X", X, 3, net.dtype) is X
    assert net.forward(Xu).tolist() == net.forward(X).tolist()
    assert net.gradients(Xu, yu, loss)[0] == net.gradients(X, y, loss)[0]
    sn.Trainer(net, loss=loss, epochs=2, batch_size=2).fit(Xu, yu)


def test_non_native_byte_order_dtype_means_the_native_one():
    """dtype=">f8" (name float64) passed the check and then failed inside the kernels: "Big-endian
    buffer not supported on little-endian compiler"."""
    big = sn.Network.mlp(2, (3,), dtype=">f8", seed=0)
    assert big.dtype == np.dtype("float64") and big.dtype.isnative
    np.testing.assert_array_equal(big.forward(np.ones((2, 2))),
                                  sn.Network.mlp(2, (3,), seed=0).forward(np.ones((2, 2))))


def test_architecture_fields_are_plain_python_values():
    layer, skip = sn.Dense(np.int64(3), bias=np.bool_(False)), sn.Skip(np.int32(0), np.int64(2), np.bool_(True))
    assert type(layer.units) is int and type(layer.bias) is bool
    assert (type(skip.src), type(skip.dst), type(skip.identity)) == (int, int, bool)
    assert layer == sn.Dense(3, bias=False) and hash(skip) == hash(sn.Skip(0, 2, True))
    assert sn.Network(1, [sn.Dense(1, "identity")], skips=None).skips == ()


# ------------------------------------------------------------------ absurd sizes: refused before allocation
@pytest.mark.parametrize("make", [
    lambda: sn.Network.mlp(1, (10**6, 10**6)),
    lambda: sn.Network(10**6, [sn.Dense(10**6, "identity")]),
])
def test_absurd_networks_are_refused_before_allocating(make):
    with pytest.raises(ValueError, match=r"parameters .* would need 1\.49e\+04 GiB of memory, more than"):
        make()


def test_absurd_passes_are_refused_before_allocating(monkeypatch):
    net = sn.Network.mlp(4, (64, 64), seed=0)
    X = np.zeros((1000, 4))
    # 1000 rows x (64 + 64 + 1 + 4 units) x 3 buffers x 8 bytes = 3,192,000 bytes
    monkeypatch.setattr(V, "MEMORY_LIMIT", 3_191_999)
    calls = [lambda: net.forward(X), lambda: net.gradients(X, np.zeros(1000), "mse"),
             lambda: net.trace(X, np.zeros(1000)), lambda: sn.Trainer(net, epochs=1).fit(X, np.zeros(1000)),
             lambda: sn.Trainer(net, epochs=1).fit(X[:10], np.zeros(10), validation=(X, np.zeros(1000)))]
    for call in calls:
        with pytest.raises(ValueError, match="a pass over 1000 rows .* would need 0.002973 GiB"):
            call()
    monkeypatch.setattr(V, "MEMORY_LIMIT", 3_192_000)
    assert net.forward(X).shape == (1000, 1)


@pytest.mark.parametrize("call, match", [
    (lambda: sn.lr_find(_net(), np.ones((4, 2)), np.ones(4), steps=10**9),
     "a range test of 1000000000 steps would need 29.8 GiB"),
    (lambda: sn.datasets.moons(n=10**10), "a data set of 10000000000 rows would need 596 GiB"),
    (lambda: sn.sweep(lambda s: _net(), np.ones((4, 2)), np.ones(4), seeds=range(10**12), lrs=[0.1]),
     "a sweep over 1000000000000 seeds would need 9.313e\\+05 GiB"),
], ids=["lr_find", "datasets", "sweep"])
def test_absurd_requests_elsewhere_are_refused_before_allocating(monkeypatch, call, match):
    """Before the fix: MemoryError from NumPy (or from building a list of 10**12 seeds)."""
    monkeypatch.setattr(V, "MEMORY_LIMIT", 2**33)  # the same on any machine: 8 GiB
    with pytest.raises(ValueError, match=match + " of memory, more than the 8 GiB this machine has"):
        call()


def test_workspaces_are_bounded_in_bytes_per_network(monkeypatch):
    net = sn.Network.mlp(2, (64,), seed=0)
    pool = net.internals.engine.workspaces
    for n in range(1, 400, 7):
        net.forward(np.ones((n, 2)))
        assert pool.cached_bytes <= _engine.WORKSPACE_BUDGET
    # a batch whose workspace exceeds the budget is not kept after its pass
    monkeypatch.setattr(pool, "budget", 64 * 1024)
    pool.clear()
    net.forward(np.ones((4000, 2)))  # z and h of 65 units x 4000 rows: 4 MB
    assert pool.cached_bytes == 0
    net.forward(np.ones((10, 2)))
    assert 0 < pool.cached_bytes <= 64 * 1024
    np.testing.assert_array_equal(net.forward(np.ones((1, 2))), net.forward(np.ones((3, 2)))[:1])


def test_fused_kernel_objects_are_bounded_in_bytes_per_network():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(300, 2)), rng.normal(size=(300, 1))
    net = sn.Network.mlp(2, (32, 32), seed=0)
    pool = net.internals.engine.fused_nets
    for batch in range(1, 300, 7):  # 43 batch sizes
        sn.Trainer(net, batch_size=batch, epochs=1, diagnose=False).fit(X, y)
        assert 0 < pool.cached_bytes <= pool.budget
    assert pool.budget == _engine.FUSED_BUDGET + net.internals.params.nbytes


# ------------------------------------------------------------------ pickling and copies keep the views
@pytest.mark.parametrize("clone", [lambda n: pickle.loads(pickle.dumps(n)), copy.deepcopy, copy.copy],
                         ids=["pickle", "deepcopy", "copy"])
def test_pickled_network_trains_like_the_original(clone, backend):
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(20, 2)), rng.normal(size=(20, 1))
    net = sn.Network.mlp(2, (5, 5), skip="first-to-output", seed=3, backend=backend)
    start = net.internals.params.copy()
    other = clone(net)
    assert other is not net and repr(other) == repr(net)
    for n in (net, other):
        sn.Trainer(n, loss="mse", lr=0.1, batch_size=4, epochs=3, seed=0).fit(X, y)
    # before the fix a clone's named views were detached copies: training left its weights unchanged
    assert not np.array_equal(other.internals.params, start)
    np.testing.assert_array_equal(other.internals.params, net.internals.params)
    np.testing.assert_array_equal(other.forward(X), net.forward(X))


# ------------------------------------------------------------------ divergence guard
def _diverging_run(backend, **trainer_kw):
    rng = np.random.default_rng(4)
    X, y = rng.normal(size=(64, 2)), rng.normal(size=(64, 1)) * 10
    net = sn.Network.mlp(2, (16, 16), skip="first-to-output", seed=0, backend=backend)
    trainer = sn.Trainer(net, loss="mse", lr=1e6, batch_size=16, epochs=50, **trainer_kw)
    return X, y, net, trainer, trainer.fit(X, y)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # overflow in the numpy reference
@pytest.mark.parametrize("factor", [1e6, 10.0, None])
@pytest.mark.parametrize("shuffle", [False, True])
def test_divergence_keeps_the_weights_behind_the_last_recorded_loss(backend, factor, shuffle):
    X, y, net, trainer, hist = _diverging_run(backend, divergence_factor=factor, shuffle=shuffle, seed=3)
    reason = hist.stopped_reason
    # a non-finite loss or one past the factor stops before its step is recorded; a non-finite update
    # stops after recording the loss of the step that produced it
    step = hist.steps_run - 1 if "non-finite" in reason else hist.steps_run
    assert reason.startswith(f"diverged at step {step} (epoch 0): ")
    assert hist.warnings[-1].kind == "divergence" and hist.warnings[-1].step == step
    assert np.isfinite(net.internals.params).all() and np.isfinite(hist.step_loss).all()
    if factor is None:
        assert "the loss is inf" in reason or "non-finite" in reason
    else:
        assert f"exceeds {factor:g} x the first loss" in reason
        assert hist.step_loss.max() <= factor * hist.step_loss[0]
    # recompute the last recorded loss on its own mini-batch with the weights the network kept
    last = hist.steps_run - 1
    order = _permutation(np.random.default_rng(3), 64) if shuffle else np.arange(64)
    batch = order[16 * last:16 * last + 16]
    assert net.gradients(X[batch], y[batch], "mse")[0] == hist.step_loss[-1]
    # the optimizer starts afresh: a further fit at a sane rate continues from the kept weights
    assert trainer.optimizer.steps == 0 and not trainer.optimizer.buffer.any()
    if factor is not None:
        expected = net.gradients(X[:16], y[:16], "mse")[0]
        trainer.lr, trainer.shuffle = 1e-6, False
        again = trainer.fit(X, y)
        assert again.stopped_reason is None and again.step_loss[0] == expected


def test_divergence_factor_none_disables_the_factor_check():
    # a loss that grows by 1e3 in one step: stopped by factor 10, not by the default 1e6 nor by None
    net = sn.Network(1, [sn.Dense(1, "identity", bias=False)], seed=0)
    net.set_parameters({"layers.0.weight": [[1.0]]})
    kw = {"loss": "mse", "lr": 1000.5, "batch_size": 1, "epochs": 1, "shuffle": False}
    X, y = np.ones((2, 1)), np.zeros((2, 1))
    # step 0: loss 1, w -> 1 - 1000.5 * 2 = -2000; step 1: loss 4e6
    assert "exceeds 1e+06 x" in sn.Trainer(net.copy(), **kw, divergence_factor=1e6).fit(X, y).stopped_reason
    assert "exceeds 10 x" in sn.Trainer(net.copy(), **kw, divergence_factor=10).fit(X, y).stopped_reason
    hist = sn.Trainer(net.copy(), **kw, divergence_factor=None).fit(X, y)
    assert hist.stopped_reason is None and hist.step_loss.tolist() == [1.0, 4e6]
    with pytest.raises(ValueError, match="divergence_factor must be > 1.0"):
        sn.Trainer(net, divergence_factor=1.0)


def test_non_finite_update_is_caught_after_the_step():
    # finite loss, but the update overflows the weights: the step's loss stays recorded, the weights
    # that produced it are restored
    net = sn.Network(1, [sn.Dense(1, "identity", bias=False)], seed=0)
    net.set_parameters({"layers.0.weight": [[1.0]]})
    hist = sn.Trainer(net, loss="l1", lr=1e308, batch_size=1, epochs=1, shuffle=False).fit([[1e10]], [[0.0]])
    assert hist.stopped_reason == ("diverged at step 0 (epoch 0): the update with lr=1e+308 made a parameter "
                                   "non-finite")
    assert hist.step_loss.tolist() == [1e10] and net.parameters()["layers.0.weight"][0, 0] == 1.0


# ------------------------------------------------------------------ determinism
def test_same_seed_is_bit_identical_across_processes(tmp_path):
    code = (f"import sys; sys.path.insert(0, {TESTS_DIR!r}); from _helpers import training_digest; "
            "print(training_digest('float32'), training_digest('float64'))")
    runs = {run_python(code, tmp_path).stdout.strip() for _ in range(2)}
    runs.add(f"{training_digest('float32')} {training_digest('float64')}")
    assert len(runs) == 1, runs


def test_estimator_predict_after_a_failed_fit_is_not_fitted():
    """A fit that fails after validating X has set n_features_in_; predict used to end in an
    AttributeError ('network_') instead of NotFittedError."""
    sk = pytest.importorskip("skipnet.sklearn")
    from sklearn.exceptions import NotFittedError

    estimator = sk.SkipNetRegressor(dtype="float16")
    with pytest.raises(ValueError, match="dtype must be 'float32' or 'float64'"):
        estimator.fit(np.ones((4, 2)), np.ones(4))
    with pytest.raises(NotFittedError):
        estimator.predict(np.ones((2, 2)))


def test_gradient_norms_do_not_overflow():
    """gradient_flow squared each entry in one dot product: a gradient of 1e160 gave a norm of inf."""
    net = sn.Network(1, [sn.Dense(1, "identity", bias=False)], seed=0)
    flow = sn.diagnostics.gradient_flow(net, [[1e160], [1e160]], [[-1e300], [-1e300]], "l1")
    assert flow.total_norm == pytest.approx(1e160, rel=1e-15) and flow.layers[0]["weight_norm"] == flow.total_norm


@pytest.mark.parametrize("early_stopping", [False, True])
def test_estimator_diverging_in_its_first_epoch_is_fitted_with_a_warning(early_stopping):
    """Before the fix, fit ended in "zero-size array to reduction operation minimum" (no epoch recorded)
    and left a half-fitted estimator behind."""
    sk = pytest.importorskip("skipnet.sklearn")
    from sklearn.exceptions import ConvergenceWarning

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(40, 2)), rng.normal(size=40) * 1e6
    estimator = sk.SkipNetRegressor((8, 8), optimizer="sgd", lr=10.0, batch_size=1, epochs=3,
                                    early_stopping=early_stopping, random_state=0)
    with pytest.warns(ConvergenceWarning, match="training stopped early: diverged at step"):
        estimator.fit(X, y)
    assert estimator.n_iter_ == 0 and estimator.loss_curve_ == [] and math.isnan(estimator.best_loss_)
    assert np.isfinite(estimator.predict(X)).all()


def _valley_quadratic(losses):
    """fastai's valley rule as written there (O(n^2)): the oracle for skipnet.schedules._valley."""
    n = len(losses)
    lds, max_start, max_end = [1] * n, 0, 0
    for i in range(1, n):
        for j in range(i):
            if losses[i] < losses[j] and lds[i] < lds[j] + 1:
                lds[i] = lds[j] + 1
            if lds[max_end] < lds[i]:
                max_end = i
                max_start = max_end - lds[max_end]
    sections = (max_end - max_start) / 3
    return max_start + int(sections) + int(sections / 2)


def test_lr_find_valley_is_fastais_rule_in_n_log_n():
    """The double loop took minutes for a range test of 10,000 steps (0.8 s at 3,000, quadratic)."""
    from skipnet.schedules import _valley

    rng = np.random.default_rng(0)
    for case in range(600):
        n = int(rng.integers(1, 50))
        curve = [rng.integers(0, 4, n).astype(float), np.sort(rng.normal(size=n)), rng.normal(size=n).cumsum()]
        losses = curve[case % 3]
        assert _valley(losses) == _valley_quadratic(losses), losses
    result = sn.lr_find(_net(), rng.normal(size=(64, 2)), rng.normal(size=64), loss="mse", steps=20_000,
                        lr_max=1e-3, divergence_factor=1e9)
    assert len(result.lrs) == 20_000 and result.lr_min <= result.suggestion <= 1e-3


@pytest.mark.parametrize(("optimizer", "buffers"), [("sgd", 4), ("adam", 5)])
def test_trainer_counts_every_parameter_sized_buffer_of_a_fit(monkeypatch, optimizer, buffers):
    """Before: the check budgeted the network's 2 buffers while Adam's fit holds 5 of them."""
    net = sn.Network.mlp(10, (100,), seed=0)  # 1,201 parameters, 9,608 bytes each buffer
    size = net.internals.params.nbytes
    monkeypatch.setattr(V, "MEMORY_LIMIT", buffers * size)
    sn.Trainer(net, optimizer=optimizer)
    monkeypatch.setattr(V, "MEMORY_LIMIT", buffers * size - 1)
    with pytest.raises(ValueError, match="optimizer state and the last good weights"):
        sn.Trainer(net, optimizer=optimizer)

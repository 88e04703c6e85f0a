"""sn.sweep: rows depend only on (seed, lr) on every backend; tables, histories, plateaus, bad input; CLI."""

from __future__ import annotations

import csv
import importlib
import itertools
import logging
import math
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import threadpoolctl

import skipnet as sn
from skipnet.cli import main
from skipnet.sweep import COLUMNS, MLPFactory

sweep_module = importlib.import_module("skipnet.sweep")  # skipnet.sweep is the function
PACKAGE_ROOT = str(Path(sn.__file__).resolve().parent.parent)
FACTORY = MLPFactory(n_inputs=2, hidden=(6, 6), skip="first-to-output")
OPTIONS = {"loss": "bce", "epochs": 8, "batch_size": 16}
SEEDS, LRS = [0, 1, 2, 3], [0.05, 0.5]


def _xor(n=60, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 2))
    return X, (X[:, 0] * X[:, 1] > 0).astype(float)


X, Y = _xor()
XV, YV = _xor(20, seed=1)


def _run(**kwargs):
    args = {"seeds": SEEDS, "lrs": LRS, "validation": (XV, YV), "as_frame": False, **OPTIONS, **kwargs}
    return sn.sweep(FACTORY, X, Y, **args)


def assert_same_rows(rows, expected):
    """Exactly equal rows (NaN equals NaN); histories, where ``rows`` kept them, compared array by array."""
    assert [(r["seed"], r["lr"]) for r in rows] == [(r["seed"], r["lr"]) for r in expected]
    for got, want in zip(rows, expected):
        assert got.keys() == want.keys() - ({"history"} if "history" not in got else set())
        np.testing.assert_equal({k: v for k, v in got.items() if k != "history"},
                                {k: v for k, v in want.items() if k != "history"})
        if "history" in got:
            for name in ("step_loss", "epoch_loss", "val_loss", "lr"):
                np.testing.assert_array_equal(getattr(got["history"], name), getattr(want["history"], name))


@pytest.fixture(scope="module")
def serial_rows():
    return _run(parallel_backend="serial", keep_history=True)


def test_diagnose_follows_keep_history_and_changes_no_row(serial_rows):
    """Without histories the trainer's between-epoch checks (whose warnings only a history keeps) are
    off, so the fused path runs several epochs per call; the rows are the same either way."""
    plain = _run(parallel_backend="serial", validation=None)
    checked = _run(parallel_backend="serial", validation=None, diagnose=True)
    assert_same_rows(plain, checked)
    kept = _run(parallel_backend="serial", validation=None, keep_history=True, seeds=[0], lrs=[0.5])
    assert any(w.kind == "dead_units" for w in kept[0]["history"].warnings)
    quiet = _run(parallel_backend="serial", validation=None, keep_history=True, seeds=[0], lrs=[0.5],
                 diagnose=False)
    assert not quiet[0]["history"].warnings


# --------------------------------------------------------------------------------------- determinism
@pytest.mark.parametrize("backend, n_jobs", [("serial", -1), ("loky", 1), ("threading", 2), ("threading", -1),
                                             ("threading", 3), ("loky", 2)])
def test_rows_identical_on_every_backend_and_n_jobs(serial_rows, backend, n_jobs):
    assert_same_rows(_run(parallel_backend=backend, n_jobs=n_jobs, keep_history=True), serial_rows)


def test_rows_identical_when_products_go_to_blas():
    # gemm's float32 result can depend on BLAS's thread count (2 threads here by default, as many as the
    # workers get otherwise): every run uses one BLAS thread, so the backend still changes nothing
    before = [lib["num_threads"] for lib in threadpoolctl.threadpool_info()]
    factory = MLPFactory(n_inputs=32, hidden=(128, 128), skip="first-to-output", dtype="float32")
    Xb = np.random.default_rng(0).normal(size=(128, 32))
    yb = np.tanh(Xb[:, :4].sum(axis=1))
    runs = [sn.sweep(factory, Xb, yb, seeds=[0, 1], lrs=[0.01], loss="l1", epochs=2, batch_size=64,
                     parallel_backend=backend, n_jobs=2, as_frame=False)
            for backend in ("serial", "threading", "loky")]
    assert_same_rows(runs[1], runs[0])
    assert_same_rows(runs[2], runs[0])
    assert [lib["num_threads"] for lib in threadpoolctl.threadpool_info()] == before  # restored


def test_a_row_depends_only_on_its_seed_and_lr(serial_rows):
    alone = sn.sweep(FACTORY, X, Y, seeds=[2], lrs=[0.5], validation=(XV, YV), as_frame=False,
                     parallel_backend="threading", **OPTIONS)
    assert_same_rows(alone, [r for r in serial_rows if r["seed"] == 2 and r["lr"] == 0.5])
    # and it is what training that network by hand gives
    net = FACTORY(2)
    hist = sn.Trainer(net, lr=0.5, seed=2, **OPTIONS).fit(X, Y, validation=(XV, YV))
    assert alone[0]["final_loss"] == hist.epoch_loss[-1] and alone[0]["val_loss"] == hist.val_loss[-1]
    assert alone[0]["dead_fraction"] == sn.diagnostics.dead_units(net, X).fraction


def test_rows_follow_the_order_given(serial_rows):
    rows = sn.sweep(FACTORY, X, Y, seeds=[3, 1], lrs=[0.5, 0.05], as_frame=False,
                    parallel_backend="threading", n_jobs=2, **OPTIONS)
    assert [(r["seed"], r["lr"]) for r in rows] == [(3, 0.5), (3, 0.05), (1, 0.5), (1, 0.05)]
    by_key = {(r["seed"], r["lr"]): r["final_loss"] for r in serial_rows}
    assert [r["final_loss"] for r in rows] == [by_key[(r["seed"], r["lr"])] for r in rows]


class _CountingDecay:
    """A schedule with state that a shared instance would carry from one run into the next."""

    def __init__(self):
        self.calls = 0

    def lr(self, step, epoch):
        self.calls += 1
        return 0.5 * 0.99 ** self.calls


def test_each_run_gets_its_own_copy_of_stateful_options():
    schedule = _CountingDecay()
    rows = sn.sweep(FACTORY, X, Y, seeds=[0, 1], lrs=[0.1], as_frame=False, parallel_backend="threading",
                    n_jobs=2, schedule=schedule, **OPTIONS)
    assert schedule.calls == 0  # the caller's object is never touched
    for row in rows:
        net = FACTORY(row["seed"])
        hist = sn.Trainer(net, lr=0.1, seed=row["seed"], schedule=_CountingDecay(), **OPTIONS).fit(X, Y)
        assert row["final_loss"] == hist.epoch_loss[-1]


# ----------------------------------------------------------------------------------------------- dask
@pytest.fixture(scope="module")
def dask_cluster():
    distributed = pytest.importorskip("distributed")
    # two single-threaded workers in this process, talking TCP over loopback
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, protocol="tcp",
                                  host="127.0.0.1", dashboard_address="127.0.0.1:0",
                                  silence_logs=logging.ERROR) as cluster:
        yield cluster


def test_dask_client_matches_serial(dask_cluster, serial_rows):
    distributed = pytest.importorskip("distributed")
    with distributed.Client(dask_cluster) as client:
        assert len(client.scheduler_info()["workers"]) == 2
        rows = _run(parallel_backend="dask", client=client, keep_history=True)
        assert_same_rows(rows, serial_rows)
        assert client.status == "running"  # the caller's client stays open


def test_dask_address_matches_serial(dask_cluster, serial_rows):
    rows = _run(parallel_backend="dask", address=dask_cluster.scheduler_address)
    assert_same_rows(rows, serial_rows)


def test_dask_local_cluster_of_processes(serial_rows):
    pytest.importorskip("distributed")
    rows = sn.sweep(FACTORY, X, Y, seeds=[1], lrs=LRS, validation=(XV, YV), as_frame=False,
                    parallel_backend="dask", n_jobs=2, **OPTIONS)
    assert_same_rows(rows, [r for r in serial_rows if r["seed"] == 1])


# ---------------------------------------------------------------------------------------- the table
def test_list_of_dicts_and_history(serial_rows):
    assert len(serial_rows) == len(SEEDS) * len(LRS)
    for row in serial_rows:
        assert tuple(row) == (*COLUMNS, "history")
        hist = row["history"]
        assert isinstance(hist, sn.History) and row["epochs_run"] == hist.epochs_run == OPTIONS["epochs"]
        assert row["final_loss"] == hist.epoch_loss[-1] and row["val_loss"] == hist.val_loss[-1]
        assert row["stopped_reason"] is None and isinstance(row["plateau"], bool)
        assert 0.0 <= row["dead_fraction"] <= 1.0
    # a larger learning rate trains this problem further in 8 epochs
    mean = {lr: np.mean([r["final_loss"] for r in serial_rows if r["lr"] == lr]) for lr in LRS}
    assert mean[0.5] < mean[0.05]
    rows = _run(parallel_backend="serial", validation=None)
    assert "history" not in rows[0] and all(math.isnan(r["val_loss"]) for r in rows)


def test_dataframe(serial_rows):
    pd = pytest.importorskip("pandas")
    frame = _run(parallel_backend="serial", as_frame=None)
    assert isinstance(frame, pd.DataFrame) and list(frame.columns) == list(COLUMNS)
    assert len(frame) == len(serial_rows)
    np.testing.assert_array_equal(frame["final_loss"], [r["final_loss"] for r in serial_rows])
    with_hist = _run(parallel_backend="serial", as_frame=True, keep_history=True)
    assert list(with_hist.columns) == [*COLUMNS, "history"] and isinstance(with_hist["history"][0], sn.History)


def test_without_pandas_a_list(monkeypatch):
    monkeypatch.setattr(sweep_module, "_has_pandas", lambda: False)
    assert isinstance(sn.sweep(FACTORY, X, Y, seeds=[0], lrs=0.1, parallel_backend="serial", epochs=1), list)
    with pytest.raises(ImportError, match="pandas"):
        sn.sweep(FACTORY, X, Y, seeds=[0], lrs=0.1, parallel_backend="serial", epochs=1, as_frame=True)


def test_zero_gradient_stop_is_a_plateau():
    # the exercise: after one step both ReLUs are dead, the loss stays 3.0 forever, training stops
    rows = sn.sweep(lambda seed: sn.Network.exercise(), [[1.0]], [[-3.0]], seeds=[0], lrs=[1.0], loss="l1",
                    batch_size=1, epochs=20, parallel_backend="threading", as_frame=False)
    row = rows[0]
    assert row["stopped_reason"].startswith("zero gradient") and row["epochs_run"] < 20
    assert row["final_loss"] == 3.0 and row["dead_fraction"] == 1.0
    assert row["plateau"] and "every gradient is exactly 0" in row["plateau_reason"]


def _dead_hidden_layer(seed):
    net = sn.Network.mlp(2, (4,), seed=seed)
    net.set_parameters({"layers.0.weight": np.zeros((4, 2)), "layers.0.bias": -np.ones(4),
                        "layers.1.bias": [0.3]})
    return net


def test_ln2_plateau_is_explained():
    # every hidden unit dead: only the output bias learns, towards logit 0 on balanced labels (loss ln 2)
    rows = sn.sweep(_dead_hidden_layer, X, Y, seeds=[0], lrs=[1.0], loss="bce", epochs=60, batch_size=60,
                    shuffle=False, parallel_backend="serial", as_frame=False)
    row = rows[0]
    assert abs(row["final_loss"] - math.log(2)) < 1e-2 and row["dead_fraction"] == 1.0
    assert row["plateau"] and "ln 2" in row["plateau_reason"] and "dead" in row["plateau_reason"]


def test_progress_bar(capsys):
    pytest.importorskip("tqdm")
    sn.sweep(FACTORY, X, Y, seeds=[0, 1], lrs=[0.1], parallel_backend="serial", as_frame=False, progress=True,
             epochs=1)
    assert "2/2" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------- bad input
def _closure_over_a_lock():
    lock = threading.Lock()

    def make(seed):
        with lock:
            return FACTORY(seed)

    return make


def _one_network():
    net = FACTORY(0)
    return lambda seed: net


@pytest.mark.parametrize("kwargs, error, message", [
    ({"make_network": "net"}, TypeError, "make_network must be a callable"),
    ({"make_network": lambda seed: 42}, TypeError, r"make_network\(0\) must return a skipnet.Network"),
    ({"seeds": 5}, TypeError, r"range\(5\)"),
    ({"seeds": None}, TypeError, "seeds must be an iterable"),
    ({"seeds": []}, ValueError, "seeds is empty"),
    ({"seeds": [0, -1]}, ValueError, r"seeds\[1\] must be >= 0"),
    ({"seeds": [0, 1.5]}, TypeError, r"seeds\[1\] must be an integer"),
    ({"seeds": [1, 2, 1]}, ValueError, r"repeated: \[1\]"),
    ({"lrs": [0.1, -0.1]}, ValueError, r"lrs\[1\] must be > 0"),
    ({"lrs": [float("nan")]}, ValueError, r"lrs\[0\] must be finite"),
    ({"lrs": "0.1"}, TypeError, "lrs must be an iterable"),
    ({"lrs": []}, ValueError, "lrs is empty"),
    ({"seeds": itertools.count()}, ValueError, "seeds yields more than 1000000 values"),
    ({"lrs": (0.1 * 0.5**i for i in itertools.count())}, ValueError, "lrs yields more than 1000000"),
    ({"seeds": range(2 * 10**6)}, ValueError, "seeds holds 2000000 values; a sweep takes at most 1000000"),
    ({"seeds": range(10**20)}, ValueError, "seeds holds more than 1000000 values"),
    ({"keep_history": "no"}, TypeError, "keep_history must be True or False"),
    ({"progress": "yes"}, TypeError, "progress must be True or False"),
    ({"make_network": _one_network()}, ValueError, r"make_network\(0\) returned a Network it had returned before"),
    ({"parallel_backend": "multiprocessing"}, ValueError, "parallel_backend must be one of"),
    ({"n_jobs": 0}, ValueError, "n_jobs must be"),
    ({"n_jobs": 1.5}, TypeError, "n_jobs must be an integer"),
    ({"as_frame": "yes"}, TypeError, "as_frame must be"),
    ({"lr": 0.1}, TypeError, "pass it through lrs="),
    ({"seed": 0}, TypeError, "pass it through seeds="),
    ({"epoch": 3}, TypeError, "unknown trainer option.*'epoch'.*epochs"),
    ({"loss": "hinge"}, ValueError, "loss must be one of"),
    ({"epochs": -1}, ValueError, "epochs must be >= 0"),
    ({"X": np.ones((60, 3))}, ValueError, "X must have 2 columns"),
    ({"y": np.full(60, 2.0)}, ValueError, r"y must lie in \[0, 1\]"),
    ({"validation": XV}, ValueError, "validation must be a pair"),
    ({"validation": (XV, YV[:5])}, ValueError, "validation y must have shape"),
    ({"client": object()}, ValueError, "only used with parallel_backend='dask'"),
    ({"make_network": _closure_over_a_lock(), "parallel_backend": "loky"}, TypeError,
     "cannot be pickled.*parallel_backend='threading'"),
])
def test_bad_input_is_rejected_clearly(kwargs, error, message):
    args = {"make_network": FACTORY, "X": X, "y": Y, "seeds": [0], "lrs": [0.1], "loss": "bce",
            "parallel_backend": "serial", **kwargs}
    with pytest.raises(error, match=message):
        sn.sweep(args.pop("make_network"), args.pop("X"), args.pop("y"), **args)


def test_dask_argument_errors():
    with pytest.raises(ValueError, match="not both"):
        sn.sweep(FACTORY, X, Y, seeds=[0], lrs=[0.1], parallel_backend="dask", client=object(),
                 address="tcp://x:1")
    pytest.importorskip("distributed")
    with pytest.raises(TypeError, match="client must be a distributed.Client"):
        sn.sweep(FACTORY, X, Y, seeds=[0], lrs=[0.1], parallel_backend="dask", client=object())


def test_unpicklable_factory_runs_on_threads():
    rows = sn.sweep(_closure_over_a_lock(), X, Y, seeds=[0], lrs=[0.1], parallel_backend="threading",
                    as_frame=False, **OPTIONS)
    assert rows[0]["epochs_run"] == OPTIONS["epochs"]


def test_mlp_factory_validates_now():
    with pytest.raises(ValueError, match="first-to-output"):
        MLPFactory(2, (4,), skip="first-to-output")


# ------------------------------------------------------------------------------------------------ CLI
def test_cli_sweep_summary_and_csv(tmp_path, capsys):
    out = tmp_path / "runs.csv"
    assert main(["sweep", "--dataset", "xor", "--n-samples", "40", "--hidden", "4,4", "--seeds", "1:4",
                 "--lrs", "0.1,1", "--epochs", "3", "--parallel-backend", "threading", "--n-jobs", "2",
                 "--val-split", "0.25", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "6 runs: 3 seeds x 2 learning rates, 30 training samples" in text
    assert "mean final loss" in text and "plateau" in text and "mean dead" in text
    with open(out, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["seed"], r["lr"]) for r in rows] == [(s, lr) for s in "123" for lr in ("0.1", "1.0")]
    assert list(rows[0]) == list(COLUMNS) and all(not math.isnan(float(r["val_loss"])) for r in rows)


def test_cli_sweep_builtin_data_for_each_kind_of_loss(capsys):
    for dataset, loss in [("sine", "mse"), ("spirals", "cross_entropy")]:
        assert main(["sweep", "--dataset", dataset, "--loss", loss, "--n-samples", "60", "--seeds", "2",
                     "--lrs", "0.1", "--epochs", "2", "--parallel-backend", "serial", "--quiet"]) == 0
        assert f"loss {loss}, 2 epochs" in capsys.readouterr().out
    assert main(["sweep", "--dataset", "xor", "--n-samples", "2", "--parallel-backend", "serial"]) == 2
    assert "--dataset xor" in capsys.readouterr().err


def test_cli_sweep_reads_csv_and_npy(tmp_path, capsys):
    data = np.c_[X, Y]
    path = tmp_path / "data.csv"
    np.savetxt(path, np.c_[Y, X], delimiter=",", header="label,a,b", comments="")
    assert main(["sweep", str(path), "--target", "label", "--seeds", "0,5", "--lrs", "0.5", "--epochs", "2",
                 "--parallel-backend", "serial", "--quiet"]) == 0
    from_csv = capsys.readouterr().out
    assert "2 runs: 2 seeds x 1 learning rate, 60 training samples, 2 features" in from_csv
    np.save(tmp_path / "data.npy", data)
    assert main(["sweep", str(tmp_path / "data.npy"), "--seeds", "0,5", "--lrs", "0.5", "--epochs", "2",
                 "--parallel-backend", "serial"]) == 0
    assert capsys.readouterr().out == from_csv  # same data, same runs, same summary


def test_cli_sweep_errors_are_one_line(tmp_path, capsys):
    path = tmp_path / "data.csv"
    np.savetxt(path, np.c_[X, Y], delimiter=",", header="a,b,label", comments="")
    assert main(["sweep", str(path), "--target", "colour", "--parallel-backend", "serial"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no column named 'colour'" in err and "['a', 'b', 'label']" in err
    assert main(["sweep", "--lrs", "0", "--parallel-backend", "serial"]) == 2
    assert "lrs[0] must be > 0" in capsys.readouterr().err


def test_cli_sweep_as_a_user_runs_it(tmp_path):
    # default backend (worker processes), outside the source tree so the installed package is used
    out = subprocess.run([sys.executable, "-m", "skipnet", "sweep", "--seeds", "4", "--lrs", "0.1,1",
                          "--epochs", "5", "--n-jobs", "2", "--out", "t.csv"], capture_output=True, text=True,
                         check=True, cwd=tmp_path, env={**os.environ, "PYTHONPATH": PACKAGE_ROOT})
    assert "8 runs: 4 seeds x 2 learning rates" in out.stdout and "backend loky" in out.stdout
    assert (tmp_path / "t.csv").read_text().count("\n") == 9


@pytest.mark.parametrize("backend", ["serial", "threading"])
def test_a_factory_returning_a_network_again_is_refused(backend):
    """The runs would share one network and disturb each other: refused, by the two calls made before
    any run (a cache by seed) and within the runs (a factory repeating itself only later)."""
    cache = {}

    def cached(seed):
        return cache.setdefault(seed, FACTORY(seed))

    shared, calls = FACTORY(0), itertools.count()

    def repeats_after_two_calls(seed):
        return FACTORY(seed) if next(calls) < 2 else shared

    for factory in (cached, repeats_after_two_calls):
        with pytest.raises(ValueError, match="returned a Network it had returned before"):
            sn.sweep(factory, X, Y, seeds=[0, 1], lrs=[0.05, 0.5], parallel_backend=backend, n_jobs=2,
                     **OPTIONS)
    assert next(calls) > 3  # the second factory got past the two calls before the runs


def test_many_seeds_checked_in_linear_time():
    seeds = list(range(200_000)) + [7]
    with pytest.raises(ValueError, match=r"repeated: \[7\]"):
        sn.sweep(FACTORY, X, Y, seeds=seeds, lrs=[0.1], parallel_backend="serial", **OPTIONS)

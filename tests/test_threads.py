"""Threads: separate networks train in parallel with results bit-identical to serial runs; one network
serves predictions to any number of threads at once, and a write (fit, gradients, set_parameters,
load_weights) meeting another write or a read raises a clear RuntimeError instead of racing."""

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import skipnet as sn

BUSY = "this Network is being used by another thread"


def _train(seed, dtype, backend="cython"):
    rng = np.random.default_rng(seed)
    X, y = rng.normal(size=(256, 16)), rng.normal(size=(256, 1))
    # 64-wide layers with batches of 64: large enough that products go through BLAS
    net = sn.Network.mlp(16, (64, 64, 64), skip="first-to-output", seed=seed, dtype=dtype, backend=backend)
    hist = sn.Trainer(net, loss="l1", optimizer="adam", lr=0.01, batch_size=64, epochs=4, seed=seed).fit(X, y)
    return net.internals.params.copy(), hist.step_loss, net.forward(X)


@pytest.mark.parametrize("backend", ["cython", "numpy"])
def test_separate_networks_in_threads_match_serial_runs_bitwise(dtype, backend):
    seeds = list(range(6))
    serial = [_train(s, dtype, backend) for s in seeds]
    with ThreadPoolExecutor(max_workers=3) as pool:
        threaded = list(pool.map(lambda s: _train(s, dtype, backend), seeds))
    for a, b in zip(serial, threaded):
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x, y)


def test_one_network_from_two_threads_raises_while_in_use(tmp_path):
    """Deterministic: a callback holds the network inside fit while the main thread tries every entry
    (load_weights included: it used to return normally, and the load was lost)."""
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(8, 2)), rng.normal(size=(8, 1))
    net = sn.Network.mlp(2, (4, 4), seed=0)
    other = sn.Network.mlp(2, (4, 4), seed=1).save(tmp_path / "other.safetensors")
    inside, release = threading.Event(), threading.Event()
    seen_in_callback = []

    def hold(trainer, epoch, history):
        seen_in_callback.append(net.forward(X).shape)  # same thread: reentrant, allowed
        inside.set()
        assert release.wait(30)

    worker = threading.Thread(target=lambda: sn.Trainer(net, epochs=1, callbacks=[hold]).fit(X, y))
    worker.start()
    try:
        assert inside.wait(30)
        before = net.internals.params.copy()
        calls = [lambda: net.forward(X), lambda: net.predict(X), lambda: net.gradients(X, y),
                 lambda: net.trace(X[:1], y[:1]), lambda: net.parameters(), lambda: net.copy(),
                 lambda: net.set_parameters({"layers.0.bias": np.zeros(4)}),
                 lambda: sn.Trainer(net, epochs=1).fit(X, y), lambda: sn.diagnostics.dead_units(net, X),
                 lambda: sn.diagnostics.gradient_flow(net, X, y), lambda: net.load_weights(other)]
        for call in calls:
            with pytest.raises(RuntimeError, match=BUSY):
                call()
        np.testing.assert_array_equal(net.internals.params, before)
    finally:
        release.set()
        worker.join()
    assert seen_in_callback == [(8, 1)]
    assert net.forward(X).shape == (8, 1)  # free again
    net.load_weights(other)
    np.testing.assert_array_equal(net.predict(X), sn.Network.load(other).predict(X))


@pytest.mark.parametrize("backend", ["cython", "numpy"])
def test_eight_threads_predict_from_one_network_as_serial_calls_do(backend):
    """Before: 60 of 80 concurrent predict calls raised RuntimeError (one exclusive lock for reads)."""
    rng = np.random.default_rng(1)
    net = sn.Network.mlp(32, (128, 128), skip="first-to-output", seed=0, backend=backend)
    # some threads share a batch size (and so would share a cached workspace), some do not
    inputs = [rng.normal(size=(64 if i % 2 else 48 + i, 32)) for i in range(8)]
    expected = [net.predict(x) for x in inputs]
    start = threading.Barrier(8)

    def work(i):
        start.wait()
        return [net.predict(inputs[i]) for _ in range(20)]

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(work, range(8)))
    for i, outs in enumerate(results):
        for out in outs:
            np.testing.assert_array_equal(out, expected[i])


def test_estimator_predicts_from_many_threads_and_joblib():
    pytest.importorskip("sklearn")
    from joblib import Parallel, delayed

    from skipnet.sklearn import SkipNetClassifier

    X, y = sn.datasets.moons(200, noise=0.1, seed=0)
    clf = SkipNetClassifier(hidden_layer_sizes=(16, 16), epochs=5, random_state=0).fit(X, y.ravel())
    expected = clf.predict_proba(X)
    outs = Parallel(n_jobs=4, backend="threading")(delayed(clf.predict_proba)(X) for _ in range(16))
    for out in outs:
        np.testing.assert_array_equal(out, expected)


def test_a_write_waits_for_reads_in_flight_and_never_tears_them():
    """set_parameters from one thread while others predict: every prediction is that of the old or of
    the new weights (never a mix), and the write is not refused because of reads."""
    rng = np.random.default_rng(2)
    net = sn.Network.mlp(16, (256, 256), seed=0)
    X = rng.normal(size=(256, 16))
    old = net.predict(X)
    new_params = sn.Network.mlp(16, (256, 256), seed=1).parameters()
    new = sn.Network.mlp(16, (256, 256), seed=1).predict(X)
    stop = threading.Event()
    seen = {"old": 0, "new": 0, "busy": 0}
    lock = threading.Lock()

    def reader():
        while not stop.is_set():
            try:
                out = net.predict(X)
            except RuntimeError as exc:  # a read arriving while the write holds the network
                assert BUSY in str(exc)
                kind = "busy"
            else:
                kind = "old" if np.array_equal(out, old) else "new"
                if kind == "new":
                    np.testing.assert_array_equal(out, new)
            with lock:
                seen[kind] += 1

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        while seen["old"] < 3:
            stop.wait(0.001)
        net.set_parameters(new_params)  # waits for the reads in flight, then writes
        while seen["new"] < 3:
            stop.wait(0.001)
    finally:
        stop.set()
        for t in threads:
            t.join()
    np.testing.assert_array_equal(net.predict(X), new)

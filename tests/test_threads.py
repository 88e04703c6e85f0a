"""Threads: separate networks train in parallel with results bit-identical to serial runs; one network
used from two threads at once raises a clear RuntimeError instead of racing on its buffers."""

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
    return net._params.copy(), hist.step_loss, net.forward(X)


@pytest.mark.parametrize("backend", ["cython", "numpy"])
def test_separate_networks_in_threads_match_serial_runs_bitwise(dtype, backend):
    seeds = list(range(6))
    serial = [_train(s, dtype, backend) for s in seeds]
    with ThreadPoolExecutor(max_workers=3) as pool:
        threaded = list(pool.map(lambda s: _train(s, dtype, backend), seeds))
    for a, b in zip(serial, threaded):
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x, y)


def test_one_network_from_two_threads_raises_while_in_use():
    """Deterministic: a callback holds the network inside fit while the main thread tries every entry."""
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(8, 2)), rng.normal(size=(8, 1))
    net = sn.Network.mlp(2, (4, 4), seed=0)
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
        before = net._params.copy()
        calls = [lambda: net.forward(X), lambda: net.predict(X), lambda: net.gradients(X, y),
                 lambda: net.trace(X[:1], y[:1]), lambda: net.parameters(), lambda: net.copy(),
                 lambda: net.set_parameters({"layers.0.bias": np.zeros(4)}),
                 lambda: sn.Trainer(net, epochs=1).fit(X, y), lambda: sn.diagnostics.dead_units(net, X),
                 lambda: sn.diagnostics.gradient_flow(net, X, y)]
        for call in calls:
            with pytest.raises(RuntimeError, match=BUSY):
                call()
        np.testing.assert_array_equal(net._params, before)
    finally:
        release.set()
        worker.join()
    assert seen_in_callback == [(8, 1)]
    assert net.forward(X).shape == (8, 1)  # free again


def test_hammering_one_network_gives_right_answers_or_clear_errors():
    """Concurrent forward calls on one network: each returns the serial result or raises RuntimeError,
    never a result computed in a workspace another thread was writing."""
    rng = np.random.default_rng(1)
    net = sn.Network.mlp(32, (128, 128), seed=0)
    inputs = [rng.normal(size=(64, 32)) for _ in range(4)]
    expected = [net.forward(x) for x in inputs]
    outcomes = {"ok": 0, "busy": 0}
    lock = threading.Lock()

    def work(i):
        for _ in range(150):
            try:
                out = net.forward(inputs[i])
            except RuntimeError as exc:
                assert BUSY in str(exc)
                kind = "busy"
            else:
                np.testing.assert_array_equal(out, expected[i])
                kind = "ok"
            with lock:
                outcomes[kind] += 1

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(work, range(4)))
    assert outcomes["ok"] + outcomes["busy"] == 600 and outcomes["ok"] > 0

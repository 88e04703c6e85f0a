"""The peers of ``skipnet bench``: the strongest (JAX scan, numba) and the hand-written C loop train the
same trajectory as skipnet, skipped where they are not installed (they are optional, for benchmarks
only); the timing protocol times every implementation and reports the ones that cannot run."""

import shutil

import numpy as np
import pytest

from skipnet._bench import LR, WORKLOADS, c_loop, run
from skipnet._bench.c_loop import CLoop
from skipnet._bench.peers import JaxScan, NumbaEpoch
from skipnet._bench.report import check
from skipnet._bench.timing import Impl, interleave
from skipnet.trainer import Trainer


def _skipnet_epoch(w, X, y):
    net = w.make(0)
    hist = Trainer(net, loss="l1", optimizer="sgd", lr=LR, batch_size=w.batch, epochs=1,
                   shuffle=False, divergence_factor=None, diagnose=False).fit(X, y)
    return net, hist


@pytest.mark.parametrize("name", ["W0", "W1", "W4"])
def test_jax_scan_trains_the_same_epoch(name):
    jax = pytest.importorskip("jax")
    w = WORKLOADS[name]
    X, y = w.data()
    peer = JaxScan(w, X, y, LR)
    params, losses = peer.epoch({k: jax.device_put(v) for k, v in peer.start.items()}, peer.Xs, peer.Ys)
    net, hist = _skipnet_epoch(w, X, y)
    tol = 1e-12 if w.dtype == "float64" else 1e-5
    assert set(params) == set(net.parameters())
    for key, value in net.parameters().items():
        np.testing.assert_allclose(np.asarray(params[key]), value, rtol=tol, atol=tol, err_msg=key)
    np.testing.assert_allclose(np.asarray(losses), hist.step_loss, rtol=tol, atol=tol)
    seconds, steps = peer.block(1)
    assert steps == peer.steps_per_epoch and seconds > 0


def test_numba_epoch_trains_the_same_epoch():
    pytest.importorskip("numba")
    w = WORKLOADS["W0"]
    X, y = w.data()
    peer = NumbaEpoch(w, X, y, LR)
    peer.block(1)
    net, hist = _skipnet_epoch(w, X, y)
    params = net.parameters()
    got = [params[f"layers.{k}.weight"].item() for k in range(3)] + [params["skips.0.weight"].item()]
    np.testing.assert_allclose(peer.w, got, rtol=1e-12)
    np.testing.assert_allclose(peer.losses, hist.step_loss, rtol=1e-12)
    with pytest.raises(ValueError, match="W0"):
        NumbaEpoch(WORKLOADS["W1"], *WORKLOADS["W1"].data(), LR)


def test_c_loop_trains_the_same_epoch():
    # the hand-written C loop (W0's ceiling) is compiled from the package's exercise_loop.c
    if shutil.which("cc") is None and shutil.which("gcc") is None:
        pytest.skip("no C compiler")
    w = WORKLOADS["W0"]
    X, y = w.data()
    peer = CLoop(w, X, y)
    seconds, steps = peer.block(1)
    assert steps == len(X) and seconds > 0
    net, hist = _skipnet_epoch(w, X, y)
    params = net.parameters()
    got = [params[f"layers.{k}.weight"].item() for k in range(3)] + [params["skips.0.weight"].item()]
    np.testing.assert_allclose(peer.w, got, rtol=1e-12)
    np.testing.assert_allclose(peer.losses, hist.step_loss, rtol=1e-12)


def test_c_loop_without_a_compiler_raises(monkeypatch):
    monkeypatch.setattr(c_loop.shutil, "which", lambda name: None)
    with pytest.raises(RuntimeError, match="no C compiler"):
        c_loop.compile_exercise_loop()


def test_interleave_times_every_implementation_and_reports_the_failing_one():
    class Sleeper(Impl):
        def __init__(self, name, seconds_per_step):
            self.name, self.seconds_per_step = name, seconds_per_step

        def block(self, steps):
            return steps * self.seconds_per_step, steps  # a fake clock: no sleeping

    def broken():
        raise ImportError("no such library")

    makers = [("fast", lambda: Sleeper("fast", 1e-3)), ("slow", lambda: Sleeper("slow", 4e-3)),
              ("missing", broken)]
    res = interleave("W9", makers, rounds=3, block=0.01, log=lambda *a: None, settle=0.0)
    assert set(res.per_step) == {"fast", "slow"} and all(len(v) == 3 for v in res.per_step.values())
    assert res.skipped == {"missing": "ImportError: no such library"}
    assert res.ratio("slow", "fast") == pytest.approx(4.0)
    assert check(res, ("fast", "slow", "<=", 0.5)) == ("fast / slow <= 0.5", pytest.approx(0.25), True)
    assert check(res, ("fast", "missing", "<=", 1.0))[1:] == (None, None)


def test_run_rejects_an_unknown_workload():
    with pytest.raises(ValueError, match="unknown workload"):
        run(workloads=["W7"], log=lambda *a: None)

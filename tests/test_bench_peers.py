"""The strongest peers of ``skipnet bench`` (JAX scan, numba) train the same trajectory as skipnet;
skipped where they are not installed (they are optional, for benchmarks only)."""

import numpy as np
import pytest

from skipnet import benchmark
from skipnet._compiled_peers import JaxScan, NumbaEpoch
from skipnet.trainer import Trainer


def _skipnet_epoch(w, X, y):
    net = w.make(0)
    hist = Trainer(net, loss="l1", optimizer="sgd", lr=benchmark.LR, batch_size=w.batch, epochs=1,
                   shuffle=False, divergence_factor=None, diagnose=False).fit(X, y)
    return net, hist


@pytest.mark.parametrize("name", ["W0", "W1", "W4"])
def test_jax_scan_trains_the_same_epoch(name):
    jax = pytest.importorskip("jax")
    w = benchmark.WORKLOADS[name]
    X, y = w.data()
    peer = JaxScan(w, X, y, benchmark.LR)
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
    w = benchmark.WORKLOADS["W0"]
    X, y = w.data()
    peer = NumbaEpoch(w, X, y, benchmark.LR)
    peer.block(1)
    net, hist = _skipnet_epoch(w, X, y)
    params = net.parameters()
    got = [params[f"layers.{k}.weight"].item() for k in range(3)] + [params["skips.0.weight"].item()]
    np.testing.assert_allclose(peer.w, got, rtol=1e-12)
    np.testing.assert_allclose(peer.losses, hist.step_loss, rtol=1e-12)
    with pytest.raises(ValueError, match="W0"):
        NumbaEpoch(benchmark.WORKLOADS["W1"], *benchmark.WORKLOADS["W1"].data(), benchmark.LR)

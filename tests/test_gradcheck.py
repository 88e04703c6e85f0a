"""Central finite differences (float64) against the analytic gradients of both backends.

Points within a margin of a kink (a ReLU pre-activation or an L1 residual near 0) are resampled: there
the one-sided slopes differ and finite differences do not estimate the sub-gradient.
"""

import numpy as np
import pytest
from _helpers import random_architecture, random_targets

import skipnet as sn

EPS = 1e-6
MARGIN = 1e-3


def _away_from_kinks(net, X, y, loss):
    p = net.internals.detailed_pass(np.ascontiguousarray(X))
    for k, layer in enumerate(net.layers):
        if layer.activation == "relu" and np.abs(p.z[k]).min() < MARGIN:
            return False
    return not (loss == "l1" and np.abs(p.h[-1] - y).min() < MARGIN)


def _sample(rng, loss, backend):
    while True:
        n_inputs, layers, skips = random_architecture(rng)
        if loss == "cross_entropy" and layers[-1].units < 2:
            continue
        net = sn.Network(n_inputs, layers, skips, seed=int(rng.integers(2**31)), backend=backend)
        n = int(rng.integers(1, 6))
        X = rng.normal(size=(n, n_inputs))
        y = random_targets(rng, loss, n, net.n_outputs)
        if loss != "cross_entropy" and y.ndim == 1:
            y = y[:, None]
        if _away_from_kinks(net, X, y, loss):
            return net, X, y


@pytest.mark.parametrize("case", range(12))
@pytest.mark.parametrize("loss", ["l1", "mse", "bce", "cross_entropy"])
def test_finite_differences(case, loss, backend):
    rng = np.random.default_rng(1000 + case)
    net, X, y = _sample(rng, loss, backend)
    _, grads = net.gradients(X, y, loss)
    flat = net.internals.params
    numeric = np.empty_like(flat)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + EPS
        up = net.gradients(X, y, loss)[0]
        flat[i] = old - EPS
        down = net.gradients(X, y, loss)[0]
        flat[i] = old
        numeric[i] = (up - down) / (2 * EPS)
    analytic = np.concatenate([grads[name].ravel() for name in net.parameter_names])
    np.testing.assert_allclose(analytic, numeric, rtol=1e-5, atol=1e-7)


def test_architectures_cover_every_kind_of_skip():
    """The generator behind these checks produces learned and identity skips from the input and from
    hidden layers, with biases on and off."""
    rng = np.random.default_rng(1000)
    seen = set()
    for _ in range(200):
        _, layers, skips = random_architecture(rng)
        seen |= {("identity" if s.identity else "learned", "input" if s.src < 0 else "hidden") for s in skips}
        seen |= {("bias", ly.bias) for ly in layers}
    assert seen >= {("identity", "input"), ("identity", "hidden"), ("learned", "input"),
                    ("learned", "hidden"), ("bias", True), ("bias", False)}

"""Helpers shared by the tests: tolerances and generators of random architectures and targets."""

from __future__ import annotations

import numpy as np

import skipnet as sn

RTOL = {"float32": 1e-5, "float64": 1e-12}


def assert_close(actual, expected, dtype, scale=None):
    """Elementwise closeness at the dtype's tolerance; ``scale`` (the magnitude of the terms summed
    into each entry) bounds the absolute error of sums with cancellation."""
    rtol = RTOL[str(np.dtype(dtype))]
    actual = np.asarray(actual, np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    if scale is None:
        scale = np.max(np.abs(expected), initial=1.0)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    bound = rtol * (np.abs(expected) + scale)
    bad = ~(np.abs(actual - expected) <= bound)
    assert not bad.any(), (
        f"{bad.sum()} of {bad.size} entries differ beyond rtol {rtol}: worst "
        f"{np.max(np.abs(actual - expected) / bound)} x the bound; actual {actual[bad][:5]}, "
        f"expected {expected[bad][:5]}"
    )

def random_architecture(rng, max_layers=5, max_width=6, allow_identity=True):
    """(n_inputs, layers, skips) with random widths, biases, learned and identity skips (incl. from
    the input and from hidden layers)."""
    n_inputs = int(rng.integers(1, 5))
    n_layers = int(rng.integers(2, max_layers + 1))
    widths = [int(rng.integers(1, max_width + 1)) for _ in range(n_layers)]
    layers = [sn.Dense(w, "relu", bool(rng.integers(2))) for w in widths[:-1]]
    layers.append(sn.Dense(widths[-1], "identity", bool(rng.integers(2))))
    skips = []
    for dst in range(1, n_layers):
        for src in range(-1, dst - 1):
            if rng.random() < 0.35:
                src_width = n_inputs if src < 0 else widths[src]
                identity = allow_identity and src_width == widths[dst] and rng.random() < 0.6
                skips.append(sn.Skip(src, dst, identity=identity))
    return n_inputs, layers, skips


def random_network(rng, dtype="float64", backend="cython", **kw):
    n_inputs, layers, skips = random_architecture(rng, **kw)
    return sn.Network(n_inputs, layers, skips, dtype=dtype, seed=int(rng.integers(2**31)), backend=backend)


def random_targets(rng, loss, n, n_outputs):
    if loss == "cross_entropy":
        return rng.integers(0, n_outputs, n)
    if loss == "bce":
        return rng.integers(0, 2, (n, n_outputs)).astype(float)
    return rng.normal(size=(n, n_outputs))

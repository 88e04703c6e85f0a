"""Helpers shared by the tests: tolerances and generators of random architectures and targets."""

from __future__ import annotations

import functools
import hashlib
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np

import skipnet as sn

# the directory holding the skipnet package under test (installed or built in place)
PACKAGE_ROOT = str(Path(sn.__file__).resolve().parent.parent)

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
    # below the smallest normal number values are subnormal, with absolute (not relative) precision
    bound = rtol * (np.abs(expected) + scale) + np.finfo(np.dtype(dtype)).tiny
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


def failed_fit_states(schedule_class: type, errors) -> list[tuple]:
    """A fit of 5 epochs (30 rows, batches of 4) that a schedule of ``schedule_class`` breaks, run fused and
    per-op from the same start: per path (message of the exception raised, one of ``errors``; weights;
    trainer.step_count; optimizer steps; the shuffling generator's state), to be compared."""
    rng = np.random.default_rng(8)
    X, y = rng.normal(size=(30, 2)), rng.normal(size=(30, 1))
    states = []
    for fused in (True, False):
        net = sn.Network.mlp(2, (5, 5), seed=1)
        trainer = sn.Trainer(net, loss="l1", lr=0.01, batch_size=4, epochs=5, schedule=schedule_class(),
                             fused=fused)
        try:
            trainer.fit(X, y)
        except errors as caught:
            states.append((str(caught), net.internals.params.copy(), trainer.step_count,
                           trainer.optimizer.steps, trainer.rng.bit_generator.state))
        else:
            raise AssertionError(f"the fit (fused={fused}) raised none of {errors}")
    return states


def assert_same_states(states: list[tuple]) -> None:
    """The fused and the per-op failed_fit_states agree: the message, the weights bit for bit, the counters."""
    (message, params, *counters), (message_op, params_op, *counters_op) = states
    assert message == message_op and counters == counters_op
    np.testing.assert_array_equal(params, params_op)


def run_python(code: str, cwd, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run ``python -c code`` in a fresh interpreter outside the source tree, importing the package under
    test; raises on a non-zero exit (with its stderr)."""
    out = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, cwd=cwd,
                         env={**os.environ, "PYTHONPATH": PACKAGE_ROOT}, timeout=timeout)
    assert out.returncode == 0, out.stderr
    return out


def training_digest(dtype: str, backend: str = "cython") -> str:
    """SHA-256 of the weights and step losses after a seeded, shuffled Adam run (BLAS-sized layers)."""
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(300, 8)), rng.integers(0, 3, 300)
    net = sn.Network.mlp(8, (96, 96, 96), n_outputs=3, skip="first-to-output", seed=11, dtype=dtype,
                         backend=backend)
    hist = sn.Trainer(net, loss="cross_entropy", optimizer="adam", lr=0.01, batch_size=32, epochs=3,
                      seed=5).fit(X, y)
    return hashlib.sha256(net.internals.params.tobytes() + hist.step_loss.tobytes()).hexdigest()


# examples actually run by each hypothesis test of this session (reported by conftest)
FUZZ_EXAMPLES: Counter = Counter()


def counted(test):
    """Count each example a hypothesis test's body runs to the end (not rejected by assume, not
    failing) in FUZZ_EXAMPLES; goes under @given."""

    @functools.wraps(test)
    def run(*args, **kwargs):
        result = test(*args, **kwargs)
        FUZZ_EXAMPLES[test.__name__] += 1
        return result

    return run


def examples(per_hundred: int) -> int:
    """An example count scaled by the loaded hypothesis profile (its max_examples per 100)."""
    from hypothesis import settings

    return max(1, per_hundred * settings().max_examples // 100)


class CountingFused:
    """Wraps the engine's fused lease to count kernel calls (FusedNet.run)."""

    def __init__(self, engine):
        self.engine, self.original, self.calls = engine, engine.fused, 0
        engine.fused = self

    def __call__(self, batch):
        lease, counter = self.original(batch), self

        class Lease:
            def __enter__(self):
                fused = lease.__enter__()

                class Proxy:
                    def __getattr__(self, name):
                        return getattr(fused, name)

                    def run(self, *args, **kwargs):
                        counter.calls += 1
                        return fused.run(*args, **kwargs)
                return Proxy()

            def __exit__(self, *exc):
                return lease.__exit__(*exc)
        return Lease()

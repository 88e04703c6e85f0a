"""The benchmark's workloads W0-W4 (docs/design.md section 5) and the targets and goals they are held to.

Each workload is one SGD step (L1 loss, lr ``LR``, no shuffling) of a ReLU network with a learned skip
from the first hidden layer into the output; W4 adds the identity skips of ``skip="residual"``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..network import Dense, Network, Skip

LR = 0.01


@dataclass(frozen=True)
class Workload:
    """One benchmark workload: the network, its batch and data size, and the targets it is held to."""

    name: str
    description: str
    batch: int
    dtype: str
    n_samples: int
    make: Callable[[int], Network]  # seed -> network

    def data(self) -> tuple[np.ndarray, np.ndarray]:
        """Inputs X (n_samples, n_inputs) drawn N(0, 1) and targets y (n_samples, n_outputs) from a
        fixed random teacher of the same architecture, both of the workload's dtype."""
        rng = np.random.default_rng(1234)
        teacher = self.make(4321)
        X = rng.standard_normal((self.n_samples, teacher.n_inputs)).astype(teacher.dtype)
        return X, teacher.forward(X)


def _exercise(seed: int) -> Network:
    net = Network.exercise()
    if seed != 0:  # a teacher: other weights, same architecture
        net.internals.params[...] = np.random.default_rng(seed).uniform(-1, 1, net.internals.params.size)
    return net


def _residual(seed: int) -> Network:
    hidden = 16
    layers = [Dense(64, "relu") for _ in range(hidden)] + [Dense(1, "identity")]
    skips = [Skip(k - 2, k, identity=True) for k in range(1, hidden, 2)] + [Skip(0, hidden)]
    return Network(64, layers, skips, dtype="float32", seed=seed)


WORKLOADS = {
    "W0": Workload("W0", "exercise net 1-1-1-1, no bias, batch 1, float64", 1, "float64", 1000, _exercise),
    "W1": Workload("W1", "2-16-16-1, batch 32, float32", 32, "float32", 3200,
                   lambda s: Network.mlp(2, (16, 16), 1, skip="first-to-output", dtype="float32", seed=s)),
    "W2": Workload("W2", "32-128-128-128-1, batch 64, float32", 64, "float32", 6400,
                   lambda s: Network.mlp(32, (128,) * 3, 1, skip="first-to-output", dtype="float32", seed=s)),
    "W3": Workload("W3", "784-1024-1024-10, batch 256, float32", 256, "float32", 2560,
                   lambda s: Network.mlp(784, (1024, 1024), 10, skip="first-to-output", dtype="float32",
                                         seed=s)),
    "W4": Workload("W4", "64-[64 x 16, 8 residual blocks]-1, batch 128, float32", 128, "float32", 12800,
                   _residual),
}

# the targets of docs/design.md section 5: (implementation, peer, "<=" or ">=", bound), on paired ratios
TARGETS = {
    "W0": [("skipnet fused", "C loop", "<=", 3.0)],
    "W1": [("torch eager", "skipnet fused", ">=", 100.0), ("numpy reference", "skipnet fused", ">=", 20.0)],
    "W2": [("skipnet fused", "GEMM floor", "<=", 1.2)],
    "W3": [("skipnet fused", "GEMM floor", "<=", 1.1), ("skipnet fused", "torch eager", "<=", 1.0)],
    "W4": [("skipnet fused", "GEMM floor", "<=", 1.3), ("torch eager", "skipnet fused", ">=", 4.0)],
}

# docs/design.md section 5's goals beyond the targets: ahead of the strongest peer (when installed), at the
# peer's time ratio given; W0's strongest is a hand loop like the C loop, reported beside it
GOALS = {
    "W0": [("skipnet fused", "jax scan", "<=", 0.4), ("skipnet fused", "numba epoch", "<=", 1.0)],
    "W1": [("skipnet fused", "jax scan", "<=", 0.3)],
    "W2": [("skipnet fused", "jax scan", "<=", 0.75)],
    "W3": [("skipnet fused", "jax scan", "<=", 1.0)],
    "W4": [("skipnet fused", "jax scan", "<=", 0.7)],
}

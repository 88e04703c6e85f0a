"""A small fixed training workload for instruction counts: fused fits of W1's and W2's shapes.

    valgrind --tool=callgrind --callgrind-out-file=cg.out --collect-atstart=no \
        --toggle-collect='*FusedNet*run*' python bench/callgrind_fit.py
    callgrind_annotate cg.out | head

Instruction counts do not depend on the machine's load, so two builds of the kernels can be compared
on a shared machine where timings cannot: the same counts (within a few instructions) mean the same
code ran. Collecting only inside FusedNet.run leaves Python's start-up and the imports out. The
networks, data and start weights are fixed, so every run executes the same steps.
"""

import sys

import numpy as np

from skipnet import Network, Trainer


def fit(net: Network, batch: int, n_samples: int, epochs: int) -> float:
    """Fit net on fixed N(0, 1) inputs and targets; returns the last epoch's loss (printed as a check
    that the builds compared trained the same numbers)."""
    rng = np.random.default_rng(1234)
    X = rng.standard_normal((n_samples, net.n_inputs)).astype(net.dtype)
    y = rng.standard_normal((n_samples, 1)).astype(net.dtype)
    hist = Trainer(net, loss="l1", optimizer="sgd", lr=0.01, batch_size=batch, epochs=epochs,
                   shuffle=False, divergence_factor=None, diagnose=False).fit(X, y)
    return hist.epoch_loss[-1]


def main() -> int:
    w1 = Network.mlp(2, (16, 16), 1, skip="first-to-output", dtype="float32", seed=0)
    w2 = Network.mlp(32, (128,) * 3, 1, skip="first-to-output", dtype="float32", seed=0)
    print(f"W1 shapes: {fit(w1, 32, 3200, 3)!r}")
    print(f"W2 shapes: {fit(w2, 64, 640, 2)!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

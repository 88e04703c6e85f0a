"""One epoch of training steps of each workload W0-W4 (docs/design.md section 5) for skipnet fused, skipnet
per-op, the NumPy reference and PyTorch eager (when installed). Each call trains from the same fixed
start; extra_info["steps"] gives the steps per call, so time per step = mean / steps."""

import numpy as np
import pytest

from skipnet._bench import WORKLOADS
from skipnet._bench.implementations import SkipnetFit
from skipnet._bench.peers import TorchEager
from skipnet._bench.workloads import LR

IMPLS = {
    "skipnet fused": lambda w, X, y: SkipnetFit(w, X, y, fused=True),
    "skipnet per-op": lambda w, X, y: SkipnetFit(w, X, y, fused=False),
    "numpy reference": lambda w, X, y: SkipnetFit(w, X, y, backend="numpy"),
    "torch eager": TorchEager,
}


@pytest.mark.parametrize("impl", list(IMPLS))
@pytest.mark.parametrize("name", list(WORKLOADS))
def test_training_epoch(benchmark, name, impl):
    if impl == "torch eager":
        pytest.importorskip("torch")
    w = WORKLOADS[name]
    X, y = w.data()
    runner = IMPLS[impl](w, X, y)
    steps = -(-len(X) // w.batch)
    benchmark.group = f"{name}: {w.description}, one epoch"
    benchmark.extra_info["steps"] = steps
    runner.block(steps)  # warm-up
    benchmark.pedantic(runner.block, args=(steps,), rounds=5 if name != "W3" else 3, iterations=1)


class FusedKernelAlone:
    """W0's fused kernel with no fit around it: FusedNet.run over whole epochs in order, from the fixed
    start, as the numba and C loops run theirs (``skipnet fused`` adds what a fit does in Python)."""

    def __init__(self, w, X, y):
        self.net = w.make(0)
        self.params = self.net.internals.params
        self.start = self.params.copy()
        self.X, self.y, self.n = X, y, len(X)
        self.lr = np.array([LR])

    def block(self, steps: int) -> None:
        epochs = max(1, round(steps / self.n))
        losses, totals = np.empty(epochs * self.n + 1), np.empty(epochs)
        self.params[...] = self.start
        with self.net.internals.engine.fused(1) as fused:
            fused.bind(self.X, self.y, None, np.zeros_like(self.params), None, "l1", "sgd")
            fused.run(None, self.lr, losses, totals, epochs * self.n, self.n, 0, None)
            fused.unbind()


def _loop(impl: str, w, X, y):
    """A runner of W0's step loop with ``block(steps)``."""
    if impl == "numba epoch":
        pytest.importorskip("numba")
        from skipnet._bench.peers import NumbaEpoch

        return NumbaEpoch(w, X, y)
    if impl == "C loop":
        from skipnet._bench.c_loop import CLoop

        try:
            return CLoop(w, X, y)
        except (OSError, RuntimeError) as exc:  # no C compiler here
            pytest.skip(str(exc))
    return FusedKernelAlone(w, X, y)


@pytest.mark.parametrize("impl", ["skipnet fused kernel", "numba epoch", "C loop"])
def test_exercise_loop_alone(benchmark, impl):
    """W0's step loop alone, 20 epochs per call: skipnet's fused kernel against the numba and C loops
    (the goal "level with numba" of docs/design.md section 5, without the fit's Python)."""
    w = WORKLOADS["W0"]
    X, y = w.data()
    runner = _loop(impl, w, X, y)
    steps = 20 * len(X)
    benchmark.group = "W0 step loop alone, 20 epochs"
    benchmark.extra_info["steps"] = steps
    runner.block(steps)  # warm-up
    benchmark.pedantic(runner.block, args=(steps,), rounds=20, iterations=1)

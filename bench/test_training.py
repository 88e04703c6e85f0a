"""One epoch of training steps of each workload W0-W4 (docs/design.md section 5) for skipnet fused, skipnet
per-op, the NumPy reference and PyTorch eager (when installed). Each call trains from the same fixed
start; extra_info["steps"] gives the steps per call, so time per step = mean / steps."""

import pytest

from skipnet._bench import WORKLOADS
from skipnet._bench.implementations import SkipnetFit
from skipnet._bench.peers import TorchEager

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

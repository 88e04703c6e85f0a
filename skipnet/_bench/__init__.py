"""Side-by-side timing of skipnet against its peers and ceilings: ``skipnet bench`` and bench/compare.py.

Workloads W0-W4 are those of docs/design.md section 5 (workloads.py). Every implementation trains from the
same fixed start in each timed block (so no run drifts into subnormal weights), and all of them run in
this one process, interleaved round by round; reported per implementation are the median and fastest
time per step and the paired ratio to every other implementation (timing.py).

The host comes first (host.py): the CPU's model and SIMD flags, the SIMD level of each of skipnet's code
paths, its BLAS and threshold.

Implementations: skipnet fused and per-op, skipnet's fit at the Trainer's defaults (diagnostics on,
shuffling, the divergence guard: what a user's fit runs, read against fused) and the NumPy reference
(implementations.py); PyTorch eager, JAX with the epoch under ``jax.jit`` + ``lax.scan`` and, for W0, a
numba ``@njit`` epoch loop, each when installed (peers.py); and the ceilings: for W0 a hand-written C loop of the exercise step, compiled here
with the system C compiler (c_loop.py, exercise_loop.c), for W1-W4 the step's matrix products through
NumPy (implementations.py). Further sections (sections.py): element-wise kernels against a plain copy's
bandwidth, epoch time against data size, and two networks trained in two threads against one after the
other. report.py prints the tables; suite.run is the entry point.
"""

from .suite import run
from .workloads import GOALS, LR, TARGETS, WORKLOADS, Workload

__all__ = ["GOALS", "LR", "TARGETS", "WORKLOADS", "Workload", "run"]

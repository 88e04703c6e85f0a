"""The timing protocol: implementations timed in blocks, interleaved round by round in one process,
compared by paired ratios; and the pinning of other libraries' threads to the CPUs they are given.

In each round every implementation times one block of whole epochs lasting at least ``block`` seconds
(or as many steps as the implementation it follows: ``Impl.same_blocks_as``), in an order that rotates
from round to round, after a calibration and one untimed warm-up block. A
paired ratio is the median over rounds of the ratio of two times measured in the same round, which is
what survives a noisy, shared machine.
"""

from __future__ import annotations

import os
import statistics
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field


class Impl:
    """A way to run training steps: ``block(steps)`` trains about that many steps from the fixed start
    and returns (seconds, steps run)."""

    name = ""
    same_blocks_as: str | None = None  # another implementation whose block size this one takes, uncalibrated

    def block(self, steps: int) -> tuple[float, int]:
        raise NotImplementedError


@dataclass
class Result:
    """Seconds per step of each implementation of one workload, one entry per round."""

    workload: str
    per_step: dict = field(default_factory=dict)   # impl -> [seconds per step, one per round]
    skipped: dict = field(default_factory=dict)    # impl -> reason
    block_steps: dict = field(default_factory=dict)  # impl -> steps per timed block (sets the fit lengths)

    def median(self, impl: str) -> float:
        return statistics.median(self.per_step[impl])

    def best(self, impl: str) -> float:
        return min(self.per_step[impl])

    def ratio(self, impl: str, peer: str) -> float:
        """Median over rounds of time(impl) / time(peer) measured in the same round."""
        return statistics.median(a / b for a, b in zip(self.per_step[impl], self.per_step[peer]))


def settle_seconds(threads: int | None) -> float:
    """The pause after each timed block. OpenBLAS's idle workers spin for about 0.1 s after a call;
    with more than one thread per library, a library's spinning workers would take the cores of the
    next one timed, so the pause outlasts the spinning unless every library runs on one thread."""
    return 0.02 if threads == 1 else 0.15


def interleave(workload: str, makers: list[tuple[str, Callable[[], Impl]]], rounds: int, block: float,
               log: Callable[[str], None], settle: float = 0.15, steps: dict[str, int] | None = None) -> Result:
    """Time the implementations that ``makers`` (name, constructor) build, by the protocol above. An
    implementation whose constructor raises (an optional peer that cannot run) is reported in
    ``Result.skipped``, not timed. ``steps`` (name -> steps per block) skips the calibration and the
    warm-up block, for implementations that an earlier call warmed up (whose blocks of seconds each
    would be long)."""
    result = Result(workload)
    impls = []
    for name, make in makers:
        try:
            impls.append(make())
        except Exception as exc:  # noqa: BLE001 - an optional peer that cannot run is reported, not fatal
            result.skipped[name] = f"{type(exc).__name__}: {exc}"
    steps = {impl.name: steps[impl.name] for impl in impls} if steps is not None else calibrate(impls, block)
    result.block_steps = steps
    for impl in impls:
        result.per_step[impl.name] = []
    for r in range(rounds):
        order = impls[r % len(impls):] + impls[:r % len(impls)]
        for impl in order:
            seconds, done = impl.block(steps[impl.name])
            result.per_step[impl.name].append(seconds / done)
            time.sleep(settle)  # let this library's worker threads go idle before the next one runs
        log(f"  {workload} round {r + 1}/{rounds}")
    return result


def calibrate(impls: list[Impl], block: float) -> dict[str, int]:
    """Steps per block of each implementation: a block grown until it lasts a quarter of ``block``
    seconds, then scaled; or, for one whose ``same_blocks_as`` names another timed here, that one's
    steps (so that both time fits of the same length). Each then runs one untimed warm-up block."""
    names = {impl.name for impl in impls}

    def follows(impl: Impl) -> bool:
        return impl.same_blocks_as in names

    steps = {}
    for impl in sorted(impls, key=follows):  # the followed ones first
        if follows(impl):
            steps[impl.name] = steps[impl.same_blocks_as]
        else:
            count, (seconds, done) = 1, impl.block(1)
            while seconds < block / 4:
                count *= 4
                seconds, done = impl.block(count)
            steps[impl.name] = max(1, int(done * block / seconds))
        impl.block(steps[impl.name])  # the untimed warm-up block
    return steps


def threads_over_serial(jobs: list[Callable[[], object]]) -> float:
    """Wall time of the jobs in one thread each, over their time one after the other. The threads are
    started before the clock and wait at a barrier, so that what is timed is the jobs, not the creation
    of threads (slow under the GIL against jobs of tens of milliseconds)."""
    t = time.perf_counter()
    for job in jobs:
        job()
    serial = time.perf_counter() - t
    ready, go = threading.Barrier(len(jobs) + 1), threading.Barrier(len(jobs) + 1)

    def worker(job):
        ready.wait()
        go.wait()
        job()

    workers = [threading.Thread(target=worker, args=(job,)) for job in jobs]
    for th in workers:
        th.start()
    ready.wait()
    t = time.perf_counter()
    go.wait()
    for th in workers:
        th.join()
    return (time.perf_counter() - t) / serial


def limit_xla_threads(threads: int | None) -> str | None:
    """Start JAX's CPU backend on ``threads`` cores. XLA's flags alone do not hold its thread pool to
    that many cores, so the pool's threads are created while this thread is pinned to ``threads`` CPUs
    and keep that affinity; this thread is unpinned afterwards. Works only before JAX's first use in the
    process. Returns what was done (None: nothing to do, or JAX not installed)."""
    if threads is None:
        return None
    if "jax" in sys.modules:
        return "not limited: jax was imported before the benchmark started"
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen="
                               f"{'true' if threads > 1 else 'false'} intra_op_parallelism_threads={threads}"
                               ).strip()
    if not hasattr(os, "sched_setaffinity"):
        return f"XLA_FLAGS={os.environ['XLA_FLAGS']} (no affinity on this platform)"
    allowed = os.sched_getaffinity(0)
    cpus = set(sorted(allowed)[:threads])
    os.sched_setaffinity(0, cpus)
    try:
        import jax

        jax.numpy.zeros(1).block_until_ready()  # creates the backend and its threads, pinned
    except ImportError:
        return None
    finally:
        os.sched_setaffinity(0, allowed)
    return f"XLA_FLAGS={os.environ['XLA_FLAGS']}; XLA's threads pinned to CPUs {sorted(cpus)}"

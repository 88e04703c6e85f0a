"""``skipnet bench``'s entry point: every workload timed against its peers and ceilings, then the
extra sections, printed and returned (and optionally written as JSON)."""

from __future__ import annotations

import json
import os
import platform
from collections.abc import Callable

import numpy as np

from .. import _kernels as K
from . import report, sections
from .c_loop import CLoop
from .host import describe, host_lines
from .implementations import DEFAULTS, GemmFloor, SkipnetFit, defaults
from .peers import JaxScan, NumbaEpoch, TorchEager
from .timing import Impl, interleave, limit_xla_threads, settle_seconds
from .workloads import WORKLOADS, Workload


def run(quick: bool = False, workloads: list[str] | None = None, json_path: str | None = None,
        threads: int | None = None, log: Callable[[str], None] = print, rounds: int | None = None,
        block: float | None = None, torch: bool = True, compiled: bool = True) -> dict:
    """Run the comparison, print the tables, and return (and optionally write as JSON) the results.

    workloads: names out of WORKLOADS (default: all of them, plus the element-wise and scaling
    sections); ValueError for an unknown name. threads: BLAS/OpenMP threads for every library
    (threadpoolctl, torch.set_num_threads, XLA's pool pinned); None keeps their defaults (here: one per
    core). rounds, block: override the protocol's (7 rounds of 0.25 s blocks; 3 of 0.05 s with quick).
    torch=False leaves PyTorch out even when installed; compiled=False leaves out JAX and numba (the
    strongest peers, timed when installed)."""
    if threads is not None:
        try:
            from threadpoolctl import threadpool_limits
        except ImportError as exc:
            raise RuntimeError("threads= needs threadpoolctl (pip install 'skipnet[bench]')") from exc
        with threadpool_limits(threads):
            return _run(quick, workloads, json_path, threads, log, rounds, block, torch, compiled)
    return _run(quick, workloads, json_path, threads, log, rounds, block, torch, compiled)


def _makers(w: Workload, X: np.ndarray, y: np.ndarray, torch_ok: bool,
            compiled: bool) -> list[tuple[str, Callable[[], Impl]]]:
    """The implementations timed on workload w, as (name, constructor)."""
    makers: list[tuple[str, Callable[[], Impl]]] = [
        ("skipnet fused", lambda: SkipnetFit(w, X, y, fused=True)),
        (DEFAULTS, lambda: defaults(w, X, y)),
        ("skipnet per-op", lambda: SkipnetFit(w, X, y, fused=False)),
        ("numpy reference", lambda: SkipnetFit(w, X, y, backend="numpy"))]
    if torch_ok:
        makers.append(("torch eager", lambda: TorchEager(w, X, y)))
    if compiled:
        makers.append(("jax scan", lambda: JaxScan(w, X, y)))
        if w.name == "W0":
            makers.append(("numba epoch", lambda: NumbaEpoch(w, X, y)))
    makers.append(("C loop", lambda: CLoop(w, X, y)) if w.name == "W0" else
                  ("GEMM floor", lambda: GemmFloor(w, X, y)))
    return makers


def _versions(*modules: str) -> dict:
    out = {}
    for name in modules:
        try:
            out[name] = __import__(name).__version__
        except ImportError:
            out[name] = None
    return out


def _run(quick, workloads, json_path, threads, log, rounds, block, use_torch, compiled) -> dict:
    rounds = rounds or (3 if quick else 7)
    block = block or (0.05 if quick else 0.25)
    names = list(workloads or WORKLOADS)
    unknown = [n for n in names if n not in WORKLOADS]
    if unknown:
        raise ValueError(f"unknown workload(s) {unknown}; choose from {list(WORKLOADS)}")
    torch_ok, torch_version = False, None
    if use_torch:
        try:
            import torch

            torch_ok, torch_version = True, torch.__version__
            if threads is not None:
                torch.set_num_threads(threads)
        except ImportError:
            pass
    xla_flags = limit_xla_threads(threads) if compiled else None
    host = describe()
    rest = {"cores": os.cpu_count(), "python": platform.python_version(), "numpy": np.__version__,
            "torch": torch_version, "simd": K.get_simd(), "threads": threads,
            **(_versions("jax", "numba") if compiled else {}), "xla_flags": xla_flags}
    machine = {**host, **rest}
    for line in host_lines(host):
        log(line)
    log(f"skipnet bench: {rounds} rounds, blocks of >= {block:g} s; {rest}")
    out = {"machine": machine, "quick": quick, "workloads": {}, "elementwise": None,
           "elementwise_in_cache": None, "scaling": None}
    for name in names:
        w = WORKLOADS[name]
        X, y = w.data()
        res = interleave(name, _makers(w, X, y, torch_ok, compiled), rounds, block, log, settle_seconds(threads))
        out["workloads"][name] = report.workload_table(w, res, log)
    if workloads is None:
        # 1M elements measure memory bandwidth; one W4 layer (128 x 64) stays in cache, where SIMD tells
        for key, size, what in [("elementwise", 1 << 20, "1M float32"),
                                ("elementwise_in_cache", 8192, "8192 float32 (one W4 layer, in cache)")]:
            out[key] = sections.elementwise(rounds, size)
            report.elementwise_table(what, out[key], log)
        out["scaling"] = sections.scaling(rounds)
        report.scaling_table(out["scaling"], log)
    if json_path:
        with open(json_path, "w") as f:
            json.dump(out, f, indent=1)
        log(f"\nwrote {json_path}")
    return out

"""`skipnet bench`: the side-by-side timing of docs/design.md section 5."""

from __future__ import annotations

from ._paths import check_outputs


def add_parser(sub) -> None:
    p = sub.add_parser(
        "bench", help="time skipnet against the NumPy reference, PyTorch, JAX and the hardware ceilings",
        description="Side-by-side timing of one training step of workloads W0-W4 (docs/design.md section 5): "
                    "skipnet fused and per-op, skipnet's fit at the Trainer's defaults (the row 'skipnet fit "
                    "(defaults)', read against fused), the NumPy reference, PyTorch eager, JAX (the epoch "
                    "under lax.scan) and numba (W0) when installed, a hand-written C loop (W0) and the step's "
                    "GEMM time through NumPy (W1-W4), interleaved round by round in this process; medians and "
                    "paired ratios, after a line naming the CPU, its SIMD flags and the SIMD level each of "
                    "skipnet's paths uses. Also element-wise kernels against copy bandwidth, and scaling "
                    "with data size and threads.")
    p.add_argument("--quick", action="store_true", help="3 short rounds (under a minute) instead of 7")
    p.add_argument("--json", metavar="FILE", default=None, help="also write the results as JSON")
    p.add_argument("--workloads", default=None,
                   help="comma-separated subset of W0,W1,W2,W3,W4 (default: all, plus the extra sections)")
    p.add_argument("--threads", type=int, default=None,
                   help="BLAS/OpenMP threads for every library (needs threadpoolctl; default: theirs)")
    p.set_defaults(run=run)


def run(args) -> int:
    from .. import _bench

    if args.threads is not None and args.threads < 1:
        raise ValueError("--threads must be >= 1")
    check_outputs({"--json": args.json})  # before minutes of timing
    workloads = [w.strip() for w in args.workloads.split(",") if w.strip()] if args.workloads else None
    _bench.run(quick=args.quick, workloads=workloads, json_path=args.json, threads=args.threads)
    return 0

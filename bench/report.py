"""Markdown tables from the JSON files that `skipnet bench --json FILE` (bench/compare.py) writes.

    python bench/report.py run1.json [run2.json ...]

One table per workload: median and fastest time per step of every implementation, and its paired
ratio to the others; then the targets and goals, the element-wise kernels and the scaling checks. With several
files the values of each run are shown side by side (run1 / run2 / ...)."""

from __future__ import annotations

import json
import sys


def _fmt(seconds: float) -> str:
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6), ("ns", 1e-9)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def _join(values) -> str:
    return " / ".join(values)


def tables(runs: list[dict]) -> str:
    out = []
    first = runs[0]
    hosts = []  # runs from different hosts must not be read as one: each host named once
    for r in runs:
        machine = r["machine"]
        if "simd_paths" in machine:
            paths = ", ".join(f"{k} {v}" for k, v in machine["simd_paths"].items())
            line = (f"Host: {machine['cpu']} ({' '.join(machine['cpu_flags'])}); skipnet SIMD: {paths}; "
                    f"BLAS from m*n*k >= {machine.get('blas_thresholds', machine.get('blas_threshold'))}\n")
            if line not in hosts:
                hosts.append(line)
    out.extend(hosts)
    out.append(f"Machine: {first['machine']}\n")
    for name, w in first["workloads"].items():
        impls = list(w["median_per_step"])
        # "skipnet fused" as a column when the defaults row is there: defaults / fused is the figure to read
        shown = ("numpy reference", "torch eager", "jax scan", "C loop", "GEMM floor")
        if "skipnet fit (defaults)" in impls:
            shown = ("skipnet fused", *shown)
        peers = [p for p in impls if p in shown]
        out.append(f"#### {name}: {w['description']}\n")
        out.append("| implementation | median / step | fastest | " + " | ".join(f"÷ {p}" for p in peers) + " |")
        out.append("|---" * (3 + len(peers)) + "|")
        for impl in impls:
            cells = [_join(_fmt(r["workloads"][name]["median_per_step"][impl]) for r in runs),
                     _join(_fmt(r["workloads"][name]["fastest_per_step"][impl]) for r in runs)]
            cells += [_join(f"{r['workloads'][name]['paired_ratio'][impl][p]:.3g}" for r in runs) for p in peers]
            out.append(f"| {impl} | " + " | ".join(cells) + " |")
        for kind in ("targets", "goals"):
            for i, target in enumerate(w.get(kind, [])):
                values = [r["workloads"][name][kind][i] for r in runs]
                verdicts = _join("—" if v["met"] is None else
                                 f"{v['value']:.3g} ({'met' if v['met'] else 'missed'})" for v in values)
                out.append(f"\n{kind[:-1].capitalize()} {target['target']}: {verdicts}")
        out.append("")
    for key, what in [("elementwise", "1M float32"), ("elementwise_in_cache", "8192 float32 (in cache)")]:
        if not first.get(key):
            continue
        out.append(f"#### Element-wise kernels, {what} (GB/s counted as bytes read + written)\n")
        out.append("| kernel | GB/s | of a copy's |")
        out.append("|---|---|---|")
        for kernel in first[key]:
            out.append(f"| {kernel} | " + _join(f"{r[key][kernel]['GB/s']:.1f}" for r in runs) + " | "
                       + _join(f"{100 * r[key][kernel]['of copy']:.0f}%" for r in runs) + " |")
        out.append("")
    if first.get("scaling"):
        out.append("#### Scaling (W1, fused)\n")
        for key in first["scaling"]:
            out.append(f"- {key}: " + _join(f"{r['scaling'][key]:.3g}" for r in runs if key in r["scaling"]))
    return "\n".join(out)


def main(argv=None) -> int:
    paths = sys.argv[1:] if argv is None else argv
    if not paths:
        print(__doc__)
        return 2
    runs = []
    for path in paths:
        with open(path) as f:
            runs.append(json.load(f))
    print(tables(runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())

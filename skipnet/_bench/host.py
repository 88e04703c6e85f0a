"""What the benchmark ran on: the CPU's model and SIMD flags, the SIMD level of each of skipnet's code
paths and the BLAS behind its large products, printed before the tables and stored in the JSON, so that
figures from different machines are never read as one another's."""

from __future__ import annotations

import platform

from .. import _kernels as K

# the /proc/cpuinfo flags that decide which code a CPU can run, in the order they are reported
SIMD_FLAGS = ("avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16", "avx512_fp16")
CPUINFO = "/proc/cpuinfo"


def _cpuinfo_field(name: str, path: str) -> str | None:
    """The value of the first ``name : value`` line of a /proc/cpuinfo-like file; None when the file
    cannot be read or has no such line."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                key, sep, value = line.partition(":")
                if sep and key.strip() == name:
                    return value.strip()
    except OSError:
        return None
    return None


def cpu_model(path: str = CPUINFO) -> str:
    """The first 'model name' of /proc/cpuinfo; elsewhere platform.processor() (or the machine type)."""
    return _cpuinfo_field("model name", path) or platform.processor() or platform.machine() or "unknown"


def cpu_simd_flags(path: str = CPUINFO) -> list[str]:
    """The flags of SIMD_FLAGS this CPU reports, from /proc/cpuinfo; where there is none, what skipnet's
    own check can tell (AVX2 and FMA, together)."""
    flags = _cpuinfo_field("flags", path)
    if flags is None:
        return ["avx2", "fma"] if K.cpu_has_avx2() else []
    present = set(flags.split())
    return [flag for flag in SIMD_FLAGS if flag in present]


def simd_paths() -> dict[str, str]:
    """The SIMD level each code path uses, {"tiles", "elementwise", "losses", "blas"}, from the
    extension's report (the BLAS as 'openblas <version> (<architecture>)' when threadpoolctl finds it)."""
    report = dict(K.simd_report())
    blas = report["blas"]
    if isinstance(blas, dict):
        report["blas"] = f"{blas.get('internal_api')} {blas.get('version')} ({blas.get('architecture')})"
    return report


def describe() -> dict:
    """The host as the JSON report stores it."""
    return {"cpu": cpu_model(), "cpu_flags": cpu_simd_flags(), "cpu_simd_level": K.cpu_simd_level(),
            "simd_paths": simd_paths(), "blas_thresholds": K.blas_thresholds()}


def host_lines(host: dict) -> list[str]:
    """describe()'s result as the lines printed above the tables."""
    flags = " ".join(host["cpu_flags"]) or "none of " + ", ".join(SIMD_FLAGS)
    paths = ", ".join(f"{path} {level}" for path, level in host["simd_paths"].items())
    return [f"host: {host['cpu']}; SIMD flags: {flags} (skipnet's best level here: {host['cpu_simd_level']})",
            f"skipnet SIMD in use: {paths}; BLAS from m*n*k >= "
            + ", ".join(f"{form} 2^{int(v).bit_length() - 1}" for form, v in host["blas_thresholds"].items())]

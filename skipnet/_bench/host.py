"""What the benchmark ran on: the CPU's model and SIMD flags, the SIMD level of each of skipnet's code
paths and the BLAS behind its large products, printed before the tables and stored in the JSON, so that
figures from different machines are never read as one another's."""

from __future__ import annotations

import os
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


def _openblas() -> str:
    """The OpenBLAS that threadpoolctl finds loaded (SciPy's first: skipnet's gemm calls go through
    scipy.linalg.cython_blas), as 'OpenBLAS <version> (<architecture>, <threads> threads)'."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "unknown"
    found = [lib for lib in threadpool_info() if lib.get("internal_api") == "openblas"]
    if not found:
        return "unknown"
    # NumPy's copy is named libscipy_openblas too: SciPy's is the one in scipy.libs
    lib = min(found, key=lambda lib: os.path.basename(os.path.dirname(str(lib.get("filepath", "")))) != "scipy.libs")
    return (f"OpenBLAS {lib.get('version')} ({lib.get('architecture')}, "
            f"{lib.get('num_threads')} thread{'' if lib.get('num_threads') == 1 else 's'})")


def simd_paths() -> dict[str, str]:
    """The SIMD level each code path uses: {"tiles", "elementwise", "losses", "blas"}. From the
    extension's own report when it has one; else get_simd() for the three paths it selects and the
    loaded OpenBLAS for the large products."""
    if hasattr(K, "simd_report"):
        return dict(K.simd_report())
    level = K.get_simd()
    return {"tiles": level, "elementwise": level, "losses": level, "blas": _openblas()}


def cpu_simd_level() -> str:
    """The best SIMD level of skipnet's that this CPU supports."""
    if hasattr(K, "cpu_simd_level"):
        return str(K.cpu_simd_level())
    return "avx2" if K.cpu_has_avx2() else "baseline"


def describe() -> dict:
    """The host as the JSON report stores it."""
    return {"cpu": cpu_model(), "cpu_flags": cpu_simd_flags(), "cpu_simd_level": cpu_simd_level(),
            "simd_paths": simd_paths(), "blas_threshold": K.get_blas_threshold()}


def host_lines(host: dict) -> list[str]:
    """describe()'s result as the lines printed above the tables."""
    flags = " ".join(host["cpu_flags"]) or "none of " + ", ".join(SIMD_FLAGS)
    paths = ", ".join(f"{path} {level}" for path, level in host["simd_paths"].items())
    return [f"host: {host['cpu']}; SIMD flags: {flags} (skipnet's best level here: {host['cpu_simd_level']})",
            f"skipnet SIMD in use: {paths}; BLAS threshold m*n*k >= {host['blas_threshold']:,}"]

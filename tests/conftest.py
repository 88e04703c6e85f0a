"""Shared fixtures (backends, dtypes, BLAS paths), hypothesis profiles and the count of fuzz examples.

Hypothesis profiles, chosen with SKIPNET_HYPOTHESIS_PROFILE: "default" (the fuzz suite runs a little over
10,000 examples in well under a minute), "ci-heavy" (10x) and "exhaustive" (100x). Fuzz tests size their
example counts relative to the profile's max_examples (see _helpers.examples).
"""

from __future__ import annotations

import os

import pytest
from _helpers import FUZZ_EXAMPLES
from hypothesis import HealthCheck, settings

from skipnet import _kernels

_COMMON = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large]}
settings.register_profile("default", max_examples=100, **_COMMON)
settings.register_profile("ci-heavy", max_examples=1_000, **_COMMON)
settings.register_profile("exhaustive", max_examples=10_000, **_COMMON)
settings.load_profile(os.environ.get("SKIPNET_HYPOTHESIS_PROFILE", "default"))

DTYPES = ["float32", "float64"]
BACKENDS = ["cython", "numpy"]


@pytest.fixture(params=DTYPES)
def dtype(request):
    return request.param


@pytest.fixture(params=BACKENDS)
def backend(request):
    return request.param


@pytest.fixture(params=["loops", "blas"])
def blas_path(request):
    """Force every product through plain loops, or every product through BLAS gemm."""
    old = _kernels.get_blas_threshold()
    _kernels.set_blas_threshold(2**62 if request.param == "loops" else 0)
    yield request.param
    _kernels.set_blas_threshold(old)


@pytest.fixture(params=["avx512", "avx2", "generic512", "baseline"])
def simd(request):
    """Run with the register tiles and element-wise loops of every SIMD level: AVX-512 and AVX2 where
    the CPU has them, generic512 (the AVX-512 source on SSE2) and the SSE2 baseline."""
    if request.param not in _kernels.simd_levels():
        pytest.skip(f"this CPU or build cannot run {request.param}")
    old = _kernels.get_simd()
    _kernels.set_simd(request.param)
    yield request.param
    _kernels.set_simd(old)


def pytest_collection_modifyitems(config, items):
    """Tests marked ``sanitize`` build a sanitized extension (minutes): only with ``-m sanitize``."""
    if "sanitize" in (config.getoption("markexpr") or ""):
        return
    skip = pytest.mark.skip(reason="opt-in: run with -m sanitize")
    for item in items:
        if "sanitize" in item.keywords:
            item.add_marker(skip)


def pytest_terminal_summary(terminalreporter):
    if FUZZ_EXAMPLES:
        total = sum(FUZZ_EXAMPLES.values())
        profile = os.environ.get("SKIPNET_HYPOTHESIS_PROFILE", "default")
        terminalreporter.write_line(f"hypothesis examples run: {total} in {len(FUZZ_EXAMPLES)} fuzz tests "
                                    f"(profile {profile!r})")

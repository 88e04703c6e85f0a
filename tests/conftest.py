"""Shared fixtures: backends, dtypes, tolerances and a generator of random architectures."""

from __future__ import annotations

import pytest

from skipnet import _kernels

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

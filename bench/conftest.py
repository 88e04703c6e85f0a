"""pytest-benchmark suites (not part of the test run: pyproject's testpaths is tests/).

    pip install -e '.[bench]'           # or: pip install pytest-benchmark threadpoolctl
    pytest bench/                        # everything; -k W1, -k relu, --benchmark-group-by=group ...

Every benchmark is grouped with its NumPy (and PyTorch) counterpart so pytest-benchmark's table
compares them side by side. bench/compare.py does the interleaved, paired comparison."""

import pytest

pytest.importorskip("pytest_benchmark")

"""Opt-in (``pytest -m sanitize``): the kernels' tests against a build with Cython bounds checks,
AddressSanitizer and UndefinedBehaviorSanitizer (tools/sanitize.sh), which must report nothing.

The whole suite runs the same way in CI (.ci/run); this test runs a subset that exercises every
kernel, for a quick check from a source checkout (it builds the extension, about a minute)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "tools" / "sanitize.sh"
SUBSET = ["tests/test_kernels.py", "tests/test_exercise.py", "tests/test_gradcheck.py", "tests/test_network.py",
          "tests/test_trainer.py", "tests/test_threads.py"]


@pytest.mark.sanitize
@pytest.mark.skipif(not SCRIPT.exists(), reason="needs a source checkout (tools/sanitize.sh)")
@pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc with its sanitizer runtimes")
def test_kernels_are_clean_under_asan_and_ubsan():
    out = subprocess.run(["bash", str(SCRIPT), *SUBSET], capture_output=True, text=True,
                         env={**os.environ, "PYTHON": sys.executable}, timeout=1800, check=False)
    tail = out.stdout[-3000:] + out.stderr[-3000:]
    assert out.returncode == 0, tail
    assert "sanitizer reports: 0" in out.stdout and " passed" in out.stdout, tail

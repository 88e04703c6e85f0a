"""Every ```python block of README.md runs as written, alone, in a fresh interpreter (in a temporary folder)."""

from __future__ import annotations

import ast
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import skipnet

README = Path(__file__).resolve().parent.parent / "README.md"
PACKAGE_ROOT = str(Path(skipnet.__file__).resolve().parent.parent)
BLOCKS = re.findall(r"^```python\n(.*?)^```", README.read_text(encoding="utf-8"), re.DOTALL | re.MULTILINE) if README.exists() else []


def _missing_modules(code: str) -> list[str]:
    """Top-level modules the block imports that are not installed (torch, onnxruntime, sklearn...)."""
    names = set()
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return sorted(name for name in names if importlib.util.find_spec(name) is None)


@pytest.mark.skipif(not README.exists(), reason="README.md is not beside the tests (an installed wheel)")
def test_readme_has_python_blocks():
    assert len(BLOCKS) >= 6


@pytest.mark.parametrize("code", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_readme_block_runs(code, tmp_path):
    missing = _missing_modules(code)
    if missing:
        pytest.skip(f"needs {', '.join(missing)}")
    path = os.pathsep.join(filter(None, [PACKAGE_ROOT, os.environ.get("PYTHONPATH")]))
    result = subprocess.run([sys.executable, "-c", code], check=False, cwd=tmp_path, capture_output=True, text=True,
                            timeout=300, env={**os.environ, "PYTHONPATH": path, "MPLBACKEND": "Agg"})
    assert result.returncode == 0, f"{code}\n--- stderr ---\n{result.stderr[-3000:]}"
    if "# True" in code:  # the block says what it prints
        assert "False" not in result.stdout and "True" in result.stdout, result.stdout

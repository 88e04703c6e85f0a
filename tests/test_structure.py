"""The package's structure: no module reads or writes another module's private attributes.

A name with a leading underscore belongs to the module that defines it (as a module-level name, a class
attribute, or an attribute its own code assigns through ``self``/``cls``); every other module goes
through public names, and a Network's buffers, checks, locks and engine through ``net.internals``.
The import layers are checked by import-linter (``lint-imports``, configured in pyproject.toml)."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import skipnet

PACKAGE = Path(skipnet.__file__).resolve().parent


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _defined_privates(tree: ast.AST) -> set[str]:
    """Private names a module defines: module and class bodies, and self./cls. assignments."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                for part in ast.walk(target):
                    if isinstance(part, ast.Name):
                        names.add(part.id)
                    elif isinstance(part, ast.Attribute) and isinstance(part.value, ast.Name) \
                            and part.value.id in ("self", "cls"):
                        names.add(part.attr)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and _private(node.value):
            names.add(node.value)  # __slots__ entries, setattr/getattr names
    return {name for name in names if _private(name)}


def _foreign_private_reads(path: Path) -> list[str]:
    """``line: expression`` for each private attribute read in ``path`` that its module does not define."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    own = _defined_privates(tree)
    found = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Attribute) and _private(node.attr)) or node.attr in own:
            continue
        value = node.value
        if isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id == "super":
            continue
        found.append(f"{node.lineno}: {ast.unparse(node)}")
    return found


def test_no_module_reads_another_modules_private_attributes():
    found = [f"{path.relative_to(PACKAGE.parent)}:{hit}" for path in sorted(PACKAGE.rglob("*.py"))
             for hit in _foreign_private_reads(path)]
    assert not found, "private attributes read outside their module:\n" + "\n".join(found)


def test_the_check_finds_a_reach_in(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("class A:\n    def __init__(self):\n        self._mine = 1\n\n"
                      "def f(net, a):\n    return net._params, a._mine, super()._x\n")
    assert _foreign_private_reads(module) == ["6: net._params"]


def test_the_import_layers_hold():
    """pyproject.toml's [tool.importlinter] contract: no module imports from a layer above its own."""
    pytest.importorskip("importlinter")
    root = Path(__file__).resolve().parent.parent  # the source tree (its pyproject.toml holds the contract)
    command = (shutil.which("lint-imports", path=str(Path(sys.executable).parent))
               or shutil.which("lint-imports"))
    if command is None:
        pytest.skip("lint-imports is not on the PATH")
    out = subprocess.run([command, "--config", str(root / "pyproject.toml")], check=False, cwd=root,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert "1 kept, 0 broken" in out.stdout

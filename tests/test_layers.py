"""The layers: the science library ``vasco/`` never imports Prefect or the orchestration packages."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

VASCO = Path(__file__).resolve().parents[1] / "vasco"
FORBIDDEN = ("prefect", "flows", "tasks")


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return found


def forbidden_imports(root: Path = VASCO, forbidden: tuple[str, ...] = FORBIDDEN) -> list[str]:
    """``file:line module`` for each import of a ``forbidden`` package (prefect, flows, tasks) under ``root``."""
    bad = []
    for path in sorted(root.rglob("*.py")):
        for line, name in _imports(path):
            if name.split(".")[0] in forbidden:
                bad.append(f"{path.relative_to(root.parent)}:{line} {name}")
    return bad


def test_vasco_source_imports_no_orchestration():
    assert forbidden_imports() == []


def test_tasks_import_no_flows():
    """The layers go one way: flows use tasks, tasks use the science library, never the flows."""
    assert forbidden_imports(VASCO.parent / "tasks", ("flows",)) == []


def test_the_check_sees_a_forbidden_import(tmp_path):
    pkg = tmp_path / "vasco" / "sub"
    pkg.mkdir(parents=True)
    (pkg / "m.py").write_text("import numpy\n\ndef f():\n    from prefect import task\n")
    assert forbidden_imports(tmp_path / "vasco") == ["vasco/sub/m.py:4 prefect"]


def test_importing_every_vasco_module_loads_no_orchestration():
    """Indirect imports too: load every module of the package, then look at sys.modules."""
    names = sorted(
        ".".join(p.relative_to(VASCO.parent).with_suffix("").parts).removesuffix(".__init__")
        for p in VASCO.rglob("*.py")
    )
    code = (
        "import importlib, sys\n"
        f"for n in {names!r}: importlib.import_module(n)\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({FORBIDDEN!r})))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False, cwd=VASCO.parent)
    if out.returncode != 0:
        pytest.fail(f"importing the vasco modules failed:\n{out.stderr[-2000:]}")
    assert out.stdout.strip() == "[]"

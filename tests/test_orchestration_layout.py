"""The orchestration files keep to one job each: no import circle, no import-path edits."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _module_level_imports(path: Path) -> set[str]:
    """Modules imported at module level (not inside functions or ``if __name__ == "__main__"``)."""
    names: set[str] = set()
    for node in ast.parse(path.read_text(), str(path)).body:
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return names


def test_survey_and_cli_do_not_import_each_other_at_module_level():
    survey = _module_level_imports(REPO / "flows" / "survey.py")
    cli = _module_level_imports(REPO / "flows" / "cli.py")
    assert not any(n == "flows.cli" or n.startswith("flows.cli.") for n in survey)
    assert not any(n == "flows.survey" or n.startswith("flows.survey.") for n in cli)
    # The survey module holds the flows; parsing options is the CLI's.
    assert "argparse" not in survey and "argparse" in cli


def test_no_import_path_edits():
    found = []
    for folder in ("flows", "tasks", "vasco", "scripts", "deployments"):
        for path in sorted((REPO / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Attribute) and ast.unparse(node) == "sys.path":
                    found.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert found == []

"""Load a helper module of ``tests/`` (e.g. ``goldens``) into a script, from its file.

The scripts that reuse the tests' helpers load them by path, so nothing is
put on the import path and no module of ``tests/`` can shadow another one.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

__all__ = ["TESTS", "load"]

#: The repository's tests/ folder.
TESTS = Path(__file__).resolve().parents[1] / "tests"


def load(name: str) -> ModuleType:
    """The module ``tests/<name>.py``, imported once under its own name.

    Parameters
    ----------
    name : str
        The module's name, e.g. ``"goldens"``.

    Returns
    -------
    types.ModuleType
        The module (the one already imported, if it was).

    Raises
    ------
    FileNotFoundError
        When ``tests/<name>.py`` does not exist.
    """
    if name in sys.modules:
        return sys.modules[name]
    path = TESTS / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None or not path.is_file():
        raise FileNotFoundError(f"{path}: no such test helper")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # before it runs, as an ordinary import does
    spec.loader.exec_module(module)
    return module

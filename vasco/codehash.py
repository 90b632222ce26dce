"""Code fingerprints of the per-tile steps: the code part of a step's key.

A step record (:mod:`vasco.records`) must stop being valid as soon as the
code that made it changes, and only then.  The fingerprint of a step
function covers, found statically (with :mod:`ast`, nothing is imported):

* the function's own source and that of every definition of its module it
  uses, transitively: same-module helpers it calls, nested functions,
  classes, module constants (for a step of :mod:`vasco.steps`, e.g. its
  module's pure ``run``), each as its source lines;
* every ``vasco`` module those definitions name, through a module-level
  import of the module (``from vasco.filters.cuts import apply_quality_cuts``)
  or a function-local one, hashed whole, with the transitive closure of
  the ``vasco`` imports of those modules (every import in a module counts,
  function-local ones too) and the package ``__init__`` modules on the way;
* the shipped data files those modules read: the SExtractor/PSFEx
  configuration files (``vasco/extraction/config/``) when the closure holds
  :mod:`vasco.extraction`, the plate table when it holds
  :mod:`vasco.plates.table`;
* the versions of the external tools when the closure holds
  :mod:`vasco.extraction`: the version ``source-extractor --version`` and
  ``psfex --version`` state (:func:`vasco.tools.tool_version`; ``"missing"``
  when the tool is not on PATH, ``"unknown: ..."`` when it does not answer).

So a step depends on the modules its own work uses, not on everything its
module imports: a change to :mod:`vasco.filters.cuts` re-runs the selection
and the SPREAD_MODEL cut, not the extraction or the astrometry.  Python
packages outside ``vasco`` (numpy, astropy ...) are not part of it.

Sources are read from the files of the ``vasco`` package this module belongs
to, once per process (the code a process runs does not change under it
either); the tools are looked up on PATH at every call and each executable's
version is asked once per process.  The same code and tools give the same
digest in every process.
"""

from __future__ import annotations

import ast
import hashlib
import inspect
import json
import os
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from vasco.tools import tool_version

__all__ = [
    "CodeFingerprint",
    "code_fingerprint",
    "fingerprint_of",
    "module_closure",
    "module_path",
    "tool_versions",
    "DATA_FILES",
    "TOOLS",
]

#: Root of the ``vasco`` package whose sources are hashed (the one running).
PACKAGE_ROOT = Path(__file__).resolve().parent

#: Shipped data files (relative to the package root, a folder means every file in it) read by
#: a module or package: a step whose closure holds that module depends on them.
DATA_FILES: dict[str, tuple[str, ...]] = {
    "vasco.extraction": ("extraction/config",),
    "vasco.plates.table": ("data/poss1e_plates.json.gz",),
}

#: External tools (name in the fingerprint -> executables tried, as
#: :func:`vasco.extraction.sextractor.find_tool` does) run by the modules of a package.
TOOLS: dict[str, dict[str, tuple[str, ...]]] = {
    "vasco.extraction": {"source-extractor": ("source-extractor", "sex"), "psfex": ("psfex",)},
}


@dataclass(frozen=True)
class CodeFingerprint:
    """What went into the code part of a step's key.

    Attributes
    ----------
    digest
        Hex digest (16 characters) of everything below, with each module's,
        definition's and file's content hash.
    definitions
        Qualified names of the definitions of the step's own module that were
        hashed by their source lines (the step function among them).
    modules
        ``vasco`` modules hashed whole, sorted.
    files
        Shipped data files hashed (paths relative to the package root), sorted.
    tools
        External tool -> version string (``"missing"`` when not on PATH).
    """

    digest: str
    definitions: tuple[str, ...] = ()
    modules: tuple[str, ...] = ()
    files: tuple[str, ...] = ()
    tools: tuple[tuple[str, str], ...] = ()

    def summary(self) -> dict[str, Any]:
        """The fingerprint as a small JSON-able dict, for a step record."""
        return {
            "digest": self.digest,
            "definitions": list(self.definitions),
            "modules": list(self.modules),
            "files": list(self.files),
            "tools": dict(self.tools),
        }


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def module_path(name: str, root: Path = PACKAGE_ROOT) -> Path | None:
    """File of the ``vasco`` module or package ``name`` (None if there is none)."""
    parts = name.split(".")
    if parts[0] != "vasco":
        return None
    base = root.joinpath(*parts[1:])
    for path in (base.with_suffix(".py") if len(parts) > 1 else None, base / "__init__.py"):
        if path is not None and path.is_file():
            return path
    return None


@cache
def _source(path: Path) -> str:
    return path.read_text(encoding="utf-8")


@cache
def _tree(path: Path) -> ast.Module:
    return ast.parse(_source(path), filename=str(path))


@cache
def _file_sha(path: Path) -> str:
    return _sha(path.read_bytes())


def _parents(name: str) -> list[str]:
    """``vasco.a.b`` -> ``['vasco', 'vasco.a']``: the packages importing it runs first."""
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def _from_module(node: ast.ImportFrom, current: str) -> str | None:
    """Absolute module name of a ``from X import ...`` in module ``current``."""
    if not node.level:
        return node.module
    path = module_path(current)
    is_package = path is not None and path.name == "__init__.py"
    base = current.split(".")
    base = base if is_package else base[:-1]
    if node.level > 1:
        base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else [])) or None


def _alias_modules(node: ast.Import | ast.ImportFrom, alias: ast.alias, current: str) -> set[str]:
    """The ``vasco`` modules one imported name brings in (with their parent packages)."""
    if isinstance(node, ast.Import):
        names = [alias.name]
    else:
        mod = _from_module(node, current)
        if mod is None:
            return set()
        names = [mod]
        sub = f"{mod}.{alias.name}"
        if module_path(sub) is not None:  # ``from vasco.extraction import sextractor``
            names.append(sub)
    out: set[str] = set()
    for name in names:
        if name == "vasco" or name.startswith("vasco."):
            out.add(name)
            out.update(_parents(name))
    return out


def _imports_in(nodes: Iterable[ast.AST], current: str) -> set[str]:
    """Every ``vasco`` module imported anywhere within ``nodes``."""
    out: set[str] = set()
    todo = list(nodes)
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                out |= _alias_modules(node, alias, current)
            continue
        # Imports are statements: only statement bodies can hold one (no need to walk expressions).
        for block in ("body", "orelse", "finalbody", "handlers", "cases"):
            children = getattr(node, block, None)
            if isinstance(children, list):
                todo.extend(children)
    return out


@cache
def _module_imports(name: str) -> frozenset[str]:
    path = module_path(name)
    if path is None:
        return frozenset()
    return frozenset(_imports_in([_tree(path)], name))


def module_closure(seeds: Iterable[str]) -> frozenset[str]:
    """The ``vasco`` modules ``seeds`` import, transitively (seeds and parent packages included)."""
    todo = [m for s in seeds for m in (s, *_parents(s)) if m == "vasco" or m.startswith("vasco.")]
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo.extend(_module_imports(name) - seen)
    return frozenset(seen)


def _bound_names(stmt: ast.stmt) -> list[str]:
    """Names a module-level statement binds."""
    if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return [stmt.name]
    if isinstance(stmt, (ast.Import, ast.ImportFrom)):
        return [(a.asname or a.name).split(".")[0] for a in stmt.names]
    targets: list[ast.expr] = []
    if isinstance(stmt, ast.Assign):
        targets = list(stmt.targets)
    elif isinstance(stmt, (ast.AnnAssign, ast.AugAssign)):
        targets = [stmt.target]
    return [n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)]


def _top_level(tree: ast.Module) -> dict[str, list[ast.stmt]]:
    """Module-level statements by the names they bind (inside if/try/with blocks too)."""
    out: dict[str, list[ast.stmt]] = {}

    def visit(stmts: list[ast.stmt]) -> None:
        for stmt in stmts:
            for name in _bound_names(stmt):
                out.setdefault(name, []).append(stmt)
            for block in ("body", "orelse", "finalbody"):
                if isinstance(stmt, (ast.If, ast.Try, ast.With)) and isinstance(getattr(stmt, block, None), list):
                    visit(getattr(stmt, block))
            if isinstance(stmt, ast.Try):
                for handler in stmt.handlers:
                    visit(handler.body)

    visit(tree.body)
    return out


def _segment(source_lines: list[str], stmt: ast.stmt) -> str:
    """A statement's source lines, decorators included."""
    start = min([stmt.lineno, *(d.lineno for d in getattr(stmt, "decorator_list", []))])
    return "".join(source_lines[start - 1 : stmt.end_lineno])


def _definitions(module: str, path: Path, entry: str) -> tuple[dict[str, str], set[str]]:
    """Definitions of ``module`` that ``entry`` uses (name -> source hash) and the modules they name."""
    tree = _tree(path)
    lines = _source(path).splitlines(keepends=True)
    top = _top_level(tree)
    hashed: dict[str, str] = {}
    # A star import may bind any name: its modules always count.
    modules: set[str] = set().union(*(_imports_in([stmt], module) for stmt in top.get("*", [])))
    todo, seen = [entry], set()
    while todo:
        name = todo.pop()
        if name in seen or name not in top:
            continue
        seen.add(name)
        parts: list[str] = []
        for stmt in top[name]:
            if isinstance(stmt, (ast.Import, ast.ImportFrom)):
                for alias in stmt.names:
                    if (alias.asname or alias.name).split(".")[0] == name:
                        modules |= _alias_modules(stmt, alias, module)
                continue
            parts.append(_segment(lines, stmt))
            modules |= _imports_in([stmt], module)
            todo.extend(n.id for n in ast.walk(stmt) if isinstance(n, ast.Name) and n.id not in seen)
        if parts:
            hashed[name] = _sha("".join(parts).encode())
    return hashed, modules


def _data_files(modules: Iterable[str], root: Path = PACKAGE_ROOT) -> dict[str, str]:
    """Shipped data files the modules read: relative path -> SHA-256 (``absent`` if gone)."""
    out: dict[str, str] = {}
    for owner, rels in DATA_FILES.items():
        if not any(m == owner or m.startswith(owner + ".") for m in modules):
            continue
        for rel in rels:
            path = root / rel
            files = (
                sorted(p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
                if path.is_dir()
                else [path]
            )
            for f in files:
                out[f.relative_to(root).as_posix()] = _file_sha(f) if f.is_file() else "absent"
    return out


def _version_of(executable: str) -> str:
    version = tool_version(os.path.realpath(executable))
    return version if version is not None else "unknown: no answer to --version"


def tool_versions(tools: dict[str, tuple[str, ...]]) -> dict[str, str]:
    """Version of each external tool (first executable found on PATH), ``"missing"`` if none is.

    The executable is looked up on every call; its version is asked once per
    process and executable path.
    """
    out: dict[str, str] = {}
    for name, executables in tools.items():
        path = next((p for p in (shutil.which(e) for e in executables) if p), None)
        out[name] = _version_of(path) if path else "missing"
    return out


@cache
def _static_part(
    module: str, qualname: str
) -> tuple[dict[str, str], dict[str, str], dict[str, str], dict[str, tuple[str, ...]]]:
    """Definitions, modules and data files of a step (name -> content hash), and the tools it runs."""
    path = module_path(module)
    if path is None:
        raise LookupError(f"{module} is not a module of the vasco package at {PACKAGE_ROOT}")
    entry = qualname.split(".")[0]
    defs, seeds = _definitions(module, path, entry)
    if entry not in defs:
        raise LookupError(f"{module}.{qualname}: no module-level definition of {entry!r} in {path}")
    # (Were the step's own module imported by one of these, it would be hashed whole.)
    modules = module_closure(seeds | set(_parents(module)))
    module_hashes = {m: (_file_sha(p) if (p := module_path(m)) else "absent") for m in sorted(modules)}
    files = _data_files(modules | {module})
    tools: dict[str, tuple[str, ...]] = {}
    for owner, spec in TOOLS.items():
        if any(m == owner or m.startswith(owner + ".") for m in modules | {module}):
            tools.update(spec)
    return {f"{module}.{k}": v for k, v in defs.items()}, module_hashes, files, tools


def fingerprint_of(module: str, qualname: str) -> CodeFingerprint:
    """The code fingerprint of the function ``qualname`` of the ``vasco`` module ``module``.

    Read from the sources alone: the module is not imported.

    Raises
    ------
    LookupError
        When ``module`` is not in the package or does not define ``qualname`` at its top level.
    """
    defs, module_hashes, files, tool_spec = _static_part(module, qualname)
    tools = tool_versions(tool_spec)
    blob = json.dumps(
        {"definitions": defs, "modules": module_hashes, "files": files, "tools": tools}, sort_keys=True
    ).encode()
    return CodeFingerprint(
        digest=_sha(blob)[:16],
        definitions=tuple(sorted(defs)),
        modules=tuple(sorted(module_hashes)),
        files=tuple(sorted(files)),
        tools=tuple(sorted(tools.items())),
    )


def code_fingerprint(fn: Callable[..., Any]) -> CodeFingerprint:
    """The code fingerprint of a ``vasco`` function (a step): see the module docstring.

    A function outside the ``vasco`` package, or one whose source cannot be
    found, is fingerprinted by its source text alone (or its qualified name).
    """
    module = getattr(fn, "__module__", "") or ""
    qualname = getattr(fn, "__qualname__", "") or ""
    if (module == "vasco" or module.startswith("vasco.")) and "<" not in qualname:
        try:
            return fingerprint_of(module, qualname)
        except (LookupError, OSError, SyntaxError):
            pass
    try:
        src = inspect.getsource(fn)
    except (OSError, TypeError):
        src = qualname or repr(fn)
    return CodeFingerprint(digest=_sha(src.encode())[:16], definitions=(f"{module}.{qualname}",))

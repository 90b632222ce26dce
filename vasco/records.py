"""Step records: what makes every step idempotent and resumable.

A finished step leaves ``<tile>/steps/<step>.json`` holding the step's key
(a hash of its inputs' contents, its parameters and its code) and the
SHA-256 of each output.  The code part is the step's code fingerprint
(:mod:`vasco.codehash`): every ``vasco`` module the step's work depends on,
the shipped tool configuration files and the tools' versions; the record
keeps what went into it under ``code``.  Re-running the step with the same key finds the
record, checks its outputs are still there and unchanged, and returns them
without doing the work again.  The record is written last (atomically), so a
step killed half-way has no record and simply runs again.
"""

from __future__ import annotations

import hashlib
import inspect
import json
from collections.abc import Callable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

from vasco import __version__
from vasco.io import file_sha256, read_json, write_json_atomic

__all__ = ["Output", "step_key", "source_hash", "load_record", "save_record", "record_path", "step_timings"]

#: A manifest entry passed between steps: absolute path and content hash.
Output = dict[str, str]


@cache
def source_hash(fn: Callable[..., Any]) -> str:
    """Hash of a function's own source code (for code outside ``vasco``, e.g. a Prefect task).

    A library step's code version is :func:`vasco.codehash.code_fingerprint`,
    which also covers the modules it depends on.
    """
    try:
        src = inspect.getsource(fn)
    except (OSError, TypeError):
        src = getattr(fn, "__qualname__", repr(fn))
    return hashlib.sha256(src.encode()).hexdigest()[:16]


def step_key(step: str, inputs: Mapping[str, Any], params: Mapping[str, Any], code: str) -> str:
    """Deterministic key of one step run."""
    blob = json.dumps(
        {"step": step, "inputs": inputs, "params": params, "code": code, "vasco": __version__},
        sort_keys=True,
        default=str,
    ).encode()
    return hashlib.sha256(blob).hexdigest()


def record_path(tile_dir: Path, step: str) -> Path:
    return Path(tile_dir) / "steps" / f"{step}.json"


def step_timings(tile_dir: Path) -> dict[str, float]:
    """Each recorded step's computing time (s), by step name (from its record's ``elapsed_s``)."""
    out: dict[str, float] = {}
    for path in sorted((Path(tile_dir) / "steps").glob("*.json")):
        try:
            rec = read_json(path)
        except (OSError, ValueError):
            continue
        if isinstance(rec, dict) and isinstance(rec.get("elapsed_s"), (int, float)):
            out[str(rec.get("step", path.stem))] = float(rec["elapsed_s"])
    return out


def load_record(tile_dir: Path, step: str, key: str) -> dict[str, Any] | None:
    """The record of a finished step with this key, if its outputs are intact.

    Returns ``None`` when the step has to run: no record, another key, or an
    output missing or changed (a corrupt record counts as none).
    """
    path = record_path(tile_dir, step)
    try:
        rec = read_json(path)
    except (OSError, ValueError):
        return None
    if not isinstance(rec, dict) or rec.get("key") != key:
        return None
    outputs = rec.get("outputs", {})
    for name, entry in outputs.items():
        out = Path(tile_dir) / entry["path"]
        if not out.is_file() or file_sha256(out) != entry["sha256"]:
            return None
        outputs[name] = {"path": str(out), "sha256": entry["sha256"]}
    return rec


def save_record(
    tile_dir: Path,
    step: str,
    key: str,
    outputs: Mapping[str, Path],
    info: Mapping[str, Any] | None = None,
    elapsed_s: float | None = None,
    code: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Hash the outputs and write the step record; return it with absolute paths.

    ``elapsed_s``: the step's computing time (wall seconds), kept in the record.
    ``code``: what the code part of the key covered
    (:meth:`vasco.codehash.CodeFingerprint.summary`), kept in the record for audit.
    """
    tile_dir = Path(tile_dir)
    stored: dict[str, dict[str, str]] = {}
    absolute: dict[str, dict[str, str]] = {}
    for name, path in outputs.items():
        path = Path(path)
        digest = file_sha256(path)
        stored[name] = {"path": str(path.relative_to(tile_dir)), "sha256": digest}
        absolute[name] = {"path": str(path), "sha256": digest}
    rec: dict[str, Any] = {"step": step, "key": key, "outputs": stored, "info": dict(info or {})}
    if elapsed_s is not None:
        rec["elapsed_s"] = round(float(elapsed_s), 4)
    if code is not None:
        rec["code"] = dict(code)
    write_json_atomic(record_path(tile_dir, step), rec)
    return {**rec, "outputs": absolute}

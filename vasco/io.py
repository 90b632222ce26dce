"""Atomic, idempotent file output and content hashing.

Every file VASCO writes goes through here: it is written under a temporary
name in the destination folder, flushed, then renamed into place, so a killed
run never leaves a half-written file under a final name.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path, PurePath
from typing import Any

import pandas as pd

__all__ = [
    "atomic_path",
    "fsync_dir",
    "write_bytes_atomic",
    "write_text_atomic",
    "write_json_atomic",
    "json_bytes",
    "write_parquet_atomic",
    "read_json",
    "file_sha256",
    "temp_tag",
    "remove_temporaries",
    "remove_dead_temporaries",
]


@contextlib.contextmanager
def atomic_path(final: Path, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``final``; rename it to ``final`` on success.

    The temporary file (``.<name>.<host>-<pid>.<random><suffix>.part``, see
    :func:`temp_tag`) is created empty
    with the usual mode (0666 less the umask), so files in a survey tree
    shared by several users stay readable.  On success it is fsynced and
    renamed over ``final``, and the rename is made durable (the folder is
    fsynced where the filesystem allows).  On any exception the temporary
    file is removed and ``final`` is untouched.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = final.parent / f".{final.name}.{temp_tag()}.{uuid.uuid4().hex[:12]}{suffix}.part"
    os.close(os.open(tmp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_path, final)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise
    fsync_dir(final.parent)


def fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (best effort: not every filesystem allows it)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_bytes_atomic(path: Path, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text_atomic(path: Path, text: str) -> Path:
    return write_bytes_atomic(path, text.encode("utf-8"))


def _json_default(obj: Any) -> Any:
    # numpy scalars and paths appear in manifests; keep JSON plain.
    if hasattr(obj, "item"):
        return obj.item()
    if isinstance(obj, PurePath):
        return obj.as_posix()
    raise TypeError(f"cannot write {type(obj).__name__} to JSON")


def json_bytes(payload: Any) -> bytes:
    """``payload`` as indented UTF-8 JSON ending in a newline, as VASCO writes every JSON file.

    Parameters
    ----------
    payload : Any
        JSON-serialisable value; numpy scalars and paths are converted.

    Returns
    -------
    bytes

    Raises
    ------
    ValueError
        If ``payload`` holds NaN or infinity.
    TypeError
        If it holds a value JSON cannot represent.
    """
    text = json.dumps(payload, indent=2, sort_keys=False, default=_json_default, allow_nan=False)
    return (text + "\n").encode("utf-8")


def write_json_atomic(path: Path, payload: Any) -> Path:
    return write_bytes_atomic(path, json_bytes(payload))


def read_json(path: Path) -> Any:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def write_parquet_atomic(path: Path, table: pd.DataFrame) -> Path:
    """Write a DataFrame as Parquet, atomically, without the pandas index.

    The file carries no write timestamp, so the same table gives the same bytes.
    """
    with atomic_path(path, suffix=".parquet") as tmp:
        table.to_parquet(tmp, index=False, engine="pyarrow", compression="zstd")
    return Path(path)


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def temp_tag() -> str:
    """``<host>-<pid>`` of this process, as temporary names carry it (host cut to safe characters)."""
    host = re.sub(r"[^A-Za-z0-9_-]", "_", socket.gethostname())[:40] or "host"
    return f"{host}-{os.getpid()}"


def _is_temporary(path: Path) -> bool:
    return path.name.startswith(".") and path.name.endswith((".part", ".tmp"))


def remove_temporaries(folder: Path) -> list[Path]:
    """Remove every temporary file and private temporary folder under ``folder``.

    Temporary files are the ``.<name>...part`` (and ``.tmp``) files of
    :func:`atomic_path` and the tool wrappers; private folders are the
    dot-folders under ``work/`` (``.pass1.*``, ``.psf_fit.*`` ...).  Only call
    it on a folder no other process is writing to (a tile under its lease):
    whatever is there was left by a process that was killed.  Returns what
    was removed.
    """
    folder = Path(folder)
    removed: list[Path] = []
    if not folder.is_dir():
        return removed
    for path in sorted(folder.rglob(".*")):
        if not path.exists():
            continue
        if path.is_dir() and path.parent.name == "work":
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
        elif path.is_file() and _is_temporary(path):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def remove_dead_temporaries(folder: Path) -> list[Path]:
    """Remove the temporary files directly in ``folder`` whose writer is dead.

    For folders other processes may be writing to (a survey root): only the
    files :func:`atomic_path` named with this host and a process id that no
    longer exists.  Returns what was removed.
    """
    host = temp_tag().rsplit("-", 1)[0]
    pattern = re.compile(rf"^\..+\.{re.escape(host)}-(\d+)\.[0-9a-f]+.*\.part$")
    removed: list[Path] = []
    if not Path(folder).is_dir():
        return removed
    for path in Path(folder).iterdir():
        m = pattern.match(path.name)
        if not m or not path.is_file():
            continue
        pid = int(m.group(1))
        try:
            os.kill(pid, 0)
            continue
        except ProcessLookupError:
            pass
        except OSError:
            continue
        path.unlink(missing_ok=True)
        removed.append(path)
    return removed

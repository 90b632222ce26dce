"""Where a survey lives, and where its tiles are worked on.

The survey root (``--out``) is a local folder or an fsspec URL
(``s3://bucket/prefix``, ``gs://...``; see :mod:`vasco.storage`).  SExtractor
and PSFEx need local files, so tiles are always processed in a local folder:
the root itself when it is local, otherwise a work folder on this machine
(``$VASCO_WORK_DIR``, default ``~/.cache/vasco/work``, one sub-folder per
root URL).  A finished tile is uploaded with its ``tile.json`` last, which
commits it: any worker that sees a tile's ``tile.json`` in the root sees all
of the tile.
"""

from __future__ import annotations

import hashlib
import os
import socket
from pathlib import Path
from typing import Any

from vasco.outputs import tile_record_from_dict
from vasco.storage import Storage

__all__ = [
    "open_root",
    "local_root",
    "lease_owner",
    "check_writable",
    "is_finished",
    "stored_tile_record",
    "TILE_UPLOAD_EXCLUDE",
    "LEASE_NAME",
]

#: Files of a tile folder that stay on the machine that made them: partial
#: files, the private temporary folders of the tool steps (left behind only if
#: a process was killed inside one) and the lease.
TILE_UPLOAD_EXCLUDE = ("*.part", "*.tmp", "work/.*", ".lease*")
#: A tile's lease, relative to its folder.
LEASE_NAME = ".lease"


def stored_tile_record(store: Storage, tile_id: str) -> dict[str, Any] | None:
    """A tile's ``tile.json`` in the survey root, validated (:class:`vasco.outputs.TileRecord`).

    None when the tile has none, or it cannot be read, or it does not fit the
    model: such a tile counts as not finished and runs again.
    """
    where = f"tiles/{tile_id}/tile.json"
    try:
        return tile_record_from_dict(store.read_json(where), where).to_dict()
    except (OSError, ValueError):  # RecordError is a ValueError
        return None


def open_root(out: str | os.PathLike[str]) -> Storage:
    """The survey root as a :class:`vasco.storage.Storage`."""
    return Storage.from_url(str(out))


def is_finished(rec: object, config_hash: str, verdicts: dict[str, dict[str, object]] | None = None) -> bool:
    """Is this ``tile.json`` a finished tile (ok or rejected) of this configuration and VASCO version?

    Such a tile is never run again; failed and unfinished tiles (and dry runs) are.  With
    ``verdicts`` (the plate dates of ``vasco epochs``, used by ``plates.date_source = 'epochs'``)
    an ok tile whose plate date is not the one its plate's verdict now gives is not finished.
    """
    from vasco import __version__

    done = (
        isinstance(rec, dict)
        and rec.get("status") in ("ok", "rejected")
        and not rec.get("dry_run")
        and rec.get("config_hash") == config_hash
        and rec.get("vasco_version") == __version__
    )
    if done and verdicts is not None and isinstance(rec, dict) and rec.get("status") == "ok":
        from vasco.epochs import verdict_date

        plate = rec.get("plate") or {}
        want = verdict_date(verdicts.get(str(plate.get("region"))), plate)
        return want is None or want == plate.get("date_obs")
    return done


def check_writable(out: str | os.PathLike[str], option: str = "--out") -> None:
    """Make sure a local output folder can be created and written, before any work starts.

    Creates the folder and writes then removes a probe file.  Remote roots
    (``s3://...``) are left to the storage layer.

    Raises
    ------
    ValueError
        Naming the option and the folder, and why it cannot be written.
    """
    text = str(out)
    if "://" in text and not text.startswith("file://"):
        return
    folder = Path(text.removeprefix("file://")).expanduser()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".vasco-write-probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise ValueError(f"{option} {text}: cannot write there ({exc.strerror or exc})") from None


def local_root(store: Storage) -> Path:
    """The local folder where this machine works on the root's tiles."""
    if store.is_local:
        assert store.local_path is not None
        return store.local_path
    base = Path(os.environ.get("VASCO_WORK_DIR") or Path.home() / ".cache" / "vasco" / "work")
    digest = hashlib.sha256(store.url.encode()).hexdigest()[:16]
    path = base / digest
    path.mkdir(parents=True, exist_ok=True)
    return path


def lease_owner() -> str:
    """This process's name on a lease (host, pid)."""
    return f"{socket.gethostname()}:{os.getpid()}"

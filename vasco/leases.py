"""Leases: keep two workers from processing the same tile at the same time.

A lease is a small JSON object (owner, ``ttl_s``, host, pid, time, nonce)
in a survey root (:class:`vasco.storage.Storage`), taken with
:func:`acquire_lease` and given back with :func:`release_lease`.  Two
protocols implement it, chosen by the root's backend in one place
(:func:`_lease_at`):

- a local (or network-mounted) folder: exclusive file creation and renames
  (:class:`_FolderLease`);
- S3: conditional PUT and DELETE (:class:`_S3Lease`).

Other fsspec backends have no leases.  Semantics and limits of both are in
:func:`acquire_lease`.

This module never imports Prefect.
"""

from __future__ import annotations

import contextlib
import email.utils
import errno
import json
import math
import os
import socket
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fsspec.asyn

from vasco.io import json_bytes, temp_tag, write_bytes_atomic
from vasco.storage import S3_PROTOCOLS, Storage, StorageError

__all__ = ["LeaseNotHeldError", "acquire_lease", "release_lease"]

# S3 error codes of a conditional write that lost to another writer.
_S3_LOST = frozenset({"PreconditionFailed", "ConditionalRequestConflict", "412", "409"})
# A local lease's break lock older than this is left over from a crashed process.
_MUTEX_STALE_S = 30.0
_MUTEX_WAIT_S = 5.0
_MAX_OWNER_LEN = 256


class LeaseNotHeldError(StorageError):
    """A lease was released (or renewed) by a worker that does not hold it."""


@dataclass(frozen=True)
class _LeaseState:
    """A lease as read back: who holds it and how old it is.

    ``owner`` and ``ttl_s`` are ``None`` when the body cannot be read (a local
    lease caught between its creation and its first write).
    """

    owner: str | None
    ttl_s: float | None
    age_s: float
    etag: str | None = None
    holder_dead: bool = False

    def stale(self, default_ttl_s: float) -> bool:
        """Older than its ttl, or its holder is known to have died (see :func:`_holder_dead`)."""
        ttl = self.ttl_s if self.ttl_s is not None else default_ttl_s
        if self.owner is None and self.age_s > _MUTEX_STALE_S:
            return True  # an unreadable body this old was left by a writer that died
        return self.holder_dead or self.age_s > ttl


def _check_lease_args(owner: object, ttl_s: object | None = None) -> None:
    if not isinstance(owner, str) or not owner.strip():
        raise ValueError(f"lease owner must be a non-empty str, got {owner!r}")
    if len(owner) > _MAX_OWNER_LEN:
        raise ValueError(f"lease owner is {len(owner)} characters long (at most {_MAX_OWNER_LEN}): {owner[:40]!r}...")
    if ttl_s is not None and (
        isinstance(ttl_s, bool) or not isinstance(ttl_s, (int, float)) or not math.isfinite(ttl_s) or ttl_s <= 0
    ):
        raise ValueError(f"lease ttl_s must be a finite number of seconds > 0, got {ttl_s!r}")


def _lease_body(owner: str, ttl_s: float) -> bytes:
    return json_bytes(
        {
            "owner": owner,
            "ttl_s": float(ttl_s),
            "acquired_at_unix": time.time(),
            "host": socket.gethostname(),
            "pid": os.getpid(),
            # A fresh nonce per write: a renewed lease never has its old ETag.
            "nonce": uuid.uuid4().hex,
        }
    )


def _holder_dead(data: bytes) -> bool:
    """Was the lease taken on this host by a process that no longer exists?

    A worker killed with SIGKILL never releases its lease; on the machine it
    ran on that is certain as soon as its process id is gone, so the lease
    need not wait for its ttl.  A lease from another host, or whose process
    id is in use (alive, or reused), is judged by its ttl alone.
    """
    try:
        body = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return False
    if not isinstance(body, dict) or body.get("host") != socket.gethostname():
        return False
    pid = body.get("pid")
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0 or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False  # exists, owned by another user
    return False


def _parse_lease(data: bytes) -> tuple[str | None, float | None]:
    try:
        body = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None, None
    if not isinstance(body, dict):
        return None, None
    owner = body.get("owner") if isinstance(body.get("owner"), str) else None
    ttl = body.get("ttl_s")
    if isinstance(ttl, (int, float)) and not isinstance(ttl, bool) and math.isfinite(ttl) and ttl > 0:
        return owner, float(ttl)
    return owner, None


def _not_held(name: str, holder: str | None, owner: str) -> LeaseNotHeldError:
    who = repr(holder) if holder is not None else "an unknown owner"
    return LeaseNotHeldError(f"lease {name} is held by {who}, not by {owner!r}: not released")


def _s3_error_code(exc: BaseException) -> str | None:
    """The S3 error code behind an exception s3fs translated, if any."""
    seen: BaseException | None = exc
    while seen is not None:
        response = getattr(seen, "response", None)
        if isinstance(response, Mapping):
            code = response.get("Error", {}).get("Code")
            return str(code) if code is not None else None
        seen = seen.__cause__
    return None


# ------------------------------------------------------------- local folders


def _create_whole(path: Path, body: bytes) -> bool:
    """Create ``path`` holding ``body`` unless it exists; True if this call created it.

    The body is written to a temporary file first and then hard-linked to
    ``path`` (``link`` fails if ``path`` exists, like ``O_EXCL``), so the
    file appears complete or not at all: a process killed half-way never
    leaves an empty lease or lock that nobody can tell from a live one.
    On filesystems without hard links it falls back to ``O_EXCL``.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{temp_tag()}.{uuid.uuid4().hex[:8]}.part")
    try:
        with open(tmp, "wb") as fh:
            fh.write(body)
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, path)
            return True
        except FileExistsError:
            return False
        except FileNotFoundError:
            # The holder's clean-up of its tile folder removed our temporary: it is busy.
            return False
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK):
                raise
    finally:
        tmp.unlink(missing_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except FileExistsError:
        return False
    with os.fdopen(fd, "wb") as fh:
        fh.write(body)
        fh.flush()
        os.fsync(fh.fileno())
    return True


@contextlib.contextmanager
def _mutex(path: Path, wait_s: float) -> Iterator[bool]:
    """Hold ``<lease>.lock`` (exclusive create) while yielding True; False if it stayed busy.

    The lock records its host and process id: one left by a process of
    this host that no longer exists is removed at once, any other after
    30 s.
    """
    lock = path.with_name(path.name + ".lock")
    deadline = time.monotonic() + wait_s
    body = json.dumps({"host": socket.gethostname(), "pid": os.getpid()}).encode()
    while not _create_whole(lock, body):
        with contextlib.suppress(FileNotFoundError):
            with open(lock, "rb") as fh:
                age = time.time() - os.fstat(fh.fileno()).st_mtime
                left_by_dead = _holder_dead(fh.read())
            if left_by_dead or age > _MUTEX_STALE_S:
                lock.unlink()  # left by a process that crashed while holding it
                continue
        if time.monotonic() >= deadline:
            yield False
            return
        time.sleep(0.005)
    try:
        yield True
    finally:
        with contextlib.suppress(FileNotFoundError):
            lock.unlink()


@dataclass(frozen=True)
class _FolderLease:
    """The lease file ``path`` in a local (or network-mounted) folder; ``name`` is shown in messages."""

    path: Path
    name: str

    def read(self) -> _LeaseState | None:
        try:
            with open(self.path, "rb") as fh:
                st = os.fstat(fh.fileno())
                data = fh.read()
        except FileNotFoundError:
            return None
        owner, ttl = _parse_lease(data)
        return _LeaseState(owner=owner, ttl_s=ttl, age_s=time.time() - st.st_mtime, holder_dead=_holder_dead(data))

    def acquire(self, owner: str, ttl_s: float) -> bool:
        body = _lease_body(owner, ttl_s)
        if _create_whole(self.path, body):
            return True
        state = self.read()
        if state is not None and state.owner != owner and not state.stale(ttl_s):
            return False
        # Renewal or take-over (or the lease just went away): decide again under the lock.
        with _mutex(self.path, _MUTEX_WAIT_S) as locked:
            if not locked:
                return False
            state = self.read()
            if state is None:
                return _create_whole(self.path, body)
            if state.owner == owner or state.stale(ttl_s):
                write_bytes_atomic(self.path, body)
                return True
            return False

    def release(self, owner: str) -> bool:
        if not self.path.exists():
            return False
        with _mutex(self.path, _MUTEX_WAIT_S) as locked:
            if not locked:
                raise StorageError(f"lease {self.name} is busy (its .lock stayed for {_MUTEX_WAIT_S:.0f} s)")
            state = self.read()
            if state is None:
                return False
            if state.owner != owner:
                raise _not_held(self.name, state.owner, owner)
            self.path.unlink()
            return True


# ------------------------------------------------------------------------ S3


@dataclass(frozen=True)
class _S3Lease:
    """The lease object ``full`` (``bucket/key``) of the s3fs filesystem ``fs``; ``name`` is shown in messages."""

    fs: Any  # s3fs.S3FileSystem; s3fs is imported by fsspec only when an s3:// root is opened
    full: str
    name: str

    def _put(self, body: bytes, **condition: str) -> None:
        bucket, key, _ = self.fs.split_path(self.full)
        self.fs.call_s3("put_object", Bucket=bucket, Key=key, Body=body, **condition)

    def read(self) -> _LeaseState | None:
        fs = self.fs
        bucket, key, _ = fs.split_path(self.full)

        async def get() -> tuple[dict[str, Any], bytes]:
            resp = await fs._call_s3("get_object", Bucket=bucket, Key=key)
            stream = resp["Body"]
            try:
                data = await stream.read()
            finally:
                stream.close()
            return resp, data

        try:
            resp, data = fsspec.asyn.sync(fs.loop, get)
        except FileNotFoundError:
            return None
        headers = resp.get("ResponseMetadata", {}).get("HTTPHeaders", {})
        now = time.time()
        with contextlib.suppress(TypeError, ValueError, IndexError):
            if headers.get("date"):
                now = email.utils.parsedate_to_datetime(headers["date"]).timestamp()
        owner, ttl = _parse_lease(data)
        return _LeaseState(
            owner=owner,
            ttl_s=ttl,
            age_s=now - resp["LastModified"].timestamp(),
            etag=str(resp.get("ETag")),
            holder_dead=_holder_dead(data),
        )

    def acquire(self, owner: str, ttl_s: float) -> bool:
        body = _lease_body(owner, ttl_s)
        for _ in range(3):
            try:
                self._put(body, IfNoneMatch="*")
                return True
            except OSError as exc:
                if not (isinstance(exc, FileExistsError) or _s3_error_code(exc) in _S3_LOST):
                    raise
            state = self.read()
            if state is None:
                continue  # released a moment ago: try to create it again
            if state.owner != owner and not state.stale(ttl_s):
                return False
            # Our own lease (renewal; also a create whose answer was lost and retried) or a stale one.
            try:
                assert state.etag is not None
                self._put(body, IfMatch=state.etag)
                return True
            except FileNotFoundError:
                continue
            except OSError as exc:
                if _s3_error_code(exc) in _S3_LOST:
                    return False  # another worker renewed or took it over first
                raise
        return False

    def release(self, owner: str) -> bool:
        state = self.read()
        if state is None:
            return False
        if state.owner != owner:
            raise _not_held(self.name, state.owner, owner)
        bucket, key, _ = self.fs.split_path(self.full)
        try:
            assert state.etag is not None
            self.fs.call_s3("delete_object", Bucket=bucket, Key=key, IfMatch=state.etag)
        except FileNotFoundError:
            return False
        except OSError as exc:
            if _s3_error_code(exc) in _S3_LOST:
                current = self.read()
                raise _not_held(self.name, current.owner if current else None, owner) from None
            raise
        return True


def _lease_at(store: Storage, rel: str, full: str) -> _FolderLease | _S3Lease:
    """The lease protocol of ``store``'s backend for the lease at ``rel`` (the one place that chooses)."""
    if store.local_path is not None:
        return _FolderLease(Path(full), store.uri(rel))
    if store.protocol in S3_PROTOCOLS:
        return _S3Lease(store.fs, full, store.uri(rel))
    raise StorageError(
        f"leases are not supported on {store.protocol}:// roots ({store.url}): "
        "use a local (or network-mounted) path or s3://"
    )


def acquire_lease(store: Storage, rel: str, owner: str, ttl_s: float) -> bool:
    """Take the lease at ``rel`` for ``owner``, unless another live owner holds it.

    A lease is a small JSON object (owner, ``ttl_s``, host, pid, time).
    Put leases outside tile folders (e.g. ``leases/<tile_id>.json``).

    Parameters
    ----------
    store : Storage
        The survey root holding the lease.
    rel : str
        Path of the lease relative to the root.
    owner : str
        Who takes it.  Must be unique per worker (e.g. ``host:pid:uuid``):
        two workers with the same owner string both "hold" the lease.
    ttl_s : float
        How long the lease lives without renewal.  Recorded in the lease:
        whether a lease is stale is judged with the ttl of its holder (the
        caller's ``ttl_s`` only when the lease body cannot be read).

    Returns
    -------
    bool
        ``True`` if ``owner`` now holds the lease: it was free, it was
        stale (older than its ttl, or taken on this host by a process that
        no longer exists) and was taken over, or ``owner``
        already held it (then it is renewed: its age starts again from 0).
        ``False`` if another owner holds a live lease, or won a race for it.

    Raises
    ------
    ValueError
        If ``owner`` is empty or ``ttl_s`` is not a positive number.
    StorageError
        If the root is neither local nor S3, or the storage fails.

    Notes
    -----
    Semantics: at most one caller wins each free or stale lease.

    - Local roots: the lease is created with ``O_CREAT | O_EXCL`` (exactly
      one creator wins).  Renewal, stale take-over and release are done
      under a second exclusive file (``<lease>.lock``) that is held only
      for those few system calls; the lease is then replaced by rename.
      Age is the file's mtime against this machine's clock.
    - S3: the lease is created with a conditional PUT
      (``If-None-Match: *``; exactly one creator wins).  A stale lease is
      taken over, and a lease renewed, with ``If-Match: <ETag>`` of the
      lease that was read, so of two workers taking over the same stale
      lease exactly one wins.  Release deletes with ``If-Match`` too.
      Age is the server's clock (``Date`` of the response minus the
      object's ``Last-Modified``), so clients' clocks do not matter.

    Limits:

    - A lease is not a fence: a holder that stalls longer than its ttl
      (paused VM, long GC, network partition) loses the lease to another
      worker while it may still be writing.  Pick ``ttl_s`` well above
      the longest tile, or renew it (call again) during long work.
      Results stay safe because every write is atomic and the commit
      marker goes last, but the work may be done twice.
    - S3 ages have one-second resolution (HTTP dates): a ttl of a few
      seconds is imprecise by up to a second either way.
    - Conditional writes need a server that supports them: AWS S3 (since
      2024), MinIO, recent Ceph; a server that ignores ``If-None-Match``
      lets two workers win.  Conditional deletes (release) are recent on
      AWS; a server that ignores ``If-Match`` on DELETE could let a
      release remove a lease taken over a moment before.
    - Local roots on network filesystems: ``O_EXCL`` and rename are atomic
      on NFSv3+ and most cluster filesystems; ages there compare the
      server's mtime with the client's clock (keep clocks in sync).  A
      ``.lock`` file left by a process that crashed inside those few calls
      is removed after 30 s (that clean-up is not itself race-free).
    """
    full = store.fs_path(rel)  # the path is checked first
    _check_lease_args(owner, ttl_s)
    lease = _lease_at(store, rel, full)
    with store.backend_errors("acquire lease", rel):
        return lease.acquire(owner, ttl_s)


def release_lease(store: Storage, rel: str, owner: str) -> bool:
    """Give back the lease at ``rel`` held by ``owner``.

    Parameters
    ----------
    store : Storage
        The survey root holding the lease.
    rel : str
        Path of the lease relative to the root.
    owner : str
        Who gives it back.

    Returns
    -------
    bool
        ``True`` if the lease was removed, ``False`` if there was none.

    Raises
    ------
    LeaseNotHeldError
        If another owner holds the lease (including one that took it over
        after ``owner``'s lease went stale): nothing is removed.
    """
    full = store.fs_path(rel)  # the path is checked first
    _check_lease_args(owner)
    lease = _lease_at(store, rel, full)
    with store.backend_errors("release lease", rel):
        return lease.release(owner)

"""Where a survey tree lives: a local folder or shared object storage.

Workers on several machines write one survey tree when its root is an fsspec
URL (``s3://bucket/prefix``, ``gs://...``); on one machine it is a local
folder.  The pipeline keeps working on local files (SExtractor needs them)
and moves finished results with :class:`Storage`:

- every path is relative to the root, ``/``-separated, and checked (no
  ``..``, no absolute path, no empty component): a bad one raises
  :class:`StoragePathError` naming it;
- writes are atomic: a reader sees the old object or the new one, never a
  part.  Local files are written under a temporary name in the destination
  folder, flushed and renamed; an S3 object appears only when its PUT (or
  its multipart upload) completes.  Other fsspec backends are written with
  their own ``pipe_file``/``put_file``: object stores (GCS, Azure Blob) are
  atomic the same way, file-like backends (SFTP, ...) are not;
- :meth:`Storage.put_tree` uploads a finished tile folder with its
  ``tile.json`` last, so ``tile.json`` is the tile's commit marker: a reader
  that sees it sees every other file of the tile;
- :meth:`Storage.acquire_lease` / :meth:`Storage.release_lease` keep two
  workers from processing the same tile at the same time (semantics and
  limits in :meth:`Storage.acquire_lease`).

Credentials (S3 keys) come from the standard environment
(``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``,
``AWS_ENDPOINT_URL``/``AWS_ENDPOINT_URL_S3``, profiles, instance roles) or from
``storage_options``.  They never appear in a message, a repr or a pickle: an
error from the backend is re-raised as a :class:`StorageError` whose text has
every known secret replaced by ``***``, without the original exception
chained (its text could hold them), and a pickled :class:`Storage` carries
only its URL and its non-secret options (the receiving process takes its
credentials from its own environment).

This module never imports Prefect.
"""

from __future__ import annotations

import contextlib
import email.utils
import errno
import fnmatch
import inspect
import json
import math
import os
import re
import shutil
import socket
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any, BinaryIO, TypeVar

import fsspec
import fsspec.asyn
import fsspec.core

from vasco.io import atomic_path, temp_tag

__all__ = [
    "COMMIT_MARKER",
    "DEFAULT_EXCLUDE",
    "LeaseNotHeldError",
    "Storage",
    "StorageError",
    "StorageNotFoundError",
    "StoragePathError",
    "StoragePermissionError",
]

#: The file of a tile folder that :meth:`Storage.put_tree` uploads last.
COMMIT_MARKER = "tile.json"

#: Patterns :meth:`Storage.put_tree` leaves out by default: files still being
#: written (``vasco.io`` and this module write ``.<name>.<random>.part``).
DEFAULT_EXCLUDE: tuple[str, ...] = ("*.part", "*.tmp")

_S3_PROTOCOLS = frozenset({"s3", "s3a"})
_LOCAL_PROTOCOLS = frozenset({"file", "local"})
# Environment variables whose values are credentials, scrubbed from every message.
_SECRET_ENV = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AZURE_STORAGE_KEY",
    "AZURE_STORAGE_ACCOUNT_KEY",
    "AZURE_STORAGE_CONNECTION_STRING",
    "AZURE_STORAGE_SAS_TOKEN",
)
# A storage option whose name contains one of these holds a credential.
_SECRET_WORDS = ("key", "secret", "token", "password", "passwd", "credential", "sas", "connection_string")
_MIN_SECRET_LEN = 4
_USERINFO = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://)[^/@\s]*@")
# S3 error codes of a conditional write that lost to another writer.
_S3_LOST = frozenset({"PreconditionFailed", "ConditionalRequestConflict", "412", "409"})
# A local lease's break lock older than this is left over from a crashed process.
_MUTEX_STALE_S = 30.0
_MUTEX_WAIT_S = 5.0
_MAX_OWNER_LEN = 256

_T = TypeVar("_T")


class StorageError(OSError):
    """A storage operation failed; the message names the URL and never holds a credential."""


class StorageNotFoundError(StorageError, FileNotFoundError):
    """The object, file or folder does not exist."""


class StoragePermissionError(StorageError, PermissionError):
    """The storage refused the operation (credentials, bucket policy, file mode)."""


class StoragePathError(ValueError):
    """A path given to :class:`Storage` is not a valid relative path."""


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


def _check_rel(rel: object, *, allow_root: bool = False) -> str:
    """Validate and normalise a relative storage path.

    Parameters
    ----------
    rel : str or PurePath
        ``/``-separated path below the storage root.  One trailing ``/`` is
        accepted and dropped.
    allow_root : bool
        Accept ``""`` (the root itself), for folder operations.

    Returns
    -------
    str
        The path without a trailing ``/``.

    Raises
    ------
    StoragePathError
        If the path is not a string, is absolute or a URL, contains ``..``,
        ``.``, an empty component, a backslash or a NUL character.
    """
    if isinstance(rel, PurePath):
        rel = rel.as_posix()
    if not isinstance(rel, str):
        raise StoragePathError(f"storage path must be a str, not {type(rel).__name__}: {rel!r}")
    text = rel[:-1] if rel.endswith("/") and rel != "/" else rel
    problem = None
    if text in ("", "."):
        if allow_root:
            return ""
        problem = "it is empty (a file path is needed)"
    elif "\x00" in text:
        problem = "it contains a NUL character"
    elif "://" in text:
        problem = "it is a URL, not a path relative to the storage root"
    elif text.startswith("/"):
        problem = "it is absolute (paths are relative to the storage root)"
    elif "\\" in text:
        problem = "it contains a backslash (use '/')"
    else:
        parts = text.split("/")
        if ".." in parts:
            problem = "it contains a '..' component"
        elif "." in parts:
            problem = "it contains a '.' component"
        elif "" in parts:
            problem = "it contains an empty component ('//')"
    if problem:
        raise StoragePathError(f"invalid storage path {rel!r}: {problem}")
    return text


def _join(*parts: str) -> str:
    return "/".join(p for p in parts if p)


def _check_lease_args(owner: object, ttl_s: object | None = None) -> None:
    if not isinstance(owner, str) or not owner.strip():
        raise ValueError(f"lease owner must be a non-empty str, got {owner!r}")
    if len(owner) > _MAX_OWNER_LEN:
        raise ValueError(f"lease owner is {len(owner)} characters long (at most {_MAX_OWNER_LEN}): {owner[:40]!r}...")
    if ttl_s is not None and (
        isinstance(ttl_s, bool) or not isinstance(ttl_s, (int, float)) or not math.isfinite(ttl_s) or ttl_s <= 0
    ):
        raise ValueError(f"lease ttl_s must be a finite number of seconds > 0, got {ttl_s!r}")


def _json_default(obj: Any) -> Any:
    # numpy scalars and paths appear in manifests; keep JSON plain.
    if hasattr(obj, "item"):
        return obj.item()
    if isinstance(obj, PurePath):
        return obj.as_posix()
    raise TypeError(f"cannot write {type(obj).__name__} to JSON")


def _json_bytes(obj: Any) -> bytes:
    text = json.dumps(obj, indent=2, default=_json_default, allow_nan=False)
    return (text + "\n").encode("utf-8")


def _secret_values(options: Mapping[str, Any], under_secret: bool = False) -> set[str]:
    """String values of every option whose name says it is a credential (nested dicts too)."""
    found: set[str] = set()
    for name, value in options.items():
        secret = under_secret or any(w in str(name).lower() for w in _SECRET_WORDS)
        if isinstance(value, Mapping):
            found |= _secret_values(value, secret)
        elif secret and isinstance(value, str) and len(value) >= _MIN_SECRET_LEN:
            found.add(value)
    return found


def _without_secrets(options: Mapping[str, Any]) -> dict[str, Any]:
    """The options with every credential-named entry left out (nested dicts too)."""
    kept: dict[str, Any] = {}
    for name, value in options.items():
        if any(w in str(name).lower() for w in _SECRET_WORDS):
            continue
        kept[name] = _without_secrets(value) if isinstance(value, Mapping) else value
    return kept


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


def _lease_body(owner: str, ttl_s: float) -> bytes:
    return _json_bytes(
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


@contextlib.contextmanager
def _atomic_local(final: Path) -> Iterator[BinaryIO]:
    """Yield a file open for writing that :func:`vasco.io.atomic_path` renames to ``final`` on success."""
    with atomic_path(final) as tmp, open(tmp, "wb") as fh:
        yield fh


class Storage:
    """The root of a survey tree: a local folder or an fsspec URL.

    Build one with :meth:`from_url`.  All methods take paths relative to the
    root (see :func:`_check_rel` for the rules) and are safe to call from
    several threads.

    Notes
    -----
    ``repr``, ``str`` and pickles of a :class:`Storage` hold its URL and its
    non-secret options only.
    """

    def __init__(
        self,
        *,
        url: str,
        protocol: str,
        root: str,
        local: Path | None,
        fs: fsspec.AbstractFileSystem | None,
        safe_options: Mapping[str, Any],
        secrets: Iterable[str],
    ) -> None:
        """Use :meth:`from_url`; this constructor takes already checked parts."""
        self._url = url
        self._protocol = protocol
        self._root = root
        self._local = local
        self._fs = fs
        self._safe_options = dict(safe_options)
        self._secrets = frozenset(secrets)

    # ------------------------------------------------------------------ build

    @classmethod
    def from_url(cls, root: str | os.PathLike[str], storage_options: Mapping[str, Any] | None = None) -> Storage:
        """Open a survey root.

        Parameters
        ----------
        root : str or path-like
            A local path (``runs/demo``, ``/data/survey``, ``file:///data/survey``)
            or an fsspec URL (``s3://bucket/prefix``, ``gs://bucket/prefix``, ...).
            Credentials in the URL (``s3://KEY:SECRET@bucket``) are refused.
        storage_options : mapping, optional
            Options for the fsspec filesystem (for S3, those of
            ``s3fs.S3FileSystem``: ``endpoint_url``, ``key``, ``secret``,
            ``token``, ``client_kwargs``, ...).  Without them, S3 credentials
            and endpoint come from the environment (``AWS_ACCESS_KEY_ID``,
            ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``,
            ``AWS_ENDPOINT_URL_S3`` or ``AWS_ENDPOINT_URL``, profiles, roles).
            Not accepted for a local root.

        Returns
        -------
        Storage

        Raises
        ------
        StorageError
            If the root is empty, names no bucket, holds credentials, uses a
            protocol fsspec does not know or whose package is not installed,
            or if the filesystem refuses the options.
        """
        if isinstance(root, os.PathLike):
            root = os.fspath(root)
        if not isinstance(root, str) or not root.strip():
            raise StorageError(f"storage root must be a non-empty path or URL, got {root!r}")
        if storage_options is not None and not isinstance(storage_options, Mapping):
            raise StorageError(f"storage_options must be a mapping, not {type(storage_options).__name__}")
        options = dict(storage_options or {})
        if "::" in root:
            raise StorageError(f"chained fsspec URLs are not supported as a storage root: {_redact(root)}")
        protocol, path = fsspec.core.split_protocol(root)
        if protocol is None or protocol in _LOCAL_PROTOCOLS:
            if options:
                raise StorageError(
                    f"storage_options {sorted(options)} were given for the local root {path!r}; "
                    "they apply only to URLs such as s3://"
                )
            local = Path(os.path.abspath(os.path.expanduser(path)))
            return cls(
                url=str(local), protocol="file", root=str(local), local=local, fs=None, safe_options={}, secrets=()
            )
        return cls._from_remote(root, protocol, options)

    @classmethod
    def _from_remote(cls, root: str, protocol: str, options: dict[str, Any]) -> Storage:
        if _url_has_password(root):
            shown = f"{protocol}://***@{root.rsplit('@', 1)[1]}"
            raise StorageError(
                f"credentials in the storage URL are refused ({shown}): they would end up in logs and "
                "records; use the environment (AWS_ACCESS_KEY_ID, ...) or storage_options"
            )
        shown = _redact(root)
        secrets = _secret_values(options)
        safe = _without_secrets(options)
        try:
            fs_cls = fsspec.get_filesystem_class(protocol)
        except (ImportError, ValueError) as exc:
            hint = " (install s3fs)" if protocol in _S3_PROTOCOLS else ""
            raise StorageError(f"cannot open {shown}: {type(exc).__name__}: {exc}{hint}") from None
        fs_options = dict(options)
        fs_options.setdefault("skip_instance_cache", True)
        if protocol in _S3_PROTOCOLS:
            # s3fs swallows unknown keyword arguments: a misspelt option would be ignored silently.
            unknown = sorted(set(options) - _accepted_options(fs_cls))
            if unknown:
                raise StorageError(f"unknown storage_options {unknown} for {shown}")
            # Several workers write one tree: a cached listing would hide their files.
            fs_options["use_listings_cache"] = False
            client_kwargs = fs_options.get("client_kwargs") or {}
            if "endpoint_url" not in fs_options and "endpoint_url" not in client_kwargs:
                endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
                if endpoint:
                    fs_options["endpoint_url"] = endpoint
        try:
            fs = fs_cls(**fs_options)
            stripped = str(fs_cls._strip_protocol(root)).rstrip("/")
        except Exception as exc:  # noqa: BLE001 - any backend error is re-raised without secrets
            msg = _scrub(f"{type(exc).__name__}: {exc}", secrets | _env_secrets())
            raise StorageError(f"cannot open {shown}: {msg}") from None
        if protocol in _S3_PROTOCOLS and not stripped.split("/", 1)[0]:
            raise StorageError(f"storage URL {shown} names no bucket (expected s3://bucket[/prefix])")
        if not stripped:
            raise StorageError(f"storage URL {shown} names no location")
        url = f"{protocol}://{stripped}"
        return cls(url=url, protocol=protocol, root=stripped, local=None, fs=fs, safe_options=safe, secrets=secrets)

    # ------------------------------------------------------------ properties

    @property
    def url(self) -> str:
        """The root: an absolute local path, or ``protocol://location`` for remote roots."""
        return self._url

    @property
    def is_local(self) -> bool:
        """Whether the root is a folder of this machine's filesystem."""
        return self._local is not None

    @property
    def local_path(self) -> Path | None:
        """The root folder for a local root; ``None`` for a remote one."""
        return self._local

    def uri(self, rel: str = "") -> str:
        """The full local path or URL of ``rel`` (for messages and records).

        Parameters
        ----------
        rel : str
            Path relative to the root; ``""`` is the root.

        Returns
        -------
        str
        """
        return _join(self._url, _check_rel(rel, allow_root=True))

    def __repr__(self) -> str:
        return f"Storage({self._url!r})"

    __str__ = __repr__

    def __reduce__(self) -> tuple[Callable[..., Storage], tuple[Any, ...]]:
        # Only the URL and the non-secret options travel: credentials stay in this process.
        if self._local is not None:
            return (Storage.from_url, (self._url,))
        return (Storage.from_url, (self._url, self._safe_options or None))

    # ----------------------------------------------------------- internals

    def _remote(self, rel: str) -> str:
        return _join(self._root, rel)

    def _local_file(self, rel: str) -> Path:
        assert self._local is not None
        return self._local / rel if rel else self._local

    def _remote_fs(self) -> fsspec.AbstractFileSystem:
        assert self._fs is not None
        return self._fs

    def _scrubbed(self, text: str) -> str:
        return _scrub(text, self._secrets | _env_secrets())

    def _wrap(self, exc: BaseException, op: str, rel: str) -> StorageError:
        """A credential-free StorageError for a backend exception."""
        msg = self._scrubbed(f"{op} {self.uri(rel)} failed: {type(exc).__name__}: {exc}")
        if isinstance(exc, FileNotFoundError):
            return StorageNotFoundError(msg)
        if isinstance(exc, PermissionError):
            return StoragePermissionError(msg)
        return StorageError(msg)

    def _call(self, op: str, rel: str, fn: Callable[[], _T]) -> _T:
        try:
            return fn()
        except (StorageError, StoragePathError):
            raise
        except Exception as exc:  # noqa: BLE001 - backend errors are re-raised without credentials
            raise self._wrap(exc, op, rel) from None

    # ------------------------------------------------------------- objects

    def exists(self, rel: str) -> bool:
        """Whether a file or folder exists at ``rel``.

        Parameters
        ----------
        rel : str
            Path relative to the root.

        Returns
        -------
        bool
        """
        rel = _check_rel(rel, allow_root=True)
        if self._local is not None:
            return self._local_file(rel).exists()
        return self._call("exists", rel, lambda: bool(self._remote_fs().exists(self._remote(rel))))

    def read_bytes(self, rel: str) -> bytes:
        """The content of the file at ``rel``.

        Parameters
        ----------
        rel : str
            Path relative to the root.

        Returns
        -------
        bytes

        Raises
        ------
        StorageNotFoundError
            If there is no file at ``rel``.
        """
        rel = _check_rel(rel)
        if self._local is not None:
            return self._call("read", rel, self._local_file(rel).read_bytes)
        return self._call("read", rel, lambda: bytes(self._remote_fs().cat_file(self._remote(rel))))

    def read_json(self, rel: str) -> Any:
        """The parsed JSON content of the file at ``rel``.

        Parameters
        ----------
        rel : str
            Path relative to the root.

        Returns
        -------
        Any

        Raises
        ------
        StorageNotFoundError
            If there is no file at ``rel``.
        StorageError
            If the file is not UTF-8 JSON.
        """
        data = self.read_bytes(rel)
        try:
            return json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise StorageError(f"{self.uri(rel)} is not valid JSON: {exc}") from None

    def write_bytes_atomic(self, rel: str, data: bytes) -> str:
        """Write ``data`` to ``rel`` so that readers see the old content or the new, never a part.

        Parameters
        ----------
        rel : str
            Path relative to the root; missing local folders are created.
        data : bytes
            The whole content.

        Returns
        -------
        str
            The normalised relative path.
        """
        rel = _check_rel(rel)
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"write_bytes_atomic({rel!r}) needs bytes, not {type(data).__name__}")
        payload = bytes(data)
        if self._local is not None:

            def write_local() -> None:
                with _atomic_local(self._local_file(rel)) as fh:
                    fh.write(payload)

            self._call("write", rel, write_local)
        else:
            self._call("write", rel, lambda: self._remote_fs().pipe_file(self._remote(rel), payload))
        return rel

    def write_json_atomic(self, rel: str, obj: Any) -> str:
        """Write ``obj`` as indented JSON (no NaN), atomically.

        Parameters
        ----------
        rel : str
            Path relative to the root.
        obj : Any
            JSON-serialisable value (numpy scalars and paths are converted).

        Returns
        -------
        str
            The normalised relative path.

        Raises
        ------
        ValueError
            If ``obj`` holds NaN or infinity; ``TypeError`` if it holds a value
            JSON cannot represent.  Nothing is written then.
        """
        rel = _check_rel(rel)
        return self.write_bytes_atomic(rel, _json_bytes(obj))

    def put_file(self, local_path: str | os.PathLike[str], rel: str) -> str:
        """Upload (or, for a local root, copy) one local file to ``rel``, atomically.

        Parameters
        ----------
        local_path : str or path-like
            An existing local file.
        rel : str
            Destination path relative to the root.

        Returns
        -------
        str
            The normalised relative path.

        Raises
        ------
        StorageNotFoundError
            If ``local_path`` is not an existing file.
        """
        rel = _check_rel(rel)
        src = Path(local_path)
        if not src.is_file():
            raise StorageNotFoundError(f"put_file: local file {str(src)!r} does not exist (or is not a file)")
        if self._local is not None:

            def copy_local() -> None:
                with open(src, "rb") as fin, _atomic_local(self._local_file(rel)) as fout:
                    shutil.copyfileobj(fin, fout, 1 << 20)

            self._call("put", rel, copy_local)
        else:
            self._call("put", rel, lambda: self._remote_fs().put_file(str(src), self._remote(rel)))
        return rel

    def get_file(self, rel: str, local_path: str | os.PathLike[str]) -> Path:
        """Download (or copy) ``rel`` to ``local_path``: into a temporary file, then renamed.

        A failed download leaves ``local_path`` as it was.

        Parameters
        ----------
        rel : str
            Path relative to the root.
        local_path : str or path-like
            Destination file; its folder is created if needed.

        Returns
        -------
        Path
            ``local_path``.

        Raises
        ------
        StorageNotFoundError
            If there is no file at ``rel``.
        """
        rel = _check_rel(rel)
        dest = Path(local_path)
        if self._local is not None:
            src = self._local_file(rel)

            def copy_local() -> None:
                with open(src, "rb") as fin, _atomic_local(dest) as fout:
                    shutil.copyfileobj(fin, fout, 1 << 20)

            self._call("get", rel, copy_local)
            return dest

        def download() -> None:
            with atomic_path(dest) as tmp:
                self._remote_fs().get_file(self._remote(rel), str(tmp))

        self._call("get", rel, download)
        return dest

    def list_dir(self, rel: str = "") -> list[str]:
        """Names of the files and folders directly inside the folder ``rel``, sorted.

        Parameters
        ----------
        rel : str
            Folder path relative to the root; ``""`` is the root.

        Returns
        -------
        list of str
            Names only (no path).

        Raises
        ------
        StorageNotFoundError
            If the folder does not exist (on S3: no object has that prefix).
        StorageError
            If ``rel`` is a file.
        """
        rel = _check_rel(rel, allow_root=True)
        if self._local is not None:
            return self._call("list", rel, lambda: sorted(os.listdir(self._local_file(rel))))
        full = self._remote(rel)

        def ls() -> list[str]:
            fs = self._remote_fs()
            entries = fs.ls(full, detail=True)
            if len(entries) == 1 and entries[0]["name"].rstrip("/") == full and entries[0]["type"] == "file":
                raise NotADirectoryError(f"{full} is a file")
            names = {str(e["name"]).rstrip("/").rsplit("/", 1)[-1] for e in entries}
            names.discard("")
            return sorted(names)

        return self._call("list", rel, ls)

    def remove(self, rel: str, *, recursive: bool = False, missing_ok: bool = False) -> bool:
        """Remove the file at ``rel`` (or, with ``recursive``, the folder and all below it).

        Parameters
        ----------
        rel : str
            Path relative to the root (never the root itself).
        recursive : bool
            Allow removing a folder with everything in it.
        missing_ok : bool
            Return ``False`` instead of raising when nothing is there.

        Returns
        -------
        bool
            Whether something was removed.

        Raises
        ------
        StorageNotFoundError
            If nothing is at ``rel`` and not ``missing_ok``.
        StorageError
            If ``rel`` is a folder and not ``recursive``.
        """
        rel = _check_rel(rel)
        if self._local is not None:
            path = self._local_file(rel)

            def rm_local() -> bool:
                if path.is_dir() and not path.is_symlink():
                    if not recursive:
                        raise IsADirectoryError(f"{path} is a folder (pass recursive=True)")
                    shutil.rmtree(path)
                    return True
                try:
                    path.unlink()
                except FileNotFoundError:
                    if missing_ok:
                        return False
                    raise
                return True

            return self._call("remove", rel, rm_local)
        full = self._remote(rel)

        def rm_remote() -> bool:
            fs = self._remote_fs()
            if fs.isfile(full):
                fs.rm_file(full)
                return True
            if fs.isdir(full):
                if not recursive:
                    raise IsADirectoryError(f"{full} is a folder (pass recursive=True)")
                fs.rm(full, recursive=True)
                return True
            if missing_ok:
                return False
            raise FileNotFoundError(full)

        return self._call("remove", rel, rm_remote)

    # --------------------------------------------------------------- trees

    def put_tree(
        self,
        local_dir: str | os.PathLike[str],
        rel_dir: str,
        *,
        exclude: Iterable[str] = DEFAULT_EXCLUDE,
        marker: str | None = COMMIT_MARKER,
        max_workers: int = 8,
    ) -> list[str]:
        """Upload a finished local folder (a tile) to ``rel_dir``, its commit marker last.

        Every file below ``local_dir`` is uploaded (atomically, each with
        :meth:`put_file`, several at a time), except those matching
        ``exclude``; the file ``marker`` at the top of the folder is uploaded
        only after all the others succeeded.  If ``rel_dir`` already holds a
        marker (an earlier upload of the same tile), that marker is removed
        first (also when the new folder has none), so a reader never sees an
        old marker over half-replaced files.  A reader that sees the marker therefore sees every other file
        of this upload.  Files under ``rel_dir`` that the local folder no
        longer has are left in place.

        Parameters
        ----------
        local_dir : str or path-like
            The local folder.
        rel_dir : str
            Destination folder relative to the root.
        exclude : iterable of str
            ``fnmatch`` patterns, matched against each file's and folder's
            path relative to ``local_dir`` and against its name (``"*.part"``,
            ``"work"``, ``"raw/*.fits"``).  Default :data:`DEFAULT_EXCLUDE`.
        marker : str or None
            Name of the commit marker (default ``tile.json``); ``None`` uploads
            in no particular order.  A folder without the marker is uploaded
            all the same (and stays uncommitted).
        max_workers : int
            Files uploaded at the same time.

        Returns
        -------
        list of str
            The uploaded paths relative to the root, sorted, the marker last.

        Raises
        ------
        StorageNotFoundError
            If ``local_dir`` is not a folder.
        StoragePathError
            If a file name is not a valid storage path (e.g. has a backslash).
        StorageError
            If an upload fails; the marker is then not uploaded.
        """
        rel_dir = _check_rel(rel_dir, allow_root=True)
        src = Path(local_dir)
        if not src.is_dir():
            raise StorageNotFoundError(f"put_tree: local folder {str(src)!r} does not exist (or is not a folder)")
        if max_workers < 1:
            raise ValueError(f"max_workers must be >= 1, got {max_workers!r}")
        patterns = tuple(exclude)
        files = _walk_local(src, patterns)
        marker_rel = _check_rel(marker) if marker is not None else None
        if marker_rel is not None and "/" in marker_rel:
            raise StoragePathError(f"invalid marker {marker!r}: it must be a file name at the top of the folder")
        others = [f for f in files if f != marker_rel]
        has_marker = marker_rel is not None and marker_rel in files
        if marker_rel is not None:
            # Uncommit an earlier upload first: its marker must not stand over half-replaced files.
            self.remove(_join(rel_dir, marker_rel), missing_ok=True)

        def upload(rel_file: str) -> str:
            return self.put_file(src / rel_file, _join(rel_dir, rel_file))

        with ThreadPoolExecutor(max_workers=min(max_workers, max(1, len(others)))) as pool:
            done = sorted(pool.map(upload, others))
        if has_marker:
            assert marker_rel is not None
            done.append(upload(marker_rel))
        return done

    def get_tree(
        self,
        rel_dir: str,
        local_dir: str | os.PathLike[str],
        *,
        exclude: Iterable[str] = (),
        marker: str | None = COMMIT_MARKER,
        max_workers: int = 8,
    ) -> list[Path]:
        """Download every file below ``rel_dir`` into ``local_dir`` (each atomically).

        When the folder has its commit marker, the marker is read before and
        after the other files are downloaded and written locally last; if it
        changed or went away meanwhile (another worker re-uploaded the tile)
        a :class:`StorageError` is raised, as the local copy may mix two
        uploads.  A folder that had no marker when the download started
        (not committed) is downloaded without it.

        Parameters
        ----------
        rel_dir : str
            Folder relative to the root; ``""`` is the root.
        local_dir : str or path-like
            Destination folder, created if needed.  Files already there are
            replaced; others are left.
        exclude : iterable of str
            ``fnmatch`` patterns of files not to download (as in :meth:`put_tree`).
        marker : str or None
            Name of the commit marker at the top of the folder.
        max_workers : int
            Files downloaded at the same time.

        Returns
        -------
        list of Path
            The local files written, sorted, the marker last.

        Raises
        ------
        StorageNotFoundError
            If ``rel_dir`` does not exist.
        StorageError
            If the tree changed during the download.
        """
        rel_dir = _check_rel(rel_dir, allow_root=True)
        dest = Path(local_dir)
        if max_workers < 1:
            raise ValueError(f"max_workers must be >= 1, got {max_workers!r}")
        patterns = tuple(exclude)
        marker_rel = _check_rel(marker) if marker is not None else None
        marker_full = _join(rel_dir, marker_rel) if marker_rel is not None else None
        # The marker is read first: a tree committed now stays whole unless the marker changes.
        before: bytes | None = None
        if marker_full is not None and not _excluded(marker_full.rsplit("/", 1)[-1], patterns):
            with contextlib.suppress(FileNotFoundError):
                before = self.read_bytes(marker_full)
        files = [f for f in self._find(rel_dir) if not _excluded(f, patterns)]
        others = [f for f in files if f != marker_rel]

        def download(rel_file: str) -> Path:
            return self.get_file(_join(rel_dir, rel_file), dest.joinpath(*rel_file.split("/")))

        with ThreadPoolExecutor(max_workers=min(max_workers, max(1, len(others)))) as pool:
            written = sorted(pool.map(download, others))
        if marker_full is not None and marker_rel is not None and before is not None:
            try:
                after: bytes | None = self.read_bytes(marker_full)
            except FileNotFoundError:
                after = None
            if after != before:
                raise StorageError(
                    f"{self.uri(rel_dir)} changed while it was downloaded (its {marker_rel} was replaced "
                    "or removed): the local copy may mix two uploads; download it again"
                )
            with _atomic_local(dest / marker_rel) as fh:
                fh.write(before)
            written.append(dest / marker_rel)
        return written

    def _find(self, rel_dir: str) -> list[str]:
        """Every file below ``rel_dir``, as validated paths relative to it, sorted."""
        if self._local is not None:
            base = self._local_file(rel_dir)
            if not base.is_dir():
                raise StorageNotFoundError(f"get_tree: {self.uri(rel_dir)} is not a folder")
            return _walk_local(base, ())
        full = self._remote(rel_dir)

        def find() -> list[str]:
            fs = self._remote_fs()
            names = [str(n) for n in fs.find(full)]
            if not names and not fs.isdir(full):
                raise FileNotFoundError(full)
            return names

        names = self._call("list", rel_dir, find)
        prefix = full + "/"
        out = []
        for name in names:
            if name.rstrip("/") == full:
                raise StorageError(f"get_tree: {self.uri(rel_dir)} is a file, not a folder")
            if not name.startswith(prefix):
                raise StorageError(f"get_tree: unexpected object {self._scrubbed(name)!r} below {self.uri(rel_dir)}")
            # Object keys may hold '..' or '//': check them before they become local paths.
            out.append(_check_rel(name[len(prefix) :]))
        return sorted(out)

    # -------------------------------------------------------------- leases

    def acquire_lease(self, rel: str, owner: str, ttl_s: float) -> bool:
        """Take the lease at ``rel`` for ``owner``, unless another live owner holds it.

        A lease is a small JSON object (owner, ``ttl_s``, host, pid, time).
        Put leases outside tile folders (e.g. ``leases/<tile_id>.json``).

        Parameters
        ----------
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
        rel = _check_rel(rel)
        _check_lease_args(owner, ttl_s)
        if self._local is not None:
            return self._call("acquire lease", rel, lambda: self._local_acquire(self._local_file(rel), owner, ttl_s))
        self._require_s3_leases()
        return self._call("acquire lease", rel, lambda: self._s3_acquire(self._remote(rel), owner, ttl_s))

    def release_lease(self, rel: str, owner: str) -> bool:
        """Give back the lease at ``rel`` held by ``owner``.

        Parameters
        ----------
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
        rel = _check_rel(rel)
        _check_lease_args(owner)
        if self._local is not None:
            return self._call("release lease", rel, lambda: self._local_release(self._local_file(rel), rel, owner))
        self._require_s3_leases()
        return self._call("release lease", rel, lambda: self._s3_release(self._remote(rel), rel, owner))

    def _require_s3_leases(self) -> None:
        if self._protocol not in _S3_PROTOCOLS:
            raise StorageError(
                f"leases are not supported on {self._protocol}:// roots ({self._url}): "
                "use a local (or network-mounted) path or s3://"
            )

    def _not_held(self, rel: str, holder: str | None, owner: str) -> LeaseNotHeldError:
        who = repr(holder) if holder is not None else "an unknown owner"
        return LeaseNotHeldError(f"lease {self.uri(rel)} is held by {who}, not by {owner!r}: not released")

    # local leases

    @staticmethod
    def _local_read(path: Path) -> _LeaseState | None:
        try:
            with open(path, "rb") as fh:
                st = os.fstat(fh.fileno())
                data = fh.read()
        except FileNotFoundError:
            return None
        owner, ttl = _parse_lease(data)
        return _LeaseState(owner=owner, ttl_s=ttl, age_s=time.time() - st.st_mtime, holder_dead=_holder_dead(data))

    @staticmethod
    def _local_create(path: Path, body: bytes) -> bool:
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

    @staticmethod
    @contextlib.contextmanager
    def _local_mutex(path: Path, wait_s: float) -> Iterator[bool]:
        """Hold ``<lease>.lock`` (exclusive create) while yielding True; False if it stayed busy.

        The lock records its host and process id: one left by a process of
        this host that no longer exists is removed at once, any other after
        30 s.
        """
        lock = path.with_name(path.name + ".lock")
        deadline = time.monotonic() + wait_s
        body = json.dumps({"host": socket.gethostname(), "pid": os.getpid()}).encode()
        while not Storage._local_create(lock, body):
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

    def _local_acquire(self, path: Path, owner: str, ttl_s: float) -> bool:
        body = _lease_body(owner, ttl_s)
        if self._local_create(path, body):
            return True
        state = self._local_read(path)
        if state is not None and state.owner != owner and not state.stale(ttl_s):
            return False
        # Renewal or take-over (or the lease just went away): decide again under the lock.
        with self._local_mutex(path, _MUTEX_WAIT_S) as locked:
            if not locked:
                return False
            state = self._local_read(path)
            if state is None:
                return self._local_create(path, body)
            if state.owner == owner or state.stale(ttl_s):
                with _atomic_local(path) as fh:
                    fh.write(body)
                return True
            return False

    def _local_release(self, path: Path, rel: str, owner: str) -> bool:
        if not path.exists():
            return False
        with self._local_mutex(path, _MUTEX_WAIT_S) as locked:
            if not locked:
                raise StorageError(f"lease {self.uri(rel)} is busy (its .lock stayed for {_MUTEX_WAIT_S:.0f} s)")
            state = self._local_read(path)
            if state is None:
                return False
            if state.owner != owner:
                raise self._not_held(rel, state.owner, owner)
            path.unlink()
            return True

    # S3 leases

    def _s3_put(self, full: str, body: bytes, **condition: str) -> None:
        fs = self._remote_fs()
        bucket, key, _ = fs.split_path(full)
        fs.call_s3("put_object", Bucket=bucket, Key=key, Body=body, **condition)

    def _s3_read(self, full: str) -> _LeaseState | None:
        fs = self._remote_fs()
        bucket, key, _ = fs.split_path(full)

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
            owner=owner, ttl_s=ttl, age_s=now - resp["LastModified"].timestamp(), etag=str(resp.get("ETag")),
            holder_dead=_holder_dead(data),
        )

    def _s3_acquire(self, full: str, owner: str, ttl_s: float) -> bool:
        body = _lease_body(owner, ttl_s)
        for _ in range(3):
            try:
                self._s3_put(full, body, IfNoneMatch="*")
                return True
            except OSError as exc:
                if not (isinstance(exc, FileExistsError) or _s3_error_code(exc) in _S3_LOST):
                    raise
            state = self._s3_read(full)
            if state is None:
                continue  # released a moment ago: try to create it again
            if state.owner != owner and not state.stale(ttl_s):
                return False
            # Our own lease (renewal; also a create whose answer was lost and retried) or a stale one.
            try:
                assert state.etag is not None
                self._s3_put(full, body, IfMatch=state.etag)
                return True
            except FileNotFoundError:
                continue
            except OSError as exc:
                if _s3_error_code(exc) in _S3_LOST:
                    return False  # another worker renewed or took it over first
                raise
        return False

    def _s3_release(self, full: str, rel: str, owner: str) -> bool:
        state = self._s3_read(full)
        if state is None:
            return False
        if state.owner != owner:
            raise self._not_held(rel, state.owner, owner)
        fs = self._remote_fs()
        bucket, key, _ = fs.split_path(full)
        try:
            assert state.etag is not None
            fs.call_s3("delete_object", Bucket=bucket, Key=key, IfMatch=state.etag)
        except FileNotFoundError:
            return False
        except OSError as exc:
            if _s3_error_code(exc) in _S3_LOST:
                current = self._s3_read(full)
                raise self._not_held(rel, current.owner if current else None, owner) from None
            raise
        return True


def _url_has_password(url: str) -> bool:
    """Whether a URL carries ``user:password@`` (a password may itself hold '/')."""
    rest = url.split("://", 1)[1] if "://" in url else url
    authority = rest.split("/", 1)[0]
    if "@" in authority:
        return ":" in authority.rsplit("@", 1)[0]
    # 's3://KEY:SECR/ET@bucket': the '/' of the secret ends the authority early.
    return ":" in authority and "@" in rest


def _redact(url: str) -> str:
    """``url`` with any ``user:password@`` replaced by ``***@``."""
    return _USERINFO.sub(r"\1***@", url)


def _env_secrets() -> set[str]:
    return {v for name in _SECRET_ENV if len(v := os.environ.get(name, "")) >= _MIN_SECRET_LEN}


def _scrub(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret value and URL user-info replaced by ``***``."""
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, "***")
    return _redact(text)


def _accepted_options(fs_cls: type) -> set[str]:
    """Named keyword arguments of a filesystem class's constructors (and of fsspec's listing cache)."""
    names = {"skip_instance_cache", "use_listings_cache", "listings_expiry_time", "max_paths"}
    for klass in fs_cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        with contextlib.suppress(TypeError, ValueError):
            for p in inspect.signature(init).parameters.values():
                if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name != "self":
                    names.add(p.name)
    return names


def _excluded(rel: str, patterns: tuple[str, ...]) -> bool:
    name = rel.rsplit("/", 1)[-1]
    return any(fnmatch.fnmatchcase(rel, p) or fnmatch.fnmatchcase(name, p) for p in patterns)


def _walk_local(base: Path, patterns: tuple[str, ...]) -> list[str]:
    """Files below ``base`` as validated ``/`` paths relative to it, excluded ones (and folders) pruned."""
    out = []
    for folder, dirs, names in os.walk(base):
        here = Path(folder).relative_to(base).as_posix()
        here = "" if here == "." else here
        dirs[:] = sorted(d for d in dirs if not _excluded(_join(here, d), patterns))
        for name in names:
            rel = _join(here, name)
            if not _excluded(rel, patterns):
                out.append(_check_rel(rel))
    return sorted(out)

"""Where a survey tree lives: a local folder or shared object storage.

Workers on several machines write one survey tree when its root is an fsspec
URL (``s3://bucket/prefix``, ``gs://...``); on one machine it is a local
folder, served by fsspec's local filesystem.  Every operation goes through
one fsspec filesystem, whatever the root.  The pipeline keeps working on
local files (SExtractor needs them) and moves finished results with
:class:`Storage`:

- every path is relative to the root, ``/``-separated, and checked (no
  ``..``, no absolute path, no empty component): a bad one raises
  :class:`StoragePathError` naming it;
- writes are atomic: a reader sees the old object or the new one, never a
  part.  Local files are written under a temporary name in the destination
  folder, flushed and renamed; an S3 object appears only when its PUT (or
  its multipart upload) completes.  Other fsspec backends are written with
  their own ``pipe_file``/``put_file``: object stores (GCS, Azure Blob) are
  atomic the same way, file-like backends (SFTP, ...) are not.  That
  difference is the store's only local/remote branch (:meth:`Storage._staged`);
- :meth:`Storage.put_tree` uploads a finished tile folder with its
  ``tile.json`` last, so ``tile.json`` is the tile's commit marker: a reader
  that sees it sees every other file of the tile;
- leases, which keep two workers from processing the same tile at the same
  time, are in :mod:`vasco.leases`.

Credentials (S3 keys) come from the standard environment
(``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``,
``AWS_ENDPOINT_URL``/``AWS_ENDPOINT_URL_S3``, profiles, instance roles) or from
``storage_options``.  They never appear in a message, a repr or a pickle: an
error from the backend is re-raised as a :class:`StorageError` whose text has
every known secret replaced by ``***`` (:mod:`vasco.credentials`), without
the original exception chained (its text could hold them), and a pickled
:class:`Storage` carries only its URL and its non-secret options (the
receiving process takes its credentials from its own environment).

This module never imports Prefect.
"""

from __future__ import annotations

import contextlib
import fnmatch
import inspect
import json
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path, PurePath
from typing import Any

import fsspec
import fsspec.core
from fsspec.implementations.local import LocalFileSystem

from vasco.credentials import env_secrets, redact, scrub, secret_values, url_has_password, without_secrets
from vasco.io import atomic_path, json_bytes, write_bytes_atomic

__all__ = [
    "COMMIT_MARKER",
    "DEFAULT_EXCLUDE",
    "S3_PROTOCOLS",
    "Storage",
    "StorageError",
    "StorageNotFoundError",
    "StoragePathError",
    "StoragePermissionError",
]

#: The file of a tile folder that :meth:`Storage.put_tree` uploads last.
COMMIT_MARKER = "tile.json"

#: Patterns :meth:`Storage.put_tree` leaves out by default: files still being
#: written (``vasco.io`` writes ``.<name>.<random>.part``).
DEFAULT_EXCLUDE: tuple[str, ...] = ("*.part", "*.tmp")

#: fsspec protocols served by s3fs.
S3_PROTOCOLS = frozenset({"s3", "s3a"})
_LOCAL_PROTOCOLS = frozenset({"file", "local"})


class StorageError(OSError):
    """A storage operation failed; the message names the URL and never holds a credential."""


class StorageNotFoundError(StorageError, FileNotFoundError):
    """The object, file or folder does not exist."""


class StoragePermissionError(StorageError, PermissionError):
    """The storage refused the operation (credentials, bucket policy, file mode)."""


class StoragePathError(ValueError):
    """A path given to :class:`Storage` is not a valid relative path."""


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
    """Files below the local folder ``base`` as validated ``/`` paths relative to it, excluded ones pruned."""
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


def _is_link(fs: fsspec.AbstractFileSystem, full: str) -> bool:
    """Whether ``full`` is a symbolic link (removed as a file, even to a folder or dangling).

    Only filesystems that have links (the local one) answer ``islink``.
    """
    islink = getattr(fs, "islink", None)
    return bool(islink(full)) if islink is not None else False


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
        fs: fsspec.AbstractFileSystem,
        safe_options: Mapping[str, Any],
        secrets: Iterable[str],
    ) -> None:
        """Use :meth:`from_url`; this constructor takes already checked parts."""
        self._url = url
        self._protocol = protocol
        self._root = root
        self._fs = fs
        self._local = Path(root) if isinstance(fs, LocalFileSystem) else None
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
            raise StorageError(f"chained fsspec URLs are not supported as a storage root: {redact(root)}")
        protocol, path = fsspec.core.split_protocol(root)
        if protocol is None or protocol in _LOCAL_PROTOCOLS:
            if options:
                raise StorageError(
                    f"storage_options {sorted(options)} were given for the local root {path!r}; "
                    "they apply only to URLs such as s3://"
                )
            local = os.path.abspath(os.path.expanduser(path))
            fs = LocalFileSystem(skip_instance_cache=True)
            return cls(url=local, protocol="file", root=local, fs=fs, safe_options={}, secrets=())
        return cls._from_remote(root, protocol, options)

    @classmethod
    def _from_remote(cls, root: str, protocol: str, options: dict[str, Any]) -> Storage:
        if url_has_password(root):
            shown = f"{protocol}://***@{root.rsplit('@', 1)[1]}"
            raise StorageError(
                f"credentials in the storage URL are refused ({shown}): they would end up in logs and "
                "records; use the environment (AWS_ACCESS_KEY_ID, ...) or storage_options"
            )
        shown = redact(root)
        secrets = secret_values(options)
        safe = without_secrets(options)
        try:
            fs_cls = fsspec.get_filesystem_class(protocol)
        except (ImportError, ValueError) as exc:
            hint = " (install s3fs)" if protocol in S3_PROTOCOLS else ""
            raise StorageError(f"cannot open {shown}: {type(exc).__name__}: {exc}{hint}") from None
        fs_options = dict(options)
        fs_options.setdefault("skip_instance_cache", True)
        if protocol in S3_PROTOCOLS:
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
            msg = scrub(f"{type(exc).__name__}: {exc}", secrets | env_secrets())
            raise StorageError(f"cannot open {shown}: {msg}") from None
        if protocol in S3_PROTOCOLS and not stripped.split("/", 1)[0]:
            raise StorageError(f"storage URL {shown} names no bucket (expected s3://bucket[/prefix])")
        if not stripped:
            raise StorageError(f"storage URL {shown} names no location")
        url = f"{protocol}://{stripped}"
        return cls(url=url, protocol=protocol, root=stripped, fs=fs, safe_options=safe, secrets=secrets)

    # ------------------------------------------------------------ properties

    @property
    def url(self) -> str:
        """The root: an absolute local path, or ``protocol://location`` for remote roots."""
        return self._url

    @property
    def protocol(self) -> str:
        """The fsspec protocol of the root (``file`` for a local folder, ``s3``, ``gs``, ...)."""
        return self._protocol

    @property
    def fs(self) -> fsspec.AbstractFileSystem:
        """The fsspec filesystem every operation goes through."""
        return self._fs

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

    def fs_path(self, rel: str) -> str:
        """The path of the file ``rel`` as :attr:`fs` names it (a local path, or ``bucket/key``).

        Parameters
        ----------
        rel : str
            Path of a file relative to the root (checked; not the root itself).

        Returns
        -------
        str
        """
        return _join(self._root, _check_rel(rel))

    def __repr__(self) -> str:
        return f"Storage({self._url!r})"

    __str__ = __repr__

    def __reduce__(self) -> tuple[Callable[..., Storage], tuple[Any, ...]]:
        # Only the URL and the non-secret options travel: credentials stay in this process.
        return (Storage.from_url, (self._url, self._safe_options or None))

    # ----------------------------------------------------------- internals

    def _full(self, rel: str) -> str:
        """``rel`` (already checked; ``""`` is the root) as :attr:`fs` names it."""
        return _join(self._root, rel)

    @contextlib.contextmanager
    def backend_errors(self, op: str, rel: str) -> Iterator[None]:
        """Re-raise a backend exception inside the block as a credential-free :class:`StorageError`.

        Parameters
        ----------
        op : str
            What was being done (``"read"``, ``"acquire lease"``, ...), for the message.
        rel : str
            The path it was done to, relative to the root.

        Yields
        ------
        None

        Raises
        ------
        StorageNotFoundError, StoragePermissionError, StorageError
            For a ``FileNotFoundError``, a ``PermissionError`` or any other
            exception, with every known secret replaced by ``***`` and the
            original exception not chained.  ``StorageError`` and
            ``StoragePathError`` pass unchanged.
        """
        try:
            yield
        except (StorageError, StoragePathError):
            raise
        except Exception as exc:  # noqa: BLE001 - backend errors are re-raised without credentials
            msg = self._scrubbed(f"{op} {self.uri(rel)} failed: {type(exc).__name__}: {exc}")
            if isinstance(exc, FileNotFoundError):
                raise StorageNotFoundError(msg) from None
            if isinstance(exc, PermissionError):
                raise StoragePermissionError(msg) from None
            raise StorageError(msg) from None

    def _scrubbed(self, text: str) -> str:
        return scrub(text, self._secrets | env_secrets())

    @contextlib.contextmanager
    def _staged(self, full: str) -> Iterator[str]:
        """Yield where to write the new content of ``full`` so that readers see it whole or not at all.

        A local file is written under a temporary name beside it, then
        fsynced and renamed over it (:func:`vasco.io.atomic_path`); an
        object store's object appears only when its upload completes, so it
        is written in place.  This is the store's one local/remote branch.
        """
        if self._local is not None:
            with atomic_path(Path(full)) as tmp:
                yield str(tmp)
        else:
            yield full

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
        with self.backend_errors("exists", rel):
            return bool(self._fs.exists(self._full(rel)))

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
        full = self.fs_path(rel)
        with self.backend_errors("read", rel):
            return bytes(self._fs.cat_file(full))

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
        with self.backend_errors("write", rel), self._staged(self._full(rel)) as target:
            self._fs.pipe_file(target, payload)
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
        return self.write_bytes_atomic(rel, json_bytes(obj))

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
        with self.backend_errors("put", rel), self._staged(self._full(rel)) as target:
            self._fs.put_file(str(src), target)
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
        full = self.fs_path(rel)
        dest = Path(local_path)
        with self.backend_errors("get", rel), atomic_path(dest) as tmp:
            self._fs.get_file(full, str(tmp))
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
        full = self._full(rel)
        with self.backend_errors("list", rel):
            entries = self._fs.ls(full, detail=True)
            if len(entries) == 1 and entries[0]["name"].rstrip("/") == full and entries[0]["type"] == "file":
                raise NotADirectoryError(f"{full} is a file")
        names = {str(e["name"]).rstrip("/").rsplit("/", 1)[-1] for e in entries}
        names.discard("")
        return sorted(names)

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
        full = self.fs_path(rel)
        fs = self._fs
        with self.backend_errors("remove", rel):
            if fs.isfile(full) or _is_link(fs, full):
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
            write_bytes_atomic(dest / marker_rel, before)
            written.append(dest / marker_rel)
        return written

    def _find(self, rel_dir: str) -> list[str]:
        """Every file below ``rel_dir``, as validated paths relative to it, sorted."""
        full = self._full(rel_dir)
        with self.backend_errors("list", rel_dir):
            names = [str(n) for n in self._fs.find(full)]
            if not names and not self._fs.isdir(full):
                raise FileNotFoundError(full)
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

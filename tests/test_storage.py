"""vasco.storage against a local folder and an S3 stand-in (moto) on 127.0.0.1."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import socket
import subprocess
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from servers.s3 import S3StandIn, aws_loopback_env

from vasco.leases import LeaseNotHeldError, acquire_lease, release_lease
from vasco.storage import (
    Storage,
    StorageError,
    StorageNotFoundError,
    StoragePathError,
)

BUCKET = "vasco-test"
# Long enough that a live lease never goes stale during a test; S3 ages have 1 s resolution.
LIVE_TTL = 600.0
SHORT_TTL = 0.2
# Waiting this long makes a SHORT_TTL lease stale on both backends (S3: whole seconds).
STALE_WAIT = {"local": 0.3, "s3": 1.1}


@pytest.fixture(scope="module")
def s3_server() -> Iterator[S3StandIn]:
    """moto on 127.0.0.1 with fake credentials; no metadata service, no profile, no proxy."""
    with pytest.MonkeyPatch.context() as mp:
        aws_loopback_env(mp)
        with S3StandIn() as server:
            mp.setenv("AWS_ENDPOINT_URL", server.url)
            server.create_bucket(BUCKET)
            yield server


@pytest.fixture(params=["local", "s3"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def root_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if backend == "local":
        return str(tmp_path / "survey")
    request.getfixturevalue("s3_server")
    return f"s3://{BUCKET}/{uuid.uuid4().hex}/survey"


@pytest.fixture
def storage(root_url: str) -> Storage:
    return Storage.from_url(root_url)


def reader(storage: Storage) -> Storage:
    """A second, independent client of the same root (another worker)."""
    return Storage.from_url(storage.url)


def make_tile(folder: Path) -> dict[str, bytes]:
    """A finished tile folder; returns the files that should be uploaded."""
    rng = __import__("random").Random(7)
    files = {
        "raw/image.fits": bytes(rng.getrandbits(8) for _ in range(200_000)),
        "raw/image.header.txt": b"SIMPLE  =                    T\n",
        "catalogs/gaia.parquet": bytes(rng.getrandbits(8) for _ in range(50_000)),
        "steps/extract.json": b'{"key": "abc"}\n',
        "detections.parquet": b"PAR1" + bytes(1000) + b"PAR1",
        "candidates.parquet": b"",  # an empty file is a file too
        "tile.json": b'{"tile_id": "t1", "status": "ok"}\n',
    }
    for rel, data in files.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(data)
    # Left out by the default exclude: files still being written.
    (folder / ".detections.parquet.1a2b.part").write_bytes(b"half")
    (folder / "work").mkdir()
    (folder / "work" / "scratch.tmp").write_bytes(b"x")
    return files


def record_puts(storage: Storage, monkeypatch: pytest.MonkeyPatch, check: Callable[[str], None]) -> list[str]:
    """Wrap storage.put_file: record each destination when its upload ends; call check before each."""
    order: list[str] = []
    lock = threading.Lock()
    real = storage.put_file

    def put_file(local_path: str | os.PathLike[str], rel: str) -> str:
        check(rel)
        out = real(local_path, rel)
        with lock:
            order.append(rel)
        return out

    monkeypatch.setattr(storage, "put_file", put_file, raising=False)
    return order


# --------------------------------------------------------------------- opening


def test_properties(backend: str, storage: Storage, root_url: str) -> None:
    if backend == "local":
        assert storage.is_local and storage.local_path == Path(root_url)
        assert storage.url == root_url
    else:
        assert not storage.is_local and storage.local_path is None
        assert storage.url == root_url
    assert storage.uri("tiles/t1/tile.json") == root_url + "/tiles/t1/tile.json"
    assert repr(storage) == f"Storage({root_url!r})"


def test_local_file_url_and_relative_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert Storage.from_url(f"file://{tmp_path}/a").local_path == tmp_path / "a"
    monkeypatch.chdir(tmp_path)
    assert Storage.from_url("runs/demo").local_path == tmp_path / "runs" / "demo"


@pytest.mark.parametrize(
    ("root", "options", "words"),
    [
        ("", None, "non-empty"),
        ("   ", None, "non-empty"),
        ("s3://", None, "names no bucket"),
        ("nosuchproto://x/y", None, "nosuchproto"),
        ("simplecache::s3://b/p", None, "chained"),
        ("runs/demo", {"endpoint_url": "http://127.0.0.1:1"}, "local root"),
        ("s3://b/p", ["not", "a", "mapping"], "mapping"),
        ("s3://b/p", {"no_such_option_xyz": 1}, "no_such_option_xyz"),
    ],
)
def test_from_url_bad_input(root: str, options: object, words: str) -> None:
    with pytest.raises(StorageError, match=words):
        Storage.from_url(root, options)  # type: ignore[arg-type]


# ------------------------------------------------------------------ read/write


def test_write_read_round_trip(storage: Storage) -> None:
    assert not storage.exists("tiles/t1/steps/a.json")
    storage.write_bytes_atomic("tiles/t1/raw/blob.bin", b"\x00\x01binary")
    storage.write_json_atomic("tiles/t1/steps/a.json", {"key": "k", "n": 3, "path": Path("x/y")})
    assert storage.read_bytes("tiles/t1/raw/blob.bin") == b"\x00\x01binary"
    assert storage.read_json("tiles/t1/steps/a.json") == {"key": "k", "n": 3, "path": "x/y"}
    assert storage.exists("tiles/t1/steps/a.json") and storage.exists("tiles/t1")
    assert reader(storage).read_bytes("tiles/t1/raw/blob.bin") == b"\x00\x01binary"
    storage.write_json_atomic("tiles/t1/steps/a.json", {"key": "k2"})
    assert reader(storage).read_json("tiles/t1/steps/a.json") == {"key": "k2"}
    with pytest.raises(ValueError, match="Out of range float"):
        storage.write_json_atomic("tiles/t1/steps/a.json", {"x": float("nan")})
    assert storage.read_json("tiles/t1/steps/a.json") == {"key": "k2"}, "a refused write changed the file"


def test_missing_file_errors(storage: Storage) -> None:
    with pytest.raises(FileNotFoundError, match="nothing/here.json") as err:
        storage.read_bytes("nothing/here.json")
    assert isinstance(err.value, StorageNotFoundError)
    with pytest.raises(FileNotFoundError):
        storage.read_json("nothing/here.json")
    storage.write_bytes_atomic("bad.json", b"{not json")
    with pytest.raises(StorageError, match="bad.json is not valid JSON"):
        storage.read_json("bad.json")


def test_concurrent_reader_never_sees_a_partial_write(storage: Storage) -> None:
    """Overwrite a 2 MB file again and again while another client reads it: only whole versions."""
    size = 2 << 20
    versions = {b"a" * size, b"b" * size}
    storage.write_bytes_atomic("big.bin", b"a" * size)
    other = reader(storage)
    stop = threading.Event()
    seen: list[bytes] = []
    errors: list[BaseException] = []

    def read_loop() -> None:
        try:
            while not stop.is_set():
                seen.append(other.read_bytes("big.bin"))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    thread = threading.Thread(target=read_loop)
    thread.start()
    try:
        for i in range(12):
            storage.write_bytes_atomic("big.bin", b"ab"[i % 2 : i % 2 + 1] * size)
    finally:
        stop.set()
        thread.join()
    assert not errors, errors
    assert seen, "the reader read nothing"
    assert all(data in versions for data in seen), "a reader saw a partial file"


def test_local_write_failure_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    storage = Storage.from_url(str(tmp_path))
    storage.write_bytes_atomic("a/x.bin", b"old")

    def fail(fd: int) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", fail)
    with pytest.raises(StorageError, match="disk full"):
        storage.write_bytes_atomic("a/x.bin", b"new content")
    monkeypatch.undo()
    assert storage.read_bytes("a/x.bin") == b"old"
    assert storage.list_dir("a") == ["x.bin"], "a temporary file was left behind"


# ------------------------------------------------------------------ files


def test_put_get_file_round_trip(storage: Storage, tmp_path: Path) -> None:
    data = os.urandom(3 << 20)
    src = tmp_path / "in" / "image.fits"
    src.parent.mkdir()
    src.write_bytes(data)
    assert storage.put_file(src, "tiles/t1/raw/image.fits") == "tiles/t1/raw/image.fits"
    dest = tmp_path / "out" / "deep" / "image.fits"
    assert reader(storage).get_file("tiles/t1/raw/image.fits", dest) == dest
    assert hashlib.sha256(dest.read_bytes()).hexdigest() == hashlib.sha256(data).hexdigest()
    assert sorted(os.listdir(dest.parent)) == ["image.fits"], "a temporary file was left behind"


def test_get_file_failure_leaves_destination(storage: Storage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dest = tmp_path / "dl" / "x.bin"
    dest.parent.mkdir()
    dest.write_bytes(b"previous")
    with pytest.raises(StorageNotFoundError, match="missing.bin"):
        storage.get_file("missing.bin", dest)
    storage.write_bytes_atomic("x.bin", b"N" * 100_000)

    # A download (a copy, for a local root) that breaks half-way: it has written part of the file, then fails.
    def broken_get(rpath: str, lpath: str, **kwargs: object) -> None:
        Path(lpath).write_bytes(b"N" * 10)
        raise ConnectionResetError("connection lost half-way")

    monkeypatch.setattr(storage.fs, "get_file", broken_get)
    with pytest.raises(StorageError, match="half-way"):
        storage.get_file("x.bin", dest)
    assert dest.read_bytes() == b"previous"
    assert os.listdir(dest.parent) == ["x.bin"], "a temporary file was left behind"


def test_put_file_missing_source(storage: Storage, tmp_path: Path) -> None:
    with pytest.raises(StorageNotFoundError, match="nope.fits"):
        storage.put_file(tmp_path / "nope.fits", "a.fits")
    assert not storage.exists("a.fits")


def test_list_dir_and_remove(storage: Storage) -> None:
    for rel in ("tiles/t1/tile.json", "tiles/t1/raw/image.fits", "tiles/t2/tile.json", "summary.json"):
        storage.write_bytes_atomic(rel, b"{}")
    assert storage.list_dir("") == ["summary.json", "tiles"]
    assert storage.list_dir("tiles") == ["t1", "t2"]
    assert storage.list_dir("tiles/t1/") == ["raw", "tile.json"]
    with pytest.raises(FileNotFoundError, match="tiles/t9"):
        storage.list_dir("tiles/t9")
    with pytest.raises(StorageError, match="summary.json"):
        storage.list_dir("summary.json")
    assert storage.remove("summary.json") is True
    assert not storage.exists("summary.json")
    with pytest.raises(FileNotFoundError, match="summary.json"):
        storage.remove("summary.json")
    assert storage.remove("summary.json", missing_ok=True) is False
    with pytest.raises(StorageError, match="recursive=True"):
        storage.remove("tiles/t1")
    assert storage.exists("tiles/t1/tile.json")
    assert storage.remove("tiles/t1", recursive=True) is True
    assert storage.list_dir("tiles") == ["t2"]


def test_local_remove_takes_a_symbolic_link_not_its_target(tmp_path: Path) -> None:
    storage = Storage.from_url(str(tmp_path / "root"))
    storage.write_bytes_atomic("a/b.bin", b"x")
    os.symlink(tmp_path / "root" / "a", tmp_path / "root" / "link")
    os.symlink(tmp_path / "nothing", tmp_path / "root" / "dangling")
    assert storage.remove("link") is True and storage.remove("dangling") is True
    assert storage.list_dir("") == ["a"] and storage.read_bytes("a/b.bin") == b"x"


# ------------------------------------------------------------------ trees


def test_put_tree_uploads_tile_json_last(storage: Storage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tile = tmp_path / "t1"
    files = make_tile(tile)
    watcher = reader(storage)
    missing_at_commit: list[str] = []
    checked: list[str] = []

    def check(rel: str) -> None:
        # When the marker is about to be uploaded, another worker must already see every other file.
        if rel.endswith("/tile.json"):
            checked.append(rel)
            missing_at_commit.extend(f for f in files if f != "tile.json" and not watcher.exists(f"tiles/t1/{f}"))

    order = record_puts(storage, monkeypatch, check)
    uploaded = storage.put_tree(tile, "tiles/t1")
    assert order[-1] == "tiles/t1/tile.json"
    assert order.count("tiles/t1/tile.json") == 1
    assert sorted(order) == sorted(f"tiles/t1/{f}" for f in files)
    assert uploaded[-1] == "tiles/t1/tile.json" and sorted(uploaded) == sorted(order)
    assert checked == ["tiles/t1/tile.json"] and missing_at_commit == []
    assert watcher.list_dir("tiles/t1") == [
        "candidates.parquet",
        "catalogs",
        "detections.parquet",
        "raw",
        "steps",
        "tile.json",
    ]

    out = tmp_path / "back"
    written = watcher.get_tree("tiles/t1", out)
    assert written[-1] == out / "tile.json"
    got = {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert got == files, "the downloaded tree differs from the uploaded one"


def test_put_tree_failure_leaves_tile_uncommitted(
    storage: Storage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tile = tmp_path / "t1"
    make_tile(tile)
    storage.put_tree(tile, "tiles/t1")
    assert storage.exists("tiles/t1/tile.json")

    # A re-run of the tile whose upload fails half-way: the old marker must not survive over it.
    (tile / "detections.parquet").write_bytes(b"new detections")

    def check(rel: str) -> None:
        if rel.endswith("catalogs/gaia.parquet"):
            raise StorageError("upload refused")

    record_puts(storage, monkeypatch, check)
    with pytest.raises(StorageError, match="upload refused"):
        storage.put_tree(tile, "tiles/t1")
    assert not reader(storage).exists("tiles/t1/tile.json"), "tile committed although an upload failed"

    # A re-upload without a marker leaves the tile uncommitted too.
    monkeypatch.undo()
    storage.put_tree(tile, "tiles/t1")
    (tile / "tile.json").unlink()
    storage.put_tree(tile, "tiles/t1")
    assert not storage.exists("tiles/t1/tile.json")


def test_put_tree_without_marker_and_custom_exclude(storage: Storage, tmp_path: Path) -> None:
    tile = tmp_path / "t1"
    files = make_tile(tile)
    (tile / "tile.json").unlink()
    uploaded = storage.put_tree(tile, "tiles/t1", exclude=("*.part", "work", "raw/*.fits"))
    expected = sorted(f"tiles/t1/{f}" for f in files if f not in ("tile.json", "raw/image.fits"))
    assert uploaded == expected
    assert storage.list_dir("tiles/t1/raw") == ["image.header.txt"]
    with pytest.raises(StorageNotFoundError, match="no-such-dir"):
        storage.put_tree(tmp_path / "no-such-dir", "tiles/t2")


def test_get_tree_detects_a_concurrent_re_upload(
    storage: Storage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tile = tmp_path / "t1"
    make_tile(tile)
    storage.put_tree(tile, "tiles/t1")
    other = reader(storage)
    real_get = storage.get_file

    def get_file(rel: str, local_path: str | os.PathLike[str]) -> Path:
        if rel.endswith("detections.parquet"):
            other.write_json_atomic("tiles/t1/tile.json", {"tile_id": "t1", "status": "failed"})
        return real_get(rel, local_path)

    monkeypatch.setattr(storage, "get_file", get_file, raising=False)
    with pytest.raises(StorageError, match="changed while it was downloaded"):
        storage.get_tree("tiles/t1", tmp_path / "back")
    assert not (tmp_path / "back" / "tile.json").exists()
    with pytest.raises(StorageNotFoundError, match="tiles/t9"):
        storage.get_tree("tiles/t9", tmp_path / "none")
    with pytest.raises(StorageError, match="tile.json"):
        storage.get_tree("tiles/t1/tile.json", tmp_path / "none")


# ------------------------------------------------------------------ paths


BAD_PATHS = [
    ("../x", "'..'"),
    ("a/../../b", "'..'"),
    ("..", "'..'"),
    ("/etc/passwd", "absolute"),
    ("a//b", "empty component"),
    ("./a", "'.'"),
    ("a\\b", "backslash"),
    ("a\x00b", "NUL"),
    ("s3://other-bucket/x", "URL"),
    ("", "empty"),
]


@pytest.mark.parametrize(("rel", "words"), BAD_PATHS)
def test_bad_paths_are_refused(storage: Storage, tmp_path: Path, rel: str, words: str) -> None:
    calls: list[Callable[[], object]] = [
        lambda: storage.exists(rel) if rel else storage.read_bytes(rel),
        lambda: storage.read_bytes(rel),
        lambda: storage.write_bytes_atomic(rel, b"x"),
        lambda: storage.write_json_atomic(rel, {}),
        lambda: storage.get_file(rel, tmp_path / "x"),
        lambda: storage.remove(rel),
        lambda: acquire_lease(storage, rel, "w1", LIVE_TTL),
        lambda: release_lease(storage, rel, "w1"),
    ]
    if rel:
        calls += [lambda: storage.list_dir(rel), lambda: storage.put_tree(tmp_path, rel)]
    for call in calls:
        with pytest.raises(StoragePathError, match=words) as err:
            call()
        assert repr(rel) in str(err.value), f"the error does not name the path: {err.value}"
    assert not (tmp_path / "x").exists()


def test_path_type_is_checked(storage: Storage) -> None:
    with pytest.raises(StoragePathError, match="must be a str, not int"):
        storage.read_bytes(3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="needs bytes"):
        storage.write_bytes_atomic("a.txt", "text")  # type: ignore[arg-type]


# ------------------------------------------------------------------ leases


def race(n: int, fn: Callable[[int], bool]) -> list[bool]:
    """Run fn(0..n-1) in n threads released at the same instant."""
    barrier = threading.Barrier(n)
    results: list[bool | BaseException] = [False] * n

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = fn(i)
        except BaseException as exc:  # noqa: BLE001 - reported below
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    errors = [r for r in results if isinstance(r, BaseException)]
    assert not errors, errors
    return [bool(r) for r in results]


def grab(workers: list[Storage], rel: str, prefix: str) -> Callable[[int], bool]:
    """Worker i tries to take ``rel`` as owner ``<prefix><i>``."""
    return lambda i: acquire_lease(workers[i], rel, f"{prefix}{i}", LIVE_TTL)


def test_lease_race_has_exactly_one_winner(storage: Storage) -> None:
    workers = [storage, reader(storage)]
    for round_ in range(8):
        rel = f"leases/t{round_}.json"
        wins = race(2, grab(workers, rel, "worker-"))
        assert wins.count(True) == 1, f"round {round_}: {wins}"
        assert storage.read_json(rel)["owner"] == f"worker-{wins.index(True)}"


def test_lease_many_workers_one_winner(storage: Storage) -> None:
    workers = [reader(storage) for _ in range(6)]
    wins = race(6, grab(workers, "leases/busy.json", "w"))
    assert wins.count(True) == 1, wins


def test_lease_live_held_renewed_released(storage: Storage) -> None:
    rel = "leases/t1.json"
    assert acquire_lease(storage, rel, "w1", LIVE_TTL) is True
    first = storage.read_json(rel)
    assert first["owner"] == "w1" and first["ttl_s"] == LIVE_TTL
    assert acquire_lease(storage, rel, "w2", LIVE_TTL) is False, "a live lease was taken"
    assert acquire_lease(storage, rel, "w2", SHORT_TTL) is False, "the holder's ttl, not the caller's, counts"
    assert acquire_lease(storage, rel, "w1", LIVE_TTL) is True, "the owner cannot renew"
    assert storage.read_json(rel)["nonce"] != first["nonce"], "renewal did not rewrite the lease"

    with pytest.raises(LeaseNotHeldError, match="held by 'w1', not by 'w2'"):
        release_lease(storage, rel, "w2")
    assert storage.read_json(rel)["owner"] == "w1", "a non-owner's release changed the lease"

    assert release_lease(storage, rel, "w1") is True
    assert not storage.exists(rel)
    assert release_lease(storage, rel, "w1") is False
    assert release_lease(storage, "never/taken.json", "w1") is False
    assert acquire_lease(storage, rel, "w2", LIVE_TTL) is True


def test_stale_lease_is_taken_over(backend: str, storage: Storage) -> None:
    rel = "leases/t1.json"
    assert acquire_lease(storage, rel, "crashed", SHORT_TTL) is True
    time.sleep(STALE_WAIT[backend])
    assert acquire_lease(reader(storage), rel, "w2", LIVE_TTL) is True
    assert storage.read_json(rel)["owner"] == "w2"
    # The old holder comes back: it has lost the lease and is told so.
    assert acquire_lease(storage, rel, "crashed", SHORT_TTL) is False
    with pytest.raises(LeaseNotHeldError, match="held by 'w2'"):
        release_lease(storage, rel, "crashed")
    assert storage.read_json(rel)["owner"] == "w2"


def test_stale_lease_race_has_exactly_one_winner(backend: str, storage: Storage) -> None:
    workers = [reader(storage) for _ in range(3)]
    rels = [f"leases/s{i}.json" for i in range(3)]
    for rel in rels:
        assert acquire_lease(storage, rel, "crashed", SHORT_TTL)
    time.sleep(STALE_WAIT[backend])
    for rel in rels:
        wins = race(3, grab(workers, rel, "w"))
        assert wins.count(True) == 1, f"{rel}: {wins}"
        assert storage.read_json(rel)["owner"] == f"w{wins.index(True)}"


def test_local_unreadable_lease_counts_as_held(tmp_path: Path) -> None:
    """A lease file caught between its creation and its write is held by someone unknown."""
    storage = Storage.from_url(str(tmp_path))
    storage.write_bytes_atomic("leases/t1.json", b"")
    assert acquire_lease(storage, "leases/t1.json", "w1", LIVE_TTL) is False
    with pytest.raises(LeaseNotHeldError, match="unknown owner"):
        release_lease(storage, "leases/t1.json", "w1")
    os.utime(tmp_path / "leases" / "t1.json", (time.time() - 60, time.time() - 60))
    assert acquire_lease(storage, "leases/t1.json", "w1", 30.0) is True, "an old unreadable lease is stale"


def test_local_old_unreadable_lease_is_stale_whatever_its_ttl(tmp_path: Path) -> None:
    """An empty lease a minute old was left by a creator that died; the 6 h ttl does not apply."""
    storage = Storage.from_url(str(tmp_path))
    storage.write_bytes_atomic("tiles/t1/.lease", b"")
    assert acquire_lease(storage, "tiles/t1/.lease", "w1", 6 * 3600.0) is False, "a fresh empty lease is held"
    os.utime(tmp_path / "tiles" / "t1" / ".lease", (time.time() - 60, time.time() - 60))
    assert acquire_lease(storage, "tiles/t1/.lease", "w1", 6 * 3600.0) is True


def test_local_lease_is_created_whole_with_no_temporary_left(tmp_path: Path) -> None:
    storage = Storage.from_url(str(tmp_path))
    assert acquire_lease(storage, "tiles/t1/.lease", "w1", LIVE_TTL) is True
    assert storage.read_json("tiles/t1/.lease")["owner"] == "w1"
    assert acquire_lease(storage, "tiles/t1/.lease", "w2", LIVE_TTL) is False
    assert sorted(p.name for p in (tmp_path / "tiles" / "t1").iterdir()) == [".lease"]


def test_local_lock_of_a_dead_process_does_not_block(tmp_path: Path) -> None:
    """A ``.lock`` left by a SIGKILLed process of this host is removed at once, not after 30 s."""
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True
    )
    pid = int(dead.stdout)
    storage = Storage.from_url(str(tmp_path))
    assert acquire_lease(storage, "tiles/t1/.lease", "w1", LIVE_TTL) is True
    lock = tmp_path / "tiles" / "t1" / ".lease.lock"
    lock.write_text(json.dumps({"host": socket.gethostname(), "pid": pid}))
    t0 = time.monotonic()
    assert release_lease(storage, "tiles/t1/.lease", "w1") is True
    assert time.monotonic() - t0 < 2.0 and not lock.exists()
    # A lock of a live process is respected (until its 30 s are up).
    lock.write_text(json.dumps({"host": socket.gethostname(), "pid": os.getpid()}))
    assert acquire_lease(storage, "tiles/t1/.lease", "w1", LIVE_TTL) is True
    assert acquire_lease(storage, "tiles/t1/.lease", "w1", LIVE_TTL) is False, "renewal waits for the live lock"


def test_lease_arguments_are_checked(storage: Storage) -> None:
    for owner in ("", "  ", None, "x" * 300):
        with pytest.raises(ValueError, match="owner"):
            acquire_lease(storage, "leases/a.json", owner, LIVE_TTL)  # type: ignore[arg-type]
    for ttl in (0, -1, float("nan"), float("inf"), "60", True):
        with pytest.raises(ValueError, match="ttl_s"):
            acquire_lease(storage, "leases/a.json", "w1", ttl)  # type: ignore[arg-type]
    assert not storage.exists("leases/a.json")


def test_leases_refused_on_other_backends() -> None:
    storage = Storage.from_url(f"memory://vasco-{uuid.uuid4().hex}")
    storage.write_json_atomic("a.json", {"x": 1})  # plain objects work on any fsspec backend
    assert storage.read_json("a.json") == {"x": 1}
    with pytest.raises(StorageError, match="leases are not supported on memory://"):
        acquire_lease(storage, "leases/a.json", "w1", LIVE_TTL)


# --------------------------------------------------------------- credentials


def leaked(secrets: list[str], exc: BaseException | None = None, *texts: str | bytes) -> list[str]:
    """Which secrets appear in the exception (str, repr, formatted traceback) or the texts."""
    blobs: list[str] = []
    if exc is not None:
        blobs += [str(exc), repr(exc), "".join(traceback.format_exception(exc))]
    blobs += [t.decode("latin-1") if isinstance(t, bytes) else t for t in texts]
    return [s for s in secrets if any(s in b for b in blobs)]


def test_credentials_never_in_errors_reprs_or_pickles(s3_server: S3StandIn, monkeypatch: pytest.MonkeyPatch) -> None:
    key_id, secret = "AKIAFAKEKEYID0VASCO", "fake/Secret+Key0VascoDoNotLeak"
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    secrets = [key_id, secret]
    storage = Storage.from_url(f"s3://{BUCKET}/{uuid.uuid4().hex}")
    storage.write_bytes_atomic("a.txt", b"hello")
    assert leaked(secrets, None, repr(storage), str(storage), pickle.dumps(storage)) == []

    # Errors the server gives: a missing object, a missing bucket.
    with pytest.raises(StorageNotFoundError) as err:
        storage.read_bytes("missing.txt")
    assert leaked(secrets, err.value) == []
    with pytest.raises(StorageError) as err2:
        Storage.from_url("s3://no-such-bucket-vasco/x").read_bytes("a.txt")
    assert "s3://no-such-bucket-vasco/x/a.txt" in str(err2.value)
    assert leaked(secrets, err2.value) == []

    # A backend error whose own text holds the credentials (as some do, e.g. a signing error echoing them).
    def leaky(*args: object, **kwargs: object) -> bytes:
        raise OSError(f"signature mismatch for {key_id} with {secret}")

    monkeypatch.setattr(storage.fs, "cat_file", leaky)
    with pytest.raises(StorageError, match=r"signature mismatch for \*\*\* with \*\*\*") as err3:
        storage.read_bytes("a.txt")
    assert leaked(secrets, err3.value) == []
    assert err3.value.__cause__ is None and err3.value.__suppress_context__

    # Credentials in the URL are refused without being echoed.
    with pytest.raises(StorageError, match="credentials in the storage URL are refused") as err4:
        Storage.from_url(f"s3://{key_id}:{secret}@{BUCKET}/x")
    assert leaked(secrets, err4.value) == []


def test_explicit_options_credentials_and_pickle(s3_server: S3StandIn, monkeypatch: pytest.MonkeyPatch) -> None:
    """storage_options (endpoint, key, secret) work, and the secret does not travel in a pickle."""
    secret = "explicit-Secret-0123456789-vasco"
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    url = f"s3://{BUCKET}/{uuid.uuid4().hex}"
    options = {"endpoint_url": s3_server.url, "key": "explicit-key-id", "secret": secret}
    storage = Storage.from_url(url, options)
    storage.write_json_atomic("config.json", {"a": 1})
    assert acquire_lease(storage, "leases/x.json", "w1", LIVE_TTL)
    blob = pickle.dumps(storage)
    assert leaked([secret, "explicit-key-id"], None, repr(storage), blob, storage.read_bytes("leases/x.json")) == []
    # The copy keeps the URL and the endpoint; its credentials come from its own environment.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "other-process-key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "other-process-secret")
    copy = pickle.loads(blob)
    assert copy.url == url and copy.read_json("config.json") == {"a": 1}


def test_local_pickle_round_trip(tmp_path: Path) -> None:
    storage = Storage.from_url(str(tmp_path))
    storage.write_bytes_atomic("a", b"1")
    assert pickle.loads(pickle.dumps(storage)).read_bytes("a") == b"1"


def test_storage_does_not_import_prefect() -> None:
    code = "import sys, vasco.storage, vasco.leases, vasco.credentials; print('prefect' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", out.stdout + out.stderr


def test_lease_body_is_plain_json(storage: Storage) -> None:
    assert acquire_lease(storage, "leases/t1.json", "host-a:123:xyz", LIVE_TTL)
    body = json.loads(storage.read_bytes("leases/t1.json"))
    assert set(body) == {"owner", "ttl_s", "acquired_at_unix", "host", "pid", "nonce"}

"""A survey whose root is an S3 URL, against an S3-compatible server on 127.0.0.1 (moto)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pandas as pd
import pytest
from prefect.testing.utilities import prefect_test_harness
from servers.s3 import S3StandIn, aws_loopback_env

from vasco.leases import acquire_lease
from vasco.storage import Storage

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("source-extractor") is None, reason="SExtractor is not installed"),
]

BUCKET = "vasco-survey"
SECRET = "testing-secret-do-not-log"
POSITIONS = "ra,dec\n132.8250,11.8000\n132.9300,11.8000\n"


@pytest.fixture(scope="module")
def s3() -> Iterator[S3StandIn]:
    with pytest.MonkeyPatch.context() as mp:
        aws_loopback_env(mp, secret=SECRET)
        with S3StandIn() as server:
            mp.setenv("AWS_ENDPOINT_URL", server.url)
            server.create_bucket(BUCKET)
            with prefect_test_harness(server_startup_timeout=120):
                yield server


def test_survey_on_s3_matches_a_local_one(s3, tmp_path, monkeypatch):
    from flows.survey import survey_flow

    pos = tmp_path / "pos.csv"
    pos.write_text(POSITIONS)
    monkeypatch.setenv("VASCO_WORK_DIR", str(tmp_path / "vm1"))
    url = f"s3://{BUCKET}/survey"
    # Every tile's QC and residual plots (drawn by the report, then uploaded), not only those with candidates.
    cfg = tmp_path / "cfg.json"
    cfg.write_text('{"report": {"tile_plots": "all"}}')
    common = dict(positions=str(pos), size_arcmin=10.0, seed=1, workers=2, config_file=str(cfg))
    remote = survey_flow(out=url, **common)
    local = survey_flow(out=str(tmp_path / "local"), **common)
    assert remote["tiles"]["processed"] == 2 and remote["candidates"] == local["candidates"]
    store = Storage.from_url(url)
    for name in (
        "config.json",
        "positions.csv",
        "summary.json",
        "candidates.parquet",
        "detections.parquet",
        "duplicates.parquet",
        "astrometry.csv",
    ):
        assert store.exists(name), name
    tiles = store.list_dir("tiles")
    assert len(tiles) == 2
    tid = tiles[0].rstrip("/").rsplit("/", 1)[-1]
    assert store.exists(f"tiles/{tid}/tile.json") and store.exists(f"tiles/{tid}/detections.parquet")
    assert store.exists(f"tiles/{tid}/qc/astrometry.png")
    # The PSF model is uploaded; pass 1's catalogue is never kept, and the lease stays behind.
    assert store.exists(f"tiles/{tid}/work/pass1.psf") and not store.exists(f"tiles/{tid}/work/pass1.ldac")
    assert not store.exists(f"tiles/{tid}/.lease")
    # Byte for byte the same candidates as the local run.
    store.get_file("candidates.parquet", tmp_path / "from-s3.parquet")
    pd.testing.assert_frame_equal(
        pd.read_parquet(tmp_path / "from-s3.parquet"), pd.read_parquet(tmp_path / "local" / "candidates.parquet")
    )
    # No credential in any output.
    for name in ("summary.json", "config.json"):
        assert SECRET.encode() not in store.read_bytes(name)

    # Another machine (its own work folder) picks the survey up where it is: nothing to redo.
    monkeypatch.setenv("VASCO_WORK_DIR", str(tmp_path / "vm2"))
    before = store.read_bytes(f"tiles/{tid}/tile.json")
    again = survey_flow(out=url, positions=str(pos), size_arcmin=10.0, seed=1, workers=2)
    assert again["candidates"] == remote["candidates"]
    assert store.read_bytes(f"tiles/{tid}/tile.json") == before
    # It ran no extraction: only the records and detections came down for publishing.
    assert not list((tmp_path / "vm2").rglob("*.ldac"))


def test_a_leased_tile_is_not_processed_twice(s3, tmp_path, monkeypatch):
    from flows.tile import tile_flow
    from vasco.sky.sampling import tile_id

    monkeypatch.setenv("VASCO_WORK_DIR", str(tmp_path / "vm"))
    url = f"s3://{BUCKET}/leased"
    store = Storage.from_url(url)
    tid = tile_id(132.825, 11.8)
    assert acquire_lease(store, f"tiles/{tid}/.lease", "other-worker:1", 600.0)
    res = tile_flow(out=url, ra=132.825, dec=11.8)
    assert res == {"tile_id": tid, "status": "busy"}
    assert not store.exists(f"tiles/{tid}/tile.json")
    assert not list((tmp_path / "vm").rglob("tile.json"))

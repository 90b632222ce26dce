"""The typed records (vasco.outputs): tile.json and summary.json validated on read, written by one
function, round-tripped, and the README's Outputs tables generated from the models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vasco.outputs import (
    SCHEMA_VERSION,
    PlateInfo,
    RecordError,
    TileRecord,
    fill_readme,
    read_summary,
    read_tile_record,
    write_summary,
    write_tile_record,
)
from vasco.publish.merge import read_tile_records

REPO = Path(__file__).resolve().parents[1]
#: Records written by a run of `vasco survey --sky synthetic --tiles 8 --seed 1` before records were typed
#: (no schema_version: version 0).
TILE_V0 = Path(__file__).parent / "records" / "tile_v0_synthetic.json"
SUMMARY_V0 = Path(__file__).parent / "records" / "summary_v0_synthetic8.json"


def test_readme_outputs_tables_are_current():
    """The README's tile.json and summary.json tables are what the models' descriptions give."""
    text = (REPO / "README.md").read_text()
    assert fill_readme(text) == text, "README Outputs tables are stale: python -m vasco.outputs README.md"
    assert "| `plate.epoch_mid` | float or None |" in text and "| `provenance.services.<key>.rows` | int |" in text


def test_a_wrong_typed_field_is_refused_naming_file_and_field(tmp_path):
    rec = json.loads(TILE_V0.read_text())
    rec["centre"]["ra"] = "north"
    rec["psf_stars"] = 3.5
    path = tmp_path / "tiles" / rec["tile_id"] / "tile.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(rec))
    with pytest.raises(RecordError) as err:
        read_tile_record(path)
    message = str(err.value)
    assert message.startswith(str(path)) and "centre.ra" in message and "psf_stars" in message
    assert "'north'" in message
    # The survey's readers treat such a tile as not run, like an unreadable file.
    assert read_tile_records(tmp_path, [rec["tile_id"]]) == [
        {"tile_id": rec["tile_id"], "status": "missing", "reason": "NOT_RUN"}
    ]


def test_unknown_keys_and_bad_status_are_refused(tmp_path):
    rec = json.loads(TILE_V0.read_text())
    rec["astrometry"]["typo_residual"] = 1.0
    path = tmp_path / "tile.json"
    path.write_text(json.dumps(rec))
    with pytest.raises(RecordError, match="astrometry.typo_residual: Extra inputs are not permitted"):
        read_tile_record(path)
    path.write_text("{not json")
    with pytest.raises(RecordError, match="not valid JSON"):
        read_tile_record(path)
    with pytest.raises(ValueError, match="needs a reason token"):
        TileRecord(
            tile_id="t", centre=None, plate=PlateInfo(), status="failed", reason=None, funnel={}, config_hash="h"
        )


def test_a_real_tile_record_round_trips(tmp_path):
    """A tile.json from a run is read (as version 0), and written back with the same keys, order and values."""
    original = json.loads(TILE_V0.read_text())
    rec = read_tile_record(TILE_V0)
    assert rec.schema_version == 0 and rec.astrometry is not None and rec.astrometry.trusted is True
    assert rec.injection is not None and rec.provenance is not None and rec.centre is not None
    written = write_tile_record(tmp_path, rec)
    on_disk = json.loads((tmp_path / "tile.json").read_text())
    assert on_disk == written
    # The seven keys every record has come first, then the version.
    assert list(on_disk)[:8] == [
        "tile_id",
        "centre",
        "plate",
        "status",
        "reason",
        "funnel",
        "config_hash",
        "schema_version",
    ]
    on_disk.pop("schema_version")
    assert json.dumps(on_disk) == json.dumps(original)  # keys in the same order, values identical
    assert read_tile_record(tmp_path / "tile.json") == rec


def test_keys_that_do_not_apply_stay_absent(tmp_path):
    rec = TileRecord(
        tile_id="t1",
        centre=None,
        plate=PlateInfo(),
        status="failed",
        reason="FAIL_FLOW_RUN",
        funnel={},
        config_hash="h",
    )
    data = write_tile_record(tmp_path, rec)
    assert data == {
        "tile_id": "t1",
        "centre": None,
        "plate": {},
        "status": "failed",
        "reason": "FAIL_FLOW_RUN",
        "funnel": {},
        "config_hash": "h",
        "schema_version": SCHEMA_VERSION,
    }
    assert PlateInfo.empty().to_dict() == {k: None for k in PlateInfo.model_fields}
    with pytest.raises(ValueError, match="Input should be 'ok', 'rejected' or 'failed'"):
        TileRecord.model_validate({**data, "status": "odd"})


def test_a_real_summary_round_trips(tmp_path):
    original = json.loads(SUMMARY_V0.read_text())
    summary = read_summary(SUMMARY_V0)
    assert summary.schema_version == 0 and summary.injection is not None and summary.astrometry is not None
    written = write_summary(tmp_path, summary)
    assert written["schema_version"] == 0
    written.pop("schema_version")
    assert json.dumps(written) == json.dumps(original)
    bad = dict(original, candidates="many")
    (tmp_path / "summary.json").write_text(json.dumps(bad))
    with pytest.raises(RecordError, match=r"summary\.json: candidates: Input should be a valid integer"):
        read_summary(tmp_path / "summary.json")


def test_an_invalid_tile_record_is_not_finished(tmp_path):
    """Resume reads tile.json through the model: a record that does not fit it runs again."""
    from vasco import __version__
    from vasco.resume import pending_tiles, tile_status
    from vasco.roots import open_root
    from vasco.sky.sampling import TilePosition

    real = json.loads(TILE_V0.read_text())
    good = {**real, "config_hash": "h", "vasco_version": __version__}
    bad = {**good, "funnel": {"detections": "many"}}
    positions = []
    for i, rec in enumerate((good, bad)):
        p = TilePosition(ra=10.0 + i, dec=20.0)
        folder = tmp_path / "tiles" / p.tile_id
        folder.mkdir(parents=True)
        (folder / "tile.json").write_text(json.dumps({**rec, "tile_id": p.tile_id}))
        positions.append(p)
    store = open_root(tmp_path)
    assert pending_tiles(store, positions, "h") == [positions[1]]
    assert [tile_status(store, p) for p in positions] == ["ok", None]

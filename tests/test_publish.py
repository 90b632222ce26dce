import json

import numpy as np
import pandas as pd
import pytest

from vasco.outputs import TileRecord, write_tile_record
from vasco.publish.merge import build_summary, merge_catalogues, read_tile_records
from vasco.qc.injection import combine_scores, score_tile


def _record(tid, status="ok", reason=None, funnel=None):
    return {
        "tile_id": tid,
        "centre": {"ra": 1.0, "dec": 2.0},
        "plate": {"region": "XE001", "label": "E1", "epoch": 1952.5},
        "status": status,
        "reason": reason,
        "funnel": funnel or {"detections": 3, "snr": 2},
        "config_hash": "abc",
    }


def _write(tile_dir, rec):
    return write_tile_record(tile_dir, TileRecord.model_validate(rec))


def test_tile_record_validation(tmp_path):
    rec = _write(tmp_path, _record("t1"))
    assert list(json.loads((tmp_path / "tile.json").read_text())) == list(rec)
    with pytest.raises(ValueError, match="needs a reason token"):
        TileRecord.model_validate(_record("t1", status="failed"))
    with pytest.raises(ValueError, match="status\n.*'ok', 'rejected' or 'failed'"):
        TileRecord.model_validate(_record("t1", status="odd"))
    bad = _record("t1")
    del bad["funnel"]
    with pytest.raises(ValueError, match="funnel\n.*Field required"):
        TileRecord.model_validate(bad)


def test_merge_and_summary(tmp_path):
    for i, tid in enumerate(["t1", "t2"]):
        d = tmp_path / "tiles" / tid
        d.mkdir(parents=True)
        det = pd.DataFrame(
            {"ra": np.array([10.0 + i, 10.5 + i]), "dec": [0.1, 0.2], "NUMBER": [1, 2], "is_candidate": [True, False]}
        )
        det.to_parquet(d / "detections.parquet", index=False)
        det.iloc[:1].to_parquet(d / "candidates.parquet", index=False)
        _write(d, _record(tid))
    d = tmp_path / "tiles" / "t3"
    d.mkdir(parents=True)
    _write(d, _record("t3", status="rejected", reason="REJECT_NON_POSS", funnel={}))
    records = read_tile_records(tmp_path, ["t1", "t2", "t3", "t4"])
    counts = merge_catalogues(tmp_path, records)
    assert counts == {"detections": 4, "candidates": 2, "tile_candidates": 2, "candidates_untrusted": 0}
    merged = pd.read_parquet(tmp_path / "detections.parquet")
    assert list(merged["tile_id"]) == ["t1", "t1", "t2", "t2"]
    # Measured once each: no dedup group, primary; the survey candidates are the tile candidates.
    assert merged["dup_group"].isna().all() and merged["is_primary"].all()
    assert merged["is_survey_candidate"].tolist() == [True, False, True, False]
    assert pd.read_parquet(tmp_path / "candidates.parquet")["NUMBER"].tolist() == [1, 1]
    assert merged["ra"].dtype == np.float64 and merged["plate_epoch"].iloc[0] == 1952.5
    summary = build_summary(tmp_path, records, counts, "abc").to_dict()
    assert summary["tiles"] == {"planned": 4, "processed": 2, "rejected": 1, "failed": 0, "not_run": 1}
    assert summary["failures"] == {"REJECT_NON_POSS": 1}
    assert summary["funnel"] == {"detections": 6, "snr": 4, "unique": 2}
    assert "injection" not in summary


def test_injection_scoring():
    truth = pd.DataFrame(
        {
            "cls": ["transient", "transient", "transient", "transient", "hpm_star", "defect", "star", "spike"],
            "ra": [10.0, 10.01, 10.02, 10.06, 10.03, 10.04, 10.05, 10.2],
            "dec": [0.0] * 8,
            "recoverable": [True, True, False, True, False, False, False, False],
            "extent_arcsec": [0, 0, 0, 0, 0, 0, 0, 60.0],
        }
    )
    # Detections: transient 0 (candidate), transient 1 detected but failed a cut,
    # transient 2 (predicted faint) detected, passed and became a candidate,
    # transient 3 not detected; then false candidates on an hpm star, a defect,
    # a spike and empty sky.
    dets = pd.DataFrame(
        {
            "ra": [10.0 + 1 / 3600, 10.01, 10.02, 10.03, 10.04 + 2 / 3600, 10.2 + 30 / 3600, 11.0],
            "dec": [0.0] * 7,
            "passes_cuts": [True, False, True, True, True, True, True],
            "is_candidate": [True, False, True, True, True, True, True],
        }
    )
    s = score_tile(dets, truth)
    assert s["injected"] == 4 and s["detected"] == 3
    # Recoverable: 0 and 2 (measured: passed the cuts) and 3 (undetected, predicted); not 1.
    assert s["recoverable"] == 3 and s["recovered"] == 2
    assert s["model_recoverable"] == 3 and s["model_recovered"] == 1
    assert s["true_candidates"] == 2 and s["candidates"] == 6
    assert s["lost_by_stage"] == {"not_detected": 1}
    assert s["false_by_class"] == {
        "high_proper_motion": 1,
        "defect": 1,
        "galaxy": 0,
        "spike": 1,
        "asteroid": 0,
        "infrared": 0,
        "variable": 0,
        "other": 1,
    }
    total = combine_scores([s, s])
    assert total["completeness"] == pytest.approx(2 / 3) and total["purity"] == pytest.approx(4 / 12)
    assert total["completeness_model"] == pytest.approx(1 / 3)


def test_funnel_side_by_side_with_the_paper():
    from vasco.publish.paper import PAPER_FUNNEL, funnel_vs_paper

    assert PAPER_FUNNEL["not_hpm"] == 5399 and PAPER_FUNNEL["no_archive"] == 9395
    rows = funnel_vs_paper(
        {"not_bright_star": 100, "no_archive": 10, "not_asteroid": 9, "in_supercosmos": 6, "not_hpm": 6}
    )
    assert [r["stage"] for r in rows] == list(PAPER_FUNNEL)
    assert rows[1]["ours_kept"] == pytest.approx(0.1) and rows[1]["paper_kept"] == pytest.approx(9395 / 298165)
    # A stage that did not run is shown as such; the next one is compared with the last that ran.
    assert rows[3]["ours"] is None and rows[4]["ours_kept"] == pytest.approx(6 / 9)


def test_merge_writes_few_row_groups_and_same_rows(tmp_path):
    """Tiles are buffered into row groups: 30 tiles of 7 rows, flushed once 50
    rows are buffered (8 tiles, 56 rows), make 4 groups (not 30), with every
    row in order, and the rows do not depend on the group size."""
    import pyarrow.parquet as pq

    tids = [f"t{i:02d}" for i in range(30)]
    for i, tid in enumerate(tids):
        d = tmp_path / "tiles" / tid
        d.mkdir(parents=True)
        pd.DataFrame(
            {
                "ra": 10.0 + i + np.arange(7) * 1e-3,
                "dec": np.full(7, 0.5),
                "NUMBER": np.arange(1, 8),
                "is_candidate": np.arange(7) == 3,
            }
        ).to_parquet(d / "detections.parquet", index=False)
        _write(d, _record(tid))
    records = read_tile_records(tmp_path, tids)
    merge_catalogues(tmp_path, records, row_group_rows=50)
    meta = pq.ParquetFile(tmp_path / "detections.parquet").metadata
    assert (meta.num_row_groups, meta.num_rows) == (4, 210)
    small = pd.read_parquet(tmp_path / "detections.parquet")
    assert small["tile_id"].tolist() == [t for t in tids for _ in range(7)]
    assert pq.ParquetFile(tmp_path / "candidates.parquet").metadata.num_rows == 30
    merge_catalogues(tmp_path, records)
    assert pq.ParquetFile(tmp_path / "detections.parquet").metadata.num_row_groups == 1
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "detections.parquet"), small)

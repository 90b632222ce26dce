"""Global deduplication across overlapping tiles (vasco.publish.dedup) and the merged catalogue."""

import numpy as np
import pandas as pd
import pytest

from vasco.outputs import TileRecord, write_tile_record
from vasco.publish.dedup import DEDUP_COLUMNS, find_duplicates, overlapping_tile_pairs
from vasco.publish.merge import merge_catalogues


def _tile(root, tid, ra0, dec0, rows, size=10.0):
    d = root / "tiles" / tid
    d.mkdir(parents=True)
    det = pd.DataFrame(rows)
    det["NUMBER"] = np.arange(1, len(det) + 1)
    det.to_parquet(d / "detections.parquet", index=False)
    rec = {
        "tile_id": tid,
        "centre": {"ra": ra0, "dec": dec0},
        "plate": {"region": "XE001"},
        "status": "ok",
        "reason": None,
        "funnel": {"detections": len(det)},
        "config_hash": "x",
        "size_arcmin": size,
    }
    return write_tile_record(d, TileRecord.model_validate(rec))


def _row(ra, dec, edge, snr=50.0, cp=np.nan, cand=False):
    return {
        "ra": ra,
        "dec": dec,
        "tile_edge_dist_px": edge,
        "SNR_WIN": snr,
        "counterpart_sep_arcsec": cp,
        "is_candidate": cand,
    }


def test_overlapping_pairs_use_true_geometry():
    tiles = [
        {"ra": 10.0, "dec": 0.0, "size_arcmin": 30.0},
        {"ra": 10.4, "dec": 0.0, "size_arcmin": 30.0},
        {"ra": 11.2, "dec": 0.0, "size_arcmin": 30.0},
        {"ra": 359.9, "dec": 0.0, "size_arcmin": 30.0},
        {"ra": 0.2, "dec": 0.0, "size_arcmin": 30.0},
    ]
    assert overlapping_tile_pairs(tiles) == [(0, 1), (3, 4)]  # across RA 0/360 too
    assert overlapping_tile_pairs(tiles[:1]) == []


def test_a_source_in_two_tiles_is_one_row_and_edge_copies_never_become_candidates(tmp_path):
    s = 0.2 / 3600.0  # 0.2" apart: one source
    # Source A: a candidate in both tiles -> one candidate, the measurement far from its edge.
    # Source B: cut by t1's edge, a candidate there, but t2 sees its counterpart -> no candidate.
    # Source C: far apart (2"): two sources, nothing merged.
    r1 = [
        _row(10.05, 0.0, edge=200.0, cand=True),
        _row(10.08, 0.01, edge=2.0, cand=True),
        _row(10.06, 0.02, edge=150.0, cand=True),
    ]
    r2 = [
        _row(10.05 + s, 0.0, edge=40.0, snr=90.0, cand=True),
        _row(10.08, 0.01 + s, edge=120.0, cp=0.4),
        _row(10.06 + 2 / 3600, 0.02, edge=60.0, cand=True),
    ]
    recs = [_tile(tmp_path, "t1", 10.0, 0.0, r1), _tile(tmp_path, "t2", 10.1, 0.0, r2)]
    dup = find_duplicates(tmp_path, recs, 0.5)
    assert list(dup.columns) == list(DEDUP_COLUMNS)
    assert len(dup) == 4 and dup["dup_group"].nunique() == 2
    a = dup[(dup["tile_id"] == "t1") & (dup["NUMBER"] == 1)].iloc[0]
    assert a["is_primary"] and a["n_measurements"] == 2 and a["group_is_candidate"]
    assert a["dup_sep_arcsec"] == pytest.approx(0.2, abs=1e-3)
    b = dup[(dup["tile_id"] == "t1") & (dup["NUMBER"] == 2)].iloc[0]
    assert not b["is_primary"] and b["primary_tile_id"] == "t2" and b["group_has_counterpart"]
    assert not b["group_is_candidate"]
    counts = merge_catalogues(tmp_path, recs, dup)
    assert counts["tile_candidates"] == 5
    cands = pd.read_parquet(tmp_path / "candidates.parquet")
    # A once (from t1), C twice (two sources 2" apart), B never.
    assert sorted(zip(cands["tile_id"], cands["NUMBER"])) == [("t1", 1), ("t1", 3), ("t2", 3)]
    dets = pd.read_parquet(tmp_path / "detections.parquet")
    assert len(dets) == 6 and dets["is_primary"].sum() == 4
    assert dets["n_measurements"].tolist() == [2, 2, 1, 2, 2, 1]


def test_a_wider_radius_merges_more_and_bad_radius_is_named(tmp_path):
    r1 = [_row(10.06, 0.02, edge=150.0, cand=True)]
    r2 = [_row(10.06 + 2 / 3600, 0.02, edge=60.0, cand=True)]
    recs = [_tile(tmp_path, "t1", 10.0, 0.0, r1), _tile(tmp_path, "t2", 10.1, 0.0, r2)]
    assert len(find_duplicates(tmp_path, recs, 0.5)) == 0
    assert len(find_duplicates(tmp_path, recs, 3.0)) == 2
    with pytest.raises(ValueError, match="radius_arcsec must be positive"):
        find_duplicates(tmp_path, recs, 0.0)

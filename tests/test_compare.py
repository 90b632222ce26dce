"""Comparison with published candidate lists (vasco.qc.compare)."""

import numpy as np
import pandas as pd
import pytest
from conftest import SHARED

from vasco.qc.compare import compare_published, funnel_stage, in_footprint, read_published

PUBLISHED = SHARED / "published"


def test_read_published_real_lists_and_bad_rows(tmp_path):
    subset = read_published(PUBLISHED / "solano2022_vanish_possi_subset.csv")
    assert len(subset) == 459 and subset["ra"].dtype == np.float64
    neo = read_published(PUBLISHED / "vanish_neowise_sample.csv")
    assert len(neo) == 100 and {"RA_NEOWISE", "DEC_NEOWISE"} <= set(neo.columns)
    bad = tmp_path / "bad.csv"
    bad.write_text("ra,dec\n10,20\n400,1\n")
    with pytest.raises(ValueError, match="line 3 has no valid RA/Dec"):
        read_published(bad)
    (tmp_path / "nocols.csv").write_text("x,y\n1,2\n")
    with pytest.raises(ValueError, match="needs RA and Dec"):
        read_published(tmp_path / "nocols.csv")


def test_footprint_is_the_square_tile_also_across_ra_zero():
    tiles = [{"ra": 359.9, "dec": 10.0, "size_arcmin": 30.0}, {"ra": 100.0, "dec": 80.0, "size_arcmin": 30.0}]
    ra = np.array([0.1, 359.9, 0.2, 100.0, 101.0])
    dec = np.array([10.0, 10.24, 10.0, 80.2, 80.0])
    # 0.1: 0.2 deg*cos(10) = 0.197 east of 359.9 -> inside; Dec 10.24 is beyond the 0.25 half-side? no, inside;
    # 0.2 -> 0.295 deg away -> outside; 101.0 at Dec 80 -> 0.17 deg -> inside.
    assert in_footprint(ra, dec, tiles).tolist() == [0, 0, -1, 1, 1]


def test_funnel_stage_order():
    det = pd.DataFrame(
        {
            "cut_flags": [False, True, True, True, True, True],
            "cut_snr": [False, False, True, True, True, True],
            "no_gaia": [True, True, False, True, True, True],
            "veto_not_bright_star": [False, False, False, True, False, False],
            "veto_in_supercosmos": [False, False, False, False, True, False],
            "is_survey_candidate": [False, False, False, False, False, True],
        }
    )
    assert funnel_stage(det).tolist() == ["flags", "snr", "no_gaia", "not_bright_star", "in_supercosmos", "candidate"]


def test_compare_recall_attribution_and_ours_only():
    s = 1 / 3600
    det = pd.DataFrame(
        {
            "tile_id": "t1",
            "NUMBER": [1, 2, 3, 4],
            "ra": [10.0, 10.05, 10.1, 10.12],
            "dec": [0.0, 0.0, 0.0, 0.0],
            "cut_snr": [True, False, True, True],
            "counterpart_sep_arcsec": [np.nan, np.nan, 0.3, np.nan],
            "no_gaia": [True, True, False, True],
            "is_survey_candidate": [True, False, False, True],
        }
    )
    pub = pd.DataFrame(
        {
            "ra": [10.0 + 0.5 * s, 10.05 + 4 * s, 10.1, 10.08, 50.0],
            "dec": [0.0] * 5,
            "RA_NEOWISE": 0.0,
            "DEC_NEOWISE": 0.0,
        }
    )
    tiles = [{"tile_id": "t1", "ra": 10.05, "dec": 0.0, "size_arcmin": 30.0}]
    res = compare_published(pub, det, tiles)
    assert res["published_in_footprint"] == 4
    assert res["recall_detections"] == {"1": 0.5, "2": 0.5, "3": 0.5, "5": 0.75, "10": 0.75}
    assert res["recall_candidates"]["1"] == 0.25 and res["recall_candidates"]["10"] == 0.25
    assert res["removed_by_stage"] == {"candidate": 1, "no_gaia": 1, "not_detected": 1, "snr": 1}
    assert res["our_candidates"] == 2 and res["our_candidates_not_published"] == 1
    assert res["ours_only"]["NUMBER"].tolist() == [4]
    assert res["neowise_split"] == {"detected": 3, "matched_in_optical": 1, "ir_only": 2}


def test_a_source_measured_in_two_tiles_is_attributed_by_its_primary_measurement():
    s = 1 / 3600
    det = pd.DataFrame(
        {
            "tile_id": ["t1", "t2", "t1", "t2"],
            "NUMBER": [1, 1, 2, 2],
            "ra": [10.0, 10.0 + 0.3 * s, 10.05, 10.05 + 0.3 * s],
            "dec": 0.0,
            "cut_snr": [True, True, True, False],
            "is_primary": [False, True, False, True],
            "is_survey_candidate": [False, True, False, False],
        }
    )
    # Published exactly on the non-primary copies.
    pub = pd.DataFrame({"ra": [10.0, 10.05], "dec": [0.0, 0.0]})
    res = compare_published(pub, det, [{"tile_id": "t1", "ra": 10.0, "dec": 0.0, "size_arcmin": 30.0}])
    assert res["rows"]["stage"].tolist() == ["candidate", "snr"]

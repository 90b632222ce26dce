"""Plate dates: both dates recorded, the rule, mid-exposure, and `vasco epochs`' logic (fast tests)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from vasco.config import EpochsConfig, VascoConfig
from vasco.epochs import candidate_dates, count_hits, decide, read_verdicts, verdict_date, write_epochs
from vasco.plates.header import check_poss1e, plate_dates, read_fits_header

from conftest import M101


@pytest.fixture(scope="module")
def m101():
    header = read_fits_header(M101)
    chk = check_poss1e(header)
    assert chk.ok and chk.region == "XE133"
    return header


def test_m101_dates_recorded_and_table_rule(m101):
    d = plate_dates(m101, "XE133", "table")
    assert d.date_obs_header.startswith("1955-04-24T06:58")
    assert d.date_obs_table.startswith("1955-04-23T07:37")
    # 24 Apr 06:58 - 23 Apr 07:37 = 23 h 21 min
    assert d.date_conflict_hours == pytest.approx(23.35, abs=1e-3)
    assert d.date_conflict is True
    assert d.date_obs == d.date_obs_table and d.date_rule.startswith("table")
    assert d.exposure_min == 50.0  # the cutout's EXPOSURE (minutes)
    # mid-exposure = start + 25 min
    assert (d.epoch_mid - d.epoch) * 365.25 * 1440.0 == pytest.approx(25.0, abs=1e-3)


def test_m101_header_rule_and_epochs_rule(m101):
    h = plate_dates(m101, "XE133", "header")
    assert h.date_obs == h.date_obs_header and h.date_rule.startswith("header")
    assert (h.epoch - plate_dates(m101, "XE133", "table").epoch) * 365.25 * 24 == pytest.approx(23.35, abs=1e-3)
    # 'epochs' without a decided verdict falls back to the table, and says so
    e = plate_dates(m101, "XE133", "epochs", None)
    assert e.date_obs == e.date_obs_table and "no decided epochs verdict" in e.date_rule
    undecided = {"decided": False, "date_obs": "1955-04-24T06:58:00", "winner": "header", "n_hits": 2}
    assert plate_dates(m101, "XE133", "epochs", undecided).date_obs == e.date_obs_table
    decided = {"decided": True, "date_obs": "1955-04-24T06:58:00.000", "winner": "header", "n_hits": 7}
    v = plate_dates(m101, "XE133", "epochs", decided)
    assert v.date_obs == v.date_obs_header and "7 asteroid hits" in v.date_rule


def test_plate_dates_agreeing_header_and_missing_header():
    from vasco.plates.table import get_plate

    plate = get_plate("XE002")
    h = {"DATE-OBS": plate.date_obs, "EXPOSURE": 45.0}
    d = plate_dates(h, "XE002", "header")
    assert d.date_conflict_hours == 0.0 and d.date_conflict is False and d.exposure_min == 45.0
    # no DATE-OBS and no EXPOSURE in the header: the table's date and exposure, even with rule 'header'
    d2 = plate_dates({}, "XE002", "header")
    assert d2.date_obs_header is None and d2.date_obs == d2.date_obs_table
    assert "no header date" in d2.date_rule and d2.exposure_min == 50.0
    with pytest.raises(ValueError, match="date_source"):
        plate_dates(h, "XE002", "guess")


def test_config_plates_section_and_synthetic_offsets():
    cfg = VascoConfig()
    assert cfg.plates.date_source == "table" and cfg.plates.conflict_hours == 1.0
    with pytest.raises(ValueError, match="date_source"):
        VascoConfig.model_validate({"plates": {"date_source": "moon"}})
    with pytest.raises(ValueError, match="header_date_offset_days"):
        VascoConfig.model_validate({"synthetic": {"header_date_offset_days": {"M101": 1.0}}})
    ok = VascoConfig.model_validate({"synthetic": {"header_date_offset_days": {"XE133": 1.0}}})
    assert ok.synthetic.header_date_offset_days == {"XE133": 1.0}
    assert ok.science_hash() != cfg.science_hash()


def test_candidate_dates_merge_and_mid_exposure():
    c = candidate_dates("1955-04-24T06:58:00.000", "1955-04-23T07:37:00.000", 50.0, (-1.0, 1.0), 1.0)
    assert [x.label for x in c] == ["table=header-1d", "header", "header+1d"]
    assert c[0].date_obs.startswith("1955-04-23T07:37")
    assert (c[1].jd_mid - c[0].jd_mid) * 24 == pytest.approx(23.35, abs=1e-3)
    # a header that agrees with the table: one candidate for both
    same = candidate_dates("1952-08-21T10:35:00", "1952-08-21T10:35:00", 50.0, (), 1.0)
    assert [x.label for x in same] == ["table=header"]
    assert candidate_dates(None, None, 50.0) == []


def test_count_hits_true_distance():
    ra0, dec0 = np.array([10.0, 10.0]), np.array([60.0, 60.0])
    det_ra = np.array([10.0 + 4.0 / 3600.0 / np.cos(np.radians(60.0))])  # 4" east of the first
    det_dec = np.array([60.0])
    assert count_hits(ra0, dec0, det_ra, det_dec, 5.0).tolist() == [True, True]
    assert count_hits(ra0[:1], dec0[:1], det_ra, det_dec, 3.0).tolist() == [False]
    assert count_hits(ra0, dec0, np.zeros(0), np.zeros(0), 5.0).tolist() == [False, False]


def _cand(label, hits, pred=10):
    return {"label": label, "date_obs": f"{label}-date", "n_hits": hits, "n_predicted": pred}


def test_decide_rules():
    ec = EpochsConfig()
    v = decide([_cand("table=header-1d", 9), _cand("header", 0), _cand("header+1d", 1)], ec)
    assert v["decided"] and v["verdict"] == "table" and v["winner"] == "table=header-1d" and v["n_hits"] == 9
    v = decide([_cand("table", 0), _cand("header", 6)], ec)
    assert v["decided"] and v["verdict"] == "header"
    v = decide([_cand("table=header", 5), _cand("header-1d", 1)], ec)
    assert v["decided"] and v["verdict"] == "header=table"
    # too few hits, a tie, or not twice the rival: undecided
    assert decide([_cand("table", 2), _cand("header", 0)], ec)["verdict"] == "undecided"
    assert decide([_cand("table", 5), _cand("header", 5)], ec)["verdict"] == "undecided"
    assert decide([_cand("table", 5), _cand("header", 3)], ec)["verdict"] == "undecided"
    assert decide([], ec)["decided"] is False


def test_write_and_read_verdicts(tmp_path):
    result = {"format": "vasco-epochs", "version": 1, "skybot": "synthetic", "parameters": {}, "n_tiles": 1,
              "plates": {"XE133": {"region": "XE133", "label": "E1409", "tiles": ["t1"],
                                   "date_obs_header": "1955-04-24T06:58:00.000",
                                   "date_obs_table": "1955-04-23T07:37:00.000", "date_conflict_hours": 23.35,
                                   "exposure_min": 50.0,
                                   "candidates": [{"label": "table", **_cand("table", 8)},
                                                  {"label": "header", **_cand("header", 0)}],
                                   "decided": True, "verdict": "table", "winner": "table",
                                   "date_obs": "1955-04-23T07:37:00.000", "n_hits": 8, "why": "x"}}}
    js, csv = write_epochs(tmp_path, result)
    table = pd.read_csv(csv)
    assert table.loc[0, "region"] == "XE133" and table.loc[0, "hits_table"] == 8 and table.loc[0, "hits_header"] == 0
    assert table.loc[0, "verdict"] == "table"
    assert not list(tmp_path.glob("*.part"))
    v = read_verdicts(tmp_path)
    assert v == {"XE133": {"decided": True, "date_obs": "1955-04-23T07:37:00.000", "winner": "table", "n_hits": 8}}
    plate = {"date_obs_header": "1955-04-24T06:58:00.000", "date_obs_table": "1955-04-23T07:37:00.000"}
    assert verdict_date(v["XE133"], plate) == "1955-04-23T07:37:00.000"
    assert verdict_date(None, plate) == plate["date_obs_table"]
    assert read_verdicts(tmp_path / "nothing-here") is None
    (tmp_path / "epochs.json").write_text('{"format": "other"}')
    with pytest.raises(ValueError, match="epochs.json"):
        read_verdicts(tmp_path)

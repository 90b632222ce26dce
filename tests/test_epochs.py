"""Plate dates: both dates recorded, the rule, mid-exposure, and `vasco epochs`' logic (fast tests)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import M101

from vasco.config import EpochsConfig, VascoConfig
from vasco.epochs import candidate_dates, count_hits, decide, read_verdicts, verdict_date, write_epochs
from vasco.plates.header import check_poss1e, plate_dates, read_fits_header


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
    result = {
        "format": "vasco-epochs",
        "version": 1,
        "skybot": "synthetic",
        "parameters": {},
        "n_tiles": 1,
        "plates": {
            "XE133": {
                "region": "XE133",
                "label": "E1409",
                "tiles": ["t1"],
                "date_obs_header": "1955-04-24T06:58:00.000",
                "date_obs_table": "1955-04-23T07:37:00.000",
                "date_conflict_hours": 23.35,
                "exposure_min": 50.0,
                "candidates": [{"label": "table", **_cand("table", 8)}, {"label": "header", **_cand("header", 0)}],
                "decided": True,
                "verdict": "table",
                "winner": "table",
                "date_obs": "1955-04-23T07:37:00.000",
                "n_hits": 8,
                "why": "x",
            }
        },
    }
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


def _m101_survey(root: Path, true_date: str, n_ast: int = 8, seed: int = 3):
    """A one-tile survey folder around the real M101 cutout (XE133), with asteroids detected where
    they are at mid-exposure of ``true_date``; returns the SkyBoT objects (at that instant) and its JD."""
    import shutil

    from vasco.astrometry.positions import pixel_to_sky
    from vasco.epochs import iso_to_jd
    from vasco.io import write_parquet_atomic
    from vasco.outputs import Centre, PlateInfo, TileRecord, write_tile_record

    tile = root / "tiles" / "tM101"
    (tile / "raw").mkdir(parents=True)
    shutil.copyfile(M101, tile / "raw" / "image.fits")
    header = read_fits_header(M101)
    (ra_c,), (dec_c,) = pixel_to_sky(header, np.array([265.5]), np.array([265.5]))
    write_tile_record(
        tile,
        TileRecord(
            tile_id="tM101",
            centre=Centre(ra=float(ra_c), dec=float(dec_c)),
            plate=PlateInfo(),
            status="ok",
            reason=None,
            funnel={},
            config_hash="h",
            size_arcmin=15.0,
        ),
    )
    rng = np.random.default_rng(seed)
    x, y = rng.uniform(60, 470, n_ast), rng.uniform(60, 470, n_ast)
    a_ra, a_dec = pixel_to_sky(header, x, y)
    bx, by = rng.uniform(1, 530, 300), rng.uniform(1, 530, 300)
    b_ra, b_dec = pixel_to_sky(header, bx, by)
    # detections: the asteroids (0.7" off) and 300 other sources, none with a counterpart
    off = 0.7 / 3600.0
    det = pd.DataFrame(
        {
            "ra": np.concatenate([a_ra + off / np.cos(np.radians(a_dec)), b_ra]),
            "dec": np.concatenate([a_dec, b_dec]),
            "counterpart_sep_arcsec": np.full(n_ast + 300, np.nan),
        }
    )
    write_parquet_atomic(tile / "detections.parquet", det)
    VascoConfig(sky="dss").write(root / "config.json")
    objects = pd.DataFrame(
        {
            "Num": list(range(1000, 1000 + n_ast)),
            "Name": [f"A{i}" for i in range(n_ast)],
            "ra": a_ra,
            "dec": a_dec,
            "Class": ["MB>Middle"] * n_ast,
            "Mv": rng.uniform(16.0, 19.5, n_ast),
            "ErrPos": rng.uniform(0.1, 2.0, n_ast),
            # 0.1-0.3 deg a day, as main-belt asteroids away from their stationary points
            "dRAcosDec": rng.choice([-1, 1], n_ast) * rng.uniform(15.0, 45.0, n_ast),
            "dDEC": rng.uniform(-10, 10, n_ast),
        }
    )
    return objects, iso_to_jd(true_date) + 25.0 / 1440.0


@pytest.mark.parametrize("truth", ["header", "table"])
def test_vasco_epochs_with_the_skybot_service_on_the_real_m101_tile(tmp_path, monkeypatch, capsys, truth):
    """`vasco epochs` asks SkyBoT (stand-in server) at each candidate date and names the date the
    asteroids were detected at, whichever of the two it is."""
    from servers.skybot import SkybotStandIn

    from flows.cli import main
    from vasco.epochs import iso_to_jd

    true_date = "1955-04-24T06:58:00" if truth == "header" else "1955-04-23T07:37:00"
    objects, jd_true = _m101_survey(tmp_path, true_date)
    with SkybotStandIn(objects, jd_true) as server:
        monkeypatch.setenv("VASCO_SKYBOT_URL", server.base_url)
        assert main(["epochs", str(tmp_path)]) == 0  # a dss survey: SkyBoT the service
        seen = [s.extra["args"] for s in server.seen]
    table = pd.read_csv(tmp_path / "epochs.csv")
    row = table.iloc[0]
    assert row["region"] == "XE133" and row["date_conflict_hours"] == pytest.approx(23.35, abs=1e-3)
    assert row["verdict"] == truth and row["decided"]
    assert row["date_obs"].startswith(true_date)
    hits_true, hits_other = (
        (row["hits_header"], row["hits_table"]) if truth == "header" else (row["hits_table"], row["hits_header"])
    )
    assert hits_true == 8 and hits_other <= 1
    # one request per candidate (table=header-1d, header, header+1d), at mid-exposure, from Palomar
    assert len(seen) == 3 and {a["-loc"] for a in seen} == {"675"}
    asked = sorted(float(a["-ep"]) for a in seen)
    want = sorted(
        iso_to_jd(d) + 25.0 / 1440.0 for d in ("1955-04-23T07:37:00", "1955-04-24T06:58:00", "1955-04-25T06:58:00")
    )
    assert asked == pytest.approx(want, abs=1e-6)
    out = capsys.readouterr().out
    assert "XE133" in out and "epochs.csv" in out
    # the verdict, used by a survey with plates.date_source = 'epochs'
    verdict = read_verdicts(tmp_path)["XE133"]
    header = read_fits_header(M101)
    used = plate_dates(header, "XE133", "epochs", verdict)
    assert used.date_obs.startswith(true_date) and used.date_rule.startswith("epochs")


def test_vasco_epochs_service_failure_leaves_the_plate_undecided(tmp_path, monkeypatch):
    from servers.skybot import SkybotStandIn

    from flows.cli import main

    objects, jd = _m101_survey(tmp_path, "1955-04-24T06:58:00")
    cfg = VascoConfig.model_validate({"sky": "dss", "sources": {"skybot": {"http": {"max_attempts": 1}}}})
    cfg.write(tmp_path / "config.json")
    with SkybotStandIn(objects, jd) as server:
        server.queue(*[("status", 500, {})] * 5)
        monkeypatch.setenv("VASCO_SKYBOT_URL", server.base_url)
        assert main(["epochs", str(tmp_path)]) == 0
    res = pd.read_csv(tmp_path / "epochs.csv").iloc[0]
    assert res["verdict"] == "undecided" and not res["decided"]
    assert "FAIL_SKYBOT" in json.loads((tmp_path / "epochs.json").read_text())["plates"]["XE133"]["error"]


def test_vasco_epochs_bad_folder(tmp_path, capsys):
    from flows.cli import main

    assert main(["epochs", str(tmp_path / "nope")]) == 2
    assert "no tiles/ folder" in capsys.readouterr().err
    (tmp_path / "tiles").mkdir()
    assert main(["epochs", str(tmp_path)]) == 2
    assert "no processed" in capsys.readouterr().err


def test_synthetic_header_date_offset_moves_only_the_header():
    """The knob writes a header DATE-OBS a day off on the chosen plate; the sky stays at the true date."""
    from vasco.config import SyntheticConfig
    from vasco.synthetic.archives import skybot_at
    from vasco.synthetic.tile import make_synthetic_tile

    base = SyntheticConfig(n_asteroids_per_deg2=600.0)
    off = SyntheticConfig(n_asteroids_per_deg2=600.0, header_date_offset_days={"XE133": 1.0})
    other = SyntheticConfig(n_asteroids_per_deg2=600.0, header_date_offset_days={"XE132": 1.0})
    t0 = make_synthetic_tile(210.2, 53.3, 6.0, 1, base)
    t1 = make_synthetic_tile(210.2, 53.3, 6.0, 1, off)
    t2 = make_synthetic_tile(210.2, 53.3, 6.0, 1, other)
    assert t0.plate.region == "XE133" and t0.header["DATE-OBS"] == "1955-04-23T07:37:00"
    assert t1.header["DATE-OBS"] == "1955-04-24T07:37:00" and t1.header["SYNDATOF"] == 1.0
    t1.header.tostring()  # every card fits (warnings are errors in tests)
    assert t2.header["DATE-OBS"] == "1955-04-23T07:37:00" and "SYNDATOF" not in t2.header
    np.testing.assert_array_equal(t0.image, t1.image)
    pd.testing.assert_frame_equal(t0.skybot, t1.skybot)
    pd.testing.assert_frame_equal(t0.truth, t1.truth)
    d = plate_dates(t1.header, "XE133", "header")
    assert d.date_conflict_hours == pytest.approx(24.0) and d.date_obs.startswith("1955-04-24T07:37")
    # the synthetic SkyBoT asked a day later: every asteroid moved by 24 h of its rate
    sb = t0.skybot
    assert len(sb) > 3
    later = skybot_at(sb, float(sb.epoch_jd.iloc[0]) + 1.0)
    np.testing.assert_allclose((later.dec - sb.dec).to_numpy() * 3600.0, sb.dDEC.to_numpy() * 24.0, atol=1e-6)
    assert (later.epoch_jd == sb.epoch_jd.iloc[0] + 1.0).all() and later.Name.tolist() == sb.Name.tolist()

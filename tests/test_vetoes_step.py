"""The later-veto step of the pipeline (vasco.pipeline.apply_vetoes) on a hand-built tile."""

import numpy as np
import pandas as pd
import pytest

from vasco.astrometry.platefit import from_tangent_plane
from vasco.config import VascoConfig
from vasco.io import file_sha256
from vasco.pipeline import StepError, apply_vetoes, veto_list_names, veto_list_sources

RA0, DEC0 = 200.0, 30.0


def _pos(xi, eta):
    return from_tangent_plane(np.asarray(xi, float), np.asarray(eta, float), RA0, DEC0)


def _write(path, table):
    path.parent.mkdir(parents=True, exist_ok=True)
    table.to_parquet(path, index=False)
    return {"path": str(path), "sha256": file_sha256(path)}


def test_each_stage_removes_its_own_and_records_what_it_matched(tmp_path):
    xi = np.array([0.0, 200.0, 400.0, 600.0, 800.0, -200.0, -400.0])
    ra, dec = _pos(xi, np.zeros(7))
    sel = pd.DataFrame({"NUMBER": np.arange(1, 8), "ra": ra, "dec": dec,
                        "survives_psf": [True, True, True, True, True, True, False]})
    lists = {}
    b_ra, b_dec = _pos([30.0], [0.0])  # an R = 11 star 30" from candidate 1
    lists["bright"] = _write(tmp_path / "usnob.parquet", pd.DataFrame(
        {"USNO-B1.0": ["1200-0000001"], "RAJ2000": b_ra, "DEJ2000": b_dec, "R1mag": [11.5], "R2mag": [11.0]}))
    a_ra, a_dec = _pos([202.0], [0.0])
    lists["archive_allwise"] = _write(tmp_path / "allwise.parquet", pd.DataFrame(
        {"AllWISE": ["J1"], "RAJ2000": a_ra, "DEJ2000": a_dec, "W1mag": [15.0]}))
    s_ra, s_dec = _pos([412.0], [0.0])  # 12" away, but the ephemeris error is 5": radius 15"
    lists["skybot"] = _write(tmp_path / "skybot.parquet", pd.DataFrame(
        {"Num": [433], "Name": ["Eros"], "ra": s_ra, "dec": s_dec, "ErrPos": [5.0], "Mv": [16.0]}))
    v_ra, v_dec = _pos([601.0], [0.0])
    lists["vsx"] = _write(tmp_path / "vsx.parquet", pd.DataFrame(
        {"Name": ["V1"], "RAJ2000": v_ra, "DEJ2000": v_dec, "Type": ["M"], "max": [15.0]}))
    c_ra, c_dec = _pos(xi[[0, 1, 2, 3, 5, 6]] + 1.0, np.zeros(6))  # SuperCOSMOS sees all but #5
    lists["scos"] = _write(tmp_path / "scos.parquet", pd.DataFrame(
        {"objID": np.arange(6, dtype=np.int64), "ra": c_ra, "dec": c_dec, "sCorMagR1": 17.0}))
    g_ra, g_dec = _pos([-200.0 + 40.0], [0.0])  # a Gaia source without PM 40" from #6
    lists["gaia"] = _write(tmp_path / "gaia.parquet", pd.DataFrame(
        {"source_id": [7], "ra": g_ra, "dec": g_dec, "pmra": [np.nan], "pmdec": [np.nan], "ref_epoch": 2016.0,
         "phot_g_mean_mag": [16.0]}))
    cfg = VascoConfig.model_validate({"vetoes": {"archives": {"tables": ["allwise"]}}})
    selected = _write(tmp_path / "tile" / "work" / "selected.parquet", sel)
    res = apply_vetoes(tmp_path / "tile", selected, lists, cfg)
    assert res["info"]["funnel"] == {"not_bright_star": 5, "no_archive": 4, "not_asteroid": 3,
                                     "not_variable": 2, "in_supercosmos": 1, "not_hpm": 0}
    assert res["info"]["skipped"] == {}
    det = pd.read_parquet(res["outputs"]["detections"]["path"])
    assert det.loc[0, "bright_star_id"] == "1200-0000001" and det.loc[0, "bright_star_mag"] == 11.0
    assert det.loc[2, "asteroid_name"] == "Eros" and det.loc[3, "vsx_name"] == "V1"
    assert det["veto_in_supercosmos"].tolist() == [False, False, False, False, True, False, False]
    # Only the two still alive were tested: #5 unseen (fail), #6 seen (pass); the rest <NA>.
    assert det["scos_status"].tolist()[4:6] == ["fail", "pass"] and det["scos_status"].isna().sum() == 5
    assert det.loc[5, "hpm_gaia_id"] == "7" and not det["is_candidate"].any()
    # A detection with a counterpart was never tested: its veto columns are empty.
    assert pd.isna(det.loc[6, "bright_star_id"]) and not det.loc[6, "veto_not_bright_star"]
    assert len(pd.read_parquet(res["outputs"]["candidates"]["path"])) == 0


def test_a_missing_list_is_skipped_and_recorded_never_read_as_nothing_there(tmp_path):
    ra, dec = _pos([0.0], [0.0])
    sel = pd.DataFrame({"NUMBER": [1], "ra": ra, "dec": dec, "survives_psf": [True]})
    selected = _write(tmp_path / "tile" / "work" / "selected.parquet", sel)
    res = apply_vetoes(tmp_path / "tile", selected, {}, VascoConfig())
    assert res["info"]["funnel"] == {}
    assert set(res["info"]["skipped"]) == {"not_bright_star", "no_archive", "not_asteroid", "not_variable",
                                           "in_supercosmos", "not_hpm"}
    assert len(pd.read_parquet(res["outputs"]["candidates"]["path"])) == 1


def test_where_lists_come_from():
    cfg = VascoConfig()
    assert veto_list_names(cfg) == ["bright", "archive_allwise", "archive_catwise", "archive_2mass", "skybot",
                                    "vsx", "scos"]
    assert set(veto_list_sources(cfg, synthetic_tile=True).values()) == {"synthetic"}
    real = VascoConfig.model_validate({"sky": "dss"})
    assert set(veto_list_sources(real, synthetic_tile=False).values()) == {"service"}
    local = VascoConfig.model_validate({"sky": "dss", "catalogs": {"source": "local", "local": {
        "gaia": "g.csv", "ps1": "p.csv"}}})
    assert set(veto_list_sources(local, synthetic_tile=False).values()) == {"local"}
    gaia_spikes = VascoConfig.model_validate({"vetoes": {"spikes": {"catalog": "gaia"}}})
    assert "bright" not in veto_list_names(gaia_spikes)


def _scos_only():
    return VascoConfig.model_validate({"vetoes": {s: {"enabled": False} for s in (
        "spikes", "archives", "asteroids", "variables", "hpm")}})


def test_supercosmos_needs_the_poss_i_e_plate_and_does_not_apply_south_of_it(tmp_path):
    # North (Dec +30): #1 matched only by a row without an R1 (POSS-I E) measurement, #2 by
    # one with it.  South (Dec -25, no POSS-I E plate in the SSA): #3 unseen, #4 seen.
    n_ra, n_dec = _pos([0.0, 200.0], [0.0, 0.0])
    s_ra = np.array([10.0, 10.1])
    s_dec = np.array([-25.0, -25.0])
    sel = pd.DataFrame({"NUMBER": [1, 2, 3, 4], "ra": np.r_[n_ra, s_ra], "dec": np.r_[n_dec, s_dec],
                        "survives_psf": True})
    selected = _write(tmp_path / "tile" / "work" / "selected.parquet", sel)
    near = 1.0 / 3600.0
    scos = pd.DataFrame({"objID": np.arange(3, dtype=np.int64),
                         "ra": [n_ra[0] + near, n_ra[1] + near, s_ra[1] + near],
                         "dec": [n_dec[0], n_dec[1], s_dec[1]],
                         "sCorMagR1": [np.nan, 18.0, 17.0], "objIDR1": [0, 77, 78]})
    lists = {"scos": _write(tmp_path / "scos.parquet", scos)}
    res = apply_vetoes(tmp_path / "tile", selected, lists, _scos_only())
    det = pd.read_parquet(res["outputs"]["detections"]["path"])
    assert det["scos_status"].tolist() == ["fail", "pass", "not_applicable", "not_applicable"]
    assert det["veto_in_supercosmos"].tolist() == [True, False, False, False]
    assert det["is_candidate"].tolist() == [False, True, True, True]
    assert res["info"]["funnel"] == {"in_supercosmos": 3}
    assert np.isnan(det.loc[0, "scos_sep_arcsec"]) and det.loc[1, "scos_sep_arcsec"] < 1.5


def test_supercosmos_list_without_an_r1_column_fails_the_tile(tmp_path):
    ra, dec = _pos([0.0], [0.0])
    sel = pd.DataFrame({"NUMBER": [1], "ra": ra, "dec": dec, "survives_psf": [True]})
    selected = _write(tmp_path / "tile" / "work" / "selected.parquet", sel)
    lists = {"scos": _write(tmp_path / "scos.parquet", pd.DataFrame(
        {"objID": np.array([1], dtype=np.int64), "ra": ra, "dec": dec}))}
    with pytest.raises(StepError) as exc:
        apply_vetoes(tmp_path / "tile", selected, lists, _scos_only())
    assert exc.value.reason == "FAIL_SUPERCOSMOS_COLUMNS" and "R1" in str(exc.value)


def test_supercosmos_empty_list_of_a_tile_without_candidates(tmp_path):
    # The service step writes a bare empty list when no candidate is left to ask about.
    ra, dec = _pos([0.0], [0.0])
    sel = pd.DataFrame({"NUMBER": [1], "ra": ra, "dec": dec, "survives_psf": [False]})
    selected = _write(tmp_path / "tile" / "work" / "selected.parquet", sel)
    lists = {"scos": _write(tmp_path / "scos.parquet", pd.DataFrame(
        {"source_id": pd.Series(dtype="string"), "ra": pd.Series(dtype=float), "dec": pd.Series(dtype=float)}))}
    res = apply_vetoes(tmp_path / "tile", selected, lists, _scos_only())
    assert res["info"]["funnel"] == {"in_supercosmos": 0}

"""The later-veto step (vasco.steps.vetoes.run) on hand-built tables, in memory; the veto registry."""

import numpy as np
import pandas as pd
import pytest

from vasco.astrometry.platefit import from_tangent_plane
from vasco.config import VascoConfig
from vasco.filters import registry
from vasco.filters.veto_stage import ReferenceList, StageResult, VetoStage
from vasco.filters.vetoes import counterpart_veto
from vasco.steps.base import StepError
from vasco.steps.vetoes import run
from vasco.synthetic.tile import LIST_NAMES

RA0, DEC0 = 200.0, 30.0


def _pos(xi, eta):
    return from_tangent_plane(np.asarray(xi, float), np.asarray(eta, float), RA0, DEC0)


def _candidates(table):
    return table.loc[table["is_candidate"].to_numpy(bool)].reset_index(drop=True)


def test_each_stage_removes_its_own_and_records_what_it_matched():
    xi = np.array([0.0, 200.0, 400.0, 600.0, 800.0, -200.0, -400.0])
    ra, dec = _pos(xi, np.zeros(7))
    sel = pd.DataFrame(
        {"NUMBER": np.arange(1, 8), "ra": ra, "dec": dec, "survives_psf": [True, True, True, True, True, True, False]}
    )
    lists = {}
    b_ra, b_dec = _pos([30.0], [0.0])  # an R = 11 star 30" from candidate 1
    lists["bright"] = pd.DataFrame(
        {"USNO-B1.0": ["1200-0000001"], "RAJ2000": b_ra, "DEJ2000": b_dec, "R1mag": [11.5], "R2mag": [11.0]}
    )
    a_ra, a_dec = _pos([202.0], [0.0])
    lists["archive_allwise"] = pd.DataFrame({"AllWISE": ["J1"], "RAJ2000": a_ra, "DEJ2000": a_dec, "W1mag": [15.0]})
    s_ra, s_dec = _pos([412.0], [0.0])  # 12" away, but the ephemeris error is 5": radius 15"
    lists["skybot"] = pd.DataFrame(
        {"Num": [433], "Name": ["Eros"], "ra": s_ra, "dec": s_dec, "ErrPos": [5.0], "Mv": [16.0]}
    )
    v_ra, v_dec = _pos([601.0], [0.0])
    lists["vsx"] = pd.DataFrame({"Name": ["V1"], "RAJ2000": v_ra, "DEJ2000": v_dec, "Type": ["M"], "max": [15.0]})
    c_ra, c_dec = _pos(xi[[0, 1, 2, 3, 5, 6]] + 1.0, np.zeros(6))  # SuperCOSMOS sees all but #5
    lists["scos"] = pd.DataFrame({"objID": np.arange(6, dtype=np.int64), "ra": c_ra, "dec": c_dec, "sCorMagR1": 17.0})
    g_ra, g_dec = _pos([-200.0 + 40.0], [0.0])  # a Gaia source without PM 40" from #6
    lists["gaia"] = pd.DataFrame(
        {
            "source_id": [7],
            "ra": g_ra,
            "dec": g_dec,
            "pmra": [np.nan],
            "pmdec": [np.nan],
            "ref_epoch": 2016.0,
            "phot_g_mean_mag": [16.0],
        }
    )
    cfg = VascoConfig.model_validate({"vetoes": {"archives": {"tables": ["allwise"]}}})
    det, info = run(sel, lists, cfg)
    assert info["funnel"] == {
        "not_bright_star": 5,
        "no_archive": 4,
        "not_asteroid": 3,
        "not_variable": 2,
        "in_supercosmos": 1,
        "not_hpm": 0,
    }
    assert info["skipped"] == {}
    assert det.loc[0, "bright_star_id"] == "1200-0000001" and det.loc[0, "bright_star_mag"] == 11.0
    assert det.loc[2, "asteroid_name"] == "Eros" and det.loc[3, "vsx_name"] == "V1"
    assert det["veto_in_supercosmos"].tolist() == [False, False, False, False, True, False, False]
    # Only the two still alive were tested: #5 unseen (fail), #6 seen (pass); the rest <NA>.
    assert det["scos_status"].tolist()[4:6] == ["fail", "pass"] and det["scos_status"].isna().sum() == 5
    assert det.loc[5, "hpm_gaia_id"] == "7" and not det["is_candidate"].any()
    # A detection with a counterpart was never tested: its veto columns are empty.
    assert pd.isna(det.loc[6, "bright_star_id"]) and not det.loc[6, "veto_not_bright_star"]
    assert len(_candidates(det)) == 0


def test_a_missing_list_is_skipped_and_recorded_never_read_as_nothing_there():
    ra, dec = _pos([0.0], [0.0])
    sel = pd.DataFrame({"NUMBER": [1], "ra": ra, "dec": dec, "survives_psf": [True]})
    det, info = run(sel, {}, VascoConfig())
    assert info["funnel"] == {}
    assert set(info["skipped"]) == {
        "not_bright_star",
        "no_archive",
        "not_asteroid",
        "not_variable",
        "in_supercosmos",
        "not_hpm",
    }
    assert len(_candidates(det)) == 1


def test_where_lists_come_from():
    cfg = VascoConfig()
    assert registry.list_names(cfg.vetoes) == [
        "bright",
        "archive_allwise",
        "archive_catwise",
        "archive_2mass",
        "skybot",
        "vsx",
        "scos",
    ]
    assert set(registry.list_sources(cfg, synthetic_tile=True).values()) == {"synthetic"}
    real = VascoConfig.model_validate({"sky": "dss"})
    assert set(registry.list_sources(real, synthetic_tile=False).values()) == {"service"}
    local = VascoConfig.model_validate(
        {"sky": "dss", "catalogs": {"source": "local", "local": {"gaia": "g.csv", "ps1": "p.csv"}}}
    )
    assert set(registry.list_sources(local, synthetic_tile=False).values()) == {"local"}
    gaia_spikes = VascoConfig.model_validate({"vetoes": {"spikes": {"catalog": "gaia"}}})
    assert "bright" not in registry.list_names(gaia_spikes.vetoes)


def _scos_only():
    return VascoConfig.model_validate(
        {"vetoes": {s: {"enabled": False} for s in ("spikes", "archives", "asteroids", "variables", "hpm")}}
    )


def test_supercosmos_needs_the_poss_i_e_plate_and_does_not_apply_south_of_it():
    # North (Dec +30): #1 matched only by a row without an R1 (POSS-I E) measurement, #2 by
    # one with it.  South (Dec -25, no POSS-I E plate in the SSA): #3 unseen, #4 seen.
    n_ra, n_dec = _pos([0.0, 200.0], [0.0, 0.0])
    s_ra = np.array([10.0, 10.1])
    s_dec = np.array([-25.0, -25.0])
    sel = pd.DataFrame(
        {"NUMBER": [1, 2, 3, 4], "ra": np.r_[n_ra, s_ra], "dec": np.r_[n_dec, s_dec], "survives_psf": True}
    )
    near = 1.0 / 3600.0
    scos = pd.DataFrame(
        {
            "objID": np.arange(3, dtype=np.int64),
            "ra": [n_ra[0] + near, n_ra[1] + near, s_ra[1] + near],
            "dec": [n_dec[0], n_dec[1], s_dec[1]],
            "sCorMagR1": [np.nan, 18.0, 17.0],
            "objIDR1": [0, 77, 78],
        }
    )
    det, info = run(sel, {"scos": scos}, _scos_only())
    assert det["scos_status"].tolist() == ["fail", "pass", "not_applicable", "not_applicable"]
    assert det["veto_in_supercosmos"].tolist() == [True, False, False, False]
    assert det["is_candidate"].tolist() == [False, True, True, True]
    assert info["funnel"] == {"in_supercosmos": 3}
    assert np.isnan(det.loc[0, "scos_sep_arcsec"]) and det.loc[1, "scos_sep_arcsec"] < 1.5


def test_supercosmos_list_without_an_r1_column_fails_the_tile():
    ra, dec = _pos([0.0], [0.0])
    sel = pd.DataFrame({"NUMBER": [1], "ra": ra, "dec": dec, "survives_psf": [True]})
    lists = {"scos": pd.DataFrame({"objID": np.array([1], dtype=np.int64), "ra": ra, "dec": dec})}
    with pytest.raises(StepError) as exc:
        run(sel, lists, _scos_only())
    assert exc.value.reason == "FAIL_SUPERCOSMOS_COLUMNS" and "R1" in str(exc.value)


def test_supercosmos_empty_list_of_a_tile_without_candidates():
    # The service step writes a bare empty list when no candidate is left to ask about.
    ra, dec = _pos([0.0], [0.0])
    sel = pd.DataFrame({"NUMBER": [1], "ra": ra, "dec": dec, "survives_psf": [False]})
    lists = {
        "scos": pd.DataFrame(
            {"source_id": pd.Series(dtype="string"), "ra": pd.Series(dtype=float), "dec": pd.Series(dtype=float)}
        )
    }
    _, info = run(sel, lists, _scos_only())
    assert info["funnel"] == {"in_supercosmos": 0}


# --------------------------------------------------------------------------- the registry


def _toy_apply(inp):
    """A toy stage: rejected by a row of the ``toy`` list within 3"."""
    if "toy" not in inp.lists:
        return None
    toy = inp.lists["toy"].rename(columns={"toy_id": "source_id"})
    res = counterpart_veto(inp.ra, inp.dec, toy, 3.0)
    return StageResult(
        vetoed=res["vetoed"].to_numpy(bool),
        columns=[("veto_not_toy", res, {"match_id": "toy_id", "match_sep_arcsec": "toy_sep_arcsec"})],
    )


TOY_LIST = ReferenceList(
    name="toy", local="toy", synthetic=None, service="vizier", table="J/toy/stars", fetch=lambda query: pd.DataFrame()
)
TOY = VetoStage(
    name="not_toy",
    section=None,
    lists=lambda vc: (TOY_LIST,),
    apply=_toy_apply,
    test="tests/test_vetoes_step.py::test_a_registered_stage_runs_in_its_place",
)


@pytest.fixture
def toy_stage():
    registry.register(TOY, after="not_variable")
    yield TOY
    registry.unregister(TOY.name)


def test_a_registered_stage_runs_in_its_place(toy_stage):
    cfg = VascoConfig.model_validate({"sky": "dss", "vetoes": {"archives": {"tables": ["allwise"]}}})
    assert registry.veto_order() == [
        "not_bright_star",
        "no_archive",
        "not_asteroid",
        "not_variable",
        "not_toy",
        "in_supercosmos",
        "not_hpm",
    ]
    assert registry.list_names(cfg.vetoes) == ["bright", "archive_allwise", "skybot", "vsx", "toy", "scos"]
    assert registry.list_sources(cfg, synthetic_tile=False)["toy"] == "service"
    assert "toy" not in registry.synthetic_lists(cfg.vetoes)
    # Only the toy list is there: the other stages are skipped, the toy one removes #2 of three.
    ra, dec = _pos([0.0, 200.0, 400.0], [0.0, 0.0, 0.0])
    sel = pd.DataFrame({"NUMBER": [1, 2, 3], "ra": ra, "dec": dec, "survives_psf": [True, True, False]})
    t_ra, t_dec = _pos([201.0, 400.0], [0.0, 0.0])
    toy = pd.DataFrame({"toy_id": ["T1", "T2"], "ra": t_ra, "dec": t_dec})
    det, info = run(sel, {"toy": toy}, cfg)
    assert info["funnel"] == {"not_toy": 1}
    assert "not_toy" not in info["skipped"] and "not_variable" in info["skipped"]
    assert det["veto_not_toy"].tolist() == [False, True, False]
    # #3 did not survive the SPREAD_MODEL cut: never tested, though T2 sits on it.
    assert det["toy_id"].tolist()[1] == "T1" and det["toy_id"].isna().tolist() == [True, False, True]
    assert det.loc[1, "toy_sep_arcsec"] == pytest.approx(1.0, abs=0.01)
    assert det["is_candidate"].tolist() == [True, False, False]


def test_the_toy_stage_is_gone_after_its_fixture():
    assert "not_toy" not in registry.veto_order()
    assert registry.veto_order() == list(registry.VETO_ORDER)


def test_registry_names_every_stage_once_with_a_test_and_the_synthetic_sky_has_its_lists():
    names = registry.veto_order()
    assert len(set(names)) == len(names) == 6
    for stage in registry.STAGES:
        path, _, test = stage.test.partition("::")
        assert path.startswith("tests/") and test.startswith("test_"), stage.name
    every = VascoConfig.model_validate({"vetoes": {"archives": {"tables": ["allwise", "catwise", "2mass"]}}})
    synthetic = registry.synthetic_lists(every.vetoes)
    assert set(synthetic.values()) == set(LIST_NAMES)
    with pytest.raises(ValueError, match="already registered"):
        registry.register(registry.STAGES[0])


def test_the_step_shell_writes_what_run_returns(tmp_path):
    from vasco.io import file_sha256
    from vasco.steps.vetoes import vetoes

    ra, dec = _pos([0.0, 200.0], [0.0, 0.0])
    sel = pd.DataFrame({"NUMBER": [1, 2], "ra": ra, "dec": dec, "survives_psf": True})
    path = tmp_path / "tile" / "work" / "spread.parquet"
    path.parent.mkdir(parents=True)
    sel.to_parquet(path, index=False)
    scos_path = tmp_path / "scos.parquet"
    pd.DataFrame({"objID": np.array([1], dtype=np.int64), "ra": ra[:1], "dec": dec[:1]}).to_parquet(scos_path)
    with pytest.raises(StepError) as exc:
        vetoes(
            tmp_path / "tile",
            {"path": str(path), "sha256": file_sha256(path)},
            {"scos": {"path": str(scos_path), "sha256": file_sha256(scos_path)}},
            _scos_only(),
        )
    assert exc.value.reason == "FAIL_SUPERCOSMOS_COLUMNS" and str(scos_path) in str(exc.value)
    res = vetoes(tmp_path / "tile", {"path": str(path), "sha256": file_sha256(path)}, {}, VascoConfig())
    want, info = run(sel.copy(), {}, VascoConfig())
    assert res["info"] == info
    pd.testing.assert_frame_equal(pd.read_parquet(res["outputs"]["detections"]["path"]), want)
    assert (tmp_path / "tile" / "steps" / "vetoes.json").is_file()

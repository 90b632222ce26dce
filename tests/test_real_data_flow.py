"""Issue 3 end to end: ``vasco tile`` on a real cutout, and a survey against loopback
stand-ins of STScI DSS and VizieR that serve the synthetic sky."""

from __future__ import annotations

import io
import json
import shutil
import threading
from typing import Any

import numpy as np
import pandas as pd
import pytest
from astropy.io import fits
from servers.dss import DssStandIn
from servers.skybot import SkybotStandIn
from servers.supercosmos import SupercosmosStandIn
from servers.vizier import VizierStandIn
from servers.xmatch import XMatchStandIn

from vasco.config import SyntheticConfig, VascoConfig
from vasco.io import read_json
from vasco.synthetic.tile import make_synthetic_tile

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("source-extractor") is None, reason="SExtractor is not installed"),
]

POSITIONS = [(132.8250, 11.8000), (184.0164, 27.8682)]
SIZE = 10.0
SEED = 1
#: Transients are drawn per area (n_transients per 30' tile): a denser injection
#: gives these 10' tiles candidates to compare.
SYNTH = SyntheticConfig(n_transients=300)


class SyntheticDss(DssStandIn):
    """Answers dss_search with the synthetic tile of the requested position.

    The body is per request thread, so simultaneous requests never see each
    other's tile.
    """

    def __init__(self, delay: float = 0.0):
        self._local = threading.local()
        super().__init__(b"", delay=delay)

    @property
    def body(self) -> bytes:
        return getattr(self._local, "body", b"")

    @body.setter
    def body(self, value: bytes) -> None:
        self._local.body = value

    def handle(self, h: Any, seen: Any) -> None:
        q = {k: v[0] for k, v in seen.query.items()}
        tile = make_synthetic_tile(float(q["r"]), float(q["d"]), float(q["h"]), SEED, SYNTH)
        buf = io.BytesIO()
        fits.PrimaryHDU(data=tile.image, header=tile.header).writeto(buf)
        self.body = buf.getvalue()
        super().handle(h, seen)


def _tiles() -> list[Any]:
    return [make_synthetic_tile(ra, dec, SIZE, SEED, SYNTH) for ra, dec in POSITIONS]


def _union(frames: list[pd.DataFrame], key: str) -> pd.DataFrame:
    return pd.concat(frames).drop_duplicates(key).reset_index(drop=True)


#: The later vetoes' VizieR tables, served from the synthetic sky's own lists.
VETO_IDS = {"I/284/out": "USNO-B1.0", "II/328/allwise": "AllWISE", "B/vsx/vsx": "Name"}


def _veto_tables() -> dict[str, tuple[pd.DataFrame, str, str]]:
    tiles = _tiles()
    return {
        "I/284/out": (_union([t.usnob for t in tiles], "USNO-B1.0"), "RAJ2000", "DEJ2000"),
        "II/328/allwise": (_union([t.allwise for t in tiles], "AllWISE"), "RAJ2000", "DEJ2000"),
        "B/vsx/vsx": (_union([t.vsx for t in tiles], "Name"), "RAJ2000", "DEJ2000"),
    }


def _veto_servers() -> tuple[SkybotStandIn, SupercosmosStandIn]:
    """SkyBoT and SuperCOSMOS stand-ins answering with the synthetic sky's lists."""
    tiles = _tiles()
    rocks = _union([t.skybot for t in tiles], "Name")
    # The synthetic answer is already at each tile's plate epoch: serve it as still.
    rocks["dRAcosDec"] = 0.0
    rocks["dDEC"] = 0.0
    return SkybotStandIn(rocks, float(rocks["epoch_jd"].iloc[0])), SupercosmosStandIn(
        _union([t.scos for t in tiles], "objID")
    )


def _config(tmp_path: Any, **catalogs: Any) -> str:
    """A config whose archive veto asks AllWISE only (the archive the synthetic sky has)."""
    cfg = VascoConfig.model_validate(
        {
            "vetoes": {"archives": {"tables": ["allwise"]}},
            "synthetic": SYNTH.model_dump(),
            "catalogs": {**VascoConfig().catalogs.model_dump(), **catalogs},
        }
    )
    return str(cfg.write(tmp_path / "test-config.json"))


def _vizier_tables() -> dict[str, tuple[pd.DataFrame, str, str]]:
    gaia, ps1 = [], []
    for tile in _tiles():
        gaia.append(tile.gaia)
        ps1.append(tile.ps1)
    g = (
        pd.concat(gaia)
        .drop_duplicates("source_id")
        .rename(
            columns={
                "source_id": "Source",
                "ra": "RA_ICRS",
                "dec": "DE_ICRS",
                "pmra": "pmRA",
                "pmdec": "pmDE",
                "parallax": "Plx",
                "phot_g_mean_mag": "Gmag",
                "ref_epoch": "Epoch",
            }
        )
    )
    p = (
        pd.concat(ps1)
        .drop_duplicates("objID")
        .rename(columns={"raMean": "RAJ2000", "decMean": "DEJ2000", "rMeanPSFMag": "rmag"})
        .drop(columns=["epochMean"])
    )
    p["Qual"] = 52
    p["gmag"] = p["rmag"] + 0.5
    p["imag"] = p["rmag"] - 0.3
    return {
        "I/350/gaiaedr3": (g.reset_index(drop=True), "RA_ICRS", "DE_ICRS"),
        "II/389/ps1_dr2": (p.reset_index(drop=True), "RAJ2000", "DEJ2000"),
    }


def test_survey_with_xmatch_matches_synthetic(tmp_path, monkeypatch, harness):
    from flows.survey import survey_flow

    pos = tmp_path / "pos.csv"
    pos.write_text("ra,dec\n" + "".join(f"{ra},{dec}\n" for ra, dec in POSITIONS))
    cfg_file = _config(tmp_path)
    survey_flow(out=str(tmp_path / "synthetic"), size_arcmin=SIZE, seed=SEED, positions=str(pos), config_file=cfg_file)
    viz = _vizier_tables()
    ps1, ra_col, dec_col = viz["II/389/ps1_dr2"]
    # XMatch's PS1 is II/349/ps1, whose Epoch is the mean epoch as an MJD (Julian years here -> MJD).
    ps1 = ps1.assign(Epoch=(2016.0 - 2000.0) * 365.25 + 51544.5 + np.zeros(len(ps1)))
    tables = {"vizier:I/350/gaiaedr3": viz["I/350/gaiaedr3"], "vizier:II/349/ps1": (ps1, ra_col, dec_col)}
    skybot, scos = _veto_servers()
    with (
        SyntheticDss() as dss,
        XMatchStandIn(tables, job_delay=0.2) as xm,
        VizierStandIn(_veto_tables(), ids=VETO_IDS) as viz,
        skybot,
        scos,
    ):
        monkeypatch.setenv("VASCO_DSS_URL", dss.base_url)
        monkeypatch.setenv("VASCO_XMATCH_URL", xm.sync_url)
        monkeypatch.setenv("VASCO_VIZIER_URL", viz.url)
        monkeypatch.setenv("VASCO_SKYBOT_URL", skybot.base_url)
        monkeypatch.setenv("VASCO_SUPERCOSMOS_URL", scos.base_url)
        real = survey_flow(
            out=str(tmp_path / "xmatch"),
            sky="dss",
            catalogs="xmatch",
            size_arcmin=SIZE,
            seed=SEED,
            positions=str(pos),
            workers=2,
            config_file=cfg_file,
        )
        # CDS bans parallel jobs: never more than one at a time, across tiles too.
        assert xm.max_jobs_running == 1 and len(xm.jobs) >= 4
    assert real["tiles"]["processed"] == 2, real
    # Provenance: each tile says what it asked of which service; the summary sums them.
    xm_tables = ["vizier:I/350/gaiaedr3", "vizier:II/349/ps1"]
    for tile_json in sorted((tmp_path / "xmatch" / "tiles").glob("*/tile.json")):
        prov = json.loads(tile_json.read_text())["provenance"]
        asked = [q for q in prov["queries"] if q["service"] == "xmatch"]
        assert [q["tables"][0] for q in asked] == xm_tables and all(q["url"] == xm.sync_url for q in asked)
        assert {"dss", "xmatch"} <= set(prov["services"]) and not any(q["cached"] for q in prov["queries"])
        assert prov["tools"]["psfex"] and prov["tools"]["source-extractor"]
    sp = real["provenance"]
    assert sp["tiles"] == 2 and sp["services"]["xmatch"]["tables"] == xm_tables
    assert sp["services"]["xmatch"]["queries"] == 4 and sp["services"]["xmatch"]["requests"] == len(xm.jobs)
    assert sp["services"]["dss"]["queries"] == 2
    a = pd.read_parquet(tmp_path / "synthetic" / "candidates.parquet")
    b = pd.read_parquet(tmp_path / "xmatch" / "candidates.parquet")
    key = ["tile_id", "NUMBER", "ra", "dec"]
    pd.testing.assert_frame_equal(a[key].reset_index(drop=True), b[key].reset_index(drop=True))


def test_survey_against_standins_matches_synthetic(tmp_path, monkeypatch, harness):
    from flows.survey import survey_flow

    pos = tmp_path / "pos.csv"
    pos.write_text("ra,dec\n" + "".join(f"{ra},{dec}\n" for ra, dec in POSITIONS))
    # One call at a time per service, although two tiles run at once.
    cfg_file = _config(tmp_path, service_concurrency=1)
    survey_flow(out=str(tmp_path / "synthetic"), size_arcmin=SIZE, seed=SEED, positions=str(pos), config_file=cfg_file)
    skybot, scos = _veto_servers()
    with (
        SyntheticDss(delay=0.5) as dss,
        VizierStandIn({**_vizier_tables(), **_veto_tables()}, ids=VETO_IDS) as viz,
        skybot,
        scos,
    ):
        monkeypatch.setenv("VASCO_DSS_URL", dss.base_url)
        monkeypatch.setenv("VASCO_VIZIER_URL", viz.url)
        monkeypatch.setenv("VASCO_SKYBOT_URL", skybot.base_url)
        monkeypatch.setenv("VASCO_SUPERCOSMOS_URL", scos.base_url)
        real = survey_flow(
            out=str(tmp_path / "real"),
            sky="dss",
            catalogs="vizier",
            size_arcmin=SIZE,
            seed=SEED,
            positions=str(pos),
            workers=2,
            config_file=str(cfg_file),
        )
        assert len(dss.seen) == 2
        # Politeness: never more simultaneous calls than the strict concurrency limit.
        assert dss.max_active == 1 and viz.max_active == 1
        assert len(viz.seen) >= 4  # Gaia and PS1 for each tile
        # A re-run asks the services nothing again: answers are cached per tile.
        n_dss, n_viz = len(dss.seen), len(viz.seen)
        again = survey_flow(
            out=str(tmp_path / "real"),
            sky="dss",
            catalogs="vizier",
            size_arcmin=SIZE,
            seed=SEED,
            positions=str(pos),
            workers=2,
            config_file=str(cfg_file),
        )
        assert (len(dss.seen), len(viz.seen)) == (n_dss, n_viz)
        assert again["candidates"] == real["candidates"]
    assert real["tiles"]["processed"] == 2, real
    a = pd.read_parquet(tmp_path / "synthetic" / "candidates.parquet")
    b = pd.read_parquet(tmp_path / "real" / "candidates.parquet")
    assert len(a) > 0
    key = ["tile_id", "NUMBER", "ra", "dec"]
    pd.testing.assert_frame_equal(a[key].reset_index(drop=True), b[key].reset_index(drop=True))
    rec = read_json(next((tmp_path / "real" / "tiles").iterdir()) / "tile.json")
    assert rec["catalogs"]["used"] == ["gaia", "ps1"] and rec["sky"] == "dss"


def test_vasco_tile_on_the_real_m101_cutout(tmp_path, m101_path, harness):
    import goldens

    # A Gaia-like file for this field: every other star the plate shows (the golden files' own).
    out = goldens.run_m101(m101_path, tmp_path)
    rec = read_json(out / "tile.json")
    assert rec["status"] == "ok" and rec["plate"]["region"] == "XE133"
    assert int(rec["plate"]["epoch"]) == 1955
    # The old header's 24/04/55 06:58 is a day after the full-plate header's date: both recorded,
    # the plate table's used (plates.date_source = 'table'), the conflict flagged.
    plate = rec["plate"]
    assert plate["date_obs_header"].startswith("1955-04-24T06:58")
    assert plate["date_obs"] == plate["date_obs_table"] and plate["date_obs"].startswith("1955-04-23T07:37")
    assert plate["date_conflict"] and abs(plate["date_conflict_hours"] - 23.35) < 1e-3
    assert plate["exposure_min"] == 50.0 and plate["epoch_mid"] > plate["epoch"]
    dets = pd.read_parquet(out / "detections.parquet")
    assert (out / "candidates.parquet").exists()
    assert (dets["ra"] != 0).all() and (dets["dec"] != 0).all()
    assert dets["ra"].between(210.5, 211.1).all() and dets["dec"].between(54.1, 54.6).all()
    assert dets["gaia_sep_arcsec"].notna().sum() > 0.3 * len(dets)
    # Only the Gaia file was given: the HPM veto (which reads Gaia) runs, the other vetoes are skipped.
    assert "no_gaia" in rec["funnel"] and list(rec["funnel"])[-1] == "not_hpm"
    assert "not_bright_star" in rec["vetoes"]["skipped"]
    # A "Gaia" holding every other star: about half the bright point-like stars lack a counterpart,
    # so the tile's positions are not trusted, and its detections say so.
    ast = rec["astrometry"]
    assert ast["trusted"] is False and "match_fraction" in ast["trust_reasons"]
    assert 0.3 < ast["match_fraction"] < 0.7 and ast["match_stars"] > 50
    assert not dets["astrometry_trusted"].any()
    assert dets["astrometry_trust_reason"].str.contains("match_fraction").all()
    assert np.isfinite(dets["pos_err_arcsec"]).all() and ast["pixel_scale_arcsec"] == pytest.approx(1.70, abs=0.02)


def test_vasco_tile_bad_input_is_named(tmp_path, capsys):
    from flows.cli import main

    assert main(["tile", "--fits", str(tmp_path / "nope.fits"), "--catalog", "gaia=x", "--out", str(tmp_path)]) == 2
    assert "nope.fits: no such file" in capsys.readouterr().err

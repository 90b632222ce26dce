"""A tile whose astrometry cannot be trusted says so (vasco.astrometry.trust), and each detection's
position uncertainty; the steps on a hand-built tile (no SExtractor: pass 2's columns are made up,
with ``psf_fit_scope = 'all'`` so the SPREAD_MODEL step needs no tool)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from vasco.astrometry.platefit import from_tangent_plane
from vasco.astrometry.trust import (
    SHAPE_CUT_COLUMNS,
    TRUST_REASONS,
    assess_trust,
    fit_scatter_arcsec,
    match_fraction,
    match_test_stars,
    pixel_scale_arcsec,
    position_errors,
)
from vasco.config import AstrometryTrustConfig, VascoConfig
from vasco.io import file_sha256, read_json, write_json_atomic
from vasco.steps.astrometry import astrometry
from vasco.steps.match import match
from vasco.steps.select import select
from vasco.steps.spread_model import spread_model
from vasco.steps.vetoes import vetoes

RA0, DEC0 = 132.8, 11.8
GOOD = {"status": "fit", "median_residual_arcsec": 0.2, "n_ref": 300}


# --------------------------------------------------------------------------- the decision


def test_a_good_tile_is_trusted():
    d = assess_trust(GOOD, (200, 190, 0.95), AstrometryTrustConfig(), "gaia")
    assert d.trusted and d.reasons == [] and d.reason == ""
    rec = d.to_dict()
    assert rec["trusted"] is True and rec["trust_reason"] is None and rec["match_fraction"] == 0.95
    assert (rec["match_stars"], rec["match_with_counterpart"], rec["match_catalog"]) == (200, 190, "gaia")


@pytest.mark.parametrize("status", ["fallback_shift", "fallback_none", "not_fitted"])
def test_a_fit_that_fell_back_is_untrusted(status):
    d = assess_trust({**GOOD, "status": status, "n_ref": 7}, (200, 190, 0.95), AstrometryTrustConfig())
    assert not d.trusted and d.reasons == [f"fit_{status}"] and d.reasons[0] in TRUST_REASONS
    assert "7 paired fit stars" in d.details[0]


def test_median_residual_threshold_comes_from_the_config():
    summary = {**GOOD, "median_residual_arcsec": 0.62}
    d = assess_trust(summary, (200, 190, 0.95), AstrometryTrustConfig())
    assert not d.trusted and d.reasons == ["median_residual"] and '0.62" > 0.5"' in d.details[0]
    assert assess_trust(summary, (200, 190, 0.95), AstrometryTrustConfig(max_median_residual_arcsec=0.7)).trusted
    # At the threshold it is still trusted ("exceeds" is strict).
    assert assess_trust({**GOOD, "median_residual_arcsec": 0.5}, (200, 190, 0.95), AstrometryTrustConfig()).trusted


def test_match_fraction_threshold_comes_from_the_config():
    d = assess_trust(GOOD, (200, 150, 0.75), AstrometryTrustConfig(), "gaia")
    assert not d.trusted and d.reasons == ["match_fraction"]
    assert "150 of 200" in d.details[0] and "75%" in d.details[0] and "a Gaia counterpart" in d.details[0]
    assert assess_trust(GOOD, (200, 150, 0.75), AstrometryTrustConfig(min_match_fraction=0.7)).trusted
    assert assess_trust(GOOD, (200, 160, 0.8), AstrometryTrustConfig()).trusted
    # No test star at all proves nothing: untrusted.
    none = assess_trust(GOOD, (0, 0, None), AstrometryTrustConfig())
    assert none.reasons == ["match_fraction"] and "no SNR_WIN > 30" in none.details[0]


def test_every_reason_that_applies_is_listed_in_order():
    bad = {"status": "fallback_shift", "median_residual_arcsec": 1.4, "n_ref": 9}
    d = assess_trust(bad, (40, 10, 0.25), AstrometryTrustConfig())
    assert d.reasons == ["fit_fallback_shift", "median_residual", "match_fraction"]
    assert d.reason == "fit_fallback_shift;median_residual;match_fraction"
    assert d.to_dict()["trust_reason"].count("; ") == 2


def _cut_table(n: int = 6) -> pd.DataFrame:
    t = pd.DataFrame(
        {
            "ra": np.full(n, 10.0),
            "dec": np.full(n, 20.0),
            "SNR_WIN": [50.0, 31.0, 30.0, 100.0, 100.0, 100.0],
            "FLAGS": [0, 0, 0, 2, 0, 0],
            "gaia_sep_arcsec": [0.3, np.nan, 0.2, 0.1, np.nan, 0.4],
        }
    )
    for col in SHAPE_CUT_COLUMNS:
        t[col] = True
    t.loc[4, "cut_elongation"] = False  # a trail: not point-like
    return t


def test_test_stars_are_bright_clean_and_point_like():
    t = _cut_table()
    stars = match_test_stars(t, AstrometryTrustConfig())
    assert stars.tolist() == [True, True, False, False, False, True]
    assert match_fraction(t["gaia_sep_arcsec"].to_numpy(), stars) == (3, 2, pytest.approx(2 / 3))
    loose = match_test_stars(t, AstrometryTrustConfig(require_shape_cuts=False, flags_max=3, snr_min=20.0))
    assert loose.tolist() == [True] * 6
    with pytest.raises(ValueError, match="cut_fwhm"):
        match_test_stars(t.drop(columns=["cut_fwhm"]), AstrometryTrustConfig())
    assert match_fraction(np.array([1.0]), np.array([False])) == (0, 0, None)


# --------------------------------------------------------------------------- position uncertainty


def test_pixel_scale_from_a_synthetic_header():
    from vasco.astrometry.positions import pixel_to_sky
    from vasco.config import SyntheticConfig
    from vasco.synthetic.tile import make_synthetic_tile

    tile = make_synthetic_tile(RA0, DEC0, 10.0, 1, SyntheticConfig(n_transients=0))
    rng = np.random.default_rng(0)
    x, y = rng.uniform(1, 350, 200), rng.uniform(1, 350, 200)
    ra, dec = pixel_to_sky(tile.header, x, y, "plate")
    scale = pixel_scale_arcsec(x, y, ra, dec, RA0, DEC0)
    # The plate scale (PLTSCALE, arcsec/mm) times the scan's pixel size (XPIXELSZ, um): 1.70"/px
    # here, but about 1.0"/px on the plates DSS1 scanned with 15 um pixels (e.g. XE890).
    expect = float(tile.header["PLTSCALE"]) * float(tile.header["XPIXELSZ"]) / 1000.0
    assert scale == pytest.approx(expect, rel=2e-3)
    assert np.isnan(pixel_scale_arcsec(x[:2], y[:2], ra[:2], dec[:2], RA0, DEC0))


def test_position_errors_combine_centroid_and_fit_in_quadrature():
    errs = position_errors(np.array([0.3, 0.03, np.nan]), np.array([0.4, 0.04, 0.1]), 1.7, 0.12)
    assert all(v.dtype == np.float64 for v in errs.values())
    assert errs["pos_err_centroid_arcsec"][:2] == pytest.approx([0.85, 0.085])
    assert errs["pos_err_fit_arcsec"][:2] == pytest.approx([0.12, 0.12])
    assert errs["pos_err_arcsec"][:2] == pytest.approx([np.hypot(0.85, 0.12), np.hypot(0.085, 0.12)])
    assert np.isnan(errs["pos_err_arcsec"][2])
    nofit = position_errors(np.array([0.3]), np.array([0.4]), 1.7, None)
    assert nofit["pos_err_centroid_arcsec"][0] == pytest.approx(0.85) and np.isnan(nofit["pos_err_arcsec"][0])


def test_fit_scatter_is_robust_to_rejected_pairs():
    rng = np.random.default_rng(1)
    n = 400
    pairs = pd.DataFrame({"dxi_after": rng.normal(0, 0.2, n), "deta_after": rng.normal(0, 0.2, n)})
    pairs.loc[:19, "dxi_after"] = 30.0  # pairs the fit rejected
    assert fit_scatter_arcsec(pairs) == pytest.approx(0.2 * np.sqrt(2), rel=0.12)
    assert fit_scatter_arcsec(pairs.iloc[:2]) is None


# --------------------------------------------------------------------------- the steps on a hand-built tile


def _write(path: Path, table: pd.DataFrame) -> dict[str, str]:
    path.parent.mkdir(parents=True, exist_ok=True)
    table.to_parquet(path, index=False)
    return {"path": str(path), "sha256": file_sha256(path)}


def _tile(tmp_path: Path, *, n_stars: int = 300, n_pm: int | None = None, n_transients: int = 6):
    """A measured table (pass-2 columns plus header positions), its Gaia list and plate.json.

    Stars have Gaia counterparts; ``n_pm`` of them have a proper motion (the
    rest look like Gaia's 2-parameter solutions, so the fit cannot use them);
    transients have none.  SNR and the centroid errors follow SExtractor's
    scaling (error ~ FWHM / SNR).
    """
    rng = np.random.default_rng(7)
    n = n_stars + n_transients
    half = 850.0
    xi, eta = rng.uniform(-half, half, n), rng.uniform(-half, half, n)
    truth = from_tangent_plane(xi, eta, RA0, DEC0)
    # The header's plate polynomial misses a smooth 0.5"-ish distortion.
    s = half
    hxi = xi + 0.5 * (xi / s) ** 2 - 0.4 * (xi / s) * (eta / s) + rng.normal(0, 0.08, n)
    heta = eta - 0.6 * (eta / s) ** 2 + rng.normal(0, 0.08, n)
    ra_h, dec_h = from_tangent_plane(hxi, heta, RA0, DEC0)
    scale = 1.7
    x, y = xi / scale + 530.0, eta / scale + 530.0
    snr = np.concatenate([rng.uniform(35.0, 400.0, n_stars), rng.uniform(40.0, 60.0, n_transients)])
    fwhm = np.full(n, 3.0)
    err = 0.6 * fwhm / 2.3548 / snr * 1.2
    measured = pd.DataFrame(
        {
            "NUMBER": np.arange(1, n + 1, dtype=np.int64),
            "ra": ra_h,
            "dec": dec_h,
            "X_IMAGE": x,
            "Y_IMAGE": y,
            "XWIN_IMAGE": x,
            "YWIN_IMAGE": y,
            "ERRAWIN_IMAGE": err * 1.1,
            "ERRBWIN_IMAGE": err * 0.9,
            "XMIN_IMAGE": x - 3,
            "XMAX_IMAGE": x + 3,
            "YMIN_IMAGE": y - 3,
            "YMAX_IMAGE": y + 3,
            "SNR_WIN": snr,
            "FLAGS": np.zeros(n, dtype=np.int16),
            "FWHM_IMAGE": fwhm + rng.uniform(-0.05, 0.05, n),
            "ELONGATION": 1.05 + rng.uniform(0, 0.05, n),
            "SPREAD_MODEL": np.full(n, 0.001, np.float32),
            "SPREADERR_MODEL": np.full(n, 0.001, np.float32),
            "MAG_PSF": np.full(n, 17.0, np.float32),
            "MAGERR_PSF": np.full(n, 0.05, np.float32),
            "ra_plate": ra_h,
            "dec_plate": dec_h,
            "ra_tan": np.nan,
            "dec_tan": np.nan,
            "astrometry_solution": "plate",
        }
    )
    n_pm = n_stars if n_pm is None else n_pm
    pm = np.where(np.arange(n_stars) < n_pm, 0.0, np.nan)
    gaia = pd.DataFrame(
        {
            "source_id": np.arange(n_stars, dtype=np.int64),
            "ra": truth[0][:n_stars],
            "dec": truth[1][:n_stars],
            "pmra": pm,
            "pmdec": pm,
            "ref_epoch": 2016.0,
            "phot_g_mean_mag": rng.uniform(12.0, 19.0, n_stars),
        }
    )
    tile = tmp_path / "tile"
    plate = write_json_atomic(tile / "work" / "plate.json", {"ok": True, "epoch": 1955.3})
    return (
        tile,
        _write(tile / "work" / "measured.parquet", measured),
        {"gaia": _write(tmp_path / "gaia.parquet", gaia)},
        {"path": str(plate), "sha256": file_sha256(plate)},
    )


def _run(tmp_path: Path, cfg: VascoConfig, **kw):
    tile, measured, cats, plate = _tile(tmp_path, **kw)
    ast = astrometry(tile, measured, cats, plate, RA0, DEC0, cfg)
    mat = match(tile, ast["outputs"]["table"], cats, plate, DEC0, cfg)
    sel = select(tile, mat["outputs"]["table"], mat["info"], cfg, astrometry=ast["outputs"]["astrometry"])
    spr = spread_model(tile, sel["outputs"]["selected"], {}, {}, cfg)
    vet = vetoes(tile, spr["outputs"]["table"], {}, cfg)
    return ast, sel, vet


CFG = VascoConfig.model_validate({"matching": {"catalogs": ["gaia"]}, "extraction": {"psf_fit_scope": "all"}})


def test_a_well_tied_tile_is_trusted_and_gets_position_uncertainties(tmp_path):
    ast, sel, vet = _run(tmp_path, CFG)
    summary = ast["info"]["astrometry"]
    assert summary["status"] == "fit" and summary["median_residual_arcsec"] < 0.2
    assert summary["pixel_scale_arcsec"] == pytest.approx(1.7, rel=0.01)
    assert 0.05 < summary["fit_scatter_arcsec"] < 0.3
    trust = sel["info"]["astrometry_trust"]
    assert trust["trusted"] and trust["match_stars"] == 306 and trust["match_with_counterpart"] == 300
    det = pd.read_parquet(vet["outputs"]["detections"]["path"])
    for col in ("pos_err_arcsec", "pos_err_centroid_arcsec", "pos_err_fit_arcsec"):
        assert det[col].dtype == np.float64 and np.isfinite(det[col]).all(), col
    assert (det["pos_err_fit_arcsec"] == summary["fit_scatter_arcsec"]).all()
    assert (det["pos_err_arcsec"] >= det["pos_err_centroid_arcsec"]).all()
    # Centroid error grows as SNR falls (it is ERRAWIN/ERRBWIN at the pixel scale).
    order = np.argsort(det["SNR_WIN"].to_numpy())
    assert np.all(np.diff(det["pos_err_centroid_arcsec"].to_numpy()[order]) <= 1e-12)
    cands = pd.read_parquet(vet["outputs"]["candidates"]["path"])
    assert len(cands) == 6 and cands["astrometry_trusted"].all() and (cands["astrometry_trust_reason"] == "").all()


def test_a_tile_with_a_forced_fallback_is_marked_and_so_are_its_candidates(tmp_path):
    # Only 8 Gaia stars have a proper motion: too few for a polynomial, the fit falls back to a shift.
    ast, sel, vet = _run(tmp_path, CFG, n_pm=8)
    assert ast["info"]["astrometry"]["status"] == "fallback_shift"
    trust = sel["info"]["astrometry_trust"]
    # Every star still has its counterpart: the fallback alone makes the tile untrusted.
    assert not trust["trusted"] and trust["trust_reasons"] == ["fit_fallback_shift"]
    assert trust["match_fraction"] > 0.95 and "shift" in trust["trust_reason"]
    cands = pd.read_parquet(vet["outputs"]["candidates"]["path"])
    assert len(cands) == 6
    assert cands["astrometry_trusted"].dtype == bool and not cands["astrometry_trusted"].any()
    assert (cands["astrometry_trust_reason"] == "fit_fallback_shift").all()
    det = pd.read_parquet(vet["outputs"]["detections"]["path"])
    assert not det["astrometry_trusted"].any()
    # Eight pairs still measure a scatter: the uncertainties stay finite.
    assert np.isfinite(det["pos_err_arcsec"]).all()


def test_changing_a_trust_threshold_reruns_selection_not_the_fit(tmp_path):
    tile, measured, cats, plate = _tile(tmp_path)
    ast = astrometry(tile, measured, cats, plate, RA0, DEC0, CFG)
    strict = CFG.model_copy(
        update={
            "astrometry": CFG.astrometry.model_copy(
                update={"trust": AstrometryTrustConfig(max_median_residual_arcsec=0.01)}
            )
        }
    )
    again = astrometry(tile, measured, cats, plate, RA0, DEC0, strict)
    assert again["key"] == ast["key"]
    mat = match(tile, ast["outputs"]["table"], cats, plate, DEC0, strict)
    sel = select(tile, mat["outputs"]["table"], mat["info"], strict, astrometry=ast["outputs"]["astrometry"])
    assert sel["info"]["astrometry_trust"]["trust_reasons"] == ["median_residual"]
    table = pd.read_parquet(sel["outputs"]["selected"]["path"])
    assert (table["astrometry_trust_reason"] == "median_residual").all()
    assert read_json(Path(ast["outputs"]["astrometry"]["path"]))["summary"]["fit_scatter_arcsec"] > 0


# --------------------------------------------------------------------------- survey: summary, astrometry.csv, report


def _record(tid: str, trusted: bool | None, candidates: int, reasons: tuple[str, ...] = ()) -> dict:
    ast = {"solution": "plate", "status": "fit" if trusted else "fallback_shift", "median_residual_arcsec": 0.2}
    if trusted is not None:
        ast.update(
            trusted=trusted,
            trust_reasons=list(reasons),
            trust_reason="; ".join(f"<{r}>" for r in reasons) or None,
            match_fraction=0.9,
        )
    return {
        "tile_id": tid,
        "centre": {"ra": 1.0, "dec": 2.0},
        "plate": {"region": "XE001", "label": "E1", "epoch": 1952.5},
        "status": "ok",
        "reason": None,
        "funnel": {"detections": 3},
        "config_hash": "abc",
        "counts": {"detections": 3, "candidates": candidates},
        "astrometry": ast,
    }


def test_summary_counts_untrusted_tiles_and_their_candidates(tmp_path):
    from vasco.outputs import TileRecord, write_tile_record
    from vasco.publish.merge import build_summary, merge_catalogues

    recs = [
        _record("t1", True, 1),
        _record("t2", False, 2, ("fit_fallback_shift", "match_fraction")),
        _record("t3", None, 1),
    ]
    for rec in recs:
        d = tmp_path / "tiles" / rec["tile_id"]
        trusted = rec["astrometry"].get("trusted", True)
        det = pd.DataFrame(
            {
                "NUMBER": [1, 2, 3],
                "ra": [10.0, 10.1, 10.2],
                "dec": [0.0, 0.1, 0.2],
                "is_candidate": [True, rec["tile_id"] == "t2", False],
                "astrometry_trusted": [trusted] * 3,
            }
        )
        d.mkdir(parents=True)
        det.to_parquet(d / "detections.parquet", index=False)
        write_tile_record(d, TileRecord.model_validate(rec))
    counts = merge_catalogues(tmp_path, recs)
    assert counts["candidates"] == 4 and counts["candidates_untrusted"] == 2
    trust = build_summary(tmp_path, recs, counts, "abc").to_dict()["astrometry_trust"]
    assert trust["tiles_untrusted"] == 1 and trust["tiles_trusted"] == 1 and trust["tiles_unassessed"] == 1
    assert trust["candidates_untrusted"] == 2 and trust["tile_candidates_untrusted"] == 2
    assert trust["by_reason"] == {"fit_fallback_shift": 1, "match_fraction": 1}
    assert trust["untrusted_tiles"] == {"t2": "<fit_fallback_shift>; <match_fraction>"}
    cands = pd.read_parquet(tmp_path / "candidates.parquet")
    assert cands.loc[cands["tile_id"] == "t2", "astrometry_trusted"].eq(False).all()


def test_astrometry_table_has_the_trust_columns():
    from vasco.qc.astrometry import astrometry_table, summarize_astrometry

    table = astrometry_table(
        [_record("t1", True, 0), _record("t2", False, 0, ("median_residual",)), _record("t3", None, 0)]
    )
    assert table["trusted"].tolist()[:2] == [True, False] and pd.isna(table["trusted"].iloc[2])
    assert table["trust_reasons"].tolist()[:2] == ["", "median_residual"] and pd.isna(table["trust_reasons"].iloc[2])
    assert table["match_fraction"].dtype == np.float64
    assert summarize_astrometry(table)["untrusted_tiles"] == 1


def test_report_page_lists_untrusted_tiles_with_their_reasons(tmp_path):
    import html

    from vasco.report.page import write_index

    hostile = "</td><script>alert(1)</script>"
    summary = {
        "tiles": {"planned": 2, "processed": 2},
        "detections": 6,
        "candidates": 3,
        "funnel": {},
        "astrometry_trust": {
            "tiles_untrusted": 1,
            "candidates_untrusted": 2,
            "untrusted_tiles": {"t002.0000+02.0000": "fit fell back " + hostile},
        },
    }
    page = write_index(
        tmp_path / "s" / "report" / "index.html",
        summary=summary,
        plots={},
        tiles=[],
        coverage={},
        gallery=None,
        config_hash="x",
        vasco_version="0",
        created="now",
    ).read_text()
    assert 'id="untrusted-tiles"' in page and "t002.0000+02.0000" in page and "2 candidate(s)" in page
    assert html.escape("fit fell back " + hostile) in page and "<script>alert(1)" not in page
    clean = dict(summary, astrometry_trust={"tiles_untrusted": 0, "candidates_untrusted": 0, "untrusted_tiles": {}})
    page = write_index(
        tmp_path / "s" / "report" / "index.html",
        summary=clean,
        plots={},
        tiles=[],
        coverage={},
        gallery=None,
        config_hash="x",
        vasco_version="0",
        created="now",
    ).read_text()
    assert "Untrusted astrometry" in page and 'id="untrusted-tiles"' not in page


def test_gallery_cards_carry_the_mark_and_the_uncertainty():
    from vasco.report.gallery import _card_data

    cands = pd.DataFrame(
        {
            "ra": [10.0, 11.0],
            "dec": [1.0, 2.0],
            "tile_id": ["t1", "t2"],
            "astrometry_trust_reason": pd.array(["", "fit_fallback_shift"], dtype="string"),
            "pos_err_arcsec": [0.15, 0.4],
        }
    )
    cards = _card_data(cands, [None, None])
    assert [c["untrusted"] for c in cards] == ["", "fit_fallback_shift"]
    assert [c["poserr"] for c in cards] == [0.15, 0.4]


def test_vasco_status_lists_untrusted_tiles(tmp_path, capsys):
    from flows.cli import main
    from vasco.survey_tree import survey_status

    (tmp_path / "positions.csv").write_text("ra,dec\n10,10\n20,20\n")
    for rec in (
        _record("t010.0000+10.0000", True, 0),
        _record("t020.0000+20.0000", False, 1, ("fit_fallback_none", "match_fraction")),
    ):
        write_json_atomic(tmp_path / "tiles" / rec["tile_id"] / "tile.json", rec)
    st = survey_status(tmp_path)
    assert st.untrusted == {"fit_fallback_none": ["t020.0000+20.0000"], "match_fraction": ["t020.0000+20.0000"]}
    assert main(["status", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "astrometry not trusted: 1 processed tile(s)" in out and "match_fraction: 1  t020.0000+20.0000" in out


def test_funnel_artifact_mentions_untrusted_tiles():
    from vasco.report.markdown import funnel_markdown

    summary = {
        "funnel": {"detections": 3},
        "tiles": {"planned": 1, "processed": 1, "rejected": 0, "failed": 0},
        "failures": {},
        "astrometry_trust": {"tiles_untrusted": 1, "candidates_untrusted": 2, "by_reason": {"fit_fallback_shift": 1}},
    }
    text = funnel_markdown(summary, [])
    assert "Astrometry not trusted on 1 processed tile(s), with 2 candidate(s)" in text
    assert "`fit_fallback_shift` 1" in text
    summary["astrometry_trust"] = {"tiles_untrusted": 0, "candidates_untrusted": 0, "by_reason": {}}
    assert "not trusted" not in funnel_markdown(summary, [])


def test_a_pass2_table_without_windowed_errors_fails_the_step_with_a_reason(tmp_path):
    from vasco.steps.base import StepError

    tile, measured, cats, plate = _tile(tmp_path)
    table = pd.read_parquet(measured["path"]).drop(columns=["ERRAWIN_IMAGE"])
    bad = _write(tile / "work" / "measured.parquet", table)
    with pytest.raises(StepError, match="ERRAWIN_IMAGE") as err:
        astrometry(tile, bad, cats, plate, RA0, DEC0, CFG)
    assert err.value.reason == "FAIL_PASS2"

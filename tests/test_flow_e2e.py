"""End to end: the survey flow on two small synthetic tiles, under Prefect's test harness."""

import shutil

import pandas as pd
import pytest

from vasco.io import file_sha256, read_json

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        shutil.which("source-extractor") is None and shutil.which("sex") is None, reason="SExtractor is not installed"
    ),
]


@pytest.fixture(scope="module")
def survey(tmp_path_factory, harness):
    from flows.survey import survey_flow

    out = tmp_path_factory.mktemp("survey")
    pos = out / "positions.in.csv"
    # One ordinary field, and one south of Dec -30 where PS1 does not reach.
    pos.write_text("ra,dec\n132.8250,11.8000\n60.0,-30.2\n")
    summary = survey_flow(out=str(out), tiles=2, seed=1, size_arcmin=10.0, workers=2, positions=str(pos))
    return out, summary


def test_outputs_contract(survey):
    out, summary = survey
    assert summary["tiles"]["planned"] == 2
    assert summary["tiles"]["processed"] + summary["tiles"]["rejected"] + summary["tiles"]["failed"] == 2
    assert summary["tiles"]["processed"] == 2, summary
    assert (out / "config.json").exists() and (out / "summary.json").exists()
    dets = pd.read_parquet(out / "detections.parquet")
    cands = pd.read_parquet(out / "candidates.parquet")
    assert dets["ra"].dtype == "float64" and dets["dec"].dtype == "float64"
    assert {"tile_id", "plate_region", "plate_label", "plate_epoch", "counterpart_sep_arcsec"} <= set(dets.columns)
    assert {"tile_id", "plate_region"} <= set(cands.columns)
    assert len(dets) == summary["detections"] and len(cands) == summary["candidates"]
    assert cands["is_candidate"].all() and cands["passes_cuts"].all()
    assert cands["counterpart_sep_arcsec"].isna().all()
    for tid in dets["tile_id"].unique():
        rec = read_json(out / "tiles" / tid / "tile.json")
        assert list(rec)[:7] == ["tile_id", "centre", "plate", "status", "reason", "funnel", "config_hash"]
        assert rec["status"] == "ok" and rec["plate"]["region"].startswith("XE")
        assert 1949 < rec["plate"]["epoch"] < 1959
        funnel = list(rec["funnel"].values())
        assert all(a >= b for a, b in zip(funnel, funnel[1:]))
    inj = summary["injection"]
    assert inj["injected"] > 0 and set(inj["false_by_class"]) == {
        "high_proper_motion",
        "defect",
        "galaxy",
        "spike",
        "asteroid",
        "infrared",
        "variable",
        "other",
    }
    assert not list(out.rglob("*.part"))
    # The funnel is posted to Prefect as a markdown artifact.
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        arts = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["vasco-survey-funnel"]))
        )
    assert arts and "| no_gaia |" in arts[0].data


def test_ps1_skipped_south_of_its_footprint(survey):
    out, _ = survey
    south = [p for p in (out / "tiles").iterdir() if "-30.2000" in p.name][0]
    rec = read_json(south / "tile.json")
    assert "ps1" in rec["catalogs"]["skipped"] and rec["catalogs"]["used"] == ["gaia"]
    assert "no_ps1" not in rec["funnel"]


def test_second_run_reuses_everything(survey):
    from flows.survey import survey_flow

    out, summary = survey
    before = file_sha256(out / "candidates.parquet")
    mtimes = {p: p.stat().st_mtime_ns for p in (out / "tiles").rglob("work/*.ldac")}
    again = survey_flow(
        out=str(out), tiles=2, seed=1, size_arcmin=10.0, workers=2, positions=str(out / "positions.in.csv")
    )
    assert again["candidates"] == summary["candidates"]
    assert file_sha256(out / "candidates.parquet") == before
    # SExtractor did not run again: its catalogues were not rewritten.
    assert {p: p.stat().st_mtime_ns for p in mtimes} == mtimes


@pytest.fixture(scope="module")
def distorted(tmp_path_factory, harness):
    """One tile whose header is imperfect: a 0.8" RMS distortion and the TAN WCS 2.3" off."""
    import json

    from flows.survey import survey_flow

    out = tmp_path_factory.mktemp("distorted")
    cfg = out / "config.in.json"
    cfg.write_text(json.dumps({"synthetic": {"distortion_arcsec": 0.8, "tan_offset_arcsec": 2.3}}))
    pos = out / "positions.in.csv"
    pos.write_text("ra,dec\n132.8250,11.8000\n")
    summary = survey_flow(
        out=str(out), tiles=1, seed=1, size_arcmin=15.0, workers=1, positions=str(pos), config_file=str(cfg)
    )
    return out, summary


def test_plate_solution_in_the_flow(distorted):
    """The tile flow picks the plate polynomial, fits it to Gaia and publishes corrected positions."""
    import numpy as np

    from vasco.matching.crossmatch import nearest_within

    out, summary = distorted
    (tile,) = list((out / "tiles").iterdir())
    ast = read_json(tile / "tile.json")["astrometry"]
    assert ast["solution"] == "plate" and ast["choice"] == "raw_residuals"
    assert ast["solutions_in_header"] == ["plate", "tan"]
    assert ast["two_solution_offset_arcsec"] == pytest.approx(2.3, abs=0.01)
    assert ast["fitted"] and ast["degree"] >= 2 and ast["n_ref"] >= 50
    assert ast["raw_median_residual_arcsec"] > 0.3
    assert ast["median_residual_arcsec"] <= 0.15
    assert (tile / "qc" / "astrometry.png").read_bytes()[:4] == b"\x89PNG"
    # The published positions are the corrected ones; the header's stay beside them.
    dets = pd.read_parquet(out / "detections.parquet")
    assert {"ra_header", "dec_header", "ra_plate", "ra_tan", "astrometry_solution"} <= set(dets.columns)
    assert dets["ra"].dtype == "float64" and (dets["ra"] != dets["ra_header"]).mean() > 0.99
    # Independent of Gaia: the synthetic truth agrees better with the corrected positions.
    truth = pd.read_parquet(tile / "truth.parquet")
    bright = dets[(dets["SNR_WIN"] > 30) & (dets["FLAGS"] == 0)]
    _, after = nearest_within(bright["ra"], bright["dec"], truth["ra"], truth["dec"], 3.0)
    _, before = nearest_within(bright["ra_header"], bright["dec_header"], truth["ra"], truth["dec"], 3.0)
    assert np.nanmedian(after) < 0.6 * np.nanmedian(before)
    # The survey's astrometric quality table and summary.
    table = pd.read_csv(out / "astrometry.csv")
    assert table["tile_id"].tolist() == [tile.name] and table.loc[0, "solution"] == "plate"
    assert summary["astrometry"]["tiles"] == 1
    assert summary["astrometry"]["median_of_tile_medians_arcsec"] <= 0.15


def test_trust_and_position_uncertainty_in_the_flow(distorted):
    """A well-fitted tile is trusted; SExtractor's own centroid errors give each detection an
    uncertainty that grows as SNR falls."""
    import numpy as np

    out, summary = distorted
    (tile,) = list((out / "tiles").iterdir())
    ast = read_json(tile / "tile.json")["astrometry"]
    assert ast["trusted"] is True and ast["trust_reasons"] == [] and ast["match_catalog"] == "gaia"
    assert ast["match_fraction"] >= 0.8 and ast["match_stars"] > 50
    assert ast["pixel_scale_arcsec"] == pytest.approx(1.70, abs=0.01) and 0.0 < ast["fit_scatter_arcsec"] < 0.3
    dets = pd.read_parquet(out / "detections.parquet")
    cols = ["pos_err_arcsec", "pos_err_centroid_arcsec", "pos_err_fit_arcsec"]
    assert all(dets[c].dtype == np.float64 for c in cols)
    assert np.isfinite(dets[cols].to_numpy()).all()
    assert dets["astrometry_trusted"].all() and (dets["astrometry_trust_reason"] == "").all()
    bins = [
        dets.loc[(dets["SNR_WIN"] > lo) & (dets["SNR_WIN"] <= hi), "pos_err_centroid_arcsec"].median()
        for lo, hi in ((10, 30), (30, 100), (100, np.inf))
    ]
    assert bins[0] > bins[1] > bins[2] > 0
    assert summary["astrometry_trust"]["tiles_untrusted"] == 0 and summary["astrometry_trust"]["tiles_trusted"] == 1


def test_vetoes_funnel_and_compare_with_the_injected_list(survey, tmp_path):
    """The later vetoes are funnel stages; `vasco compare` finds every recovered transient."""
    import numpy as np

    from flows.cli import main

    out, summary = survey
    funnel = list(summary["funnel"])
    assert funnel[-2:] == ["not_hpm", "unique"] and "no_gaia" in funnel
    for tid in pd.read_parquet(out / "detections.parquet")["tile_id"].unique():
        rec = read_json(out / "tiles" / tid / "tile.json")
        assert rec["vetoes"]["stages"][0] == "not_bright_star"
    truth = pd.concat([pd.read_parquet(p) for p in sorted((out / "tiles").glob("*/truth.parquet"))])
    injected = truth.loc[truth["cls"] == "transient", ["ra", "dec"]]
    pub = tmp_path / "injected.csv"
    injected.to_csv(pub, index=False)
    assert main(["compare", str(out), "--published", str(pub)]) == 0
    res = read_json(out / "compare" / "injected.json")
    assert res["published_in_footprint"] == len(injected) > 0
    rows = pd.read_csv(out / "compare" / "injected.csv")
    # Every injected transient is attributed to a stage; the ones that survived are candidates at < 5".
    assert rows["stage"].notna().all() and set(rows["stage"]) <= {
        "not_detected",
        "flags",
        "snr",
        "spread_model",
        "fwhm",
        "elongation",
        "extent",
        "mad_clip",
        "no_gaia",
        "no_ps1",
        "not_bright_star",
        "no_archive",
        "not_asteroid",
        "not_variable",
        "in_supercosmos",
        "not_hpm",
        "dedup",
        "candidate",
    }
    recovered = rows[rows["stage"] == "candidate"]
    assert len(recovered) == summary["injection"]["true_candidates"]
    assert (recovered["cand_sep_arcsec"] < 5.0).all()
    assert res["recall_candidates"]["5"] == pytest.approx(len(recovered) / len(rows))
    assert np.isclose(sum(res["removed_by_stage"].values()), len(rows))


@pytest.fixture(scope="module")
def overlapping(tmp_path_factory, harness):
    """Two 10' tiles 6' apart on the synthetic sky: a 4'-wide overlap seen twice."""
    from flows.survey import survey_flow

    out = tmp_path_factory.mktemp("overlap")
    pos = out / "positions.in.csv"
    pos.write_text("ra,dec\n150.0000,20.0000\n150.1064,20.0000\n")
    summary = survey_flow(out=str(out), tiles=2, seed=2, size_arcmin=10.0, workers=2, positions=str(pos))
    return out, summary


def test_overlapping_tiles_are_deduplicated(overlapping):
    import numpy as np

    from vasco.matching.crossmatch import nearest_within

    out, summary = overlapping
    assert summary["tiles"]["processed"] == 2
    dets = pd.read_parquet(out / "detections.parquet")
    dup = pd.read_parquet(out / "duplicates.parquet")
    # The same sky in both tiles: many sources measured twice, each group one primary.
    assert summary["duplicates"]["groups"] > 20 and len(dup) == 2 * summary["duplicates"]["groups"]
    assert (dup.groupby("dup_group")["is_primary"].sum() == 1).all()
    assert (dets["n_measurements"] > 1).sum() == len(dup)
    cands = pd.read_parquet(out / "candidates.parquet")
    assert len(cands) == summary["candidates"] == summary["funnel"]["unique"]
    assert summary["duplicates"]["tile_candidates"] >= len(cands)
    # Each candidate source once: no two candidates within the dedup radius.
    if len(cands) > 1:
        idx, _ = nearest_within(
            cands["ra"].to_numpy(), cands["dec"].to_numpy(), cands["ra"].to_numpy(), cands["dec"].to_numpy(), 0.5
        )
        assert (idx == np.arange(len(cands))).all()
    # No measurement of a candidate source has a counterpart (edge copies included).
    grouped = dets[dets["dup_group"].isin(cands["dup_group"].dropna())]
    assert grouped["counterpart_sep_arcsec"].isna().all()
    # The same object ids in both truths where the tiles overlap.
    t1, t2 = (pd.read_parquet(p) for p in sorted((out / "tiles").glob("*/truth.parquet")))
    shared = set(t1["obj_id"]) & set(t2["obj_id"])
    assert len(shared) > 50


def test_dry_run_orchestrates_without_pixels_and_leaves_tiles_pending(tmp_path, harness):
    from flows.survey import survey_flow
    from vasco.config import VascoConfig
    from vasco.resume import pending_tiles
    from vasco.roots import open_root
    from vasco.sky.sampling import sample_positions

    out = tmp_path / "dry"
    summary = survey_flow(out=str(out), tiles=5, seed=3, workers=2, dry_run=True, batch=3)
    # A batch of 3 of the 5 tiles ran; none made pixels.
    recs = [read_json(p) for p in (out / "tiles").glob("*/tile.json")]
    assert len(recs) == 3 and all(r["dry_run"] for r in recs)
    assert not list(out.rglob("*.fits")) and summary["tiles"]["processed"] == 3
    assert summary["tiles"]["not_run"] == 2
    # Dry-run tiles never count as done for a real run.
    pos = sample_positions(5, 3)
    cfg = VascoConfig.read(out / "config.json")
    assert len(pending_tiles(open_root(out), pos, cfg.science_hash())) == 5


def test_a_tile_whose_fit_falls_back_is_marked_through_to_the_report(tmp_path_factory, harness):
    """A fit forced to fall back to a shift (too few stars for any polynomial): the tile is processed,
    untrusted, its candidates carry the mark, the summary counts them and the report lists the tile."""
    import json

    from flows.survey import survey_flow

    out = tmp_path_factory.mktemp("untrusted")
    cfg = out / "config.in.json"
    # Denser injected transients than the default, and no bright-star veto (which takes the few
    # there are here), give this 10' tile candidates.
    cfg.write_text(
        json.dumps(
            {
                "astrometry": {"fit_min_stars_per_term": 100000},
                "synthetic": {"n_transients": 300},
                "vetoes": {"spikes": {"enabled": False}},
            }
        )
    )
    pos = out / "positions.in.csv"
    pos.write_text("ra,dec\n132.8250,11.8000\n")
    summary = survey_flow(
        out=str(out), tiles=1, seed=1, size_arcmin=10.0, workers=1, positions=str(pos), config_file=str(cfg)
    )
    (tile,) = list((out / "tiles").iterdir())
    rec = read_json(tile / "tile.json")
    assert rec["status"] == "ok" and rec["astrometry"]["status"] == "fallback_shift"
    assert rec["astrometry"]["trusted"] is False and "fit_fallback_shift" in rec["astrometry"]["trust_reasons"]
    cands = pd.read_parquet(out / "candidates.parquet")
    assert len(cands) == summary["candidates"] > 0
    assert not cands["astrometry_trusted"].any()
    assert cands["astrometry_trust_reason"].str.contains("fit_fallback_shift").all()
    trust = summary["astrometry_trust"]
    assert trust["tiles_untrusted"] == 1 and trust["candidates_untrusted"] == len(cands)
    assert trust["by_reason"]["fit_fallback_shift"] == 1 and tile.name in trust["untrusted_tiles"]
    page = (out / "report" / "index.html").read_text()
    assert 'id="untrusted-tiles"' in page and tile.name in page and "fell back to a shift" in page

"""End to end: the survey flow on two small synthetic tiles, under Prefect's test harness."""

import shutil

import pandas as pd
import pytest
from prefect.testing.utilities import prefect_test_harness

from vasco.io import file_sha256, read_json

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("source-extractor") is None and shutil.which("sex") is None,
                       reason="SExtractor is not installed"),
]


@pytest.fixture(scope="module")
def harness():
    with prefect_test_harness(server_startup_timeout=120):
        yield


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
        "high_proper_motion", "defect", "galaxy", "spike", "other"}
    assert not list(out.rglob("*.part"))
    # The funnel is posted to Prefect as a markdown artifact.
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        arts = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["vasco-survey-funnel"])))
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
    again = survey_flow(out=str(out), tiles=2, seed=1, size_arcmin=10.0, workers=2,
                        positions=str(out / "positions.in.csv"))
    assert again["candidates"] == summary["candidates"]
    assert file_sha256(out / "candidates.parquet") == before
    # SExtractor did not run again: its catalogues were not rewritten.
    assert {p: p.stat().st_mtime_ns for p in mtimes} == mtimes

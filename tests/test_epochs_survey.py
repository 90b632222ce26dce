"""`vasco epochs` on a synthetic survey whose plate XE133 has a header date a day off (slow: SExtractor)."""

import shutil

import pandas as pd
import pytest

from vasco.io import read_json

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        shutil.which("source-extractor") is None and shutil.which("sex") is None, reason="SExtractor is not installed"
    ),
]

TRUE_XE133 = "1955-04-23T07:37:00"  # the plate table's date: the sky is rendered at it
OFF_XE133 = "1955-04-24T07:37:00"  # the header's, a day off
XE132 = "1953-02-14T11:35:00"


@pytest.fixture(scope="module")
def survey(tmp_path_factory, harness):
    from flows.survey import survey_flow

    out = tmp_path_factory.mktemp("epochs")
    pos = out / "positions.in.csv"
    pos.write_text("ra,dec\n210.2,53.3\n200.9,53.2\n")  # one tile on XE133, one on XE132
    cfg = out / "cfg.toml"
    cfg.write_text(
        "[synthetic]\nn_asteroids_per_deg2 = 600.0\nheader_date_offset_days = {XE133 = 1.0}\n\n"
        '[plates]\ndate_source = "header"\n'
    )
    summary = survey_flow(
        out=str(out), tiles=2, seed=1, size_arcmin=12.0, workers=2, positions=str(pos), config_file=str(cfg)
    )
    return out, summary


def _tiles(out):
    recs = [read_json(p) for p in sorted((out / "tiles").glob("*/tile.json"))]
    return {r["plate"]["region"]: r for r in recs}


def test_tiles_record_both_dates(survey):
    out, summary = survey
    assert summary["tiles"]["processed"] == 2, summary
    recs = _tiles(out)
    a, b = recs["XE133"]["plate"], recs["XE132"]["plate"]
    assert a["date_obs_header"].startswith(OFF_XE133) and a["date_obs_table"].startswith(TRUE_XE133)
    assert a["date_obs"] == a["date_obs_header"] and a["date_rule"].startswith("header")
    assert a["date_conflict"] and a["date_conflict_hours"] == pytest.approx(24.0)
    assert a["exposure_min"] == 50.0 and (a["epoch_mid"] - a["epoch"]) * 365.25 * 1440 == pytest.approx(25.0)
    assert b["date_obs_header"] == b["date_obs_table"] and not b["date_conflict"]
    assert b["exposure_min"] == 40.0


def test_epochs_names_the_true_date(survey, capsys):
    from flows.cli import main

    out, _ = survey
    # the header date misled the asteroid veto on XE133: asteroids among the false candidates
    assert summary_asteroid_false(out) > 0
    assert main(["epochs", str(out)]) == 0
    table = pd.read_csv(out / "epochs.csv").set_index("region")
    print(table.to_string())  # shown with -s
    xe133, xe132 = table.loc["XE133"], table.loc["XE132"]
    assert xe133["verdict"] == "table" and xe133["date_obs"].startswith(TRUE_XE133)
    assert xe133["hits_table"] >= 5 and xe133["hits_header"] <= 1
    assert xe132["verdict"] == "header=table" and xe132["date_obs"].startswith(XE132)
    js = read_json(out / "epochs.json")
    assert js["skybot"] == "synthetic" and js["plates"]["XE133"]["decided"]
    assert {c["label"] for c in js["plates"]["XE133"]["candidates"]} == {"table=header-1d", "header", "header+1d"}
    # deterministic: the same survey gives the same files
    first = (out / "epochs.csv").read_bytes(), (out / "epochs.json").read_bytes()
    assert main(["epochs", str(out)]) == 0
    assert ((out / "epochs.csv").read_bytes(), (out / "epochs.json").read_bytes()) == first
    # the report page shows the table (vasco epochs rebuilt it)
    page = (out / "report" / "index.html").read_text()
    assert (
        'id="epochs-table"' in page
        and "XE133" in page
        and "by more than <code>plates.conflict_hours</code>: 1 (" in page
    )


def summary_asteroid_false(out):
    return int(read_json(out / "summary.json")["injection"]["false_by_class"]["asteroid"])


def test_survey_uses_the_verdict(survey):
    from flows.survey import survey_flow

    out, _ = survey
    if not (out / "epochs.json").is_file():
        pytest.skip("needs test_epochs_names_the_true_date first")
    cfg = out / "cfg2.toml"
    cfg.write_text((out / "cfg.toml").read_text().replace('"header"', '"epochs"'))
    summary = survey_flow(
        out=str(out),
        tiles=2,
        seed=1,
        size_arcmin=12.0,
        workers=2,
        positions=str(out / "positions.in.csv"),
        config_file=str(cfg),
    )
    recs = _tiles(out)
    a, b = recs["XE133"]["plate"], recs["XE132"]["plate"]
    assert a["date_obs"].startswith(TRUE_XE133) and a["date_rule"].startswith("epochs")
    assert b["date_obs"].startswith(XE132) and b["date_rule"].startswith("epochs")
    # with the true date the synthetic SkyBoT finds the asteroids again: none is a false candidate
    assert summary["injection"]["false_by_class"]["asteroid"] == 0

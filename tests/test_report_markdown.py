"""The text of the survey's Prefect artifacts, made without Prefect (vasco.report.markdown)."""

from __future__ import annotations

import pandas as pd

from vasco.report.markdown import (
    CANDIDATE_COLUMNS,
    candidate_rows,
    funnel_markdown,
    products_markdown,
    report_markdown,
    tile_funnel_table,
)

RECORDS = [
    {
        "tile_id": "t001.0000+01.0000",
        "status": "ok",
        "reason": None,
        "plate": {"region": "XE001"},
        "funnel": {"detections": 1200, "cuts": 40},
        "astrometry": {"trusted": True},
        "counts": {"detections": 1200, "candidates": 2},
    },
    {"tile_id": "t002.0000+02.0000", "status": "failed", "reason": "FAIL_DSS", "plate": {}, "funnel": {}},
    {
        "tile_id": "t003.0000+03.0000",
        "status": "rejected",
        "reason": "REJECT_EDGE",
        "plate": None,
        "funnel": {"detections": 7, "vetoes": 2},
    },
]

SUMMARY = {
    "funnel": {"detections": 1207, "unique": 3},
    "tiles": {"planned": 3, "processed": 1, "rejected": 1, "failed": 1},
    "failures": {"FAIL_DSS": 1, "REJECT_EDGE": 1},
    "funnel_vs_paper": [
        {"stage": "detections", "ours": 1207, "ours_kept": None, "paper": 5399, "paper_kept": 0.5},
        {"stage": "gaia", "ours": None, "ours_kept": 0.25, "paper": 100, "paper_kept": None},
    ],
    "injection": {
        "recovered": 3,
        "recoverable": 4,
        "completeness": 0.75,
        "purity": None,
        "false_by_class": {"noise": 1},
    },
}


def test_funnel_markdown_has_totals_paper_tiles_failures_and_injection():
    text = funnel_markdown(SUMMARY, RECORDS)
    assert text.startswith("# VASCO survey funnel\n")
    assert "| detections | 1,207 |" in text and "| unique | 3 |" in text
    assert "| detections | 1,207 |  | 5,399 | 50.0% |" in text
    assert "| gaia | - | 25.0% | 100 |  |" in text
    assert "Tiles: 3 planned, 1 processed, 1 rejected, 1 failed." in text
    assert "Rejected or failed tiles by reason: `FAIL_DSS` 1, `REJECT_EDGE` 1" in text
    assert "3/4 recoverable transients recovered (completeness 0.750); purity n/a" in text
    assert "not trusted" not in text  # no astrometry_trust block


def test_tile_funnel_table_puts_failed_and_rejected_first_with_every_stage():
    lines = tile_funnel_table(RECORDS)
    assert lines[3] == "| tile | plate | status | reason | detections | cuts | vetoes |"
    rows = lines[5:]
    assert [r.split(" | ")[0] for r in rows] == ["| t002.0000+02.0000", "| t003.0000+03.0000", "| t001.0000+01.0000"]
    assert rows[1] == "| t003.0000+03.0000 | - | rejected | REJECT_EDGE | 7 |  | 2 |"
    assert rows[2] == "| t001.0000+01.0000 | XE001 | ok |  | 1,200 | 40 |  |"


def test_tile_funnel_table_says_when_rows_are_left_out():
    lines = tile_funnel_table(RECORDS, max_rows=2)
    assert len([r for r in lines if r.startswith("| t00")]) == 2
    assert lines[-1] == "(first 2 of 3 tiles; every tile's funnel is in its tile.json)"


def test_products_markdown_lists_the_products_and_residual_plots_under_the_root():
    quiet = {**RECORDS[0], "tile_id": "t004.0000+04.0000", "counts": {"detections": 900, "candidates": 0}}
    records = [*RECORDS, quiet]
    text = products_markdown("s3://bucket/run", records)
    assert "Survey root: `s3://bucket/run`" in text
    assert "| unique candidates | `s3://bucket/run/candidates.parquet` |" in text
    assert "- t001.0000+01.0000: `s3://bucket/run/tiles/t001.0000+01.0000/qc/astrometry.png`" in text
    # The report draws residual plots for tiles with candidates (or untrusted astrometry) only.
    assert "t002.0000+02.0000" not in text and "t004.0000+04.0000" not in text
    assert "t004.0000+04.0000/qc/astrometry.png" in products_markdown("s3://bucket/run", records, "all")
    assert "Astrometric residual plots" not in products_markdown("s3://bucket/run", records, "none")


def test_report_markdown_names_the_page_and_counts():
    man = {
        "candidates": 5,
        "stamps": 4,
        "tiles": {"ok": 2},
        "coverage_deg2": 0.5,
        "plots": {"a": "report/plots/a.png"},
        "tile_plots": ["tiles/x/qc/tile.png"],
        "timings": {"total_s": 1.25},
    }
    text = report_markdown("runs/demo", "/abs/runs/demo/report/index.html", man)
    assert text.splitlines()[0] == "# VASCO report of runs/demo"
    assert "- report page: `/abs/runs/demo/report/index.html`" in text
    assert "5 candidates with 4 stamps" in text and "2 tiles, 0.50 deg²" in text
    assert "`report/plots/a.png`" in text and "per-tile QC plots: 1" in text and "built in 1.2 s" in text


def test_candidate_rows_keep_known_columns_in_order_and_round():
    cands = pd.DataFrame(
        {"dec": [1.123456789, 2.0, 3.0], "extra": [1, 2, 3], "ra": [10.0, 11.0, 12.0], "tile_id": ["a", "b", "c"]}
    )
    rows = candidate_rows(cands, 2)
    assert rows == [{"tile_id": "a", "ra": 10.0, "dec": 1.123457}, {"tile_id": "b", "ra": 11.0, "dec": 2.0}]
    assert list(rows[0]) == [c for c in CANDIDATE_COLUMNS if c in cands.columns]

"""Prefect tasks of the survey flow: publish the catalogues, build the report.

Orchestration only: each task reads and writes the survey root (fetching
tiles from, and uploading products to, a remote one), calls the library
(:mod:`vasco.publish`, :mod:`vasco.qc.astrometry`, :mod:`vasco.report`)
and posts the artifacts whose text :mod:`vasco.report.markdown` makes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from vasco.config import VascoConfig
from vasco.io import write_parquet_atomic
from vasco.publish.dedup import find_duplicates
from vasco.publish.merge import build_summary, merge_catalogues, read_tile_records
from vasco.qc.astrometry import astrometry_table, summarize_astrometry, write_astrometry_table
from vasco.report.markdown import candidate_rows, funnel_markdown, products_markdown, report_markdown
from vasco.roots import local_root, open_root

__all__ = ["publish", "report", "SURVEY_PRODUCTS"]

#: Survey-level files (uploaded to a remote root when the survey is published).
SURVEY_PRODUCTS = (
    "config.json",
    "positions.csv",
    "summary.json",
    "candidates.parquet",
    "detections.parquet",
    "duplicates.parquet",
    "astrometry.csv",
)

#: Rows of the candidates table artifact (the full list is in candidates.parquet).
_TABLE_ROWS = 500


@task(name="publish-catalogue")
def publish(out: str, tile_ids: list[str], config_hash: str) -> dict[str, Any]:
    """Merge the tile catalogues, write the astrometric quality table
    (``astrometry.csv``) and summary.json, and post the funnel artifact."""
    store = open_root(out)
    root = local_root(store)
    if not store.is_local:
        _fetch_tiles(store, root, tile_ids)
    out = str(root)
    records = read_tile_records(Path(out), tile_ids)
    cfg = VascoConfig.read(Path(out) / "config.json")
    dup = find_duplicates(Path(out), records, cfg.matching.dedup_radius_arcsec)
    write_parquet_atomic(Path(out) / "duplicates.parquet", dup)
    counts = merge_catalogues(Path(out), records, dup)
    ast = astrometry_table(records, cfg.report.tile_plots)
    write_astrometry_table(Path(out) / "astrometry.csv", ast)
    duplicates = {
        "radius_arcsec": cfg.matching.dedup_radius_arcsec,
        "groups": int(dup["dup_group"].nunique()) if len(dup) else 0,
        "measurements_in_groups": int(len(dup)),
        "tile_candidates": int(counts["tile_candidates"]),
    }
    summary = build_summary(
        Path(out), records, counts, config_hash, duplicates=duplicates, astrometry=summarize_astrometry(ast)
    ).to_dict()
    create_markdown_artifact(
        key="vasco-survey-funnel",
        markdown=funnel_markdown(summary, records),
        description=f"VASCO funnel for {out}",
    )
    cands = pd.read_parquet(Path(out) / "candidates.parquet")
    create_table_artifact(
        key="vasco-survey-candidates",
        table=candidate_rows(cands, _TABLE_ROWS),
        description=f"VASCO candidates of {out} (first {_TABLE_ROWS} of {len(cands)}; all in candidates.parquet)",
    )
    if not store.is_local:
        for name in SURVEY_PRODUCTS:
            if (root / name).exists():
                store.put_file(root / name, name)
    create_markdown_artifact(
        key="vasco-survey-products",
        markdown=products_markdown(store.url, records, cfg.report.tile_plots),
        description=f"Where the outputs and QC products of {store.url} are",
    )
    return summary


@task(name="build-report")
def report(out: str) -> str | None:
    """Build ``report/`` (QC plots, MOC, gallery, index.html) and post it as an artifact.

    A report that cannot be built is logged, never fails the survey: its
    catalogues are already published.  Returns the report page's location.
    """
    from vasco.report.build import build_report

    logger = get_run_logger()
    store = open_root(out)
    root = local_root(store)
    try:
        man = build_report(root)
    except Exception as exc:  # noqa: BLE001 - the survey's results stand without their report
        logger.warning(
            "the report of %s was not built: %s: %s (try `vasco report %s`)", store.url, type(exc).__name__, exc, root
        )
        return None
    if not store.is_local:
        store.put_tree(root / "report", "report")
        for rel in [*man["tile_plots"], *man["astrometry_plots"]]:
            store.put_file(root / rel, rel)
    index = store.uri("report/index.html") if not store.is_local else str((root / man["index"]).resolve())
    create_markdown_artifact(
        key="vasco-survey-report",
        markdown=report_markdown(store.url, index, man),
        description=f"VASCO report of {store.url}",
    )
    logger.info("report: %s", index)
    return index


def _fetch_tiles(store: Any, root: Path, tile_ids: list[str]) -> None:
    """Copy each committed tile's record and detections from a remote root into the local one."""
    for tid in tile_ids:
        rel = f"tiles/{tid}"
        if not store.exists(f"{rel}/tile.json"):
            continue
        for name in ("detections.parquet", "tile.json"):
            if store.exists(f"{rel}/{name}"):
                store.get_file(f"{rel}/{name}", root / "tiles" / tid / name)

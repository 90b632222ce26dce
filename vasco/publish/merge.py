"""Tile records, the merged survey catalogues and the survey summary."""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute  # noqa: F401 - pa.compute
import pyarrow.parquet as pq

from vasco.io import atomic_path
from vasco.outputs import (
    AstrometrySummary,
    DuplicatesSummary,
    InjectionSummary,
    PaperRow,
    ProvenanceSummary,
    SurveySummary,
    TileTally,
    TrustSummary,
    read_tile_record,
    write_summary,
)
from vasco.publish.paper import funnel_vs_paper
from vasco.qc.injection import combine_scores
from vasco.sources.provenance import summarize_provenance

__all__ = [
    "read_tile_records",
    "merge_catalogues",
    "build_summary",
    "astrometry_trust_summary",
]


def read_tile_records(out_dir: Path, tile_ids: Iterable[str]) -> list[dict[str, Any]]:
    """tile.json of each tile id, validated (:func:`vasco.outputs.read_tile_record`), in the given order,
    as the dicts written (:meth:`vasco.outputs.TileRecord.to_dict`).

    A missing one, or one that cannot be read or does not fit the model, is
    reported as not run (``{"tile_id", "status": "missing", "reason": "NOT_RUN"}``).
    """
    records = []
    for tid in tile_ids:
        path = Path(out_dir) / "tiles" / tid / "tile.json"
        try:
            records.append(read_tile_record(path).to_dict())
        except (OSError, ValueError):
            records.append({"tile_id": tid, "status": "missing", "reason": "NOT_RUN"})
    return records


def _tile_rows(out_dir: Path, rec: Mapping[str, Any], mine: pd.DataFrame | None) -> pa.Table:
    """One tile's detections with the survey columns and the deduplication flags
    (``mine``: this tile's rows of the duplicates table, or None)."""
    table = pq.read_table(Path(out_dir) / "tiles" / rec["tile_id"] / "detections.parquet")
    n = table.num_rows
    plate = rec["plate"]
    extra = {
        "tile_id": pa.array([rec["tile_id"]] * n, pa.string()),
        "plate_region": pa.array([plate.get("region")] * n, pa.string()),
        "plate_label": pa.array([plate.get("label")] * n, pa.string()),
        "plate_epoch": pa.array([plate.get("epoch")] * n, pa.float64()),
    }
    for i, (key, col) in enumerate(extra.items()):
        table = table.add_column(i, key, col)
    number = table.column("NUMBER").to_numpy() if n else np.zeros(0, dtype=np.int64)
    is_cand = table.column("is_candidate").to_numpy(zero_copy_only=False).astype(bool) if n else np.zeros(0, bool)
    group = np.full(n, -1, dtype=np.int64)
    n_meas = np.ones(n, dtype=np.int64)
    primary = np.ones(n, dtype=bool)
    final = is_cand.copy()
    if mine is not None and len(mine):
        pos = pd.Index(number).get_indexer(mine["NUMBER"].to_numpy())
        group[pos] = mine["dup_group"].to_numpy()
        n_meas[pos] = mine["n_measurements"].to_numpy()
        primary[pos] = mine["is_primary"].to_numpy(bool)
        final[pos] = mine["is_primary"].to_numpy(bool) & mine["group_is_candidate"].to_numpy(bool)
    table = table.append_column("dup_group", pa.array(np.where(group >= 0, group, 0), pa.int64(), mask=group < 0))
    table = table.append_column("n_measurements", pa.array(n_meas, pa.int64()))
    table = table.append_column("is_primary", pa.array(primary, pa.bool_()))
    table = table.append_column("is_survey_candidate", pa.array(final, pa.bool_()))
    return table.replace_schema_metadata(None)


#: Rows per Parquet row group of the merged catalogues.  Tiles are buffered up
#: to this many rows before a row group is written, so a survey of 100,000
#: tiles makes a few hundred row groups, not 100,000 (whose footer metadata
#: would fill memory and slow every reader).
ROW_GROUP_ROWS = 250_000


class _Buffered:
    """A Parquet writer that writes row groups of ``ROW_GROUP_ROWS`` rows."""

    def __init__(self, path: Path, schema: pa.Schema, rows: int) -> None:
        self.writer = pq.ParquetWriter(path, schema, compression="zstd")
        self.parts: list[pa.Table] = []
        self.n = 0
        self.rows = rows

    def write(self, table: pa.Table) -> None:
        if table.num_rows:
            self.parts.append(table)
            self.n += table.num_rows
        if self.n >= self.rows:
            self.flush()

    def flush(self) -> None:
        if self.parts:
            self.writer.write_table(pa.concat_tables(self.parts), row_group_size=max(self.n, 1))
        self.parts, self.n = [], 0

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self.writer.close()


def merge_catalogues(
    out_dir: Path,
    records: Iterable[Mapping[str, Any]],
    dup: pd.DataFrame | None = None,
    row_group_rows: int = ROW_GROUP_ROWS,
) -> dict[str, int]:
    """Write ``DIR/detections.parquet`` and ``DIR/candidates.parquet``.

    Tiles are streamed one at a time (rows of each tile in SExtractor NUMBER
    order, tiles in the order given) and written in row groups of
    ``row_group_rows`` rows, so memory stays bounded by one row group
    whatever the number of tiles.
    Each row gains tile_id, plate_region, plate_label, plate_epoch and the
    global deduplication flags (:func:`vasco.publish.dedup.find_duplicates`):
    ``dup_group`` (null for a source measured once), ``n_measurements``,
    ``is_primary`` and ``is_survey_candidate``.  ``detections.parquet`` keeps
    every measurement; ``candidates.parquet`` holds each candidate source once
    (its primary measurement, and only if no measurement of it has a
    counterpart).  Returns the row counts, ``tile_candidates`` (the sum of
    the tiles' own candidates, before deduplication) and
    ``candidates_untrusted`` (candidates whose tile's astrometry is not
    trusted, ``astrometry_trusted`` false).
    """
    ok = [r for r in records if r.get("status") == "ok"]
    counts = {"detections": 0, "candidates": 0, "tile_candidates": 0, "candidates_untrusted": 0}
    by_tile: dict[str, pd.DataFrame] = {}
    if dup is not None and len(dup):
        by_tile = {str(tid): rows for tid, rows in dup.groupby("tile_id", sort=False)}
    final_det = Path(out_dir) / "detections.parquet"
    final_cand = Path(out_dir) / "candidates.parquet"
    with atomic_path(final_det, suffix=".parquet") as tmp_det, atomic_path(final_cand, suffix=".parquet") as tmp_cand:
        writers: dict[str, _Buffered] = {}
        schema: pa.Schema | None = None
        try:
            for rec in ok:
                table = _tile_rows(out_dir, rec, by_tile.get(rec["tile_id"]))
                if schema is None:
                    schema = table.schema
                    writers["d"] = _Buffered(tmp_det, schema, row_group_rows)
                    writers["c"] = _Buffered(tmp_cand, schema, row_group_rows)
                for field in schema:
                    if field.name not in table.column_names:
                        table = table.append_column(field, pa.nulls(table.num_rows, field.type))
                table = table.select(schema.names).cast(schema)
                writers["d"].write(table)
                cand = table.filter(table.column("is_survey_candidate"))
                writers["c"].write(cand)
                counts["detections"] += table.num_rows
                counts["candidates"] += cand.num_rows
                counts["tile_candidates"] += int(pa.compute.sum(table.column("is_candidate")).as_py() or 0)
                if "astrometry_trusted" in cand.column_names:
                    # Nulls (a tile without the column) are not counted as untrusted.
                    untrusted = pa.compute.invert(cand.column("astrometry_trusted"))
                    counts["candidates_untrusted"] += int(pa.compute.sum(untrusted).as_py() or 0)
            if schema is None:
                # No tile finished: empty files with no columns still mark the merge done.
                for tmp in (tmp_det, tmp_cand):
                    pq.write_table(pa.table({"tile_id": pa.array([], pa.string())}), tmp)
        finally:
            for w in writers.values():
                w.close()
    return counts


def build_summary(
    out_dir: Path,
    records: Sequence[Mapping[str, Any]],
    counts: Mapping[str, int],
    config_hash: str,
    duplicates: Mapping[str, Any] | None = None,
    astrometry: Mapping[str, Any] | None = None,
) -> SurveySummary:
    """Write ``DIR/summary.json`` (:func:`vasco.outputs.write_summary`) and return it.

    ``tiles``: planned (all positions), processed (status ok), rejected,
    failed, not_run; ``failures`` counts tiles by reason token and
    ``failed_tiles`` lists the rejected and failed tile ids by reason; ``funnel``
    sums the per-tile funnels of processed tiles, step by step; for the
    synthetic sky ``injection`` scores candidates against the truth
    (:mod:`vasco.qc.injection`); ``astrometry_trust`` counts the tiles whose
    astrometry is not trusted and the candidates on them
    (:func:`astrometry_trust_summary`); ``provenance`` sums the tiles'
    provenance blocks (:func:`vasco.sources.provenance.summarize_provenance`);
    ``duplicates`` (the deduplication figures) and ``astrometry``
    (:func:`vasco.qc.astrometry.summarize_astrometry`) are written when given.
    """
    status = Counter(r.get("status") for r in records)
    reasons = Counter(str(r.get("reason")) for r in records if r.get("status") in ("rejected", "failed"))
    funnel: OrderedDict[str, int] = OrderedDict()
    for r in records:
        if r.get("status") == "ok":
            for step, n in r["funnel"].items():
                funnel[step] = funnel.get(step, 0) + int(n)
    if funnel:
        # Survey level: each candidate source once (overlapping tiles deduplicated).
        funnel["unique"] = int(counts.get("candidates", 0))
    summary = SurveySummary(
        tiles=TileTally(
            planned=len(records),
            processed=status.get("ok", 0),
            rejected=status.get("rejected", 0),
            failed=status.get("failed", 0),
            not_run=status.get("missing", 0),
        ),
        detections=int(counts.get("detections", 0)),
        candidates=int(counts.get("candidates", 0)),
        funnel=funnel,
        funnel_vs_paper=[PaperRow.model_validate(row) for row in funnel_vs_paper(funnel)],
        failures=dict(sorted(reasons.items())),
        failed_tiles={
            reason: sorted(
                str(r.get("tile_id"))
                for r in records
                if r.get("status") in ("rejected", "failed") and r.get("reason") == reason
            )
            for reason in sorted(reasons)
        },
        config_hash=config_hash,
        astrometry_trust=TrustSummary.model_validate(astrometry_trust_summary(records, counts)),
        # Services asked (URLs, tables, queries, first/last query time) and tool versions, over all tiles.
        provenance=ProvenanceSummary.model_validate(summarize_provenance(records)),
    )
    scores = [r["injection"] for r in records if r.get("status") == "ok" and r.get("injection")]
    if scores:
        summary.injection = InjectionSummary.model_validate(combine_scores(scores))
    if duplicates is not None:
        summary.duplicates = DuplicatesSummary.model_validate(duplicates)
    if astrometry is not None:
        summary.astrometry = AstrometrySummary.model_validate(astrometry)
    write_summary(out_dir, summary)
    return summary


def astrometry_trust_summary(records: Iterable[Mapping[str, Any]], counts: Mapping[str, int]) -> dict[str, Any]:
    """Processed tiles whose astrometry cannot support a 5\" "no counterpart" claim, and their candidates.

    ``tiles_untrusted`` (and ``tiles_trusted``, ``tiles_unassessed``: tile
    records without a trust decision, e.g. written by an older version),
    ``tile_candidates_untrusted`` (the untrusted tiles' own candidates, before
    deduplication), ``candidates_untrusted`` (survey candidates, each source
    once: ``counts['candidates_untrusted']`` of :func:`merge_catalogues`),
    ``by_reason`` (tiles per reason token; a tile can have several) and
    ``untrusted_tiles`` (tile id -> the reason in words).
    """
    ok = [r for r in records if r.get("status") == "ok" and not r.get("dry_run")]
    untrusted: dict[str, str] = {}
    reasons: Counter[str] = Counter()
    tile_cands = trusted = unassessed = 0
    for r in ok:
        ast = r.get("astrometry") or {}
        if "trusted" not in ast:
            unassessed += 1
        elif ast["trusted"]:
            trusted += 1
        else:
            untrusted[str(r["tile_id"])] = str(ast.get("trust_reason") or ";".join(ast.get("trust_reasons") or []))
            reasons.update(ast.get("trust_reasons") or [])
            tile_cands += int((r.get("counts") or {}).get("candidates") or 0)
    return {
        "tiles_trusted": trusted,
        "tiles_untrusted": len(untrusted),
        "tiles_unassessed": unassessed,
        "tile_candidates_untrusted": tile_cands,
        "candidates_untrusted": int(counts.get("candidates_untrusted", 0)),
        "by_reason": dict(sorted(reasons.items())),
        "untrusted_tiles": dict(sorted(untrusted.items())),
    }

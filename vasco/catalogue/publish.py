"""Tile records, the merged survey catalogues and the survey summary."""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from vasco.io import atomic_path, read_json, write_json_atomic
from vasco.qc.injection import combine_scores

__all__ = [
    "TILE_STATUSES",
    "write_tile_record",
    "read_tile_records",
    "merge_catalogues",
    "build_summary",
]

TILE_STATUSES = ("ok", "rejected", "failed")
_REQUIRED = ("tile_id", "centre", "plate", "status", "reason", "funnel", "config_hash")


def write_tile_record(tile_dir: Path, record: Mapping[str, Any]) -> dict[str, Any]:
    """Validate and write ``tile.json`` atomically.

    Required keys: tile_id, centre {ra, dec}, plate {region, label, epoch},
    status (ok|rejected|failed), reason (token or None), funnel (ordered
    step -> count), config_hash.  Other keys are kept after them.
    """
    missing = [k for k in _REQUIRED if k not in record]
    if missing:
        raise ValueError(f"tile record for {tile_dir}: missing {missing}")
    if record["status"] not in TILE_STATUSES:
        raise ValueError(f"tile record for {tile_dir}: status {record['status']!r} not in {TILE_STATUSES}")
    if record["status"] != "ok" and not record["reason"]:
        raise ValueError(f"tile record for {tile_dir}: status {record['status']} needs a reason token")
    ordered: dict[str, Any] = {k: record[k] for k in _REQUIRED}
    ordered.update({k: v for k, v in record.items() if k not in ordered})
    write_json_atomic(Path(tile_dir) / "tile.json", ordered)
    return ordered


def read_tile_records(out_dir: Path, tile_ids: Iterable[str]) -> list[dict[str, Any]]:
    """tile.json of each tile id, in the given order; a missing one is reported as not run."""
    records = []
    for tid in tile_ids:
        path = Path(out_dir) / "tiles" / tid / "tile.json"
        try:
            records.append(read_json(path))
        except (OSError, ValueError):
            records.append({"tile_id": tid, "status": "missing", "reason": "NOT_RUN"})
    return records


def _tile_rows(out_dir: Path, rec: Mapping[str, Any], name: str) -> pa.Table:
    table = pq.read_table(Path(out_dir) / "tiles" / rec["tile_id"] / name)
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
    return table.replace_schema_metadata(None)


def merge_catalogues(out_dir: Path, records: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """Write ``DIR/detections.parquet`` and ``DIR/candidates.parquet``.

    Tiles are streamed one at a time (rows of each tile in SExtractor NUMBER
    order, tiles in the order given), so memory stays bounded by one tile.
    Each row gains tile_id, plate_region, plate_label and plate_epoch.
    """
    ok = [r for r in records if r.get("status") == "ok"]
    counts: dict[str, int] = {}
    for name in ("detections.parquet", "candidates.parquet"):
        final = Path(out_dir) / name
        rows = 0
        with atomic_path(final, suffix=".parquet") as tmp:
            writer: pq.ParquetWriter | None = None
            schema: pa.Schema | None = None
            try:
                for rec in ok:
                    table = _tile_rows(out_dir, rec, name)
                    if schema is None:
                        schema = table.schema
                        writer = pq.ParquetWriter(tmp, schema, compression="zstd")
                    assert writer is not None
                    for field in schema:
                        if field.name not in table.column_names:
                            table = table.append_column(field, pa.nulls(table.num_rows, field.type))
                    writer.write_table(table.select(schema.names).cast(schema))
                    rows += table.num_rows
                if writer is None:
                    # No tile finished: an empty file with no columns still marks the merge done.
                    pq.write_table(pa.table({"tile_id": pa.array([], pa.string())}), tmp)
            finally:
                if writer is not None:
                    writer.close()
        counts[name.split(".")[0]] = rows
    return counts


def build_summary(
    out_dir: Path,
    records: list[Mapping[str, Any]],
    counts: Mapping[str, int],
    config_hash: str,
) -> dict[str, Any]:
    """Write ``DIR/summary.json`` and return it.

    ``tiles``: planned (all positions), processed (status ok), rejected,
    failed, not_run; ``failures`` counts tiles by reason token; ``funnel``
    sums the per-tile funnels of processed tiles, step by step; for the
    synthetic sky ``injection`` scores candidates against the truth
    (:mod:`vasco.qc.injection`).
    """
    status = Counter(r.get("status") for r in records)
    reasons = Counter(r.get("reason") for r in records if r.get("status") in ("rejected", "failed"))
    funnel: OrderedDict[str, int] = OrderedDict()
    for r in records:
        if r.get("status") == "ok":
            for step, n in r["funnel"].items():
                funnel[step] = funnel.get(step, 0) + int(n)
    summary: dict[str, Any] = {
        "tiles": {
            "planned": len(records),
            "processed": status.get("ok", 0),
            "rejected": status.get("rejected", 0),
            "failed": status.get("failed", 0),
            "not_run": status.get("missing", 0),
        },
        "detections": int(counts.get("detections", 0)),
        "candidates": int(counts.get("candidates", 0)),
        "funnel": funnel,
        "failures": dict(sorted(reasons.items())),
        "config_hash": config_hash,
    }
    scores = [r["injection"] for r in records if r.get("status") == "ok" and r.get("injection")]
    if scores:
        summary["injection"] = combine_scores(scores)
    write_json_atomic(Path(out_dir) / "summary.json", summary)
    return summary

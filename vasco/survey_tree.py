"""A local survey folder as its user sees it: progress, clean-up, forgetting work.

Plain functions on the folder a survey writes (``DIR/tiles/<tile_id>/...``,
``DIR/positions.csv``, ``DIR/summary.json``); the ``vasco status``, ``vasco
clean`` and ``vasco reset`` commands print what they return.
"""

from __future__ import annotations

import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from vasco.outputs import read_summary, read_tile_record

__all__ = ["SurveyStatus", "planned_tile_ids", "survey_status", "clean_survey", "reset_tile", "INTERMEDIATE"]

#: What ``clean`` removes: per tile the intermediate tables and models, and Prefect's result cache.
INTERMEDIATE = ("tiles/*/work", ".vasco-cache")


@dataclass
class SurveyStatus:
    """Where a survey folder stands."""

    planned: int
    by_status: dict[str, int]
    not_run: list[str]
    failed: dict[str, list[str]] = field(default_factory=dict)
    candidates: int | None = None
    untrusted: dict[str, list[str]] = field(default_factory=dict)  # trust reason token -> processed tiles

    def lines(self) -> list[str]:
        """The status as text lines, failed tiles by reason."""
        done = sum(self.by_status.values())
        out = [f"tiles: {self.planned} planned, {done} with a result, {len(self.not_run)} not run yet"]
        out.append(
            "  " + ", ".join(f"{k} {v}" for k, v in sorted(self.by_status.items()))
            if self.by_status
            else "  no tile has a result yet"
        )
        for reason, tiles in sorted(self.failed.items()):
            shown = ", ".join(tiles[:8]) + (f" ... (+{len(tiles) - 8})" if len(tiles) > 8 else "")
            out.append(f"  {reason}: {len(tiles)}  {shown}")
        if self.untrusted:
            n = len({t for tiles in self.untrusted.values() for t in tiles})
            out.append(f"astrometry not trusted: {n} processed tile(s)")
            for reason, tiles in sorted(self.untrusted.items()):
                shown = ", ".join(tiles[:8]) + (f" ... (+{len(tiles) - 8})" if len(tiles) > 8 else "")
                out.append(f"  {reason}: {len(tiles)}  {shown}")
        if self.candidates is not None:
            out.append(f"candidates (published): {self.candidates}")
        return out


def _check_survey(folder: Path) -> Path:
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"{folder}: no such folder")
    if not (folder / "tiles").is_dir() and not (folder / "positions.csv").is_file():
        raise ValueError(f"{folder}: not a survey folder (no tiles/ and no positions.csv)")
    return folder


def planned_tile_ids(folder: Path) -> list[str]:
    """The tile ids of the survey's ``positions.csv``, in its order (empty if it has none)."""
    from vasco.sky.sampling import tile_id

    pos = folder / "positions.csv"
    if not pos.is_file():
        return []
    table = pd.read_csv(pos)
    if "tile_id" in table.columns:
        return [str(t) for t in table["tile_id"]]
    return [tile_id(float(r), float(d)) for r, d in zip(table["ra"], table["dec"])]


def survey_status(folder: Path) -> SurveyStatus:
    """Count a survey folder's tiles by status, list failed and rejected ones by reason, those not run, and the
    processed tiles whose astrometry is not trusted (by trust reason token)."""
    folder = _check_survey(folder)
    records: dict[str, dict[str, Any]] = {}
    for path in sorted((folder / "tiles").glob("*/tile.json")):
        try:
            rec = read_tile_record(path).to_dict()
        except (OSError, ValueError):  # unreadable, or not a tile record (RecordError)
            rec = {"status": "unreadable", "reason": "UNREADABLE_TILE_JSON"}
        records[path.parent.name] = rec
    planned = planned_tile_ids(folder) or sorted(records)
    status = Counter(str(r.get("status")) for r in records.values())
    failed: dict[str, list[str]] = {}
    untrusted: dict[str, list[str]] = {}
    for tid, rec in records.items():
        if rec.get("status") != "ok":
            failed.setdefault(str(rec.get("reason")), []).append(tid)
        elif (rec.get("astrometry") or {}).get("trusted") is False:
            for reason in rec["astrometry"].get("trust_reasons") or ["unknown"]:
                untrusted.setdefault(str(reason), []).append(tid)
    candidates = None
    if (folder / "summary.json").is_file():
        candidates = read_summary(folder / "summary.json").candidates
    return SurveyStatus(
        planned=len(planned),
        by_status=dict(status),
        not_run=[t for t in planned if t not in records],
        failed=failed,
        candidates=candidates,
        untrusted=untrusted,
    )


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def clean_survey(folder: Path, dry_run: bool = False) -> tuple[list[Path], int]:
    """Remove the intermediate files (:data:`INTERMEDIATE`) of a survey folder.

    Catalogues, tile records, step records, cutouts, reference catalogues and
    QC plots stay.  A finished tile is not run again afterwards; a tile that
    is not finished re-runs the steps whose outputs were removed.  Returns the
    paths removed (or that would be, with ``dry_run``) and their size in bytes.
    """
    folder = _check_survey(folder)
    paths = sorted(p for pattern in INTERMEDIATE for p in folder.glob(pattern) if p.exists())
    size = sum(_size(p) for p in paths)
    if not dry_run:
        for p in paths:
            shutil.rmtree(p) if p.is_dir() else p.unlink()
    return paths, size


def reset_tile(folder: Path, tile: str, step: str | None = None) -> list[Path]:
    """Forget a tile, or one step of it, so the next survey run does it again.

    Without ``step``: the tile's whole folder goes (it is run from the start).
    With ``step``: that step's record goes, and ``tile.json`` with it; the next
    run redoes the step and every step after it whose inputs then change.
    Returns what was removed.

    Raises
    ------
    ValueError
        If the tile, or the step's record, does not exist (naming the ones that do).
    """
    folder = _check_survey(folder)
    tile_dir = folder / "tiles" / tile
    if not tile_dir.is_dir() or "/" in tile or tile in ("", ".", ".."):
        raise ValueError(f"{folder}: no tile {tile!r} (see `vasco status {folder}`)")
    if step is None:
        shutil.rmtree(tile_dir)
        return [tile_dir]
    record = tile_dir / "steps" / f"{step}.json"
    if not record.is_file():
        steps = sorted(p.stem for p in (tile_dir / "steps").glob("*.json"))
        raise ValueError(f"tile {tile}: no step {step!r} (its steps: {', '.join(steps) or 'none'})")
    removed = [record]
    record.unlink()
    if (tile_dir / "tile.json").exists():
        (tile_dir / "tile.json").unlink()
        removed.append(tile_dir / "tile.json")
    return removed

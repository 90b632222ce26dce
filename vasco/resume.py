"""Resuming a survey: which tiles are still to run, and what a lost tile run leaves behind.

A tile is done when its ``tile.json`` in the survey root says so for this
configuration and VASCO version (:func:`vasco.roots.is_finished`); a new run
of the survey (or the next scheduled one) takes the others.  A tile run that
ended without writing ``tile.json`` is recorded as failed, so the survey's
summary counts it and ``--retry-failed`` picks it up.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vasco.config import VascoConfig
from vasco.roots import LEASE_NAME, is_finished, stored_tile_record
from vasco.sky.sampling import TilePosition

__all__ = ["planned_positions", "pending_tiles", "tile_status", "record_lost_tile", "published_and_current"]


def planned_positions(cfg: VascoConfig, positions: str | Path | None = None) -> tuple[list[TilePosition], int]:
    """The survey's tile positions: those of a ``positions`` CSV, else sampled as the configuration says.

    Two positions that round to one tile id would share a folder: the first
    is kept.  Returns the positions and how many repeats were left out.
    """
    from vasco.sky.sampling import read_positions, sample_positions

    if positions:
        pos = read_positions(Path(positions))
    else:
        pos = sample_positions(cfg.survey.tiles, cfg.survey.seed, dec_min=cfg.survey.dec_min)
    first: dict[str, TilePosition] = {}
    for p in pos:
        first.setdefault(p.tile_id, p)
    return list(first.values()), len(pos) - len(first)


def published_and_current(out: str | Path, cfg: VascoConfig, positions: list[TilePosition]) -> dict[str, Any] | None:
    """The survey's ``summary.json`` when a new run of it would change nothing, else None.

    That is, in a local survey root: the run's ``config.json`` is this
    configuration and ``positions.csv`` these tiles; every tile is finished
    (:func:`pending_tiles` finds none, ``vasco epochs`` verdicts included);
    ``summary.json`` is of this configuration, covers these tiles and is newer
    than every ``tile.json``; and, when the survey builds its report, the
    report is newer than the summary.  A remote root always publishes again
    (None).
    """
    from vasco.io import read_json
    from vasco.roots import local_root, open_root
    from vasco.sky.sampling import read_positions

    store = open_root(str(out))
    if not store.is_local:
        return None
    root = local_root(store)
    summary_path = root / "summary.json"
    try:
        if (root / "config.json").read_text() != cfg.to_json() + "\n":
            return None
        if [p.tile_id for p in read_positions(root / "positions.csv")] != [p.tile_id for p in positions]:
            return None
        summary = read_json(summary_path)
        published = summary_path.stat().st_mtime_ns
        if not isinstance(summary, dict) or summary.get("config_hash") != cfg.science_hash():
            return None
        if (summary.get("tiles") or {}).get("planned") != len(positions):
            return None
        if cfg.report.after_survey and (root / "report" / "report.json").stat().st_mtime_ns < published:
            return None
        for p in positions:
            if (root / "tiles" / p.tile_id / "tile.json").stat().st_mtime_ns > published:
                return None
    except (OSError, ValueError):
        return None
    from vasco.chain import epochs_verdicts

    if pending_tiles(store, positions, cfg.science_hash(), epochs_verdicts(store, cfg)):
        return None
    return summary


def pending_tiles(
    store: Any, positions: list[TilePosition], config_hash: str, verdicts: dict[str, dict[str, Any]] | None = None
) -> list[TilePosition]:
    """The positions whose tile is not finished with this configuration and code version.

    A tile is finished when its ``tile.json`` says ``ok`` or ``rejected`` for
    the same configuration hash and VASCO version; failed and unfinished tiles
    are pending, so a new run (or the next scheduled one) picks them up.  With
    ``verdicts`` (``plates.date_source = 'epochs'``), so are ok tiles whose
    plate date is not the one ``vasco epochs`` now gives their plate.
    """

    todo = []
    for p in positions:
        rec = stored_tile_record(store, p.tile_id)
        if rec is None or not is_finished(rec, config_hash, verdicts):
            todo.append(p)
    return todo


def tile_status(store: Any, p: TilePosition) -> str | None:
    """The status in a tile's ``tile.json`` (None when it has none, or it is unreadable or invalid)."""
    rec = stored_tile_record(store, p.tile_id)
    return None if rec is None else rec["status"]


def record_lost_tile(store: Any, root: Path, p: TilePosition, cfg: VascoConfig) -> None:
    """A tile whose run ended without writing tile.json (crashed worker): record it as failed.

    Not while another worker holds the tile's lease (it is still running there).
    """
    from vasco.outputs import Centre, PlateInfo, TileRecord, write_tile_record

    rel = f"tiles/{p.tile_id}"
    if store.exists(f"{rel}/tile.json") or store.exists(f"{rel}/{LEASE_NAME}"):
        return
    tile_dir = root / "tiles" / p.tile_id
    tile_dir.mkdir(parents=True, exist_ok=True)
    write_tile_record(
        tile_dir,
        TileRecord(
            tile_id=p.tile_id,
            centre=Centre(ra=p.ra, dec=p.dec),
            plate=PlateInfo(),
            status="failed",
            reason="FAIL_FLOW_RUN",
            funnel={},
            config_hash=cfg.science_hash(),
            error="the tile's flow run ended without writing tile.json (crashed or cancelled)",
        ),
    )
    if not store.is_local:
        store.put_file(tile_dir / "tile.json", f"{rel}/tile.json")

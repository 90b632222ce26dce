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

__all__ = ["pending_tiles", "tile_status", "record_lost_tile"]


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

"""The per-tile flow: acquire -> check plate -> pass 1 + PSFEx -> pass 2 ->
header sky positions -> reference catalogues -> Gaia-tied plate solution ->
counterparts -> cuts -> SPREAD_MODEL (PSF fit where needed) -> later vetoes
and candidates -> tile.json.

The chain of steps is :func:`vasco.chain.run_tile`; this flow runs each step
as its Prefect task (:mod:`tasks.tile_tasks`) and holds the tile's lease.  A
tile that is not POSS-I E ends ``rejected`` and a step that fails (after its
retries) ends the tile ``failed``; both are recorded in ``tile.json`` with a
reason token, and the flow returns normally so the survey goes on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from prefect import flow, get_run_logger

from tasks import tile_tasks as tt
from vasco import __version__, chain
from vasco.chain import epochs_verdicts
from vasco.config import VascoConfig
from vasco.io import remove_temporaries
from vasco.leases import acquire_lease, release_lease
from vasco.outputs import (
    Centre,
    PlateInfo,
    TileRecord,
    write_tile_record,
)
from vasco.roots import (
    LEASE_NAME,
    TILE_UPLOAD_EXCLUDE,
    is_finished,
    lease_owner,
    local_root,
    open_root,
    stored_tile_record,
)
from vasco.sky.sampling import tile_id as make_tile_id

__all__ = ["tile_flow", "run_tile"]

#: A tile's lease lasts this long; a worker that died holding it is replaced after that.
LEASE_TTL_S = 6 * 3600.0


def run_tile(
    ra: float | None,
    dec: float | None,
    out: Path,
    cfg: VascoConfig,
    fits_path: Path | None = None,
    tile_dir: Path | None = None,
    verdicts: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Run one tile's steps as Prefect tasks (inside a flow run) and write its tile.json.

    The chain is :func:`vasco.chain.run_tile`; here each step is its task of
    :mod:`tasks.tile_tasks`, with its results kept under ``out/.vasco-cache``.
    """
    opts = tt.cache_settings(Path(out))

    def steps(name: str) -> Any:
        return getattr(tt, name).with_options(**opts)

    return chain.run_tile(
        ra,
        dec,
        Path(out),
        cfg,
        steps=steps,
        log=get_run_logger(),
        fits_path=fits_path,
        tile_dir=tile_dir,
        verdicts=verdicts,
    )


def _finished_record(
    store: Any, tid: str, cfg: VascoConfig, verdicts: dict[str, dict[str, Any]] | None = None
) -> dict[str, Any] | None:
    """The tile's tile.json if it is finished (:func:`vasco.roots.is_finished`), else None."""
    rec = stored_tile_record(store, tid)
    return rec if rec is not None and is_finished(rec, cfg.science_hash(), verdicts) else None


def _dry_run_tile(ra: float, dec: float, root: Path, cfg: VascoConfig) -> dict[str, Any]:
    """A tile with no pixel work: an empty detections table and its tile.json."""
    from vasco.io import write_parquet_atomic

    tid = make_tile_id(ra, dec)
    tile_dir = root / "tiles" / tid
    empty = pd.DataFrame(
        {
            "NUMBER": pd.Series(dtype="int64"),
            "ra": pd.Series(dtype="float64"),
            "dec": pd.Series(dtype="float64"),
            "is_candidate": pd.Series(dtype="bool"),
        }
    )
    write_parquet_atomic(tile_dir / "detections.parquet", empty)
    return write_tile_record(
        tile_dir,
        TileRecord(
            tile_id=tid,
            centre=Centre(ra=ra, dec=dec),
            plate=PlateInfo.empty(),
            status="ok",
            reason=None,
            funnel={"detections": 0},
            config_hash=cfg.science_hash(),
            vasco_version=__version__,
            size_arcmin=cfg.survey.size_arcmin,
            sky=cfg.sky,
            dry_run=True,
        ),
    )


@flow(name="vasco-tile", log_prints=True)
def tile_flow(
    out: str,
    ra: float | None = None,
    dec: float | None = None,
    config: VascoConfig | None = None,
    fits: str | None = None,
    dry_run: bool = False,
) -> dict[str, Any]:
    """Process one POSS-I tile.

    With ``ra``/``dec``: the tile centred there, into ``out/tiles/<tile_id>/``;
    ``out`` may be a local folder or an fsspec URL (``s3://...``, see
    :mod:`vasco.roots`).  The tile is leased while it runs, so two workers
    given the same tile never process it at once: the second returns
    ``{"status": "busy"}`` and writes nothing.
    With ``fits``: that FITS cutout, into the local folder ``out`` itself (its
    catalogues from ``config.catalogs``, e.g. local files).
    With ``dry_run``: everything but the pixels (lease, records, upload), for
    measuring orchestration: the tile gets an empty detections table and a
    tile.json with ``dry_run`` true.
    """
    cfg = config or VascoConfig()
    if fits is None and (ra is None or dec is None):
        raise ValueError("tile_flow needs ra and dec, or fits")
    if fits is not None:
        verdicts = epochs_verdicts(open_root(out), cfg)
        return run_tile(None, None, Path(out), cfg, fits_path=Path(fits), tile_dir=Path(out), verdicts=verdicts)
    assert ra is not None and dec is not None
    store = open_root(out)
    root = local_root(store)
    tid = make_tile_id(ra, dec)
    lease = f"tiles/{tid}/{LEASE_NAME}"
    owner = lease_owner()
    if not acquire_lease(store, lease, owner, LEASE_TTL_S):
        get_run_logger().warning("tile %s is being processed by another worker; skipped here", tid)
        return {"tile_id": tid, "status": "busy"}
    try:
        verdicts = epochs_verdicts(store, cfg)
        done = _finished_record(store, tid, cfg, verdicts)
        if done is not None and not dry_run:
            # Another worker finished it after this one was handed the tile.
            get_run_logger().info("tile %s is already done (%s); not run again", tid, done["status"])
            return done
        # Under the lease nobody else writes here: partial files are a killed run's.
        for path in remove_temporaries(root / "tiles" / tid):
            get_run_logger().info("tile %s: removed %s, left by a killed run", tid, path.name)
        record = _dry_run_tile(ra, dec, root, cfg) if dry_run else run_tile(ra, dec, root, cfg, verdicts=verdicts)
        if not store.is_local:
            # tile.json goes last: it commits the tile in the shared root.
            store.put_tree(root / "tiles" / tid, f"tiles/{tid}", exclude=TILE_UPLOAD_EXCLUDE)
        return record
    finally:
        release_lease(store, lease, owner)

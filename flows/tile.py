"""The per-tile flow: acquire -> check plate -> pass 1 -> PSFEx -> pass 2 ->
sky positions -> counterparts -> cuts and candidates -> tile.json.

A tile that is not POSS-I E ends ``rejected`` and a step that fails (after
its retries) ends the tile ``failed``; both are recorded in ``tile.json``
with a reason token, and the flow returns normally so the survey goes on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from prefect import flow, get_run_logger

from tasks import tile_tasks as tt
from vasco.config import VascoConfig
from vasco.pipeline import ordered_funnel
from vasco.qc.injection import score_tile
from vasco.sky.sampling import tile_id as make_tile_id

__all__ = ["tile_flow", "run_tile"]


def _empty_plate() -> dict[str, Any]:
    return {"region": None, "label": None, "epoch": None, "date_obs": None}


def run_tile(ra: float, dec: float, out: Path, cfg: VascoConfig) -> dict[str, Any]:
    """Run one tile's tasks in order and write its tile.json (inside a flow run)."""
    logger = get_run_logger()
    out = Path(out)
    tid = make_tile_id(ra, dec)
    tile_dir = out / "tiles" / tid
    opts = tt.cache_settings(out)
    record: dict[str, Any] = {
        "tile_id": tid,
        "centre": {"ra": ra, "dec": dec},
        "plate": _empty_plate(),
        "status": "ok",
        "reason": None,
        "funnel": {},
        "config_hash": cfg.science_hash(),
        "size_arcmin": cfg.survey.size_arcmin,
        "sky": cfg.sky,
    }
    step = "acquire"
    try:
        acq = tt.acquire_tile.with_options(**opts)(tile_dir, ra, dec, cfg)
        image = acq["outputs"]["image"]
        step = "check_plate"
        chk = tt.check_tile.with_options(**opts)(tile_dir, image)
        info = chk["info"]
        record["plate"] = {k: info.get(k) for k in ("region", "label", "epoch", "date_obs")}
        if not info["ok"]:
            record.update(status="rejected", reason=info["reason"])
            logger.warning("tile %s rejected: %s", tid, info["reason"])
            return tt.record_tile(tile_dir, record)
        step = "pass1"
        p1 = tt.sextract_pass1.with_options(**opts)(tile_dir, image, cfg)
        step = "psfex"
        psf = tt.psf_model.with_options(**opts)(tile_dir, p1["outputs"]["catalog"], cfg)
        step = "pass2"
        p2 = tt.sextract_pass2.with_options(**opts)(tile_dir, image, psf["outputs"]["psf"], cfg)
        step = "measure"
        meas = tt.sky_positions.with_options(**opts)(tile_dir, p2["outputs"]["catalog"], image, cfg)
        step = "match"
        catalogs = {k: acq["outputs"][k] for k in ("gaia", "ps1") if k in acq["outputs"]}
        match = tt.crossmatch.with_options(**opts)(
            tile_dir, meas["outputs"]["table"], catalogs, chk["outputs"]["plate"], dec, cfg
        )
        step = "select"
        sel = tt.select_candidates.with_options(**opts)(
            tile_dir, match["outputs"]["table"], match["info"], cfg
        )
    except Exception as exc:  # noqa: BLE001 - one failing tile never stops a survey
        reason = getattr(exc, "reason", None) or f"FAIL_{step.upper()}"
        status = "rejected" if reason.startswith("REJECT_") else "failed"
        record.update(status=status, reason=reason, error=f"{type(exc).__name__}: {exc}"[:500])
        logger.error("tile %s failed at %s: %s", tid, step, exc)
        return tt.record_tile(tile_dir, record)

    record["funnel"] = ordered_funnel(sel["info"])
    record["catalogs"] = {
        "used": match["info"]["catalogs_used"],
        "skipped": match["info"]["catalogs_skipped"],
    }
    record["psf_stars"] = psf["info"].get("psf_stars")
    record["counts"] = {
        "detections": record["funnel"]["detections"],
        "candidates": list(record["funnel"].values())[-1],
    }
    truth = acq["outputs"].get("truth")
    if truth is not None:
        dets = pd.read_parquet(
            sel["outputs"]["detections"]["path"], columns=["ra", "dec", "passes_cuts", "is_candidate"]
        )
        record["injection"] = score_tile(dets, pd.read_parquet(truth["path"]))
    return tt.record_tile(tile_dir, record)


@flow(name="vasco-tile", log_prints=True)
def tile_flow(ra: float, dec: float, out: str, config: VascoConfig | None = None) -> dict[str, Any]:
    """Process one POSS-I tile centred on (ra, dec) into ``out/tiles/<tile_id>/``."""
    cfg = config or VascoConfig()
    return run_tile(ra, dec, Path(out), cfg)

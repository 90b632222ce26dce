"""The per-tile flow: acquire -> check plate -> pass 1 + PSFEx -> pass 2 ->
header sky positions -> reference catalogues -> Gaia-tied plate solution ->
counterparts -> cuts -> SPREAD_MODEL (PSF fit where needed) -> later vetoes
and candidates -> tile.json (and the residual plot).

A tile that is not POSS-I E ends ``rejected`` and a step that fails (after
its retries) ends the tile ``failed``; both are recorded in ``tile.json``
with a reason token, and the flow returns normally so the survey goes on.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path
from typing import Any

import pandas as pd
from prefect import flow, get_run_logger

from tasks import tile_tasks as tt
from vasco import __version__
from vasco.config import VascoConfig
from vasco.extraction.sextractor import tool_versions
from vasco.filters.cuts import ordered_funnel
from vasco.filters.registry import enabled_stage_names
from vasco.io import remove_temporaries
from vasco.leases import acquire_lease, release_lease
from vasco.outputs import (
    AstrometryInfo,
    CatalogsInfo,
    Centre,
    PlateInfo,
    PsfFitInfo,
    RunBy,
    TileCounts,
    TileInjection,
    TileProvenance,
    TileRecord,
    TileTimings,
    VetoesInfo,
    write_tile_record,
)
from vasco.qc.injection import score_tile
from vasco.records import step_timings
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
from vasco.sources.provenance import tile_provenance, utc_now
from vasco.steps.header import image_centre

__all__ = ["tile_flow", "run_tile"]

#: A tile's lease lasts this long; a worker that died holding it is replaced after that.
LEASE_TTL_S = 6 * 3600.0


def epochs_verdicts(store: Any, cfg: VascoConfig) -> dict[str, dict[str, Any]] | None:
    """The per-plate verdicts of ``vasco epochs`` (``epochs.json`` in the survey root), with
    ``plates.date_source = 'epochs'``; None otherwise or when the file is absent."""
    if cfg.plates.date_source != "epochs":
        return None
    from vasco.epochs import read_verdicts

    return read_verdicts(store)


def run_tile(
    ra: float | None,
    dec: float | None,
    out: Path,
    cfg: VascoConfig,
    fits_path: Path | None = None,
    tile_dir: Path | None = None,
    verdicts: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Run one tile's tasks in order and write its tile.json (inside a flow run).

    The tile is ``out/tiles/<tile_id>`` for a sampled position, or
    ``tile_dir`` itself for a user's FITS file (``fits_path``), whose centre
    is read from its header.  ``verdicts``: the plate dates ``vasco epochs``
    chose (used with ``plates.date_source = 'epochs'``).
    """
    logger = get_run_logger()
    started = time.perf_counter()
    run_started = utc_now()  # queries made before this are answers reused from an earlier run
    acq: dict[str, Any] | None = None
    out = Path(out)
    opts = tt.cache_settings(out)
    if fits_path is not None:
        tile_dir = Path(tile_dir or out)
        try:
            acq = tt.acquire_file.with_options(**opts)(tile_dir, Path(fits_path))
            ra, dec = image_centre(acq["outputs"]["image"])
        except Exception as exc:  # noqa: BLE001 - an unreadable file is a failed tile, not a crash
            reason = getattr(exc, "reason", None) or "FAIL_ACQUIRE"
            logger.error("%s: %s", fits_path, exc)
            return tt.record_tile(
                tile_dir,
                TileRecord(
                    tile_id=None,
                    centre=None,
                    plate=PlateInfo.empty(),
                    status="failed",
                    reason=reason,
                    error=f"{type(exc).__name__}: {exc}"[:500],
                    funnel={},
                    config_hash=cfg.science_hash(),
                    vasco_version=__version__,
                    sky="file",
                    source_file=str(fits_path),
                ),
            )
    assert ra is not None and dec is not None
    tid = make_tile_id(ra, dec)
    tile_dir = Path(tile_dir) if tile_dir is not None else out / "tiles" / tid
    record = TileRecord(
        tile_id=tid,
        centre=Centre(ra=ra, dec=dec),
        plate=PlateInfo.empty(),
        status="ok",
        reason=None,
        funnel={},
        config_hash=cfg.science_hash(),
        vasco_version=__version__,
        size_arcmin=cfg.survey.size_arcmin,
        sky=cfg.sky if fits_path is None else "file",
    )
    if fits_path is not None:
        record.source_file = str(fits_path)
    # Who ran it (a worker sets VASCO_WORKER_ID to tell its tiles apart in a pool).
    record.run_by = RunBy(host=socket.gethostname(), pid=os.getpid(), worker=os.environ.get("VASCO_WORKER_ID"))
    cats: dict[str, Any] | None = None
    veto_infos: list[dict[str, Any]] = []
    step = "acquire"
    try:
        if fits_path is None and cfg.sky == "dss":
            acq = tt.acquire_dss.with_options(**opts)(tile_dir, ra, dec, cfg)
        elif fits_path is None:
            acq = tt.acquire_synthetic.with_options(**opts)(tile_dir, ra, dec, cfg)
        assert acq is not None  # from the file (above), DSS or the synthetic sky
        image = acq["outputs"]["image"]
        step = "check_plate"
        chk = tt.check_plate.with_options(**opts)(tile_dir, image, cfg, verdicts)
        info = chk["info"]
        record.plate = PlateInfo(**{k: info.get(k) for k in PlateInfo.model_fields})
        if info.get("date_conflict"):
            logger.warning(
                "tile %s: plate %s header date %s and plate-table date %s differ by %.2f h; using %s",
                tid,
                info.get("region"),
                info.get("date_obs_header"),
                info.get("date_obs_table"),
                info.get("date_conflict_hours"),
                info.get("date_rule"),
            )
        if not info["ok"]:
            # The reason first: a record that is not ok is checked to have one.
            record.reason = info["reason"]
            record.status = "rejected"
            record.provenance = _provenance(acq, None, [], run_started)
            logger.warning("tile %s rejected: %s", tid, info["reason"])
            return tt.record_tile(tile_dir, record)
        step = "psf"
        psf = tt.psf.with_options(**opts)(tile_dir, image, cfg)
        step = "pass2"
        p2 = tt.pass2.with_options(**opts)(tile_dir, image, psf["outputs"]["psf"], cfg)
        step = "measure"
        meas = tt.measure.with_options(**opts)(tile_dir, p2["outputs"]["catalog"], image, cfg)
        step = "catalogs"
        source = cfg.catalogs.resolved(cfg.sky)
        if fits_path is None and source == "synthetic":
            catalogs = {k: acq["outputs"][k] for k in ("gaia", "ps1") if k in acq["outputs"]}
        elif source == "xmatch":
            cats = tt.catalogs_xmatch.with_options(**opts)(tile_dir, meas["outputs"]["table"], dec, cfg)
            catalogs = dict(cats["outputs"])
        else:
            cats = tt.catalogs.with_options(**opts)(tile_dir, ra, dec, cfg)
            catalogs = dict(cats["outputs"])
        step = "astrometry"
        ast = tt.astrometry.with_options(**opts)(
            tile_dir, meas["outputs"]["table"], catalogs, chk["outputs"]["plate"], ra, dec, cfg
        )
        step = "match"
        match = tt.match.with_options(**opts)(
            tile_dir, ast["outputs"]["table"], catalogs, chk["outputs"]["plate"], dec, cfg
        )
        step = "select"
        sel = tt.select.with_options(**opts)(
            tile_dir, match["outputs"]["table"], match["info"], cfg, ast["outputs"]["astrometry"]
        )
        step = "psf_fit"
        spr = tt.spread_model.with_options(**opts)(
            tile_dir, sel["outputs"]["selected"], image, psf["outputs"]["psf"], cfg
        )
        step = "veto_lists"
        lists = _veto_lists(
            tile_dir,
            acq,
            catalogs,
            spr,
            chk["outputs"]["plate"],
            ra,
            dec,
            cfg,
            synthetic_tile=fits_path is None and cfg.sky == "synthetic",
            opts=opts,
            infos=veto_infos,
        )
        step = "vetoes"
        vet = tt.vetoes.with_options(**opts)(tile_dir, spr["outputs"]["table"], lists, cfg)
    except Exception as exc:  # noqa: BLE001 - one failing tile never stops a survey
        reason = getattr(exc, "reason", None) or f"FAIL_{step.upper()}"
        record.reason = reason  # before the status: a record that is not ok is checked to have one
        record.status = "rejected" if reason.startswith("REJECT_") else "failed"
        record.error = f"{type(exc).__name__}: {exc}"[:500]
        record.provenance = _provenance(acq, cats, veto_infos, run_started)
        logger.error("tile %s failed at %s: %s", tid, step, exc)
        return tt.record_tile(tile_dir, record)

    for name, why in match["info"]["catalogs_skipped"].items():
        logger.info("tile %s: %s skipped: %s", tid, name, why)
    record.funnel = ordered_funnel(sel["info"], spr["info"], vet["info"])
    record.vetoes = VetoesInfo(stages=enabled_stage_names(cfg.vetoes), skipped=vet["info"]["skipped"])
    record.catalogs = CatalogsInfo(used=match["info"]["catalogs_used"], skipped=match["info"]["catalogs_skipped"])
    record.psf_stars = psf["info"].get("psf_stars")
    record.psf_fit = PsfFitInfo(scope=spr["info"]["psf_fit_scope"], measured=spr["info"]["psf_measured"])
    astrometry = AstrometryInfo(
        **ast["info"]["astrometry"],
        solutions_in_header=meas["info"].get("solutions"),
        two_solution_offset_arcsec=meas["info"].get("two_solution_offset_arcsec"),
        # Decided after the counterpart match: can these positions support a 5" "no counterpart"?
        **sel["info"]["astrometry_trust"],
    )
    if not astrometry.trusted:
        logger.warning("tile %s: astrometry not trusted: %s", tid, astrometry.trust_reason)
    try:
        tt.astrometry_plot.with_options(**opts)(tile_dir, ast["outputs"]["pairs"], ast["outputs"]["astrometry"], tid)
        astrometry.plot = "qc/astrometry.png"
    except Exception as exc:  # noqa: BLE001 - a QC plot never fails a tile
        logger.warning("tile %s: astrometry plot not written: %s", tid, exc)
        astrometry.plot = None
    record.astrometry = astrometry
    record.counts = TileCounts(detections=record.funnel["detections"], candidates=list(record.funnel.values())[-1])
    truth = acq["outputs"].get("truth")
    if truth is not None:
        dets = pd.read_parquet(vet["outputs"]["detections"]["path"])
        record.injection = TileInjection.model_validate(score_tile(dets, pd.read_parquet(truth["path"])))
    record.provenance = _provenance(acq, cats, veto_infos, run_started)
    # Each step's computing time when it ran, and this run's wall time for the tile
    # (which also counts Prefect's bookkeeping and steps found already done).
    record.timings = TileTimings(steps_s=step_timings(tile_dir), tile_wall_s=round(time.perf_counter() - started, 4))
    return tt.record_tile(tile_dir, record)


def _provenance(
    acq: dict[str, Any] | None, cats: dict[str, Any] | None, veto_infos: list[dict[str, Any]], run_started: str
) -> TileProvenance:
    """tile.json's ``provenance``: the queries of the steps used, and the tool versions."""
    infos = [acq["info"] if acq else None, cats["info"] if cats else None, *veto_infos]
    return TileProvenance.model_validate(tile_provenance(infos, run_started, tool_versions()))


def _veto_lists(
    tile_dir: Path,
    acq: dict[str, Any],
    catalogs: dict[str, Any],
    spr: dict[str, Any],
    plate: dict[str, Any],
    ra: float,
    dec: float,
    cfg: VascoConfig,
    *,
    synthetic_tile: bool,
    opts: dict[str, Any],
    infos: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Manifests of the lists the enabled vetoes read, by list name (``infos`` gets the lists step's info)."""
    from vasco.filters.registry import list_sources, synthetic_lists

    lists: dict[str, Any] = {}
    if "gaia" in catalogs:
        lists["gaia"] = catalogs["gaia"]
    if cfg.vetoes.spikes.catalog in ("gaia", "ps1") and cfg.vetoes.spikes.catalog in catalogs:
        lists[cfg.vetoes.spikes.catalog] = catalogs[cfg.vetoes.spikes.catalog]
    sources = list_sources(cfg, synthetic_tile)
    synthetic = synthetic_lists(cfg.vetoes)
    for name, src in sources.items():
        key = synthetic.get(name)
        if src == "synthetic" and key in acq["outputs"]:
            lists[name] = acq["outputs"][key]
            if name == "skybot":
                # The synthetic SkyBoT answers at the date the tile uses, as the real one would.
                lists[name] = tt.skybot_epoch.with_options(**opts)(tile_dir, acq["outputs"][key], plate)["outputs"][
                    "skybot"
                ]
    if any(src in ("local", "service") for src in sources.values()):
        got = tt.veto_lists.with_options(**opts)(tile_dir, spr["outputs"]["table"], plate, ra, dec, cfg)
        lists.update(got["outputs"])
        if infos is not None:
            infos.append(got["info"])
    return lists


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

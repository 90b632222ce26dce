"""One tile's steps in order, and its ``tile.json``: the same chain with or without Prefect.

:func:`run_tile` runs the steps of :mod:`vasco.steps` in flow order through
``steps``, a function from a step's name to what runs it:

- the Prefect tile flow (:mod:`flows.tile`) passes its tasks
  (:mod:`tasks.tile_tasks`: retries, cache keys, concurrency limits), so each
  step is a task run in the Prefect UI;
- ``vasco tile`` with no Prefect server configured passes
  :func:`library_step` (the library functions themselves, in this process),
  so a one-tile command starts no server.

Both call the same library code with the same arguments, so they write the
same files.  A tile that is not POSS-I E ends ``rejected`` and a step that
fails ends the tile ``failed``; both are recorded in ``tile.json`` with a
reason token, and :func:`run_tile` returns normally so a survey goes on.

A run in which every step is found already done (same inputs, parameters
and code: :func:`vasco.steps.base.steps_that_ran`) and whose ``tile.json``
is already the finished record of this configuration leaves ``tile.json``
as it is: re-running a finished tile changes nothing.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from vasco import __version__
from vasco.config import VascoConfig
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
from vasco.sky.sampling import tile_id as make_tile_id
from vasco.steps.base import steps_that_ran

__all__ = ["STEP_NAMES", "StepCalls", "library_step", "run_tile", "epochs_verdicts", "finished_file_tile"]

#: What runs a step: step (or variant) name -> a callable with the library step's signature.
StepCalls = Callable[[str], Callable[..., dict[str, Any]]]

#: The names :func:`run_tile` asks ``steps`` for (the task names of :mod:`tasks.tile_tasks`).
STEP_NAMES: tuple[str, ...] = (
    "acquire_synthetic",
    "acquire_dss",
    "acquire_file",
    "check_plate",
    "psf",
    "pass2",
    "measure",
    "catalogs",
    "catalogs_xmatch",
    "astrometry",
    "match",
    "select",
    "spread_model",
    "veto_lists",
    "skybot_epoch",
    "vetoes",
    "record_tile",
)


def epochs_verdicts(store: Any, cfg: VascoConfig) -> dict[str, dict[str, Any]] | None:
    """The per-plate verdicts of ``vasco epochs`` (``epochs.json`` in the survey root), with
    ``plates.date_source = 'epochs'``; None otherwise or when the file is absent."""
    if cfg.plates.date_source != "epochs":
        return None
    from vasco.epochs import read_verdicts

    return read_verdicts(store)


def finished_file_tile(tile_dir: Path, fits_file: Path, cfg: VascoConfig) -> dict[str, Any] | None:
    """The tile.json of a user's FITS tile already finished from this file's content, else None.

    Finished means what a survey means by it (:func:`vasco.roots.is_finished`:
    ok or rejected, this configuration's science hash, this VASCO version),
    from the same file path, whose bytes are still those the tile was made
    from (the SHA-256 of the copy its ``acquire`` step recorded).  Cheap: no
    step module is imported, so ``vasco tile`` on a finished tile returns at
    once.
    """
    from vasco.io import file_sha256, read_json
    from vasco.records import record_path
    from vasco.roots import is_finished, open_root

    tile_dir = Path(tile_dir)
    try:
        rec = read_json(tile_dir / "tile.json")
        acq = read_json(record_path(tile_dir, "acquire"))
    except (OSError, ValueError):
        return None
    if not isinstance(rec, dict) or rec.get("source_file") != str(fits_file):
        return None
    if not is_finished(rec, cfg.science_hash(), epochs_verdicts(open_root(str(tile_dir)), cfg)):
        return None
    try:
        recorded = acq["outputs"]["image"]["sha256"]
        return rec if file_sha256(Path(fits_file)) == recorded else None
    except (OSError, KeyError, TypeError):
        return None


def library_step(name: str) -> Callable[..., dict[str, Any]]:
    """The library function of a step name of :data:`STEP_NAMES` (run in this process, no Prefect).

    Raises
    ------
    KeyError
        For a name that is not a step of the chain.
    """
    import importlib

    if name not in STEP_NAMES:
        raise KeyError(f"{name!r} is not a tile step; steps: {', '.join(STEP_NAMES)}")
    if name == "record_tile":
        return write_tile_record
    module = {
        "acquire_synthetic": "acquire",
        "acquire_dss": "acquire",
        "acquire_file": "acquire",
        "catalogs_xmatch": "catalogs",
    }.get(name, name)
    fn: Callable[..., dict[str, Any]] = getattr(importlib.import_module(f"vasco.steps.{module}"), name)
    return fn


def run_tile(
    ra: float | None,
    dec: float | None,
    out: Path,
    cfg: VascoConfig,
    *,
    steps: StepCalls,
    log: logging.Logger | logging.LoggerAdapter[Any],
    fits_path: Path | None = None,
    tile_dir: Path | None = None,
    verdicts: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Run one tile's steps in order and write its tile.json; return the record.

    Parameters
    ----------
    ra, dec : float or None
        The tile centre (degrees), for a sampled position; None with ``fits_path``.
    out : Path
        The survey root: the tile is ``out/tiles/<tile_id>``, unless ``tile_dir``.
    cfg : VascoConfig
        The run's configuration.
    steps : callable
        Step name -> what runs it (:func:`library_step`, or the Prefect tasks).
    log : logger
        Where warnings and errors about the tile go.
    fits_path : Path, optional
        A user's FITS cutout; its centre is read from its header and the tile
        is ``tile_dir`` (default ``out``).
    verdicts : dict, optional
        The plate dates ``vasco epochs`` chose (``plates.date_source = 'epochs'``).
    """
    with steps_that_ran() as ran:
        record, tile = _run(ra, dec, Path(out), cfg, steps, log, fits_path, tile_dir, verdicts)
    if not ran and tile is not None:
        kept = _kept_record(tile, record, cfg)
        if kept is not None:
            return kept
    return steps("record_tile")(tile, record) if tile is not None else record.to_dict()


def _kept_record(tile_dir: Path, record: TileRecord, cfg: VascoConfig) -> dict[str, Any] | None:
    """The stored tile.json when it is already this run's finished result (nothing to rewrite)."""
    from vasco.outputs import RecordError, read_tile_record
    from vasco.roots import is_finished

    try:
        stored = read_tile_record(tile_dir / "tile.json").to_dict()
    except (OSError, ValueError, RecordError):
        return None
    if not is_finished(stored, cfg.science_hash()):
        return None
    same = ("tile_id", "status", "reason", "funnel", "source_file")
    new = record.to_dict()
    return stored if all(stored.get(k) == new.get(k) for k in same) else None


def _run(
    ra: float | None,
    dec: float | None,
    out: Path,
    cfg: VascoConfig,
    steps: StepCalls,
    log: logging.Logger | logging.LoggerAdapter[Any],
    fits_path: Path | None,
    tile_dir: Path | None,
    verdicts: dict[str, dict[str, Any]] | None,
) -> tuple[TileRecord, Path | None]:
    """The chain itself: the tile's record (not yet written) and its folder (None: nothing to write)."""
    import pandas as pd

    from vasco.filters.cuts import ordered_funnel
    from vasco.filters.registry import enabled_stage_names
    from vasco.qc.injection import score_tile
    from vasco.records import step_timings
    from vasco.sources.provenance import utc_now
    from vasco.steps.header import image_centre

    started = time.perf_counter()
    run_started = utc_now()  # queries made before this are answers reused from an earlier run
    acq: dict[str, Any] | None = None
    if fits_path is not None:
        tile_dir = Path(tile_dir or out)
        try:
            acq = steps("acquire_file")(tile_dir, Path(fits_path))
            ra, dec = image_centre(acq["outputs"]["image"])
        except Exception as exc:  # noqa: BLE001 - an unreadable file is a failed tile, not a crash
            reason = getattr(exc, "reason", None) or "FAIL_ACQUIRE"
            log.error("%s: %s", fits_path, exc)
            return (
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
                tile_dir,
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
            acq = steps("acquire_dss")(tile_dir, ra, dec, cfg)
        elif fits_path is None:
            acq = steps("acquire_synthetic")(tile_dir, ra, dec, cfg)
        assert acq is not None  # from the file (above), DSS or the synthetic sky
        image = acq["outputs"]["image"]
        step = "check_plate"
        chk = steps("check_plate")(tile_dir, image, cfg, verdicts)
        info = chk["info"]
        record.plate = PlateInfo(**{k: info.get(k) for k in PlateInfo.model_fields})
        if info.get("date_conflict"):
            log.warning(
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
            log.warning("tile %s rejected: %s", tid, info["reason"])
            return record, tile_dir
        step = "psf"
        psf = steps("psf")(tile_dir, image, cfg)
        step = "pass2"
        p2 = steps("pass2")(tile_dir, image, psf["outputs"]["psf"], cfg)
        step = "measure"
        meas = steps("measure")(tile_dir, p2["outputs"]["catalog"], image, cfg)
        step = "catalogs"
        source = cfg.catalogs.resolved(cfg.sky)
        if fits_path is None and source == "synthetic":
            catalogs = {k: acq["outputs"][k] for k in ("gaia", "ps1") if k in acq["outputs"]}
        elif source == "xmatch":
            cats = steps("catalogs_xmatch")(tile_dir, meas["outputs"]["table"], dec, cfg)
            catalogs = dict(cats["outputs"])
        else:
            cats = steps("catalogs")(tile_dir, ra, dec, cfg)
            catalogs = dict(cats["outputs"])
        step = "astrometry"
        ast = steps("astrometry")(tile_dir, meas["outputs"]["table"], catalogs, chk["outputs"]["plate"], ra, dec, cfg)
        step = "match"
        match = steps("match")(tile_dir, ast["outputs"]["table"], catalogs, chk["outputs"]["plate"], dec, cfg)
        step = "select"
        sel = steps("select")(
            tile_dir, match["outputs"]["table"], match["info"], cfg, astrometry=ast["outputs"]["astrometry"]
        )
        step = "psf_fit"
        spr = steps("spread_model")(tile_dir, sel["outputs"]["selected"], image, psf["outputs"]["psf"], cfg)
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
            steps,
            synthetic_tile=fits_path is None and cfg.sky == "synthetic",
            infos=veto_infos,
        )
        step = "vetoes"
        vet = steps("vetoes")(tile_dir, spr["outputs"]["table"], lists, cfg)
    except Exception as exc:  # noqa: BLE001 - one failing tile never stops a survey
        reason = getattr(exc, "reason", None) or f"FAIL_{step.upper()}"
        record.reason = reason  # before the status: a record that is not ok is checked to have one
        record.status = "rejected" if reason.startswith("REJECT_") else "failed"
        record.error = f"{type(exc).__name__}: {exc}"[:500]
        record.provenance = _provenance(acq, cats, veto_infos, run_started)
        log.error("tile %s failed at %s: %s", tid, step, exc)
        return record, tile_dir

    for name, why in match["info"]["catalogs_skipped"].items():
        log.info("tile %s: %s skipped: %s", tid, name, why)
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
        log.warning("tile %s: astrometry not trusted: %s", tid, astrometry.trust_reason)
    record.astrometry = astrometry
    record.counts = TileCounts(detections=record.funnel["detections"], candidates=list(record.funnel.values())[-1])
    truth = acq["outputs"].get("truth")
    if truth is not None:
        dets = pd.read_parquet(vet["outputs"]["detections"]["path"])
        record.injection = TileInjection.model_validate(score_tile(dets, pd.read_parquet(truth["path"])))
    record.provenance = _provenance(acq, cats, veto_infos, run_started)
    # Each step's computing time when it ran, and this run's wall time for the tile
    # (which also counts the orchestration's bookkeeping and steps found already done).
    record.timings = TileTimings(steps_s=step_timings(tile_dir), tile_wall_s=round(time.perf_counter() - started, 4))
    return record, tile_dir


def _provenance(
    acq: dict[str, Any] | None, cats: dict[str, Any] | None, veto_infos: list[dict[str, Any]], run_started: str
) -> TileProvenance:
    """tile.json's ``provenance``: the queries of the steps used, and the tool versions."""
    from vasco.extraction.sextractor import tool_versions
    from vasco.sources.provenance import tile_provenance

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
    steps: StepCalls,
    *,
    synthetic_tile: bool,
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
                lists[name] = steps("skybot_epoch")(tile_dir, acq["outputs"][key], plate)["outputs"]["skybot"]
    if any(src in ("local", "service") for src in sources.values()):
        got = steps("veto_lists")(tile_dir, spr["outputs"]["table"], plate, ra, dec, cfg)
        lists.update(got["outputs"])
        if infos is not None:
            infos.append(got["info"])
    return lists

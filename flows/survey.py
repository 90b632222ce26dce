"""The survey flow: sample tile positions, run the tile flow on each with
bounded concurrency, merge the tile catalogues and publish the summary.

Run it locally::

    python flows/survey.py --sky synthetic --tiles 4 --seed 1 --out runs/demo

Outputs under ``--out``: ``config.json`` (the configuration used),
``positions.csv``, ``tiles/<tile_id>/...``, ``detections.parquet``,
``candidates.parquet``, ``astrometry.csv`` (astrometric quality per tile)
and ``summary.json``; then the report (``report/index.html``, the candidate
gallery, QC plots, the coverage MOC; see :mod:`vasco.report`).  Markdown
artifacts with the funnel, the candidates and the report are posted to
Prefect, and a progress bar is drawn when standard error is a terminal.
"""

from __future__ import annotations

import sys
from typing import Any, Literal

# Before Prefect is imported: VASCO's defaults for Prefect's temporary local server
# (a start-up limit that fits a cold machine, no telemetry); see flows/__init__.py.
import flows  # noqa: F401 - imported for its side effect, before prefect

# isort: split

from prefect import flow, get_run_logger
from prefect.context import get_run_context
from prefect.task_runners import ThreadPoolTaskRunner

from flows.fanout import (
    TileProcessPool,
    forget_tile_callback,
    register_tile_callback,
    run_deployments,
    run_local,
    tile_callback,
)
from flows.progress import ArtifactProgress, TerminalProgress
from tasks import tile_tasks as tt
from tasks.survey_tasks import publish, report
from vasco.chain import epochs_verdicts
from vasco.config import VascoConfig
from vasco.config_merge import build_config
from vasco.io import remove_dead_temporaries
from vasco.resume import pending_tiles, planned_positions, published_and_current, record_lost_tile, tile_status
from vasco.roots import local_root, open_root
from vasco.sky.sampling import TilePosition, write_positions

__all__ = ["survey_flow", "survey_batch"]


@flow(name="vasco-survey-batch", task_runner=ThreadPoolTaskRunner(max_workers=64), validate_parameters=False)  # type: ignore[arg-type]  # prefect types task_runner invariantly
def survey_batch(
    positions: list[TilePosition],
    out: str,
    cfg: VascoConfig,
    fanout: str,
    tile_deployment: str,
    on_done_key: str,
    dry_run: bool = False,
    run_key: str | None = None,
) -> int:
    """Run one batch of the survey's tiles (``survey.tiles_per_subflow`` of them).

    A subflow of the survey, so the task states and results Prefect keeps
    for each tile are released when the batch ends instead of piling up in
    the survey's flow run.  ``on_done_key`` names the callback, registered
    with :func:`flows.fanout.register_tile_callback`, called with each tile id
    as it finishes (a key, not the callable: see there).  Returns the number
    of tiles run.
    """
    on_done = tile_callback(on_done_key)
    if fanout == "deployment":
        run_deployments(
            positions, out, cfg, cfg.survey.workers, on_done, tile_deployment, dry_run=dry_run, run_key=run_key
        )
    else:
        run_local(positions, out, cfg, cfg.survey.workers, on_done, dry_run=dry_run)
    return len(positions)


@flow(name="vasco-survey", log_prints=True, task_runner=ThreadPoolTaskRunner(max_workers=64))  # type: ignore[arg-type]  # as above
def survey_flow(
    out: str = "runs/survey",
    sky: Literal["synthetic", "dss"] | None = None,
    tiles: int | None = None,
    seed: int | None = None,
    size_arcmin: float | None = None,
    workers: int | None = None,
    positions: str | None = None,
    config_file: str | None = None,
    catalogs: str | None = None,
    catalog_files: dict[str, str] | None = None,
    fanout: Literal["local", "deployment"] = "local",
    tile_deployment: str = "vasco-tile/tile",
    batch: int | None = None,
    dry_run: bool = False,
    retry_failed: bool = False,
) -> dict[str, Any]:
    """Process ``tiles`` sampled positions (or those of a ``positions`` CSV) into ``out``.

    ``sky``, ``tiles``, ``seed``, ``size_arcmin`` and ``workers`` left at
    ``None`` take their values from ``config_file`` if it sets them, else
    from the configuration model's defaults (see :func:`vasco.config_merge.build_config`); a
    value given here wins over both.

    At most ``workers`` tiles run at once: in this process (``fanout='local'``;
    SExtractor and PSFEx are single-threaded, one tile per core) or as flow
    runs of ``tile_deployment`` spread over the workers of its pool
    (``fanout='deployment'``).  Tiles already finished with this configuration
    are not run again; ``batch`` limits how many of the others this run takes
    (in position order), so a scheduled deployment works through a large
    survey a batch at a time.  The survey is then published from what is on
    disk, so the summary always covers every tile done so far.  ``dry_run``
    runs everything but the pixel work (for measuring orchestration).
    ``retry_failed`` runs only the tiles whose last run failed (``tile.json``
    status ``failed``), none of those never run.
    """
    logger = get_run_logger()
    if batch is not None and batch < 1:
        raise ValueError(f"batch must be at least 1, got {batch}")
    cfg = build_config(sky, tiles, seed, size_arcmin, workers, config_file, catalogs, catalog_files)
    if not dry_run:
        from vasco.sources.xmatch import check_configured_tables

        check_configured_tables(cfg)  # before any tile runs: an unknown XMatch table is refused
    tt.ensure_service_limits(cfg)
    store = open_root(out)
    out_dir = local_root(store)
    pos, repeats = planned_positions(cfg, positions)
    if repeats:
        logger.warning("%d positions repeat a tile id and are skipped", repeats)
    if not (retry_failed or dry_run) and (current := published_and_current(out, cfg, pos)) is not None:
        logger.info(
            "survey %s: all %d tiles are done and published with this configuration; nothing to do", store.url, len(pos)
        )
        if cfg.report.after_survey and (out_dir / "report" / "index.html").is_file():
            current["report"] = str((out_dir / "report" / "index.html").resolve())
        return current
    out_dir.mkdir(parents=True, exist_ok=True)
    cfg.write(out_dir / "config.json")
    write_positions(out_dir, pos)
    if not store.is_local:
        store.put_file(out_dir / "config.json", "config.json")
        store.put_file(out_dir / "positions.csv", "positions.csv")
    if store.is_local:
        # Partial files of a survey-level write by a process that was killed.
        for path in remove_dead_temporaries(out_dir):
            logger.info("removed %s, left by a killed run", path.name)
    todo = pending_tiles(store, pos, cfg.science_hash(), epochs_verdicts(store, cfg))
    n_done = len(pos) - len(todo)
    if retry_failed:
        todo = [p for p in todo if tile_status(store, p) == "failed"]
    if batch is not None:
        todo = todo[:batch]
    logger.info(
        "survey of %d tiles into %s: %d already done, %d to run now, %d at a time (%s)",
        len(pos),
        store.url,
        n_done,
        len(todo),
        cfg.survey.workers,
        fanout,
    )

    progress = ArtifactProgress(
        len(todo),
        key="vasco-survey-progress",
        description=f"VASCO survey {store.url}: tiles finished in this run ({len(todo)} to run)",
    )
    if fanout not in ("local", "deployment"):
        raise ValueError(f"fanout {fanout!r}: must be 'local' or 'deployment'")
    by_id = {p.tile_id: p for p in todo}

    bar = TerminalProgress(len(todo), label=f"VASCO {store.url}")

    def on_done(tile_id: str) -> None:
        record_lost_tile(store, out_dir, by_id[tile_id], cfg)
        progress.tile_done()
        bar.tile_done(tile_status(store, by_id[tile_id]) if bar.enabled else None)

    # Tiles get the root as given (a URL stays a URL); a local root as an absolute path.
    target = str(out_dir.resolve()) if store.is_local else store.url
    step = cfg.survey.tiles_per_subflow
    run_key = str(getattr(getattr(get_run_context(), "flow_run", None), "id", "local"))
    opts: dict[str, Any] = {}
    if fanout == "local" and cfg.survey.workers > 1 and cfg.survey.tile_processes:
        opts["task_runner"] = TileProcessPool(max_workers=cfg.survey.workers)
    register_tile_callback(run_key, on_done)
    try:
        for start in range(0, len(todo), step):
            chunk = todo[start : start + step]
            survey_batch.with_options(flow_run_name=f"tiles-{start + 1}-{start + len(chunk)}-of-{len(todo)}", **opts)(
                chunk, target, cfg, fanout, tile_deployment, run_key, dry_run, run_key
            )
    finally:
        forget_tile_callback(run_key)
        bar.close()
    progress.finish()
    tile_ids = [p.tile_id for p in pos]
    summary = publish(target, tile_ids, cfg.science_hash())
    if cfg.report.after_survey and not dry_run:
        summary["report"] = report(target)
    logger.info("survey done: %s", {k: summary[k] for k in ("tiles", "detections", "candidates")})
    return summary


if __name__ == "__main__":
    from flows.cli import survey_main

    sys.exit(survey_main(prog="python flows/survey.py"))

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

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

# Before Prefect is imported: VASCO's defaults for Prefect's temporary local server
# (a start-up limit that fits a cold machine, no telemetry); see flows/__init__.py.
import flows  # noqa: E402, F401

import pandas as pd  # noqa: E402
from prefect import flow, get_run_logger, task  # noqa: E402
from prefect.artifacts import (  # noqa: E402
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from prefect.context import get_run_context  # noqa: E402
from prefect.task_runners import ThreadPoolTaskRunner  # noqa: E402

from flows.fanout import run_deployments, run_local  # noqa: E402
from flows.progress import TerminalProgress  # noqa: E402
from flows.roots import LEASE_NAME, is_finished, local_root, open_root  # noqa: E402
from tasks import tile_tasks as tt  # noqa: E402
from vasco.catalogue.dedup import find_duplicates  # noqa: E402
from vasco.catalogue.publish import build_summary, merge_catalogues, read_tile_records  # noqa: E402
from vasco.config import VascoConfig  # noqa: E402
from vasco.io import atomic_path, remove_dead_temporaries, write_parquet_atomic  # noqa: E402
from vasco.qc.astrometry import astrometry_table, summarize_astrometry, write_astrometry_table  # noqa: E402
from vasco.sky.sampling import TilePosition, read_positions, sample_positions  # noqa: E402

__all__ = ["survey_flow", "build_config", "main"]


def build_config(
    sky: str | None = None,
    tiles: int | None = None,
    seed: int | None = None,
    size_arcmin: float | None = None,
    workers: int | None = None,
    config_file: str | None = None,
    catalogs: str | None = None,
    catalog_files: dict[str, str] | None = None,
) -> VascoConfig:
    """The run's configuration, with one precedence for every way a survey starts.

    Model defaults (:class:`~vasco.config.VascoConfig`, the only place they
    are written) < the configuration file (``config_file``: JSON, TOML or
    YAML) < the options given explicitly here.  An option left at ``None``
    was not given and changes nothing, so a file's ``tiles = 500`` holds
    unless ``tiles`` is passed.  The command line, ``python flows/survey.py``
    and the deployments all come through here.

    Raises
    ------
    ValueError
        pydantic's ValidationError, naming the bad parameter.
    """
    base = VascoConfig.read(Path(config_file)) if config_file else VascoConfig()
    data = base.model_dump()
    if sky is not None:
        data["sky"] = sky
    given = {"tiles": tiles, "seed": seed, "size_arcmin": size_arcmin, "workers": workers}
    data["survey"] = {**data["survey"], **{k: v for k, v in given.items() if v is not None}}
    cats = data["catalogs"]
    if catalogs:
        cats["source"] = catalogs
    if catalog_files:
        cats["local"] = {**cats["local"], **catalog_files}
        if not catalogs:
            cats["source"] = "local"
    return VascoConfig.model_validate(data)


def parse_catalog_files(items: list[str] | None) -> dict[str, str]:
    """``["gaia=PATH", ...]`` -> ``{"gaia": "PATH"}``; ValueError naming a bad item."""
    out: dict[str, str] = {}
    for item in items or []:
        name, sep, path = item.partition("=")
        if not sep or name not in ("gaia", "ps1") or not path:
            raise ValueError(f"--catalog {item!r}: expected gaia=PATH or ps1=PATH")
        if not Path(path).exists():
            raise ValueError(f"--catalog {item!r}: {path} does not exist")
        out[name] = path
    return out


@task(name="publish-catalogue")
def publish(out: str, tile_ids: list[str], config_hash: str) -> dict[str, Any]:
    """Merge the tile catalogues, write the astrometric quality table
    (``astrometry.csv``) and summary.json, and post the funnel artifact."""
    store = open_root(out)
    root = local_root(store)
    if not store.is_local:
        _fetch_tiles(store, root, tile_ids)
    out = str(root)
    records = read_tile_records(Path(out), tile_ids)
    cfg = VascoConfig.read(Path(out) / "config.json")
    dup = find_duplicates(Path(out), records, cfg.matching.dedup_radius_arcsec)
    write_parquet_atomic(Path(out) / "duplicates.parquet", dup)
    counts = merge_catalogues(Path(out), records, dup)
    ast = astrometry_table(records)
    write_astrometry_table(Path(out) / "astrometry.csv", ast)
    duplicates = {
        "radius_arcsec": cfg.matching.dedup_radius_arcsec,
        "groups": int(dup["dup_group"].nunique()) if len(dup) else 0,
        "measurements_in_groups": int(len(dup)),
        "tile_candidates": int(counts["tile_candidates"]),
    }
    summary = build_summary(Path(out), records, counts, config_hash, duplicates=duplicates,
                            astrometry=summarize_astrometry(ast)).to_dict()
    create_markdown_artifact(
        key="vasco-survey-funnel",
        markdown=_funnel_markdown(summary, records),
        description=f"VASCO funnel for {out}",
    )
    cands = pd.read_parquet(Path(out) / "candidates.parquet")
    cols = [c for c in ("tile_id", "NUMBER", "ra", "dec", "plate_region", "plate_epoch", "MAG_AUTO", "SNR_WIN",
                        "FWHM_IMAGE", "SPREAD_MODEL", "edge_dist_px") if c in cands.columns]
    create_table_artifact(
        key="vasco-survey-candidates",
        table=cands[cols].head(_TABLE_ROWS).round(6).to_dict(orient="records"),
        description=f"VASCO candidates of {out} (first {_TABLE_ROWS} of {len(cands)}; all in candidates.parquet)",
    )
    if not store.is_local:
        for name in SURVEY_PRODUCTS:
            if (root / name).exists():
                store.put_file(root / name, name)
    create_markdown_artifact(
        key="vasco-survey-products", markdown=_products_markdown(store, records),
        description=f"Where the outputs and QC products of {store.url} are",
    )
    return summary


@task(name="build-report")
def report(out: str) -> str | None:
    """Build ``report/`` (QC plots, MOC, gallery, index.html) and post it as an artifact.

    A report that cannot be built is logged, never fails the survey: its
    catalogues are already published.  Returns the report page's location.
    """
    from vasco.report.build import build_report

    logger = get_run_logger()
    store = open_root(out)
    root = local_root(store)
    try:
        man = build_report(root)
    except Exception as exc:  # noqa: BLE001 - the survey's results stand without their report
        logger.warning("the report of %s was not built: %s: %s (try `vasco report %s`)",
                       store.url, type(exc).__name__, exc, root)
        return None
    if not store.is_local:
        store.put_tree(root / "report", "report")
        for rel in man["tile_plots"]:
            store.put_file(root / rel, rel)
    index = store.uri("report/index.html") if not store.is_local else str((root / man["index"]).resolve())
    lines = [
        f"# VASCO report of {store.url}", "",
        f"- report page: `{index}` (open it in a browser; no server needed)",
        f"- candidate gallery: `report/gallery.html`, {man['candidates']} candidates with {man['stamps']} stamps",
        f"- coverage: `report/moc.fits` (IVOA MOC), {man['tiles']['ok']} tiles, {man['coverage_deg2']:.2f} deg²; "
        "sky map `report/sky.png`",
        "- survey QC plots: " + ", ".join(f"`{p}`" for p in man["plots"].values()),
        f"- per-tile QC plots: {len(man['tile_plots'])} (`tiles/<id>/qc/tile.png`)",
        f"- built in {man['timings']['total_s']:.1f} s",
    ]
    create_markdown_artifact(key="vasco-survey-report", markdown="\n".join(lines),
                             description=f"VASCO report of {store.url}")
    logger.info("report: %s", index)
    return index


#: Survey-level files (uploaded to a remote root when the survey is published).
SURVEY_PRODUCTS = ("config.json", "positions.csv", "summary.json", "candidates.parquet", "detections.parquet",
                   "duplicates.parquet", "astrometry.csv")


def _fetch_tiles(store: Any, root: Path, tile_ids: list[str]) -> None:
    """Copy each committed tile's record and detections from a remote root into the local one."""
    for tid in tile_ids:
        rel = f"tiles/{tid}"
        if not store.exists(f"{rel}/tile.json"):
            continue
        for name in ("detections.parquet", "tile.json"):
            if store.exists(f"{rel}/{name}"):
                store.get_file(f"{rel}/{name}", root / "tiles" / tid / name)


#: Rows of the candidates table artifact (the full list is in candidates.parquet).
_TABLE_ROWS = 500


def _products_markdown(store: Any, records: list[dict[str, Any]]) -> str:
    root = store.url
    lines = ["# VASCO survey products", "", f"Survey root: `{root}`", "",
             "| product | path |", "|---|---|"]
    for name, what in (("summary.json", "summary, funnel, injection scores"),
                       ("candidates.parquet", "unique candidates"), ("detections.parquet", "every detection"),
                       ("duplicates.parquet", "sources measured in several tiles"),
                       ("astrometry.csv", "astrometric quality per tile"), ("config.json", "the configuration")):
        lines.append(f"| {what} | `{root}/{name}` |")
    plots = [r for r in records if (r.get("astrometry") or {}).get("plot")]
    if plots:
        lines += ["", "Astrometric residual plots:", ""]
        lines += [f"- {r['tile_id']}: `{root}/tiles/{r['tile_id']}/{r['astrometry']['plot']}`" for r in plots[:200]]
    return "\n".join(lines)


def _funnel_markdown(summary: dict[str, Any], records: list[dict[str, Any]]) -> str:
    lines = ["# VASCO survey funnel", "", "| step | sources left |", "|---|---:|"]
    lines += [f"| {k} | {v:,} |" for k, v in summary["funnel"].items()]
    rows = summary.get("funnel_vs_paper") or []
    if rows:
        lines += ["", "## Side by side with Solano et al. 2022", "",
                  "| stage | ours | kept | paper | kept |", "|---|---:|---:|---:|---:|"]
        for r in rows:
            ours = "-" if r["ours"] is None else f"{r['ours']:,}"
            ok = "" if r["ours_kept"] is None else f"{r['ours_kept']:.1%}"
            pk = "" if r["paper_kept"] is None else f"{r['paper_kept']:.1%}"
            lines.append(f"| {r['stage']} | {ours} | {ok} | {r['paper']:,} | {pk} |")
    t = summary["tiles"]
    lines += [
        "",
        f"Tiles: {t['planned']} planned, {t['processed']} processed, {t['rejected']} rejected, {t['failed']} failed.",
    ]
    if summary["failures"]:
        lines += ["", "Rejected or failed tiles by reason: "
                  + ", ".join(f"`{k}` {v}" for k, v in summary["failures"].items())]
    trust = summary.get("astrometry_trust") or {}
    if trust.get("tiles_untrusted"):
        lines += ["", f"Astrometry not trusted on {trust['tiles_untrusted']} processed tile(s), with "
                  f"{trust['candidates_untrusted']} candidate(s) (marked `astrometry_trusted` false): "
                  + ", ".join(f"`{k}` {v}" for k, v in trust["by_reason"].items())]
    inj = summary.get("injection")
    if inj:
        comp = "n/a" if inj["completeness"] is None else f"{inj['completeness']:.3f}"
        pur = "n/a" if inj["purity"] is None else f"{inj['purity']:.3f}"
        lines += [
            "",
            f"Synthetic injection: {inj['recovered']}/{inj['recoverable']} recoverable transients recovered "
            f"(completeness {comp}); purity {pur}; false candidates by class: {inj['false_by_class']}.",
        ]
    lines += _tile_funnel_table(records)
    return "\n".join(lines)


def _tile_funnel_table(records: list[dict[str, Any]], max_rows: int = 500) -> list[str]:
    """Markdown lines: one row per tile with its funnel, stage by stage.

    Failed and rejected tiles come first; at most ``max_rows`` rows (every
    tile's funnel is in its tile.json and in summary.json's totals).
    """
    stages: list[str] = []
    for r in records:
        for k in r.get("funnel") or {}:
            if k not in stages:
                stages.append(k)
    ordered = ([r for r in records if r.get("status") in ("failed", "rejected")]
               + [r for r in records if r.get("status") == "ok"])
    lines = ["", "## Funnel per tile", "",
             "| tile | plate | status | reason | " + " | ".join(stages) + " |",
             "|---|---|---|---|" + "---:|" * len(stages)]
    for r in ordered[:max_rows]:
        plate = (r.get("plate") or {}).get("region") or "-"
        funnel = r.get("funnel") or {}
        cells = " | ".join(f"{funnel[k]:,}" if k in funnel else "" for k in stages)
        lines.append(f"| {r['tile_id']} | {plate} | {r.get('status')} | {r.get('reason') or ''} | {cells} |")
    if len(ordered) > max_rows:
        lines += ["", f"(first {max_rows} of {len(ordered)} tiles; every tile's funnel is in its tile.json)"]
    return lines


def _write_positions(out: Path, positions: list[TilePosition]) -> None:
    table = pd.DataFrame(
        {
            "tile_id": [p.tile_id for p in positions],
            "ra": [p.ra for p in positions],
            "dec": [p.dec for p in positions],
        }
    )
    with atomic_path(out / "positions.csv", suffix=".csv") as tmp:
        table.to_csv(tmp, index=False, float_format="%.10f")


def pending_tiles(store: Any, positions: list[TilePosition], config_hash: str,
                  verdicts: dict[str, dict[str, Any]] | None = None) -> list[TilePosition]:
    """The positions whose tile is not finished with this configuration and code version.

    A tile is finished when its ``tile.json`` says ``ok`` or ``rejected`` for
    the same configuration hash and VASCO version; failed and unfinished tiles
    are pending, so a new run (or the next scheduled one) picks them up.  With
    ``verdicts`` (``plates.date_source = 'epochs'``), so are ok tiles whose
    plate date is not the one ``vasco epochs`` now gives their plate.
    """

    todo = []
    for p in positions:
        try:
            rec = store.read_json(f"tiles/{p.tile_id}/tile.json")
        except (OSError, ValueError):
            todo.append(p)
            continue
        if not is_finished(rec, config_hash, verdicts):
            todo.append(p)
    return todo


def tile_status(store: Any, p: TilePosition) -> str | None:
    """The status in a tile's ``tile.json`` (None when it has none, or it is unreadable)."""
    try:
        return store.read_json(f"tiles/{p.tile_id}/tile.json").get("status")
    except (OSError, ValueError, AttributeError):
        return None


def _record_lost_tile(store: Any, root: Path, p: TilePosition, cfg: VascoConfig) -> None:
    """A tile whose run ended without writing tile.json (crashed worker): record it as failed.

    Not while another worker holds the tile's lease (it is still running there).
    """
    from vasco.outputs import Centre, PlateInfo, TileRecord, write_tile_record

    rel = f"tiles/{p.tile_id}"
    if store.exists(f"{rel}/tile.json") or store.exists(f"{rel}/{LEASE_NAME}"):
        return
    tile_dir = root / "tiles" / p.tile_id
    tile_dir.mkdir(parents=True, exist_ok=True)
    write_tile_record(tile_dir, TileRecord(
        tile_id=p.tile_id, centre=Centre(ra=p.ra, dec=p.dec), plate=PlateInfo(), status="failed",
        reason="FAIL_FLOW_RUN", funnel={}, config_hash=cfg.science_hash(),
        error="the tile's flow run ended without writing tile.json (crashed or cancelled)",
    ))
    if not store.is_local:
        store.put_file(tile_dir / "tile.json", f"{rel}/tile.json")


class _Progress:
    """The survey's progress artifact, updated as tiles finish (at most once per
    percent or per 10 s, so a survey of 100,000 tiles does not make 100,000 calls)."""

    def __init__(self, artifact_id: Any, total: int) -> None:
        self.artifact_id, self.total, self.done = artifact_id, total, 0
        self._shown, self._at = 0.0, time.monotonic()

    def tile_done(self) -> None:
        self.done += 1
        pct = 100.0 * self.done / max(self.total, 1)
        if pct - self._shown >= 1.0 or time.monotonic() - self._at >= 10.0 or self.done == self.total:
            self._show(pct)

    def finish(self) -> None:
        if self._shown < 100.0:
            self._show(100.0)

    def _show(self, pct: float) -> None:
        update_progress_artifact(self.artifact_id, progress=pct)
        self._shown, self._at = pct, time.monotonic()


@flow(name="vasco-survey-batch", task_runner=ThreadPoolTaskRunner(max_workers=64), validate_parameters=False)
def survey_batch(
    positions: list[TilePosition],
    out: str,
    cfg: VascoConfig,
    fanout: str,
    tile_deployment: str,
    on_done: Callable[[str], None],
    dry_run: bool = False,
    run_key: str | None = None,
) -> int:
    """Run one batch of the survey's tiles (``survey.tiles_per_subflow`` of them).

    A subflow of the survey, so the task states and results Prefect keeps
    for each tile are released when the batch ends instead of piling up in
    the survey's flow run.  Returns the number of tiles run.
    """
    if fanout == "deployment":
        run_deployments(positions, out, cfg, cfg.survey.workers, on_done, tile_deployment, dry_run=dry_run,
                        run_key=run_key)
    else:
        run_local(positions, out, cfg, cfg.survey.workers, on_done, dry_run=dry_run)
    return len(positions)


@flow(name="vasco-survey", log_prints=True, task_runner=ThreadPoolTaskRunner(max_workers=64))
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
    from the configuration model's defaults (see :func:`build_config`); a
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
    if positions:
        pos = read_positions(Path(positions))
    else:
        pos = sample_positions(cfg.survey.tiles, cfg.survey.seed, dec_min=cfg.survey.dec_min)
    # Two positions that round to one tile id would share a folder: keep the first.
    seen: set[str] = set()
    unique = [p for p in pos if not (p.tile_id in seen or seen.add(p.tile_id))]
    if len(unique) < len(pos):
        logger.warning("%d positions repeat a tile id and are skipped", len(pos) - len(unique))
    pos = unique
    out_dir.mkdir(parents=True, exist_ok=True)
    cfg.write(out_dir / "config.json")
    _write_positions(out_dir, pos)
    if not store.is_local:
        store.put_file(out_dir / "config.json", "config.json")
        store.put_file(out_dir / "positions.csv", "positions.csv")
    if store.is_local:
        # Partial files of a survey-level write by a process that was killed.
        for path in remove_dead_temporaries(out_dir):
            logger.info("removed %s, left by a killed run", path.name)
    from flows.tile import epochs_verdicts

    todo = pending_tiles(store, pos, cfg.science_hash(), epochs_verdicts(store, cfg))
    n_done = len(pos) - len(todo)
    if retry_failed:
        todo = [p for p in todo if tile_status(store, p) == "failed"]
    if batch is not None:
        todo = todo[:batch]
    logger.info("survey of %d tiles into %s: %d already done, %d to run now, %d at a time (%s)",
                len(pos), store.url, n_done, len(todo), cfg.survey.workers, fanout)

    progress_id = create_progress_artifact(
        progress=0.0, key="vasco-survey-progress",
        description=f"VASCO survey {store.url}: tiles finished in this run ({len(todo)} to run)",
    )
    if fanout not in ("local", "deployment"):
        raise ValueError(f"fanout {fanout!r}: must be 'local' or 'deployment'")
    progress = _Progress(progress_id, len(todo))
    by_id = {p.tile_id: p for p in todo}

    bar = TerminalProgress(len(todo), label=f"VASCO {store.url}")

    def on_done(tile_id: str) -> None:
        _record_lost_tile(store, out_dir, by_id[tile_id], cfg)
        progress.tile_done()
        bar.tile_done(tile_status(store, by_id[tile_id]) if bar.enabled else None)

    # Tiles get the root as given (a URL stays a URL); a local root as an absolute path.
    target = str(out_dir.resolve()) if store.is_local else store.url
    step = cfg.survey.tiles_per_subflow
    run_key = str(getattr(getattr(get_run_context(), "flow_run", None), "id", "local"))
    try:
        for start in range(0, len(todo), step):
            chunk = todo[start:start + step]
            survey_batch.with_options(flow_run_name=f"tiles-{start + 1}-{start + len(chunk)}-of-{len(todo)}")(
                chunk, target, cfg, fanout, tile_deployment, on_done, dry_run, run_key
            )
    finally:
        bar.close()
    progress.finish()
    tile_ids = [p.tile_id for p in pos]
    summary = publish(target, tile_ids, cfg.science_hash())
    if cfg.report.after_survey and not dry_run:
        summary["report"] = report(target)
    logger.info("survey done: %s", {k: summary[k] for k in ("tiles", "detections", "candidates")})
    return summary


def _default(name: str) -> str:
    """Help-text tail naming where a value comes from when its option is not given."""
    value: Any = VascoConfig()
    for part in name.split("."):
        value = getattr(value, part)
    return f" (default: the --config file's {name}, else {value})"


def _parser(prog: str = "python flows/survey.py") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog,
        description="Run a VASCO survey: POSS-I tiles -> vanishing-source candidates. Values come from the "
        "configuration model's defaults, then the --config file, then the options given here.",
    )
    p.add_argument("--sky", choices=["synthetic", "dss"], default=None,
                   help="where tiles come from: the offline synthetic sky, or STScI DSS (POSS-I red; "
                        f"URL from $VASCO_DSS_URL){_default('sky')}")
    p.add_argument("--catalogs", choices=["auto", "synthetic", "vizier", "xmatch", "local"], default=None,
                   help="where the Gaia/PS1 catalogues come from (default auto: synthetic on the synthetic "
                        "sky, VizieR otherwise; URLs from $VASCO_VIZIER_URL, $VASCO_XMATCH_URL)")
    p.add_argument("--catalog", action="append", metavar="NAME=PATH",
                   help="a local catalogue file (CSV, Parquet or HATS folder) for gaia or ps1; repeatable")
    p.add_argument("--tiles", type=int, default=None,
                   help=f"number of tile positions to sample{_default('survey.tiles')}")
    p.add_argument("--seed", type=int, default=None,
                   help=f"seed for sampling and the synthetic sky{_default('survey.seed')}")
    p.add_argument("--size-arcmin", type=float, default=None,
                   help=f"tile width and height in arcmin{_default('survey.size_arcmin')}")
    p.add_argument("--workers", type=int, default=None,
                   help=f"tiles processed at once, one per core{_default('survey.workers')}")
    p.add_argument("--positions", help="CSV file of tile centres (columns ra, dec in degrees) instead of sampling")
    p.add_argument("--config", dest="config_file",
                   help="configuration file: JSON (see config.json of any run), TOML (.toml) or YAML (.yaml)")
    p.add_argument("--fanout", choices=["local", "deployment"], default="local",
                   help="run tiles in this process (local, default) or as flow runs of the tile deployment "
                        "on its work pool (deployment; needs a Prefect server and `prefect deploy`)")
    p.add_argument("--tile-deployment", default="vasco-tile/tile",
                   help="the tile deployment for --fanout deployment (default vasco-tile/tile)")
    p.add_argument("--batch", type=int, default=None,
                   help="run at most this many of the tiles not yet done (default: all)")
    p.add_argument("--retry-failed", action="store_true",
                   help="run only the tiles whose last run failed (their tile.json says failed); "
                        "summary.json lists failed tiles by reason (failed_tiles)")
    p.add_argument("--dry-run", action="store_true",
                   help="orchestration only: no pixels are read or made (for measuring overhead)")
    p.add_argument("--out", required=True, help="output folder, or an fsspec URL such as s3://bucket/prefix")
    return p


def config_from_args(args: argparse.Namespace) -> VascoConfig:
    """The configuration a parsed command line asks for (options not given are ``None``: not applied)."""
    return build_config(args.sky, args.tiles, args.seed, args.size_arcmin, args.workers, args.config_file,
                        args.catalogs, parse_catalog_files(args.catalog))


def main(argv: list[str] | None = None, prog: str = "python flows/survey.py") -> int:
    args = _parser(prog).parse_args(argv)
    try:
        # Validate everything before any work starts.
        files = parse_catalog_files(args.catalog)
        cfg = config_from_args(args)
        if not args.dry_run:
            from vasco.sources.xmatch import check_configured_tables

            check_configured_tables(cfg)  # an unknown XMatch table is refused before any work
        if args.positions:
            read_positions(Path(args.positions))
        if args.batch is not None and args.batch < 1:
            raise ValueError(f"--batch must be at least 1, got {args.batch}")
        from flows.roots import check_writable

        check_writable(args.out)
    except ValueError as exc:
        from flows.cli import usage_error

        return usage_error(exc)
    params = {k: v for k, v in vars(args).items() if k != "catalog"}
    summary = survey_flow(**params, catalog_files=files or None)
    t = summary["tiles"]
    print(
        f"VASCO: {t['processed']}/{t['planned']} tiles processed ({t['rejected']} rejected, {t['failed']} failed), "
        f"{summary['detections']} detections, {summary['candidates']} candidates -> {args.out}"
    )
    if summary.get("report"):
        print(f"report: {summary['report']}  (vasco report {args.out} rebuilds it)")
    inj = summary.get("injection")
    if inj:
        def fmt(v: Any) -> str:
            return "n/a" if v is None else f"{v:.3f}"

        print(
            f"synthetic injection: completeness {fmt(inj['completeness'])} "
            f"({fmt(inj.get('completeness_searchable'))} outside the bright-star zones), "
            f"purity {fmt(inj['purity'])}; recoverable transients lost by stage {inj.get('lost_by_stage')}; "
            f"false candidates by class {inj['false_by_class']}"
        )
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    sys.exit(main())

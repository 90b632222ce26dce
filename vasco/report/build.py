"""Build a survey's report from what is on disk: ``vasco report DIR`` and the end of a survey.

:func:`build_report` reads the survey folder (``config.json``,
``summary.json``, ``positions.csv``, the tile records, the merged
catalogues, ``astrometry.csv``) and writes everything under ``DIR/report/``
(see :mod:`vasco.report`) plus the per-tile QC plots and astrometric
residual plots (drawn here, off the tiles' critical path, from what each
tile wrote).  Running it again
rebuilds the survey plots, the MOC and the pages; per-tile plots and
stamps are redrawn only when their tile has changed since (or with
``force``).  The manifest ``report/report.json`` goes last.
"""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path
from typing import Any

import pandas as pd
from astropy.io import fits

from vasco import __version__
from vasco.config import VascoConfig
from vasco.io import read_json, remove_dead_temporaries, write_json_atomic
from vasco.outputs import read_summary
from vasco.publish.merge import read_tile_records
from vasco.survey_tree import planned_tile_ids

__all__ = ["build_report", "ReportError"]

log = logging.getLogger(__name__)


class ReportError(ValueError):
    """The folder cannot be reported on (not a survey, or not published yet)."""


def _newer(path: Path, *inputs: Path) -> bool:
    """Is ``path`` there and at least as new as every existing input?"""
    if not path.exists():
        return False
    mtime = path.stat().st_mtime_ns
    return all(not p.exists() or p.stat().st_mtime_ns <= mtime for p in inputs)


def _image_shape(image: Path) -> tuple[int, int] | None:
    try:
        header = fits.getheader(image)
        return int(header["NAXIS2"]), int(header["NAXIS1"])
    except (OSError, KeyError, ValueError):
        return None


def _survey_candidates(root: Path) -> pd.DataFrame:
    path = root / "candidates.parquet"
    if not path.is_file():
        return pd.DataFrame()
    cands = pd.read_parquet(path)
    if "is_survey_candidate" in cands.columns:
        cands = cands[cands["is_survey_candidate"].astype(bool)]
    return cands.reset_index(drop=True)


def _tile_plots_wanted(records: list[dict[str, Any]], cands: pd.DataFrame, which: str) -> list[dict[str, Any]]:
    if which == "none":
        return []
    done = [r for r in records if r.get("status") == "ok"]
    if which == "all":
        return done
    with_cands = set(cands["tile_id"]) if len(cands) else set()
    return [r for r in done if r["tile_id"] in with_cands]


def _stamps(root: Path, report: Path, cands: pd.DataFrame, size_px: int, force: bool) -> list[str | None]:
    """Stamp paths relative to ``report/`` for each candidate row (None where there is no image)."""
    from vasco.report.stamps import write_stamps

    stamps: list[str | None] = [None] * len(cands)
    if not len(cands):
        return stamps
    for tid, rows in cands.groupby("tile_id", sort=True):
        tile = root / "tiles" / str(tid)
        image = tile / "raw" / "image.fits"
        folder = report / "stamps" / str(tid)
        if not image.is_file():
            continue
        if folder.exists() and (force or not _newer(folder, tile / "tile.json")):
            shutil.rmtree(folder)  # the tile was run again since: its NUMBERs may mean other sources
        folder.mkdir(parents=True, exist_ok=True)
        names = write_stamps(image, rows, folder, size_px)
        for i, name in zip(rows.index, names):
            stamps[i] = None if name is None else f"stamps/{tid}/{name}"
    return stamps


def _residual_plots(root: Path, records: list[dict[str, Any]], tile_plots: str) -> list[str]:
    """Draw the astrometric residual plots the report shows, from what each tile wrote; return their paths.

    A tile's plot is its step ``astrometry_plot`` (idempotent: drawn again only
    when the fit's residual pairs changed), fed by the outputs its
    ``astrometry`` step recorded.  A tile whose fit files are gone (e.g. after
    ``vasco clean``) keeps the plot it has, if any.
    """
    from vasco.qc.astrometry import RESIDUAL_PLOT, residual_plot_wanted
    from vasco.records import record_path
    from vasco.steps.astrometry_plot import astrometry_plot

    drawn = []
    for rec in records:
        if not residual_plot_wanted(rec, tile_plots):
            continue
        tile = root / "tiles" / str(rec["tile_id"])
        try:
            outputs = read_json(record_path(tile, "astrometry"))["outputs"]
            manifests = {
                k: {"path": str(tile / outputs[k]["path"]), "sha256": outputs[k]["sha256"]}
                for k in ("pairs", "astrometry")
            }
            if all(Path(m["path"]).is_file() for m in manifests.values()):
                astrometry_plot(tile, manifests["pairs"], manifests["astrometry"], str(rec["tile_id"]))
        except (OSError, ValueError, KeyError) as exc:
            log.warning("tile %s: residual plot not drawn: %s", rec["tile_id"], exc)
        if (tile / RESIDUAL_PLOT).is_file():
            drawn.append(f"tiles/{rec['tile_id']}/{RESIDUAL_PLOT}")
    return sorted(drawn)


def _tile_rows(
    root: Path, records: list[dict[str, Any]], cands: pd.DataFrame, plotted: set[str]
) -> list[dict[str, Any]]:
    per_tile = cands.groupby("tile_id").size().to_dict() if len(cands) else {}
    rows = []
    for rec in records:
        tid = str(rec.get("tile_id"))
        qc = root / "tiles" / tid / "qc"
        plate = rec.get("plate") or {}
        rows.append(
            {
                "tile_id": tid,
                "status": rec.get("status"),
                "reason": rec.get("reason"),
                "plate": plate.get("label") or plate.get("region"),
                "epoch": plate.get("epoch"),
                "detections": (rec.get("counts") or {}).get("detections"),
                "candidates": int(per_tile.get(tid, 0)),
                "qc": f"../tiles/{tid}/qc/tile.png" if tid in plotted and (qc / "tile.png").is_file() else None,
                "astrometry": f"../tiles/{tid}/qc/astrometry.png" if (qc / "astrometry.png").is_file() else None,
            }
        )
    return rows


def build_report(root: Path, *, force: bool = False, created: str | None = None) -> dict[str, Any]:
    """Write (or bring up to date) the report of the survey folder ``root``.

    Parameters
    ----------
    root : Path
        A local survey folder that has been published (``summary.json``).
    force : bool
        Redraw per-tile plots and stamps even where their tile has not changed.
    created : str, optional
        The time printed on the pages (default: now, UTC).  Fixed in tests.

    Returns
    -------
    dict
        The manifest also written to ``report/report.json``: the files
        written (relative to ``root``), counts, coverage and timings.

    Raises
    ------
    ReportError
        If ``root`` is not a survey folder or has no ``summary.json`` yet.
    """
    from vasco.report.coverage import moc_area_deg2, sky_map, tiles_moc, write_moc
    from vasco.report.gallery import write_gallery
    from vasco.report.page import write_index
    from vasco.report.plots import survey_plots, tile_qc_plot

    root = Path(root)
    if not root.is_dir():
        raise ReportError(f"{root}: no such folder")
    if not (root / "summary.json").is_file() or not (root / "config.json").is_file():
        raise ReportError(
            f"{root}: no summary.json or config.json: not a published survey folder "
            "(run `vasco survey --out DIR` first; the summary is written when the survey ends)"
        )
    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    cfg = VascoConfig.read(root / "config.json")
    summary = read_summary(root / "summary.json").to_dict()
    ids = planned_tile_ids(root) or sorted(p.parent.name for p in (root / "tiles").glob("*/tile.json"))
    records = read_tile_records(root, ids)
    cands = _survey_candidates(root)
    report = root / "report"
    report.mkdir(parents=True, exist_ok=True)
    # Partial files of a report build that was killed (only those whose writer is gone).
    for folder in [report, *(p for p in report.rglob("*") if p.is_dir())]:
        remove_dead_temporaries(folder)
    created = created or time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())

    t = time.perf_counter()
    plotted: set[str] = set()
    for rec in _tile_plots_wanted(records, cands, cfg.report.tile_plots):
        tile = root / "tiles" / rec["tile_id"]
        png = tile / "qc" / "tile.png"
        remove_dead_temporaries(png.parent)
        if force or not _newer(png, tile / "tile.json", tile / "detections.parquet"):
            det = pd.read_parquet(tile / "detections.parquet")
            tile_qc_plot(det, rec, cfg, png, image_shape=_image_shape(tile / "raw" / "image.fits"))
        plotted.add(rec["tile_id"])
    timings["tile_plots_s"] = time.perf_counter() - t

    t = time.perf_counter()
    residual_plots = _residual_plots(root, records, cfg.report.tile_plots)
    timings["astrometry_plots_s"] = time.perf_counter() - t

    t = time.perf_counter()
    ast_path = root / "astrometry.csv"
    astrometry = pd.read_csv(ast_path) if ast_path.is_file() else None
    plots = survey_plots(
        root / "detections.parquet",
        cands,
        records,
        summary,
        astrometry,
        cfg,
        report / "plots",
        sample_rows=cfg.report.plot_sample_rows,
    )
    timings["survey_plots_s"] = time.perf_counter() - t

    t = time.perf_counter()
    moc = tiles_moc(records)
    write_moc(moc, report / "moc.fits")
    area = float(moc_area_deg2(moc))
    sky_map(moc, cands, report / "sky.png", title=f"VASCO survey {root.name}: tiles and candidates")
    timings["coverage_s"] = time.perf_counter() - t

    t = time.perf_counter()
    stamps = _stamps(root, report, cands, cfg.report.stamp_size_px, force)
    write_gallery(cands, stamps, report / "gallery.html", title=f"VASCO candidates: {root.name} ({len(cands)})")
    timings["gallery_s"] = time.perf_counter() - t

    n_ok = sum(1 for r in records if r.get("status") == "ok")
    epochs_csv = root / "epochs.csv"
    epochs = (
        pd.read_csv(epochs_csv).astype(object).where(lambda d: d.notna(), None).to_dict(orient="records")
        if epochs_csv.is_file()
        else None
    )
    conflicts = sum(1 for r in records if r.get("status") == "ok" and (r.get("plate") or {}).get("date_conflict"))
    coverage = {"moc": "moc.fits", "sky": "sky.png", "area_deg2": area, "tiles": n_ok}
    write_index(
        report / "index.html",
        summary=summary,
        plots={caption: str(Path(p).relative_to(report)) for caption, p in plots.items()},
        tiles=_tile_rows(root, records, cands, plotted),
        coverage=coverage,
        gallery="gallery.html",
        config_hash=str(summary.get("config_hash", cfg.science_hash())),
        vasco_version=__version__,
        created=created,
        epochs=epochs,
        date_conflicts=conflicts,
    )
    timings["total_s"] = time.perf_counter() - t0
    manifest = {
        "created": created,
        "vasco_version": __version__,
        "index": "report/index.html",
        "gallery": "report/gallery.html",
        "moc": "report/moc.fits",
        "sky": "report/sky.png",
        "plots": {caption: str(Path(p).relative_to(root)) for caption, p in plots.items()},
        "tile_plots": sorted(f"tiles/{t}/qc/tile.png" for t in plotted),
        "astrometry_plots": residual_plots,
        "stamps": sum(s is not None for s in stamps),
        "candidates": int(len(cands)),
        "tiles": {"planned": len(records), "ok": n_ok},
        "coverage_deg2": area,
        "timings": {k: round(v, 3) for k, v in timings.items()},
    }
    write_json_atomic(report / "report.json", manifest)
    return manifest

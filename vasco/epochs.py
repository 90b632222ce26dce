"""Which date was a plate exposed on?  Ask the asteroids on it.

Old cutout headers and the full-plate headers of the shipped plate table
can give dates a day apart for the same plate (XE133: ``24/04/55 06:58`` UT
in the M101 cutout, ``1955-04-23T07:37`` in the table).  Main-belt
asteroids move ~0.25 deg a day, so only the right date puts SkyBoT's
predicted positions on the plate's detections.

:func:`survey_epochs` takes each plate of a finished survey, builds its
candidate dates (:func:`candidate_dates`: the table's, the header's, and
the header's shifted by ``plates.epochs.day_offsets`` days; candidates
closer than ``plates.conflict_hours`` are one), asks SkyBoT (or the
synthetic sky's SkyBoT) for the known minor planets over each processed
tile of the plate at mid-exposure of each candidate, and counts how many
predicted positions (V <= ``mag_max``, ephemeris error <= ``errpos_max``,
inside the tile) have a detection within ``radius_arcsec``
(:func:`count_hits`).  The candidate with most hits wins when it has at
least ``min_hits`` and ``min_ratio`` times the hits of every other
candidate (:func:`decide`).  :func:`write_epochs` writes the per-plate
table ``DIR/epochs.csv`` and ``DIR/epochs.json`` (counts per candidate and
tile) atomically; with ``plates.date_source = 'epochs'`` a survey then uses
each plate's chosen date (:func:`read_verdicts`).

Mid-exposure is ``DATE-OBS + EXPOSURE / 2`` (``DATE-OBS`` is the start;
see :mod:`vasco.plates.header`).  Everything is sorted (plates by region,
tiles by id, candidates in a fixed order): the same survey and answers give
the same files.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from vasco.config import EpochsConfig, VascoConfig
from vasco.io import atomic_path, read_json, write_json_atomic
from vasco.outputs import read_tile_record

__all__ = [
    "EPOCHS_JSON",
    "EPOCHS_CSV",
    "Candidate",
    "TileInfo",
    "candidate_dates",
    "count_hits",
    "decide",
    "iso_to_jd",
    "predictions_in_tile",
    "read_verdicts",
    "survey_epochs",
    "synthetic_skybot",
    "service_skybot",
    "verdict_date",
    "write_epochs",
]

EPOCHS_JSON = "epochs.json"
EPOCHS_CSV = "epochs.csv"
_FORMAT = "vasco-epochs"

#: A SkyBoT answer for one tile at one Julian date (UTC): ``(tile, jd) -> rows``
#: with at least ``ra``, ``dec`` (deg), ``Mv``, ``ErrPos`` (arcsec) and ``Name``.
SkybotFn = Callable[["TileInfo", float], pd.DataFrame]


@dataclass(frozen=True)
class Candidate:
    """One candidate date of a plate.

    Attributes
    ----------
    label : str
        Where it comes from: ``table``, ``header``, ``header-1d`` ...; merged
        candidates join their labels with ``=`` (``table=header-1d``).
    date_obs : str
        Exposure start, ISO.
    jd_mid : float
        Julian date of mid-exposure (what SkyBoT is asked for).
    """

    label: str
    date_obs: str
    jd_mid: float

    @property
    def sources(self) -> tuple[str, ...]:
        """The labels merged into this candidate."""
        return tuple(self.label.split("="))


@dataclass(frozen=True)
class TileInfo:
    """What :func:`survey_epochs` needs of one processed tile."""

    tile_id: str
    folder: Path
    ra: float
    dec: float
    radius_deg: float
    region: str
    label: str | None
    date_obs_header: str | None
    date_obs_table: str | None
    exposure_min: float


def iso_to_jd(iso: str) -> float:
    """Julian date of an ISO date-time (read on the TT scale, as the plate epochs are; ~30 s from UTC)."""
    from astropy.time import Time

    return float(Time(iso, format="isot" if "T" in iso else "iso", scale="tt").jd)


def _shift_iso(iso: str, days: float) -> str:
    from astropy.time import Time, TimeDelta

    return str((Time(iso, format="isot", scale="tt") + TimeDelta(days, format="jd")).isot)


def candidate_dates(
    date_obs_header: str | None,
    date_obs_table: str | None,
    exposure_min: float,
    day_offsets: Sequence[float] = (-1.0, 1.0),
    merge_hours: float = 1.0,
) -> list[Candidate]:
    """The candidate dates of a plate, in a fixed order, near-duplicates merged.

    Order: ``table``, ``header``, then the header date (the table's when
    the header has none) shifted by each of ``day_offsets`` days
    (``header+1d``, ``table-1d`` ...).  A candidate within ``merge_hours``
    of an earlier one joins it (label ``table=header-1d``, the earlier
    date kept).

    Parameters
    ----------
    date_obs_header, date_obs_table : str or None
        Exposure starts, ISO.
    exposure_min : float
        Exposure length (minutes); mid-exposure is the start plus half.
    day_offsets : sequence of float
    merge_hours : float

    Returns
    -------
    list of Candidate
        Empty when neither date is known.
    """
    raw: list[tuple[str, str]] = []
    if date_obs_table:
        raw.append(("table", date_obs_table))
    if date_obs_header:
        raw.append(("header", date_obs_header))
    base_name, base = ("header", date_obs_header) if date_obs_header else ("table", date_obs_table)
    if base:
        for d in day_offsets:
            if d:
                raw.append((f"{base_name}{d:+g}d", _shift_iso(base, float(d))))
    merged: list[list[Any]] = []  # [labels, iso, jd_start]
    for name, iso in raw:
        jd = iso_to_jd(iso)
        for m in merged:
            if abs(m[2] - jd) * 24.0 <= merge_hours:
                m[0].append(name)
                break
        else:
            merged.append([[name], iso, jd])
    half = float(exposure_min or 0.0) / 2.0 / 1440.0
    return [Candidate("=".join(labels), iso, jd + half) for labels, iso, jd in merged]


def predictions_in_tile(pred: pd.DataFrame, header: Any, margin_px: float) -> np.ndarray:
    """Which predicted positions fall on the tile (at least ``margin_px`` inside its edges).

    Pixels from the header's plate polynomial (every DSS cutout has one);
    the header's ~1" errors do not matter at a margin of a few pixels.
    """
    from vasco.plates.model import PlateSolution

    if not len(pred):
        return np.zeros(0, dtype=bool)
    sol = PlateSolution.from_header(header)
    x, y = sol.sky_to_pix(pred["ra"].to_numpy(np.float64), pred["dec"].to_numpy(np.float64))
    x = np.atleast_1d(np.asarray(x, dtype=np.float64))
    y = np.atleast_1d(np.asarray(y, dtype=np.float64))
    nx, ny = float(header["NAXIS1"]), float(header["NAXIS2"])
    return (x >= 0.5 + margin_px) & (x <= nx + 0.5 - margin_px) & (y >= 0.5 + margin_px) & (y <= ny + 0.5 - margin_px)


def count_hits(
    pred_ra: np.ndarray, pred_dec: np.ndarray, det_ra: np.ndarray, det_dec: np.ndarray, radius_arcsec: float
) -> np.ndarray:
    """For each predicted position, is there a detection within ``radius_arcsec``? (true angular distance)"""
    from scipy.spatial import cKDTree

    n = len(pred_ra)
    if n == 0 or len(det_ra) == 0:
        return np.zeros(n, dtype=bool)

    def unit(ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
        a, d = np.radians(np.asarray(ra, np.float64)), np.radians(np.asarray(dec, np.float64))
        return np.column_stack([np.cos(d) * np.cos(a), np.cos(d) * np.sin(a), np.sin(d)])

    chord = 2.0 * math.sin(math.radians(radius_arcsec / 3600.0) / 2.0)
    dist, _ = cKDTree(unit(det_ra, det_dec)).query(unit(pred_ra, pred_dec), k=1)
    return np.asarray(dist <= chord, dtype=bool)


def decide(counts: Sequence[Mapping[str, Any]], cfg: EpochsConfig) -> dict[str, Any]:
    """The verdict from each candidate's hits.

    The candidate with most hits wins when it has at least ``min_hits``,
    more hits than every other candidate and at least ``min_ratio`` times
    theirs.  Otherwise the plate is undecided.

    Returns
    -------
    dict
        ``decided``, ``winner`` (label), ``date_obs`` (start, ISO),
        ``n_hits``, ``n_predicted``, ``runner_up`` and ``runner_up_hits``,
        ``verdict`` (``'table'``, ``'header'``, ``'header=table'`` when
        both name the winning date, ``'other'``, or ``'undecided'``) and
        ``why``.
    """
    if not counts:
        return {
            "decided": False,
            "verdict": "undecided",
            "winner": None,
            "date_obs": None,
            "n_hits": 0,
            "n_predicted": 0,
            "runner_up": None,
            "runner_up_hits": None,
            "why": "no candidate date",
        }
    order = sorted(range(len(counts)), key=lambda i: (-int(counts[i]["n_hits"]), i))
    best = counts[order[0]]
    rival = counts[order[1]] if len(order) > 1 else None
    hits, rival_hits = int(best["n_hits"]), (int(rival["n_hits"]) if rival is not None else 0)
    out = {
        "winner": best["label"],
        "date_obs": best["date_obs"],
        "n_hits": hits,
        "n_predicted": int(best["n_predicted"]),
        "runner_up": rival["label"] if rival is not None else None,
        "runner_up_hits": rival_hits if rival is not None else None,
    }
    if hits < cfg.min_hits:
        why = f"best candidate {best['label']} has {hits} hits, fewer than min_hits={cfg.min_hits}"
    elif rival is not None and (hits <= rival_hits or hits < cfg.min_ratio * rival_hits):
        why = f"{best['label']} ({hits} hits) is not {cfg.min_ratio:g} times {rival['label']} ({rival_hits} hits)"
    else:
        srcs = set(str(best["label"]).split("="))
        verdict = (
            "header=table"
            if {"header", "table"} <= srcs
            else "table"
            if "table" in srcs
            else "header"
            if "header" in srcs
            else "other"
        )
        why = f"{best['label']}: {hits} of {int(best['n_predicted'])} predicted minor planets on detections" + (
            f", {rival['label']}: {rival_hits}" if rival is not None else ""
        )
        return {**out, "decided": True, "verdict": verdict, "why": why}
    return {**out, "decided": False, "verdict": "undecided", "why": why}


# --------------------------------------------------------------------------- SkyBoT answers


def synthetic_skybot(tile: TileInfo, jd: float) -> pd.DataFrame:
    """The synthetic sky's SkyBoT: the tile's asteroid list moved to ``jd``.

    The list the survey got (``catalogs/skybot.parquet``, at the true
    mid-exposure) answers for any other date through
    :func:`vasco.synthetic.archives.skybot_at` (the synthetic asteroids move
    in straight lines at their listed rates).

    Raises
    ------
    ValueError
        Naming the tile when it has no synthetic SkyBoT list.
    """
    from vasco.synthetic.archives import skybot_at

    path = tile.folder / "catalogs" / "skybot.parquet"
    if not path.is_file():
        raise ValueError(f"tile {tile.tile_id}: no synthetic SkyBoT list ({path}); is it a synthetic-sky survey?")
    return skybot_at(pd.read_parquet(path), jd)


def service_skybot(cfg: VascoConfig) -> SkybotFn:
    """SkyBoT's cone search (:func:`vasco.sources.skybot.query_skybot`) over each tile, seen from
    ``vetoes.asteroids.observer``, with the survey's ``sources.skybot`` settings."""
    from vasco.sources.skybot import query_skybot

    def ask(tile: TileInfo, jd: float) -> pd.DataFrame:
        return query_skybot(
            tile.ra, tile.dec, tile.radius_deg, jd, cfg.vetoes.asteroids.observer, config=cfg.sources.skybot
        )

    return ask


# --------------------------------------------------------------------------- the survey


def _tile_infos(root: Path) -> list[TileInfo]:
    from vasco.plates.header import check_poss1e, plate_dates
    from vasco.steps.header import read_header

    out = []
    for path in sorted((root / "tiles").glob("*/tile.json")):
        rec = read_tile_record(path)
        if rec.status != "ok" or rec.centre is None:
            continue
        folder = path.parent
        image = folder / "raw" / "image.fits"
        det = folder / "detections.parquet"
        if not (image.is_file() and det.is_file()):
            continue
        header = read_header(image)
        chk = check_poss1e(header)
        if not chk.ok or chk.region is None:
            continue
        dates = plate_dates(header, chk.region)
        size = float(rec.size_arcmin or 30.0)
        out.append(
            TileInfo(
                tile_id=str(rec.tile_id or folder.name),
                folder=folder,
                ra=rec.centre.ra,
                dec=rec.centre.dec,
                radius_deg=size / 2.0 * math.sqrt(2.0) / 60.0 + 1.0 / 60.0,
                region=chk.region,
                label=chk.label,
                date_obs_header=dates.date_obs_header,
                date_obs_table=dates.date_obs_table,
                exposure_min=float(dates.exposure_min or 0.0),
            )
        )
    return out


def _detections(tile: TileInfo, exclude_counterparts: bool) -> tuple[np.ndarray, np.ndarray]:
    det = pd.read_parquet(tile.folder / "detections.parquet")
    keep = np.isfinite(det["ra"].to_numpy(np.float64)) & np.isfinite(det["dec"].to_numpy(np.float64))
    if exclude_counterparts and "counterpart_sep_arcsec" in det.columns:
        keep &= ~np.isfinite(det["counterpart_sep_arcsec"].to_numpy(np.float64))
    return det["ra"].to_numpy(np.float64)[keep], det["dec"].to_numpy(np.float64)[keep]


def _most_common(values: Sequence[str | None]) -> str | None:
    known = sorted(v for v in values if v)
    if not known:
        return None
    return max(sorted(set(known)), key=known.count)


def survey_epochs(
    root: Path,
    cfg: VascoConfig,
    skybot: SkybotFn,
    skybot_name: str = "service",
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Judge every plate's date of a finished survey by its asteroids (see the module docstring).

    Parameters
    ----------
    root : Path
        The survey folder (``--out`` of ``vasco survey``).
    cfg : VascoConfig
        ``plates.conflict_hours`` and ``plates.epochs`` are used.
    skybot : callable
        ``(tile, jd) -> predicted minor planets`` (:func:`synthetic_skybot`
        or :func:`service_skybot`).
    skybot_name : str
        Recorded in the output (``'synthetic'`` or ``'service'``).
    log : callable, optional
        Progress messages.

    Returns
    -------
    dict
        ``plates``: region -> {dates, candidates with their counts per tile,
        verdict}; also the parameters used.  A plate whose SkyBoT queries
        fail is undecided, with the error.

    Raises
    ------
    ValueError
        When the folder has no processed tile.
    """
    from vasco.sources.http import SourceError
    from vasco.steps.header import read_header

    ec = cfg.plates.epochs
    tiles = _tile_infos(Path(root))
    if not tiles:
        raise ValueError(f"{root}: no processed (ok) tile with a cutout and detections; run a survey first")
    by_plate: dict[str, list[TileInfo]] = {}
    for t in tiles:
        by_plate.setdefault(t.region, []).append(t)
    plates: dict[str, Any] = {}
    for region in sorted(by_plate):
        group = by_plate[region]
        header_date = _most_common([t.date_obs_header for t in group])
        table_date = _most_common([t.date_obs_table for t in group])
        exposure = max(t.exposure_min for t in group)
        cands = candidate_dates(header_date, table_date, exposure, ec.day_offsets, cfg.plates.conflict_hours)
        entry: dict[str, Any] = {
            "region": region,
            "label": group[0].label,
            "tiles": [t.tile_id for t in group],
            "date_obs_header": header_date,
            "date_obs_table": table_date,
            "header_dates_seen": sorted({t.date_obs_header for t in group if t.date_obs_header}),
            "date_conflict_hours": (
                round(abs(iso_to_jd(header_date) - iso_to_jd(table_date)) * 24.0, 4)
                if header_date and table_date
                else None
            ),
            "exposure_min": exposure,
            "candidates": [],
        }
        try:
            dets = {t.tile_id: _detections(t, ec.exclude_counterparts) for t in group}
            headers = {t.tile_id: read_header(t.folder / "raw" / "image.fits") for t in group}
            for c in cands:
                per_tile = {}
                n_pred = n_hits = 0
                hit_names: list[str] = []
                for t in group:
                    pred = skybot(t, c.jd_mid)
                    keep = np.ones(len(pred), dtype=bool)
                    if len(pred):
                        mv = pd.to_numeric(pred["Mv"], errors="coerce").to_numpy(np.float64)
                        err = pd.to_numeric(pred["ErrPos"], errors="coerce").to_numpy(np.float64)
                        keep = (mv <= ec.mag_max) & ~(err > ec.errpos_max_arcsec)
                        keep &= predictions_in_tile(pred, headers[t.tile_id], ec.edge_margin_px)
                    sel = pred.loc[keep]
                    hit = count_hits(
                        sel["ra"].to_numpy(np.float64) if len(sel) else np.zeros(0),
                        sel["dec"].to_numpy(np.float64) if len(sel) else np.zeros(0),
                        *dets[t.tile_id],
                        ec.radius_arcsec,
                    )
                    per_tile[t.tile_id] = {"n_predicted": int(len(sel)), "n_hits": int(hit.sum())}
                    n_pred += int(len(sel))
                    n_hits += int(hit.sum())
                    if len(sel):
                        hit_names += [str(n) for n in sel["Name"].to_numpy()[hit]]
                entry["candidates"].append(
                    {
                        "label": c.label,
                        "date_obs": c.date_obs,
                        "jd_mid": round(c.jd_mid, 6),
                        "n_predicted": n_pred,
                        "n_hits": n_hits,
                        "tiles": per_tile,
                        "hit_names": sorted(hit_names),
                    }
                )
            entry.update(decide(entry["candidates"], ec))
        except (SourceError, ValueError, OSError) as exc:
            entry.update(
                {
                    "decided": False,
                    "verdict": "undecided",
                    "winner": None,
                    "date_obs": None,
                    "n_hits": None,
                    "error": f"{type(exc).__name__}: {exc}"[:500],
                    "why": "SkyBoT or tile data could not be read",
                }
            )
        plates[region] = entry
        if log is not None:
            counts = ", ".join(f"{c['label']} {c['n_hits']}/{c['n_predicted']}" for c in entry["candidates"])
            log(f"{region}: {entry['verdict']} ({counts})")
    return {
        "format": _FORMAT,
        "version": 1,
        "skybot": skybot_name,
        "parameters": {
            **ec.model_dump(mode="json"),
            "conflict_hours": cfg.plates.conflict_hours,
            "observer": cfg.vetoes.asteroids.observer,
        },
        "n_tiles": len(tiles),
        "plates": plates,
    }


def epochs_table(result: Mapping[str, Any]) -> pd.DataFrame:
    """The per-plate table of :func:`survey_epochs` (what ``epochs.csv`` holds)."""
    rows = []
    for region, p in sorted(result["plates"].items()):
        by_src: dict[str, Mapping[str, Any]] = {}
        for c in p.get("candidates", []):
            for src in str(c["label"]).split("="):
                by_src[src] = c
        h, t = by_src.get("header"), by_src.get("table")
        rows.append(
            {
                "region": region,
                "label": p.get("label"),
                "n_tiles": len(p.get("tiles", [])),
                "date_obs_header": p.get("date_obs_header"),
                "date_obs_table": p.get("date_obs_table"),
                "date_conflict_hours": p.get("date_conflict_hours"),
                "exposure_min": p.get("exposure_min"),
                "hits_header": h["n_hits"] if h else None,
                "predicted_header": h["n_predicted"] if h else None,
                "hits_table": t["n_hits"] if t else None,
                "predicted_table": t["n_predicted"] if t else None,
                "candidates": "; ".join(
                    f"{c['label']} {c['n_hits']}/{c['n_predicted']}" for c in p.get("candidates", [])
                ),
                "verdict": p.get("verdict"),
                "winner": p.get("winner"),
                "date_obs": p.get("date_obs"),
                "decided": bool(p.get("decided")),
                "why": p.get("why"),
            }
        )
    cols = [
        "region",
        "label",
        "n_tiles",
        "date_obs_header",
        "date_obs_table",
        "date_conflict_hours",
        "exposure_min",
        "hits_header",
        "predicted_header",
        "hits_table",
        "predicted_table",
        "candidates",
        "verdict",
        "winner",
        "date_obs",
        "decided",
        "why",
    ]
    return pd.DataFrame(rows, columns=cols)


def write_epochs(root: Path, result: Mapping[str, Any]) -> tuple[Path, Path]:
    """Write ``epochs.json`` (everything) and ``epochs.csv`` (one row per plate) atomically."""
    root = Path(root)
    js = write_json_atomic(root / EPOCHS_JSON, dict(result))
    csv = root / EPOCHS_CSV
    with atomic_path(csv, suffix=".csv") as tmp:
        epochs_table(result).to_csv(tmp, index=False)
    return js, csv


# --------------------------------------------------------------------------- using a verdict


def read_verdicts(store: Any) -> dict[str, dict[str, Any]] | None:
    """Per plate, what a survey needs of ``epochs.json``: ``{region: {decided, date_obs, winner, n_hits}}``.

    Parameters
    ----------
    store : vasco.storage.Storage or path
        The survey root.

    Returns
    -------
    dict or None
        None when the root has no ``epochs.json``.

    Raises
    ------
    ValueError
        Naming the file when it is not an ``epochs.json`` of ``vasco epochs``.
    """
    if isinstance(store, (str, Path)):
        path = Path(store) / EPOCHS_JSON
        if not path.is_file():
            return None
        try:
            data = read_json(path)
        except ValueError as exc:
            raise ValueError(f"{path}: not valid JSON ({exc})") from None
        where = str(path)
    else:
        if not store.exists(EPOCHS_JSON):
            return None
        data = store.read_json(EPOCHS_JSON)
        where = store.uri(EPOCHS_JSON) if hasattr(store, "uri") else EPOCHS_JSON
    if not isinstance(data, dict) or data.get("format") != _FORMAT or not isinstance(data.get("plates"), dict):
        raise ValueError(f"{where}: not an epochs file of `vasco epochs` (format {_FORMAT!r})")
    return {
        str(region): {
            "decided": bool(p.get("decided")),
            "date_obs": p.get("date_obs"),
            "winner": p.get("winner"),
            "n_hits": p.get("n_hits"),
        }
        for region, p in sorted(data["plates"].items())
        if isinstance(p, dict)
    }


def verdict_date(verdict: Mapping[str, Any] | None, plate: Mapping[str, Any]) -> str | None:
    """The date a tile of this plate should use under ``plates.date_source = 'epochs'``.

    ``plate`` is the tile's ``plate`` block; None when it cannot be told
    (a record without the plate-date keys).
    """
    if "date_obs_table" not in plate and "date_obs_header" not in plate:
        return None
    if verdict and verdict.get("decided") and verdict.get("date_obs"):
        from astropy.time import Time

        return str(Time(str(verdict["date_obs"]), format="isot", scale="tt").isot)
    fallback = plate.get("date_obs_table") or plate.get("date_obs_header")
    return str(fallback) if fallback else None

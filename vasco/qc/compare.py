"""Compare a survey with a published list of candidates.

:func:`compare_published` answers, over the sky the survey covered (the
footprints of its processed tiles):

* **recall**: the fraction of published positions with one of our
  detections, and with one of our candidates, within 1, 2, 3, 5 and 10";
* **where each one went**: for every published position in the footprint,
  the funnel stage that removed our nearest detection within the match
  radius (``not_detected`` if there is none; ``candidate`` if it survived);
* **ours only**: our candidates with no published position within the radius;
* for lists with a NEOWISE position (the "vanish-neowise" style, columns
  ``RA_NEOWISE``/``DEC_NEOWISE``): how many of the detected ones have an
  optical counterpart in our matching (``matched_in_optical``) and how many
  none (``ir_only``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from vasco.astrometry.tangent import sky_to_tangent
from vasco.filters.cuts import CUT_ORDER, SPREAD_CUT
from vasco.filters.registry import VETO_ORDER
from vasco.matching.crossmatch import chord, nearest_within

__all__ = ["RECALL_RADII", "read_published", "in_footprint", "funnel_stage", "compare_published"]

#: Radii (arcsec) at which recall is reported.
RECALL_RADII: tuple[float, ...] = (1.0, 2.0, 3.0, 5.0, 10.0)


def read_published(path: Path) -> pd.DataFrame:
    """A published list as ``ra``, ``dec`` (float64 degrees) plus its other columns.

    RA/Dec columns are found case-insensitively (``ra``/``RA``/``RAJ2000``,
    ``dec``/``DEC``/``DEJ2000``); raises ValueError naming the file when
    they are missing or not numbers in range.
    """
    path = Path(path)
    try:
        table = pd.read_csv(path, comment="#")
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ValueError(f"published list {path}: cannot be read as CSV ({exc})") from exc
    lower = {c.lower(): c for c in table.columns}
    ra_col = next((lower[c] for c in ("ra", "raj2000", "ra_icrs") if c in lower), None)
    dec_col = next((lower[c] for c in ("dec", "dej2000", "de_icrs") if c in lower), None)
    if ra_col is None or dec_col is None:
        raise ValueError(f"published list {path}: needs RA and Dec columns, found {list(table.columns)}")
    ra = pd.to_numeric(table[ra_col], errors="coerce").to_numpy(np.float64)
    dec = pd.to_numeric(table[dec_col], errors="coerce").to_numpy(np.float64)
    bad = ~np.isfinite(ra) | ~np.isfinite(dec) | (ra < 0) | (ra >= 360) | (np.abs(dec) > 90)
    if bad.any():
        row = int(np.flatnonzero(bad)[0]) + 2  # 1-based, after the header line
        raise ValueError(f"published list {path}: line {row} has no valid RA/Dec ({table.iloc[row - 2].tolist()})")
    out = table.drop(columns=[ra_col, dec_col]).copy()
    out.insert(0, "ra", ra)
    out.insert(1, "dec", dec)
    return out


def in_footprint(ra: np.ndarray, dec: np.ndarray, tiles: Sequence[Mapping[str, Any]]) -> np.ndarray:
    """Index of a processed tile whose square footprint holds each position (-1: none).

    Each tile is ``{"ra", "dec", "size_arcmin"}``; the footprint is the square
    of that side on the tangent plane at its centre, axes along RA and Dec.
    Tiles are found through a KD-tree of their centres, so the cost grows
    with the number of positions, not positions x tiles.
    """
    from scipy.spatial import cKDTree

    from vasco.matching.propagate import radec_to_unit

    ra = np.atleast_1d(np.asarray(ra, dtype=np.float64))
    dec = np.atleast_1d(np.asarray(dec, dtype=np.float64))
    where = np.full(ra.size, -1, dtype=np.int64)
    if not len(tiles) or not ra.size:
        return where
    t_ra = np.array([float(t["ra"]) for t in tiles])
    t_dec = np.array([float(t["dec"]) for t in tiles])
    half = np.array([float(t["size_arcmin"]) for t in tiles]) / 120.0
    reach = float(half.max()) * np.sqrt(2.0) * 1.01
    tree = cKDTree(radec_to_unit(t_ra, t_dec).reshape(-1, 3))
    near = tree.query_ball_point(radec_to_unit(ra, dec).reshape(-1, 3), chord(reach * 3600.0))
    for i, ks in enumerate(near):
        for k in sorted(ks):
            xi, eta = sky_to_tangent(ra[i : i + 1], dec[i : i + 1], t_ra[k], t_dec[k])
            if abs(float(xi[0])) <= half[k] and abs(float(eta[0])) <= half[k]:
                where[i] = k
                break
    return where


def funnel_stage(det: pd.DataFrame) -> np.ndarray:
    """The funnel stage that removed each detection, or ``candidate``.

    Order: the quality cuts (:data:`vasco.filters.cuts.CUT_ORDER`), the
    counterpart vetoes (``no_<catalogue>``), the SPREAD_MODEL cut, the later vetoes
    (:data:`vasco.filters.registry.VETO_ORDER`), then ``dedup`` (a tile
    candidate that is not the survey's candidate).
    """
    stage = np.full(len(det), "candidate", dtype=object)
    decided = np.zeros(len(det), dtype=bool)

    def take(mask: np.ndarray, name: str) -> None:
        hit = mask & ~decided
        stage[hit] = name
        decided[hit] = True

    for name in CUT_ORDER:
        col = f"cut_{name}"
        if col in det:
            take(~det[col].to_numpy(bool), name)
    for col in [c for c in det.columns if c.startswith("no_") and c != "no_counterpart"]:
        take(~det[col].fillna(True).to_numpy(bool), col)
    if f"cut_{SPREAD_CUT}" in det:
        # Missing where the detection left the funnel before the cut.
        take(~det[f"cut_{SPREAD_CUT}"].fillna(True).to_numpy(bool), SPREAD_CUT)
    for name in VETO_ORDER:
        col = f"veto_{name}"
        if col in det:
            take(det[col].fillna(False).to_numpy(bool), name)
    if "is_survey_candidate" in det:
        take(~det["is_survey_candidate"].to_numpy(bool), "dedup")
    elif "is_candidate" in det:
        take(~det["is_candidate"].to_numpy(bool), "other")
    return stage


def compare_published(
    published: pd.DataFrame,
    detections: pd.DataFrame,
    tiles: Sequence[Mapping[str, Any]],
    *,
    match_radius_arcsec: float = 5.0,
    radii: Iterable[float] = RECALL_RADII,
) -> dict[str, Any]:
    """Recall, attribution and our extra candidates (module docstring).

    Parameters
    ----------
    published : DataFrame
        :func:`read_published` output.
    detections : DataFrame
        The survey's merged ``detections.parquet`` (``ra``, ``dec``, cut and
        veto columns, ``is_survey_candidate`` or ``is_candidate``).
    tiles : sequence of mapping
        Processed tiles: ``{"tile_id", "ra", "dec", "size_arcmin"}``.
    match_radius_arcsec : float
        A published position and a detection closer than this are one source.
    """
    radii = tuple(float(r) for r in radii)
    if match_radius_arcsec <= 0:
        raise ValueError(f"match radius must be positive, got {match_radius_arcsec}")
    where = in_footprint(published["ra"].to_numpy(), published["dec"].to_numpy(), tiles)
    pub = published.loc[where >= 0].reset_index(drop=True)
    pub_tile = [tiles[k].get("tile_id") for k in where[where >= 0]]
    cand_col = "is_survey_candidate" if "is_survey_candidate" in detections else "is_candidate"
    cands = detections.loc[detections[cand_col].to_numpy(bool)].reset_index(drop=True)
    rmax = max(radii + (match_radius_arcsec,))
    d_idx, d_sep = nearest_within(pub["ra"], pub["dec"], detections["ra"], detections["dec"], rmax)
    c_idx, c_sep = nearest_within(pub["ra"], pub["dec"], cands["ra"], cands["dec"], rmax)
    n = len(pub)

    def recall(sep: np.ndarray) -> dict[str, float | None]:
        return {f"{r:g}": (float(np.mean(sep <= r)) if n else None) for r in radii}

    # Attribution: a published source that is one of our candidates is 'candidate', whichever
    # measurement is nearest; otherwise the stage of its nearest primary measurement (a copy of
    # a source in an overlapping tile is not what decides).
    stages = funnel_stage(detections)
    if "is_primary" in detections:
        prim = np.flatnonzero(detections["is_primary"].to_numpy(bool))
    else:
        prim = np.arange(len(detections))
    p_idx, p_sep = nearest_within(
        pub["ra"],
        pub["dec"],
        detections["ra"].to_numpy()[prim],
        detections["dec"].to_numpy()[prim],
        match_radius_arcsec,
    )
    matched = np.isfinite(d_sep) & (d_sep <= match_radius_arcsec)
    is_cand = np.isfinite(c_sep) & (c_sep <= match_radius_arcsec)
    where_went = np.where(p_idx >= 0, stages[prim[np.where(p_idx >= 0, p_idx, 0)]], "not_detected")
    where_went = np.where(is_cand, "candidate", where_went)
    where_went = np.where(matched | is_cand, where_went, "not_detected")
    rows = pd.DataFrame(
        {
            "ra": pub["ra"],
            "dec": pub["dec"],
            "tile_id": pub_tile,
            "det_sep_arcsec": d_sep,
            "cand_sep_arcsec": c_sep,
            "stage": where_went,
        }
    )
    # Our candidates with no published position near them.
    if len(cands):
        back, _ = nearest_within(cands["ra"], cands["dec"], published["ra"], published["dec"], match_radius_arcsec)
        ours_only = cands.loc[back < 0, [c for c in ("tile_id", "NUMBER", "ra", "dec") if c in cands]]
    else:
        ours_only = cands.reindex(columns=["tile_id", "NUMBER", "ra", "dec"])
    result: dict[str, Any] = {
        "published_total": int(len(published)),
        "published_in_footprint": n,
        "match_radius_arcsec": match_radius_arcsec,
        "recall_detections": recall(d_sep),
        "recall_candidates": recall(c_sep),
        "removed_by_stage": dict(sorted(Counter(where_went).items())),
        "our_candidates": int(len(cands)),
        "our_candidates_not_published": int(len(ours_only)),
        "rows": rows,
        "ours_only": ours_only.reset_index(drop=True),
    }
    if {"RA_NEOWISE", "DEC_NEOWISE"} <= set(published.columns) and "counterpart_sep_arcsec" in detections:
        optical = np.isfinite(detections["counterpart_sep_arcsec"].to_numpy(np.float64))
        has = np.where(matched, optical[np.where(matched, d_idx, 0)], False)
        result["neowise_split"] = {
            "detected": int(matched.sum()),
            "matched_in_optical": int((matched & has).sum()),
            "ir_only": int((matched & ~has).sum()),
        }
    return result

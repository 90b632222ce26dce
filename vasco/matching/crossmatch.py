"""Nearest-neighbour matching on the sphere with a spatial index."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.spatial import cKDTree

from vasco.matching.propagate import radec_to_unit

__all__ = ["nearest_within", "neighbours_within", "angular_separation_arcsec", "chord"]


def angular_separation_arcsec(ra1: ArrayLike, dec1: ArrayLike, ra2: ArrayLike, dec2: ArrayLike) -> NDArray[np.float64]:
    """Great-circle separation in arcsec (Vincenty form, exact at all separations)."""
    ra1, dec1, ra2, dec2 = (np.radians(np.asarray(a, dtype=np.float64)) for a in (ra1, dec1, ra2, dec2))
    dra = ra2 - ra1
    num = np.hypot(np.cos(dec2) * np.sin(dra), np.cos(dec1) * np.sin(dec2) - np.sin(dec1) * np.cos(dec2) * np.cos(dra))
    den = np.sin(dec1) * np.sin(dec2) + np.cos(dec1) * np.cos(dec2) * np.cos(dra)
    return np.degrees(np.arctan2(num, den)) * 3600.0


def chord(radius_arcsec: float) -> float:
    """Length of the chord between two unit vectors ``radius_arcsec`` apart (for KD-tree queries)."""
    return float(2.0 * np.sin(np.radians(radius_arcsec / 3600.0) / 2.0))


def neighbours_within(
    ra: ArrayLike,
    dec: ArrayLike,
    ref_ra: ArrayLike,
    ref_dec: ArrayLike,
    radius_arcsec: float,
) -> list[tuple[NDArray[np.int64], NDArray[np.float64]]]:
    """For each source, every reference within ``radius_arcsec``: (indices, true separations in arcsec).

    Indices come sorted; a source with none gets two empty arrays.  Like
    :func:`nearest_within`, it works on unit vectors (no RA wrap or pole cases).
    """
    ra_a = np.asarray(ra, dtype=np.float64).reshape(-1)
    dec_a = np.asarray(dec, dtype=np.float64).reshape(-1)
    rra = np.asarray(ref_ra, dtype=np.float64).reshape(-1)
    rdec = np.asarray(ref_dec, dtype=np.float64).reshape(-1)
    empty = (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64))
    if ra_a.size == 0 or rra.size == 0:
        return [empty] * ra_a.size
    tree = cKDTree(radec_to_unit(rra, rdec).reshape(-1, 3))
    near = tree.query_ball_point(radec_to_unit(ra_a, dec_a).reshape(-1, 3), chord(radius_arcsec) * (1 + 1e-9))
    out = []
    for i, js in enumerate(near):
        if not js:
            out.append(empty)
            continue
        j = np.asarray(sorted(js), dtype=np.int64)
        d = angular_separation_arcsec(ra_a[i], dec_a[i], rra[j], rdec[j])
        inside = d <= radius_arcsec
        out.append((j[inside], d[inside]))
    return out


def nearest_within(
    ra: ArrayLike,
    dec: ArrayLike,
    ref_ra: ArrayLike,
    ref_dec: ArrayLike,
    radius_arcsec: float,
) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """For each source, the nearest reference within ``radius_arcsec``.

    Works on 3-D unit vectors, so RA 0/360 and the poles need no special
    case.  Returns the reference index (-1 when none) and the true angular
    separation in arcsec (NaN when none).
    """
    src = radec_to_unit(ra, dec).reshape(-1, 3)
    ref = radec_to_unit(ref_ra, ref_dec).reshape(-1, 3)
    n = src.shape[0]
    idx = np.full(n, -1, dtype=np.int64)
    sep = np.full(n, np.nan, dtype=np.float64)
    if n == 0 or ref.shape[0] == 0:
        return idx, sep
    dist, j = cKDTree(ref).query(src, k=1, distance_upper_bound=chord(radius_arcsec) * (1 + 1e-9))
    found = np.isfinite(dist)
    idx[found] = j[found]
    ra_a = np.asarray(ra, dtype=np.float64).reshape(-1)
    dec_a = np.asarray(dec, dtype=np.float64).reshape(-1)
    rra = np.asarray(ref_ra, dtype=np.float64).reshape(-1)
    rdec = np.asarray(ref_dec, dtype=np.float64).reshape(-1)
    sep[found] = angular_separation_arcsec(ra_a[found], dec_a[found], rra[j[found]], rdec[j[found]])
    # The chord bound is exact, but keep the contract strict on the angle itself.
    outside = sep > radius_arcsec
    idx[outside] = -1
    sep[outside] = np.nan
    return idx, sep

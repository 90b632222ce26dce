"""Move catalogue positions to another epoch with their proper motions."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["propagate_positions", "radec_to_unit", "unit_to_radec"]

MAS_PER_RAD = 180.0 / np.pi * 3600.0e3


def radec_to_unit(ra: ArrayLike, dec: ArrayLike) -> NDArray[np.float64]:
    """Unit vectors (N, 3) from RA/Dec in degrees."""
    ra_r = np.radians(np.asarray(ra, dtype=np.float64))
    dec_r = np.radians(np.asarray(dec, dtype=np.float64))
    cd = np.cos(dec_r)
    return np.stack([cd * np.cos(ra_r), cd * np.sin(ra_r), np.sin(dec_r)], axis=-1)


def unit_to_radec(v: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """RA in [0, 360) and Dec in degrees from (N, 3) vectors (need not be unit)."""
    x, y, z = v[..., 0], v[..., 1], v[..., 2]
    ra = np.degrees(np.arctan2(y, x)) % 360.0
    dec = np.degrees(np.arctan2(z, np.hypot(x, y)))
    return ra, dec


def propagate_positions(
    ra: ArrayLike,
    dec: ArrayLike,
    pmra: ArrayLike,
    pmdec: ArrayLike,
    from_epoch: ArrayLike,
    to_epoch: float,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Positions at ``to_epoch`` from positions and proper motions at ``from_epoch``.

    Uniform straight-line space motion with zero radial velocity: the
    position vector moves by ``(pmra * p + pmdec * q) * dt`` in the tangent
    plane and is renormalised.  This is what astropy's
    ``SkyCoord.apply_space_motion`` does for a star with a distance and no
    radial velocity, without needing a distance, and it stays exact at the
    poles and across RA 0/360.

    Parameters
    ----------
    ra, dec : array_like
        Degrees at ``from_epoch``.
    pmra, pmdec : array_like
        mas/yr; ``pmra`` includes the cos(Dec) factor (Gaia convention).
        NaN proper motions are treated as zero (the position is kept).
    from_epoch : array_like
        Julian years (e.g. 2016.0 for Gaia DR3), scalar or per row.
    to_epoch : float
        Julian year of the target epoch (the plate's DATE-OBS).
    """
    ra_r = np.radians(np.asarray(ra, dtype=np.float64))
    dec_r = np.radians(np.asarray(dec, dtype=np.float64))
    pmra_a = np.nan_to_num(np.asarray(pmra, dtype=np.float64), nan=0.0)
    pmdec_a = np.nan_to_num(np.asarray(pmdec, dtype=np.float64), nan=0.0)
    dt = float(to_epoch) - np.asarray(from_epoch, dtype=np.float64)
    sa, ca = np.sin(ra_r), np.cos(ra_r)
    sd, cd = np.sin(dec_r), np.cos(dec_r)
    r = np.stack([cd * ca, cd * sa, sd], axis=-1)
    p = np.stack([-sa, ca, np.zeros_like(sa)], axis=-1)
    q = np.stack([-sd * ca, -sd * sa, cd], axis=-1)
    motion = (pmra_a * dt / MAS_PER_RAD)[..., None] * p + (pmdec_a * dt / MAS_PER_RAD)[..., None] * q
    return unit_to_radec(r + motion)

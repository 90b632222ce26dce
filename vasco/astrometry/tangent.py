"""Gnomonic (tangent-plane) projection about a point, in degrees.

Shared by the synthetic sky and the plate fit.
"""

from __future__ import annotations

import numpy as np

__all__ = ["tangent_to_sky", "sky_to_tangent"]


def tangent_to_sky(xi: np.ndarray, eta: np.ndarray, ra0: float, dec0: float) -> tuple[np.ndarray, np.ndarray]:
    """Gnomonic projection inverse: standard coordinates (deg) -> RA, Dec (deg)."""
    x = np.radians(np.asarray(xi, dtype=np.float64))
    y = np.radians(np.asarray(eta, dtype=np.float64))
    a0, d0 = np.radians(ra0), np.radians(dec0)
    den = np.cos(d0) - y * np.sin(d0)
    ra = a0 + np.arctan2(x, den)
    dec = np.arctan2(np.sin(d0) + y * np.cos(d0), np.hypot(x, den))
    return np.degrees(ra) % 360.0, np.degrees(dec)


def sky_to_tangent(ra: np.ndarray, dec: np.ndarray, ra0: float, dec0: float) -> tuple[np.ndarray, np.ndarray]:
    """Gnomonic projection: RA, Dec (deg) -> standard coordinates (deg)."""
    a = np.radians(np.asarray(ra, dtype=np.float64))
    d = np.radians(np.asarray(dec, dtype=np.float64))
    a0, d0 = np.radians(ra0), np.radians(dec0)
    cosc = np.sin(d0) * np.sin(d) + np.cos(d0) * np.cos(d) * np.cos(a - a0)
    xi = np.cos(d) * np.sin(a - a0) / cosc
    eta = (np.cos(d0) * np.sin(d) - np.sin(d0) * np.cos(d) * np.cos(a - a0)) / cosc
    return np.degrees(xi), np.degrees(eta)

"""Per-tile plate solution tied to Gaia.

Detections (sky positions from a header solution) and Gaia stars moved to
the plate epoch are projected on the tangent plane about the tile centre
(standard coordinates xi, eta in arcsec, so cos(Dec) and RA wrap need no
special case).  A polynomial correction ``(dxi, deta) = P(xi, eta)`` of
degree 1 to 3 is fitted by iterated least squares with outliers rejected at
a threshold in arcsec; the degree is the one with the lowest BIC among those
the number of stars allows.  With too few stars the fit falls back to a
shift (>= ``min_stars_shift``) or to no correction at all.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from functools import partial

import numpy as np
from numpy.typing import ArrayLike, NDArray

from vasco.astrometry.tangent import sky_to_tangent, tangent_to_sky
from vasco.matching.crossmatch import nearest_within

__all__ = ["PlateFit", "fit_plate", "tangent_plane", "from_tangent_plane"]


def tangent_plane(ra: ArrayLike, dec: ArrayLike, ra0: float, dec0: float) -> tuple[NDArray, NDArray]:
    """Gnomonic standard coordinates (arcsec) of ra/dec about (ra0, dec0)."""
    xi, eta = sky_to_tangent(np.asarray(ra), np.asarray(dec), ra0, dec0)
    return xi * 3600.0, eta * 3600.0


def from_tangent_plane(xi: ArrayLike, eta: ArrayLike, ra0: float, dec0: float) -> tuple[NDArray, NDArray]:
    """Inverse of :func:`tangent_plane` (RA in [0, 360))."""
    return tangent_to_sky(
        np.asarray(xi, dtype=np.float64) / 3600.0, np.asarray(eta, dtype=np.float64) / 3600.0, ra0, dec0
    )


def _design(xi: NDArray, eta: NDArray, degree: int, scale: float) -> NDArray:
    u, v = xi / scale, eta / scale
    cols = [u**i * v**j for n in range(degree + 1) for i in range(n + 1) for j in [n - i]]
    return np.stack(cols, axis=-1)


def _nterms(degree: int) -> int:
    return (degree + 1) * (degree + 2) // 2


@dataclass
class PlateFit:
    """A fitted correction; apply it with :meth:`apply`."""

    ra0: float
    dec0: float
    degree: int  # -1: no correction, 0: shift, 1-3: polynomial
    status: str  # "fit", "fallback_shift", "fallback_none"
    n_ref: int  # matched pairs offered to the fit
    n_used: int  # pairs kept after outlier rejection
    scale: float = 1.0
    coef_xi: list[float] = field(default_factory=list)
    coef_eta: list[float] = field(default_factory=list)
    median_residual_arcsec: float | None = None
    p90_residual_arcsec: float | None = None
    raw_median_residual_arcsec: float | None = None

    def correction(self, xi: NDArray, eta: NDArray) -> tuple[NDArray, NDArray]:
        if self.degree < 0:
            return np.zeros_like(xi), np.zeros_like(eta)
        a = _design(xi, eta, self.degree, self.scale)
        return a @ np.asarray(self.coef_xi), a @ np.asarray(self.coef_eta)

    def apply(self, ra: ArrayLike, dec: ArrayLike) -> tuple[NDArray, NDArray]:
        """Corrected float64 positions."""
        xi, eta = tangent_plane(ra, dec, self.ra0, self.dec0)
        dxi, deta = self.correction(xi, eta)
        return from_tangent_plane(xi + dxi, eta + deta, self.ra0, self.dec0)

    def to_dict(self) -> dict:
        return asdict(self)


def _robust_fit(
    xi: NDArray,
    eta: NDArray,
    rxi: NDArray,
    reta: NDArray,
    degree: int,
    scale: float,
    clip_arcsec: float,
    iterations: int = 5,
) -> tuple[NDArray, NDArray, NDArray]:
    """Least squares of the offsets with iterated rejection; returns coefficients and the kept mask."""
    keep = np.ones(len(xi), dtype=bool)
    cx = cy = np.zeros(_nterms(degree))
    for _ in range(iterations):
        a = _design(xi[keep], eta[keep], degree, scale)
        cx, *_ = np.linalg.lstsq(a, rxi[keep] - xi[keep], rcond=None)
        cy, *_ = np.linalg.lstsq(a, reta[keep] - eta[keep], rcond=None)
        full = _design(xi, eta, degree, scale)
        res = np.hypot(xi + full @ cx - rxi, eta + full @ cy - reta)
        sig = 1.4826 * np.median(np.abs(res[keep] - np.median(res[keep])))
        limit = min(clip_arcsec, np.median(res[keep]) + 3.0 * max(sig, 0.05))
        new_keep = res <= limit
        if new_keep.sum() < _nterms(degree) + 2 or np.array_equal(new_keep, keep):
            break
        keep = new_keep
    return cx, cy, keep


def fit_plate(
    ra: ArrayLike,
    dec: ArrayLike,
    ref_ra: ArrayLike,
    ref_dec: ArrayLike,
    ra0: float,
    dec0: float,
    *,
    match_radius_arcsec: float = 5.0,
    clip_arcsec: float = 1.0,
    max_degree: int = 3,
    min_stars_per_term: int = 5,
    min_stars_shift: int = 3,
    ref_usable: ArrayLike | None = None,
) -> PlateFit:
    """Fit the correction that takes detection positions onto the reference positions.

    Parameters
    ----------
    ra, dec : array_like
        Detections (degrees) from a header solution; use well-measured
        point sources (e.g. SNR_WIN > 30).
    ref_ra, ref_dec : array_like
        Reference stars at the plate epoch (Gaia moved with proper motions).
    ra0, dec0 : float
        Tile centre: the tangent point.
    match_radius_arcsec : float
        Pairing radius before the fit (nearest reference within it).
    clip_arcsec : float
        Pairs whose residual exceeds this after a fit are rejected (also
        those beyond 3 robust sigma), and the fit is repeated.
    max_degree : int
        Highest polynomial degree tried (1 to 3).
    min_stars_per_term : int
        A degree is tried only with at least this many pairs per coefficient.
    min_stars_shift : int
        Fewer pairs than this: no correction at all.
    ref_usable : array_like of bool, optional
        Reference stars allowed to anchor the fit (e.g. isolated ones).
        Detections are paired with the nearest of *all* references, and pairs
        whose reference is not usable are dropped, so a detection is never
        paired with a usable star beside its true, unusable counterpart.
    """
    ra = np.asarray(ra, dtype=np.float64)
    dec = np.asarray(dec, dtype=np.float64)
    idx, sep = nearest_within(ra, dec, ref_ra, ref_dec, match_radius_arcsec)
    ok = idx >= 0
    if ref_usable is not None:
        ok &= np.asarray(ref_usable, dtype=bool)[np.where(ok, idx, 0)]
    xi, eta = tangent_plane(ra[ok], dec[ok], ra0, dec0)
    rxi, reta = tangent_plane(
        np.asarray(ref_ra, dtype=np.float64)[idx[ok]], np.asarray(ref_dec, dtype=np.float64)[idx[ok]], ra0, dec0
    )
    n = int(ok.sum())
    raw = float(np.median(sep[ok])) if n else None
    fit = partial(PlateFit, ra0=float(ra0), dec0=float(dec0), n_ref=n, raw_median_residual_arcsec=raw)
    if n < min_stars_shift:
        return fit(degree=-1, status="fallback_none", n_used=0)
    scale = float(max(np.max(np.abs(np.r_[xi, eta])), 1.0))
    best: tuple[float, int, NDArray, NDArray, NDArray] | None = None
    for degree in range(1, max_degree + 1):
        if n < min_stars_per_term * _nterms(degree):
            break
        cx, cy, keep = _robust_fit(xi, eta, rxi, reta, degree, scale, clip_arcsec)
        a = _design(xi[keep], eta[keep], degree, scale)
        rss = float(np.sum((xi[keep] + a @ cx - rxi[keep]) ** 2 + (eta[keep] + a @ cy - reta[keep]) ** 2))
        m = int(keep.sum())
        # BIC on a common set would be fairer; the clipped sets differ little.
        bic = 2 * m * np.log(max(rss, 1e-12) / (2 * m)) + 2 * _nterms(degree) * np.log(2 * m)
        if best is None or bic < best[0]:
            best = (bic, degree, cx, cy, keep)
    if best is None:
        cx, cy, keep = _robust_fit(xi, eta, rxi, reta, 0, scale, clip_arcsec)
        degree, status = 0, "fallback_shift"
    else:
        _, degree, cx, cy, keep = best
        status = "fit"
    a = _design(xi, eta, degree, scale)
    res = np.hypot(xi + a @ cx - rxi, eta + a @ cy - reta)[keep]
    return fit(
        degree=degree,
        status=status,
        n_used=int(keep.sum()),
        scale=scale,
        coef_xi=[float(c) for c in cx],
        coef_eta=[float(c) for c in cy],
        median_residual_arcsec=float(np.median(res)),
        p90_residual_arcsec=float(np.percentile(res, 90)),
    )

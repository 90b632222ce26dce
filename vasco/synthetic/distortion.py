"""Imperfect header astrometry for the synthetic sky.

Real DSS headers are not exact: the GSSS plate polynomial leaves smooth
residuals of order an arcsecond over a tile, and the explicit TAN WCS the
service writes can sit arcseconds away from the polynomial.  Two optional
effects (:class:`vasco.config.SyntheticConfig`, both off by default) give a
per-tile, Gaia-tied refit something to recover:

``distortion_arcsec``
    :class:`DistortionField`: a smooth random field (degree 2 and 3
    monomials of the tile's pixel coordinates, normalised to [-1, 1] over the
    tile) by which every object is displaced when it is rendered.  The
    rendered plate's real astrometry is then the header plate polynomial
    *plus* this field; the header keeps the plain polynomial.  The field's
    RMS displacement over the tile is exactly ``distortion_arcsec``.
``tan_offset_arcsec``
    :func:`offset_position`: the header's explicit TAN ``CRVAL`` is moved
    this far (position angle drawn per tile) from the polynomial's position
    of ``CRPIX``, so the two header solutions disagree by exactly that much
    at the tile centre.

In both cases the plate polynomial plus the distortion field is the truth.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vasco.plates.model import PlateSolution

__all__ = ["DistortionField", "TileAstrometry", "offset_position"]

#: Exponents (i, j) of the monomials u**i v**j of the field (total degree 2 and 3).
_TERMS: tuple[tuple[int, int], ...] = ((2, 0), (1, 1), (0, 2), (3, 0), (2, 1), (1, 2), (0, 3))
#: Beyond the tile the field is evaluated at the clipped normalised position
#: (objects drawn in the margins are not thrown far by a cubic).
_U_CLIP = 1.5


@dataclass(frozen=True)
class DistortionField:
    """Smooth pixel displacement field over one tile.

    ``dx = sum cx[k] u**i v**j``, ``dy = sum cy[k] u**i v**j`` (pixels) with
    ``u = (x - xc) / hx``, ``v = (y - yc) / hy`` clipped to [-1.5, 1.5],
    ``(xc, yc)`` the tile centre and ``hx``, ``hy`` its half-sizes (1-based
    FITS pixels).
    """

    xc: float
    yc: float
    hx: float
    hy: float
    cx: tuple[float, ...]
    cy: tuple[float, ...]

    @classmethod
    def draw(
        cls, rng: np.random.Generator, rms_arcsec: float, nx: int, ny: int, pixscale: float, n_grid: int = 41
    ) -> DistortionField:
        """A random field whose RMS displacement over the ``nx`` x ``ny`` tile is ``rms_arcsec``.

        The RMS is ``sqrt(mean(dx**2 + dy**2))`` over an ``n_grid`` x ``n_grid``
        grid spanning the tile, times ``pixscale`` (arcsec/px).  Always draws
        the same number of values from ``rng``.
        """
        raw = rng.normal(0.0, 1.0, (2, len(_TERMS)))
        base = cls(0.5 * (nx + 1), 0.5 * (ny + 1), 0.5 * nx, 0.5 * ny, tuple(raw[0]), tuple(raw[1]))
        if rms_arcsec <= 0:
            return cls(base.xc, base.yc, base.hx, base.hy, (0.0,) * len(_TERMS), (0.0,) * len(_TERMS))
        gx, gy = np.meshgrid(np.linspace(0.5, nx + 0.5, n_grid), np.linspace(0.5, ny + 0.5, n_grid))
        dx, dy = base.displacement(gx.ravel(), gy.ravel())
        scale = float(rms_arcsec) / pixscale / float(np.sqrt(np.mean(dx * dx + dy * dy)))
        return cls(base.xc, base.yc, base.hx, base.hy, tuple(scale * raw[0]), tuple(scale * raw[1]))

    @property
    def is_zero(self) -> bool:
        return not (any(self.cx) or any(self.cy))

    def displacement(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Displacement (pixels) of an object whose undistorted position is ``(x, y)``."""
        u = np.clip((np.asarray(x, dtype=np.float64) - self.xc) / self.hx, -_U_CLIP, _U_CLIP)
        v = np.clip((np.asarray(y, dtype=np.float64) - self.yc) / self.hy, -_U_CLIP, _U_CLIP)
        dx = np.zeros(np.broadcast(u, v).shape)
        dy = np.zeros_like(dx)
        for (i, j), a, b in zip(_TERMS, self.cx, self.cy):
            m = u**i * v**j
            dx = dx + a * m
            dy = dy + b * m
        return dx, dy

    def apply(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Undistorted -> rendered pixel position."""
        dx, dy = self.displacement(x, y)
        return np.asarray(x, dtype=np.float64) + dx, np.asarray(y, dtype=np.float64) + dy

    def invert(self, x: np.ndarray, y: np.ndarray, tol_px: float = 1e-10) -> tuple[np.ndarray, np.ndarray]:
        """Rendered -> undistorted pixel position (fixed-point iteration; the field's gradient is tiny)."""
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        x0, y0 = x, y
        for _ in range(50):
            dx, dy = self.displacement(x0, y0)
            nx0, ny0 = x - dx, y - dy
            step = np.max(np.hypot(nx0 - x0, ny0 - y0), initial=0.0)
            x0, y0 = nx0, ny0
            if not step > tol_px:
                break
        return x0, y0


class TileAstrometry:
    """The true mapping between sky (at the plate epoch) and rendered pixels of a synthetic tile.

    ``sky_to_pix = field.apply(sol.sky_to_pix(...))`` and its inverse.  With a
    zero field both are exactly the plate solution's own methods.
    """

    def __init__(self, sol: PlateSolution, field: DistortionField) -> None:
        self.sol = sol
        self.field = field

    def sky_to_pix(self, ra, dec):
        x, y = self.sol.sky_to_pix(ra, dec)
        if self.field.is_zero:
            return x, y
        return self.field.apply(x, y)

    def pix_to_sky(self, x, y):
        if self.field.is_zero:
            return self.sol.pix_to_sky(x, y)
        return self.sol.pix_to_sky(*self.field.invert(x, y))


def offset_position(ra: float, dec: float, pa_deg: float, sep_arcsec: float) -> tuple[float, float]:
    """The point ``sep_arcsec`` from ``(ra, dec)`` at position angle ``pa_deg`` (east of north), on the sphere."""
    a, d = np.radians(ra), np.radians(dec)
    pa, r = np.radians(pa_deg), np.radians(sep_arcsec / 3600.0)
    d2 = np.arcsin(np.sin(d) * np.cos(r) + np.cos(d) * np.sin(r) * np.cos(pa))
    a2 = a + np.arctan2(np.sin(pa) * np.sin(r) * np.cos(d), np.cos(r) - np.sin(d) * np.sin(d2))
    return float(np.degrees(a2) % 360.0), float(np.degrees(d2))

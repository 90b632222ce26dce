"""The GSSS plate polynomial of DSS headers, and a linear TAN fit to it.

Every DSS scan header (full plate or cutout) carries the astrometric plate
solution of the Guide Star Catalog: plate centre (``PLTRAH``/``PLTRAM``/
``PLTRAS``, ``PLTDECSN``/``PLTDECD``/``PLTDECM``/``PLTDECS``), scan geometry
(``XPIXELSZ``/``YPIXELSZ`` in microns, ``PPO3``/``PPO6`` in microns), the cutout
corner (``CNPIX1``/``CNPIX2``) and the x/y polynomials ``AMDX1-20`` and
``AMDY1-20``.  :class:`PlateSolution` evaluates it.

The model, for a pixel ``(x, y)`` in 1-based FITS coordinates of the image the
header belongs to (SExtractor's ``X_IMAGE``/``Y_IMAGE``, WCSTools' convention):

1. plate pixel: ``px = x + CNPIX1 - 0.5``, ``py = y + CNPIX2 - 0.5``
   (the half-pixel convention of WCSTools ``xy2sky``, which is the reference
   this module is tested against; the service's ``OBJCTX``/``OBJCTY`` are in
   these plate-pixel units);
2. millimetres from the plate centre:
   ``X = (PPO3 - px * XPIXELSZ) / 1000``, ``Y = (py * YPIXELSZ - PPO6) / 1000``
   (``PPO1``, ``PPO2``, ``PPO4`` and ``PPO5`` are not used, as in WCSTools);
3. standard coordinates in arcsec, with ``r2 = X**2 + Y**2``::

       xi  = A1 X + A2 Y + A3 + A4 X^2 + A5 X Y + A6 Y^2 + A7 r2
             + A8 X^3 + A9 X^2 Y + A10 X Y^2 + A11 Y^3 + A12 X r2 + A13 X r2^2
       eta = B1 Y + B2 X + B3 + B4 Y^2 + B5 X Y + B6 X^2 + B7 r2
             + B8 Y^3 + B9 X Y^2 + B10 X^2 Y + B11 X^3 + B12 Y r2 + B13 Y r2^2

   with ``A = AMDX``, ``B = AMDY``.  Terms 14-20 multiply the magnitude and
   colour of the star; they are zero on all 932 POSS-I E plates and are
   ignored here (a position-only solution), as WCSTools does;
4. inverse gnomonic projection about the plate centre.

The inverse (sky to pixel) solves the polynomial by Newton iteration with the
analytic Jacobian.

Notes
-----
* Modern headers also carry ``AMDREX``/``AMDREY`` ("GSC2 Coeff").  They are
  not evaluated: with this model they land ~6" from the service's own
  explicit WCS on the one real modern cutout checked (SERC ER768), so they
  are probably not the same parametrisation.
* A cutout's ``CNPIX`` only makes sense with the ``PPO3``/``PPO6`` of the same
  header.  The 2002 M101 cutout of plate XE133 has ``PPO3 = PPO6 =
  177474.71555`` where the plate's full-plate header has ``177500.0``:
  exactly one 25.28445-um pixel, i.e. a 2.36" shift if the two are mixed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from astropy.wcs import WCS
from numpy.typing import ArrayLike, NDArray

__all__ = ["PlateSolution", "explicit_wcs", "fit_tan_wcs", "N_POLY_TERMS", "SOLUTION_KEYWORDS"]

#: Number of positional polynomial terms evaluated (AMDX/AMDY 1-13).
N_POLY_TERMS = 13

_ARCSEC_PER_RAD = 180.0 * 3600.0 / np.pi

_CENTRE_KEYWORDS = ("PLTRAH", "PLTRAM", "PLTRAS", "PLTDECSN", "PLTDECD", "PLTDECM", "PLTDECS")
_SCAN_KEYWORDS = ("XPIXELSZ", "YPIXELSZ", "PPO3", "PPO6")

#: Header keywords that :meth:`PlateSolution.from_header` needs (besides the
#: optional ``CNPIX1``/``CNPIX2`` and ``PLTSCALE``).
SOLUTION_KEYWORDS: tuple[str, ...] = (
    _CENTRE_KEYWORDS
    + _SCAN_KEYWORDS
    + tuple(f"AMDX{i}" for i in range(1, N_POLY_TERMS + 1))
    + tuple(f"AMDY{i}" for i in range(1, N_POLY_TERMS + 1))
)

FloatArray = NDArray[np.float64]


def _get(header: Mapping[str, Any] | Any, key: str) -> Any:
    """Return ``header[key]`` or raise ``ValueError`` naming the keyword."""
    try:
        value = header[key]
    except (KeyError, IndexError):
        raise ValueError(f"header lacks keyword {key!r} needed by the DSS plate solution") from None
    if value is None:
        raise ValueError(f"header keyword {key!r} is empty")
    return value


def _get_float(header: Mapping[str, Any] | Any, key: str) -> float:
    value = _get(header, key)
    try:
        out = float(str(value).strip()) if isinstance(value, str) else float(value)
    except (TypeError, ValueError):
        raise ValueError(f"header keyword {key!r} = {value!r} is not a number") from None
    if not np.isfinite(out):
        raise ValueError(f"header keyword {key!r} = {value!r} is not finite")
    return out


def _optional_float(header: Mapping[str, Any] | Any, key: str, default: float | None) -> float | None:
    try:
        present = key in header
    except TypeError:
        present = False
    if not present or header[key] is None or (isinstance(header[key], str) and not header[key].strip()):
        return default
    return _get_float(header, key)


def _as_float_arrays(a: ArrayLike, b: ArrayLike) -> tuple[FloatArray, FloatArray]:
    a64 = np.asarray(a, dtype=np.float64)
    b64 = np.asarray(b, dtype=np.float64)
    return np.broadcast_arrays(a64, b64)  # type: ignore[return-value]


def _scalar_or_array(a: FloatArray) -> Any:
    """0-d arrays become numpy float64 scalars; others are returned as is."""
    return a[()] if a.ndim == 0 else a


def _poly(c: tuple[float, ...], u: FloatArray, v: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
    """The 13-term GSSS polynomial and its partial derivatives.

    ``xi = _poly(AMDX, X, Y)`` and ``eta = _poly(AMDY, Y, X)``: the y polynomial
    is the x polynomial with the roles of X and Y exchanged.

    Returns
    -------
    value, d_value/du, d_value/dv
    """
    u2 = u * u
    v2 = v * v
    uv = u * v
    r2 = u2 + v2
    value = (
        c[0] * u
        + c[1] * v
        + c[2]
        + c[3] * u2
        + c[4] * uv
        + c[5] * v2
        + c[6] * r2
        + c[7] * u2 * u
        + c[8] * u2 * v
        + c[9] * u * v2
        + c[10] * v2 * v
        + c[11] * u * r2
        + c[12] * u * r2 * r2
    )
    d_du = (
        c[0]
        + 2.0 * c[3] * u
        + c[4] * v
        + 2.0 * c[6] * u
        + 3.0 * c[7] * u2
        + 2.0 * c[8] * uv
        + c[9] * v2
        + c[11] * (r2 + 2.0 * u2)
        + c[12] * (r2 * r2 + 4.0 * u2 * r2)
    )
    d_dv = (
        c[1]
        + c[4] * u
        + 2.0 * c[5] * v
        + 2.0 * c[6] * v
        + c[8] * u2
        + 2.0 * c[9] * uv
        + 3.0 * c[10] * v2
        + 2.0 * c[11] * uv
        + 4.0 * c[12] * uv * r2
    )
    return value, d_du, d_dv


@dataclass(frozen=True)
class PlateSolution:
    """The GSSS plate polynomial of one DSS image (full plate or cutout).

    Attributes
    ----------
    ra0, dec0 : float
        Plate centre (tangent point) in degrees, from ``PLTRA*``/``PLTDEC*``.
    x_pixel_size, y_pixel_size : float
        Scan pixel size in microns (``XPIXELSZ``/``YPIXELSZ``).
    ppo3, ppo6 : float
        Plate-centre offsets in microns (``PPO3``/``PPO6``).
    amdx, amdy : tuple of float
        The 13 positional coefficients of the x and y polynomials
        (``AMDX1-13``/``AMDY1-13``); magnitude/colour terms 14-20 are ignored.
    cnpix1, cnpix2 : float
        Corner offset of the image on the plate (``CNPIX1``/``CNPIX2``; 0 for
        a full-plate header).
    plate_scale : float or None
        ``PLTSCALE`` in arcsec/mm, informational (the polynomial carries the
        scale itself).
    """

    ra0: float
    dec0: float
    x_pixel_size: float
    y_pixel_size: float
    ppo3: float
    ppo6: float
    amdx: tuple[float, ...]
    amdy: tuple[float, ...]
    cnpix1: float = 0.0
    cnpix2: float = 0.0
    plate_scale: float | None = None

    def __post_init__(self) -> None:
        if len(self.amdx) != N_POLY_TERMS or len(self.amdy) != N_POLY_TERMS:
            raise ValueError(
                f"amdx and amdy need {N_POLY_TERMS} coefficients each, got {len(self.amdx)} and {len(self.amdy)}"
            )
        if self.x_pixel_size <= 0 or self.y_pixel_size <= 0:
            raise ValueError(
                f"pixel sizes must be positive, got XPIXELSZ={self.x_pixel_size}, YPIXELSZ={self.y_pixel_size}"
            )
        if not -90.0 <= self.dec0 <= 90.0:
            raise ValueError(f"plate centre declination {self.dec0} is outside [-90, 90]")
        lin_det = self.amdx[0] * self.amdy[0] - self.amdx[1] * self.amdy[1]
        if lin_det == 0.0:
            raise ValueError("plate polynomial has a singular linear part (AMDX1*AMDY1 == AMDX2*AMDY2)")

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_header(cls, header: Mapping[str, Any] | Any) -> PlateSolution:
        """Build the solution from a DSS header.

        Parameters
        ----------
        header : astropy.io.fits.Header or mapping
            A full-plate header (``CNPIX1``/``CNPIX2`` absent or 0) or a cutout
            header (``CNPIX1``/``CNPIX2`` = corner of the cutout on the plate).

        Raises
        ------
        ValueError
            If a keyword of the solution is missing or not a number; the
            message names it.
        """
        rah = _get_float(header, "PLTRAH")
        ram = _get_float(header, "PLTRAM")
        ras = _get_float(header, "PLTRAS")
        sign_raw = str(_get(header, "PLTDECSN")).strip()
        if sign_raw not in ("+", "-", ""):
            raise ValueError(f"header keyword 'PLTDECSN' = {sign_raw!r} is not '+' or '-'")
        decd = _get_float(header, "PLTDECD")
        decm = _get_float(header, "PLTDECM")
        decs = _get_float(header, "PLTDECS")
        sign = -1.0 if sign_raw == "-" or decd < 0 else 1.0
        ra0 = 15.0 * (rah + ram / 60.0 + ras / 3600.0)
        dec0 = sign * (abs(decd) + decm / 60.0 + decs / 3600.0)
        amdx = tuple(_get_float(header, f"AMDX{i}") for i in range(1, N_POLY_TERMS + 1))
        amdy = tuple(_get_float(header, f"AMDY{i}") for i in range(1, N_POLY_TERMS + 1))
        return cls(
            ra0=ra0 % 360.0,
            dec0=dec0,
            x_pixel_size=_get_float(header, "XPIXELSZ"),
            y_pixel_size=_get_float(header, "YPIXELSZ"),
            ppo3=_get_float(header, "PPO3"),
            ppo6=_get_float(header, "PPO6"),
            amdx=amdx,
            amdy=amdy,
            cnpix1=_optional_float(header, "CNPIX1", 0.0) or 0.0,
            cnpix2=_optional_float(header, "CNPIX2", 0.0) or 0.0,
            plate_scale=_optional_float(header, "PLTSCALE", None),
        )

    def with_corner(self, cnpix1: float, cnpix2: float) -> PlateSolution:
        """The same plate solution for an image whose corner is ``(cnpix1, cnpix2)``.

        ``with_corner(0, 0)`` gives the full-plate solution; a cutout whose
        ``CNPIX1``/``CNPIX2`` are known gets ``with_corner(CNPIX1, CNPIX2)``.
        """
        return replace(self, cnpix1=float(cnpix1), cnpix2=float(cnpix2))

    # ------------------------------------------------------------------ pixel frames
    def plate_pixel(self, x: ArrayLike, y: ArrayLike) -> tuple[Any, Any]:
        """Full-plate pixel coordinates of image pixels.

        Parameters
        ----------
        x, y : array_like
            1-based FITS pixel coordinates in this image.

        Returns
        -------
        xp, yp : ndarray of float64
            ``(x + CNPIX1, y + CNPIX2)``: the 1-based FITS pixel coordinates of
            the same point in the full-plate scan (whose header has CNPIX = 0).
            Distances to the scan edges follow as ``xp - 0.5`` and
            ``NAXIS1 + 0.5 - xp`` with the full-plate ``NAXIS1``.  (The
            polynomial's own plate-pixel frame, in which ``OBJCTX``/``OBJCTY``
            of service headers are given, is this minus 0.5.)
        """
        xa, ya = _as_float_arrays(x, y)
        return _scalar_or_array(xa + self.cnpix1), _scalar_or_array(ya + self.cnpix2)

    def _pix_to_mm(self, x: FloatArray, y: FloatArray) -> tuple[FloatArray, FloatArray]:
        px = x + self.cnpix1 - 0.5
        py = y + self.cnpix2 - 0.5
        xmm = (self.ppo3 - px * self.x_pixel_size) / 1000.0
        ymm = (py * self.y_pixel_size - self.ppo6) / 1000.0
        return xmm, ymm

    def _mm_to_pix(self, xmm: FloatArray, ymm: FloatArray) -> tuple[FloatArray, FloatArray]:
        px = (self.ppo3 - 1000.0 * xmm) / self.x_pixel_size
        py = (self.ppo6 + 1000.0 * ymm) / self.y_pixel_size
        return px - self.cnpix1 + 0.5, py - self.cnpix2 + 0.5

    def _mm_to_standard(self, xmm: FloatArray, ymm: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Standard coordinates (xi, eta) in arcsec."""
        xi, _, _ = _poly(self.amdx, xmm, ymm)
        eta, _, _ = _poly(self.amdy, ymm, xmm)
        return xi, eta

    def _standard_to_mm(
        self, xi: FloatArray, eta: FloatArray, *, tol_px: float = 1e-8, max_iter: int = 50
    ) -> tuple[FloatArray, FloatArray]:
        """Invert the polynomial by Newton iteration (xi, eta in arcsec)."""
        a, b = self.amdx, self.amdy
        # Initial guess from the linear part.
        det = a[0] * b[0] - a[1] * b[1]
        rx = xi - a[2]
        ry = eta - b[2]
        xmm = (b[0] * rx - a[1] * ry) / det
        ymm = (a[0] * ry - b[1] * rx) / det
        tol_mm = tol_px * min(self.x_pixel_size, self.y_pixel_size) / 1000.0
        finite = np.isfinite(xmm) & np.isfinite(ymm)
        for _ in range(max_iter):
            f, fx_dx, fx_dy = _poly(a, xmm, ymm)
            g, gy_dy, gy_dx = _poly(b, ymm, xmm)
            rf = f - xi
            rg = g - eta
            jdet = fx_dx * gy_dy - fx_dy * gy_dx
            with np.errstate(divide="ignore", invalid="ignore"):
                dx = (gy_dy * rf - fx_dy * rg) / jdet
                dy = (fx_dx * rg - gy_dx * rf) / jdet
            xmm = xmm - dx
            ymm = ymm - dy
            step = np.hypot(dx, dy)
            if not np.any(finite & ~(step < tol_mm)):
                break
        else:
            bad = finite & ~(step < tol_mm)
            n_bad = int(np.count_nonzero(bad))
            idx = np.flatnonzero(bad.ravel())[0]
            raise RuntimeError(
                f"plate polynomial inversion did not converge for {n_bad} point(s) "
                f'(first: xi={np.ravel(xi)[idx]:.3f}", eta={np.ravel(eta)[idx]:.3f}"); '
                "the position is probably far outside the plate"
            )
        return xmm, ymm

    # ------------------------------------------------------------------ sky
    def pix_to_sky(self, x: ArrayLike, y: ArrayLike) -> tuple[Any, Any]:
        """Sky position of image pixels.

        Parameters
        ----------
        x, y : array_like
            1-based FITS pixel coordinates in this image (SExtractor
            ``X_IMAGE``/``Y_IMAGE``), broadcast together.

        Returns
        -------
        ra, dec : ndarray of float64 (or float64 scalars for scalar input)
            Degrees, in the plate's frame (``EQUINOX`` 2000, ICRS-aligned);
            RA in [0, 360).
        """
        xa, ya = _as_float_arrays(x, y)
        xmm, ymm = self._pix_to_mm(xa, ya)
        xi, eta = self._mm_to_standard(xmm, ymm)
        ra, dec = _deproject(xi / _ARCSEC_PER_RAD, eta / _ARCSEC_PER_RAD, self.ra0, self.dec0)
        return _scalar_or_array(ra), _scalar_or_array(dec)

    def sky_to_pix(self, ra: ArrayLike, dec: ArrayLike) -> tuple[Any, Any]:
        """Image pixel coordinates of sky positions.

        Parameters
        ----------
        ra, dec : array_like
            Degrees, broadcast together.

        Returns
        -------
        x, y : ndarray of float64 (or float64 scalars for scalar input)
            1-based FITS pixel coordinates in this image, converged to better
            than 1e-6 px.  NaN for positions 90 degrees or more from the plate
            centre (no gnomonic projection exists there).

        Raises
        ------
        RuntimeError
            If the Newton iteration does not converge (positions far outside
            the plate, where the polynomial is meaningless).
        """
        ra_a, dec_a = _as_float_arrays(ra, dec)
        xi, eta = _project(ra_a, dec_a, self.ra0, self.dec0)
        xmm, ymm = self._standard_to_mm(xi * _ARCSEC_PER_RAD, eta * _ARCSEC_PER_RAD)
        x, y = self._mm_to_pix(xmm, ymm)
        return _scalar_or_array(x), _scalar_or_array(y)

    def jacobian_arcsec_per_px(self, x: ArrayLike, y: ArrayLike) -> FloatArray:
        """Local derivative d(xi, eta)/d(x, y) in arcsec per pixel.

        Returns an array of shape ``broadcast(x, y).shape + (2, 2)``:
        ``[[dxi/dx, dxi/dy], [deta/dx, deta/dy]]``.  Useful for the local pixel
        scale (``sqrt(|det|)``) and orientation.
        """
        xa, ya = _as_float_arrays(x, y)
        xmm, ymm = self._pix_to_mm(xa, ya)
        _, fx, fy = _poly(self.amdx, xmm, ymm)
        _, gy, gx = _poly(self.amdy, ymm, xmm)
        sx = -self.x_pixel_size / 1000.0  # d xmm / d x
        sy = self.y_pixel_size / 1000.0  # d ymm / d y
        out = np.empty(xa.shape + (2, 2), dtype=np.float64)
        out[..., 0, 0] = fx * sx
        out[..., 0, 1] = fy * sy
        out[..., 1, 0] = gx * sx
        out[..., 1, 1] = gy * sy
        return out


def _deproject(xi: FloatArray, eta: FloatArray, ra0: float, dec0: float) -> tuple[FloatArray, FloatArray]:
    """Inverse gnomonic projection; xi, eta in radians, result in degrees."""
    d0 = np.deg2rad(dec0)
    sin_d0, cos_d0 = np.sin(d0), np.cos(d0)
    denom = cos_d0 - eta * sin_d0
    dra = np.arctan2(xi, denom)
    dec = np.arctan2(sin_d0 + eta * cos_d0, np.hypot(xi, denom))
    ra = np.mod(ra0 + np.rad2deg(dra), 360.0)
    ra = np.where(ra >= 360.0, ra - 360.0, ra)
    return ra, np.rad2deg(dec)


def _project(ra: FloatArray, dec: FloatArray, ra0: float, dec0: float) -> tuple[FloatArray, FloatArray]:
    """Gnomonic projection about (ra0, dec0); degrees in, radians out.

    Positions with ``cos(c) <= 0`` (90 degrees or more from the tangent
    point) get NaN.
    """
    d0 = np.deg2rad(dec0)
    d = np.deg2rad(dec)
    dra = np.deg2rad(ra - ra0)
    sin_d, cos_d = np.sin(d), np.cos(d)
    sin_d0, cos_d0 = np.sin(d0), np.cos(d0)
    cos_c = sin_d0 * sin_d + cos_d0 * cos_d * np.cos(dra)
    with np.errstate(divide="ignore", invalid="ignore"):
        good = cos_c > 0.0
        safe = np.where(good, cos_c, 1.0)
        xi = np.where(good, cos_d * np.sin(dra) / safe, np.nan)
        eta = np.where(good, (cos_d0 * sin_d - sin_d0 * cos_d * np.cos(dra)) / safe, np.nan)
    return xi, eta


def fit_tan_wcs(solution: PlateSolution, naxis1: int, naxis2: int, *, n_grid: int = 21) -> WCS:
    """Linear TAN WCS approximating the plate polynomial over an image.

    As the STScI cutout service writes it: ``CRPIX`` at the image centre
    (``(NAXIS+1)/2``, 1-based), ``CRVAL`` the polynomial's sky position
    there, and the ``CD`` matrix fitted by least squares to the polynomial on
    an ``n_grid`` x ``n_grid`` grid spanning the image.

    Parameters
    ----------
    solution : PlateSolution
        The solution of the image (its ``CNPIX`` must be the image's).
    naxis1, naxis2 : int
        Image size in pixels.
    n_grid : int
        Grid points per axis for the fit.

    Returns
    -------
    astropy.wcs.WCS
        Celestial WCS with ``RA---TAN``/``DEC--TAN``, ``RADESYS='ICRS'``,
        ``CUNIT='deg'`` and a ``CD`` matrix (no ``CDELT``/``PC`` besides the
        identity).
    """
    if int(naxis1) < 2 or int(naxis2) < 2:
        raise ValueError(f"image must be at least 2x2 px to fit a TAN WCS, got {naxis1}x{naxis2}")
    if n_grid < 3:
        raise ValueError(f"n_grid must be >= 3, got {n_grid}")
    crpix1 = (int(naxis1) + 1) / 2.0
    crpix2 = (int(naxis2) + 1) / 2.0
    crval1, crval2 = solution.pix_to_sky(crpix1, crpix2)
    gx, gy = np.meshgrid(np.linspace(0.5, int(naxis1) + 0.5, n_grid), np.linspace(0.5, int(naxis2) + 0.5, n_grid))
    ra, dec = solution.pix_to_sky(gx.ravel(), gy.ravel())
    xi, eta = _project(ra, dec, float(crval1), float(crval2))
    design = np.column_stack([gx.ravel() - crpix1, gy.ravel() - crpix2])
    coeff_xi, *_ = np.linalg.lstsq(design, np.rad2deg(xi), rcond=None)
    coeff_eta, *_ = np.linalg.lstsq(design, np.rad2deg(eta), rcond=None)
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.cunit = ["deg", "deg"]
    wcs.wcs.radesys = "ICRS"
    wcs.wcs.crpix = [crpix1, crpix2]
    wcs.wcs.crval = [float(crval1), float(crval2)]
    wcs.wcs.cd = np.array([coeff_xi, coeff_eta], dtype=np.float64)
    wcs.wcs.set()
    return wcs


_TAN_KEYS = ("WCSAXES", "RADESYS", "LONPOLE", "LATPOLE")


def explicit_wcs(header: Mapping[str, Any] | Any) -> WCS:
    """The explicit linear celestial WCS a header carries, read warning-free.

    Only the WCS keywords are passed to astropy (``CTYPEi``, ``CRPIXi``,
    ``CRVALi``, ``CUNITi``, and ``CDi_j`` or else ``CDELTi`` with ``PCi_j``
    or ``CROTA2``; ``RADESYS``, and ``EQUINOX`` unless ICRS): the plate
    keywords are ignored and ``DATE-OBS`` is not seen, so astropy's
    ``datfix`` does not warn about old ``dd/mm/yy`` dates.  This is the
    solution SExtractor uses for ``ALPHA``/``DELTA``.

    Raises
    ------
    ValueError
        Naming the first missing keyword if the header has no explicit WCS
        (as in early GetImage cutouts).
    """
    from astropy.io import fits

    out = fits.Header()
    for key in ("CTYPE1", "CTYPE2", "CRPIX1", "CRPIX2", "CRVAL1", "CRVAL2"):
        out[key] = _get(header, key)
    for key in ("CUNIT1", "CUNIT2", *_TAN_KEYS):
        if key in header:
            out[key] = header[key]
    radesys = str(header["RADESYS"]).strip().upper() if "RADESYS" in header else ""
    if "EQUINOX" in header and radesys != "ICRS":
        out["EQUINOX"] = _get_float(header, "EQUINOX")
    cd_keys = ("CD1_1", "CD1_2", "CD2_1", "CD2_2")
    if any(k in header for k in cd_keys):
        for key in cd_keys:
            out[key] = _get_float(header, key) if key in header else 0.0
    else:
        out["CDELT1"] = _get_float(header, "CDELT1")
        out["CDELT2"] = _get_float(header, "CDELT2")
        pc_keys = ("PC1_1", "PC1_2", "PC2_1", "PC2_2")
        if any(k in header for k in pc_keys):
            for key in pc_keys:
                if key in header:
                    out[key] = _get_float(header, key)
        elif "CROTA2" in header:
            out["CROTA2"] = _get_float(header, "CROTA2")
    out["NAXIS"] = 2
    return WCS(out, naxis=2)

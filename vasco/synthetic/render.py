"""Turning a synthetic sky into POSS-I E (103aE, DSS1 scan) pixel values.

The model follows the physics of a photographic plate, in three domains:

1. **Exposure** (linear in photons).  ``E(x, y) = sky(x, y) + sum_i F_i * PSF_i``
   with a spatially varying point-spread function: a Moffat profile (a cusp
   with extended shoulders) evaluated as a mixture of Gaussians, each
   integrated over the pixel and sheared by the local ellipticity, plus a
   power-law scattered-light halo.  Stars brighter than R = 13 get four
   diffraction spikes along the plate axes (the Schmidt plate-holder vanes);
   galaxies are mixtures of Gaussians approximating exponential and de
   Vaucouleurs profiles, convolved with the local PSF analytically.  Exposure
   is measured in units of ``E_half``, the exposure that gives the middle
   density of the curve; ``zp_r`` ties photographic R magnitudes to it.
2. **Density** (the characteristic curve).  A logistic in ``log E``::

       D(E) = D_fog + (D_sat - D_fog) * E**g / (1 + E**g)

   so faint stars add density almost linearly on the sky, stars brighter than
   G ~ 17 approach the plateau near ``D_sat`` (13,000-13,400 ADU on the
   scans) and then *grow* instead of getting brighter: their wings reach half
   the plateau further and further out.
3. **Scan** (ADU).  Emulsion defects, dust and scratches are added in
   density; then grain noise: Gaussian, correlated on ~1 px (white noise
   smoothed by a small Gaussian kernel, renormalised to unit variance), with
   an amplitude growing like sqrt(D - d_zero) (Selwyn's law) and fading on
   the saturated plateau; then the image is rounded to int16 (BITPIX=16).

Calibration (``scripts/calibrate_synthetic.py``) against the figures measured
on the real M67 tile: the PSF width and Moffat beta, the curve's contrast
``gamma`` and fog level and the zero point were fitted so that SExtractor's
median FLUX_MAX and FWHM_IMAGE per Gaia G bin come out as on the real plate;
the grain noise matches the real cutout's robust sigma and its block-averaged
structure (2-16 px) in a clean corner of the M101 cutout.

Everything is vectorised: sources are grouped by stamp size and each group is
rendered with numpy broadcasting and accumulated with ``np.bincount``; only
the handful of very bright stars get individual large stamps.  All positions
in this module are 1-based FITS pixel coordinates (pixel centres at integers),
as used by SExtractor and by ``vasco.plates``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import numpy.typing as npt
from scipy import ndimage, optimize

__all__ = [
    "ResponseCurve",
    "PSFModel",
    "PSFField",
    "NoiseModel",
    "RenderParams",
    "render_point_sources",
    "render_galaxies",
    "render_spikes",
    "grain_noise",
    "window_snr",
    "sersic_mog",
    "moffat_mog",
    "sextractor_fwhm",
    "growth_knee_density",
    "isolated_star",
    "background_rms_map",
    "draw_plate_defects",
    "render_defects",
    "DEFECT_BLOCK_PX",
    "MAX_SCRATCH_PX",
]

_TWO_PI = 2.0 * np.pi


# ---------------------------------------------------------------------------
# Photographic response
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ResponseCurve:
    """Characteristic curve of the 103aE emulsion as seen by the DSS scan.

    ``density(e)`` maps exposure (in units of the half-density exposure) to
    scan ADU.  ``d_fog`` is the clear-plate (fog) level, ``d_sat`` the
    asymptotic plateau, ``gamma`` the contrast (slope of the logistic in
    ``log E``).
    """

    d_fog: float = 1237.0
    d_sat: float = 13150.0
    gamma: float = 1.229

    def density(self, e: npt.ArrayLike) -> np.ndarray:
        e = np.maximum(np.asarray(e, dtype=np.float64), 0.0)
        eg = e**self.gamma
        return self.d_fog + (self.d_sat - self.d_fog) * eg / (1.0 + eg)

    def exposure(self, d: npt.ArrayLike) -> np.ndarray:
        """Inverse of :meth:`density` (for ``d_fog < d < d_sat``)."""
        f = (np.asarray(d, dtype=np.float64) - self.d_fog) / (self.d_sat - self.d_fog)
        f = np.clip(f, 1e-12, 1.0 - 1e-12)
        return (f / (1.0 - f)) ** (1.0 / self.gamma)

    def knee_density(self) -> float:
        """Density of the saturation knee: where the contrast dD/dlnE has fallen to
        half its maximum on the shoulder side (f(1-f) = 1/8, f = 0.854 of the range).
        A star whose peak reaches it grows instead of brightening."""
        f = 0.5 + np.sqrt(0.125)
        return float(self.d_fog + f * (self.d_sat - self.d_fog))

    def slope(self, e: float) -> float:
        """dD/dE at exposure ``e``."""
        eg = e**self.gamma
        return (self.d_sat - self.d_fog) * self.gamma * eg / (e * (1.0 + eg) ** 2)


# ---------------------------------------------------------------------------
# PSF
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PSFModel:
    """Exposure-domain PSF at the reference position, in arcsec.

    A Moffat core (``moffat_fwhm_arcsec``, ``moffat_beta``; a cusp with
    extended shoulders, as seeing and emulsion turbidity give) carrying
    ``1 - sum(wing_weights) - halo_weight`` of the light, broad Gaussian wings
    (``wing_sigmas_arcsec`` / ``wing_weights``) and a power-law scattered-light
    halo ``halo_weight * (beta-1)/(pi rh^2) * (1 + r^2/rh^2)^-beta``.  The
    Moffat is evaluated as a mixture of Gaussians (:func:`moffat_mog`), so
    every component can be integrated over the pixel and sheared analytically.
    """

    moffat_fwhm_arcsec: float = 2.43
    moffat_beta: float = 3.18
    wing_sigmas_arcsec: tuple[float, ...] = (10.0,)
    wing_weights: tuple[float, ...] = (0.0,)
    halo_weight: float = 0.01
    halo_rh_arcsec: float = 12.0
    halo_beta: float = 1.5

    @property
    def core_sigma_arcsec(self) -> float:
        """Reference width (the Moffat alpha) that the spatial scale field multiplies."""
        return self.moffat_fwhm_arcsec / (2.0 * np.sqrt(2.0 ** (1.0 / self.moffat_beta) - 1.0))

    def normalised(self) -> tuple[np.ndarray, np.ndarray, float]:
        """(sigmas in units of core_sigma_arcsec, weights, halo weight); weights + halo sum to 1."""
        mw, ms = moffat_mog(float(self.moffat_beta))
        alpha = self.core_sigma_arcsec
        ww = np.asarray(self.wing_weights, dtype=np.float64)
        wsig = np.asarray(self.wing_sigmas_arcsec, dtype=np.float64) / alpha
        core = 1.0 - ww.sum() - self.halo_weight
        return np.concatenate([ms, wsig]), np.concatenate([mw * core, ww]), float(self.halo_weight)

    def radial_profile(self, r_px: np.ndarray, pixscale: float, scale: float = 1.0) -> np.ndarray:
        """Circularised PSF value (per px^2) at radius ``r_px`` (no pixel integration)."""
        sig, w, wh = self.normalised()
        s = self.core_sigma_arcsec / pixscale * scale * sig
        r2 = np.asarray(r_px, dtype=np.float64) ** 2
        out = np.zeros_like(r2)
        for sk, wk in zip(s, w):
            out += wk / (_TWO_PI * sk * sk) * np.exp(-0.5 * r2 / (sk * sk))
        rh = self.halo_rh_arcsec / pixscale
        out += wh * (self.halo_beta - 1) / (np.pi * rh * rh) * (1 + r2 / (rh * rh)) ** (-self.halo_beta)
        return out


@dataclass(frozen=True)
class PSFField:
    """Smooth variation of the PSF over a tile.

    ``scale(x, y)`` multiplies every Gaussian width (a few tens of percent over
    the tile: a smooth random quadratic plus a term growing toward the plate
    corners, as on Schmidt plates); ``(e1, e2)(x, y)`` is the ellipticity
    (``(1-q)/(1+q)`` components), mostly radial with respect to the plate
    centre and small (elongation well under 1.3).
    """

    nx: int
    ny: int
    scale_coeffs: tuple[float, ...]  # c0 + c1 u + c2 v + c3 u^2 + c4 uv + c5 v^2
    e_coeffs1: tuple[float, ...]  # e1 = a0 + a1 u + a2 v
    e_coeffs2: tuple[float, ...]
    plate_xc: float = 0.0  # plate centre in tile pixel coordinates
    plate_yc: float = 0.0
    plate_rmax: float = 1.0  # plate half-diagonal in px (for the radial terms)
    radial_scale: float = 0.08  # PSF widening at the plate corner (fraction)
    radial_ellip: float = 0.06  # radial ellipticity at the plate corner

    @classmethod
    def random(
        cls,
        rng: np.random.Generator,
        nx: int,
        ny: int,
        plate_xc: float,
        plate_yc: float,
        plate_rmax: float,
        amplitude: float = 0.12,
        ellip: float = 0.04,
    ) -> PSFField:
        c = rng.uniform(-1, 1, 6) * amplitude * np.array([0.0, 1.0, 1.0, 0.5, 0.5, 0.5])
        c[0] = 1.0 + rng.normal(0.0, 0.04)
        e1 = rng.normal(0.0, ellip, 3) * np.array([1.0, 0.6, 0.6])
        e2 = rng.normal(0.0, ellip, 3) * np.array([1.0, 0.6, 0.6])
        return cls(
            nx=nx,
            ny=ny,
            scale_coeffs=tuple(float(v) for v in c),
            e_coeffs1=tuple(float(v) for v in e1),
            e_coeffs2=tuple(float(v) for v in e2),
            plate_xc=float(plate_xc),
            plate_yc=float(plate_yc),
            plate_rmax=float(plate_rmax),
        )

    def _uv(self, x, y):
        u = (np.asarray(x, dtype=np.float64) - 0.5 * (self.nx + 1)) / (0.5 * self.nx)
        v = (np.asarray(y, dtype=np.float64) - 0.5 * (self.ny + 1)) / (0.5 * self.ny)
        return u, v

    def _radial(self, x, y):
        dx = np.asarray(x, dtype=np.float64) - self.plate_xc
        dy = np.asarray(y, dtype=np.float64) - self.plate_yc
        rho2 = (dx * dx + dy * dy) / (self.plate_rmax**2)
        phi = np.arctan2(dy, dx)
        return rho2, phi

    def scale(self, x, y) -> np.ndarray:
        u, v = self._uv(x, y)
        c = self.scale_coeffs
        s = c[0] + c[1] * u + c[2] * v + c[3] * u * u + c[4] * u * v + c[5] * v * v
        rho2, _ = self._radial(x, y)
        return np.clip(s * (1.0 + self.radial_scale * rho2), 0.6, 1.6)

    def ellipticity(self, x, y) -> tuple[np.ndarray, np.ndarray]:
        u, v = self._uv(x, y)
        a, b = self.e_coeffs1, self.e_coeffs2
        e1 = a[0] + a[1] * u + a[2] * v
        e2 = b[0] + b[1] * u + b[2] * v
        rho2, phi = self._radial(x, y)
        er = self.radial_ellip * rho2
        e1 = e1 + er * np.cos(2 * phi)
        e2 = e2 + er * np.sin(2 * phi)
        emod = np.hypot(e1, e2)
        k = np.where(emod > 0.12, 0.12 / np.maximum(emod, 1e-12), 1.0)
        return e1 * k, e2 * k


def _shape_matrix(e1: np.ndarray, e2: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unit-determinant second-moment shape (mxx, mxy, myy) for ellipticity e=(1-q)/(1+q)."""
    e = np.hypot(e1, e2)
    q = (1.0 - e) / (1.0 + e)
    theta = 0.5 * np.arctan2(e2, e1)
    a2 = 1.0 / q  # major^2, minor^2 = q, product 1
    b2 = q
    c, s = np.cos(theta), np.sin(theta)
    mxx = a2 * c * c + b2 * s * s
    myy = a2 * s * s + b2 * c * c
    mxy = (a2 - b2) * c * s
    return mxx, mxy, myy


# ---------------------------------------------------------------------------
# Galaxy profiles as mixtures of Gaussians
# ---------------------------------------------------------------------------


@lru_cache(maxsize=32)
def moffat_mog(beta: float, rmax: float = 12.0) -> tuple[np.ndarray, np.ndarray]:
    """Mixture-of-Gaussians approximation of a Moffat profile (alpha = 1), truncated at rmax * alpha.

    Returns (weights summing to 1, sigmas in units of alpha) from a
    non-negative least-squares fit of the flux-weighted radial profile.
    """
    r = np.linspace(0.0, rmax, 2400)[1:]
    prof = (1.0 + r * r) ** (-beta)
    sig = np.geomspace(0.15, 0.6 * rmax, 14)
    A = np.exp(-0.5 * (r[:, None] / sig[None, :]) ** 2) / (_TWO_PI * sig[None, :] ** 2)
    wgt = np.sqrt(r)
    a, _ = optimize.nnls(A * wgt[:, None], prof * wgt)
    keep = a > 0
    a, sig = a[keep], sig[keep]
    return a / a.sum(), sig


@lru_cache(maxsize=4)
def sersic_mog(n: float) -> tuple[np.ndarray, np.ndarray]:
    """Mixture-of-Gaussians approximation of a Sersic profile (r_e = 1).

    Returns (weights summing to 1, sigmas in units of r_e) from a non-negative
    least-squares fit of the flux-weighted radial profile on fixed log-spaced
    widths.  Only n = 1 (exponential) and n = 4 (de Vaucouleurs) are used.
    """
    bn = 1.9992 * n - 0.3271
    r = np.linspace(0.0, 8.0 if n == 1 else 12.0, 1200)[1:]
    prof = np.exp(-bn * (r ** (1.0 / n) - 1.0))
    sig = np.geomspace(0.02 if n == 4 else 0.08, 3.0, 10)
    A = np.exp(-0.5 * (r[:, None] / sig[None, :]) ** 2) / (_TWO_PI * sig[None, :] ** 2)
    wgt = np.sqrt(r)  # emphasise the flux-carrying radii
    a, _ = optimize.nnls(A * wgt[:, None], prof * wgt)
    keep = a > 0
    a, sig = a[keep], sig[keep]
    a = a / a.sum()
    return a, sig


# ---------------------------------------------------------------------------
# Stamp rendering
# ---------------------------------------------------------------------------

_HALF_SIZES = (3, 4, 5, 6, 8, 10, 12, 16, 20, 24, 32, 40, 48, 64, 80, 96, 128, 160, 192, 256, 320)
_BATCH_PIX = 2_000_000  # stamp pixels per vectorised batch (memory bound)


def _choose_half_size(r_needed: np.ndarray, hmax: int) -> np.ndarray:
    hs = np.asarray(_HALF_SIZES)
    idx = np.searchsorted(hs, np.ceil(r_needed))
    idx = np.clip(idx, 0, len(hs) - 1)
    return np.minimum(hs[idx], hmax)


def _accumulate(out_flat: np.ndarray, nx: int, ny: int, ix: np.ndarray, iy: np.ndarray, vals: np.ndarray) -> None:
    """Add vals (N, S, S) on the grid at stamp origins ix, iy (0-based centre pixels)."""
    n, s, _ = vals.shape
    h = s // 2
    off = np.arange(-h, h + 1)
    px = ix[:, None] + off[None, :]  # (N, S)
    py = iy[:, None] + off[None, :]
    okx = (px >= 0) & (px < nx)
    oky = (py >= 0) & (py < ny)
    ok = oky[:, :, None] & okx[:, None, :]
    flat = py[:, :, None] * nx + px[:, None, :]
    out_flat += np.bincount(flat[ok], weights=vals[ok], minlength=out_flat.size)


def _gauss_stamps(
    x0: np.ndarray,
    y0: np.ndarray,
    h: int,
    amps: np.ndarray,
    cxx: np.ndarray,
    cxy: np.ndarray,
    cyy: np.ndarray,
    halo: tuple[np.ndarray, float, float] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Evaluate Gaussian mixtures on (2h+1)^2 stamps.

    x0, y0: 0-based centres (N,); amps/cxx/cxy/cyy: (N, K) component flux and
    covariance (px^2, already including the 1/12 pixel-integration term).
    halo: optional (flux (N,), rh px, beta) power-law term.
    Returns (ix, iy, vals (N, S, S)).
    """
    ix = np.rint(x0).astype(np.int64)
    iy = np.rint(y0).astype(np.int64)
    off = np.arange(-h, h + 1, dtype=np.float64)
    dx = (ix - x0)[:, None] + off[None, :]  # (N, S)
    dy = (iy - y0)[:, None] + off[None, :]
    dx2 = dx * dx
    dy2 = dy * dy
    dxy = dy[:, :, None] * dx[:, None, :]  # (N, S, S) rows=y
    det = cxx * cyy - cxy * cxy
    ixx = cyy / det
    iyy = cxx / det
    ixy = -cxy / det
    norm = amps / (_TWO_PI * np.sqrt(det))
    vals = np.zeros((x0.size, off.size, off.size), dtype=np.float64)
    for k in range(amps.shape[1]):
        q = (
            ixx[:, k, None, None] * dx2[:, None, :]
            + iyy[:, k, None, None] * dy2[:, :, None]
            + 2.0 * ixy[:, k, None, None] * dxy
        )
        vals += norm[:, k, None, None] * np.exp(-0.5 * q)
    if halo is not None:
        hflux, rh, beta = halo
        r2 = dx2[:, None, :] + dy2[:, :, None]
        vals += (hflux * (beta - 1) / (np.pi * rh * rh))[:, None, None] * (1.0 + r2 / (rh * rh)) ** (-beta)
    return ix, iy, vals


def _render_batched(
    out_flat: np.ndarray,
    nx: int,
    ny: int,
    x: np.ndarray,
    y: np.ndarray,
    hsize: np.ndarray,
    make_components,
    halo_terms=None,
) -> None:
    """Group sources by stamp half-size and render each group in batches."""
    x0 = np.asarray(x, dtype=np.float64) - 1.0
    y0 = np.asarray(y, dtype=np.float64) - 1.0
    for h in np.unique(hsize):
        sel = np.flatnonzero(hsize == h)
        npix = (2 * int(h) + 1) ** 2
        step = max(1, _BATCH_PIX // npix)
        for i0 in range(0, sel.size, step):
            idx = sel[i0 : i0 + step]
            amps, cxx, cxy, cyy = make_components(idx)
            halo = None
            if halo_terms is not None:
                hf, rh, beta = halo_terms
                halo = (hf[idx], rh, beta)
            ix, iy, vals = _gauss_stamps(x0[idx], y0[idx], int(h), amps, cxx, cxy, cyy, halo)
            _accumulate(out_flat, nx, ny, ix, iy, vals)


@dataclass(frozen=True)
class RenderContext:
    """What the renderers need to know about the tile."""

    nx: int
    ny: int
    pixscale: float  # arcsec / px
    psf: PSFModel
    field: PSFField | _ShiftedField
    curve: ResponseCurve
    sky_exposure: float  # mean sky exposure (E_half units)
    noise_sigma: float  # ADU, grain noise on the sky

    def psf_components(self, x: np.ndarray, y: np.ndarray):
        """Per-source Gaussian covariances (N, K) of the PSF in px^2 (incl. pixel term)."""
        sig, w, wh = self.psf.normalised()
        s0 = self.psf.core_sigma_arcsec / self.pixscale
        sc = self.field.scale(x, y)
        e1, e2 = self.field.ellipticity(x, y)
        mxx, mxy, myy = _shape_matrix(e1, e2)
        s2 = (s0 * sc[:, None] * sig[None, :]) ** 2  # (N, K)
        cxx = s2 * mxx[:, None] + 1.0 / 12.0
        cyy = s2 * myy[:, None] + 1.0 / 12.0
        cxy = s2 * mxy[:, None]
        return w, cxx, cxy, cyy, wh

    def detect_floor_exposure(self, frac: float = 0.08) -> float:
        """Exposure increment whose density is ``frac`` of the sky noise."""
        return frac * self.noise_sigma / self.curve.slope(self.sky_exposure)


def point_source_radius(ctx: RenderContext, flux: np.ndarray, floor: float) -> np.ndarray:
    """Radius (px) at which flux * PSF drops below ``floor`` (exposure units)."""
    r = np.arange(0.0, 400.0, 0.5)
    prof = ctx.psf.radial_profile(r, ctx.pixscale, scale=1.3)
    # profile is monotonically decreasing: find the first radius below floor/flux
    thr = floor / np.maximum(np.asarray(flux, dtype=np.float64), 1e-30)
    idx = np.searchsorted(-prof, -thr)  # first index with prof < thr
    idx = np.clip(idx, 0, r.size - 1)
    return r[idx] + 1.0


def render_point_sources(
    ctx: RenderContext,
    x: np.ndarray,
    y: np.ndarray,
    flux: np.ndarray,
    out: np.ndarray | None = None,
    hmax: int = 320,
) -> np.ndarray:
    """Add point sources (exposure units, total flux ``flux``) to an exposure image."""
    if out is None:
        out = np.zeros((ctx.ny, ctx.nx), dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    flux = np.asarray(flux, dtype=np.float64)
    if x.size == 0:
        return out
    w, cxx, cxy, cyy, wh = ctx.psf_components(x, y)
    rneed = point_source_radius(ctx, flux, ctx.detect_floor_exposure())
    hsize = _choose_half_size(rneed, hmax)

    def comps(idx):
        amps = flux[idx, None] * w[None, :]
        return amps, cxx[idx], cxy[idx], cyy[idx]

    flat = out.reshape(-1)
    rh = ctx.psf.halo_rh_arcsec / ctx.pixscale
    _render_batched(flat, ctx.nx, ctx.ny, x, y, hsize, comps, (flux * wh, rh, ctx.psf.halo_beta))
    return out


def render_galaxies(
    ctx: RenderContext,
    x: np.ndarray,
    y: np.ndarray,
    flux: np.ndarray,
    r_eff_arcsec: np.ndarray,
    axis_ratio: np.ndarray,
    pa_rad: np.ndarray,
    sersic_n: np.ndarray,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Add exponential (n=1) and de Vaucouleurs (n=4) galaxies convolved with the PSF."""
    if out is None:
        out = np.zeros((ctx.ny, ctx.nx), dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    if x.size == 0:
        return out
    y = np.asarray(y, dtype=np.float64)
    flux = np.asarray(flux, dtype=np.float64)
    flat = out.reshape(-1)
    wpsf, pcxx, pcxy, pcyy, wh = ctx.psf_components(x, y)
    wpsf = wpsf / wpsf.sum()  # galaxies: no scattered-light halo (negligible)
    re_px = np.asarray(r_eff_arcsec, dtype=np.float64) / ctx.pixscale
    q = np.asarray(axis_ratio, dtype=np.float64)
    pa = np.asarray(pa_rad, dtype=np.float64)
    c, s = np.cos(pa), np.sin(pa)
    for n in (1.0, 4.0):
        sel = np.flatnonzero(np.asarray(sersic_n) == n)
        if sel.size == 0:
            continue
        gw, gs = sersic_mog(n)
        # galaxy component covariances (N, G)
        a2 = (re_px[sel, None] * gs[None, :]) ** 2 / q[sel, None]
        b2 = (re_px[sel, None] * gs[None, :]) ** 2 * q[sel, None]
        gxx = a2 * c[sel, None] ** 2 + b2 * s[sel, None] ** 2
        gyy = a2 * s[sel, None] ** 2 + b2 * c[sel, None] ** 2
        gxy = (a2 - b2) * (c * s)[sel, None]
        # combined (N, G*K)
        cxx = (gxx[:, :, None] + pcxx[sel, None, :]).reshape(sel.size, -1)
        cyy = (gyy[:, :, None] + pcyy[sel, None, :]).reshape(sel.size, -1)
        cxy = (gxy[:, :, None] + pcxy[sel, None, :]).reshape(sel.size, -1)
        amps = (flux[sel, None, None] * gw[None, :, None] * wpsf[None, None, :]).reshape(sel.size, -1)
        # stamp: a few times the largest significant width
        floor = ctx.detect_floor_exposure()
        big = np.sqrt(np.max(np.where(amps > floor * 10, cxx + cyy, pcxx[sel, :1] + pcyy[sel, :1]), axis=1))
        rneed = np.maximum(point_source_radius(ctx, flux[sel], floor), 3.0 * big)
        hsize = _choose_half_size(rneed, 128)

        xs, ys = x[sel], y[sel]

        def comps_local(idx, _amps=amps, _cxx=cxx, _cxy=cxy, _cyy=cyy):
            return _amps[idx], _cxx[idx], _cxy[idx], _cyy[idx]

        _render_batched(flat, ctx.nx, ctx.ny, xs, ys, hsize, comps_local)
    return out


def spike_length_px(ctx: RenderContext, flux: np.ndarray, spike_weight: float, t0_px: float) -> np.ndarray:
    """Length (px) over which a spike adds more than 1 sigma of density to the sky."""
    thr = ctx.noise_sigma / ctx.curve.slope(ctx.sky_exposure)  # exposure for +1 sigma
    # peak line density at distance t: flux*w/(t0) * (1+t/t0)^-2 / (sqrt(2pi) sig)
    sig = 0.7
    a = np.asarray(flux) * spike_weight / t0_px / (np.sqrt(_TWO_PI) * sig)
    ratio = np.maximum(a / thr, 1.0)
    return t0_px * (np.sqrt(ratio) - 1.0)


def render_spikes(
    ctx: RenderContext,
    x: np.ndarray,
    y: np.ndarray,
    flux: np.ndarray,
    spike_weight: float,
    t0_px: float,
    out: np.ndarray,
    width_px: float = 0.7,
) -> np.ndarray:
    """Four diffraction spikes along +-x and +-y (plate axes) in exposure units."""
    lengths = spike_length_px(ctx, flux, spike_weight, t0_px)
    for xi, yi, fi, li in zip(np.atleast_1d(x), np.atleast_1d(y), np.atleast_1d(flux), np.atleast_1d(lengths)):
        L = int(min(1.6 * li + 4, 600))
        if L < 3:
            continue
        i0, j0 = xi - 1.0, yi - 1.0
        ic, jc = int(round(i0)), int(round(j0))
        t = np.arange(-L, L + 1, dtype=np.float64)
        wspan = np.arange(-3, 4, dtype=np.float64)
        amp = fi * spike_weight / t0_px / (np.sqrt(_TWO_PI) * width_px)
        for axis in (0, 1):
            if axis == 0:  # horizontal spike: along x
                tt = (ic + t) - i0
                uu = (jc + wspan) - j0
                px = (ic + t).astype(np.int64)[None, :] + 0 * wspan[:, None].astype(np.int64)
                py = (jc + wspan).astype(np.int64)[:, None] + 0 * t[None, :].astype(np.int64)
                along = (1.0 + np.abs(tt) / t0_px) ** -2.0
                across = np.exp(-0.5 * (uu / width_px) ** 2)
                vals = amp * across[:, None] * along[None, :]
            else:  # vertical spike: along y
                tt = (jc + t) - j0
                uu = (ic + wspan) - i0
                py = (jc + t).astype(np.int64)[:, None] + 0 * wspan[None, :].astype(np.int64)
                px = (ic + wspan).astype(np.int64)[None, :] + 0 * t[:, None].astype(np.int64)
                along = (1.0 + np.abs(tt) / t0_px) ** -2.0
                across = np.exp(-0.5 * (uu / width_px) ** 2)
                vals = amp * along[:, None] * across[None, :]
            # leave the core to the PSF: taper the spike inside a few px
            core = np.abs(tt) < 2.5
            if axis == 0:
                vals[:, core] = 0.0
            else:
                vals[core, :] = 0.0
            ok = (px >= 0) & (px < ctx.nx) & (py >= 0) & (py < ctx.ny)
            np.add.at(out, (py[ok], px[ok]), vals[ok])
    return out


# ---------------------------------------------------------------------------
# Noise
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class NoiseModel:
    """Grain noise in density (ADU).

    Per-pixel sigma ``sigma_sky`` on the sky, growing like
    ``sqrt(D - d_zero)`` with density (Selwyn's law: more developed grains,
    more granularity) and fading on the saturated plateau, where the emulsion
    is opaque and the scan flat.  Correlated on ~1 px (``corr_sigma_px``).
    """

    sigma_sky: float = 250.0  # per-pixel sigma on the sky
    corr_sigma_px: float = 0.6  # Gaussian smoothing of the white field (sets lag-1 correlation)
    d_zero: float = 1500.0  # density at which the granularity would vanish (clear plate)
    plateau_power: float = 3.0  # how fast the noise fades on the saturated plateau

    def amplitude(self, d: np.ndarray, d_sky: float, curve: ResponseCurve) -> np.ndarray:
        f = np.clip((d - self.d_zero) / (d_sky - self.d_zero), 0.05, None)
        fs = np.clip((d - curve.d_fog) / (curve.d_sat - curve.d_fog), 0.0, 1.0)
        fsky = (d_sky - curve.d_fog) / (curve.d_sat - curve.d_fog)
        fade = (1.0 - fs**self.plateau_power) / (1.0 - fsky**self.plateau_power)
        return self.sigma_sky * np.sqrt(f) * np.clip(fade, 0.12, None)


def grain_noise(rng: np.random.Generator, shape: tuple[int, int], corr_sigma_px: float) -> np.ndarray:
    """Unit-variance Gaussian noise correlated on ~1 px (smoothed white noise)."""
    white = rng.standard_normal(shape)
    if corr_sigma_px <= 0:
        return white
    sm = ndimage.gaussian_filter(white, corr_sigma_px, mode="wrap", truncate=3.0)
    r = int(3.0 * corr_sigma_px + 0.5) + 1
    imp = np.zeros((2 * r + 1, 2 * r + 1))
    imp[r, r] = 1.0
    var = float((ndimage.gaussian_filter(imp, corr_sigma_px, mode="constant", truncate=3.0) ** 2).sum())
    return sm / np.sqrt(var)


# ---------------------------------------------------------------------------
# SExtractor-like windowed SNR
# ---------------------------------------------------------------------------


def background_rms_map(image: np.ndarray, mesh: int = 64, n_iter: int = 5) -> np.ndarray:
    """Per-mesh background RMS as SExtractor estimates it (iterative 3-sigma clipping).

    Returns an array of shape (ceil(ny/mesh), ceil(nx/mesh)); includes the
    confusion noise of unresolved sources, which SExtractor's FLUXERR (GAIN=0)
    also carries.
    """
    img = np.asarray(image, dtype=np.float64)
    ny, nx = img.shape
    out = np.zeros(((ny + mesh - 1) // mesh, (nx + mesh - 1) // mesh))
    for j in range(out.shape[0]):
        for i in range(out.shape[1]):
            v = img[j * mesh : (j + 1) * mesh, i * mesh : (i + 1) * mesh].ravel()
            med, sig = np.median(v), np.std(v)
            for _ in range(n_iter):
                keep = np.abs(v - med) < 3.0 * sig
                if keep.sum() < 10:
                    break
                med, sig = np.median(v[keep]), np.std(v[keep])
            out[j, i] = sig
    return out


def sextractor_fwhm(stamp: np.ndarray, xc: float, yc: float, thresh: float) -> float:
    """FWHM_IMAGE as SExtractor estimates it, on a background-subtracted stamp.

    A Gaussian fit of ln(pixel) against r^2, weighted by pixel^2, over the
    pixels above max(peak / 5, thresh), minus SExtractor's 1 / (4 FWHM)
    undersampling correction.  (xc, yc) are 0-based stamp coordinates.
    """
    peak = float(stamp.max())
    t0 = max(peak / 5.0, thresh)
    m = stamp > t0
    if m.sum() < 2:
        return float("nan")
    grid = np.indices(stamp.shape, dtype=np.float64)
    yy, xx = grid[0], grid[1]
    d2 = (xx[m] - xc) ** 2 + (yy[m] - yc) ** 2
    v = stamp[m]
    lp = np.log(v)
    w = v * v
    s, sx, sxx, sy, sxy = w.sum(), (d2 * w).sum(), (d2 * d2 * w).sum(), (lp * w).sum(), (lp * d2 * w).sum()
    det = s * sxx - sx * sx
    if det == 0:
        return float("nan")
    b = -(s * sxy - sx * sy) / det
    # SExtractor bounds the slope by the isophotal shape (FWHM <~ 6 sigma)
    mm = stamp > thresh
    ww = stamp[mm]
    x2 = ((xx[mm] - xc) ** 2 * ww).sum() / ww.sum()
    y2 = ((yy[mm] - yc) ** 2 * ww).sum() / ww.sum()
    b = max(b, 1.0 / (13.0 * np.sqrt(x2 * y2)))
    f = 1.6651 / np.sqrt(b)
    return float(f - 1.0 / (4.0 * f))


def half_light_diameter(stamp: np.ndarray, xc: float, yc: float, rmax: float) -> float:
    """Diameter enclosing half of the flux within ``rmax`` (SExtractor's d50 = 2 FLUX_RADIUS)."""
    yy, xx = np.indices(stamp.shape, dtype=np.float64)
    r = np.hypot(xx - xc, yy - yc).ravel()
    v = stamp.ravel()
    m = r <= rmax
    order = np.argsort(r[m])
    c = np.cumsum(v[m][order])
    if c[-1] <= 0:
        return 0.0
    return 2.0 * float(np.interp(0.5 * c[-1], c, r[m][order]))


def window_snr(stamp: np.ndarray, xc: float, yc: float, noise_sigma: float) -> tuple[float, float]:
    """Predicted SNR_WIN of a noise-free, background-subtracted stamp, and its d50.

    SExtractor's windowed measurements use a Gaussian window of
    ``sigma_w = d50 / 2.355`` (d50 = half-light diameter, 2 x FLUX_RADIUS;
    = FWHM for a Gaussian source) centred on the source; with GAIN = 0 only
    the background noise enters, so ``SNR_WIN = sum(w p) / (sigma
    sqrt(sum w^2))``.  (xc, yc) are 0-based stamp coordinates.
    """
    if float(stamp.max()) <= 0:
        return 0.0, 0.0
    rmax = 0.45 * min(stamp.shape)
    d50 = max(half_light_diameter(stamp, xc, yc, rmax), 1.0)
    s = d50 / 2.3548
    yy, xx = np.indices(stamp.shape, dtype=np.float64)
    r2 = (xx - xc) ** 2 + (yy - yc) ** 2
    w = np.where(r2 <= (4 * s) ** 2, np.exp(-0.5 * r2 / (s * s)), 0.0)
    num = float((w * stamp).sum())
    den = noise_sigma * float(np.sqrt((w * w).sum()))
    return num / den, d50


def isolated_star(
    ctx: RenderContext, flux: float, x: float, y: float, e_sky: float, h: int = 12
) -> tuple[np.ndarray, float, float]:
    """Noise-free density profile (sky subtracted) of one point source at tile position (x, y).

    Rendered alone on a uniform sky of exposure ``e_sky`` with the local PSF.
    Returns (stamp (2h+1)^2, xc, yc) with (xc, yc) the 0-based source position
    in the stamp.
    """
    ix, iy = int(round(x - 1.0)), int(round(y - 1.0))
    local = RenderContext(
        nx=2 * h + 1,
        ny=2 * h + 1,
        pixscale=ctx.pixscale,
        psf=ctx.psf,
        field=_ShiftedField(ctx.field, ix - h, iy - h),
        curve=ctx.curve,
        sky_exposure=e_sky,
        noise_sigma=ctx.noise_sigma,
    )
    sx, sy = x - (ix - h), y - (iy - h)
    e = np.full((2 * h + 1, 2 * h + 1), e_sky)
    render_point_sources(local, np.array([sx]), np.array([sy]), np.array([flux]), out=e, hmax=h)
    stamp = ctx.curve.density(e) - float(ctx.curve.density(e_sky))
    return stamp, sx - 1.0, sy - 1.0


class _ShiftedField:
    """A PSFField seen from a stamp whose pixel (1, 1) is tile pixel (1 + ox, 1 + oy)."""

    def __init__(self, field_: PSFField | _ShiftedField, ox: int, oy: int):
        self._f, self._ox, self._oy = field_, ox, oy

    @property
    def plate_xc(self) -> float:
        return self._f.plate_xc - self._ox

    @property
    def plate_yc(self) -> float:
        return self._f.plate_yc - self._oy

    @property
    def plate_rmax(self) -> float:
        return self._f.plate_rmax

    def scale(self, x, y):
        return self._f.scale(np.asarray(x) + self._ox, np.asarray(y) + self._oy)

    def ellipticity(self, x, y):
        return self._f.ellipticity(np.asarray(x) + self._ox, np.asarray(y) + self._oy)


def growth_knee_density(ctx: RenderContext, params: RenderParams, growth: float = 2.0) -> float:
    """The saturation knee as a point-source peak density (ADU, sky included): where
    stars start to grow photographically.

    On a magnitude ladder at the tile centre on the mean sky, the FWHM_IMAGE
    SExtractor would measure (:func:`sextractor_fwhm`, noise-free) is compared
    with that of a faint star (peak 30 sigma above the sky, FWHM ~2.1 px); the
    knee is the peak density of the first star whose FWHM exceeds ``growth``
    (default 2) times it.  Below the knee a source is point-like; above it,
    grown: on a b=+32 tile the paper's 2-sigma MAD clip keeps FWHM_IMAGE up to
    ~4.2 px (median 2.75 + 2 x 0.74), i.e. twice the faint-star FWHM.
    """
    xc, yc = 0.5 * (ctx.nx + 1), 0.5 * (ctx.ny + 1)
    d_sky = float(ctx.curve.density(ctx.sky_exposure))
    thresh = 5.0 * ctx.noise_sigma
    f0 = None
    for m in np.arange(22.0, 7.9, -0.1):
        stamp, sx, sy = isolated_star(ctx, float(mag_to_flux(m, params)), xc, yc, ctx.sky_exposure, h=24)
        peak = float(stamp.max())
        if f0 is None:
            if peak >= 30.0 * ctx.noise_sigma:
                f0 = sextractor_fwhm(stamp, sx, sy, thresh)
            continue
        if sextractor_fwhm(stamp, sx, sy, thresh) >= growth * f0:
            return d_sky + peak
    return float(ctx.curve.d_sat)


@dataclass(frozen=True)
class RenderParams:
    """All tunable numbers of the plate rendering, calibrated against real DSS1 red tiles.

    ``zp_r``: R magnitude of a source whose total exposure equals 1 ``E_half``
    pixel.  ``sky_density_range``: per-plate sky level (ADU) drawn uniformly.
    """

    psf: PSFModel = field(default_factory=PSFModel)
    curve: ResponseCurve = field(default_factory=ResponseCurve)
    noise: NoiseModel = field(default_factory=NoiseModel)
    zp_r: float = 19.45
    sky_density_range: tuple[float, float] = (3350.0, 4150.0)
    d_sat_range: tuple[float, float] = (12950.0, 13300.0)
    sky_gradient: float = 0.04  # peak-to-peak fractional sky-exposure variation
    psf_variation: float = 0.12
    spike_weight: float = 5.0e-3
    spike_t0_arcsec: float = 6.0


# ---------------------------------------------------------------------------
# Plate defects
# ---------------------------------------------------------------------------


#: Side (plate pixels) of the blocks in which a plate's defects are drawn.
DEFECT_BLOCK_PX = 512
#: Longest scratch (plate pixels); cutouts gather the blocks within half of it.
MAX_SCRATCH_PX = 850.0
_DEFECT_TAG = 0xDEF3C7


def draw_plate_defects(
    seed: int,
    plate_code: int,
    plate_nx: int,
    plate_ny: int,
    cnpix1: float,
    cnpix2: float,
    nx: int,
    ny: int,
    pixscale: float,
    n_defects_per_deg2: float,
    noise_sigma: float,
    dust_per_deg2: float = 40.0,
    scratches_per_deg2: float = 2.4,
) -> list[dict]:
    """Emulsion spots, dust and scratches of a plate that touch one of its cutouts (density units).

    Defects belong to the plate: they are drawn in blocks of
    :data:`DEFECT_BLOCK_PX` x :data:`DEFECT_BLOCK_PX` plate pixels, each
    block from its own stream seeded by ``(seed, plate_code, block x, block
    y)``, so two cutouts of the same plate show the same defects where they
    overlap, and cutouts of different plates different ones.  Positions are
    drawn in full-plate pixels (1-based, pixel centres at integers) and
    returned in the cutout's (``x = x_plate - CNPIX1``).

    Parameters
    ----------
    seed : int
        Survey seed.
    plate_code : int
        The plate (:func:`vasco.synthetic.tile.plate_code`).
    plate_nx, plate_ny : int
        Size of the full scan (pixels).
    cnpix1, cnpix2 : float
        The cutout's corner on the plate (``CNPIX1``/``CNPIX2``).
    nx, ny : int
        The cutout's size (pixels).
    pixscale : float
        Arcsec per pixel.
    n_defects_per_deg2, dust_per_deg2, scratches_per_deg2 : float
        Densities of spots, dust blobs and scratches.
    noise_sigma : float
        Sky grain noise (ADU): the scale of the defects' amplitudes.

    Returns
    -------
    list of dict
        Keys ``cls`` (defect, dust, scratch), ``x``, ``y`` (cutout pixels),
        ``amp`` (ADU, signed), ``fwhm_px``, ``extent_px`` (FWHM for spots and
        dust, length for scratches), ``angle_deg`` (scratches) and
        ``block``/``index`` (the block key ``by << 6 | bx`` and the index in
        it, which make a defect's identity on its plate).
    """
    B = DEFECT_BLOCK_PX
    pad = 0.5 * MAX_SCRATCH_PX + 40.0
    nbx = (int(plate_nx) + B - 1) // B
    nby = (int(plate_ny) + B - 1) // B
    bx0 = max(int(np.floor((cnpix1 - pad) / B)), 0)
    bx1 = min(int(np.floor((cnpix1 + nx + pad) / B)), nbx - 1)
    by0 = max(int(np.floor((cnpix2 - pad) / B)), 0)
    by1 = min(int(np.floor((cnpix2 + ny + pad) / B)), nby - 1)
    out: list[dict] = []
    for by in range(by0, by1 + 1):
        for bx in range(bx0, bx1 + 1):
            rng = np.random.default_rng(np.random.SeedSequence([int(seed), int(plate_code), bx, by, _DEFECT_TAG]))
            xa, xb = bx * B + 0.5, min((bx + 1) * B, int(plate_nx)) + 0.5
            ya, yb = by * B + 0.5, min((by + 1) * B, int(plate_ny)) + 0.5
            area = (xb - xa) * (yb - ya) * (pixscale / 3600.0) ** 2
            block = (by << 6) | bx
            # small sharp emulsion spots, sharper than the PSF
            n = int(rng.poisson(n_defects_per_deg2 * area))
            xs = rng.uniform(xa, xb, n) - cnpix1
            ys = rng.uniform(ya, yb, n) - cnpix2
            fw = rng.uniform(0.9, 1.5, n)
            amp = np.exp(rng.uniform(np.log(0.8 * noise_sigma), np.log(9000.0), n))
            sign = np.where(rng.random(n) < 0.8, 1.0, -1.0)  # mostly dark (dense) spots, some clear pinholes
            sign = np.where(amp > 3000, 1.0, sign)
            for i in range(n):
                if -8.0 <= xs[i] <= nx + 8.0 and -8.0 <= ys[i] <= ny + 8.0:
                    out.append(
                        dict(
                            cls="defect",
                            x=float(xs[i]),
                            y=float(ys[i]),
                            amp=float(sign[i] * amp[i]),
                            fwhm_px=float(fw[i]),
                            extent_px=float(fw[i]),
                            angle_deg=0.0,
                            block=block,
                            index=i,
                        )
                    )
            # dust: larger, soft, brighter or darker blobs
            n = int(rng.poisson(dust_per_deg2 * area))
            xs = rng.uniform(xa, xb, n) - cnpix1
            ys = rng.uniform(ya, yb, n) - cnpix2
            fw = np.exp(rng.uniform(np.log(4.0), np.log(18.0), n))
            amp = rng.uniform(1.0, 6.0, n) * noise_sigma * np.where(rng.random(n) < 0.5, 1.0, -1.0)
            for i in range(n):
                r = 4.0 * fw[i]
                if -r <= xs[i] <= nx + r and -r <= ys[i] <= ny + r:
                    out.append(
                        dict(
                            cls="dust",
                            x=float(xs[i]),
                            y=float(ys[i]),
                            amp=float(amp[i]),
                            fwhm_px=float(fw[i]),
                            extent_px=float(fw[i]),
                            angle_deg=0.0,
                            block=block,
                            index=i,
                        )
                    )
            # scratches: thin straight lines
            n = int(rng.poisson(scratches_per_deg2 * area))
            length = rng.uniform(80.0, MAX_SCRATCH_PX, n)
            ang = rng.uniform(0.0, 180.0, n)
            xs = rng.uniform(xa, xb, n) - cnpix1
            ys = rng.uniform(ya, yb, n) - cnpix2
            amp = rng.uniform(1.0, 4.0, n) * noise_sigma * np.where(rng.random(n) < 0.5, 1.0, -1.0)
            fw = rng.uniform(0.8, 1.3, n)
            for i in range(n):
                hx = 0.5 * length[i] * abs(np.cos(np.radians(ang[i]))) + 5.0
                hy = 0.5 * length[i] * abs(np.sin(np.radians(ang[i]))) + 5.0
                if -hx <= xs[i] <= nx + hx and -hy <= ys[i] <= ny + hy:
                    out.append(
                        dict(
                            cls="scratch",
                            x=float(xs[i]),
                            y=float(ys[i]),
                            amp=float(amp[i]),
                            fwhm_px=float(fw[i]),
                            extent_px=float(length[i]),
                            angle_deg=float(ang[i]),
                            block=block,
                            index=i,
                        )
                    )
    return out


def render_defects(density: np.ndarray, defects: list[dict]) -> None:
    """Add the defects (density units) in place."""
    ny, nx = density.shape
    for d in defects:
        s = d["fwhm_px"] / 2.3548
        if d["cls"] in ("defect", "dust"):
            h = int(np.ceil(4 * s)) + 1
            xc, yc = d["x"] - 1.0, d["y"] - 1.0
            ic, jc = int(round(xc)), int(round(yc))
            i = np.arange(ic - h, ic + h + 1)
            j = np.arange(jc - h, jc + h + 1)
            if d["cls"] == "defect":
                # pixel-integrated sharp Gaussian, amplitude = peak at the exact centre
                var = s * s + 1.0 / 12.0
                prof = np.exp(-0.5 * ((j[:, None] - yc) ** 2 + (i[None, :] - xc) ** 2) / var) * (s * s / var)
            else:
                # soft blob with a flattened top
                r2 = ((j[:, None] - yc) ** 2 + (i[None, :] - xc) ** 2) / (s * s)
                prof = 1.0 / (1.0 + (r2 / 2.0) ** 2)
            okx = (i >= 0) & (i < nx)
            oky = (j >= 0) & (j < ny)
            if okx.any() and oky.any():
                density[np.ix_(j[oky], i[okx])] += d["amp"] * prof[np.ix_(oky, okx)]
        else:  # scratch
            L = d["extent_px"]
            th = np.radians(d["angle_deg"])
            ux, uy = np.cos(th), np.sin(th)
            xc, yc = d["x"] - 1.0, d["y"] - 1.0
            x0, x1 = xc - 0.5 * L * ux, xc + 0.5 * L * ux
            y0, y1 = yc - 0.5 * L * uy, yc + 0.5 * L * uy
            i0 = max(int(np.floor(min(x0, x1))) - 4, 0)
            i1 = min(int(np.ceil(max(x0, x1))) + 5, nx)
            j0 = max(int(np.floor(min(y0, y1))) - 4, 0)
            j1 = min(int(np.ceil(max(y0, y1))) + 5, ny)
            if i0 >= i1 or j0 >= j1:
                continue
            jj, ii = np.mgrid[j0:j1, i0:i1]
            t = (ii - xc) * ux + (jj - yc) * uy
            u = -(ii - xc) * uy + (jj - yc) * ux
            inside = np.abs(t) <= 0.5 * L
            taper = np.clip((0.5 * L - np.abs(t)) / 10.0, 0.0, 1.0)
            prof = np.exp(-0.5 * u * u / (s * s + 1.0 / 12.0)) * taper * inside
            density[j0:j1, i0:i1] += d["amp"] * prof


# ---------------------------------------------------------------------------
# Composition
# ---------------------------------------------------------------------------


@dataclass
class RenderedPlate:
    """Output of :func:`render_plate`."""

    image: np.ndarray  # int16
    ctx: RenderContext
    d_sky: float  # mean sky density (ADU)
    noise_sky: float  # per-pixel grain sigma on the sky (ADU)


def make_context(
    rng: np.random.Generator,
    params: RenderParams,
    nx: int,
    ny: int,
    pixscale: float,
    plate_xc: float,
    plate_yc: float,
    plate_rmax: float,
) -> RenderContext:
    """Draw the per-tile plate state (sky level, plateau, PSF field)."""
    d_sky = rng.uniform(*params.sky_density_range)
    d_sat = rng.uniform(*params.d_sat_range)
    curve = ResponseCurve(d_fog=params.curve.d_fog, d_sat=d_sat, gamma=params.curve.gamma)
    field_ = PSFField.random(rng, nx, ny, plate_xc, plate_yc, plate_rmax, amplitude=params.psf_variation)
    return RenderContext(
        nx=nx,
        ny=ny,
        pixscale=pixscale,
        psf=params.psf,
        field=field_,
        curve=curve,
        sky_exposure=float(curve.exposure(d_sky)),
        noise_sigma=params.noise.sigma_sky,
    )


def mag_to_flux(mag: npt.ArrayLike, params: RenderParams) -> np.ndarray:
    """Total exposure (E_half * px) of a point source of photographic R magnitude."""
    return 10 ** (-0.4 * (np.asarray(mag, dtype=np.float64) - params.zp_r))


def sky_exposure_map(rng: np.random.Generator, ctx: RenderContext, params: RenderParams) -> np.ndarray:
    """Sky exposure with a smooth gradient, plate vignetting and faint mottling."""
    ny, nx = ctx.ny, ctx.nx
    v = (np.arange(ny, dtype=np.float64) + 1 - 0.5 * (ny + 1)) / (0.5 * ny)
    u = (np.arange(nx, dtype=np.float64) + 1 - 0.5 * (nx + 1)) / (0.5 * nx)
    c = rng.uniform(-1.0, 1.0, 5) * 0.5 * params.sky_gradient * np.array([1.0, 1.0, 0.4, 0.4, 0.4])
    g = (
        c[0] * u[None, :]
        + c[1] * v[:, None]
        + c[2] * u[None, :] ** 2
        + c[3] * (u[None, :] * v[:, None])
        + c[4] * v[:, None] ** 2
    )
    # vignetting toward the plate corners (Schmidt): a few percent at the corner
    xx = np.arange(1, nx + 1, dtype=np.float64)[None, :] - ctx.field.plate_xc
    yy = np.arange(1, ny + 1, dtype=np.float64)[:, None] - ctx.field.plate_yc
    rho2 = (xx * xx + yy * yy) / ctx.field.plate_rmax**2
    vig = -0.08 * rho2
    # mottling on ~100 px scales, 0.5 percent
    k = 6
    coarse = rng.normal(0.0, 1.0, (k + 1, k + 1))
    mot = ndimage.zoom(coarse, ((ny + 0.0) / (k + 1), (nx + 0.0) / (k + 1)), order=3, mode="nearest")[:ny, :nx]
    mot = np.pad(mot, ((0, ny - mot.shape[0]), (0, nx - mot.shape[1])), mode="edge")
    e = ctx.sky_exposure * (1.0 + g + vig - np.mean(vig) + 0.005 * mot)
    return e


def render_plate(
    rng: np.random.Generator,
    params: RenderParams,
    ctx: RenderContext,
    sky: np.ndarray,
    point_x: np.ndarray,
    point_y: np.ndarray,
    point_mag: np.ndarray,
    gal_x: np.ndarray,
    gal_y: np.ndarray,
    gal_mag: np.ndarray,
    gal_reff: np.ndarray,
    gal_q: np.ndarray,
    gal_pa: np.ndarray,
    gal_n: np.ndarray,
    defects: list[dict],
) -> RenderedPlate:
    """Render the plate: exposure -> characteristic curve -> defects -> grain noise -> int16.

    ``sky`` is the sky exposure map (:func:`sky_exposure_map`), ``point_*``
    the point sources (stars and transients, photographic R), ``gal_*`` the
    galaxies, ``defects`` from :func:`draw_plate_defects`.  Stars brighter than
    R = 13 get diffraction spikes.
    """
    expo = np.array(sky, dtype=np.float64, copy=True)
    point_mag = np.asarray(point_mag, dtype=np.float64)
    flux = mag_to_flux(point_mag, params)
    render_point_sources(ctx, point_x, point_y, flux, out=expo)
    render_galaxies(ctx, gal_x, gal_y, mag_to_flux(gal_mag, params), gal_reff, gal_q, gal_pa, gal_n, out=expo)
    d_sky = float(ctx.curve.density(ctx.sky_exposure))
    bright = np.flatnonzero(point_mag < 13.0)
    if bright.size:
        t0 = params.spike_t0_arcsec / ctx.pixscale
        render_spikes(
            ctx,
            np.asarray(point_x)[bright],
            np.asarray(point_y)[bright],
            flux[bright],
            params.spike_weight,
            t0,
            out=expo,
        )
    dens = ctx.curve.density(expo)
    render_defects(dens, defects)
    np.clip(dens, 0.0, ctx.curve.d_sat - 1.0, out=dens)
    noise = grain_noise(rng, (ctx.ny, ctx.nx), params.noise.corr_sigma_px)
    dens += noise * params.noise.amplitude(dens, d_sky, ctx.curve)
    img = np.clip(np.rint(dens), 0, 32767).astype(np.int16)
    return RenderedPlate(image=img, ctx=ctx, d_sky=d_sky, noise_sky=ctx.noise_sigma)

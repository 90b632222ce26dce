"""Can a tile's positions support a 5\" "no counterpart" claim?  And how well is each detection placed?

Two things, both pure functions of arrays and tables (the pipeline steps do
the I/O):

* **Trust** (:func:`assess_trust`).  A tile is untrusted when its Gaia-tied
  fit fell back (a shift, no correction, or no fit at all), when the fit
  stars' median residual after the fit exceeds a threshold, or when too few
  of its bright point-like detections (:func:`match_test_stars`) have a
  counterpart in the reference catalogue after the counterpart match
  (:func:`match_fraction`).  Each failed test adds a reason token
  (:data:`TRUST_REASONS`).  The last test is the direct one: if the
  positions were off by arcseconds in part of the tile, real stars there
  would lose their counterparts, exactly as a vanished source would.

* **Position uncertainty** (:func:`position_errors`).  Per detection, the
  centroid error from SExtractor's windowed error ellipse (ERRAWIN_IMAGE,
  ERRBWIN_IMAGE: 1-sigma semi-axes in pixels) at the tile's pixel scale,
  combined in quadrature with the fit's residual scatter (robust rms of the
  fit stars' residuals after the fit, :func:`fit_scatter_arcsec`).  All three
  are radial (2-D) 1-sigma figures: sqrt(sigma_x^2 + sigma_y^2), in arcsec.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from vasco.astrometry.platefit import tangent_plane
from vasco.config import AstrometryTrustConfig

__all__ = [
    "add_position_errors",
    "tile_trust",
    "TRUST_REASONS",
    "SHAPE_CUT_COLUMNS",
    "TrustDecision",
    "match_test_stars",
    "match_fraction",
    "assess_trust",
    "pixel_scale_arcsec",
    "fit_scatter_arcsec",
    "position_errors",
]

#: Reason tokens of an untrusted tile: the fit's status when it is not a full
#: fit, then the two measured tests.
TRUST_REASONS: tuple[str, ...] = (
    "fit_fallback_shift",
    "fit_fallback_none",
    "fit_not_fitted",
    "median_residual",
    "match_fraction",
)

#: Columns of :func:`vasco.filters.cuts.apply_quality_cuts` that say a detection is point-like.
SHAPE_CUT_COLUMNS: tuple[str, ...] = ("cut_fwhm", "cut_elongation", "cut_extent", "cut_mad_clip")

#: Fewest paired fit stars whose residuals give a scatter.
MIN_SCATTER_PAIRS = 3


@dataclass
class TrustDecision:
    """The trust of one tile's astrometry, with the numbers behind it."""

    trusted: bool
    reasons: list[str] = field(default_factory=list)  # tokens of TRUST_REASONS, in that order
    details: list[str] = field(default_factory=list)  # one sentence per reason
    match_stars: int = 0
    match_with_counterpart: int = 0
    match_fraction: float | None = None
    match_catalog: str | None = None

    @property
    def reason(self) -> str:
        """Reason tokens joined by ``;`` ("" when trusted): the ``astrometry_trust_reason`` column."""
        return ";".join(self.reasons)

    def to_dict(self) -> dict[str, Any]:
        """The trust keys of tile.json's ``astrometry`` block."""
        d = asdict(self)
        return {
            "trusted": d["trusted"],
            "trust_reasons": d["reasons"],
            "trust_reason": "; ".join(d["details"]) or None,
            "match_catalog": d["match_catalog"],
            "match_stars": d["match_stars"],
            "match_with_counterpart": d["match_with_counterpart"],
            "match_fraction": d["match_fraction"],
        }


def match_test_stars(table: pd.DataFrame, cfg: AstrometryTrustConfig) -> NDArray[np.bool_]:
    """The detections the match fraction is measured on.

    SNR_WIN > ``cfg.snr_min``, FLAGS <= ``cfg.flags_max`` and, with
    ``cfg.require_shape_cuts``, the shape tests of the quality cuts
    (:data:`SHAPE_CUT_COLUMNS`, so run :func:`vasco.filters.cuts.apply_quality_cuts`
    first).  Detections without a finite position are left out.

    Raises
    ------
    ValueError
        A column the test needs is missing.
    """
    need = ["SNR_WIN", "FLAGS", "ra", "dec", *(SHAPE_CUT_COLUMNS if cfg.require_shape_cuts else ())]
    missing = [c for c in need if c not in table.columns]
    if missing:
        raise ValueError(f"detections table lacks column(s) {missing} needed by the astrometric trust test")
    snr = table["SNR_WIN"].to_numpy(np.float64)
    mask = np.isfinite(snr) & (snr > cfg.snr_min) & (table["FLAGS"].to_numpy(np.int64) <= cfg.flags_max)
    mask &= np.isfinite(table["ra"].to_numpy(np.float64)) & np.isfinite(table["dec"].to_numpy(np.float64))
    if cfg.require_shape_cuts:
        for col in SHAPE_CUT_COLUMNS:
            mask &= table[col].to_numpy(bool)
    return mask


def match_fraction(sep_arcsec: NDArray[np.float64], stars: NDArray[np.bool_]) -> tuple[int, int, float | None]:
    """How many test stars, how many of them have a counterpart (finite separation), and the fraction.

    The fraction is None when there is no test star.
    """
    sep = np.asarray(sep_arcsec, dtype=np.float64)
    stars = np.asarray(stars, dtype=bool)
    n = int(stars.sum())
    k = int((stars & np.isfinite(sep)).sum())
    return n, k, (k / n if n else None)


def assess_trust(
    summary: Mapping[str, Any],
    match: tuple[int, int, float | None],
    cfg: AstrometryTrustConfig,
    match_catalog: str | None = None,
) -> TrustDecision:
    """Decide whether a tile's astrometry can be trusted.

    Parameters
    ----------
    summary : mapping
        The ``astrometry`` block of the tile (:meth:`vasco.astrometry.solve.AstrometrySolution.summary`):
        ``status`` ('fit', 'fallback_shift', 'fallback_none', 'not_fitted') and
        ``median_residual_arcsec`` (over the paired fit stars, after the fit).
    match : tuple
        ``(n_stars, n_with_counterpart, fraction)`` of :func:`match_fraction`.
    cfg : AstrometryTrustConfig
        The thresholds.
    match_catalog : str, optional
        Name of the catalogue the fraction was measured against (for the text).

    Returns
    -------
    TrustDecision
        Trusted when the fit is a full fit, its median residual is at most
        ``max_median_residual_arcsec`` and the match fraction is at least
        ``min_match_fraction``; otherwise untrusted with every reason that
        applies.  No test star at all is a failed match-fraction test: nothing
        then shows that the positions find their stars.
    """
    reasons: list[str] = []
    details: list[str] = []
    status = str(summary.get("status") or "not_fitted")
    if status != "fit":
        token = f"fit_{status}"
        reasons.append(token if token in TRUST_REASONS else "fit_not_fitted")
        n_ref = summary.get("n_ref")
        what = {
            "fallback_shift": "the Gaia-tied fit fell back to a shift",
            "fallback_none": "the Gaia-tied fit fell back to no correction",
        }.get(status, "no Gaia-tied fit")
        details.append(f"{what} ({n_ref if n_ref is not None else 0} paired fit stars)")
    med = summary.get("median_residual_arcsec")
    if med is not None and np.isfinite(med) and float(med) > cfg.max_median_residual_arcsec:
        reasons.append("median_residual")
        details.append(f'median fit residual {float(med):.2f}" > {cfg.max_median_residual_arcsec:g}"')
    n, k, frac = match
    cat = {"gaia": "Gaia", "ps1": "PS1"}.get(str(match_catalog), match_catalog or "the reference catalogue")
    if frac is None:
        reasons.append("match_fraction")
        details.append(f"no SNR_WIN > {cfg.snr_min:g} point-like detection to test against {cat}")
    elif frac < cfg.min_match_fraction:
        reasons.append("match_fraction")
        details.append(
            f"{k} of {n} SNR_WIN > {cfg.snr_min:g} point-like detections ({100 * frac:.0f}%) have a "
            f"{cat} counterpart, < {100 * cfg.min_match_fraction:.0f}%"
        )
    return TrustDecision(
        trusted=not reasons,
        reasons=reasons,
        details=details,
        match_stars=n,
        match_with_counterpart=k,
        match_fraction=None if frac is None else float(frac),
        match_catalog=match_catalog,
    )


def pixel_scale_arcsec(
    x: NDArray[np.float64],
    y: NDArray[np.float64],
    ra: NDArray[np.float64],
    dec: NDArray[np.float64],
    ra0: float,
    dec0: float,
) -> float:
    """The tile's pixel scale (arcsec/px): sqrt|det J| of an affine fit of the tangent-plane positions to the pixels.

    Within a 30' POSS-I cutout the plate polynomial's scale changes by far
    less than a percent, so one affine Jacobian stands for the local scale
    of every detection.  NaN with fewer than 3 usable detections.
    """
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    xi, eta = tangent_plane(np.asarray(ra, np.float64), np.asarray(dec, np.float64), ra0, dec0)
    ok = np.isfinite(x) & np.isfinite(y) & np.isfinite(xi) & np.isfinite(eta)
    if ok.sum() < 3:
        return float("nan")
    a = np.stack([np.ones(ok.sum()), x[ok] - x[ok].mean(), y[ok] - y[ok].mean()], axis=-1)
    cxi, *_ = np.linalg.lstsq(a, xi[ok], rcond=None)
    ceta, *_ = np.linalg.lstsq(a, eta[ok], rcond=None)
    det = cxi[1] * ceta[2] - cxi[2] * ceta[1]
    return float(np.sqrt(abs(det)))


def fit_scatter_arcsec(pairs: pd.DataFrame) -> float | None:
    """Robust rms (arcsec, radial) of the fit stars' residuals after the fit.

    ``sqrt(s_xi^2 + s_eta^2)`` with ``s = 1.4826 * MAD`` of each residual
    component (``dxi_after``, ``deta_after`` of the pairs table of
    :func:`vasco.astrometry.solve.solve_tile`), so the few pairs the fit
    rejected do not inflate it.  None with fewer than
    :data:`MIN_SCATTER_PAIRS` pairs.
    """
    if len(pairs) < MIN_SCATTER_PAIRS:
        return None

    def _sig(v: NDArray[np.float64]) -> float:
        return float(1.4826 * np.median(np.abs(v - np.median(v))))

    sx = _sig(pairs["dxi_after"].to_numpy(np.float64))
    sy = _sig(pairs["deta_after"].to_numpy(np.float64))
    return float(np.hypot(sx, sy))


def position_errors(
    erra_px: NDArray[np.float64],
    errb_px: NDArray[np.float64],
    scale_arcsec: float,
    fit_scatter: float | None,
) -> dict[str, NDArray[np.float64]]:
    """Per-detection 1-sigma radial position uncertainty (arcsec), float64.

    Returns ``pos_err_centroid_arcsec`` = scale * sqrt(ERRAWIN^2 + ERRBWIN^2),
    ``pos_err_fit_arcsec`` = the fit scatter (the same for every detection of
    the tile) and ``pos_err_arcsec``, the two in quadrature.  NaN where the
    centroid error is not finite, and ``pos_err_fit_arcsec``/``pos_err_arcsec``
    NaN everywhere when there is no fit scatter (a tile with too few paired
    fit stars, which is untrusted).  The fit scatter also holds the bright
    fit stars' own centroid noise (a few hundredths of an arcsec), so the
    total is slightly conservative for bright detections.
    """
    a = np.asarray(erra_px, dtype=np.float64)
    b = np.asarray(errb_px, dtype=np.float64)
    centroid = float(scale_arcsec) * np.hypot(a, b)
    fit = np.full(a.shape, np.nan if fit_scatter is None else float(fit_scatter), dtype=np.float64)
    return {
        "pos_err_arcsec": np.hypot(centroid, fit),
        "pos_err_centroid_arcsec": centroid,
        "pos_err_fit_arcsec": fit,
    }


def add_position_errors(
    table: pd.DataFrame,
    x: NDArray[np.float64],
    y: NDArray[np.float64],
    ra: NDArray[np.float64],
    dec: NDArray[np.float64],
    pairs: pd.DataFrame,
    ra0: float,
    dec0: float,
) -> dict[str, Any]:
    """Add each detection's position uncertainty columns to ``table``; return the tile's figures.

    The windowed centroid error (ERRAWIN/ERRBWIN_IMAGE) at the tile's pixel
    scale (:func:`pixel_scale_arcsec` of the fitted positions ``ra``/``dec``
    against the pixels ``x``/``y``), in quadrature with the fit's residual
    scatter (:func:`fit_scatter_arcsec` of ``pairs``): the columns of
    :func:`position_errors`.

    Returns
    -------
    dict
        ``pixel_scale_arcsec`` (None when not finite) and ``fit_scatter_arcsec``.

    Raises
    ------
    ValueError
        When ``table`` lacks ERRAWIN_IMAGE or ERRBWIN_IMAGE.
    """
    missing = [c for c in ("ERRAWIN_IMAGE", "ERRBWIN_IMAGE") if c not in table.columns]
    if missing:
        raise ValueError(f"measured table lacks column(s) {missing} (pass 2's windowed centroid errors)")
    scale = pixel_scale_arcsec(x, y, ra, dec, ra0, dec0)
    scatter = fit_scatter_arcsec(pairs)
    errs = position_errors(
        table["ERRAWIN_IMAGE"].to_numpy(np.float64), table["ERRBWIN_IMAGE"].to_numpy(np.float64), scale, scatter
    )
    for col, values in errs.items():
        table[col] = values
    return {"pixel_scale_arcsec": scale if np.isfinite(scale) else None, "fit_scatter_arcsec": scatter}


def tile_trust(
    table: pd.DataFrame, summary: Mapping[str, Any], cfg: AstrometryTrustConfig, reference: str
) -> TrustDecision:
    """Decide a tile's astrometric trust after the counterpart match; mark every detection.

    The match test counts the point-like detections of
    :func:`match_test_stars` with a counterpart in ``reference``
    (``<reference>_sep_arcsec``; no such column: the catalogue was not
    matched on this tile, and the test has no stars).  Adds
    ``astrometry_trusted`` and ``astrometry_trust_reason`` (reason tokens
    joined by ``;``, "" when trusted) to ``table``.

    Parameters
    ----------
    table : DataFrame
        The detections after the counterpart match and quality cuts; changed in place.
    summary : mapping
        The fit's summary (``work/astrometry.json``'s ``summary``).
    cfg : AstrometryTrustConfig
        The thresholds (``astrometry.trust``).
    reference : str
        The catalogue of the fit and of the match test (``astrometry.reference``).

    Returns
    -------
    TrustDecision
        :func:`assess_trust`'s decision.
    """
    if f"{reference}_sep_arcsec" in table.columns:
        counts = match_fraction(table[f"{reference}_sep_arcsec"].to_numpy(np.float64), match_test_stars(table, cfg))
    else:
        counts = (0, 0, None)
    trust = assess_trust(summary, counts, cfg, match_catalog=reference)
    table["astrometry_trusted"] = np.full(len(table), trust.trusted, dtype=bool)
    table["astrometry_trust_reason"] = pd.array([trust.reason] * len(table), dtype="string")
    return trust

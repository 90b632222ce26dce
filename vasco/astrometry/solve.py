"""A tile's astrometry: which header solution, and the Gaia-tied correction.

A DSS cutout header can carry two solutions: the GSSS plate polynomial
(AMDX/AMDY) and an explicit TAN WCS (CRPIX/CD).  They can disagree by
arcseconds.  :func:`solve_tile` evaluates every solution the header has,
pairs well-measured stars with the reference catalogue moved to the plate
epoch, keeps the solution whose raw positions agree better with it (or the
configured one), and fits a tangent-plane polynomial
(:func:`vasco.astrometry.platefit.fit_plate`) that takes its positions onto
the reference.  The corrected float64 positions are what VASCO matches and
publishes; the header positions stay in the tables beside them.

Everything here is a pure function of arrays and tables; the pipeline step
(:func:`vasco.steps.astrometry.astrometry`) does the I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from astropy.io import fits
from numpy.typing import NDArray

from vasco.astrometry.platefit import PlateFit, fit_plate, tangent_plane
from vasco.astrometry.positions import has_tan_wcs, pixel_to_sky
from vasco.config import AstrometryConfig
from vasco.matching.crossmatch import angular_separation_arcsec, chord, nearest_within
from vasco.matching.propagate import propagate_positions, radec_to_unit

__all__ = [
    "SOLUTIONS",
    "AstrometrySolution",
    "available_solutions",
    "header_positions",
    "two_solution_offset_arcsec",
    "reference_at_epoch",
    "fit_star_mask",
    "isolated",
    "solve_tile",
]

#: Columns of the residual pairs table (:attr:`AstrometrySolution.pairs`).
PAIR_COLUMNS: tuple[str, ...] = (
    "x",
    "y",
    "xi_arcmin",
    "eta_arcmin",
    "dxi_before",
    "deta_before",
    "dxi_after",
    "deta_after",
    "res_before_arcsec",
    "res_after_arcsec",
)

#: Header solutions, in order of preference when the data cannot choose.
Solution = Literal["plate", "tan"]
SOLUTIONS: tuple[Solution, ...] = ("plate", "tan")


def available_solutions(header: fits.Header) -> list[str]:
    """The header solutions a header carries, in :data:`SOLUTIONS` order."""
    found = []
    if all(k in header for k in ("AMDX1", "AMDY1", "PLTSCALE", "PPO3", "PPO6")):
        found.append("plate")
    if has_tan_wcs(header):
        found.append("tan")
    return found


def header_positions(
    header: fits.Header, x: NDArray[np.float64], y: NDArray[np.float64]
) -> dict[str, tuple[NDArray[np.float64], NDArray[np.float64]]]:
    """RA/Dec of 1-based pixels under every solution the header carries.

    A solution that is present but cannot be evaluated is left out; raises
    ValueError when none can be.
    """
    out: dict[str, tuple[NDArray[np.float64], NDArray[np.float64]]] = {}
    errors = []
    for name in available_solutions(header):
        try:
            out[name] = pixel_to_sky(header, x, y, name)  # type: ignore[arg-type]
        except (ValueError, KeyError) as exc:
            errors.append(f"{name}: {exc}")
    if not out:
        why = "; ".join(errors) or "neither a plate polynomial (AMDX/AMDY, PPO, PLTSCALE) nor a TAN WCS (CTYPE/CD)"
        raise ValueError(f"no usable astrometric solution in the header ({why})")
    return out


def two_solution_offset_arcsec(header: fits.Header) -> float | None:
    """Angular distance (arcsec) between the two header solutions at the cutout centre.

    None unless the header carries both and both evaluate.
    """
    if len(available_solutions(header)) < 2:
        return None
    xc = np.array([(float(header["NAXIS1"]) + 1.0) / 2.0])
    yc = np.array([(float(header["NAXIS2"]) + 1.0) / 2.0])
    try:
        pos = header_positions(header, xc, yc)
    except ValueError:
        return None
    if len(pos) < 2:
        return None
    (ra1, de1), (ra2, de2) = pos["plate"], pos["tan"]
    return float(angular_separation_arcsec(ra1, de1, ra2, de2)[0])


def reference_at_epoch(
    catalog: pd.DataFrame, epoch: float, *, require_pm: bool = True
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Reference positions moved to ``epoch`` from a catalogue in the
    :data:`vasco.matching.catalogs.REF_COLUMNS` schema.

    With ``require_pm``, stars without a proper motion are left out (their
    position decades earlier is unknown); otherwise they stay where they are.
    """
    cat = catalog
    if require_pm:
        keep = np.isfinite(cat["pmra"].to_numpy(np.float64)) & np.isfinite(cat["pmdec"].to_numpy(np.float64))
        cat = cat.loc[keep]
    return propagate_positions(cat["ra"], cat["dec"], cat["pmra"], cat["pmdec"], cat["epoch"], epoch)


def fit_star_mask(table: pd.DataFrame, cfg: AstrometryConfig) -> NDArray[np.bool_]:
    """Detections well enough measured to anchor the fit (SNR_WIN, FLAGS)."""
    snr = table["SNR_WIN"].to_numpy(np.float64)
    flags = table["FLAGS"].to_numpy(np.int64)
    return np.isfinite(snr) & (snr > cfg.fit_snr_min) & (flags <= cfg.fit_flags_max)


def isolated(ra: NDArray[np.float64], dec: NDArray[np.float64], radius_arcsec: float) -> NDArray[np.bool_]:
    """True for the stars with no other star of the same list within ``radius_arcsec``.

    An unresolved neighbour, even one too faint to be detected on the plate,
    pulls the photographic centroid off the catalogue position, so only
    isolated reference stars anchor the fit.
    """
    from scipy.spatial import cKDTree

    ra = np.asarray(ra, dtype=np.float64)
    if radius_arcsec <= 0 or ra.size < 2:
        return np.ones(ra.size, dtype=bool)
    u = radec_to_unit(ra, dec).reshape(-1, 3)
    pairs = cKDTree(u).query_pairs(chord(radius_arcsec), output_type="ndarray")
    crowded = np.zeros(ra.size, dtype=bool)
    crowded[pairs.ravel()] = True
    return ~crowded


@dataclass
class AstrometrySolution:
    """What :func:`solve_tile` decided, with the numbers behind it."""

    solution: Solution  # header solution the positions start from
    choice: str  # why: "configured", "only_solution", "raw_residuals", "no_reference"
    ra: NDArray[np.float64]  # corrected (or header, when not fitted) positions, float64
    dec: NDArray[np.float64]
    fit: PlateFit | None
    raw_median_by_solution: dict[str, float | None] = field(default_factory=dict)
    pairs: pd.DataFrame = field(default_factory=lambda: pd.DataFrame({c: np.zeros(0) for c in PAIR_COLUMNS}))
    n_fit_stars: int = 0

    def summary(self) -> dict[str, Any]:
        """The ``astrometry`` block of tile.json (without the header offset)."""
        fit = self.fit
        matched = self.pairs
        after = matched["res_after_arcsec"].to_numpy() if len(matched) else np.array([])
        before = matched["res_before_arcsec"].to_numpy() if len(matched) else np.array([])

        def _med(a: NDArray) -> float | None:
            return float(np.median(a)) if a.size else None

        def _p90(a: NDArray) -> float | None:
            return float(np.percentile(a, 90)) if a.size else None

        return {
            "solution": self.solution,
            "choice": self.choice,
            "fitted": fit is not None and fit.degree >= 0,
            "status": fit.status if fit is not None else "not_fitted",
            "degree": fit.degree if fit is not None else None,
            "n_fit_stars": self.n_fit_stars,
            "n_ref": fit.n_ref if fit is not None else 0,
            "n_used": fit.n_used if fit is not None else 0,
            # Over every paired fit star (clipped ones included), after and before the fit.
            "median_residual_arcsec": _med(after),
            "p90_residual_arcsec": _p90(after),
            "raw_median_residual_arcsec": _med(before),
            "raw_p90_residual_arcsec": _p90(before),
            # Over the stars the fit kept.
            "fit_median_residual_arcsec": fit.median_residual_arcsec if fit is not None else None,
            "raw_median_by_solution": self.raw_median_by_solution,
        }


def _pairs(
    x: NDArray,
    y: NDArray,
    ra: NDArray,
    dec: NDArray,
    cra: NDArray,
    cdec: NDArray,
    ref_ra: NDArray,
    ref_dec: NDArray,
    ra0: float,
    dec0: float,
    radius: float,
    ref_usable: NDArray[np.bool_] | None = None,
) -> pd.DataFrame:
    """Residual vectors (arcsec, tangent plane) of fit stars before and after the correction."""
    idx, _ = nearest_within(ra, dec, ref_ra, ref_dec, radius)
    ok = idx >= 0
    if ref_usable is not None:
        ok &= ref_usable[np.where(ok, idx, 0)]
    xi, eta = tangent_plane(ra[ok], dec[ok], ra0, dec0)
    cxi, ceta = tangent_plane(cra[ok], cdec[ok], ra0, dec0)
    rxi, reta = tangent_plane(ref_ra[idx[ok]], ref_dec[idx[ok]], ra0, dec0)
    return pd.DataFrame(
        {
            "x": x[ok],
            "y": y[ok],
            "xi_arcmin": rxi / 60.0,
            "eta_arcmin": reta / 60.0,
            "dxi_before": rxi - xi,
            "deta_before": reta - eta,
            "dxi_after": rxi - cxi,
            "deta_after": reta - ceta,
            "res_before_arcsec": np.hypot(rxi - xi, reta - eta),
            "res_after_arcsec": np.hypot(rxi - cxi, reta - ceta),
        }
    )


def solve_tile(
    positions: Mapping[Solution, tuple[NDArray[np.float64], NDArray[np.float64]]],
    x: NDArray[np.float64],
    y: NDArray[np.float64],
    fit_mask: NDArray[np.bool_],
    ref_ra: NDArray[np.float64] | None,
    ref_dec: NDArray[np.float64] | None,
    ra0: float,
    dec0: float,
    cfg: AstrometryConfig,
) -> AstrometrySolution:
    """Choose a header solution and tie it to the reference stars.

    Parameters
    ----------
    positions : mapping
        Solution name -> (ra, dec) of every detection (:func:`header_positions`).
    x, y : ndarray
        1-based pixel centroids of the detections (for the residual plot).
    fit_mask : ndarray of bool
        Detections allowed to anchor the fit (:func:`fit_star_mask`).
    ref_ra, ref_dec : ndarray or None
        Reference stars at the plate epoch; None when there is no reference.
    ra0, dec0 : float
        Tangent point (the tile centre).
    cfg : AstrometryConfig
        ``solution`` ('auto' lets the raw residuals choose) and the fit settings.

    Raises
    ------
    ValueError
        The configured solution is not in the header.
    """
    if not positions:
        raise ValueError("no header solution to start from")
    if cfg.solution != "auto" and cfg.solution not in positions:
        raise ValueError(f"astrometry.solution {cfg.solution!r} is not in the header (it has: {', '.join(positions)})")
    n = len(x)
    for name, (ra_, dec_) in positions.items():
        if len(ra_) != n or len(dec_) != n:
            raise ValueError(f"solution {name!r} has {len(ra_)} positions, pixels have {n} rows")
    if len(fit_mask) != n or len(y) != n:
        raise ValueError(f"fit_mask has {len(fit_mask)} rows, positions have {n}")
    have_ref = ref_ra is not None and ref_dec is not None and len(ref_ra) > 0
    kwargs: dict[str, Any] = dict(
        match_radius_arcsec=cfg.fit_match_radius_arcsec,
        clip_arcsec=cfg.fit_clip_arcsec,
        max_degree=cfg.fit_max_degree,
        min_stars_per_term=cfg.fit_min_stars_per_term,
        min_stars_shift=cfg.fit_min_stars_shift,
    )
    usable = isolated(ref_ra, ref_dec, cfg.fit_isolation_arcsec) if have_ref else None  # type: ignore[arg-type]
    kwargs["ref_usable"] = usable
    n_fit = int(fit_mask.sum())
    candidates: list[Solution] = [s for s in SOLUTIONS if s in positions] if cfg.solution == "auto" else [cfg.solution]
    fits_by_solution: dict[str, PlateFit] = {}
    raw: dict[str, float | None] = {}
    if have_ref and (cfg.refit or len(candidates) > 1):
        assert ref_ra is not None and ref_dec is not None  # have_ref
        for name in candidates:
            ra, dec = positions[name]
            f = fit_plate(ra[fit_mask], dec[fit_mask], ref_ra, ref_dec, ra0, dec0, **kwargs)
            fits_by_solution[name] = f
            raw[name] = f.raw_median_residual_arcsec
    if cfg.solution != "auto":
        chosen, choice = cfg.solution, "configured"
    elif len(candidates) == 1:
        chosen, choice = candidates[0], "only_solution"
    elif any(v is not None for v in raw.values()):
        measured = {s: v for s in candidates if (v := raw.get(s)) is not None}
        chosen = min(measured, key=measured.__getitem__)
        choice = "raw_residuals"
    else:
        chosen, choice = candidates[0], "no_reference"
    ra, dec = positions[chosen]
    fit = fits_by_solution.get(chosen) if cfg.refit else None
    if fit is not None and fit.degree >= 0:
        cra, cdec = fit.apply(ra, dec)
    else:
        cra, cdec = ra.copy(), dec.copy()
    pairs = pd.DataFrame({c: np.zeros(0) for c in PAIR_COLUMNS})
    if have_ref:
        assert ref_ra is not None and ref_dec is not None
        m = fit_mask
        pairs = _pairs(
            x[m], y[m], ra[m], dec[m], cra[m], cdec[m], ref_ra, ref_dec, ra0, dec0, cfg.fit_match_radius_arcsec, usable
        )
    return AstrometrySolution(
        solution=chosen,
        choice=choice,
        ra=np.asarray(cra, np.float64),
        dec=np.asarray(cdec, np.float64),
        fit=fit,
        raw_median_by_solution=raw,
        pairs=pairs,
        n_fit_stars=n_fit,
    )

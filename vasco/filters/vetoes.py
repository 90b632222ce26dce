"""The paper's later vetoes, as pure functions on candidate positions and reference lists.

Each stage takes the candidates' float64 positions (degrees, at the plate
epoch) and a reference list in the schema of
:func:`vasco.matching.catalogs.normalize_catalog` (``source_id, ra, dec,
pmra, pmdec, epoch, mag``) and returns, per candidate, whether the stage
rejects it and what it matched, as a DataFrame aligned with the candidates.

* :func:`bright_star_veto` — spikes and halos: every bright star within
  ``radius`` (not only the nearest) is tested against
  ``m <= mag_always or m < slope * d + intercept`` (Solano et al. 2022, with
  USNO-B1.0 R magnitudes).
* :func:`counterpart_veto` — a counterpart within a radius (other archives,
  known variables, asteroids at the plate epoch).
* :func:`presence_veto` — the opposite: rejected when a reference list has
  *no* row within the radius.
* :func:`supercosmos_veto` — the paper's SuperCOSMOS test: the second
  digitisation of the same POSS-I E plate must see the source.  Only rows
  measured on that plate (R1) count; where the SSA has no POSS-I E plate
  (south of Dec -17.5) the test is not applicable and removes nothing.
  Each candidate gets ``status`` ``pass``, ``fail`` or ``not_applicable``.
* :func:`hpm_veto` — a Gaia source without proper motion within a wide radius.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from vasco.matching.crossmatch import neighbours_within

__all__ = [
    "bright_star_veto",
    "counterpart_veto",
    "presence_veto",
    "supercosmos_veto",
    "SCOS_STATUSES",
    "hpm_veto",
    "spike_rule",
    "first_failing",
]


def spike_rule(
    mag: ArrayLike, dist_arcsec: ArrayLike, mag_always: float = 12.4, slope: float = -0.09, intercept: float = 15.3
) -> NDArray[np.bool_]:
    """True where a star of magnitude ``mag`` at ``dist_arcsec`` rejects a source.

    ``m <= mag_always`` or ``m < slope * d + intercept`` (paper: 12.4, -0.09,
    15.3).  NaN magnitudes never reject.
    """
    m = np.asarray(mag, dtype=np.float64)
    d = np.asarray(dist_arcsec, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return (m <= mag_always) | (m < slope * d + intercept)


def bright_star_veto(
    ra: ArrayLike,
    dec: ArrayLike,
    stars: pd.DataFrame,
    *,
    radius_arcsec: float = 90.0,
    mag_always: float = 12.4,
    slope: float = -0.09,
    intercept: float = 15.3,
) -> pd.DataFrame:
    """Spike/halo test of every candidate against every bright star within the radius.

    Parameters
    ----------
    ra, dec : array_like
        Candidates (degrees).
    stars : DataFrame
        Bright stars with ``source_id``, ``ra``, ``dec``, ``mag`` (NaN
        magnitudes are ignored).
    radius_arcsec, mag_always, slope, intercept : float
        The rule (:func:`spike_rule`).

    Returns
    -------
    DataFrame
        ``vetoed`` (bool), ``star_id``, ``star_mag`` and ``star_dist_arcsec``
        of the star that rejects the candidate by the widest margin (else of
        the brightest star tested; NaN/NA when there is none), and
        ``n_stars`` within the radius.
    """
    ra = np.atleast_1d(np.asarray(ra, dtype=np.float64))
    dec = np.atleast_1d(np.asarray(dec, dtype=np.float64))
    n = ra.size
    vetoed = np.zeros(n, dtype=bool)
    star_id = np.full(n, None, dtype=object)
    star_mag = np.full(n, np.nan)
    star_dist = np.full(n, np.nan)
    n_stars = np.zeros(n, dtype=np.int64)
    mags = stars["mag"].to_numpy(np.float64) if len(stars) else np.zeros(0)
    usable = np.isfinite(mags)
    if n and usable.any():
        sra = stars["ra"].to_numpy(np.float64)[usable]
        sdec = stars["dec"].to_numpy(np.float64)[usable]
        smag = mags[usable]
        sid = stars["source_id"].to_numpy()[usable]
        for i, (js, d) in enumerate(neighbours_within(ra, dec, sra, sdec, radius_arcsec)):
            if not js.size:
                continue
            n_stars[i] = js.size
            m = smag[js]
            # Margin by which each star rejects (>0) or not: the larger of the two tests.
            margin = np.maximum(mag_always - m, slope * d + intercept - m)
            hit = spike_rule(m, d, mag_always, slope, intercept)
            k = int(np.argmax(np.where(hit, margin, -np.inf))) if hit.any() else int(np.argmin(m))
            vetoed[i] = bool(hit.any())
            star_id[i], star_mag[i], star_dist[i] = sid[js[k]], m[k], d[k]
    return pd.DataFrame(
        {
            "vetoed": vetoed,
            "star_id": pd.array(star_id, dtype="string") if n else pd.array([], dtype="string"),
            "star_mag": star_mag,
            "star_dist_arcsec": star_dist,
            "n_stars": n_stars,
        }
    )


def counterpart_veto(
    ra: ArrayLike, dec: ArrayLike, ref: pd.DataFrame, radius_arcsec: float | ArrayLike
) -> pd.DataFrame:
    """Rejected when the nearest reference row lies within the radius.

    ``radius_arcsec`` may be one value or one per reference row (e.g. three
    times an ephemeris uncertainty); a candidate is rejected by any row within
    that row's own radius.

    Returns
    -------
    DataFrame
        ``vetoed`` (bool), ``match_id`` (string), ``match_sep_arcsec``.
    """
    ra = np.atleast_1d(np.asarray(ra, dtype=np.float64))
    dec = np.atleast_1d(np.asarray(dec, dtype=np.float64))
    n = ra.size
    ids = np.full(n, None, dtype=object)
    sep = np.full(n, np.nan)
    if n and len(ref):
        rra = ref["ra"].to_numpy(np.float64)
        rdec = ref["dec"].to_numpy(np.float64)
        radii = np.broadcast_to(np.asarray(radius_arcsec, dtype=np.float64), (len(ref),))
        rid = ref["source_id"].to_numpy()
        for i, (js, d) in enumerate(neighbours_within(ra, dec, rra, rdec, float(radii.max()))):
            ok = d <= radii[js]
            if ok.any():
                k = int(np.argmin(np.where(ok, d, np.inf)))
                ids[i], sep[i] = str(rid[js[k]]), d[k]
    return pd.DataFrame(
        {"vetoed": np.isfinite(sep), "match_id": pd.array(ids, dtype="string"), "match_sep_arcsec": sep}
    )


def presence_veto(ra: ArrayLike, dec: ArrayLike, ref: pd.DataFrame, radius_arcsec: float) -> pd.DataFrame:
    """Rejected when *no* reference row lies within the radius (second digitisation).

    Returns
    -------
    DataFrame
        ``vetoed`` (bool: nothing there), ``match_id``, ``match_sep_arcsec``.
    """
    out = counterpart_veto(ra, dec, ref, radius_arcsec)
    out["vetoed"] = ~out["vetoed"].to_numpy()
    return out


#: Outcomes of :func:`supercosmos_veto`, per candidate.
SCOS_STATUSES: tuple[str, ...] = ("pass", "fail", "not_applicable")


def supercosmos_veto(
    ra: ArrayLike, dec: ArrayLike, r1_ref: pd.DataFrame, radius_arcsec: float, dec_min: float = -17.5
) -> pd.DataFrame:
    """Does the second digitisation of the POSS-I E plate see each candidate?

    Parameters
    ----------
    ra, dec : array_like
        Candidates (degrees).
    r1_ref : DataFrame
        SuperCOSMOS rows *measured on the R1 (POSS-I E) plate*, in the
        reference schema (see
        :func:`vasco.sources.supercosmos.has_r1_measurement`).
    radius_arcsec : float
        A detection within this sees the candidate.
    dec_min : float
        South of this the SSA has no POSS-I E plate: the test does not apply.

    Returns
    -------
    DataFrame
        ``status`` (``pass``: an R1 detection within the radius;
        ``fail``: none, rejected; ``not_applicable``: Dec < ``dec_min``,
        kept), ``vetoed`` (``status == 'fail'``), ``match_id``,
        ``match_sep_arcsec``.
    """
    dec = np.atleast_1d(np.asarray(dec, dtype=np.float64))
    out = counterpart_veto(ra, dec, r1_ref, radius_arcsec)
    seen = out["vetoed"].to_numpy(bool)
    applies = dec >= dec_min
    status = np.where(~applies, "not_applicable", np.where(seen, "pass", "fail"))
    out["status"] = pd.array(status.astype(object), dtype="string")
    out["vetoed"] = applies & ~seen
    return out[["vetoed", "status", "match_id", "match_sep_arcsec"]]


def hpm_veto(
    ra: ArrayLike,
    dec: ArrayLike,
    gaia: pd.DataFrame,
    *,
    radius_arcsec: float = 60.0,
    gmag_max: float = 19.5,
    plate_ra: ArrayLike | None = None,
    plate_dec: ArrayLike | None = None,
    plate_radius_arcsec: float = 5.0,
) -> pd.DataFrame:
    """Rejected when a Gaia source *without* proper motion, itself missing from the plate, lies within the radius.

    Such a source (a 2-parameter solution) may be a high-proper-motion star:
    in 2016 it is far from where the plate saw it, so the plate shows a
    "vanished" source at the old position and nothing at the Gaia one.
    ``gaia`` is in the reference schema with positions at their own epoch;
    only rows with NaN ``pmra``/``pmdec`` and ``mag <= gmag_max`` count, and,
    when the plate's detections are given (``plate_ra``, ``plate_dec``), only
    those with no detection within ``plate_radius_arcsec`` of their Gaia
    position (a galaxy or a slow star without a Gaia proper motion is on the
    plate where Gaia puts it, and cannot explain a candidate elsewhere).
    """
    if len(gaia):
        nopm = ~np.isfinite(gaia["pmra"].to_numpy(np.float64)) | ~np.isfinite(gaia["pmdec"].to_numpy(np.float64))
        with np.errstate(invalid="ignore"):
            bright = gaia["mag"].to_numpy(np.float64) <= gmag_max
        gaia = gaia.loc[nopm & bright]
    if len(gaia) and plate_ra is not None and plate_dec is not None and np.size(plate_ra):
        seen = counterpart_veto(
            gaia["ra"],
            gaia["dec"],
            pd.DataFrame(
                {
                    "source_id": np.arange(np.size(plate_ra)),
                    "ra": np.asarray(plate_ra, np.float64),
                    "dec": np.asarray(plate_dec, np.float64),
                }
            ),
            plate_radius_arcsec,
        )["vetoed"].to_numpy(bool)
        gaia = gaia.loc[~seen]
    return counterpart_veto(ra, dec, gaia, radius_arcsec)


def first_failing(columns: Sequence[str], table: pd.DataFrame) -> NDArray[np.object_]:
    """Name of the first column in ``columns`` that is False for each row (None if all pass)."""
    out = np.full(len(table), None, dtype=object)
    for col in reversed(list(columns)):
        fail = ~table[col].to_numpy(bool)
        out[fail] = col
    return out

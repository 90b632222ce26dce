"""The catalogue answers that come with a synthetic tile, under the real services' column names.

Each list is built from the tile's gathered (global) objects; every random
quantity in it (position and magnitude errors, memberships) is a per-object
number (:func:`vasco.synthetic.cells.object_uniforms`), so an object has the
same row in every tile's list.  Each list covers the tile footprint grown by
a margin (:data:`LIST_MARGIN_ARCSEC`), injected objects (transients, IR
sources, variables, asteroids) the footprint + 30".

============  ==========================  =============================================
list          service                     content
============  ==========================  =============================================
``gaia``      Gaia EDR3 (archive names)   G <= ``gaia_gmax`` at 2016.0, incomplete near
                                          bright stars; a fraction of the HPM stars
                                          without proper motion (``gaia_no_pm``)
``ps1``       Pan-STARRS DR2              r <= ``ps1_rmax`` at each epochMean, Dec >= -30
``usnob``     VizieR I/284/out            every star with R <= 16 within 300" (J2000)
``allwise``   VizieR II/328/allwise       IR sources and stars with W1 < 16.5 (2010.5)
``vsx``       VizieR B/vsx/vsx            the ``variable`` class and a few ordinary
                                          stars flagged variable (J2000)
``skybot``    IMCCE SkyBoT cone search    the plate's asteroids at the plate epoch
``scos``      SSA ``Source`` cone         the second digitisation of the plate: real
                                          objects at the plate epoch to R ~ 20.5,
                                          never the DSS scan's defects; every row
                                          measured on the R1 (POSS-I E) plate
                                          (``objIDR1`` non-zero, a real
                                          ``sCorMagR1``): what the veto needs
============  ==========================  =============================================
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from vasco.config import SyntheticConfig
from vasco.plates.header import julian_date
from vasco.synthetic import population as pop
from vasco.synthetic.cells import TileRegion, object_normals, object_uniforms
from vasco.synthetic.sky import ASTEROID_CLASSES, VARIABLE_TYPES, Purpose

__all__ = [
    "GAIA_EPOCH",
    "LIST_MARGIN_ARCSEC",
    "LIST_COLUMNS",
    "position_ids",
    "gaia_rows",
    "ps1_rows",
    "usnob_list",
    "allwise_list",
    "vsx_list",
    "skybot_list",
    "skybot_at",
    "scos_list",
    "allwise_designation",
    "usnob_numbering",
    "empty_list",
]

GAIA_EPOCH = 2016.0
USNOB_EPOCH = 2000.0
ALLWISE_EPOCH = 2010.5
#: Margins (arcsec) beyond the tile footprint of each list (stars and galaxies).
LIST_MARGIN_ARCSEC: dict[str, float] = {
    "gaia": 90.0,
    "ps1": 90.0,
    "usnob": 300.0,
    "allwise": 90.0,
    "vsx": 90.0,
    "scos": 90.0,
}
_USNOB_SLICES = 7200  # 0.05 deg of RA per numbering slice
_USNOB_PER_SLICE = 1388  # 7200 * 1388 < 10**7: the seven digits of a USNO-B1.0 number
_VSX_STAR_TYPES: tuple[str, ...] = ("EW", "EA", "RRAB", "SR", "ROT", "DSCT", "L")

#: Columns and dtypes of every list (the real services' names).
LIST_COLUMNS: dict[str, dict[str, object]] = {
    "usnob": {
        "USNO-B1.0": object,
        "RAJ2000": np.float64,
        "DEJ2000": np.float64,
        "R1mag": np.float64,
        "R2mag": np.float64,
        "B1mag": np.float64,
        "B2mag": np.float64,
        "pmRA": np.float64,
        "pmDE": np.float64,
    },
    "allwise": {
        "AllWISE": object,
        "RAJ2000": np.float64,
        "DEJ2000": np.float64,
        "W1mag": np.float64,
        "W2mag": np.float64,
        "ccf": object,
        "qph": object,
    },
    "vsx": {
        "Name": object,
        "RAJ2000": np.float64,
        "DEJ2000": np.float64,
        "Type": object,
        "max": np.float64,
        "min": np.float64,
    },
    "skybot": {
        "Num": "Int64",
        "Name": object,
        "ra": np.float64,
        "dec": np.float64,
        "Class": object,
        "Mv": np.float64,
        "ErrPos": np.float64,
        "dRAcosDec": np.float64,
        "dDEC": np.float64,
        "epoch_jd": np.float64,
    },
    "scos": {"objID": np.int64, "ra": np.float64, "dec": np.float64, "sCorMagR1": np.float64, "objIDR1": np.int64},
}


def empty_list(name: str) -> pd.DataFrame:
    """An empty list with its columns and dtypes."""
    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in LIST_COLUMNS[name].items()})


def _finish(name: str, data: Mapping[str, Any], sort: str, brightness: str | None = None) -> pd.DataFrame:
    """The list sorted by its id column; with ``brightness``, rows sharing an id (sources closer than the
    designation's precision, which the survey would see blended) keep only the brightest."""
    df = pd.DataFrame(data)
    if df.empty:
        return empty_list(name)
    df = df.astype(LIST_COLUMNS[name])[list(LIST_COLUMNS[name])]
    if brightness is not None:
        df = df.sort_values([sort, brightness], kind="stable").drop_duplicates(sort, keep="first")
    return df.sort_values(sort, kind="stable").reset_index(drop=True)


def position_ids(ra: NDArray[np.float64], dec: NDArray[np.float64], salt: int) -> NDArray[np.int64]:
    """int64 identifiers derived from position (unique to 1e-6 deg) and a per-catalogue salt."""
    rq = np.round(np.asarray(ra) % 360.0 * 1e6).astype(np.int64)  # < 2^29
    dq = np.round((np.asarray(dec) + 90.0) * 1e6).astype(np.int64)  # < 2^28
    return (np.int64(salt) << np.int64(58)) | (rq << np.int64(28)) | dq


def _offset(
    ra: NDArray[np.float64], dec: NDArray[np.float64], e_arcsec: NDArray[np.float64], n_arcsec: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Small east/north offsets (arcsec) applied to positions (deg)."""
    cosd = np.cos(np.radians(dec))
    return (ra + e_arcsec / 3600.0 / cosd) % 360.0, dec + n_arcsec / 3600.0


# ---------------------------------------------------------------------------
# Gaia and PS1
# ---------------------------------------------------------------------------


def gaia_rows(
    seed: int,
    cfg: SyntheticConfig,
    stars: pd.DataFrame,
    s_in: NDArray[np.bool_],
    gals: pd.DataFrame,
    g_in: NDArray[np.bool_],
) -> tuple[pd.DataFrame, NDArray[np.bool_]]:
    """Gaia-like rows (epoch 2016.0) of the stars ``s_in`` and galaxies ``g_in``.

    Position errors ~0.1 mas (bright) to ~1 mas (G = 21), PM and parallax
    errors alike; faint stars (G > 19.5) are partly two-parameter solutions;
    HPM stars keep their motion except a fraction ``hpm_gaia_no_pm_fraction``
    (NaN PM and parallax).

    Parameters
    ----------
    seed : int
        Survey seed.
    cfg : SyntheticConfig
        ``hpm_gaia_no_pm_fraction``.
    stars, gals : DataFrame
        Gathered stars and galaxies.
    s_in, g_in : ndarray of bool
        The stars and galaxies to list.

    Returns
    -------
    rows : DataFrame
        ``source_id``, ``ra``, ``dec``, ``pmra``, ``pmdec``, ``parallax``,
        ``phot_g_mean_mag``, ``ref_epoch``, sorted by ``source_id``.
    no_pm : ndarray of bool
        Per star (all of ``stars``): an HPM star Gaia gives without motion.
    """
    oid = stars["obj_id"].to_numpy()
    g = stars["gmag"].to_numpy()
    hpm = stars["hpm"].to_numpy()
    e = object_normals(seed, oid, Purpose.GAIA_ERRORS, 6)
    u = object_uniforms(seed, oid, Purpose.GAIA_TWO_PARAM, 2)
    sig = np.clip(0.1 * 10 ** (0.2 * (g - 15.0)), 0.05, 1.2)  # mas
    two_param = (u[:, 0] < np.clip((g - 19.5) * 0.2, 0.0, 0.3)) & ~hpm
    no_pm = hpm & (u[:, 1] < cfg.hpm_gaia_no_pm_fraction)
    nopm = two_param | no_pm
    ra, dec = _offset(stars["ra"].to_numpy(), stars["dec"].to_numpy(), e[:, 0] * sig / 1e3, e[:, 1] * sig / 1e3)
    pm_sig = sig * 0.6  # ~0.6 mas/yr at G=20
    s_df = pd.DataFrame(
        {
            "source_id": position_ids(stars["ra"].to_numpy(), stars["dec"].to_numpy(), 1),
            "ra": ra,
            "dec": dec,
            "pmra": np.where(nopm, np.nan, stars["pmra"].to_numpy() + e[:, 2] * pm_sig),
            "pmdec": np.where(nopm, np.nan, stars["pmdec"].to_numpy() + e[:, 3] * pm_sig),
            "parallax": np.where(nopm, np.nan, stars["parallax"].to_numpy() + e[:, 4] * pm_sig),
            "phot_g_mean_mag": g + e[:, 5] * np.clip(0.002 * 10 ** (0.2 * (g - 15.0)), 0.0003, 0.03),
            "ref_epoch": GAIA_EPOCH,
        }
    )[s_in]
    # compact, bright galaxies: two-parameter solutions (no PM / parallax)
    ge = object_normals(seed, gals["obj_id"].to_numpy(), Purpose.GAIA_ERRORS, 2)
    gra, gdec = _offset(gals["ra"].to_numpy(), gals["dec"].to_numpy(), ge[:, 0] * 2e-3, ge[:, 1] * 2e-3)
    g_df = pd.DataFrame(
        {
            "source_id": position_ids(gals["ra"].to_numpy(), gals["dec"].to_numpy(), 2),
            "ra": gra,
            "dec": gdec,
            "pmra": np.nan,
            "pmdec": np.nan,
            "parallax": np.nan,
            "phot_g_mean_mag": gals["gmag"].to_numpy(),
            "ref_epoch": GAIA_EPOCH,
        }
    )[g_in]
    out = pd.concat([s_df, g_df], ignore_index=True).astype(
        {
            "source_id": np.int64,
            "ra": np.float64,
            "dec": np.float64,
            "pmra": np.float64,
            "pmdec": np.float64,
            "parallax": np.float64,
            "phot_g_mean_mag": np.float64,
            "ref_epoch": np.float64,
        }
    )
    return out.sort_values("source_id", kind="stable").reset_index(drop=True), no_pm


def ps1_positions(seed: int, df: pd.DataFrame, is_star: bool) -> tuple[NDArray[np.float64], ...]:
    """PS1 (raMean, decMean, epochMean) of stars or galaxies: 2016 positions moved to epochMean (2010.6-2013.6)
    plus ~10-60 mas (stars) or 15-100 mas (galaxies) errors."""
    oid = df["obj_id"].to_numpy()
    u = object_uniforms(seed, oid, Purpose.PS1, 1)[:, 0]
    e = object_normals(seed, oid, Purpose.PS1, 2)
    ep = 2010.6 + 3.0 * u
    r = df["ps1_r"].to_numpy()
    if is_star:
        ra, dec = pop.propagate(
            df["ra"].to_numpy(), df["dec"].to_numpy(), df["pmra"].to_numpy(), df["pmdec"].to_numpy(), ep - GAIA_EPOCH
        )
        sig = np.clip(10.0 * 10 ** (0.2 * (r - 18.0)), 8.0, 60.0)
    else:
        ra, dec = df["ra"].to_numpy(), df["dec"].to_numpy()
        sig = np.clip(20.0 * 10 ** (0.2 * (r - 18.0)), 15.0, 100.0)
    ra, dec = _offset(ra, dec, e[:, 0] * sig / 1e3, e[:, 1] * sig / 1e3)
    return ra, dec, ep


def ps1_rows(
    seed: int,
    cfg: SyntheticConfig,
    stars: pd.DataFrame,
    s_in: NDArray[np.bool_],
    gals: pd.DataFrame,
    g_in: NDArray[np.bool_],
) -> tuple[pd.DataFrame, NDArray[np.bool_], NDArray[np.bool_]]:
    """PS1-like rows (r <= ps1_rmax, nothing south of Dec -30) of the stars/galaxies within ``s_in``/``g_in``.

    Parameters
    ----------
    seed : int
        Survey seed.
    cfg : SyntheticConfig
        ``ps1_rmax``.
    stars, gals : DataFrame
        Gathered stars and galaxies.
    s_in, g_in : ndarray of bool
        The stars and galaxies within the list's region.

    Returns
    -------
    rows : DataFrame
        ``objID``, ``raMean``, ``decMean``, ``rMeanPSFMag``, ``epochMean``,
        sorted by ``objID``.
    s_flags, g_flags : ndarray of bool
        Per star / galaxy: in PS1 (wherever it lies).
    """
    parts, flags = [], []
    for df, within, salt, is_star in ((stars, s_in, 3, True), (gals, g_in, 4, False)):
        ra, dec, ep = ps1_positions(seed, df, is_star)
        r = df["ps1_r"].to_numpy()
        sel = (r <= cfg.ps1_rmax) & (dec >= -30.0)
        flags.append(sel)
        m = sel & within
        parts.append(
            pd.DataFrame(
                {
                    "objID": position_ids(df["ra"].to_numpy()[m], df["dec"].to_numpy()[m], salt),
                    "raMean": ra[m],
                    "decMean": dec[m],
                    "rMeanPSFMag": r[m],
                    "epochMean": ep[m],
                }
            )
        )
    out = pd.concat(parts, ignore_index=True).astype(
        {
            "objID": np.int64,
            "raMean": np.float64,
            "decMean": np.float64,
            "rMeanPSFMag": np.float64,
            "epochMean": np.float64,
        }
    )
    return out.sort_values("objID", kind="stable").reset_index(drop=True), flags[0], flags[1]


# ---------------------------------------------------------------------------
# USNO-B1.0 (bright stars for the spike/halo veto)
# ---------------------------------------------------------------------------


def usnob_numbering(
    ra2000: NDArray[np.float64], dec2000: NDArray[np.float64], obj_id: NDArray[np.int64]
) -> NDArray[np.object_]:
    """USNO-B1.0-like identifiers ``ZZZZ-NNNNNNN`` of a set of stars.

    ``ZZZZ`` is the 0.1-deg declination zone (as in USNO-B1.0); the number is
    ``slice * 1388 + rank``, with ``slice`` the 0.05-deg RA slice and ``rank``
    the star's place by RA among the stars given in the same zone and slice
    (so numbers grow with RA within a zone, as USNO-B1.0's do).  Unique when
    every star of each box touched is given.
    """
    zone = np.clip(np.floor((dec2000 + 90.0) * 10.0).astype(np.int64), 0, 1799)
    slc = np.clip(np.floor((ra2000 % 360.0) / 360.0 * _USNOB_SLICES).astype(np.int64), 0, _USNOB_SLICES - 1)
    order = np.lexsort((obj_id, ra2000, slc, zone))
    key = zone[order] * _USNOB_SLICES + slc[order]
    start = np.r_[True, key[1:] != key[:-1]]
    first = np.maximum.accumulate(np.where(start, np.arange(key.size), 0))
    rank = np.empty(key.size, dtype=np.int64)
    rank[order] = np.arange(key.size) - first
    if rank.size and rank.max() >= _USNOB_PER_SLICE:
        raise ValueError("more than 1388 USNO-B1.0 stars in one 0.1 x 0.05 deg box")
    number = slc * _USNOB_PER_SLICE + rank
    return np.array([f"{z:04d}-{k:07d}" for z, k in zip(zone, number)], dtype=object)


def usnob_list(seed: int, stars: pd.DataFrame, region: TileRegion) -> tuple[pd.DataFrame, NDArray[np.bool_]]:
    """Every star with R <= 16 within the tile + 300" (positions at J2000 with ~0.15" errors).

    ``stars`` must hold every R <= 16 star within 720" of the tile (the
    numbering boxes of the listed stars).  ``R1mag`` is the first-epoch
    (POSS-I E) R, ``R2mag`` the second; B1/B2 from the star's colour; NaN for
    a few missing epochs; proper motions with ~4 mas/yr errors.

    Parameters
    ----------
    seed : int
        Survey seed.
    stars : DataFrame
        Gathered stars.
    region : TileRegion
        The tile's footprint.

    Returns
    -------
    rows : DataFrame
        VizieR I/284/out columns ``USNO-B1.0``, ``RAJ2000``, ``DEJ2000``,
        ``R1mag``, ``R2mag``, ``B1mag``, ``B2mag``, ``pmRA``, ``pmDE``.
    flags : ndarray of bool
        Per star: in USNO-B1.0 (R <= 16).
    """
    bright = stars["rmag"].to_numpy() <= 16.0
    b = stars.loc[bright]
    oid = b["obj_id"].to_numpy()
    e = object_normals(seed, oid, Purpose.USNOB, 8)
    u = object_uniforms(seed, oid, Purpose.USNOB, 3)
    ra, dec = pop.propagate(
        b["ra"].to_numpy(), b["dec"].to_numpy(), b["pmra"].to_numpy(), b["pmdec"].to_numpy(), USNOB_EPOCH - GAIA_EPOCH
    )
    ra, dec = _offset(ra, dec, 0.15 * e[:, 0], 0.15 * e[:, 1])
    ids = usnob_numbering(ra, dec, oid)
    r = b["rmag"].to_numpy()
    b_r = np.clip(1.0 + 2.0 * (b["g_r"].to_numpy() - 0.33), 0.3, 3.0)
    listed = region.contains(b["ra"].to_numpy(), b["dec"].to_numpy(), LIST_MARGIN_ARCSEC["usnob"])
    data = {
        "USNO-B1.0": ids,
        "RAJ2000": ra,
        "DEJ2000": dec,
        "R1mag": r + 0.2 * e[:, 2],
        "R2mag": np.where(u[:, 0] < 0.05, np.nan, r + 0.2 * e[:, 3]),
        "B1mag": np.where(u[:, 1] < 0.03, np.nan, r + b_r + 0.25 * e[:, 4]),
        "B2mag": np.where(u[:, 2] < 0.08, np.nan, r + b_r + 0.25 * e[:, 5]),
        "pmRA": b["pmra"].to_numpy() + 4.0 * e[:, 6],
        "pmDE": b["pmdec"].to_numpy() + 4.0 * e[:, 7],
    }
    data = {k: np.asarray(v)[listed] for k, v in data.items()}
    return _finish("usnob", data, "USNO-B1.0"), bright


# ---------------------------------------------------------------------------
# AllWISE, VSX, SkyBoT, SuperCOSMOS
# ---------------------------------------------------------------------------


def _zpad(v: NDArray[np.int64], width: int) -> NDArray[np.str_]:
    return np.char.zfill(np.asarray(v, dtype=np.int64).astype(str), width)


def _jname(ra: NDArray[np.float64], dec: NDArray[np.float64], ra_dec: int, dec_dec: int) -> list[str]:
    """``hhmmss.s..+ddmmss.s..`` (truncated, as survey designations are)."""
    ra = np.asarray(ra, dtype=np.float64)
    dec = np.asarray(dec, dtype=np.float64)
    if ra.size == 0:
        return []
    fr, fd = 10**ra_dec, 10**dec_dec
    t = np.floor(ra % 360.0 / 15.0 * 3600.0 * fr).astype(np.int64)
    u = np.floor(np.abs(dec) * 3600.0 * fd).astype(np.int64)
    parts = [_zpad(t // (3600 * fr), 2), _zpad((t // (60 * fr)) % 60, 2), _zpad((t // fr) % 60, 2)]
    if ra_dec:
        parts += [np.full(ra.size, "."), _zpad(t % fr, ra_dec)]
    parts += [
        np.where(dec < 0, "-", "+"),
        _zpad(u // (3600 * fd), 2),
        _zpad((u // (60 * fd)) % 60, 2),
        _zpad((u // fd) % 60, 2),
    ]
    if dec_dec:
        parts += [np.full(ra.size, "."), _zpad(u % fd, dec_dec)]
    out = parts[0]
    for p in parts[1:]:
        out = np.char.add(out, p)
    return [str(v) for v in out]


def allwise_designation(ra: NDArray[np.float64], dec: NDArray[np.float64]) -> list[str]:
    """AllWISE designations ``Jhhmmss.ss+ddmmss.s``."""
    return ["J" + s for s in _jname(ra, dec, 2, 1)]


def _qph(w1: NDArray[np.float64], w2: NDArray[np.float64]) -> list[str]:
    q1 = np.where(w1 < 15.5, "A", "B")
    q2 = np.where(w2 < 14.5, "A", np.where(w2 < 15.5, "B", "C"))
    return [f"{a}{b}UU" for a, b in zip(q1, q2)]


def stars_w1(seed: int, stars: pd.DataFrame) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """W1, W2 of stars: W1 = R - 1.5 - 1.5 (G-R - 0.33) (redder stars brighter in the IR)."""
    e = object_normals(seed, stars["obj_id"].to_numpy(), Purpose.ALLWISE, 2)
    gr = stars["g_r"].to_numpy()
    w1 = stars["rmag"].to_numpy() - 1.5 - 1.5 * (gr - 0.33) + 0.04 * e[:, 0]
    w2 = w1 - 0.05 - 0.15 * np.clip(gr - 0.33, 0.0, None) + 0.06 * e[:, 1]
    return w1, w2


def allwise_list(
    seed: int, stars: pd.DataFrame, s_in: NDArray[np.bool_], inj: pd.DataFrame
) -> tuple[pd.DataFrame, NDArray[np.bool_]]:
    """IR sources and the stars with W1 < 16.5 within ``s_in`` (positions at 2010.5, ~0.25" errors).

    Sources closer than the designation's precision (0.15") are blended:
    the list keeps the brighter.

    Parameters
    ----------
    seed : int
        Survey seed.
    stars : DataFrame
        Gathered stars.
    s_in : ndarray of bool
        The stars within the list's region.
    inj : DataFrame
        The tile's injected objects (:func:`vasco.synthetic.sky.gather_injected`).

    Returns
    -------
    rows : DataFrame
        VizieR II/328/allwise columns ``AllWISE``, ``RAJ2000``, ``DEJ2000``,
        ``W1mag``, ``W2mag``, ``ccf``, ``qph``.
    flags : ndarray of bool
        Per star: seen by WISE (W1 < 16.5).
    """
    w1, w2 = stars_w1(seed, stars)
    seen = w1 < 16.5
    m = seen & s_in
    s = stars.loc[m]
    e = object_normals(seed, s["obj_id"].to_numpy(), Purpose.ALLWISE, 4)[:, 2:]
    ra, dec = pop.propagate(
        s["ra"].to_numpy(), s["dec"].to_numpy(), s["pmra"].to_numpy(), s["pmdec"].to_numpy(), ALLWISE_EPOCH - GAIA_EPOCH
    )
    ra, dec = _offset(ra, dec, 0.25 * e[:, 0], 0.25 * e[:, 1])
    ir = inj.loc[inj["cls"] == "ir_source"]
    ie = object_normals(seed, ir["obj_id"].to_numpy(), Purpose.ALLWISE, 4)
    ira, idec = _offset(ir["ra"].to_numpy(), ir["dec"].to_numpy(), 0.35 * ie[:, 0], 0.35 * ie[:, 1])
    iw1 = ir["w1"].to_numpy() + 0.05 * ie[:, 2]
    iw2 = ir["w2"].to_numpy() + 0.08 * ie[:, 3]
    ra_all = np.concatenate([ra, ira])
    dec_all = np.concatenate([dec, idec])
    w1_all = np.concatenate([w1[m], iw1])
    w2_all = np.concatenate([w2[m], iw2])
    data = {
        "AllWISE": allwise_designation(ra_all, dec_all),
        "RAJ2000": ra_all,
        "DEJ2000": dec_all,
        "W1mag": w1_all,
        "W2mag": w2_all,
        "ccf": ["0000"] * ra_all.size,
        "qph": _qph(w1_all, w2_all),
    }
    return _finish("allwise", data, "AllWISE", brightness="W1mag"), seen


def vsx_flags(seed: int, cfg: SyntheticConfig, stars: pd.DataFrame) -> NDArray[np.bool_]:
    """Ordinary stars (R <= 17) that the synthetic VSX lists as variable."""
    u = object_uniforms(seed, stars["obj_id"].to_numpy(), Purpose.VSX, 1)[:, 0]
    return (stars["rmag"].to_numpy() <= 17.0) & (u < cfg.vsx_star_fraction)


def vsx_list(
    seed: int, cfg: SyntheticConfig, stars: pd.DataFrame, s_in: NDArray[np.bool_], inj: pd.DataFrame
) -> tuple[pd.DataFrame, NDArray[np.bool_]]:
    """The ``variable`` objects and the flagged ordinary stars within ``s_in`` (J2000 positions).

    Parameters
    ----------
    seed : int
        Survey seed.
    cfg : SyntheticConfig
        ``vsx_star_fraction``.
    stars : DataFrame
        Gathered stars.
    s_in : ndarray of bool
        The stars within the list's region.
    inj : DataFrame
        The tile's injected objects.

    Returns
    -------
    rows : DataFrame
        VizieR B/vsx/vsx columns ``Name``, ``RAJ2000``, ``DEJ2000``,
        ``Type``, ``max``, ``min`` (for the ``variable`` class: the plate's
        bright phase and a minimum below the Gaia/PS1 limits).
    flags : ndarray of bool
        Per star: flagged variable.
    """
    flag = vsx_flags(seed, cfg, stars)
    s = stars.loc[flag & s_in]
    oid = s["obj_id"].to_numpy()
    u = object_uniforms(seed, oid, Purpose.VSX, 3)
    e = object_normals(seed, oid, Purpose.VSX, 2)
    ra, dec = pop.propagate(
        s["ra"].to_numpy(), s["dec"].to_numpy(), s["pmra"].to_numpy(), s["pmdec"].to_numpy(), USNOB_EPOCH - GAIA_EPOCH
    )
    ra, dec = _offset(ra, dec, 0.1 * e[:, 0], 0.1 * e[:, 1])
    amp = 0.1 + 0.9 * u[:, 1]
    stype = np.array(_VSX_STAR_TYPES, dtype=object)[
        np.minimum((u[:, 2] * len(_VSX_STAR_TYPES)).astype(int), len(_VSX_STAR_TYPES) - 1)
    ]
    r = s["rmag"].to_numpy()
    v = inj.loc[inj["cls"] == "variable"]
    ve = object_normals(seed, v["obj_id"].to_numpy(), Purpose.VSX, 2)
    vra, vdec = _offset(v["ra"].to_numpy(), v["dec"].to_numpy(), 0.3 * ve[:, 0], 0.3 * ve[:, 1])
    ra_all = np.concatenate([ra, vra])
    dec_all = np.concatenate([dec, vdec])
    data = {
        "Name": ["SynV J" + j for j in _jname(ra_all, dec_all, 1, 0)],
        "RAJ2000": ra_all,
        "DEJ2000": dec_all,
        "Type": np.concatenate([stype, np.array(VARIABLE_TYPES, dtype=object)[v["vtype"].to_numpy()]]),
        "max": np.concatenate([r - 0.5 * amp, v["mag"].to_numpy()]),
        "min": np.concatenate([r + 0.5 * amp, v["mag_min"].to_numpy()]),
    }
    return _finish("vsx", data, "Name", brightness="max"), flag


_LETTERS1 = "ABCDEFGHJKLMNOPQRSTUVWXY"  # half-month letters (no I, no Z)
_LETTERS2 = "ABCDEFGHJKLMNOPQRSTUVWXYZ"  # order letters (no I)


def skybot_list(seed: int, inj: pd.DataFrame, epoch: float) -> pd.DataFrame:
    """The asteroids as SkyBoT's cone search answers at the plate epoch (RA/Dec in degrees).

    Positions are the true plate-epoch positions plus the ephemeris error
    (``ErrPos`` 0.5-3", per axis ``ErrPos / sqrt(2)``); ``Mv`` = R + 0.45;
    ``Num`` is NA for unnumbered objects; ``Name`` a provisional designation
    of the plate's year; ``dRAcosDec``/``dDEC`` the (small) rates in
    arcsec/h; ``epoch_jd`` the plate epoch (Julian date, also in
    ``attrs["epoch_jd"]``).  The distance to the cone centre (SkyBoT's ``d``)
    is left out: it would differ from tile to tile.

    Parameters
    ----------
    seed : int
        Survey seed.
    inj : DataFrame
        The tile's injected objects (its asteroids are the plate's).
    epoch : float
        The plate epoch (decimal Julian year).

    Returns
    -------
    DataFrame
        ``Num`` (Int64), ``Name``, ``ra``, ``dec``, ``Class``, ``Mv``,
        ``ErrPos``, ``dRAcosDec``, ``dDEC``, ``epoch_jd``.
    """
    a = inj.loc[inj["cls"] == "asteroid"]
    e = object_normals(seed, a["obj_id"].to_numpy(), Purpose.SKYBOT, 2)
    err = a["errpos"].to_numpy()
    ra, dec = _offset(
        a["ra"].to_numpy(), a["dec"].to_numpy(), err / np.sqrt(2.0) * e[:, 0], err / np.sqrt(2.0) * e[:, 1]
    )
    year = int(np.floor(epoch))
    names = []
    for code in a["name_code"].to_numpy():
        c = int(code)
        cyc = c // (len(_LETTERS1) * len(_LETTERS2))
        names.append(
            f"{year} {_LETTERS1[c % len(_LETTERS1)]}{_LETTERS2[(c // len(_LETTERS1)) % len(_LETTERS2)]}"
            + (str(cyc) if cyc else "")
        )
    num = a["number"].to_numpy()
    data = {
        "Num": pd.array([int(k) if k > 0 else None for k in num], dtype="Int64"),
        "Name": np.array(names, dtype=object),
        "ra": ra,
        "dec": dec,
        "Class": np.array([ASTEROID_CLASSES[k][0] for k in a["aclass"].to_numpy()], dtype=object),
        "Mv": a["mag"].to_numpy() + 0.45,
        "ErrPos": err,
        "dRAcosDec": a["rate_ra"].to_numpy(),
        "dDEC": a["rate_dec"].to_numpy(),
        "epoch_jd": np.full(len(a), julian_date(epoch)),
    }
    out = _finish("skybot", data, "Name")
    out.attrs["epoch_jd"] = julian_date(epoch)
    return out


def skybot_at(listing: pd.DataFrame, epoch_jd: float) -> pd.DataFrame:
    """The synthetic SkyBoT's answer at another epoch: each asteroid of ``listing`` moved by its rate.

    The synthetic asteroids move in straight lines at their listed rates
    (``dRAcosDec``, ``dDEC``, arcsec/h) from where :func:`skybot_list`
    puts them at its ``epoch_jd``, so the list answers for any date (a day
    away, ~0-70"), as an ephemeris service would.

    Parameters
    ----------
    listing : DataFrame
        A :func:`skybot_list` answer.
    epoch_jd : float
        The Julian date asked for.

    Returns
    -------
    DataFrame
        The same rows and columns, ``ra``/``dec`` and ``epoch_jd`` at ``epoch_jd``.
    """
    out = listing.copy()
    out.attrs["epoch_jd"] = float(epoch_jd)
    if not len(out):
        return out
    dt_h = (float(epoch_jd) - out["epoch_jd"].to_numpy(np.float64)) * 24.0
    dec0 = out["dec"].to_numpy(np.float64)
    dec = dec0 + np.nan_to_num(out["dDEC"].to_numpy(np.float64)) * dt_h / 3600.0
    ra = out["ra"].to_numpy(np.float64) + np.nan_to_num(out["dRAcosDec"].to_numpy(np.float64)) * dt_h / 3600.0 / np.cos(
        np.radians(dec0)
    )
    out["ra"], out["dec"] = ra % 360.0, dec
    out["epoch_jd"] = np.full(len(out), float(epoch_jd))
    return out


def scos_detected(
    seed: int, cfg: SyntheticConfig, obj_id: NDArray[np.int64], rmag: NDArray[np.float64]
) -> NDArray[np.bool_]:
    """Whether SuperCOSMOS's digitisation sees an object of plate magnitude ``rmag``.

    A logistic completeness of width 0.15 mag about ``scos_rmax`` and a
    random loss ``scos_missing_fraction``, each decided by the object's own
    numbers.
    """
    u = object_uniforms(seed, obj_id, Purpose.SCOS, 2)
    with np.errstate(over="ignore"):
        p = 1.0 / (1.0 + np.exp((np.asarray(rmag) - cfg.scos_rmax) / 0.15))
    return (u[:, 0] < p) & (u[:, 1] >= cfg.scos_missing_fraction)


def scos_list(
    seed: int,
    cfg: SyntheticConfig,
    parts: list[tuple[NDArray[np.int64], NDArray[np.float64], NDArray[np.float64], NDArray[np.float64], float]],
) -> pd.DataFrame:
    """The SuperCOSMOS ``Source`` answer from ``(obj_id, ra, dec, rmag, sigma_scale)`` groups.

    Positions are the objects' plate-epoch positions with
    ``scos_position_sigma_arcsec`` x ``sigma_scale`` noise per axis;
    ``objID = 2**62 | obj_id``; ``sCorMagR1`` = R with 0.08-0.2 mag errors;
    ``objIDR1 = 2**61 | obj_id`` (its detection on the R1 plate, POSS-I E:
    every listed object is measured there).
    Only detected objects (:func:`scos_detected`) are listed.

    Parameters
    ----------
    seed : int
        Survey seed.
    cfg : SyntheticConfig
        ``scos_rmax``, ``scos_missing_fraction``, ``scos_position_sigma_arcsec``.
    parts : list of tuple
        ``(obj_id, ra, dec, rmag, sigma_scale)`` per group of real objects,
        positions at the plate epoch.

    Returns
    -------
    DataFrame
        ``objID`` (int64), ``ra``, ``dec``, ``sCorMagR1``, ``objIDR1``
        (int64), sorted by ``objID``.
    """
    ids, ras, decs, mags, r1_ids = [], [], [], [], []
    for oid, ra, dec, rmag, scale in parts:
        det = scos_detected(seed, cfg, oid, rmag)
        e = object_normals(seed, oid, Purpose.SCOS, 3)
        sig = cfg.scos_position_sigma_arcsec * scale
        r2, d2 = _offset(np.asarray(ra), np.asarray(dec), sig * e[:, 0], sig * e[:, 1])
        m_err = 0.08 + 0.12 * np.clip((np.asarray(rmag) - 17.0) / 3.5, 0.0, 1.0)
        ids.append((np.int64(1) << np.int64(62)) | np.asarray(oid, dtype=np.int64)[det])
        r1_ids.append((np.int64(1) << np.int64(61)) | np.asarray(oid, dtype=np.int64)[det])
        ras.append(r2[det])
        decs.append(d2[det])
        mags.append((np.asarray(rmag) + m_err * e[:, 2])[det])
    data = {
        "objID": np.concatenate(ids) if ids else np.zeros(0, np.int64),
        "ra": np.concatenate(ras) if ras else np.zeros(0),
        "dec": np.concatenate(decs) if decs else np.zeros(0),
        "sCorMagR1": np.concatenate(mags) if mags else np.zeros(0),
        "objIDR1": np.concatenate(r1_ids) if r1_ids else np.zeros(0, np.int64),
    }
    return _finish("scos", data, "objID")

"""The global synthetic sky: what a tile sees is a function of (seed, sky position) only.

Every object is drawn in a HEALPix NESTED cell (order
:data:`~vasco.synthetic.cells.SKY_ORDER` = 8: 0.0525 deg^2, ~0.23 deg
across) from the cell's own random stream (seed, order, cell, class tag),
with counts from the population model evaluated at the cell centre.  A tile
gathers every cell touching its footprint plus a margin and keeps the
objects inside; two tiles that overlap therefore share the same objects,
with the same ids, positions, magnitudes and motions.

Classes and the margins (beyond the tile footprint) over which a tile
gathers them:

==============  =================  ========================================
class           margin (arcsec)    why
==============  =================  ========================================
star_bright     1100               G < 13: halos and spikes reach far
                                   (rendered spikes are at most 600 px)
star_mid        760                13 <= G < 17.5: every R <= 16 star whose
                                   USNO-B1.0 numbering box (0.1 deg zone x
                                   0.05 deg of RA) touches the tile + 300"
star_faint      110                17.5 <= G < 22 (the transient clearance
                                   test needs stars 8" + 67" of motion away)
star_cluster    760                members of the known clusters (M67)
galaxy          160                2 r_eff (<= 120") + clearance
injected        30                 transients, IR sources, variables,
                                   asteroids (placed inside the tile + 30")
==============  =================  ========================================

Injected objects (transients, ``ir_source``, ``variable``, ``asteroid``)
------------------------------------------------------------------------
Per cell and class, ``N ~ Poisson(density x area x boost)`` raw candidates
are drawn uniformly in the cell.  A raw candidate is kept when, judged
against the catalogue-level sky only (never against one tile's rendering):

* it is at least the clearance (``transient_clearance_arcsec``) from the
  track of every star between epochs 1949.0 and 2016.0 (so also from its
  plate-epoch, PS1 and Gaia positions) and from every galaxy (from
  ``2 r_eff`` + clearance for galaxies larger than 1.7"),
* it is outside the reference halo (+ clearance) of every star with R < 16
  and off the reference spikes of every star with R < 13 (the spike arms
  along N-S/E-W widened by the largest angle between a POSS-I plate's axes
  and the local meridian there, :func:`spike_tolerance_deg`),
* no raw candidate of higher priority lies within the clearance (priority:
  class order transient, ir_source, variable, asteroid; then cell index;
  then index in the cell).

So whether a candidate survives depends only on objects within ~2' of it:
a transient exists in every tile that covers it.  ``boost`` compensates the
sky the clearance removes: ``1 / (1 - blocked)`` with the blocked fraction
predicted by the counts model at the cell centre (capped at 50), so that the
density of kept objects is about the configured one in sparse and crowded
fields alike.  Emulsion defects are a property of the plate (not the sky)
and are not avoided: a few percent of injected objects fall on a spot, dust
or scratch.

Transients, IR sources and variables are the same on every plate.
Asteroids are drawn per plate (the cell stream also carries the plate), at
the plate's epoch: cutouts of the same plate share them, other plates of the
same sky see other asteroids, as the sky did on other nights.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from scipy.spatial import cKDTree

from vasco.config import SyntheticConfig
from vasco.synthetic import population as pop
from vasco.synthetic import render as rnd
from vasco.synthetic.cells import (
    KIND,
    TileRegion,
    cell_area_deg2,
    cell_centres,
    cell_rng,
    cell_sample,
    chord_of_arcsec,
    local_offsets_arcsec,
    make_obj_ids,
    object_uniforms,
    radec_to_unit,
    separation_arcsec,
)

__all__ = [
    "MARGIN_ARCSEC",
    "INJECTED_CLASSES",
    "VARIABLE_TYPES",
    "ASTEROID_CLASSES",
    "ReferenceExtents",
    "reference_extents",
    "spike_tolerance_deg",
    "gather_stars",
    "gather_galaxies",
    "gather_injected",
    "gaia_dropped",
    "injected_density_per_deg2",
    "density_scale",
    "Purpose",
]

MARGIN_ARCSEC: dict[str, float] = {
    "star_bright": 1100.0,
    "star_mid": 760.0,
    "star_faint": 110.0,
    "star_cluster": 760.0,
    "galaxy": 160.0,
    "injected": 30.0,
}
_STAR_RANGES: dict[str, tuple[float, float]] = {
    "star_bright": (4.0, 13.0),
    "star_mid": (13.0, 17.5),
    "star_faint": (17.5, 22.0),
}
_BIN = 0.05  # magnitude bin of the counts
#: Injected classes in priority order (a higher class never moves for a lower one).
INJECTED_CLASSES: tuple[str, ...] = ("transient", "ir_source", "variable", "asteroid")
#: VSX types of the ``variable`` class (large-amplitude stars caught bright on the plate).
VARIABLE_TYPES: tuple[str, ...] = ("M", "UGSS", "UGSU", "NL", "SR")
#: SkyBoT classes of the asteroids, with their weights.
ASTEROID_CLASSES: tuple[tuple[str, float], ...] = (
    ("MB>Inner", 0.35),
    ("MB>Middle", 0.35),
    ("MB>Outer", 0.2),
    ("Hungaria", 0.04),
    ("Mars-Crosser", 0.04),
    ("NEA>Apollo", 0.02),
)
_EPOCH_FIRST = 1949.0  # earliest POSS-I E plate epoch (the star tracks the clearance avoids)
_EPOCH_LAST = 2016.0  # Gaia
_SPIKE_HALF_WIDTH_ARCSEC = 3.4  # 2 px on the 1.7"/px scans
_MAX_BOOST = 50.0
_HPM_GMAX = 19.0


class Purpose:
    """Namespaces of the per-object random numbers (:func:`~vasco.synthetic.cells.object_uniforms`)."""

    GAIA_DROP = 1
    GAIA_ERRORS = 2
    GAIA_TWO_PARAM = 3
    GAIA_NO_PM = 4
    PS1 = 5
    USNOB = 6
    ALLWISE = 7
    VSX = 8
    SCOS = 9
    SKYBOT = 10


# ---------------------------------------------------------------------------
# Catalogue-level extents of bright stars (independent of any one tile)
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ReferenceExtents:
    """Halo and spike sizes (arcsec) as functions of photographic R, for decisions about the sky.

    ``halo_max``/``spike_max`` are the largest a rendered tile can give (any
    sky level, plateau and pixel scale of the model, +5%); ``halo_typ`` the
    size on a typical 1.7"/px plate (for Gaia's incompleteness near bright
    stars).
    """

    r_grid: tuple[float, ...]
    halo_max_grid: tuple[float, ...]
    halo_typ_grid: tuple[float, ...]
    spike_max_grid: tuple[float, ...]

    def halo_max(self, r: NDArray[np.float64]) -> NDArray[np.float64]:
        return np.interp(r, self.r_grid, self.halo_max_grid)

    def halo_typ(self, r: NDArray[np.float64]) -> NDArray[np.float64]:
        return np.interp(r, self.r_grid, self.halo_typ_grid)

    def spike_max(self, r: NDArray[np.float64]) -> NDArray[np.float64]:
        return np.where(np.asarray(r) < 13.0, np.interp(r, self.r_grid, self.spike_max_grid), 0.0)


@functools.lru_cache(maxsize=8)
def reference_extents(params: rnd.RenderParams) -> ReferenceExtents:
    """Catalogue-level halo and spike sizes of a rendering model (cached per model).

    Parameters
    ----------
    params : RenderParams
        The plate-rendering model.

    Returns
    -------
    ReferenceExtents
        On a grid of R from 0 to 22: the largest halo and spike any tile of
        the model renders (1.7"/px and 1.01"/px scans, the whole sky-level and
        plateau ranges, +5%) and the typical halo (1.7"/px, mid sky).
    """
    r = np.linspace(0.0, 22.0, 441)
    flux = rnd.mag_to_flux(r, params)
    halo_all, spike_all = [], []
    halo_typ = None
    field = rnd.PSFField(
        nx=1, ny=1, scale_coeffs=(1.0, 0, 0, 0, 0, 0), e_coeffs1=(0.0, 0, 0), e_coeffs2=(0.0, 0, 0), plate_rmax=1e9
    )
    d_mid = 0.5 * sum(params.sky_density_range)
    sat_mid = 0.5 * sum(params.d_sat_range)
    for pixscale in (1.7, 1.01):
        for d_sat in params.d_sat_range:
            curve = rnd.ResponseCurve(d_fog=params.curve.d_fog, d_sat=d_sat, gamma=params.curve.gamma)
            for d_sky in (*params.sky_density_range, d_mid):
                ctx = rnd.RenderContext(
                    nx=1,
                    ny=1,
                    pixscale=pixscale,
                    psf=params.psf,
                    field=field,
                    curve=curve,
                    sky_exposure=float(curve.exposure(d_sky)),
                    noise_sigma=params.noise.sigma_sky,
                )
                e1 = float(curve.exposure(d_sky + ctx.noise_sigma) - ctx.sky_exposure)
                halo = (rnd.point_source_radius(ctx, flux, e1) - 1.0) * pixscale
                t0 = params.spike_t0_arcsec / pixscale
                spike = np.minimum(rnd.spike_length_px(ctx, flux, params.spike_weight, t0), 600.0) * pixscale
                halo_all.append(halo)
                spike_all.append(spike)
        # the typical plate: 1.7"/px, mid sky, mid plateau
        if pixscale == 1.7:
            curve = rnd.ResponseCurve(d_fog=params.curve.d_fog, d_sat=sat_mid, gamma=params.curve.gamma)
            ctx = rnd.RenderContext(
                nx=1,
                ny=1,
                pixscale=pixscale,
                psf=params.psf,
                field=field,
                curve=curve,
                sky_exposure=float(curve.exposure(d_mid)),
                noise_sigma=params.noise.sigma_sky,
            )
            e1 = float(curve.exposure(d_mid + ctx.noise_sigma) - ctx.sky_exposure)
            halo_typ = (rnd.point_source_radius(ctx, flux, e1) - 1.0) * pixscale
    assert halo_typ is not None
    return ReferenceExtents(
        r_grid=tuple(float(v) for v in r),
        halo_max_grid=tuple(float(v) for v in 1.05 * np.max(halo_all, axis=0)),
        halo_typ_grid=tuple(float(v) for v in halo_typ),
        spike_max_grid=tuple(float(v) for v in 1.05 * np.max(spike_all, axis=0)),
    )


def spike_tolerance_deg(dec: NDArray[np.float64]) -> NDArray[np.float64]:
    """Largest angle between a POSS-I plate's axes and the local N-S/E-W directions at ``dec``.

    A point 3.3 deg (half a plate) from its plate centre in both axes sees the
    meridian turned by ~ dRA sin(dec) = 4.7 deg tan|dec| (first order), plus
    <= 1 deg of plate rotation; capped at 45 deg (a full disc).
    """
    return np.minimum(1.0 + 5.0 * np.tan(np.radians(np.minimum(np.abs(dec), 89.0))), 45.0)


# ---------------------------------------------------------------------------
# Counts at a cell centre
# ---------------------------------------------------------------------------


def _edges(lo: float, hi: float) -> NDArray[np.float64]:
    return np.linspace(lo, hi, int(round((hi - lo) / _BIN)) + 1)


def density_scale(l_deg: float, b_deg: float, cap_per_deg2: float) -> float:
    """Factor (<= 1) thinning the stars with 13 <= G < 22 to ``cap_per_deg2`` at (l, b)."""
    total = float(pop.star_counts_per_deg2(_edges(13.0, 22.0), l_deg, b_deg).sum())
    return 1.0 if total <= cap_per_deg2 else cap_per_deg2 / total


@functools.lru_cache(maxsize=4096)
def _cell_lb(pix: int) -> tuple[float, float, float]:
    ra, dec = cell_centres(np.array([pix]))
    l_deg, b_deg = pop.galactic_lb(float(ra[0]), float(dec[0]))
    return l_deg, b_deg, float(dec[0])


# ---------------------------------------------------------------------------
# Stars and galaxies per cell
# ---------------------------------------------------------------------------


def _cell_stars(seed: int, pix: int, kind: str, cfg: SyntheticConfig) -> dict[str, np.ndarray]:
    lo, hi = _STAR_RANGES[kind]
    l_deg, b_deg, _ = _cell_lb(pix)
    edges = _edges(lo, hi)
    lam = pop.star_counts_per_deg2(edges, l_deg, b_deg) * cell_area_deg2()
    if kind != "star_bright":
        lam = lam * density_scale(l_deg, b_deg, cfg.max_star_density_per_deg2)
    rng = cell_rng(seed, pix, KIND[kind])
    counts = rng.poisson(lam)
    n = int(counts.sum())
    g = np.repeat(edges[:-1], counts) + rng.uniform(0.0, _BIN, n)
    ra, dec = cell_sample(pix, rng.random(n), rng.random(n))
    props = pop.star_properties(rng, g, b_deg, cfg.hpm_fraction, hpm_gmax=_HPM_GMAX)
    return {"obj_id": make_obj_ids(KIND[kind], pix, np.arange(n)), "ra": ra, "dec": dec, "gmag": g, **props}


def _cell_galaxies(seed: int, pix: int) -> dict[str, np.ndarray]:
    _, b_deg, _ = _cell_lb(pix)
    edges = _edges(12.0, 22.5)
    rng = cell_rng(seed, pix, KIND["galaxy"])
    counts = rng.poisson(pop.galaxy_counts_per_deg2(edges, b_deg) * cell_area_deg2())
    n = int(counts.sum())
    rmag = np.repeat(edges[:-1], counts) + rng.uniform(0.0, _BIN, n)
    ra, dec = cell_sample(pix, rng.random(n), rng.random(n))
    props = pop.galaxy_properties(rng, rmag)
    return {"obj_id": make_obj_ids(KIND["galaxy"], pix, np.arange(n)), "ra": ra, "dec": dec, "rmag": rmag, **props}


def _select(d: dict[str, np.ndarray], region: TileRegion, margin: float) -> dict[str, np.ndarray]:
    m = region.contains(d["ra"], d["dec"], margin)
    return {k: v[m] for k, v in d.items()}


def _frame(chunks: list[dict[str, np.ndarray]], cols: list[str], dtypes: Mapping[str, Any]) -> pd.DataFrame:
    data: dict[str, np.ndarray] = {}
    for c in cols:
        if chunks:
            data[c] = np.concatenate([ch[c] for ch in chunks])
        else:
            data[c] = np.zeros(0, dtype=dtypes[c])
    out = pd.DataFrame(data).astype(dtypes)
    return out.sort_values("obj_id", kind="stable").reset_index(drop=True)


def gather_stars(seed: int, cfg: SyntheticConfig, region: TileRegion) -> pd.DataFrame:
    """Every star a tile needs, each class within its margin (:data:`MARGIN_ARCSEC`).

    Parameters
    ----------
    seed : int
        Survey seed.
    cfg : SyntheticConfig
        Population settings (``hpm_fraction``, ``max_star_density_per_deg2``).
    region : TileRegion
        The tile's footprint.

    Returns
    -------
    DataFrame
        Columns ``obj_id`` and :data:`vasco.synthetic.population.STAR_COLUMNS`
        (positions at epoch 2016.0), sorted by ``obj_id``.
    """
    chunks = []
    for kind in _STAR_RANGES:
        margin = MARGIN_ARCSEC[kind]
        for pix in region.cells(margin):
            chunks.append(_select(_cell_stars(seed, int(pix), kind, cfg), region, margin))
    margin = MARGIN_ARCSEC["star_cluster"]
    for ci, c in enumerate(pop.CLUSTERS):
        reach = 10.0 * c.r_half_arcmin * 60.0 + margin  # members beyond ~10 r_half are negligible
        if not region.contains(np.array([c.ra]), np.array([c.dec]), reach)[0]:
            continue
        rng = np.random.default_rng(np.random.SeedSequence([int(seed), ci, KIND["star_cluster"], 0x5C7E11]))
        df = pop.cluster_members(rng, c)
        d = {k: df[k].to_numpy() for k in pop.STAR_COLUMNS}
        d["obj_id"] = make_obj_ids(KIND["star_cluster"], ci, np.arange(len(df)))
        chunks.append(_select(d, region, margin))
    cols = ["obj_id", *pop.STAR_COLUMNS]
    dtypes = {c: (bool if c == "hpm" else np.int64 if c == "obj_id" else np.float64) for c in cols}
    return _frame(chunks, cols, dtypes)


def gather_galaxies(seed: int, region: TileRegion) -> pd.DataFrame:
    """Galaxies within the galaxy margin (:data:`MARGIN_ARCSEC`) of the tile.

    Parameters
    ----------
    seed : int
        Survey seed.
    region : TileRegion
        The tile's footprint.

    Returns
    -------
    DataFrame
        Columns ``obj_id`` and :data:`vasco.synthetic.population.GALAXY_COLUMNS`,
        sorted by ``obj_id``.
    """
    margin = MARGIN_ARCSEC["galaxy"]
    chunks = [_select(_cell_galaxies(seed, int(pix)), region, margin) for pix in region.cells(margin)]
    cols = ["obj_id", *pop.GALAXY_COLUMNS]
    dtypes = {c: (bool if c == "in_gaia" else np.int64 if c == "obj_id" else np.float64) for c in cols}
    return _frame(chunks, cols, dtypes)


# ---------------------------------------------------------------------------
# Gaia incompleteness near bright stars (per object, catalogue level)
# ---------------------------------------------------------------------------


def gaia_dropped(seed: int, stars: pd.DataFrame, ref: ReferenceExtents, subset: NDArray[np.bool_]) -> NDArray[np.bool_]:
    """Which stars of ``subset`` Gaia misses near bright stars.

    Within ``rad`` = the typical halo radius (5.1" to 200") of a star with
    R < 12.5, a star with G > 16 is missing with probability
    ``0.8 (1 - d / rad) + 0.2`` (d its distance), decided by the star's own
    uniform number.  High-proper-motion stars are never missing.

    Parameters
    ----------
    seed : int
        Survey seed.
    stars : DataFrame
        Gathered stars (:func:`gather_stars`); must hold every star with
        R < 12.5 within 200" of the subset.
    ref : ReferenceExtents
        Catalogue-level halo sizes.
    subset : ndarray of bool
        The stars to decide for.

    Returns
    -------
    ndarray of bool
        True for the stars of ``subset`` that Gaia misses.
    """
    n = len(stars)
    drop = np.zeros(n, dtype=bool)
    g = stars["gmag"].to_numpy()
    cand = np.flatnonzero(subset & (g > 16.0) & ~stars["hpm"].to_numpy())
    bright = np.flatnonzero(stars["rmag"].to_numpy() < 12.5)
    if cand.size == 0 or bright.size == 0:
        return drop
    ra = stars["ra"].to_numpy()
    dec = stars["dec"].to_numpy()
    rad = np.clip(ref.halo_typ(stars["rmag"].to_numpy()[bright]), 5.1, 200.0)
    tree = cKDTree(radec_to_unit(ra[cand], dec[cand]))
    hits = tree.query_ball_point(radec_to_unit(ra[bright], dec[bright]), chord_of_arcsec(rad * 1.001))
    bi = np.repeat(np.arange(bright.size), [len(h) for h in hits])
    cj = np.fromiter((j for h in hits for j in h), dtype=np.int64, count=int(bi.size))
    if cj.size == 0:
        return drop
    j = cand[cj]
    d = separation_arcsec(ra[j], dec[j], ra[bright[bi]], dec[bright[bi]])
    p = 0.8 * (1.0 - d / rad[bi]) + 0.2
    u = object_uniforms(seed, stars["obj_id"].to_numpy()[j], Purpose.GAIA_DROP)[:, 0]
    hit = (d < rad[bi]) & (u < p)
    drop[j[hit]] = True
    return drop


# ---------------------------------------------------------------------------
# Injected objects
# ---------------------------------------------------------------------------


def injected_density_per_deg2(cfg: SyntheticConfig) -> dict[str, float]:
    """Configured sky density of each injected class.

    Transients: ``cfg.transients_per_deg2``, or when that is None
    ``4 * n_transients`` (``n_transients`` per 0.25 deg^2, a 30' tile).
    """
    tr = cfg.transients_per_deg2
    return {
        "transient": 4.0 * float(cfg.n_transients) if tr is None else float(tr),
        "ir_source": float(cfg.n_ir_sources_per_deg2),
        "variable": float(cfg.n_variables_per_deg2),
        "asteroid": float(cfg.n_asteroids_per_deg2),
    }


@functools.lru_cache(maxsize=4096)
def _boost(pix: int, clear_arcsec: float, cap: float, ref: ReferenceExtents) -> float:
    """1 / (fraction of the cell's sky left free by the clearance), from the counts model at its centre."""
    l_deg, b_deg, dec = _cell_lb(pix)
    c = clear_arcsec
    e = _edges(4.0, 22.0)
    gc = 0.5 * (e[1:] + e[:-1])
    n = pop.star_counts_per_deg2(e, l_deg, b_deg)
    n = np.where(gc >= 13.0, n * density_scale(l_deg, b_deg, cap), n)
    rc = gc - 0.35
    r_ex = np.where(rc < 16.0, ref.halo_max(rc) + c, c)
    area = float(np.sum(n * np.pi * r_ex**2))
    L = ref.spike_max(rc)
    w = c + _SPIKE_HALF_WIDTH_ARCSEC
    th = np.radians(float(spike_tolerance_deg(np.array([dec]))[0]))
    a_sp = np.minimum(4.0 * (2.0 * w * L + th * L * L), np.pi * (L + w) ** 2)
    area += float(np.sum(np.where(L > 0, n * a_sp, 0.0)))
    # galaxies: E[pi r^2] over the log-normal sizes (Gauss-Hermite)
    eg = _edges(12.0, 22.5)
    rg = 0.5 * (eg[1:] + eg[:-1])
    ng = pop.galaxy_counts_per_deg2(eg, b_deg)
    z, wz = np.polynomial.hermite_e.hermegauss(9)
    wz = wz / wz.sum()
    re = np.clip(10 ** (np.log10(3.5) - 0.15 * (rg[:, None] - 17.0) + 0.22 * z[None, :]), 0.4, 60.0)
    rr = c + np.where(2.0 * re > 1.7, 2.0 * re, 0.0)
    area += float(np.sum(ng * (np.pi * rr**2 @ wz)))
    free = math.exp(-area / 3600.0**2)
    return min(1.0 / max(free, 1e-9), _MAX_BOOST)


def _cell_injected(
    seed: int, pix: int, cls: str, cfg: SyntheticConfig, plate_code: int, ref: ReferenceExtents
) -> pd.DataFrame:
    """Raw candidates of one class in one cell (before the clearance test)."""
    dens = injected_density_per_deg2(cfg)[cls]
    rank = INJECTED_CLASSES.index(cls)
    per_plate = cls == "asteroid"
    rng = cell_rng(seed, pix, KIND[cls], *((plate_code,) if per_plate else ()))
    lam = (
        dens
        * cell_area_deg2()
        * _boost(pix, float(cfg.transient_clearance_arcsec), float(cfg.max_star_density_per_deg2), ref)
        if dens > 0
        else 0.0
    )
    n = int(rng.poisson(lam))
    ra, dec = cell_sample(pix, rng.random(n), rng.random(n))
    idx = np.arange(n, dtype=np.int64)
    cell_key = (int(plate_code) << 20) | int(pix) if per_plate else int(pix)
    out: dict[str, object] = {
        "obj_id": make_obj_ids(KIND[cls], cell_key, idx),
        "cls": np.full(n, cls, dtype=object),
        "ra": ra,
        "dec": dec,
        "prio": (np.int64(rank) << np.int64(60)) | (np.int64(pix) << np.int64(24)) | idx,
    }
    nan = np.full(n, np.nan)
    extra = {
        "mag": nan,
        "w1": nan,
        "w2": nan,
        "mag_min": nan,
        "vtype": np.full(n, -1, dtype=np.int64),
        "errpos": nan,
        "number": np.zeros(n, dtype=np.int64),
        "aclass": np.full(n, -1, dtype=np.int64),
        "rate_ra": nan,
        "rate_dec": nan,
        "name_code": np.zeros(n, dtype=np.int64),
    }
    if cls == "transient":
        extra["mag"] = rng.uniform(cfg.transient_mag_min, cfg.transient_mag_max, n)
    elif cls == "ir_source":
        mag = rng.uniform(17.0, 20.0, n)  # optically faint on the plate
        w1 = mag - rng.uniform(3.0, 5.0, n)  # very red: R - W1 = 3-5
        extra.update(mag=mag, w1=w1, w2=w1 - rng.uniform(0.3, 1.2, n))
    elif cls == "variable":
        extra.update(
            mag=rng.uniform(15.5, 19.0, n),
            mag_min=rng.uniform(21.5, 23.5, n),
            vtype=rng.integers(0, len(VARIABLE_TYPES), n),
        )
    else:  # asteroid, near its stationary point (point-like on a ~45-min exposure)
        faint = rng.random(n) < 0.25  # a few too faint for the plate, listed by SkyBoT all the same
        m_vis = rng.uniform(16.5, 20.3, n)
        m_faint = rng.uniform(20.8, 22.5, n)
        numbered = rng.random(n) < 0.6
        number = rng.integers(1, 600_000, n)
        w = np.cumsum([wt for _, wt in ASTEROID_CLASSES])
        aclass = np.minimum(np.searchsorted(w / w[-1], rng.random(n)), len(ASTEROID_CLASSES) - 1)
        extra.update(
            mag=np.where(faint, m_faint, m_vis),
            errpos=np.exp(rng.uniform(np.log(0.5), np.log(3.0), n)),
            number=np.where(numbered, number, 0),
            aclass=aclass.astype(np.int64),
            rate_ra=rng.uniform(-2.0, 2.0, n),
            rate_dec=rng.uniform(-2.0, 2.0, n),
            name_code=rng.integers(0, 24 * 25 * 200, n),
        )
    out.update(extra)
    return pd.DataFrame(out)


_INJECTED_DTYPES: dict[str, object] = {
    "obj_id": np.int64,
    "cls": object,
    "ra": np.float64,
    "dec": np.float64,
    "mag": np.float64,
    "w1": np.float64,
    "w2": np.float64,
    "mag_min": np.float64,
    "vtype": np.int64,
    "errpos": np.float64,
    "number": np.int64,
    "aclass": np.int64,
    "rate_ra": np.float64,
    "rate_dec": np.float64,
    "name_code": np.int64,
}


def _empty_injected() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in _INJECTED_DTYPES.items()})


def _pairs(
    tree: cKDTree, pts: NDArray[np.float64], radius_arcsec: NDArray[np.float64] | float
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """(query index, tree index) pairs within the radius (chord), as flat arrays."""
    if len(pts) == 0 or tree.n == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    hits = tree.query_ball_point(pts, chord_of_arcsec(np.asarray(radius_arcsec) * 1.001))
    qi = np.repeat(np.arange(len(hits)), [len(h) for h in hits]).astype(np.int64)
    tj = np.fromiter((j for h in hits for j in h), dtype=np.int64, count=int(qi.size))
    return qi, tj


def _clear_of_sky(
    ra: NDArray[np.float64],
    dec: NDArray[np.float64],
    stars: pd.DataFrame,
    gals: pd.DataFrame,
    ref: ReferenceExtents,
    clear: float,
) -> NDArray[np.bool_]:
    """Candidates clear of every star track, galaxy, halo and spike (see the module docstring)."""
    n = ra.size
    ok = np.ones(n, dtype=bool)
    if n == 0:
        return ok
    cu = radec_to_unit(ra, dec)
    # stars: the track between 1949.0 and 2016.0
    if len(stars):
        sra, sdec = stars["ra"].to_numpy(), stars["dec"].to_numpy()
        pmra, pmdec = stars["pmra"].to_numpy(), stars["pmdec"].to_numpy()
        span = (_EPOCH_FIRST - _EPOCH_LAST) / 1000.0  # years -> arcsec per mas/yr
        mx, my = pmra * span, pmdec * span  # track vector (east, north; arcsec) from 2016 back to 1949
        move = np.hypot(mx, my)
        fast = move > 8.0
        for group in (~fast, fast):
            idx = np.flatnonzero(group)
            if idx.size == 0:
                continue
            tree = cKDTree(radec_to_unit(sra[idx], sdec[idx]))
            qi, tj = _pairs(tree, cu, clear + float(move[idx].max()) + 0.5)
            if qi.size == 0:
                continue
            s = idx[tj]
            ex, ny = local_offsets_arcsec(ra[qi], dec[qi], sra[s], sdec[s])
            m2 = mx[s] ** 2 + my[s] ** 2
            t = np.clip(np.where(m2 > 0, (ex * mx[s] + ny * my[s]) / np.where(m2 > 0, m2, 1.0), 0.0), 0.0, 1.0)
            d = np.hypot(ex - t * mx[s], ny - t * my[s])
            ok[qi[d < clear]] = False
        # halos of R < 16 stars
        rmag = stars["rmag"].to_numpy()
        b = np.flatnonzero(rmag < 16.0)
        if b.size:
            rad = ref.halo_max(rmag[b]) + clear
            tree = cKDTree(cu)
            hits = tree.query_ball_point(radec_to_unit(sra[b], sdec[b]), chord_of_arcsec(rad * 1.001))
            bi = np.repeat(np.arange(b.size), [len(h) for h in hits]).astype(np.int64)
            cj = np.fromiter((j for h in hits for j in h), dtype=np.int64, count=int(bi.size))
            if cj.size:
                d = separation_arcsec(ra[cj], dec[cj], sra[b[bi]], sdec[b[bi]])
                ok[cj[d < rad[bi]]] = False
        # spikes of R < 13 stars: N-S and E-W arms, widened by the plate-axis tolerance
        sp = np.flatnonzero(rmag < 13.0)
        if sp.size:
            L = ref.spike_max(rmag[sp])
            w = clear + _SPIKE_HALF_WIDTH_ARCSEC
            tree = cKDTree(cu)
            hits = tree.query_ball_point(radec_to_unit(sra[sp], sdec[sp]), chord_of_arcsec((L + w) * 1.001))
            bi = np.repeat(np.arange(sp.size), [len(h) for h in hits]).astype(np.int64)
            cj = np.fromiter((j for h in hits for j in h), dtype=np.int64, count=int(bi.size))
            if cj.size:
                s = sp[bi]
                ex, ny = local_offsets_arcsec(ra[cj], dec[cj], sra[s], sdec[s])
                r = np.hypot(ex, ny)
                a = np.degrees(np.arctan2(np.abs(ny), np.abs(ex)))
                phi = np.minimum(a, 90.0 - a)
                th = spike_tolerance_deg(sdec[s])
                perp = r * np.sin(np.radians(np.maximum(phi - th, 0.0)))
                ok[cj[(perp < w) & (r < L[bi] + w)]] = False
    # galaxies: clearance, and 2 r_eff + clearance for those larger than 1.7"
    if len(gals):
        gra, gdec = gals["ra"].to_numpy(), gals["dec"].to_numpy()
        reff2 = 2.0 * gals["r_eff"].to_numpy()
        rad = clear + np.where(reff2 > 1.7, reff2, 0.0)
        tree = cKDTree(cu)
        hits = tree.query_ball_point(radec_to_unit(gra, gdec), chord_of_arcsec(rad * 1.001))
        gi = np.repeat(np.arange(len(gals)), [len(h) for h in hits]).astype(np.int64)
        cj = np.fromiter((j for h in hits for j in h), dtype=np.int64, count=int(gi.size))
        if cj.size:
            d = separation_arcsec(ra[cj], dec[cj], gra[gi], gdec[gi])
            ok[cj[d < rad[gi]]] = False
    return ok


def gather_injected(
    seed: int,
    cfg: SyntheticConfig,
    region: TileRegion,
    plate_code: int,
    stars: pd.DataFrame,
    gals: pd.DataFrame,
    ref: ReferenceExtents,
) -> pd.DataFrame:
    """The injected objects kept (see the module docstring) within the injected margin of the tile.

    Parameters
    ----------
    seed : int
        Survey seed.
    cfg : SyntheticConfig
        Densities and the clearance.
    region : TileRegion
        The tile's footprint.
    plate_code : int
        The tile's plate (asteroids are drawn per plate).
    stars, gals : DataFrame
        The tile's gathered stars and galaxies (they must cover the tile +
        110" and + 160").
    ref : ReferenceExtents
        Catalogue-level halo and spike sizes.

    Returns
    -------
    DataFrame
        One row per object, sorted by class priority then ``obj_id``:
        ``obj_id``, ``cls``, ``ra``, ``dec`` (the same at every plate epoch;
        asteroids at their plate's), ``mag`` (photographic R on the plate)
        and the class attributes (``w1``, ``w2``, ``mag_min``, ``vtype``,
        ``errpos``, ``number``, ``aclass``, ``rate_ra``, ``rate_dec``,
        ``name_code``).
    """
    clear = float(cfg.transient_clearance_arcsec)
    margin = MARGIN_ARCSEC["injected"]
    reach = margin + clear + 1.0
    frames = []
    for cls in INJECTED_CLASSES:
        if injected_density_per_deg2(cfg)[cls] <= 0:
            continue
        for pix in region.cells(reach):
            df = _cell_injected(seed, int(pix), cls, cfg, plate_code, ref)
            frames.append(df.loc[region.contains(df["ra"].to_numpy(), df["dec"].to_numpy(), reach)])
    frames = [f for f in frames if len(f)]
    if not frames:
        return _empty_injected()
    raw = pd.concat(frames, ignore_index=True)
    raw = raw.sort_values("prio", kind="stable").reset_index(drop=True)
    ra, dec = raw["ra"].to_numpy(), raw["dec"].to_numpy()
    target = region.contains(ra, dec, margin)
    keep = target.copy()
    ti = np.flatnonzero(target)
    # higher-priority raw candidates within the clearance (raw: known without any star)
    tree = cKDTree(radec_to_unit(ra, dec))
    qi, tj = _pairs(tree, radec_to_unit(ra[ti], dec[ti]), clear)
    if qi.size:
        d = separation_arcsec(ra[ti[qi]], dec[ti[qi]], ra[tj], dec[tj])
        beaten = (tj < ti[qi]) & (d < clear)  # sorted by priority: a lower row index wins
        keep[ti[qi[beaten]]] = False
    ti = np.flatnonzero(keep)
    # the catalogue-level sky near each candidate
    # (faint stars near the candidates, and every star with a halo or spikes)
    near = region.contains(stars["ra"].to_numpy(), stars["dec"].to_numpy(), margin + clear + 80.0)
    s_use = stars.loc[near | (stars["rmag"].to_numpy() < 16.0)]
    ok = _clear_of_sky(ra[ti], dec[ti], s_use, gals, ref, clear)
    keep[ti[~ok]] = False
    out = raw.loc[keep].drop(columns=["prio"]).reset_index(drop=True)
    return out.astype(_INJECTED_DTYPES)[list(_INJECTED_DTYPES)]

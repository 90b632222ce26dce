"""Sky cells and per-object random numbers: what makes the synthetic sky global.

The synthetic sky is a function of ``(seed, sky position)`` only: every
object is drawn in a HEALPix NESTED cell (:data:`SKY_ORDER`) from that cell's
own random stream, seeded by ``(seed, order, cell, class tag)``, so two tiles
that overlap see the same objects in the overlap.  This module holds the
geometry (cells touching a tile's footprint, uniform positions inside a
cell), the seeding of the cell streams and a counter-based generator of
per-object random numbers (catalogue errors and memberships, which must not
depend on which tile asks).

Uniform positions in a cell
---------------------------
Inside one of the twelve HEALPix base faces, the continuous face
coordinates ``(x, y)`` in [0, 1]^2 map to the sphere with a constant
Jacobian (HEALPix is an equal-area projection and the face coordinates are
an affine transform of the projection plane).  A cell ``(face, ix, iy)`` at
order ``k`` is the square ``[ix, ix+1] x [iy, iy+1] / 2**k`` of its face, so
``x = (ix + u) / 2**k``, ``y = (iy + v) / 2**k`` with ``u, v`` uniform is
uniform on the sphere inside the cell, without rejection.  The map is (with
``jr = jrll(face) - x - y`` and ``t = jpll(face) nr + x - y``)::

    jr < 1 (north cap):  nr = jr,     z = 1 - nr^2 / 3
    jr > 3 (south cap):  nr = 4 - jr, z = nr^2 / 3 - 1
    otherwise:           nr = 1,      z = (2 - jr) 2 / 3
    phi = (pi / 4) t / nr            (t wrapped into [0, 8 nr))

which at ``u = v = 1/2`` gives exactly the pixel centres of
:func:`vasco.sources.healpix.pix2ang_nest` (Gorski et al. 2005).

Per-object random numbers
-------------------------
:func:`object_uniforms` hashes ``(seed, obj_id, purpose, j)`` with the
SplitMix64 finaliser into uniform doubles: a counter-based generator, so an
object's catalogue errors are the same whichever tile (and whichever other
objects) are being made.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from vasco.astrometry.tangent import sky_to_tangent, tangent_to_sky
from vasco.sources.healpix import ang2pix_nest, max_pixrad_deg, pix2ang_nest

__all__ = [
    "SKY_ORDER",
    "KIND",
    "cell_area_deg2",
    "cell_centres",
    "cell_sample",
    "cell_rng",
    "make_obj_ids",
    "obj_kind",
    "object_uniforms",
    "object_normals",
    "TileRegion",
    "radec_to_unit",
    "chord_of_arcsec",
    "separation_arcsec",
    "local_offsets_arcsec",
]

#: HEALPix order of the sky cells: nside 256, 0.0525 deg^2, ~0.23 deg across.
SKY_ORDER = 8
_SKY_TAG = 0x5C7E11  # namespaces the cell streams (differs from the per-tile streams' tag)

#: Object kinds, the top bits of every global object id (``obj_id``).
KIND: dict[str, int] = {
    "star_bright": 1,  # field stars G < 13 (drawn over the widest margin)
    "star_mid": 2,  # field stars 13 <= G < 17.5
    "star_faint": 3,  # field stars 17.5 <= G < 22
    "star_cluster": 4,  # members of the known clusters
    "galaxy": 5,
    "transient": 6,
    "ir_source": 7,
    "variable": 8,
    "asteroid": 9,
    "defect": 10,
    "dust": 11,
    "scratch": 12,
}
#: Halo rows of a star: kind ``_HALO_BASE + star kind``; spike k (0-3): ``_SPIKE_BASE + 8 k + star kind``.
HALO_BASE = 20
SPIKE_BASE = 32

_JRLL = np.array([2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4], dtype=np.int64)
_JPLL = np.array([1, 3, 5, 7, 0, 2, 4, 6, 1, 3, 5, 7], dtype=np.int64)
_MASK64 = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15


# ---------------------------------------------------------------------------
# HEALPix cells
# ---------------------------------------------------------------------------


def cell_area_deg2(order: int = SKY_ORDER) -> float:
    """Area of one HEALPix cell at ``order`` (all cells are equal), deg^2."""
    return 4.0 * math.pi * (180.0 / math.pi) ** 2 / (12.0 * 4.0**order)


def cell_centres(pix: ArrayLike, order: int = SKY_ORDER) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Centres (ra, dec in degrees) of NESTED cells."""
    return pix2ang_nest(order, pix)


def _compact_even_bits(v: NDArray[np.int64], order: int) -> NDArray[np.int64]:
    out = np.zeros_like(v)
    for i in range(order):
        out |= ((v >> (2 * i)) & 1) << i
    return out


def cell_sample(
    pix: ArrayLike, u: ArrayLike, v: ArrayLike, order: int = SKY_ORDER
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Positions inside NESTED cells from unit-square coordinates (see the module docstring).

    Parameters
    ----------
    pix : array_like of int
        Cell index (broadcast against ``u``/``v``).
    u, v : array_like of float
        Coordinates in [0, 1) along the cell's two face axes; uniform ``u, v``
        give positions uniform on the sphere inside the cell.
    order : int
        HEALPix order.

    Returns
    -------
    ra, dec : ndarray of float64
        Degrees.
    """
    nside = 1 << order
    p = np.asarray(pix, dtype=np.int64)
    u = np.asarray(u, dtype=np.float64)
    v = np.asarray(v, dtype=np.float64)
    p, u, v = np.broadcast_arrays(p, u, v)
    face = p >> (2 * order)
    sub = p & (nside * nside - 1)
    x = (_compact_even_bits(sub, order) + u) / nside
    y = (_compact_even_bits(sub >> 1, order) + v) / nside
    jr = _JRLL[face] - x - y
    north = jr < 1.0
    south = jr > 3.0
    nr = np.where(north, jr, np.where(south, 4.0 - jr, 1.0))
    t = _JPLL[face] * nr + x - y
    t = np.where(t < 0.0, t + 8.0, t)
    t = np.where(t >= 8.0, t - 8.0, t)
    with np.errstate(invalid="ignore", divide="ignore"):
        phi = np.where(nr > 0.0, 0.25 * np.pi * t / nr, 0.0)
    # polar caps: colatitude from 1 - cos(theta) = nr^2 / 3 (precise near the poles)
    cap = np.degrees(2.0 * np.arcsin(np.clip(nr / math.sqrt(6.0), 0.0, 1.0)))
    equ = np.degrees(np.arcsin(np.clip((2.0 - jr) * 2.0 / 3.0, -1.0, 1.0)))
    dec = np.where(north, 90.0 - cap, np.where(south, cap - 90.0, equ))
    return np.degrees(phi) % 360.0, dec


def cell_rng(seed: int, pix: int, tag: int, *extra: int) -> np.random.Generator:
    """The random stream of one cell and one class of objects.

    Parameters
    ----------
    seed : int
        Survey seed (>= 0).
    pix : int
        NESTED cell index at :data:`SKY_ORDER`.
    tag : int
        Class of objects (:data:`KIND`).
    *extra : int
        Further keys, e.g. the plate of per-plate objects (asteroids).

    Returns
    -------
    numpy.random.Generator
        Seeded by ``(seed, SKY_ORDER, pix, tag, *extra, namespace)``.
    """
    entropy = [int(seed), SKY_ORDER, int(pix), int(tag), *(int(e) for e in extra), _SKY_TAG]
    if min(entropy) < 0:
        raise ValueError(f"seed and cell keys must be >= 0, got {entropy}")
    return np.random.default_rng(np.random.SeedSequence(entropy))


def make_obj_ids(kind: int, cell: int | NDArray[np.int64], index: ArrayLike) -> NDArray[np.int64]:
    """Global object ids.

    Parameters
    ----------
    kind : int
        Object kind (:data:`KIND`), < 64.
    cell : int or array of int
        Cell key (the HEALPix cell; for per-plate objects the plate code in
        the bits above the cell), < 2**32.
    index : array_like of int
        Index of the object in its cell, < 2**24.

    Returns
    -------
    ndarray of int64
        ``kind << 56 | cell << 24 | index``: unique over the sky, positive.
    """
    idx = np.asarray(index, dtype=np.int64)
    if idx.size and (idx.min() < 0 or idx.max() >= 1 << 24):
        raise ValueError("object index outside [0, 2**24)")
    c = np.asarray(cell, dtype=np.int64)
    if c.size and (c.min() < 0 or c.max() >= 1 << 32):
        raise ValueError("cell key outside [0, 2**32)")
    if not 0 < kind < 64:
        raise ValueError(f"kind must be in (0, 64), got {kind}")
    return (np.int64(kind) << np.int64(56)) | (c << np.int64(24)) | idx


def obj_kind(obj_id: ArrayLike) -> NDArray[np.int64]:
    """The kind bits of global object ids."""
    return (np.asarray(obj_id, dtype=np.int64) >> np.int64(56)) & np.int64(63)


# ---------------------------------------------------------------------------
# Per-object random numbers (counter-based)
# ---------------------------------------------------------------------------


def _mix(x: NDArray[np.uint64]) -> NDArray[np.uint64]:
    """SplitMix64 finaliser on an array (uint64 arithmetic wraps)."""
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _key(seed: int, purpose: int) -> np.uint64:
    k = (int(seed) * _GOLDEN + int(purpose) * 0xD1B54A32D192ED03 + 0x632BE59BD9B4E019) & _MASK64
    k ^= k >> 29
    return np.uint64(k)


def object_uniforms(seed: int, obj_id: ArrayLike, purpose: int, k: int = 1) -> NDArray[np.float64]:
    """Uniform numbers in (0, 1) per object, from ``(seed, obj_id, purpose)`` only.

    Parameters
    ----------
    seed : int
        Survey seed.
    obj_id : array_like of int64
        Global object ids.
    purpose : int
        Namespace of the numbers (e.g. Gaia errors, SuperCOSMOS detection).
    k : int
        Numbers per object.

    Returns
    -------
    ndarray of float64, shape (n, k)
        The same object gets the same numbers in every tile, whatever else
        is drawn.
    """
    ids = np.atleast_1d(np.asarray(obj_id, dtype=np.int64)).astype(np.uint64)
    base = _mix(ids ^ np.full(ids.shape, _key(seed, purpose), dtype=np.uint64))
    out = np.empty((ids.size, k), dtype=np.float64)
    step = np.full(ids.shape, np.uint64(_GOLDEN), dtype=np.uint64)
    x = base
    for j in range(k):
        x = x + step
        out[:, j] = ((_mix(x) >> np.uint64(11)).astype(np.float64) + 0.5) * (1.0 / 9007199254740992.0)
    return out


def object_normals(seed: int, obj_id: ArrayLike, purpose: int, k: int = 1) -> NDArray[np.float64]:
    """``k`` standard normal numbers per object (Box-Muller on :func:`object_uniforms`), shape ``(n, k)``."""
    u = object_uniforms(seed, obj_id, purpose, 2 * k)
    r = np.sqrt(-2.0 * np.log(u[:, 0::2]))
    return r * np.cos(2.0 * np.pi * u[:, 1::2])


# ---------------------------------------------------------------------------
# Angular helpers (tile-independent: decisions about an object never depend
# on which tile's projection they are computed in)
# ---------------------------------------------------------------------------


def radec_to_unit(ra: ArrayLike, dec: ArrayLike) -> NDArray[np.float64]:
    """Unit vectors (n, 3) of positions in degrees."""
    a = np.radians(np.asarray(ra, dtype=np.float64))
    d = np.radians(np.asarray(dec, dtype=np.float64))
    a, d = np.broadcast_arrays(np.atleast_1d(a), np.atleast_1d(d))
    return np.stack([np.cos(d) * np.cos(a), np.cos(d) * np.sin(a), np.sin(d)], axis=-1)


def chord_of_arcsec(r_arcsec: ArrayLike) -> NDArray[np.float64]:
    """Chord length on the unit sphere of an angle in arcsec."""
    return 2.0 * np.sin(np.radians(np.asarray(r_arcsec, dtype=np.float64) / 3600.0) / 2.0)


def separation_arcsec(ra1: ArrayLike, dec1: ArrayLike, ra2: ArrayLike, dec2: ArrayLike) -> NDArray[np.float64]:
    """Angular separation (haversine), arcsec."""
    r1, d1, r2, d2 = (np.radians(np.asarray(v, dtype=np.float64)) for v in (ra1, dec1, ra2, dec2))
    h = np.sin((d2 - d1) / 2) ** 2 + np.cos(d1) * np.cos(d2) * np.sin((r2 - r1) / 2) ** 2
    return np.degrees(2.0 * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0)))) * 3600.0


def local_offsets_arcsec(
    ra: ArrayLike, dec: ArrayLike, ra0: ArrayLike, dec0: ArrayLike
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Gnomonic offsets (east, north; arcsec) of ``(ra, dec)`` about ``(ra0, dec0)`` (element-wise)."""
    a = np.radians(np.asarray(ra, dtype=np.float64))
    d = np.radians(np.asarray(dec, dtype=np.float64))
    a0 = np.radians(np.asarray(ra0, dtype=np.float64))
    d0 = np.radians(np.asarray(dec0, dtype=np.float64))
    cosc = np.sin(d0) * np.sin(d) + np.cos(d0) * np.cos(d) * np.cos(a - a0)
    xi = np.cos(d) * np.sin(a - a0) / cosc
    eta = (np.cos(d0) * np.sin(d) - np.sin(d0) * np.cos(d) * np.cos(a - a0)) / cosc
    return np.degrees(xi) * 3600.0, np.degrees(eta) * 3600.0


# ---------------------------------------------------------------------------
# A tile's footprint
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class TileRegion:
    """A tile's footprint: the rectangle ``|xi| <= half_xi``, ``|eta| <= half_eta`` (deg)
    in the tangent plane of the tile centre (``ra0``, ``dec0``)."""

    ra0: float
    dec0: float
    half_xi: float
    half_eta: float

    def contains(self, ra: ArrayLike, dec: ArrayLike, margin_arcsec: float) -> NDArray[np.bool_]:
        """Positions inside the footprint grown by ``margin_arcsec``."""
        ra = np.asarray(ra, dtype=np.float64)
        if ra.size == 0:
            return np.zeros(0, dtype=bool)
        xi, eta = sky_to_tangent(ra, np.asarray(dec, dtype=np.float64), self.ra0, self.dec0)
        m = margin_arcsec / 3600.0
        front = self._front(ra, dec)
        return front & (np.abs(xi) <= self.half_xi + m) & (np.abs(eta) <= self.half_eta + m)

    def _front(self, ra: ArrayLike, dec: ArrayLike) -> NDArray[np.bool_]:
        """On the tile's hemisphere (the gnomonic projection is only meaningful there)."""
        v = radec_to_unit(ra, dec)
        c = radec_to_unit(self.ra0, self.dec0)[0]
        return (v @ c) > 0.5

    def cells(self, margin_arcsec: float, order: int = SKY_ORDER) -> NDArray[np.int64]:
        """Every cell that touches the footprint grown by ``margin_arcsec`` (a superset), sorted.

        A cell touching the rectangle has its centre within the cell's
        maximum radius of it.  A tangent-plane grid finer than every cell's
        inscribed radius (>= 0.338 of the mean cell size at any order) over
        the rectangle grown by two radii finds every such cell; those whose
        centre lies farther than one radius (plus 1%) are dropped.

        Parameters
        ----------
        margin_arcsec : float
            Growth of the footprint on every side.
        order : int
            HEALPix order of the cells.

        Returns
        -------
        ndarray of int64
            NESTED cell indices, sorted.
        """
        rad = max_pixrad_deg(order) * 1.01
        hx = self.half_xi + margin_arcsec / 3600.0
        hy = self.half_eta + margin_arcsec / 3600.0
        step = 0.3 * math.sqrt(cell_area_deg2(order))
        gx = np.arange(-hx - 2 * rad, hx + 2 * rad + step, step)
        gy = np.arange(-hy - 2 * rad, hy + 2 * rad + step, step)
        xx, yy = np.meshgrid(gx, gy)
        ra, dec = tangent_to_sky(xx.ravel(), yy.ravel(), self.ra0, self.dec0)
        pix = np.unique(ang2pix_nest(order, ra, dec))
        cra, cdec = pix2ang_nest(order, pix)
        cx, cy = sky_to_tangent(cra, cdec, self.ra0, self.dec0)
        d = np.hypot(np.maximum(np.abs(cx) - hx, 0.0), np.maximum(np.abs(cy) - hy, 0.0))
        keep = (d <= rad) & self._front(cra, cdec)
        return pix[keep]

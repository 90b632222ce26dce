"""The few HEALPix (NESTED scheme) functions the local catalogue reader needs.

Plain numpy, after the definitions of Gorski et al. 2005 (ApJ 622, 759) as
implemented in the HEALPix library's ``healpix_base`` (``loc2pix``/``pix2loc``
for the NESTED scheme, ``max_pixrad``).  Orders 0-29 (``nside = 2**order``).
Checked against astropy-healpix in the tests of this package's development.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["MAX_ORDER", "ang2pix_nest", "pix2ang_nest", "max_pixrad_deg"]

MAX_ORDER = 29

# Face layout: ring number (in units of nside) of each face's southern corner
# and its longitude index (units of pi/4).
_JRLL = np.array([2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4], dtype=np.int64)
_JPLL = np.array([1, 3, 5, 7, 0, 2, 4, 6, 1, 3, 5, 7], dtype=np.int64)


def _check_order(order: int) -> int:
    order = int(order)
    if not 0 <= order <= MAX_ORDER:
        raise ValueError(f"HEALPix order must be in [0, {MAX_ORDER}], got {order}")
    return order


def _spread_bits(v: NDArray[np.int64]) -> NDArray[np.int64]:
    """Interleave zeros between the bits of v (bit i goes to bit 2i)."""
    v = v.astype(np.uint64)
    out = np.zeros_like(v)
    for i in range(MAX_ORDER + 1):
        out |= ((v >> np.uint64(i)) & np.uint64(1)) << np.uint64(2 * i)
    return out.astype(np.int64)


def _compress_bits(v: NDArray[np.int64]) -> NDArray[np.int64]:
    """Inverse of :func:`_spread_bits` on the even bits of v."""
    v = v.astype(np.uint64)
    out = np.zeros_like(v)
    for i in range(MAX_ORDER + 1):
        out |= ((v >> np.uint64(2 * i)) & np.uint64(1)) << np.uint64(i)
    return out.astype(np.int64)


def ang2pix_nest(order: int, ra_deg: ArrayLike, dec_deg: ArrayLike) -> NDArray[np.int64]:
    """NESTED pixel index at ``order`` of positions in degrees."""
    order = _check_order(order)
    nside = 1 << order
    ra = np.radians(np.mod(np.asarray(ra_deg, dtype=np.float64), 360.0))
    z = np.sin(np.radians(np.asarray(dec_deg, dtype=np.float64)))
    ra, z = np.broadcast_arrays(ra, z)
    za = np.abs(z)
    tt = np.mod(ra / (0.5 * np.pi), 4.0)  # in [0, 4)

    face = np.empty(z.shape, dtype=np.int64)
    ix = np.empty(z.shape, dtype=np.int64)
    iy = np.empty(z.shape, dtype=np.int64)

    eq = za <= 2.0 / 3.0
    if np.any(eq):
        t1 = nside * (0.5 + tt[eq])
        t2 = nside * (z[eq] * 0.75)
        jp = (t1 - t2).astype(np.int64)  # index of the ascending edge line
        jm = (t1 + t2).astype(np.int64)  # index of the descending edge line
        ifp = jp >> order
        ifm = jm >> order
        f = np.where(ifp == ifm, ifp | 4, np.where(ifp < ifm, ifp, ifm + 8))
        face[eq] = f
        ix[eq] = jm & (nside - 1)
        iy[eq] = nside - (jp & (nside - 1)) - 1
    pol = ~eq
    if np.any(pol):
        ntt = np.minimum(tt[pol].astype(np.int64), 3)
        tp = tt[pol] - ntt
        tmp = nside * np.sqrt(3.0 * (1.0 - za[pol]))
        jp = np.minimum((tp * tmp).astype(np.int64), nside - 1)
        jm = np.minimum(((1.0 - tp) * tmp).astype(np.int64), nside - 1)
        north = z[pol] >= 0
        face[pol] = np.where(north, ntt, ntt + 8)
        ix[pol] = np.where(north, nside - jm - 1, jp)
        iy[pol] = np.where(north, nside - jp - 1, jm)
    return (face << (2 * order)) + _spread_bits(ix) + (_spread_bits(iy) << 1)


def pix2ang_nest(order: int, pix: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Centres (ra, dec in degrees) of NESTED pixels at ``order``."""
    order = _check_order(order)
    nside = 1 << order
    npface = nside * nside
    p = np.asarray(pix, dtype=np.int64)
    if np.any((p < 0) | (p >= 12 * npface)):
        raise ValueError(f"pixel index outside [0, {12 * npface}) at order {order}")
    face = p >> (2 * order)
    sub = p & (npface - 1)
    ix = _compress_bits(sub)
    iy = _compress_bits(sub >> 1)
    jr = (_JRLL[face] << order) - ix - iy - 1

    z = np.empty(p.shape, dtype=np.float64)
    nr = np.empty(p.shape, dtype=np.int64)
    north = jr < nside
    south = jr > 3 * nside
    equ = ~(north | south)
    nr[north] = jr[north]
    z[north] = 1.0 - nr[north].astype(np.float64) ** 2 / (3.0 * npface)
    nr[south] = 4 * nside - jr[south]
    z[south] = nr[south].astype(np.float64) ** 2 / (3.0 * npface) - 1.0
    nr[equ] = nside
    z[equ] = (2 * nside - jr[equ]).astype(np.float64) * 2.0 / (3.0 * nside)

    tmp = _JPLL[face] * nr + ix - iy
    tmp = np.where(tmp < 0, tmp + 8 * nr, tmp)
    tmp = np.where(tmp >= 8 * nr, tmp - 8 * nr, tmp)
    phi = (0.25 * np.pi) * tmp.astype(np.float64) / nr.astype(np.float64)
    ra = np.degrees(phi) % 360.0
    dec = np.degrees(np.arcsin(np.clip(z, -1.0, 1.0)))
    return ra, dec


def max_pixrad_deg(order: int) -> float:
    """Largest angular distance (degrees) between any pixel's centre and its corners."""
    order = _check_order(order)
    nside = float(1 << order)
    # Centre of a pixel on the ring z = 2/3 and the nearest corner towards the pole.
    za, phia = 2.0 / 3.0, np.pi / (4.0 * nside)
    t1 = 1.0 - 1.0 / nside
    t1 *= t1
    zb, phib = 1.0 - t1 / 3.0, 0.0
    va = np.array([np.sqrt(1 - za * za) * np.cos(phia), np.sqrt(1 - za * za) * np.sin(phia), za])
    vb = np.array([np.sqrt(1 - zb * zb) * np.cos(phib), np.sqrt(1 - zb * zb) * np.sin(phib), zb])
    return float(np.degrees(np.arctan2(np.linalg.norm(np.cross(va, vb)), np.dot(va, vb))))

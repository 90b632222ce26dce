"""Survey coverage: the IVOA MOC of the processed tiles and an all-sky map.

* :func:`tiles_moc` -- the MOC (Multi-Order Coverage map, HEALPix cells) of
  the tiles the pipeline processed: each tile a square on the sky, built as
  a polygon with mocpy and merged with the others.
* :func:`write_moc` -- the MOC as an IVOA FITS file, written atomically.
* :func:`moc_area_deg2` -- the area it covers.
* :func:`sky_map` -- an all-sky Mollweide PNG of the MOC, the candidates and
  the Galactic plane.

Coverage means "where the pipeline looked and got a result": tiles with
``status == "ok"``.  Rejected tiles (a non-POSS-I plate, no covering scan)
and failed tiles are left out, since nothing was searched there.

A MOC is conservative: every HEALPix cell of ``max_depth`` that touches a
tile is in it, so its area exceeds the tiles' by about half a cell along
their borders (for isolated 30' tiles: about +8% at depth 12, cells of
0.86'; +4% at depth 13; +2% at the default depth 14, cells of 0.21').
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from vasco.io import atomic_path

if TYPE_CHECKING:
    from mocpy import MOC

__all__ = ["healpix_centres", "moc_area_deg2", "sky_map", "tile_corners", "tiles_moc", "write_moc"]

#: Whole sky in square degrees.
FULL_SKY_DEG2 = 4.0 * math.pi * (180.0 / math.pi) ** 2

# Tiles turned into polygons per mocpy call (bounds the memory of the per-tile MOCs).
_CHUNK = 10_000
# Markers of covered cells are drawn at this HEALPix order (27.5' cells, about a tile) when there are
# at most _MAX_MARKERS of them, so that tiles too small for the map stay visible.
_MARKER_ORDER = 7
_MAX_MARKERS = 20_000
_COVER_RGBA = (31, 119, 180, 210)


def tile_corners(ra: Any, dec: Any, size_arcmin: Any) -> tuple[np.ndarray, np.ndarray]:
    """Corners of square tiles on the sky (float64 degrees), counter-clockwise from south-east.

    Each tile is the square ``|xi|, |eta| <= size/2`` on its tangent plane
    (standard coordinates, radians), north up, centred on ``(ra, dec)``:
    the footprint of a cutout with a uniform pixel grid.  The corners are
    the inverse gnomonic projection of ``(xi, eta) = (+-h, +-h)``.

    Parameters
    ----------
    ra, dec : array_like
        Tile centres (degrees).
    size_arcmin : array_like or float
        Tile width (= height) in arcmin.

    Returns
    -------
    lon, lat : ndarray
        ``(n, 4)`` corner longitudes in [0, 360) and latitudes.
    """
    ra0 = np.deg2rad(np.atleast_1d(np.asarray(ra, dtype=np.float64)))[:, None]
    dec0 = np.deg2rad(np.atleast_1d(np.asarray(dec, dtype=np.float64)))[:, None]
    h = np.deg2rad(np.broadcast_to(np.asarray(size_arcmin, dtype=np.float64), ra0.shape[:1]) / 120.0)[:, None]
    # East is toward +RA; corners SW, SE, NE, NW in (xi, eta) order the square counter-clockwise on the sky.
    xi = h * np.array([-1.0, 1.0, 1.0, -1.0])
    eta = h * np.array([-1.0, -1.0, 1.0, 1.0])
    den = np.cos(dec0) - eta * np.sin(dec0)
    lon = ra0 + np.arctan2(xi, den)
    lat = np.arctan2(np.sin(dec0) + eta * np.cos(dec0), np.hypot(xi, den))
    return np.rad2deg(lon) % 360.0, np.rad2deg(lat)


def _ok_tiles(records: Sequence[Mapping[str, Any]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    ok = [r for r in records if r.get("status") == "ok"]
    ra = np.empty(len(ok))
    dec = np.empty(len(ok))
    size = np.empty(len(ok))
    for i, r in enumerate(ok):
        tid = r.get("tile_id", f"#{i}")
        try:
            ra[i] = float(r["centre"]["ra"])
            dec[i] = float(r["centre"]["dec"])
            size[i] = float(r["size_arcmin"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"tile {tid}: its record needs centre.ra, centre.dec and size_arcmin ({exc!r})") from None
        if not (np.isfinite(ra[i]) and np.isfinite(dec[i]) and -90.0 <= dec[i] <= 90.0):
            raise ValueError(f"tile {tid}: invalid centre RA={ra[i]!r}, Dec={dec[i]!r}")
        if not (np.isfinite(size[i]) and 0.0 < size[i] < 600.0):
            raise ValueError(f"tile {tid}: invalid size_arcmin {size[i]!r}")
    return ra, dec, size


def tiles_moc(records: list[dict], *, max_depth: int = 14) -> MOC:
    """The MOC of the processed tiles (``status == "ok"``).

    Each tile is the square of side ``record["size_arcmin"]`` centred on
    ``record["centre"]`` (see :func:`tile_corners`), made a polygon with
    :meth:`mocpy.MOC.from_polygons` (great-circle edges, which are the
    straight lines of the tangent plane), many tiles per call, and the
    per-tile MOCs are merged with one multi-way union per chunk and one over
    the chunks.

    Parameters
    ----------
    records : list of dict
        Tile records (``tile.json``); those not ``ok`` are skipped.
    max_depth : int
        HEALPix order of the finest cells (14: 0.21'; 12: 0.86').

    Returns
    -------
    mocpy.MOC
        Empty (of ``max_depth``) when no tile is ``ok``.

    Raises
    ------
    ValueError
        Naming a processed tile whose centre or size is missing or invalid.
    """
    from mocpy import MOC

    ra, dec, size = _ok_tiles(records)
    if len(ra) == 0:
        return MOC.new_empty(max_depth)
    parts = []
    for start in range(0, len(ra), _CHUNK):
        sl = slice(start, start + _CHUNK)
        lon, lat = tile_corners(ra[sl], dec[sl], size[sl])
        vertices = np.empty((2 * len(lon), 4), dtype=np.float64)
        vertices[0::2] = lon
        vertices[1::2] = lat
        mocs = MOC.from_polygons(vertices, max_depth=max_depth)
        parts.append(mocs[0].union(*mocs[1:]) if len(mocs) > 1 else mocs[0])
    return parts[0].union(*parts[1:]) if len(parts) > 1 else parts[0]


def write_moc(moc: MOC, path: Path) -> Path:
    """Write ``moc`` as an IVOA FITS MOC (version 2.0), atomically, replacing any file there.

    Returns
    -------
    Path
        ``path``.
    """
    path = Path(path)
    with atomic_path(path, suffix=".fits") as tmp:
        moc.save(str(tmp), format="fits", overwrite=True)
    return path


def moc_area_deg2(moc: MOC) -> float:
    """Area covered by ``moc`` in square degrees."""
    return float(moc.sky_fraction) * FULL_SKY_DEG2


def _compact_bits(v: np.ndarray) -> np.ndarray:
    """The even bits of ``v`` packed together (HEALPix nested index -> one coordinate)."""
    v = v & np.uint64(0x5555555555555555)
    for shift, mask in (
        (1, 0x3333333333333333),
        (2, 0x0F0F0F0F0F0F0F0F),
        (4, 0x00FF00FF00FF00FF),
        (8, 0x0000FFFF0000FFFF),
        (16, 0x00000000FFFFFFFF),
    ):
        v = (v | (v >> np.uint64(shift))) & np.uint64(mask)
    return v


def healpix_centres(order: int, ipix: Any) -> tuple[np.ndarray, np.ndarray]:
    """Centres (lon in [0, 360), lat; degrees) of HEALPix NESTED cells of ``order``.

    The standard HEALPix relations: the index splits into the base face and
    the interleaved (x, y) bits within it; the ring index and position along
    it give z = sin(lat) and the longitude.
    """
    ipix = np.asarray(ipix, dtype=np.uint64)
    nside = 1 << int(order)
    npface = np.uint64(nside * nside)
    face = (ipix // npface).astype(np.int64)
    p = ipix % npface
    ix = _compact_bits(p).astype(np.int64)
    iy = _compact_bits(p >> np.uint64(1)).astype(np.int64)
    jrll = np.array([2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4], dtype=np.int64)[face]
    jpll = np.array([1, 3, 5, 7, 0, 2, 4, 6, 1, 3, 5, 7], dtype=np.int64)[face]
    jr = jrll * nside - ix - iy - 1
    nr = np.where(jr < nside, jr, np.where(jr > 3 * nside, 4 * nside - jr, nside))
    fact2 = 1.0 / (3.0 * nside * nside)
    z = np.where(
        jr < nside,
        1.0 - nr * nr * fact2,
        np.where(jr > 3 * nside, nr * nr * fact2 - 1.0, (2 * nside - jr) * 2.0 / (3.0 * nside)),
    )
    tmp = jpll * nr + ix - iy
    tmp = np.where(tmp < 0, tmp + 8 * nr, tmp)
    lon = np.rad2deg(0.25 * np.pi * tmp / nr) % 360.0
    lat = np.rad2deg(np.arcsin(np.clip(z, -1.0, 1.0)))
    return lon, lat


def _map_lon(ra_deg: np.ndarray, ra_centre: float) -> np.ndarray:
    """Plot longitude (radians) of RA on a map centred on ``ra_centre`` with RA increasing to the left."""
    return np.deg2rad((ra_centre - np.asarray(ra_deg, dtype=np.float64) + 180.0) % 360.0 - 180.0)


def _break_wraps(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Insert NaN where a line jumps across the map edge, so it is not drawn across the sky."""
    jumps = np.flatnonzero(np.abs(np.diff(lon)) > np.pi) + 1
    return np.insert(lon, jumps, np.nan), np.insert(lat, jumps, np.nan)


def _coverage_raster(moc: MOC, nx: int, ny: int, ra_centre: float) -> np.ndarray:
    """RGBA image of the MOC on the Mollweide ellipse inscribed in an ``nx`` x ``ny`` grid (row 0 at the bottom)."""
    import astropy.units as u

    img = np.zeros((ny, nx, 4), dtype=np.uint8)
    if moc.empty():
        return img
    u_ = (np.arange(nx) + 0.5) / nx * 2.0 - 1.0
    v_ = (np.arange(ny) + 0.5) / ny * 2.0 - 1.0
    uu, vv = np.meshgrid(u_, v_)
    inside = uu * uu + vv * vv < 1.0
    # Inverse Mollweide: x = 2 sqrt2 u, y = sqrt2 v (the axes box is the ellipse's bounding box).
    theta = np.arcsin(vv[inside])
    lat = np.rad2deg(np.arcsin(np.clip((2.0 * theta + np.sin(2.0 * theta)) / np.pi, -1.0, 1.0)))
    lam = np.rad2deg(np.pi * uu[inside] / np.cos(theta))
    ra = (ra_centre - lam) % 360.0
    covered = np.zeros(inside.shape, dtype=bool)
    covered[inside] = moc.contains_lonlat(ra * u.deg, lat * u.deg)
    img[covered] = _COVER_RGBA
    return img


def sky_map(moc: MOC, candidates: pd.DataFrame, path: Path, *, title: str = "", ra_centre_deg: float = 180.0) -> Path:
    """Write an all-sky Mollweide map of the coverage and the candidates (PNG, atomically).

    RA increases to the left (as the sky is seen), centred on
    ``ra_centre_deg``; Dec up.  The MOC is drawn filled (rasterised at the
    map's resolution); as 30' tiles are a pixel or two there, each covered
    HEALPix order-7 cell (27.5') is also marked by a dot when there are at
    most 20,000 of them.  The candidates are red points, the Galactic plane
    a dashed line.  The legend gives the covered area and the counts.

    Parameters
    ----------
    moc : mocpy.MOC
        The coverage (:func:`tiles_moc`).
    candidates : DataFrame
        Columns ``ra``, ``dec`` (degrees); rows with ``is_survey_candidate``
        false, if that column exists, are left out.  May be empty, even
        without columns.
    path : Path
        Where the PNG goes.
    title : str
        Printed above the map.
    ra_centre_deg : float
        RA at the centre of the map.

    Raises
    ------
    ValueError
        If non-empty ``candidates`` lack ``ra`` or ``dec``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import astropy.units as u
    from astropy.coordinates import SkyCoord
    from matplotlib.figure import Figure
    from matplotlib.image import AxesImage
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch
    from matplotlib.projections.geo import GeoAxes
    from matplotlib.ticker import FixedLocator, FuncFormatter

    cra, cdec = _candidate_positions(candidates)
    area = moc_area_deg2(moc)
    dpi = 100
    fig = Figure(figsize=(12.0, 7.2), dpi=dpi)
    ax = fig.add_axes((0.04, 0.15, 0.92, 0.75), projection="mollweide")
    if not isinstance(ax, GeoAxes):
        raise TypeError(f"matplotlib's mollweide projection gave {type(ax).__name__}, not GeoAxes")
    ax.apply_aspect()
    pos = ax.get_position()
    nx = max(int(round(pos.width * fig.get_figwidth() * dpi)), 2)
    ny = max(int(round(pos.height * fig.get_figheight() * dpi)), 2)

    im = AxesImage(ax, interpolation="nearest", origin="lower", transform=ax.transAxes, zorder=1)
    im.set_data(_coverage_raster(moc, nx, ny, ra_centre_deg))
    ax.set_autoscale_on(False)
    im.set_extent((0.0, 1.0, 0.0, 1.0))
    im.set_clip_path(ax.patch)
    ax.add_image(im)

    handles: list[Any] = [
        Patch(
            color="#{:02x}{:02x}{:02x}".format(*_COVER_RGBA[:3]),
            label=f"processed tiles (MOC): {area:,.2f} deg\N{SUPERSCRIPT TWO}",
        )
    ]
    if not moc.empty():
        cells = moc.degrade_to_order(_MARKER_ORDER).flatten()
        if 0 < len(cells) <= _MAX_MARKERS:
            lon, lat = healpix_centres(_MARKER_ORDER, cells)
            ax.plot(
                _map_lon(lon, ra_centre_deg),
                np.deg2rad(lat),
                ls="none",
                marker="s",
                ms=3.5,
                mew=0,
                color="tab:blue",
                zorder=2,
            )
            handles.append(
                Line2D(
                    [],
                    [],
                    ls="none",
                    marker="s",
                    ms=4,
                    mew=0,
                    color="tab:blue",
                    label=f"tile positions (27' HEALPix cells: {len(cells):,})",
                )
            )

    gl = np.arange(0.0, 360.0001, 0.5)
    gal = SkyCoord(l=gl * u.deg, b=np.zeros_like(gl) * u.deg, frame="galactic").icrs
    glon, glat = _break_wraps(_map_lon(gal.ra.deg, ra_centre_deg), np.deg2rad(gal.dec.deg))
    ax.plot(glon, glat, color="0.35", ls="--", lw=1.0, zorder=2)
    handles.append(Line2D([], [], color="0.35", ls="--", lw=1.0, label="Galactic plane"))
    gc = SkyCoord(l=0.0 * u.deg, b=0.0 * u.deg, frame="galactic").icrs
    ax.plot(
        _map_lon(np.array([gc.ra.deg]), ra_centre_deg),
        [np.deg2rad(gc.dec.deg)],
        marker="*",
        ms=9,
        color="0.35",
        ls="none",
        zorder=2,
    )
    handles.append(Line2D([], [], marker="*", ms=9, color="0.35", ls="none", label="Galactic centre"))

    if len(cra):
        ax.plot(
            _map_lon(cra, ra_centre_deg),
            np.deg2rad(cdec),
            ls="none",
            marker="o",
            ms=3.5,
            mfc="tab:red",
            mec="k",
            mew=0.3,
            zorder=3,
        )
    handles.append(
        Line2D([], [], ls="none", marker="o", ms=5, mfc="tab:red", mec="k", mew=0.3, label=f"candidates ({len(cra):,})")
    )

    ticks = np.deg2rad(np.arange(-150.0, 151.0, 30.0))
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_major_formatter(
        FuncFormatter(lambda x, _pos: f"{round(((ra_centre_deg - math.degrees(x)) % 360.0) / 15.0) % 24:d}h")
    )
    ax.set_latitude_grid(30)
    ax.tick_params(axis="x", labelsize=9, colors="0.2")
    for tick in ax.xaxis.get_major_ticks():  # RA labels sit on the equator: keep them legible over the fill
        tick.label1.set_bbox(dict(fc="white", ec="none", alpha=0.7, pad=0.6))
    ax.tick_params(axis="y", labelsize=9)
    ax.grid(True, color="0.6", lw=0.5, alpha=0.7)
    ax.set_xlabel("RA (increasing to the left)")
    ax.set_ylabel("Dec")
    fig.legend(
        handles=handles,
        loc="lower center",
        ncols=min(len(handles), 3),
        fontsize=9,
        frameon=False,
        bbox_to_anchor=(0.5, 0.01),
    )
    fig.suptitle(title or "Survey coverage and candidates", fontsize=13, y=0.97)
    path = Path(path)
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", metadata={"Software": None})
    return path


def _candidate_positions(candidates: pd.DataFrame | None) -> tuple[np.ndarray, np.ndarray]:
    if candidates is None or len(candidates) == 0:
        return np.zeros(0), np.zeros(0)
    missing = [c for c in ("ra", "dec") if c not in candidates.columns]
    if missing:
        raise ValueError(f"the candidates table lacks the column(s) {missing} needed for the sky map")
    c = candidates
    if "is_survey_candidate" in c.columns:
        c = c[c["is_survey_candidate"].astype("boolean").fillna(False).to_numpy(dtype=bool)]
    ra = pd.to_numeric(c["ra"], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    dec = pd.to_numeric(c["dec"], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    ok = np.isfinite(ra) & np.isfinite(dec)
    return ra[ok], dec[ok]

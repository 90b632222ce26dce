"""Cutout stamps of the candidates, as small PNG images for the gallery.

A stamp is a square of the tile image (the POSS-I scan) centred on a
candidate's SExtractor position, scaled per stamp and written as a PNG
named after the candidate's ``NUMBER``.  Stamps are shown the way
astronomers look at photographic plates and printed finding charts: as a
*negative*, dark stars on a light sky (colour map ``gray_r``), with north up
as in the FITS image (pixel row 0 at the bottom).  Pixels beyond the image
edge are painted a pale blue-grey so a stamp cut at the edge is recognisable.
The PNG is written by :func:`matplotlib.image.imsave` (no figure, no GUI
backend) without the software-version text, so it is byte-reproducible.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pandas as pd
from astropy.io import fits
from astropy.visualization import AsinhStretch, ManualInterval
from matplotlib import colormaps

from vasco.io import atomic_path

__all__ = ["EDGE_COLOUR", "SKY_HIGH", "SKY_LOW", "STAMP_CMAP", "cut_stamp", "scale_stamp", "write_stamps"]

#: Colour map of the stamps: a negative, as a plate or a printed finding chart.
STAMP_CMAP = "gray_r"

#: Colour of the pixels beyond the image edge (RGBA).
EDGE_COLOUR = (0.78, 0.84, 0.93, 1.0)

_REQUIRED = ("NUMBER", "X_IMAGE", "Y_IMAGE")

#: The display interval of a stamp, in robust sigmas of its sky below / above its median.
SKY_LOW = 2.0
SKY_HIGH = 10.0


def _read_image(image: Path) -> np.ndarray:
    """The first 2-D image of a FITS file as float64; ValueError naming the file otherwise."""
    image = Path(image)
    if not image.is_file():
        raise ValueError(f"stamp image {image} does not exist")
    try:
        with fits.open(image, memmap=False) as hdul:
            for hdu in hdul:
                data = getattr(hdu, "data", None)
                if data is not None and getattr(data, "ndim", 0) == 2:
                    return np.asarray(data, dtype=np.float64)
    except (OSError, TypeError, ValueError) as exc:
        raise ValueError(f"stamp image {image} is not a readable FITS file: {exc}") from exc
    raise ValueError(f"stamp image {image} has no 2-D image HDU")


def cut_stamp(data: np.ndarray, x: float, y: float, size_px: int) -> np.ndarray | None:
    """A ``size_px`` square of ``data`` centred on the 1-based pixel position (x, y).

    Parameters
    ----------
    data : numpy.ndarray
        The 2-D image, indexed ``data[row, column]`` (row = y - 1).
    x, y : float
        SExtractor's 1-based pixel coordinates of the centre.
    size_px : int
        Side of the stamp in pixels.

    Returns
    -------
    numpy.ndarray or None
        A float64 ``(size_px, size_px)`` array, NaN where the square runs off
        the image; None when (x, y) is not a finite position inside the image.
    """
    ny, nx = data.shape
    if not (np.isfinite(x) and np.isfinite(y)):
        return None
    col, row = float(x) - 1.0, float(y) - 1.0
    if not (-0.5 <= col < nx - 0.5 and -0.5 <= row < ny - 0.5):
        return None
    c0 = int(np.floor(col + 0.5)) - size_px // 2
    r0 = int(np.floor(row + 0.5)) - size_px // 2
    stamp = np.full((size_px, size_px), np.nan, dtype=np.float64)
    rs, re = max(r0, 0), min(r0 + size_px, ny)
    cs, ce = max(c0, 0), min(c0 + size_px, nx)
    stamp[rs - r0 : re - r0, cs - c0 : ce - c0] = data[rs:re, cs:ce]
    return stamp


def scale_stamp(stamp: np.ndarray) -> np.ndarray:
    """Scale a stamp to [0, 1] (NaN kept): a sky-based linear interval, then an asinh stretch.

    The interval runs from ``SKY_LOW`` robust sigmas below the stamp's median
    to ``SKY_HIGH`` above it (sigma = 1.4826 x the median absolute deviation
    of its finite pixels, the standard deviation if that is zero), so the sky
    is a light grey on every stamp and a faint source stands out; the asinh
    stretch keeps brighter stars from saturating at once.  A flat stamp maps
    to 0.5, an all-NaN one stays NaN.
    """
    out = np.full(stamp.shape, np.nan, dtype=np.float64)
    mask = np.isfinite(stamp)
    finite = stamp[mask]
    if finite.size == 0:
        return out
    med = float(np.median(finite))
    sigma = 1.4826 * float(np.median(np.abs(finite - med)))
    if not sigma > 0.0:
        sigma = float(np.std(finite))
    if not sigma > 0.0:
        out[mask] = 0.5
        return out
    interval = ManualInterval(med - SKY_LOW * sigma, med + SKY_HIGH * sigma)
    out[mask] = AsinhStretch(a=0.3)(interval(finite))
    return out


def _save_png(scaled: np.ndarray, final: Path) -> None:
    """Write a scaled stamp as a PNG, atomically, without version metadata (same input, same bytes)."""
    cmap = colormaps[STAMP_CMAP].with_extremes(bad=EDGE_COLOUR)
    with atomic_path(final, suffix=".png") as tmp:
        mpimg.imsave(
            tmp,
            np.ma.masked_invalid(scaled),
            cmap=cmap,
            vmin=0.0,
            vmax=1.0,
            origin="lower",
            format="png",
            metadata={"Software": None},  # type: ignore[dict-item]  # None drops the key (Axes.imsave docs)
        )


def write_stamps(image: Path, rows: pd.DataFrame, out_dir: Path, size_px: int = 64) -> list[str | None]:
    """Write one PNG stamp per row of ``rows``, cut from the FITS ``image``.

    Each stamp is ``size_px`` x ``size_px`` image pixels centred on the row's
    (``X_IMAGE``, ``Y_IMAGE``) (SExtractor's 1-based pixel coordinates),
    padded where it runs off the image, scaled per stamp (an interval set by
    its sky median and robust sigma, then an asinh stretch: see
    :func:`scale_stamp`) and written as ``out_dir/<NUMBER>.png``: a negative
    (``gray_r``: dark stars on a light sky, as plates and printed finding
    charts are looked at), north up as in the FITS image (``origin="lower"``),
    pixels beyond the image edge pale blue-grey.  One image pixel is one PNG
    pixel; the gallery enlarges them.

    Stamps already on disk are kept (the call is idempotent), new ones are
    written atomically, and the same input gives byte-identical files.

    Parameters
    ----------
    image : pathlib.Path
        The tile's FITS image (the first 2-D HDU is used).
    rows : pandas.DataFrame
        The candidates, with columns ``NUMBER``, ``X_IMAGE`` and ``Y_IMAGE``.
    out_dir : pathlib.Path
        Folder of the stamps (created if needed).
    size_px : int, optional
        Side of a stamp in image pixels.

    Returns
    -------
    list of str or None
        Per row, in order, the stamp's file name relative to ``out_dir``
        (``"883.png"``), or None when the row's position is outside the image.

    Raises
    ------
    ValueError
        If ``image`` is missing or unreadable, ``rows`` lacks a needed
        column, or ``size_px`` is not a positive integer.
    """
    missing = [c for c in _REQUIRED if c not in rows.columns]
    if missing:
        raise ValueError(f"stamp rows lack column(s) {missing} (needed: {list(_REQUIRED)})")
    if int(size_px) != size_px or size_px < 1:
        raise ValueError(f"stamp size_px must be a positive integer, not {size_px!r}")
    size_px = int(size_px)
    data = _read_image(Path(image))
    out_dir = Path(out_dir)
    names: list[str | None] = []
    xs = rows["X_IMAGE"].to_numpy(np.float64)
    ys = rows["Y_IMAGE"].to_numpy(np.float64)
    for number, x, y in zip(rows["NUMBER"].to_list(), xs, ys, strict=True):
        stamp = cut_stamp(data, x, y, size_px)
        if stamp is None:
            names.append(None)
            continue
        name = f"{_number_text(number)}.png"
        final = out_dir / name
        if not final.exists():
            _save_png(scale_stamp(stamp), final)
        names.append(name)
    return names


def _number_text(number: object) -> str:
    """A candidate NUMBER as a file-name stem (integers without a decimal point)."""
    try:
        value = float(number)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        value = float("nan")
    if not np.isfinite(value) or value != int(value):
        raise ValueError(f"stamp row has a bad NUMBER {number!r} (a positive integer is needed)")
    return str(int(value))

"""Sky positions from pixel centroids, computed by VASCO (not by SExtractor).

SExtractor only reads the explicit CD/CRPIX keywords of a DSS header and
writes ALPHA/DELTA = 0 when they are missing; VASCO instead evaluates the
solution named in the configuration itself, in float64.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from astropy.io import fits
from numpy.typing import ArrayLike, NDArray

from vasco.plates.model import PlateSolution, explicit_wcs

__all__ = ["pixel_to_sky", "has_tan_wcs"]


def has_tan_wcs(header: fits.Header) -> bool:
    """True when the header carries an explicit TAN WCS with a CD or CDELT matrix."""
    ctype1 = str(header.get("CTYPE1", ""))
    return ctype1.startswith("RA---TAN") and ("CD1_1" in header or "CDELT1" in header)


def pixel_to_sky(
    header: fits.Header,
    x: ArrayLike,
    y: ArrayLike,
    solution: Literal["plate", "tan"] = "plate",
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """RA, Dec (degrees, float64) of 1-based FITS pixel positions (SExtractor's X/Y_IMAGE).

    ``solution='plate'`` evaluates the GSSS plate polynomial; ``'tan'`` the
    explicit TAN WCS.  Raises ValueError naming what the header lacks.
    """
    xa = np.asarray(x, dtype=np.float64)
    ya = np.asarray(y, dtype=np.float64)
    if solution == "plate":
        return PlateSolution.from_header(header).pix_to_sky(xa, ya)
    if solution == "tan":
        if not has_tan_wcs(header):
            raise ValueError("header has no explicit TAN WCS (CTYPE1 RA---TAN with CD/CDELT)")
        wcs = explicit_wcs(header)
        ra, dec = wcs.all_pix2world(xa, ya, 1)
        return np.asarray(ra, dtype=np.float64) % 360.0, np.asarray(dec, dtype=np.float64)
    raise ValueError(f"astrometry.solution {solution!r}: must be 'plate' or 'tan'")

"""Reading a cutout's header in a step: unreadable headers and missing solutions as step errors."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
from astropy.io import fits

from vasco.astrometry.positions import pixel_to_sky
from vasco.plates.header import read_fits_header
from vasco.records import Output
from vasco.steps.base import StepError

__all__ = ["read_header", "image_centre"]


def read_header(path: Path) -> fits.Header:
    """Primary header of a cutout, as a step error with a reason when unreadable."""
    try:
        return read_fits_header(Path(path))
    except (OSError, ValueError, IndexError) as exc:
        raise StepError("FAIL_BAD_IMAGE", f"{Path(path).name}: unreadable FITS header ({exc})") from exc


def image_centre(image: Output, solution: Literal["plate", "tan"] = "plate") -> tuple[float, float]:
    """Sky position of the centre pixel of a cutout."""
    header = read_header(Path(image["path"]))
    x = (float(header["NAXIS1"]) + 1.0) / 2.0
    y = (float(header["NAXIS2"]) + 1.0) / 2.0
    try:
        ra, dec = pixel_to_sky(header, np.array([x]), np.array([y]), solution)
    except (ValueError, KeyError) as exc:
        if solution == "plate":
            return image_centre(image, "tan")
        raise StepError("FAIL_NO_ASTROMETRY", f"{Path(image['path']).name}: {exc}") from exc
    return float(ra[0]), float(dec[0])

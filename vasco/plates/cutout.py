"""Headers of DSS cutouts as the STScI ``dss_search`` service writes them.

:func:`cutout_header` builds the header a modern POSS-I E cutout centred on a
position would have: the plate's descriptive keywords and full plate
polynomial, the cutout corner ``CNPIX1``/``CNPIX2``, and the explicit linear
TAN WCS (``WCSNAME='DSS'``) fitted to the polynomial over the cutout.  A
synthetic image with this header is astrometrically a real POSS-I plate.

Conventions (checked against a real modern service header, SERC-ER plate
ER768): the requested position falls at the image centre ``(NAXIS+1)/2``;
``CNPIX = round(X_plate - (NAXIS+1)/2)`` with ``X_plate`` the position's
1-based full-plate pixel; ``CRPIX = (NAXIS+1)/2``; ``OBJCTX``/``OBJCTY`` are
the position in the polynomial's plate-pixel frame (``X_plate - 0.5``); the
image size is ``round(size / (PLTSCALE * PIXELSZ / 1000))`` per axis.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from astropy.coordinates import Angle
from astropy.io import fits

from vasco.plates.model import fit_tan_wcs
from vasco.plates.table import PlateRecord

__all__ = ["cutout_header", "cutout_shape_px", "cutout_size_px"]

# Keywords copied from the full-plate header, in the service's order, with
# the service's comments.  Those marked True must be present.
_PLATE_CARDS: tuple[tuple[str, str, bool], ...] = (
    ("ORIGIN", "GSSS: STScI Digitized Sky Survey", False),
    ("SURVEY", "GSSS: Sky Survey", True),
    ("REGION", "GSSS: Region Name", True),
    ("PLATEID", "GSSS: Plate ID", True),
    ("SCANNUM", "GSSS: Scan Number", False),
    ("DSCNDNUM", "GSSS: Descendant Number", False),
    ("TELESCID", "GSSS: Telescope ID", False),
    ("BANDPASS", "GSSS: Bandpass Code", False),
    ("COPYRGHT", "GSSS: Copyright Holder", False),
    ("SITELAT", "Observatory: Latitude", False),
    ("SITELONG", "Observatory: Longitude", False),
    ("TELESCOP", "Observatory: Telescope", False),
    ("INSTRUME", "Detector: Photographic Plate", False),
    ("EMULSION", "Detector: Emulsion", True),
    ("FILTER", "Detector: Filter", False),
    ("PLTSCALE", "Detector: Plate Scale arcsec per mm", True),
    ("PLTSIZEX", "Detector: Plate X Dimension mm", False),
    ("PLTSIZEY", "Detector: Plate Y Dimension mm", False),
    ("PLATERA", "Observation: Field centre RA degrees", False),
    ("PLATEDEC", "Observation: Field centre Dec degrees", False),
    ("PLTLABEL", "Observation: Plate Label", True),
    ("DATE-OBS", "Observation: Date/Time", True),
    ("EXPOSURE", "Observation: Exposure Minutes", True),
    ("PLTGRADE", "Observation: Plate Grade", False),
    ("OBSHA", "Observation: Hour Angle", False),
    ("OBSZD", "Observation: Zenith Distance", False),
    ("AIRMASS", "Observation: Airmass", False),
    ("REFBETA", "Observation: Refraction Coeff", False),
    ("REFBETAP", "Observation: Refraction Coeff", False),
    ("REFK1", "Observation: Refraction Coeff", False),
    ("REFK2", "Observation: Refraction Coeff", False),
)
_SCAN_CARDS: tuple[tuple[str, str, bool], ...] = (
    ("XPIXELS", "Scan: X Dimension", False),
    ("YPIXELS", "Scan: Y Dimension", False),
    ("XPIXELSZ", "Scan: Pixel Size microns", True),
    ("YPIXELSZ", "Scan: Pixel Size microns", True),
    *((f"PPO{i}", "Scan: Orientation Coeff", True) for i in range(1, 7)),
    ("PLTRAH", "Astrometry: Plate Centre H", True),
    ("PLTRAM", "Astrometry: Plate Centre M", True),
    ("PLTRAS", "Astrometry: Plate Centre S", True),
    ("PLTDECSN", "Astrometry: Plate Centre +/-", True),
    ("PLTDECD", "Astrometry: Plate Centre D", True),
    ("PLTDECM", "Astrometry: Plate Centre M", True),
    ("PLTDECS", "Astrometry: Plate Centre S", True),
    ("EQUINOX", "Astrometry: Equinox", False),
    *((f"AMDX{i}", "Astrometry: GSC1 Coeff", True) for i in range(1, 21)),
    *((f"AMDY{i}", "Astrometry: GSC1 Coeff", True) for i in range(1, 21)),
)


def _pixel_scale(plate: PlateRecord, axis: str) -> float:
    h = plate.header()
    return float(h["PLTSCALE"]) * float(h[f"{axis}PIXELSZ"]) / 1000.0


def _size_px(plate: PlateRecord, size_arcmin: float, axis: str) -> int:
    size = float(size_arcmin)
    if not np.isfinite(size) or size <= 0:
        raise ValueError(f"cutout size must be a positive number of arcmin, got {size_arcmin!r}")
    n = math.floor(size * 60.0 / _pixel_scale(plate, axis) + 0.5)
    if n < 2:
        raise ValueError(f"a {size_arcmin}' cutout of plate {plate.region} would be under 2 px")
    return n


def cutout_size_px(plate: PlateRecord, size_arcmin: float) -> int:
    """Cutout width in pixels for a size in arcmin, from ``PLTSCALE`` and ``XPIXELSZ``.

    ``round(size * 60 / (PLTSCALE * XPIXELSZ / 1000))``: 1059 px for 30' on a
    25.28-um scan (1.699"/px), 1782 px on a 15-um scan (1.010"/px).
    """
    return _size_px(plate, size_arcmin, "X")


def cutout_shape_px(plate: PlateRecord, size_arcmin: float) -> tuple[int, int]:
    """``(NAXIS1, NAXIS2)`` of a square cutout, each axis from its own pixel size.

    The service sizes each axis separately: on the 15-um scans (``XPIXELSZ``
    15.0295, ``YPIXELSZ`` 15.0) a 15' cutout is 891 x 893 px.
    """
    return _size_px(plate, size_arcmin, "X"), _size_px(plate, size_arcmin, "Y")


def _sexagesimal(ra: float, dec: float) -> tuple[str, str]:
    ra_s = Angle(ra, unit="deg").to_string(unit="hourangle", sep=" ", precision=3, pad=True)
    dec_s = Angle(dec, unit="deg").to_string(unit="deg", sep=" ", precision=2, pad=True, alwayssign=True)
    return ra_s, dec_s


def cutout_header(
    plate: PlateRecord,
    ra: float,
    dec: float,
    size_px: int | tuple[int, int],
    *,
    allow_partial: bool = False,
) -> fits.Header:
    """Header of a POSS-I E cutout of ``plate`` centred on ``(ra, dec)``.

    Parameters
    ----------
    plate : PlateRecord
        The plate (e.g. from :func:`vasco.plates.table.covering_plate`).
    ra, dec : float
        Requested centre, degrees.
    size_px : int or (int, int)
        ``NAXIS1`` (= ``NAXIS2``), or ``(NAXIS1, NAXIS2)``; see
        :func:`cutout_size_px` and :func:`cutout_shape_px`.
    allow_partial : bool
        Allow a cutout that extends beyond the scan (the service then pads);
        by default that raises ``ValueError``.

    Returns
    -------
    astropy.io.fits.Header
        ``SIMPLE``, ``BITPIX=16``, ``NAXIS1/2``; the plate keywords (``SURVEY``,
        ``REGION``, ``PLATEID``, ``PLTLABEL``, ``DATE-OBS``, ``TELESCOP``,
        ``EMULSION``, ``PLTSCALE``, ``X/YPIXELSZ``, ``PPO1-6``,
        ``PLTRAH``...``PLTDECS``, ``EQUINOX``, ``AMDX1-20``, ``AMDY1-20``...);
        ``CNPIX1/2``; the TAN WCS (``WCSNAME='DSS'``, ``RADESYS='ICRS'``,
        ``CTYPE``, ``CRPIX``, ``CRVAL``, ``CUNIT``, ``CD1_1``..``CD2_2``);
        ``OBJCTRA``/``OBJCTDEC``/``OBJCTX``/``OBJCTY``.

    Raises
    ------
    ValueError
        If the position is off the plate, the size is invalid, or the cutout
        does not fit on the scan (unless ``allow_partial``).
    """
    if isinstance(size_px, tuple):
        naxis1, naxis2 = (int(v) for v in size_px)
    else:
        naxis1 = naxis2 = int(size_px)
    if naxis1 < 2 or naxis2 < 2:
        raise ValueError(f"cutout size must be at least 2 px, got {size_px!r}")
    ra_f, dec_f = float(ra) % 360.0, float(dec)
    if not (np.isfinite(ra_f) and -90.0 <= dec_f <= 90.0):
        raise ValueError(f"invalid cutout centre RA={ra!r}, Dec={dec!r}")
    full = plate.header()
    n1_plate, n2_plate = int(full["NAXIS1"]), int(full["NAXIS2"])
    solution = plate.solution()
    xp, yp = solution.sky_to_pix(ra_f, dec_f)
    if not (np.isfinite(xp) and np.isfinite(yp)) or not (0.5 <= xp <= n1_plate + 0.5 and 0.5 <= yp <= n2_plate + 0.5):
        raise ValueError(f"RA={ra_f:.6f} Dec={dec_f:+.6f} is not on plate {plate.region}")
    c1, c2 = (naxis1 + 1) / 2.0, (naxis2 + 1) / 2.0
    cnpix1 = math.floor(float(xp) - c1 + 0.5)
    cnpix2 = math.floor(float(yp) - c2 + 0.5)
    if not allow_partial and (cnpix1 < 0 or cnpix2 < 0 or cnpix1 + naxis1 > n1_plate or cnpix2 + naxis2 > n2_plate):
        raise ValueError(
            f"a {naxis1}x{naxis2} px cutout at RA={ra_f:.6f} Dec={dec_f:+.6f} extends beyond the "
            f"{n1_plate}x{n2_plate} px scan of plate {plate.region} (corner {cnpix1}, {cnpix2})"
        )
    local = solution.with_corner(cnpix1, cnpix2)
    wcs = fit_tan_wcs(local, naxis1, naxis2)

    h = fits.Header()
    h["SIMPLE"] = (True, "FITS: Compliance")
    h["BITPIX"] = (16, "FITS: I*2 Data")
    h["NAXIS"] = (2, "FITS: 2-D Image Data")
    h["NAXIS1"] = (naxis1, "FITS: X Dimension")
    h["NAXIS2"] = (naxis2, "FITS: Y Dimension")
    h["EXTEND"] = (True, "FITS: File can contain extensions")

    def copy(cards: tuple[tuple[str, str, bool], ...]) -> None:
        for key, comment, required in cards:
            if key in full:
                value: Any = full[key]
                h[key] = (value, comment)
            elif required:
                raise ValueError(f"plate {plate.region} header lacks {key}")

    copy(_PLATE_CARDS)
    h["CNPIX1"] = (cnpix1, "Scan: X Corner")
    h["CNPIX2"] = (cnpix2, "Scan: Y Corner")
    copy(_SCAN_CARDS)

    h["WCSAXES"] = (2, "Number WCS axes")
    h["WCSNAME"] = ("DSS", "Local WCS approximation from full plate")
    h["RADESYS"] = ("ICRS", "Reference frame")
    h["CTYPE1"] = ("RA---TAN", "RA-Gnomic projection")
    h["CRPIX1"] = (float(wcs.wcs.crpix[0]), "X reference pixel")
    h["CRVAL1"] = (float(wcs.wcs.crval[0]), "RA of reference pixel")
    h["CUNIT1"] = ("deg", "degrees")
    h["CTYPE2"] = ("DEC--TAN", "Dec-Gnomic projection")
    h["CRPIX2"] = (float(wcs.wcs.crpix[1]), "Y reference pixel")
    h["CRVAL2"] = (float(wcs.wcs.crval[1]), "Dec of reference pixel")
    h["CUNIT2"] = ("deg", "degrees")
    cd = wcs.wcs.cd
    h["CD1_1"] = (float(cd[0, 0]), "rotation matrix coefficient")
    h["CD1_2"] = (float(cd[0, 1]), "rotation matrix coefficient")
    h["CD2_1"] = (float(cd[1, 0]), "rotation matrix coefficient")
    h["CD2_2"] = (float(cd[1, 1]), "rotation matrix coefficient")
    ra_s, dec_s = _sexagesimal(ra_f, dec_f)
    h["OBJECT"] = ("data", "Requested Object Name")
    h["OBJCTRA"] = (ra_s, "Requested Right Ascension (J2000)")
    h["OBJCTDEC"] = (dec_s, "Requested Declination (J2000)")
    h["OBJCTX"] = (round(float(xp) - 0.5, 2), "Requested X on plate (pixels)")
    h["OBJCTY"] = (round(float(yp) - 0.5, 2), "Requested Y on plate (pixels)")
    return h

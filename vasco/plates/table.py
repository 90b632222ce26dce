"""The shipped table of the 932 POSS-I E plates of DSS1, and plate lookup.

The table (``vasco/data/poss1e_plates.json.gz``) is built from the DSS1
full-plate headers by ``scripts/build_plate_table.py``.  Each plate has its
region (``XE002`` ...), label (``E568`` ...), GSSS plate ID, exposure date and
Julian epoch, plate centre, and the full-plate header keywords (everything but
the structural cards and the unused ``AMDREX``/``AMDREY`` set), from which
its plate solution is evaluated.

Scan sizes: 816 plates are scanned at 25.28 um (14000 x 13999/14000 px,
1.70"/px; 9 of them at 25.00 um), 116 at 15.03 x 15.00 um (23040 x 23040 px,
1.01"/px).  All are kept.  An explicit ``margin_px`` of
:func:`covering_plate` is in each plate's own pixels (a smaller angle on the
15-um scans); the default margin is half a 30' cutout on that plate.

Four POSS-I fields are not in DSS1's POSS-I E set (XE001, the polar plate;
XE722, XE853, XE876), so the sky above Dec ~+88 and a few patches have no
covering scan.
"""

from __future__ import annotations

import functools
import gzip
import json
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Literal

import numpy as np
import pandas as pd

from vasco.plates.model import PlateSolution

__all__ = [
    "PlateRecord",
    "covering_plate",
    "covering_plates",
    "find_plate",
    "get_plate",
    "load_plate_table",
    "DEFAULT_CUTOUT_ARCMIN",
]

TABLE_RESOURCE = "poss1e_plates.json.gz"
_FORMAT = "vasco-poss1e-plates"

#: Cutout size (arcmin) whose half sets the default margin of
#: :func:`covering_plate` (the paper's 30' tiles).
DEFAULT_CUTOUT_ARCMIN = 30.0

# Plates whose centre is farther than this from a position are not tested
# (the scans are 6.6 deg square: half-diagonal 4.7 deg).
_SEARCH_RADIUS_DEG = 6.0

_SUMMARY_COLUMNS = ("region", "label", "plate_id", "date_obs", "epoch", "ra", "dec", "naxis1", "naxis2")


@dataclass(frozen=True)
class PlateRecord:
    """One POSS-I E plate of the shipped table.

    Attributes
    ----------
    region : str
        GSSS region name (``REGION``), e.g. ``'XE133'``.
    label : str
        Plate label (``PLTLABEL``), e.g. ``'E1409'``.
    plate_id : str
        GSSS plate ID (``PLATEID``).
    date_obs : str
        Exposure start, ISO (``DATE-OBS``).
    epoch : float
        Decimal Julian year of ``date_obs``.
    ra, dec : float
        Plate centre (tangent point of the plate solution), degrees.
    header_items : tuple
        The full-plate header as ``(keyword, value)`` pairs; use
        :meth:`header`.
    """

    region: str
    label: str
    plate_id: str
    date_obs: str
    epoch: float
    ra: float
    dec: float
    header_items: tuple[tuple[str, Any], ...] = field(repr=False, compare=False)

    def header(self) -> dict[str, Any]:
        """The full-plate header keywords as a new dict (``CNPIX1 = CNPIX2 = 0``)."""
        return dict(self.header_items)

    def solution(self) -> PlateSolution:
        """The full-plate solution (1-based pixels of the whole scan)."""
        return _solution(self.region, self.header_items)

    @property
    def naxis1(self) -> int:
        """Scan width in pixels."""
        return int(self.header()["NAXIS1"])

    @property
    def naxis2(self) -> int:
        """Scan height in pixels."""
        return int(self.header()["NAXIS2"])

    @property
    def pixel_scale_arcsec(self) -> float:
        """Nominal pixel scale along x, ``PLTSCALE * XPIXELSZ / 1000`` (arcsec/px)."""
        h = self.header()
        return float(h["PLTSCALE"]) * float(h["XPIXELSZ"]) / 1000.0


@functools.cache
def _solution(region: str, header_items: tuple[tuple[str, Any], ...]) -> PlateSolution:
    return PlateSolution.from_header(dict(header_items))


@functools.lru_cache(maxsize=1)
def _load_payload() -> dict[str, Any]:
    ref = resources.files("vasco") / "data" / TABLE_RESOURCE
    try:
        raw = ref.read_bytes()
    except FileNotFoundError:
        raise FileNotFoundError(
            f"the shipped plate table vasco/data/{TABLE_RESOURCE} is missing; "
            "rebuild it with scripts/build_plate_table.py"
        ) from None
    payload = json.loads(gzip.decompress(raw).decode("ascii"))
    if payload.get("format") != _FORMAT:
        raise ValueError(f"vasco/data/{TABLE_RESOURCE} is not a {_FORMAT} table")
    return payload


@functools.lru_cache(maxsize=1)
def _records() -> tuple[PlateRecord, ...]:
    out = []
    for p in _load_payload()["plates"]:
        out.append(
            PlateRecord(
                region=p["region"],
                label=p["label"],
                plate_id=p["plate_id"],
                date_obs=p["date_obs"],
                epoch=float(p["epoch"]),
                ra=float(p["ra"]),
                dec=float(p["dec"]),
                header_items=tuple(p["header"].items()),
            )
        )
    return tuple(out)


@functools.lru_cache(maxsize=1)
def _index() -> tuple[dict[str, PlateRecord], dict[str, PlateRecord]]:
    by_region = {r.region.upper(): r for r in _records()}
    by_label = {r.label.upper(): r for r in _records()}
    return by_region, by_label


@functools.lru_cache(maxsize=1)
def _table() -> pd.DataFrame:
    rows = []
    for p in _load_payload()["plates"]:
        row = {k: p[k] for k in _SUMMARY_COLUMNS}
        row.update(p["header"])
        rows.append(row)
    df = pd.DataFrame(rows)
    for col in ("epoch", "ra", "dec"):
        df[col] = df[col].astype(np.float64)
    return df


def load_plate_table() -> pd.DataFrame:
    """The POSS-I E plate table, one row per plate, sorted by region.

    Returns
    -------
    pandas.DataFrame
        Lower-case summary columns ``region, label, plate_id, date_obs, epoch,
        ra, dec, naxis1, naxis2`` (``ra``/``dec`` the plate centre in float64
        degrees, ``epoch`` decimal Julian year), followed by one upper-case
        column per full-plate header keyword (``PLTSCALE``, ``XPIXELSZ``,
        ``PPO1``..., ``AMDX1``...).  The table is read once and cached; each
        call returns a copy.
    """
    return _table().copy()


def find_plate(name: str, by: Literal["any", "region", "label"] = "any") -> PlateRecord | None:
    """The plate whose region or label is ``name`` (case-insensitive), or None."""
    key = str(name).strip().upper()
    by_region, by_label = _index()
    if by in ("any", "region") and key in by_region:
        return by_region[key]
    if by in ("any", "label") and key in by_label:
        return by_label[key]
    return None


def get_plate(name: str) -> PlateRecord:
    """The plate whose region (``'XE133'``) or label (``'E1409'``) is ``name``.

    Raises
    ------
    LookupError
        Naming ``name`` when no POSS-I E plate has it.
    """
    plate = find_plate(name)
    if plate is None:
        raise LookupError(f"no POSS-I E plate has region or label {name!r}")
    return plate


def _check_position(ra: float, dec: float) -> tuple[float, float]:
    ra_f, dec_f = float(ra), float(dec)
    if not (np.isfinite(ra_f) and np.isfinite(dec_f)) or not -90.0 <= dec_f <= 90.0:
        raise ValueError(f"invalid position RA={ra!r}, Dec={dec!r} (degrees)")
    return ra_f % 360.0, dec_f


def _centre_separations(ra: float, dec: float) -> np.ndarray:
    """Angular distance (deg) from (ra, dec) to every plate centre, table order."""
    recs = _records()
    ra0 = np.deg2rad(np.array([r.ra for r in recs], dtype=np.float64))
    dec0 = np.deg2rad(np.array([r.dec for r in recs], dtype=np.float64))
    ra1, dec1 = np.deg2rad(ra), np.deg2rad(dec)
    hav = np.sin((dec0 - dec1) / 2) ** 2 + np.cos(dec0) * np.cos(dec1) * np.sin((ra0 - ra1) / 2) ** 2
    return np.rad2deg(2.0 * np.arcsin(np.sqrt(np.clip(hav, 0.0, 1.0))))


def _half_cutout_px(plate: PlateRecord, size_arcmin: float) -> tuple[float, float]:
    """Half the size (px, x and y) of a ``size_arcmin`` cutout on ``plate``."""
    h = plate.header()
    scale = float(h["PLTSCALE"])
    nx = np.floor(size_arcmin * 60.0 / (scale * float(h["XPIXELSZ"]) / 1000.0) + 0.5)
    ny = np.floor(size_arcmin * 60.0 / (scale * float(h["YPIXELSZ"]) / 1000.0) + 0.5)
    return float(nx) / 2.0, float(ny) / 2.0


def covering_plates(ra: float, dec: float, margin_px: float | None = None) -> list[PlateRecord]:
    """All plates whose scan contains a position, nearest plate centre first.

    A plate covers ``(ra, dec)`` when its full-plate solution puts the
    position at least the margin inside the scan:
    ``0.5 + mx <= x <= NAXIS1 + 0.5 - mx`` and ``0.5 + my <= y <= NAXIS2 + 0.5 - my``.

    Parameters
    ----------
    ra, dec : float
        Degrees (ICRS/J2000).
    margin_px : float or None
        Required distance from the scan edge, in that plate's pixels.  None
        (default): half of a :data:`DEFAULT_CUTOUT_ARCMIN` (30') cutout on that
        plate, so the whole cutout centred on the position is on the scan:
        529.5 px on the 25.28-um scans (1.70"/px), 891-893 px on the 15-um
        scans (1.01"/px).  ``0`` accepts any position on the scan.

    Returns
    -------
    list of PlateRecord
        Sorted by angular distance from the plate centre, then region.
    """
    ra_f, dec_f = _check_position(ra, dec)
    if margin_px is not None and (not np.isfinite(margin_px) or margin_px < 0):
        raise ValueError(f"margin_px must be None or a finite number >= 0, got {margin_px!r}")
    sep = _centre_separations(ra_f, dec_f)
    recs = _records()
    order = sorted((float(sep[i]), recs[i].region, i) for i in np.flatnonzero(sep < _SEARCH_RADIUS_DEG))
    out = []
    for _, _, i in order:
        plate = recs[i]
        try:
            x, y = plate.solution().sky_to_pix(ra_f, dec_f)
        except RuntimeError:
            continue
        if margin_px is None:
            mx, my = _half_cutout_px(plate, DEFAULT_CUTOUT_ARCMIN)
        else:
            mx = my = float(margin_px)
        n1, n2 = plate.naxis1, plate.naxis2
        if 0.5 + mx <= x <= n1 + 0.5 - mx and 0.5 + my <= y <= n2 + 0.5 - my:
            out.append(plate)
    return out


def covering_plate(ra: float, dec: float, margin_px: float | None = None) -> PlateRecord:
    """The plate, among those covering a position, whose centre is nearest it.

    See :func:`covering_plates` for what "covering" means and for
    ``margin_px`` (default: a whole 30' cutout centred on the position fits
    on the scan).  Some of the sky has no covering scan: the four POSS-I
    fields missing from DSS1's POSS-I E set (XE001 at the pole, XE722,
    XE853, XE876) and a few corner gaps between plates: 0.6% of the sky
    north of Dec -30 with the default margin, 0.5% with ``margin_px=0``.

    Raises
    ------
    LookupError
        Naming the position when no POSS-I E plate covers it (POSS-I E
        reaches down to Dec ~ -33 deg).
    ValueError
        For a non-finite position or a Dec outside [-90, 90].
    """
    plates = covering_plates(ra, dec, margin_px)
    if plates:
        return plates[0]
    ra_f, dec_f = _check_position(ra, dec)
    sep = _centre_separations(ra_f, dec_f)
    nearest = _records()[int(np.argmin(sep))]
    margin = f"{margin_px:g} px" if margin_px is not None else f"{DEFAULT_CUTOUT_ARCMIN:g}' cutout"
    raise LookupError(
        f"no POSS-I E plate covers RA={ra_f:.6f} Dec={dec_f:+.6f} with a {margin} margin "
        f"(nearest plate centre: {nearest.region}, {float(np.min(sep)):.2f} deg away)"
    )

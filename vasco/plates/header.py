"""Reading DSS headers, the POSS-I E check, and plate epochs.

* :func:`read_fits_header` reads a header and repairs, silently, only the
  known nonstandard card of old DSS cutouts (``SKEW`` written as an unquoted
  pair of numbers), which astropy would otherwise report with a
  ``VerifyWarning`` on first use.
* :func:`check_poss1e` decides whether a header belongs to a POSS-I E plate
  (the only survey VASCO accepts).
* :func:`parse_plate_epoch` turns ``DATE-OBS`` (ISO or the old ``dd/mm/yy``
  form plus ``UT``) into a decimal Julian year.
* :func:`plate_dates` records both dates of a plate (the cutout header's and
  the shipped plate table's), chooses one by an explicit rule, and gives the
  mid-exposure epoch.

Plate dates.  ``DATE-OBS`` (with ``UT``/``TIME-OBS`` in old headers) is
taken as the UT **start** of the exposure: that is the FITS convention for
``DATE-OBS`` and nothing in the DSS headers says otherwise (their comments
read "UT date/time of observation"; the full-plate ``OBSHA`` cannot tell a
start from a mid-exposure time, see :func:`plate_dates`).  ``EXPOSURE`` is
in minutes (the DSS comment: "Exposure time minutes"; 50.0 on most POSS-I E
plates).  The mid-exposure epoch, where a moving object's trail is centred
and what proper motions and SkyBoT use, is ``start + EXPOSURE / 2``.
Old (GetImage-era) cutout headers and the full-plate headers of the same
plate can disagree: plate XE133 is ``24/04/55 06:58`` UT in the M101 cutout
and ``1955-04-23T07:37`` in the full-plate header.

Epochs: ``Time(iso, scale="tt").jyear`` everywhere.  The plate dates are UT,
but astropy (ERFA) warns that UTC before 1960 is "dubious"; reading the same
date label on the TT scale changes the epoch by ~30 s (1e-6 yr), far below
anything a plate epoch is used for, and the shipped plate table is built
with the same function.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from os import PathLike
from typing import Any

from astropy.io import fits
from astropy.time import Time

__all__ = [
    "DATE_SOURCES",
    "HeaderCheck",
    "PlateDates",
    "REJECT_NON_POSS",
    "REJECT_NO_PLATE_ID",
    "check_poss1e",
    "iso_to_jyear",
    "parse_date_obs",
    "parse_plate_epoch",
    "plate_dates",
    "read_fits_header",
]

REJECT_NON_POSS = "REJECT_NON_POSS"
REJECT_NO_PLATE_ID = "REJECT_NO_PLATE_ID"
POSS1E_SURVEY = "POSSI-E"

#: Cards that old DSS headers write in a nonstandard form and that
#: :func:`read_fits_header` repairs silently.  ``SKEW`` is written as
#: ``SKEW    = -4.53E-01, -5.19E-01 /Measure of skew``; astropy turns it into
#: a string card.  It carries no information VASCO uses.
TOLERATED_NONSTANDARD_CARDS = frozenset({"SKEW"})

_ISO_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
_ISO_DATETIME = re.compile(r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2}(?:\.\d*)?))?$")
_OLD_DATE = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{2})$")
_TIME = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2}(?:\.\d*)?))?$")


def read_fits_header(path: str | PathLike[str], ext: int | str = 0) -> fits.Header:
    """Read one HDU's header, repairing the known nonstandard DSS cards.

    Parameters
    ----------
    path : path-like
        FITS file.
    ext : int or str
        HDU index or name.

    Returns
    -------
    astropy.io.fits.Header
        The header, with the cards named in :data:`TOLERATED_NONSTANDARD_CARDS`
        fixed (``verify('silentfix')``) so that using the header (``WCS``,
        ``tostring``, ``repr``) raises no ``VerifyWarning`` for them.  Any
        other nonstandard card is left alone and warns as usual.
    """
    header = fits.getheader(path, ext)
    for card in header.cards:
        if card.keyword in TOLERATED_NONSTANDARD_CARDS:
            card.verify("silentfix")
    return header


def _text(header: Mapping[str, Any] | Any, key: str) -> str | None:
    """Stripped string value of ``key``, or None when absent or blank."""
    try:
        if key not in header:
            return None
        value = header[key]
    except (KeyError, TypeError):
        return None
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def julian_date(epoch: float) -> float:
    """Julian date of a decimal Julian-year epoch (J2000.0 is JD 2451545.0; 365.25 days a year)."""
    return 2451545.0 + (float(epoch) - 2000.0) * 365.25


def iso_to_jyear(iso: str) -> float:
    """Decimal Julian year of an ISO date or date-time (``Time(iso, scale='tt').jyear``).

    Raises
    ------
    ValueError
        Naming the value if astropy cannot parse it.
    """
    try:
        return float(Time(iso, format="isot" if "T" in iso else "iso", scale="tt").jyear)
    except ValueError as exc:
        raise ValueError(f"cannot parse plate date {iso!r}: {exc}") from None


def parse_date_obs(value: str, ut: str | None = None) -> str:
    """Normalise a DSS ``DATE-OBS`` (plus optional ``UT``) to an ISO date-time.

    Parameters
    ----------
    value : str
        ``'1952-08-21T10:35:00'``, ``'1952-08-21'`` or the old form
        ``'dd/mm/yy'`` (``'24/04/55'``; the year is 19yy).
    ut : str, optional
        Time of day ``'hh:mm[:ss.s]'`` (the ``UT`` keyword of old headers),
        used when ``value`` has no time part.

    Returns
    -------
    str
        ``'YYYY-MM-DDThh:mm:ss.sss'`` (astropy ``isot``).

    Raises
    ------
    ValueError
        Naming the value when it is not one of these forms or not a valid
        calendar date.
    """
    raw = str(value).strip()
    time_part: str | None = None
    if m := _ISO_DATETIME.match(raw):
        iso = raw
    elif m := _ISO_DATE.match(raw):
        iso = raw
        time_part = ut
    elif m := _OLD_DATE.match(raw):
        day, month, yy = (int(g) for g in m.groups())
        iso = f"19{yy:02d}-{month:02d}-{day:02d}"
        time_part = ut
    else:
        raise ValueError(f"cannot parse DATE-OBS {raw!r}: expected 'YYYY-MM-DD[Thh:mm:ss]' or 'dd/mm/yy'")
    if time_part is not None and str(time_part).strip():
        t = str(time_part).strip()
        tm = _TIME.match(t)
        if not tm:
            raise ValueError(f"cannot parse UT {t!r} (with DATE-OBS {raw!r}): expected 'hh:mm[:ss]'")
        hh, mm, ss = int(tm.group(1)), int(tm.group(2)), float(tm.group(3) or 0.0)
        iso = f"{iso}T{hh:02d}:{mm:02d}:{ss:06.3f}"
    try:
        fmt = "isot" if "T" in iso else "iso"
        return str(Time(iso, format=fmt, scale="tt").isot)
    except ValueError as exc:
        raise ValueError(f"cannot parse DATE-OBS {raw!r}: {exc}") from None


def parse_plate_epoch(header: Mapping[str, Any] | Any) -> float:
    """Plate epoch (decimal Julian year) of a DSS header.

    From ``DATE-OBS`` (see :func:`parse_date_obs`; ``UT`` or ``TIME-OBS`` give
    the time of day when ``DATE-OBS`` has none).  When ``DATE-OBS`` is absent
    or blank, the epoch of the plate named by ``REGION`` (or ``PLTLABEL``) in
    the shipped POSS-I E table.  The ``EPOCH`` keyword of old headers is not
    used (it is a calendar-year fraction stored in single precision).

    Raises
    ------
    ValueError
        Naming the value when ``DATE-OBS`` cannot be parsed, or when there is
        neither ``DATE-OBS`` nor a known plate.
    """
    date_obs = _text(header, "DATE-OBS")
    if date_obs is not None:
        ut = _text(header, "UT") or _text(header, "TIME-OBS")
        return iso_to_jyear(parse_date_obs(date_obs, ut))
    from vasco.plates.table import find_plate

    region = _text(header, "REGION")
    label = _text(header, "PLTLABEL")
    for name in (region, label):
        if name is not None:
            plate = find_plate(name)
            if plate is not None:
                return plate.epoch
    raise ValueError(
        f"header has no DATE-OBS and its plate (REGION={region!r}, PLTLABEL={label!r}) "
        "is not in the POSS-I E plate table"
    )


@dataclass(frozen=True)
class HeaderCheck:
    """Outcome of :func:`check_poss1e`.

    Attributes
    ----------
    ok : bool
        True when the header is from a POSS-I E plate.
    reason : str or None
        None when accepted, else a token: ``REJECT_NON_POSS`` (another survey,
        or a plate not in the POSS-I E table) or ``REJECT_NO_PLATE_ID``
        (neither ``SURVEY``, ``REGION`` nor ``PLTLABEL``).
    region, label : str or None
        Plate region (``REGION``) and label (``PLTLABEL``), completed from the
        plate table when the header lacks one.
    date_obs : str or None
        ISO date-time of the exposure (accepted headers).
    epoch : float or None
        Decimal Julian year of the exposure (accepted headers).
    detail : str
        Human-readable explanation.
    """

    ok: bool
    reason: str | None
    region: str | None
    label: str | None
    date_obs: str | None
    epoch: float | None
    detail: str = ""


def _reject(reason: str, region: str | None, label: str | None, detail: str) -> HeaderCheck:
    return HeaderCheck(False, reason, region, label, None, None, detail)


def check_poss1e(header: Mapping[str, Any] | Any) -> HeaderCheck:
    """Accept a DSS header only if it comes from a POSS-I E (red) plate.

    Accepted when ``SURVEY`` is ``'POSSI-E'`` (spaces ignored) or, for old
    headers without ``SURVEY``, when ``REGION`` and/or ``PLTLABEL`` name a plate
    of the shipped POSS-I E table (both the same plate when both are given).

    Parameters
    ----------
    header : astropy.io.fits.Header or mapping

    Returns
    -------
    HeaderCheck
        With ``date_obs`` and ``epoch`` filled in when accepted.

    Raises
    ------
    ValueError
        If an accepted header's ``DATE-OBS`` cannot be parsed.
    """
    from vasco.plates.table import find_plate

    survey = _text(header, "SURVEY")
    region = _text(header, "REGION")
    label = _text(header, "PLTLABEL")
    if survey is not None:
        if survey.replace(" ", "").upper() != POSS1E_SURVEY:
            return _reject(REJECT_NON_POSS, region, label, f"SURVEY={survey!r} is not {POSS1E_SURVEY!r}")
        detail = f"SURVEY={survey!r}"
    else:
        if region is None and label is None:
            return _reject(REJECT_NO_PLATE_ID, None, None, "header has none of SURVEY, REGION, PLTLABEL")
        by_region = find_plate(region, by="region") if region is not None else None
        by_label = find_plate(label, by="label") if label is not None else None
        if region is not None and by_region is None:
            return _reject(REJECT_NON_POSS, region, label, f"REGION={region!r} is not a POSS-I E plate")
        if label is not None and by_label is None:
            return _reject(REJECT_NON_POSS, region, label, f"PLTLABEL={label!r} is not a POSS-I E plate")
        if by_region is not None and by_label is not None and by_region.region != by_label.region:
            return _reject(
                REJECT_NON_POSS,
                region,
                label,
                f"REGION={region!r} is plate {by_region.label}, but PLTLABEL={label!r} is plate {by_label.region}",
            )
        plate = by_region or by_label
        assert plate is not None
        region, label = plate.region, plate.label
        detail = f"no SURVEY; plate {region}/{label} is in the POSS-I E table"
    date_raw = _text(header, "DATE-OBS")
    if date_raw is not None:
        parsed = parse_date_obs(date_raw, _text(header, "UT") or _text(header, "TIME-OBS"))
        date_obs: str | None = parsed
        epoch = iso_to_jyear(parsed)
    else:
        epoch = parse_plate_epoch(header)
        plate = find_plate(region) if region is not None else None
        date_obs = plate.date_obs if plate is not None else None
    return HeaderCheck(True, None, region, label, date_obs, epoch, detail)


#: The date rules of :func:`plate_dates` (``plates.date_source``).
DATE_SOURCES: tuple[str, ...] = ("table", "header", "epochs")

_DAY_PER_JYEAR = 365.25


@dataclass(frozen=True)
class PlateDates:
    """Both dates of a tile's plate, the one used, and the mid-exposure epoch.

    Attributes
    ----------
    date_obs_header : str or None
        The cutout header's ``DATE-OBS`` (+ ``UT``), ISO; None when absent.
    date_obs_table : str or None
        The shipped plate table's date (the full-plate header's
        ``DATE-OBS``); None when the plate is not in the table.
    date_obs : str or None
        The date used (exposure start, ISO).
    date_rule : str
        Which date was used and why, e.g. ``'table (plates.date_source)'``.
    date_conflict_hours : float or None
        ``|header - table|`` in hours (None unless both are known).
    date_conflict : bool
        True when ``date_conflict_hours`` exceeds the tolerance.
    exposure_min : float or None
        Exposure length in minutes (``EXPOSURE`` of the header, else of the
        plate table); None when neither has it.
    epoch : float or None
        Decimal Julian year of ``date_obs`` (exposure start).
    epoch_mid : float or None
        Decimal Julian year of mid-exposure, ``epoch + exposure / 2`` (equal
        to ``epoch`` when the exposure is unknown).
    """

    date_obs_header: str | None
    date_obs_table: str | None
    date_obs: str | None
    date_rule: str
    date_conflict_hours: float | None
    date_conflict: bool
    exposure_min: float | None
    epoch: float | None
    epoch_mid: float | None

    def as_dict(self) -> dict[str, Any]:
        """The fields as a plain dict (the keys of ``tile.json``'s ``plate`` block)."""
        return {
            "date_obs_header": self.date_obs_header,
            "date_obs_table": self.date_obs_table,
            "date_obs": self.date_obs,
            "date_rule": self.date_rule,
            "date_conflict_hours": self.date_conflict_hours,
            "date_conflict": self.date_conflict,
            "exposure_min": self.exposure_min,
            "epoch": self.epoch,
            "epoch_mid": self.epoch_mid,
        }


def _positive_float(value: Any) -> float | None:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if out > 0 and out == out and out != float("inf") else None


def hours_between(iso_a: str, iso_b: str) -> float:
    """Absolute difference of two ISO date-times, in hours."""
    return abs(iso_to_jyear(iso_a) - iso_to_jyear(iso_b)) * _DAY_PER_JYEAR * 24.0


def plate_dates(
    header: Mapping[str, Any] | Any,
    region: str | None,
    date_source: str = "table",
    verdict: Mapping[str, Any] | None = None,
    conflict_hours: float = 1.0,
) -> PlateDates:
    """Record a plate's two dates and choose the one to use.

    Parameters
    ----------
    header : astropy.io.fits.Header or mapping
        The cutout header (its ``DATE-OBS``, ``UT``/``TIME-OBS``,
        ``EXPOSURE``).
    region : str or None
        The plate (as :func:`check_poss1e` found it); its row of the shipped
        plate table gives the table date and, when the header has none, the
        exposure.
    date_source : {'table', 'header', 'epochs'}
        The rule (``plates.date_source``).  ``'table'``: the plate table's
        date (the archive's full-plate header, one value per plate), the
        header's when the plate has none.  ``'header'``: the cutout
        header's, the table's when the header has none.  ``'epochs'``: the
        date the sky chose (``verdict``, from ``vasco epochs``) when it
        chose one, else as ``'table'``.
    verdict : mapping, optional
        This plate's entry of ``epochs.json`` (``decided``, ``date_obs``,
        ``winner``, ``n_hits``); used only with ``'epochs'``.
    conflict_hours : float
        Tolerance beyond which the two dates are flagged as conflicting.

    Returns
    -------
    PlateDates

    Raises
    ------
    ValueError
        For an unknown rule, or a ``DATE-OBS``/``UT`` that cannot be parsed
        (naming the value).

    Notes
    -----
    ``DATE-OBS`` is read as the exposure start (see the module docstring).
    The full-plate headers' ``OBSHA`` cannot settle it: a sidereal time
    repeats 3.9 min earlier each day, so it neither tells start from
    mid-exposure within the scatter seen across the 932 plates nor one day
    from the next.
    """
    from vasco.plates.table import find_plate

    if date_source not in DATE_SOURCES:
        raise ValueError(f"plates.date_source {date_source!r}: must be one of {list(DATE_SOURCES)}")
    raw = _text(header, "DATE-OBS")
    from_header = parse_date_obs(raw, _text(header, "UT") or _text(header, "TIME-OBS")) if raw else None
    plate = find_plate(region, by="region") if region else None
    from_table = str(Time(plate.date_obs, format="isot", scale="tt").isot) if plate is not None else None
    conflict = hours_between(from_header, from_table) if from_header and from_table else None
    exposure = _positive_float(header.get("EXPOSURE") if hasattr(header, "get") else None)
    if exposure is None and plate is not None:
        exposure = _positive_float(plate.header().get("EXPOSURE"))

    def pick(first: str) -> tuple[str | None, str]:
        order = [("table", from_table), ("header", from_header)]
        if first == "header":
            order.reverse()
        for name, value in order:
            if value is not None:
                why = "" if name == first else f"; no {first} date"
                return value, f"{name} (plates.date_source={date_source}{why})"
        return None, f"none (plates.date_source={date_source}; neither header nor table has a date)"

    if date_source == "epochs":
        used: str | None
        if verdict and verdict.get("decided") and verdict.get("date_obs"):
            used = str(Time(str(verdict["date_obs"]), format="isot", scale="tt").isot)
            rule = (
                f"epochs (plates.date_source=epochs: the sky chose {verdict.get('winner')}, "
                f"{verdict.get('n_hits')} asteroid hits)"
            )
        else:
            used, rule = pick("table")
            rule = rule.replace(")", "; no decided epochs verdict)", 1) if used else rule
    else:
        used, rule = pick(date_source)
    epoch = iso_to_jyear(used) if used else None
    epoch_mid = (epoch + (exposure or 0.0) / 2.0 / (_DAY_PER_JYEAR * 1440.0)) if epoch is not None else None
    return PlateDates(
        date_obs_header=from_header,
        date_obs_table=from_table,
        date_obs=used,
        date_rule=rule,
        date_conflict_hours=None if conflict is None else round(conflict, 4),
        date_conflict=bool(conflict is not None and conflict > conflict_hours),
        exposure_min=exposure,
        epoch=epoch,
        epoch_mid=epoch_mid,
    )

"""Known solar-system objects in a cone at an epoch: the IMCCE SkyBoT cone search.

:func:`query_skybot` asks SkyBoT's ``conesearch.php`` (GET,
``https://ssp.imcce.fr/webservices/skybot/api/conesearch.php``) which
asteroids, planets and comets were within a cone at an epoch, seen from an
observatory (IAU code; Palomar is ``675``).  The request is the one
astroquery's :class:`astroquery.imcce.SkybotClass` builds
(``cone_search_async(..., get_query_payload=True)``): ``-ra``, ``-dec`` and
``-rd`` in degrees, ``-ep`` the epoch as a Julian date (UTC), ``-loc`` the
observer, ``-filter`` the largest position uncertainty kept (arcsec, at most
120), ``-objFilter`` three 0/1 digits (asteroids, planets, comets),
``-refsys=EQJ2000``, ``-output`` and ``-mime``; VASCO adds ``-from=vasco``
and takes ``-mime``/``-output`` from :class:`SkybotConfig`.  It is sent
through :class:`vasco.sources.http.HttpClient` (timeouts, retries, backoff,
Retry-After, size cap).

Answers:

* An **empty body** (no byte, or only blanks) in a complete HTTP 200 answer
  (its end known: ``Content-Length`` given, or a chunked body whose closing
  chunk arrived) means "no object in the field": an empty result, logged at
  INFO.  This is what the current service does: the maintainers of
  lightkurve report that SkyBoT at ``ssp.imcce.fr`` "returns empty content"
  when a query has no result (lightkurve PR #1556, April 2026, for the
  text output it asks for; whether ``-mime=votable`` answers the same way
  is not verified: no public report found).  An empty body whose end cannot be
  told from a dropped connection (neither header) stays
  ``FAIL_SKYBOT_EMPTY``; a body cut short is ``FAIL_SKYBOT_TRUNCATED``
  (:mod:`vasco.sources.http`).
* VOTable (``-mime=votable``, the default): a TABLE with the fields ``Num``
  (number, ``-`` when unnumbered), ``Name``, ``RA`` (``hh mm ss.ssss``),
  ``DEC`` (``+dd mm ss.sss``), ``Class``, ``Mv``, ``ErrPos`` (arcsec), ``d``
  (arcsec from the centre), ``dRAcosDec`` and ``dDEC`` (arcsec/h), ... and
  the hidden ``_RAJ2000``/``_DECJ2000`` in degrees (used when present);
  the fields as in the IMCCE answer astroquery records for its tests
  (``astroquery/imcce/tests/data/skybot_query.vot``).  A TABLE with no row
  is an empty result (astroquery's ``SkybotClass._parse_result`` reads a
  0-row table as "no objects" too).  The older "no object" answer,
  ``<INFO name="QUERY_STATUS" value="ERROR">No solar system object was
  found in the requested FOV</INFO>``, is still read as an empty result;
  any other ``QUERY_STATUS=ERROR`` is ``FAIL_SKYBOT_ERROR``.
* Text (``-mime=text``): ``# Flag: N`` first (``0``: no object, an empty
  result; ``1``: objects; negative: an error), ``# Ticket: ...``, a header
  ``# Num | Name | RA(h) | DE(deg) | Class | Mv | Err(arcsec) | d(arcsec) |
  ...`` and one `` | ``-separated line per object (as quoted in astroquery
  issue #3119 and lightkurve issues #1396/#1417).

Concurrency: the new endpoint limits simultaneous queries (about 2, as the
lightkurve maintainers found, issue #1555, April 2026).  At most
:data:`SKYBOT_MAX_CONCURRENCY` calls run at once in one process (a
semaphore here), and the survey flow's Prefect limit ``vasco-skybot`` is
set to at most that many whatever ``catalogs.service_concurrency`` says
(:func:`tasks.tile_tasks.service_limits`).

Failures are :class:`SourceError` with ``FAIL_SKYBOT_*`` tokens: the
transport ones of :mod:`vasco.sources.http`, ``EMPTY`` (an empty body of
unknown end), ``HTML``, ``NOT_VOTABLE``, ``BAD_VOTABLE``, ``ERROR`` (the
service's own error), ``BAD_ANSWER`` (rows that cannot be read).  No
answer is never an empty list of objects.

URL: the ``base_url`` argument, else ``$VASCO_SKYBOT_URL``, else
``SkybotConfig.base_url``.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import threading
from collections.abc import Mapping

import numpy as np
import pandas as pd
from astropy.io import votable

from vasco.sources.config import SkybotConfig
from vasco.sources.http import HttpClient, SourceError
from vasco.sources.vizier import check_cone

__all__ = [
    "SKYBOT_URL_ENV",
    "SKYBOT_MAX_CONCURRENCY",
    "SKYBOT_COLUMNS",
    "EPOCH_MIN_JD",
    "EPOCH_MAX_JD",
    "PALOMAR",
    "skybot_url",
    "query_skybot",
    "parse_skybot_answer",
]

SKYBOT_URL_ENV = "VASCO_SKYBOT_URL"
SERVICE = "SKYBOT"
#: Most SkyBoT queries at once (the service's limit; also caps the survey's Prefect limit).
SKYBOT_MAX_CONCURRENCY = 2
_SLOTS = threading.BoundedSemaphore(SKYBOT_MAX_CONCURRENCY)
log = logging.getLogger(__name__)
PALOMAR = "675"
#: Epochs SkyBoT can compute (its documented limits: 1889-11-13 12h .. 2060-03-21 12h).
EPOCH_MIN_JD = 2411320.0
EPOCH_MAX_JD = 2473540.0
#: Largest cone SkyBoT is asked for here (astroquery clips larger ones to 10 deg).
MAX_RADIUS_DEG = 10.0
#: Columns of every answer, in this order.
SKYBOT_COLUMNS: tuple[str, ...] = (
    "Num",
    "Name",
    "ra",
    "dec",
    "Class",
    "Mv",
    "ErrPos",
    "sep_arcsec",
    "dRAcosDec",
    "dDEC",
    "epoch_jd",
)
_NO_OBJECT = re.compile(r"no\s+solar\s+system\s+object", re.IGNORECASE)
_FLAG = re.compile(r"^#\s*Flag\s*:\s*(-?\d+)", re.IGNORECASE)
_OBSERVER = re.compile(r"^[A-Za-z0-9@._\-]{1,32}$")
# Service column -> our column, for either answer format (VOTable names, text headers).
_ALIASES: dict[str, tuple[str, ...]] = {
    "Num": ("Num",),
    "Name": ("Name",),
    "RA": ("RA",),
    "DEC": ("DEC", "DE"),
    "Class": ("Class",),
    "Mv": ("Mv", "V"),
    "ErrPos": ("ErrPos", "Err", "posunc"),
    "d": ("d", "centerdist"),
    "dRAcosDec": ("dRAcosDec", "dRA"),
    "dDEC": ("dDEC",),
    "_RAJ2000": ("_RAJ2000",),
    "_DECJ2000": ("_DECJ2000",),
}


def skybot_url(base_url: str | None = None, config: SkybotConfig | None = None) -> str:
    """The SkyBoT cone-search endpoint to use (argument, ``$VASCO_SKYBOT_URL``, configuration)."""
    return base_url or os.environ.get(SKYBOT_URL_ENV, "").strip() or (config or SkybotConfig()).base_url


def _empty(epoch_jd: float) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "Num": pd.Series(dtype="Int64"),
            "Name": pd.Series(dtype=object),
            "ra": pd.Series(dtype=np.float64),
            "dec": pd.Series(dtype=np.float64),
            "Class": pd.Series(dtype=object),
            "Mv": pd.Series(dtype=np.float64),
            "ErrPos": pd.Series(dtype=np.float64),
            "sep_arcsec": pd.Series(dtype=np.float64),
            "dRAcosDec": pd.Series(dtype=np.float64),
            "dDEC": pd.Series(dtype=np.float64),
            "epoch_jd": pd.Series(dtype=np.float64),
        }
    )
    frame.attrs["epoch_jd"] = epoch_jd
    return frame


def _sexagesimal(text: object, hours: bool) -> float:
    """``'05 25 12.7657'`` (hours) or ``'-00 29 25.081'`` (degrees) in degrees; NaN if unreadable."""
    s = str(text).strip().replace(":", " ")
    parts = s.split()
    if not parts or len(parts) > 3:
        return float("nan")
    try:
        values = [float(p) for p in parts]
    except ValueError:
        return float("nan")
    sign = -1.0 if parts[0].startswith("-") else 1.0
    values += [0.0] * (3 - len(values))
    whole = abs(values[0]) + values[1] / 60.0 + values[2] / 3600.0
    return sign * whole * (15.0 if hours else 1.0)


def _number(value: object) -> int | None:
    s = str(value).strip()
    return int(s) if s.isdigit() else None


def _column(raw: pd.DataFrame, key: str) -> pd.Series | None:
    for name in _ALIASES[key]:
        if name in raw.columns:
            return raw[name]
    return None


def _floats(series: pd.Series | None, n: int) -> np.ndarray:
    if series is None:
        return np.full(n, np.nan, dtype=np.float64)
    return pd.to_numeric(series, errors="coerce").to_numpy(np.float64)


def _normalise(raw: pd.DataFrame, epoch_jd: float, url: str) -> pd.DataFrame:
    """Our columns from the service's rows (either answer format)."""
    n = len(raw)
    if n == 0:
        return _empty(epoch_jd)
    found = {k: _column(raw, k) for k in ("Name", "RA", "DEC")}
    missing = [k for k, col in found.items() if col is None]
    if missing:
        raise SourceError(
            f"FAIL_{SERVICE}_BAD_ANSWER", f"{url}: answer lacks column(s) {missing}; it has {list(raw.columns)}"
        )
    names = [str(v).strip() for v in found["Name"]]  # type: ignore[union-attr]
    ra = _floats(_column(raw, "_RAJ2000"), n)
    dec = _floats(_column(raw, "_DECJ2000"), n)
    use_sexa = ~(np.isfinite(ra) & np.isfinite(dec))
    if use_sexa.any():
        ra_s = np.array([_sexagesimal(v, hours=True) for v in found["RA"]], dtype=np.float64)  # type: ignore[union-attr]
        dec_s = np.array([_sexagesimal(v, hours=False) for v in found["DEC"]], dtype=np.float64)  # type: ignore[union-attr]
        ra = np.where(use_sexa, ra_s, ra)
        dec = np.where(use_sexa, dec_s, dec)
    bad = ~(np.isfinite(ra) & np.isfinite(dec)) | (np.abs(dec) > 90.0)
    if bad.any():
        name = names[int(np.flatnonzero(bad)[0])]
        raise SourceError(f"FAIL_{SERVICE}_BAD_ANSWER", f"{url}: object {name!r} has no readable position")
    num = _column(raw, "Num")
    cls = _column(raw, "Class")
    numbers = [_number(v) for v in num] if num is not None else [None] * n
    out = pd.DataFrame(
        {
            "Num": pd.array(numbers, dtype="Int64"),
            "Name": pd.Series(names, dtype=object),
            "ra": ra % 360.0,
            "dec": dec,
            "Class": pd.Series([str(v).strip() for v in cls] if cls is not None else [""] * n, dtype=object),
            "Mv": _floats(_column(raw, "Mv"), n),
            "ErrPos": _floats(_column(raw, "ErrPos"), n),
            "sep_arcsec": _floats(_column(raw, "d"), n),
            "dRAcosDec": _floats(_column(raw, "dRAcosDec"), n),
            "dDEC": _floats(_column(raw, "dDEC"), n),
            "epoch_jd": np.full(n, epoch_jd, dtype=np.float64),
        }
    )
    out.attrs["epoch_jd"] = epoch_jd
    return out


def _parse_votable(content: bytes, url: str) -> pd.DataFrame | None:
    """Rows of a VOTable answer; None when SkyBoT says no object is in the field."""
    try:
        vot = votable.parse(io.BytesIO(content), verify="ignore")
        for info in vot.iter_info():
            if str(info.name).upper() == "QUERY_STATUS" and str(info.value).upper() == "ERROR":
                text = str(info.content or "")
                if _NO_OBJECT.search(text):
                    return None
                raise SourceError(f"FAIL_{SERVICE}_ERROR", f"{url}: SkyBoT error: {text or info.value}")
        frames = [t.to_table(use_names_over_ids=True).to_pandas() for t in vot.iter_tables()]
    except SourceError:
        raise
    except Exception as exc:  # astropy raises many kinds on a broken VOTable
        raise SourceError(f"FAIL_{SERVICE}_BAD_VOTABLE", f"{url}: cannot parse the VOTable ({exc})") from exc
    if not frames:
        return pd.DataFrame()
    return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)


def _parse_text(text: str, url: str) -> pd.DataFrame | None:
    """Rows of a text answer; None when its flag says no object is in the field."""
    lines = [ln.rstrip("\r") for ln in text.splitlines() if ln.strip()]
    m = _FLAG.match(lines[0].strip()) if lines else None
    if not m:
        raise SourceError(f"FAIL_{SERVICE}_NOT_VOTABLE", f"{url}: neither a VOTable nor SkyBoT text: {text[:120]!r}")
    flag = int(m.group(1))
    if flag == 0:
        return None
    if flag < 0:
        message = " ".join(ln.lstrip("# ").strip() for ln in lines[1:]) or "no message"
        raise SourceError(f"FAIL_{SERVICE}_ERROR", f"{url}: SkyBoT error (flag {flag}): {message}")
    header = [ln for ln in lines[1:] if ln.startswith("#") and "|" in ln]
    if not header:
        raise SourceError(f"FAIL_{SERVICE}_BAD_ANSWER", f"{url}: text answer without a column header")
    names = [re.sub(r"\(.*\)$", "", h.strip()).strip() for h in header[-1].lstrip("#").split(" | ")]
    rows = []
    for ln in lines[1:]:
        if ln.startswith("#"):
            continue
        values = [v.strip() for v in ln.split(" | ")]
        if len(values) != len(names):
            raise SourceError(
                f"FAIL_{SERVICE}_BAD_ANSWER",
                f"{url}: a row has {len(values)} fields where the header has {len(names)} (cut short?): {ln[:120]!r}",
            )
        rows.append(values)
    if not rows:
        raise SourceError(f"FAIL_{SERVICE}_BAD_ANSWER", f"{url}: flag {flag} (objects found) but no object rows")
    return pd.DataFrame(rows, columns=names)


def _complete(headers: Mapping[str, str] | None) -> bool:
    """Whether the answer's end was announced (``Content-Length``) or closed (chunked)."""
    if not headers:
        return False
    low = {str(k).lower(): str(v) for k, v in headers.items()}
    if "chunked" in low.get("transfer-encoding", "").lower():
        return True
    return low.get("content-length", "").strip().isdigit()


def parse_skybot_answer(
    content: bytes, epoch_jd: float, url: str = "SkyBoT", *, headers: Mapping[str, str] | None = None
) -> pd.DataFrame:
    """Objects of one SkyBoT cone-search answer (VOTable or text), in our columns.

    Parameters
    ----------
    content : bytes
        The answer's body (read whole: a body shorter than its
        ``Content-Length`` or a chunked body without its closing chunk has
        already failed in :mod:`vasco.sources.http`).
    epoch_jd : float
        The epoch asked for (copied to ``epoch_jd``).
    url : str
        Named in error messages.
    headers : mapping, optional
        The answer's HTTP headers: an empty body is "no object" only when
        they show the answer complete (``Content-Length``, or
        ``Transfer-Encoding: chunked``).

    Returns
    -------
    pandas.DataFrame
        :data:`SKYBOT_COLUMNS`; empty when SkyBoT found no object.

    Raises
    ------
    SourceError
        ``FAIL_SKYBOT_EMPTY``, ``HTML``, ``NOT_VOTABLE``, ``BAD_VOTABLE``,
        ``ERROR``, ``BAD_ANSWER``.
    """
    if not content.strip():
        if not _complete(headers):
            raise SourceError(
                f"FAIL_{SERVICE}_EMPTY",
                f"{url}: empty answer with neither Content-Length nor chunked framing "
                "(cannot tell 'no object' from a dropped connection)",
            )
        log.info("%s: empty answer (complete, %d bytes): no solar-system object in the field", url, len(content))
        return _empty(epoch_jd)
    head = content[:2048].lstrip()
    low = head.lower()
    if head.startswith(b"<?xml") or low.startswith(b"<votable") or low.startswith(b"<vot:votable"):
        raw = _parse_votable(content, url)
    elif head.startswith(b"<"):
        kind = "HTML" if b"<html" in low or b"<!doctype html" in low else "NOT_VOTABLE"
        raise SourceError(f"FAIL_{SERVICE}_{kind}", f"{url}: answer is not a VOTable: {head[:120]!r}")
    else:
        raw = _parse_text(content.decode("utf-8", errors="replace"), url)
    if raw is None:
        return _empty(epoch_jd)
    return _normalise(raw, epoch_jd, url)


def _observer_code(observer: str | int) -> str:
    if isinstance(observer, bool):
        raise ValueError(f"observer={observer!r} is not an IAU observatory code like '675'")
    if isinstance(observer, (int, np.integer)):
        if not 0 <= int(observer) <= 999:
            raise ValueError(f"observer={observer!r} is not an IAU observatory code like '675'")
        return f"{int(observer):03d}"
    text = str(observer).strip()
    if not _OBSERVER.match(text):
        raise ValueError(f"observer={observer!r} is not an IAU observatory code like '675'")
    return text


def _epoch(epoch_jd: float | None) -> float:
    if epoch_jd is None:
        raise ValueError("epoch_jd is missing: SkyBoT needs the plate epoch (a Julian date, UTC)")
    try:
        value = float(epoch_jd)
    except (TypeError, ValueError):
        raise ValueError(f"epoch_jd={epoch_jd!r} is not a Julian date") from None
    if not np.isfinite(value):
        raise ValueError(f"epoch_jd={epoch_jd!r} is missing (not a finite Julian date)")
    if not EPOCH_MIN_JD <= value <= EPOCH_MAX_JD:
        raise ValueError(f"epoch_jd={value} is outside SkyBoT's range [{EPOCH_MIN_JD}, {EPOCH_MAX_JD}]")
    return value


def _payload(
    ra: float, dec: float, radius_deg: float, epoch_jd: float, observer: str, cfg: SkybotConfig
) -> dict[str, str]:
    with contextlib.redirect_stdout(io.StringIO()):
        from astroquery.imcce import Skybot
    built = Skybot.cone_search_async(
        (ra, dec),
        radius_deg,
        epoch_jd,
        location=observer,
        position_error=cfg.position_error_arcsec,
        find_planets=cfg.find_planets,
        find_asteroids=cfg.find_asteroids,
        find_comets=cfg.find_comets,
        get_query_payload=True,
    )
    payload = {str(k): str(v) for k, v in built.items()}
    # Exact decimal text for the numbers (astroquery leaves numpy floats to requests).
    payload["-ra"] = np.format_float_positional(ra, precision=10, trim="-")
    payload["-dec"] = np.format_float_positional(dec, precision=10, trim="-")
    payload["-rd"] = np.format_float_positional(radius_deg, precision=10, trim="-")
    payload["-ep"] = np.format_float_positional(epoch_jd, precision=8, trim="-")
    payload["-filter"] = np.format_float_positional(cfg.position_error_arcsec, trim="-")
    payload["-mime"] = cfg.mime
    payload["-output"] = cfg.output
    payload["-from"] = "vasco"
    return payload


def query_skybot(
    ra: float,
    dec: float,
    radius_deg: float,
    epoch_jd: float | None,
    observer: str | int = PALOMAR,
    *,
    base_url: str | None = None,
    config: SkybotConfig | None = None,
    http: HttpClient | None = None,
) -> pd.DataFrame:
    """Solar-system objects SkyBoT puts in a cone at an epoch, seen from an observatory.

    Parameters
    ----------
    ra, dec, radius_deg : float
        Cone in degrees (J2000/ICRS); radius in (0, 10].
    epoch_jd : float
        Epoch as a Julian date (UTC), e.g. the plate's DATE-OBS; required,
        within SkyBoT's range (1889-2060).
    observer : str or int, optional
        IAU observatory code (``'675'``, Palomar, by default; ``'500'`` is
        geocentric).
    base_url : str, optional
        Overrides ``$VASCO_SKYBOT_URL`` and the configuration.
    config : SkybotConfig, optional
    http : HttpClient, optional
        Client to use (tests inject one); service name set to ``SKYBOT``.

    Returns
    -------
    pandas.DataFrame
        :data:`SKYBOT_COLUMNS`: ``Num`` (Int64, missing when unnumbered),
        ``Name``, ``ra``/``dec`` (float64 deg), ``Class``, ``Mv``,
        ``ErrPos`` (arcsec), ``sep_arcsec`` (from the centre, as SkyBoT
        gives it), ``dRAcosDec``/``dDEC`` (arcsec/h; NaN with
        ``output='object'``), ``epoch_jd``.  Empty (same columns) when
        SkyBoT found no object: that is an answer, not a failure.

    Raises
    ------
    SourceError
        ``FAIL_SKYBOT_*`` when there is no usable answer.
    ValueError
        For a bad cone, a missing or out-of-range epoch or a bad observer code.
    """
    cfg = config or SkybotConfig()
    ra, dec, radius_deg = check_cone(ra, dec, radius_deg, MAX_RADIUS_DEG)
    epoch = _epoch(epoch_jd)
    code = _observer_code(observer)
    if http is None:
        client = HttpClient(SERVICE, cfg.http)
    else:
        client = http.with_service(SERVICE, cfg.http if config is not None else None)
    url = skybot_url(base_url, cfg)
    with _SLOTS:  # the service's own limit on simultaneous queries
        answer = client.fetch("GET", url, params=_payload(ra, dec, radius_deg, epoch, code, cfg))
    return parse_skybot_answer(answer.content, epoch, url, headers=answer.headers)

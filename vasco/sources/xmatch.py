"""Cross-matching our detections with a VizieR catalogue through CDS XMatch.

:func:`xmatch_detections` uploads the detections (``our_id``, ``ra``,
``dec``) in chunks of ``XMatchConfig.chunk_rows`` rows, one job after the
other (CDS bans clients that run jobs in parallel, with HTTP 403), against a
VizieR table known to XMatch (``vizier:I/350/gaiaedr3``,
``vizier:II/349/ps1``...) within a radius, and returns:

* ``matches``: every pair within the radius, as XMatch gives them: ``our_id``,
  ``catalog_id`` (the catalogue's source id), ``angDist`` (arcsec, float64),
  our uploaded position (``our_ra``, ``our_dec``) and the catalogue columns;
* ``unmatched``: the detections with no pair at all, found by anti-join on
  ``our_id`` (never by position).

The request is built by astroquery's :class:`astroquery.xmatch.XMatchClass`
(``query_async(..., get_query_payload=True)``: ``request=xmatch``,
``distMaxArcsec``, ``cat1`` uploaded as CSV with ``colRA1``/``colDec1``,
``cat2``; astroquery checks ``cat2`` against the service's table list, which
this module asks at most once per call, and reuses for
``XMatchConfig.table_list_max_age_s`` within a process) and sent, as a multipart POST with
``RESPONSEFORMAT=csv``, through :class:`vasco.sources.http.HttpClient`
(timeouts, retries on 429/5xx, size cap; tokens ``FAIL_XMATCH_*``; 403 is
``FAIL_XMATCH_HTTP_403`` and never retried).  When a chunk lies within
``cone_area_max_deg``, the job is restricted to the cone around it
(``area=cone``), which spares the service a whole-sky pass.

Table names: :func:`check_tables` asks the service's table list once and
raises ValueError for a name not in it (with the close names it knows), so a
survey can refuse a wrong table before any tile runs.  The list is asked the
way astroquery's ``XMatchClass.get_available_tables`` asks it (verified in
astroquery's ``astroquery/xmatch/core.py``): ``GET <sync url>/tables`` with
``action=getVizieRTableNames`` and ``RESPONSEFORMAT=txt``; the answer is plain
text, one name per line, VizieR tables without the ``vizier:`` prefix
(astroquery compares ``cat2`` minus ``vizier:`` with those lines), ``simbad``
among them (first line of astroquery's recorded answer,
``astroquery/xmatch/tests/data/tables.csv``, 13,329 names recorded in 2014).

One job at a time: a process-wide lock serialises the jobs of every thread.
Across processes the caller must hold a global limit of one (the flow's
Prefect global concurrency limit).

URL: the ``url`` argument, else ``$VASCO_XMATCH_URL``, else
``XMatchConfig.url``, else astroquery's knob ``astroquery.xmatch.conf.url``
(``XMatchClass.URL``), which is set on the astroquery instance used.
"""

from __future__ import annotations

import contextlib
import difflib
import functools
import io
import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import astropy.units as u
import numpy as np
import pandas as pd

from vasco.matching.catalogs import COLUMN_ALIASES
from vasco.matching.crossmatch import angular_separation_arcsec
from vasco.sources.config import XMATCH_DEFAULT_TABLES, XMatchConfig
from vasco.sources.http import HttpClient, SourceError

__all__ = [
    "XMATCH_URL_ENV",
    "XMatchResult",
    "xmatch_base_url",
    "xmatch_detections",
    "available_tables",
    "check_tables",
    "check_configured_tables",
    "forget_table_lists",
    "MAX_DISTANCE_ARCSEC",
]

XMATCH_URL_ENV = "VASCO_XMATCH_URL"
SERVICE = "XMATCH"
MAX_DISTANCE_ARCSEC = 180.0  # the service's limit

_JOB_LOCK = threading.Lock()
# The table lists asked by this process: sync URL -> (time.monotonic() when asked, names).
_TABLE_LISTS: dict[str, tuple[float, list[str]]] = {}
_TABLE_LISTS_LOCK = threading.Lock()


@dataclass(frozen=True)
class XMatchResult:
    """Outcome of :func:`xmatch_detections`."""

    matches: pd.DataFrame
    unmatched: pd.DataFrame
    jobs: int
    catalog: str
    radius_arcsec: float
    url: str = ""


def xmatch_base_url(url: str | None = None, config: XMatchConfig | None = None) -> str:
    """The XMatch sync endpoint to use."""
    chosen = url or os.environ.get(XMATCH_URL_ENV, "").strip() or (config or XMatchConfig()).url
    if not chosen:
        chosen = str(_xmatch_module().conf.url)
    return chosen


def _xmatch_module() -> Any:
    # astroquery.xmatch prints a notice on stdout at import when the optional
    # 'regions' package is missing; VASCO does not use regions.
    with contextlib.redirect_stdout(io.StringIO()):
        import astroquery.xmatch as mod
    return mod


@functools.cache
def _xmatch_class() -> type:
    base: type = _xmatch_module().XMatchClass

    class _XMatchAt(base):
        """astroquery's XMatch at a given URL, its table list fetched politely."""

        def __init__(self, url: str, client: HttpClient, max_age_s: float | None = None):
            super().__init__()
            self.URL = url
            self._client = client
            self._max_age_s = max_age_s
            self._tables: list[str] | None = None

        def get_available_tables(self, *, cache: bool = True) -> list[str]:
            if self._tables is None:
                self._tables = available_tables(self.URL, http=self._client, max_age_s=self._max_age_s)
            return self._tables

    return _XMatchAt


def available_tables(
    url: str | None = None,
    *,
    config: XMatchConfig | None = None,
    http: HttpClient | None = None,
    max_age_s: float | None = None,
) -> list[str]:
    """The table names an XMatch service knows (VizieR ids without ``vizier:``, and ``simbad``).

    Parameters
    ----------
    url : str, optional
        The sync endpoint (see :func:`xmatch_base_url`).
    config : XMatchConfig, optional
    http : HttpClient, optional
        Client to use; service name set to ``XMATCH``.
    max_age_s : float, optional
        Return the list this process asked of this URL within that many
        seconds, if any, instead of asking again.  None: always ask.  Every
        list asked is remembered.

    Returns
    -------
    list of str
        One name per non-blank line of the answer, in its order.

    Raises
    ------
    SourceError
        ``FAIL_XMATCH_*`` when the list cannot be had, or is empty or HTML.
    """
    from astroquery.utils import url_helpers

    cfg = config or XMatchConfig()
    client = HttpClient(SERVICE, cfg.http) if http is None else http.with_service(SERVICE, cfg.http if config else None)
    endpoint = xmatch_base_url(url, cfg)
    if max_age_s is not None and max_age_s > 0:
        with _TABLE_LISTS_LOCK:
            known = _TABLE_LISTS.get(endpoint)
        if known is not None and time.monotonic() - known[0] <= max_age_s:
            return list(known[1])
    list_url = url_helpers.urljoin_keep_path(endpoint, "tables")
    answer = client.fetch("GET", list_url, params={"action": "getVizieRTableNames", "RESPONSEFORMAT": "txt"})
    text = answer.content.decode("utf-8", errors="replace")
    if text.lstrip().startswith("<"):
        raise SourceError(f"FAIL_{SERVICE}_BAD_ANSWER", f"{list_url}: table list is not text: {text[:120]!r}")
    names = [line.strip() for line in text.splitlines() if line.strip()]
    if not names:
        raise SourceError(f"FAIL_{SERVICE}_EMPTY", f"{list_url}: empty table list")
    with _TABLE_LISTS_LOCK:
        _TABLE_LISTS[endpoint] = (time.monotonic(), list(names))
    return names


def forget_table_lists() -> None:
    """Forget the table lists this process remembers (tests: a port reused by another stand-in)."""
    with _TABLE_LISTS_LOCK:
        _TABLE_LISTS.clear()


def check_tables(
    url: str | None,
    tables: Mapping[str, str],
    *,
    config: XMatchConfig | None = None,
    http: HttpClient | None = None,
) -> list[str]:
    """Check that XMatch knows every table of ``tables`` (asks its table list once).

    Parameters
    ----------
    url : str or None
        The sync endpoint; None: ``$VASCO_XMATCH_URL``, the configuration, astroquery's.
    tables : mapping of str to str
        What each name is for (e.g. ``catalogs.xmatch_tables.ps1``) -> XMatch
        table name, with or without ``vizier:``.
    config : XMatchConfig, optional
    http : HttpClient, optional

    Returns
    -------
    list of str
        The service's table list.

    Raises
    ------
    ValueError
        Naming the first unknown table, what it is for, the service, and the
        known names closest to it (same VizieR catalogue first).
    SourceError
        When the list cannot be had.
    """
    names = available_tables(url, config=config, http=http)
    known = set(names)
    for what, table in tables.items():
        bare = table.strip().removeprefix("vizier:")
        if bare in known:
            continue
        catalogue = bare.rsplit("/", 1)[0] + "/" if "/" in bare else bare
        same = sorted(n for n in known if n.startswith(catalogue))[:5]
        close = [n for n in difflib.get_close_matches(bare, names, n=5, cutoff=0.6) if n not in same]
        hint = same + close
        raise ValueError(
            f"{what}: XMatch table {table!r} is not in the table list of {xmatch_base_url(url, config)} "
            f"({len(names)} tables)"
            + (f"; close names: {', '.join('vizier:' + n for n in hint[:8])}" if hint else "; no close name")
        )
    return names


def check_configured_tables(cfg: Any, http: HttpClient | None = None) -> list[str] | None:
    """Check a run's XMatch tables before any work, when its catalogues come from XMatch.

    Parameters
    ----------
    cfg : vasco.config.VascoConfig
        ``catalogs.xmatch_tables`` of the catalogues in ``matching.catalogs``
        are checked with :func:`check_tables` when ``catalogs.source``
        resolves to ``'xmatch'``.
    http : HttpClient, optional

    Returns
    -------
    list of str or None
        The service's table list, or None when the run does not use XMatch.

    Raises
    ------
    ValueError
        An unknown table (see :func:`check_tables`), or a service whose table
        list cannot be read (no tile could get its catalogues either).
    """
    if cfg.catalogs.resolved(cfg.sky) != "xmatch":
        return None
    tables = {f"catalogs.xmatch_tables.{name}": cfg.catalogs.xmatch_tables[name] for name in cfg.matching.catalogs}
    try:
        return check_tables(None, tables, config=cfg.sources.xmatch, http=http)
    except SourceError as exc:
        url = xmatch_base_url(None, cfg.sources.xmatch)
        raise ValueError(f"catalogs.source 'xmatch': cannot read the table list of {url} ({exc})") from exc


def _check_detections(detections: pd.DataFrame) -> pd.DataFrame:
    missing = [c for c in ("our_id", "ra", "dec") if c not in detections.columns]
    if missing:
        raise ValueError(f"detections lack column(s) {missing}; they have {list(detections.columns)[:12]}")
    det = detections[["our_id", "ra", "dec"]].copy()
    if det["our_id"].isna().any():
        raise ValueError("detections have missing our_id values")
    if det["our_id"].duplicated().any():
        dup = det.loc[det["our_id"].duplicated(), "our_id"].iloc[0]
        raise ValueError(f"detections have duplicated our_id values (e.g. {dup!r})")
    det["ra"] = det["ra"].astype(np.float64)
    det["dec"] = det["dec"].astype(np.float64)
    bad = ~np.isfinite(det["ra"]) | ~np.isfinite(det["dec"]) | (det["dec"].abs() > 90)
    if bad.any():
        first = det.loc[bad, "our_id"].iloc[0]
        raise ValueError(f"{int(bad.sum())} detection(s) have no valid position (e.g. our_id={first!r})")
    return det


def _enclosing_cone(ra: np.ndarray, dec: np.ndarray) -> tuple[float, float, float]:
    a, d = np.radians(ra), np.radians(dec)
    v = np.column_stack([np.cos(d) * np.cos(a), np.cos(d) * np.sin(a), np.sin(d)]).sum(axis=0)
    norm = np.linalg.norm(v)
    if norm < 1e-9:
        return 0.0, 0.0, 180.0
    v /= norm
    c_ra = float(np.degrees(np.arctan2(v[1], v[0])) % 360.0)
    c_dec = float(np.degrees(np.arcsin(np.clip(v[2], -1.0, 1.0))))
    r = float(np.max(angular_separation_arcsec(c_ra, c_dec, ra, dec)) / 3600.0)
    return c_ra, c_dec, r


def _pick_id_column(columns: list[str], wanted: str | None, catalog: str) -> str:
    if wanted:
        if wanted not in columns:
            raise SourceError(f"FAIL_{SERVICE}_COLUMNS", f"{catalog}: answer has no column {wanted!r}: {columns}")
        return wanted
    for name in COLUMN_ALIASES["source_id"]:
        if name in columns:
            return name
    raise SourceError(
        f"FAIL_{SERVICE}_COLUMNS",
        f"{catalog}: no source-id column (one of {COLUMN_ALIASES['source_id']}) in the answer: {columns}; "
        "give id_column",
    )


def xmatch_detections(
    detections: pd.DataFrame,
    catalog: str = XMATCH_DEFAULT_TABLES["gaia"],
    radius_arcsec: float = 5.0,
    *,
    chunk_rows: int | None = None,
    url: str | None = None,
    id_column: str | None = None,
    config: XMatchConfig | None = None,
    http: HttpClient | None = None,
) -> XMatchResult:
    """Cross-match detections with a VizieR catalogue through CDS XMatch.

    Parameters
    ----------
    detections : pandas.DataFrame
        Columns ``our_id`` (unique, int or str), ``ra``, ``dec`` (degrees).
    catalog : str
        XMatch name of the catalogue (``vizier:`` is added when missing).
    radius_arcsec : float
        Match radius (at most 180", the service's limit).
    chunk_rows : int, optional
        Rows per job (default ``XMatchConfig.chunk_rows``).
    url : str, optional
        Overrides ``$VASCO_XMATCH_URL`` and the configuration.
    id_column : str, optional
        The catalogue's source-id column in the answer; by default the first
        of ``Source``, ``source_id``, ``objID``, ``objid`` present.
    config : XMatchConfig, optional
    http : HttpClient, optional
        Client to use (tests inject one); service name set to ``XMATCH``.

    Returns
    -------
    XMatchResult
        ``matches`` sorted by (``our_id``, ``angDist``) and ``unmatched``
        (the detections' rows, in their order).

    Raises
    ------
    SourceError
        ``FAIL_XMATCH_*``.
    ValueError
        For bad detections, radius or catalogue name.
    """
    cfg = config or XMatchConfig()
    radius_arcsec = float(radius_arcsec)
    if not (0.0 < radius_arcsec <= MAX_DISTANCE_ARCSEC):
        raise ValueError(f'XMatch radius {radius_arcsec}" is outside (0, {MAX_DISTANCE_ARCSEC:g}]')
    rows = int(chunk_rows if chunk_rows is not None else cfg.chunk_rows)
    if rows < 1:
        raise ValueError(f"chunk_rows must be positive, got {rows}")
    cat2 = catalog if catalog.startswith("vizier:") else f"vizier:{catalog}"
    det = _check_detections(detections)
    if http is None:
        client = HttpClient(SERVICE, cfg.http)
    else:
        client = http.with_service(SERVICE, cfg.http if config is not None else None)
    endpoint = xmatch_base_url(url, cfg)
    xm = _xmatch_class()(endpoint, client, cfg.table_list_max_age_s)
    id_is_text = det["our_id"].dtype == object or pd.api.types.is_string_dtype(det["our_id"])

    pieces: list[pd.DataFrame] = []
    jobs = 0
    for start in range(0, len(det), rows):
        chunk = det.iloc[start : start + rows]
        upload = pd.DataFrame(
            {"our_id": chunk["our_id"].to_numpy(), "our_ra": chunk["ra"].to_numpy(), "our_dec": chunk["dec"].to_numpy()}
        )
        text = upload.to_csv(index=False, float_format="%.10f", lineterminator="\n")
        try:
            payload, kwargs = xm.query_async(
                io.StringIO(text),
                cat2,
                radius_arcsec * u.arcsec,
                colRA1="our_ra",
                colDec1="our_dec",
                get_query_payload=True,
                cache=False,
                RESPONSEFORMAT="csv",
            )
        except ValueError as exc:  # astroquery: cat2 is not in the service's table list
            raise SourceError(f"FAIL_{SERVICE}_UNKNOWN_CATALOG", f"{cat2}: {exc}") from exc
        c_ra, c_dec, c_r = _enclosing_cone(upload["our_ra"].to_numpy(), upload["our_dec"].to_numpy())
        if c_r + radius_arcsec / 3600.0 <= cfg.cone_area_max_deg:
            payload["area"] = "cone"
            payload["coneRA"] = f"{c_ra:.10f}"
            payload["coneDec"] = f"{c_dec:.10f}"
            payload["coneRadiusDeg"] = f"{c_r + 2.0 * radius_arcsec / 3600.0:.10f}"
        with _JOB_LOCK:
            answer = client.fetch("POST", endpoint, data=payload, files=kwargs.get("files"))
        jobs += 1
        pieces.append(_parse_csv(answer.content, endpoint, id_is_text))

    matches = _assemble(pieces, det, cat2, id_column, id_is_text)
    unmatched = detections.loc[~detections["our_id"].isin(matches["our_id"])].reset_index(drop=True)
    return XMatchResult(matches, unmatched, jobs, cat2, radius_arcsec, endpoint)


def _parse_csv(content: bytes, url: str, id_is_text: bool) -> pd.DataFrame:
    head = content[:512].lstrip()
    if head.startswith(b"<"):
        raise SourceError(f"FAIL_{SERVICE}_NOT_CSV", f"{url}: answer is not CSV: {head[:120]!r}")
    if not content.strip():
        raise SourceError(f"FAIL_{SERVICE}_EMPTY", f"{url}: empty answer (not even a CSV header)")
    try:
        table = pd.read_csv(io.BytesIO(content), dtype={"our_id": str} if id_is_text else None)
    except (ValueError, pd.errors.ParserError) as exc:
        raise SourceError(f"FAIL_{SERVICE}_BAD_CSV", f"{url}: cannot parse the CSV answer ({exc})") from exc
    for col in ("angDist", "our_id"):
        if col not in table.columns:
            raise SourceError(f"FAIL_{SERVICE}_COLUMNS", f"{url}: answer has no {col!r} column: {list(table.columns)}")
    return table


def _assemble(
    pieces: list[pd.DataFrame], det: pd.DataFrame, catalog: str, id_column: str | None, id_is_text: bool
) -> pd.DataFrame:
    nonempty = [p for p in pieces if len(p)]
    table = pd.concat(nonempty, ignore_index=True) if nonempty else (pieces[0] if pieces else pd.DataFrame())
    if table.empty and not len(table.columns):
        return pd.DataFrame(
            {
                "our_id": pd.Series(dtype=det["our_id"].dtype),
                "catalog_id": pd.Series(dtype=object),
                "angDist": pd.Series(dtype=np.float64),
            }
        )
    id_col = _pick_id_column(list(table.columns), id_column, catalog)
    if not id_is_text:
        table["our_id"] = table["our_id"].astype(det["our_id"].dtype)
    unknown = ~table["our_id"].isin(det["our_id"])
    if unknown.any():
        raise SourceError(
            f"FAIL_{SERVICE}_BAD_ANSWER",
            f"answer has our_id values we did not upload (e.g. {table.loc[unknown, 'our_id'].iloc[0]!r})",
        )
    table["angDist"] = table["angDist"].astype(np.float64)
    for c in ("our_ra", "our_dec"):
        if c in table.columns:
            table[c] = table[c].astype(np.float64)
    out = table.copy()
    out["catalog_id"] = out[id_col]
    first = ["our_id", "catalog_id", "angDist"]
    out = out[first + [c for c in out.columns if c not in first]]
    return out.sort_values(["our_id", "angDist"], kind="stable").reset_index(drop=True)

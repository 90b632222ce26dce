"""Cone queries on the SuperCOSMOS Science Archive (SSA, WFAU Edinburgh).

The SSA's merged ``Source`` table holds the SuperCOSMOS scans of the
Schmidt surveys, among them POSS-I E north of Dec -17.5 (its ``R1``
columns; south of it the SSA's R1 is the ESO-R survey, so no POSS-I E
plate: :data:`POSS_I_E_DEC_MIN`, as this module has always had it, after
Hambly et al. 2001, MNRAS 326, 1279; not re-checked against the SSA's
``Survey`` table here): an independent digitisation of the plates VASCO
searches, so a POSS-I source that SuperCOSMOS does not see on the same
plate is probably a scan artefact.  :func:`has_r1_measurement` tells the
rows measured on the R1 plate (``objIDR1`` non-zero: the SSA's schema
gives 0 as its default; else a real ``sCorMagR1``).

:func:`query_supercosmos` uses the SSA's freeform SQL form (the
``SSASQL`` servlet, ``http://ssa.roe.ac.uk:8080/ssa/SSASQL``), a two-step
exchange:

1. POST the form fields ``action=freeform``, ``server=amachine`` (the full
   SSA), ``sqlstmt=<SQL>``, ``format=CSV``, ``compress=NONE``, ``rows``
   (rows shown in the HTML summary, at most 100) and ``emailAddress=``
   (empty: the answer comes back in the page).  The answer is an HTML page
   that links the results file (``href="http://ssa.roe.ac.uk/tmp/....csv"``)
   or reports ``<b>SQL Error:</b> ...``;
2. GET the linked CSV: a header line of column names, one line per row.

What is verified, and where from (public material read 2026-12):

* The field names and values: a public copy of the SSA's own "SQL Query
  menu form" JSP (a form posting to ``surveys.roe.ac.uk:8080/ssa/SSASQL``
  with a hidden ``action=freeform``, a ``server`` select of ``amachine``
  (full SSA) / ``pmachine`` (personal SSA), a ``sqlstmt`` textarea,
  ``emailAddress``, ``format`` HTML/CSV/FITS/VOT, ``compress`` NONE/GZIP
  and ``rows``), and public clients that post the same fields (a 2016
  ``SSALookup`` posting ``server=amachine`` with ``action=radial``; 2MPZ
  download scripts posting ``action=freeform``/``server=amachine`` and
  reading ``SQL Error:</b>`` and a ``href=".../tmp/....csv"`` link, one of
  them noting that any other ``action`` is answered "must be a select
  statement").  The WFAU archives' newer servlets (WSA/VSA, astroquery's
  ``astroquery.wfau.BaseWFAUClass``) use ``formaction`` and ``database``
  (and ``programmeID``) instead; the SSA's servlet does not.
* The answer page's row count: not verified for the SSA.  The sibling WSA
  servlet's recorded answers (astroquery's
  ``astroquery/ukidss/tests/data/vo_results.html`` and ``error.html``)
  state it as "(Query returned 9 result rows, ...)" and "(Contains
  <b>9 rows</b>, 4.9 KB)" next to the file link, end with "QUERY
  FINISHED:", and report ``<p class="error"><b>SQL Error:</b> ...``.

So the page is read strictly: the row count only from such an explicit
statement ("Query returned N [result] rows", "Contains N rows"); a page
with a results link is accepted without one (the well-formed CSV then
gives the rows), and a stated count must equal the rows of the file
(``FAIL_SUPERCOSMOS_COUNT_MISMATCH``).  A page with neither a link nor an
explicit count, with contradictory counts, or that states rows but links
no file is ``FAIL_SUPERCOSMOS_UNREADABLE``: never "no rows", since the
SuperCOSMOS veto *removes* a candidate where nothing is found.

The SQL selects the cone with the ``Source`` table's own columns (``dec``
for the index, then the unit vector ``cx, cy, cz`` against the centre's:
exact, and indifferent to RA 0/360 and the poles)::

    SELECT TOP <row_limit + 1> objID, ra, dec, ... FROM Source
    WHERE dec BETWEEN <dec - r> AND <dec + r>
      AND cx*<x0> + cy*<y0> + cz*<z0> >= <cos r>

(negative numbers in parentheses).

Row caps: the SSA writes at most ``nint(15000 / n_columns) x 1000`` rows to
a file; VASCO asks for ``row_limit + 1`` rows (far below that), so more than
``row_limit`` rows means more are there: the cone is split in 4 (as VizieR
cones are, :func:`vasco.sources.vizier.cover_disc`) up to
``max_split_depth`` times, then ``FAIL_SUPERCOSMOS_TRUNCATED``.  Never a
silently cut answer.

The SSA stores no NULLs: missing values are defaults (magnitudes
-99.999995, proper motions -0.99999995e9), returned here as NaN.  A row
with an empty field therefore means a damaged file
(``FAIL_SUPERCOSMOS_BAD_CSV``), and a file that does not end with a line
break was cut short (``FAIL_SUPERCOSMOS_TRUNCATED``).

Failures are :class:`SourceError` with ``FAIL_SUPERCOSMOS_*`` tokens: the
transport ones of :mod:`vasco.sources.http`, ``SQL_ERROR``, ``UNREADABLE``
(no results link and no explicit row count: a busy or error page, or one
this client cannot read), ``COUNT_MISMATCH``, ``HTML`` or ``NOT_CSV`` (the
results link does not give CSV), ``EMPTY``, ``BAD_CSV``, ``COLUMNS``,
``TRUNCATED``.

URL: the ``base_url`` argument, else ``$VASCO_SUPERCOSMOS_URL``, else
``SupercosmosConfig.base_url``.
"""

from __future__ import annotations

import html
import io
import os
import re
import urllib.parse
from collections.abc import Sequence

import numpy as np
import pandas as pd

from vasco.matching.crossmatch import angular_separation_arcsec
from vasco.sources.config import SupercosmosConfig
from vasco.sources.http import HttpClient, SourceError
from vasco.sources.vizier import ConeStats, check_cone, cover_disc

__all__ = [
    "SUPERCOSMOS_URL_ENV",
    "SSA_COLUMNS",
    "POSS_I_E_DEC_MIN",
    "has_r1_measurement",
    "supercosmos_url",
    "cone_sql",
    "file_row_limit",
    "query_supercosmos",
]

SUPERCOSMOS_URL_ENV = "VASCO_SUPERCOSMOS_URL"
SERVICE = "SUPERCOSMOS"
#: South of this declination the SSA has no POSS-I E plate (its R1 there is ESO-R).
POSS_I_E_DEC_MIN = -17.5
MAX_RADIUS_DEG = 2.0
#: Columns of the SSA ``Source`` table asked for by default.
SSA_COLUMNS: tuple[str, ...] = (
    "objID",
    "ra",
    "dec",
    "epoch",
    "sigRA",
    "sigDec",
    "muAcosD",
    "muD",
    "sCorMagB",
    "sCorMagR1",
    "sCorMagR2",
    "sCorMagI",
    "classMagR1",
    "meanClass",
    "objIDR1",
    "Nplates",
)
_IDENT = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
_LINK = re.compile(r"""href\s*=\s*["']([^"']+\.csv(?:\.gz)?)["']""", re.IGNORECASE)
_SQL_ERROR = re.compile(r"SQL\s+Error\s*:?\s*(?:</b>)?\s*([^<]*)", re.IGNORECASE)
# Explicit row-count statements (as the WFAU servlets word them; see the module notes).
_QUERY_COUNT = re.compile(r"Query\s+returned\s+(\d[\d,]*)\s+(?:result\s+)?rows?\b", re.IGNORECASE)
_FILE_COUNT = re.compile(r"Contains\s*(?:<b>\s*)?(\d[\d,]*)\s+rows?\b", re.IGNORECASE)
_INT_COLUMNS = {"objid", "objidb", "objidr1", "objidr2", "objidi", "htmid", "nplates", "meanclass"}


def supercosmos_url(base_url: str | None = None, config: SupercosmosConfig | None = None) -> str:
    """The SSASQL endpoint to use (argument, ``$VASCO_SUPERCOSMOS_URL``, configuration)."""
    return base_url or os.environ.get(SUPERCOSMOS_URL_ENV, "").strip() or (config or SupercosmosConfig()).base_url


def file_row_limit(n_columns: int) -> int:
    """Most rows the SSA writes to a results file for ``n_columns`` columns (its documented rule)."""
    return int(np.floor(15000.0 / n_columns + 0.5)) * 1000


def _num(value: float) -> str:
    text = np.format_float_positional(float(value), unique=True, trim="-")
    return f"({text})" if text.startswith("-") else text


def cone_sql(ra: float, dec: float, radius_deg: float, columns: Sequence[str], top: int) -> str:
    """The SQL of one cone on the SSA ``Source`` table (``TOP top`` rows)."""
    a, d, r = np.radians(ra), np.radians(dec), np.radians(radius_deg)
    x0, y0, z0 = np.cos(d) * np.cos(a), np.cos(d) * np.sin(a), np.sin(d)
    dmin, dmax = max(-90.0, dec - radius_deg), min(90.0, dec + radius_deg)
    return (
        f"SELECT TOP {int(top)} {', '.join(columns)} FROM Source "
        f"WHERE dec BETWEEN {_num(dmin)} AND {_num(dmax)} "
        f"AND cx*{_num(x0)} + cy*{_num(y0)} + cz*{_num(z0)} >= {_num(np.cos(r))}"
    )


def _columns(columns: Sequence[str] | None) -> tuple[str, ...]:
    if columns is not None and isinstance(columns, str):
        raise ValueError(f"columns must be a sequence of column names, got the string {columns!r}")
    cols = list(columns) if columns else list(SSA_COLUMNS)
    for c in cols:
        if not isinstance(c, str) or not _IDENT.match(c):
            raise ValueError(f"SSA column name {c!r} is not a plain SQL identifier")
    out: list[str] = []
    for c in ["objID", "ra", "dec", *cols]:  # SQL names are case-insensitive: one of each
        if c.lower() not in {o.lower() for o in out}:
            out.append(c)
    return tuple(out)


def has_r1_measurement(table: pd.DataFrame) -> np.ndarray:
    """Which SSA ``Source`` rows were measured on the R1 plate (POSS-I E in the north).

    ``objIDR1`` non-zero (the SSA's default for "no R1 detection" is 0) when
    the column is there; otherwise a real ``sCorMagR1`` (the SSA's missing
    default, -99.999995, is read as NaN by :func:`query_supercosmos`).

    Raises
    ------
    ValueError
        When a non-empty table has neither column.
    """
    if len(table) == 0:  # e.g. the empty list of a tile with no candidate left to ask about
        return np.zeros(0, dtype=bool)
    if "objIDR1" in table.columns:
        ids = pd.to_numeric(table["objIDR1"], errors="coerce").to_numpy(np.float64)
        return np.isfinite(ids) & (ids != 0)
    if "sCorMagR1" in table.columns:
        mag = pd.to_numeric(table["sCorMagR1"], errors="coerce").to_numpy(np.float64)
        return np.isfinite(mag) & (mag > -99.0)
    raise ValueError(
        f"the SuperCOSMOS list has no R1 (POSS-I E) measurement column (objIDR1 or sCorMagR1): {list(table.columns)}"
    )


def _counts(pattern: re.Pattern[str], text: str) -> set[int]:
    return {int(m.group(1).replace(",", "")) for m in pattern.finditer(text)}


def _read_page(page: bytes, url: str) -> tuple[int | None, str | None]:
    """The explicit row count (None if not stated) and results-file URL (None if none) of an SSASQL page."""
    text = page.decode("utf-8", errors="replace")
    err = _SQL_ERROR.search(text)
    if err:
        message = html.unescape(err.group(1)).strip() or "no message"
        raise SourceError(f"FAIL_{SERVICE}_SQL_ERROR", f"{url}: SSA SQL error: {message}")
    snippet = " ".join(re.sub(r"<[^>]+>", " ", text).split())[:160]
    query_n, file_n = _counts(_QUERY_COUNT, text), _counts(_FILE_COUNT, text)
    if len(query_n) > 1 or len(file_n) > 1:
        raise SourceError(
            f"FAIL_{SERVICE}_UNREADABLE", f"{url}: the page states several row counts {sorted(query_n | file_n)}"
        )
    if query_n and file_n and file_n != query_n:
        if min(file_n) < min(query_n):
            raise SourceError(
                f"FAIL_{SERVICE}_TRUNCATED",
                f"{url}: the query returned {min(query_n)} rows but the file holds {min(file_n)}",
            )
        raise SourceError(f"FAIL_{SERVICE}_UNREADABLE", f"{url}: the page states {min(query_n)} and {min(file_n)} rows")
    count = min(query_n | file_n) if (query_n or file_n) else None
    link = _LINK.search(text)
    href = urllib.parse.urljoin(url, html.unescape(link.group(1))) if link else None
    if href is None and count is None:
        raise SourceError(
            f"FAIL_{SERVICE}_UNREADABLE",
            f"{url}: the answer page has no results file and no explicit row count: {snippet!r}",
        )
    if href is None and count:
        raise SourceError(
            f"FAIL_{SERVICE}_UNREADABLE", f"{url}: the page states {count} rows but links no results file"
        )
    return count, href


def _parse_csv(content: bytes, url: str, columns: tuple[str, ...]) -> pd.DataFrame:
    head = content[:1024].lstrip()
    if not content.strip():
        raise SourceError(f"FAIL_{SERVICE}_EMPTY", f"{url}: empty results file (not even a header)")
    if head.startswith(b"<"):
        kind = "HTML" if b"<html" in head.lower() or b"<!doctype" in head.lower() else "NOT_CSV"
        raise SourceError(f"FAIL_{SERVICE}_{kind}", f"{url}: results file is not CSV: {head[:120]!r}")
    if not content.endswith(b"\n"):
        raise SourceError(
            f"FAIL_{SERVICE}_TRUNCATED", f"{url}: results file does not end with a line break (cut short)"
        )
    try:
        raw = pd.read_csv(io.BytesIO(content), skipinitialspace=True, dtype=str, keep_default_na=False)
    except (ValueError, pd.errors.ParserError) as exc:
        raise SourceError(f"FAIL_{SERVICE}_BAD_CSV", f"{url}: cannot parse the results file ({exc})") from exc
    raw.columns = [str(c).strip() for c in raw.columns]
    by_lower = {c.lower(): c for c in raw.columns}
    missing = [c for c in columns if c.lower() not in by_lower]
    if missing:
        raise SourceError(
            f"FAIL_{SERVICE}_COLUMNS", f"{url}: results lack column(s) {missing}; they have {list(raw.columns)}"
        )
    out = pd.DataFrame(index=raw.index)
    for c in columns:
        text = raw[by_lower[c.lower()]].str.strip()
        if (text == "").any():
            row = int(np.flatnonzero((text == "").to_numpy())[0])
            raise SourceError(
                f"FAIL_{SERVICE}_BAD_CSV", f"{url}: row {row + 1} has no value for {c!r} (the SSA stores no NULLs)"
            )
        values = pd.to_numeric(text, errors="coerce")
        if values.isna().any():  # a text column: keep it as text
            out[c] = text.to_numpy(dtype=object)
            continue
        if c.lower() in _INT_COLUMNS:
            out[c] = values.to_numpy(np.int64)
            continue
        v = values.to_numpy(np.float64)
        v = np.where(v <= -0.99e9, np.nan, v)  # the SSA's default for missing astrometry
        if "mag" in c.lower():
            v = np.where(v <= -99.0, np.nan, v)  # the SSA's default for missing magnitudes
        out[c] = v
    for c in ("objID", "ra", "dec"):
        if out[c].dtype == object:
            raise SourceError(f"FAIL_{SERVICE}_BAD_CSV", f"{url}: column {c!r} is not numeric")
    out["ra"] = out["ra"].astype(np.float64)
    out["dec"] = out["dec"].astype(np.float64)
    out["objID"] = out["objID"].astype(np.int64)
    return out.reset_index(drop=True)


def query_supercosmos(
    ra: float,
    dec: float,
    radius_deg: float,
    columns: Sequence[str] | None = None,
    *,
    base_url: str | None = None,
    config: SupercosmosConfig | None = None,
    http: HttpClient | None = None,
    stats: ConeStats | None = None,
) -> pd.DataFrame:
    """All SSA ``Source`` rows within a cone.

    Parameters
    ----------
    ra, dec, radius_deg : float
        Cone in degrees (ICRS); radius in (0, 2].
    columns : sequence of str, optional
        ``Source`` columns (default :data:`SSA_COLUMNS`; ``objID``, ``ra``,
        ``dec`` are always added).
    base_url : str, optional
        Overrides ``$VASCO_SUPERCOSMOS_URL`` and the configuration.
    config : SupercosmosConfig, optional
    http : HttpClient, optional
        Client to use (tests inject one); service name set to ``SUPERCOSMOS``.
    stats : ConeStats, optional
        Filled with the number of queries (form posts), truncated answers and depth.

    Returns
    -------
    pandas.DataFrame
        The requested columns under the requested names: ``objID`` int64,
        ``ra``/``dec`` float64 degrees, magnitudes and other numbers float64
        with the SSA's missing-value defaults as NaN; unique on ``objID``,
        within the cone, sorted by ``objID``.

    Raises
    ------
    SourceError
        ``FAIL_SUPERCOSMOS_*`` when there is no complete answer.
    ValueError
        For a bad cone, column names, or a row limit the SSA cannot write.
    """
    cfg = config or SupercosmosConfig()
    ra, dec, radius_deg = check_cone(ra, dec, radius_deg, MAX_RADIUS_DEG)
    cols = _columns(columns)
    limit = cfg.row_limit
    if limit + 1 > file_row_limit(len(cols)):
        raise ValueError(
            f"row_limit {limit} is above what the SSA writes for {len(cols)} columns ({file_row_limit(len(cols))})"
        )
    if http is None:
        client = HttpClient(SERVICE, cfg.http)
    else:
        client = http.with_service(SERVICE, cfg.http if config is not None else None)
    url = supercosmos_url(base_url, cfg)
    stats = stats if stats is not None else ConeStats()
    frames: list[pd.DataFrame] = []

    def one_cone(c_ra: float, c_dec: float, r: float, depth: int) -> None:
        form = {
            "action": "freeform",
            "server": cfg.server,
            "sqlstmt": cone_sql(c_ra, c_dec, r, cols, limit + 1),
            "format": "CSV",
            "compress": "NONE",
            "rows": "10",
            "emailAddress": "",
        }
        stats.requests += 1
        stats.cones.append((c_ra, c_dec, r))
        stats.max_depth = max(stats.max_depth, depth)
        page = client.fetch("POST", url, data=form)
        count, link = _read_page(page.content, url)
        if link is None:  # the page says, in so many words, that the query returned 0 rows
            return
        answer = client.fetch("GET", link)
        table = _parse_csv(answer.content, link, cols)
        if count is not None and len(table) != count:
            raise SourceError(
                f"FAIL_{SERVICE}_COUNT_MISMATCH",
                f"{link}: the page states {count} rows, the results file holds {len(table)}",
            )
        stats.rows_received += len(table)
        if len(table) > limit:
            stats.truncated_answers += 1
            if depth >= cfg.max_split_depth:
                raise SourceError(
                    f"FAIL_{SERVICE}_TRUNCATED",
                    f"cone ({c_ra:.5f}, {c_dec:+.5f}, r={r:.5f} deg) still has > {limit} rows after {depth} "
                    "splits; raise row_limit or max_split_depth",
                )
            for s_ra, s_dec, s_r in cover_disc(c_ra, c_dec, r, cfg.cover_margin):
                one_cone(s_ra, s_dec, s_r, depth + 1)
            return
        if len(table):
            frames.append(table)

    one_cone(ra, dec, radius_deg, 0)
    if frames:
        table = pd.concat(frames, ignore_index=True)
    else:
        table = pd.DataFrame({c: pd.Series(dtype=np.float64) for c in cols})
        table["objID"] = table["objID"].astype(np.int64)
    sep = angular_separation_arcsec(ra, dec, table["ra"].to_numpy(np.float64), table["dec"].to_numpy(np.float64))
    table = table.loc[sep <= radius_deg * 3600.0].drop_duplicates(subset=["objID"])
    return table.sort_values("objID", kind="stable").reset_index(drop=True)

"""A stand-in for the SuperCOSMOS Science Archive's freeform SQL form (``SSASQL``).

``POST /ssa/SSASQL`` (form fields ``action=freeform``, ``server=amachine``
or ``pmachine``, ``sqlstmt``, ``format``, ``compress``, ``rows``,
``emailAddress``) runs the SQL on the table handed to it and answers an
HTML page linking the results file (``href="<url>/tmp/<name>.csv"``), or
reporting ``<b>SQL Error:</b> ...``.  ``GET /tmp/<name>.csv`` serves the
file: a header of the selected column names, one line per row.  Like the
SSA, it writes no NULLs: a missing magnitude is -99.999995, a missing
proper motion -0.99999995e9.

Verified, and where from: the form's field names and values (a public copy
of the SSA's own SQL menu form JSP, and public clients posting
``action=freeform``/``server=amachine``; any other ``action`` is answered
"must be a select statement", as one of them notes), the ``SQL Error:</b>``
report and the ``/tmp/....csv`` results link.  Not verified for the SSA:
the page's wording around the link.  It is modelled on the sibling WSA
servlet's answers recorded in astroquery's tests
(``astroquery/ukidss/tests/data/vo_results.html``, ``error.html``): "(Query
returned N result rows, ...)", "(Contains <b>N rows</b>, ...)" by the
link, "QUERY FINISHED:" at the end, ``<p class="error"><b>SQL
Error:</b> ...``.  Only CSV without compression is served.

The SQL it understands is the cone VASCO sends (anything else is an SQL
error)::

    SELECT TOP n col, col, ... FROM Source
    WHERE dec BETWEEN d1 AND d2 AND cx*x0 + cy*y0 + cz*z0 >= c

(numbers possibly in parentheses), ``cx, cy, cz`` being the unit vector of
each row's (ra, dec).  A column the table lacks is ``Invalid column name``.
The file holds at most ``TOP`` rows and at most ``file_cap`` rows (default:
the SSA's ``nint(15000 / n_columns) x 1000``); when that cap cut it, the
page says so and its two counts differ.  ``zero_rows``: how a query with no
row is answered: ``"file"`` (a link to a header-only file, "Query returned
0 result rows"), ``"message"`` (no link, "Query returned 0 result rows"),
``"vague"`` (no link, no count: "No matching objects were found.").
``counts=False`` leaves every count statement out of the pages.

Scripted answers (``queue``), one per request (form post or file get):
``("status", code, headers)``, the delivery faults of
:func:`servers.vizier.deliver` (``("html",)``, ``("cut",)``, ``("short",)``,
``("empty",)``, ``("slow", seconds)``), ``("busy",)`` (a 200 page without
results link or count), ``("sql_error", message)`` and ``("miscount", n)``
(the page states ``n`` rows, whatever the file holds).
"""

from __future__ import annotations

import itertools
import re
import urllib.parse
from typing import Any
from xml.sax.saxutils import escape

import numpy as np
import pandas as pd

from servers.base import Seen, StandInServer
from servers.vizier import deliver

PATH = "/ssa/SSASQL"
TMP = "/tmp/"
_N = r"\(?\s*([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)\s*\)?"
_SQL = re.compile(
    rf"^\s*SELECT\s+TOP\s+(\d+)\s+(.+?)\s+FROM\s+Source\s+WHERE\s+dec\s+BETWEEN\s+{_N}\s+AND\s+{_N}\s+"
    rf"AND\s+cx\s*\*\s*{_N}\s*\+\s*cy\s*\*\s*{_N}\s*\+\s*cz\s*\*\s*{_N}\s*>=\s*{_N}\s*$",
    re.IGNORECASE | re.DOTALL,
)
BUSY_PAGE = b"""<html><head><title>SSA</title></head><body>
<p>The SSA database server is currently unavailable, please try again later.</p></body></html>
"""


def page(body: str) -> bytes:
    return (
        "<html><head><title>SSA Database - SQL Query Results</title></head><body>\n"
        "<h1>SSA Database - SQL Query Results</h1>\n<p><b>QUERY STARTED:</b> Tue Dec 01 02:00:00 GMT 2026</p>\n"
        f"{body}\n<p><b>QUERY FINISHED:</b> Tue Dec 01 02:00:01 GMT 2026</p>\n</body></html>\n"
    ).encode()


def sql_error(message: str) -> bytes:
    return page(f'<h1 class="error">Error Message</h1>\n<p class="error"><b>SQL Error:</b> {escape(message)}</p>')


class SupercosmosStandIn(StandInServer):
    """``table``: the SSA ``Source`` rows (``objID``, ``ra``, ``dec`` and any other columns)."""

    def __init__(self, table: pd.DataFrame, file_cap: int | None = None, zero_rows: str = "file", counts: bool = True):
        super().__init__()
        if zero_rows not in ("file", "message", "vague"):
            raise ValueError(f"zero_rows={zero_rows!r}: 'file', 'message' or 'vague'")
        self.table = table.reset_index(drop=True)
        self.file_cap = file_cap
        self.zero_rows = zero_rows
        self.counts = counts
        self.stated: int | None = None
        self.files: dict[str, bytes] = {}
        self.queries: list[dict[str, Any]] = []
        self._names = itertools.count(1)

    @property
    def base_url(self) -> str:
        return self.url + PATH

    def handle(self, h: Any, seen: Seen) -> None:
        action = self.next_action()
        seen.extra["action"] = action[0] if action else "ok"
        if action is not None and self.answer_status(h, action):
            return
        if seen.method == "POST" and seen.path == PATH:
            if action is not None and action[0] == "busy":
                self.send(h, 200, BUSY_PAGE, "text/html")
                return
            if action is not None and action[0] == "sql_error":
                self.send(h, 200, sql_error(str(action[1])), "text/html")
                return
            fields = {k: v[-1] for k, v in urllib.parse.parse_qs(seen.body.decode(), keep_blank_values=True).items()}
            seen.extra["fields"] = fields
            self.stated = int(action[1]) if action is not None and action[0] == "miscount" else None
            deliver(
                self,
                h,
                None if action is not None and action[0] == "miscount" else action,
                200,
                self.run(fields),
                "text/html",
            )
            return
        if seen.method == "GET" and seen.path.startswith(TMP) and seen.path[len(TMP) :] in self.files:
            deliver(self, h, action, 200, self.files[seen.path[len(TMP) :]], "text/csv")
            return
        self.send(h, 404, b"<html><body>not found</body></html>", "text/html")

    # ------------------------------------------------------------------ the query
    def run(self, fields: dict[str, str]) -> bytes:
        if fields.get("action") != "freeform" or fields.get("server") not in ("amachine", "pmachine"):
            return page("<p>must be a select statement</p>")
        if fields.get("format") != "CSV" or fields.get("compress") != "NONE":
            return page("<p>Only CSV output without compression is served here.</p>")
        sql = fields.get("sqlstmt", "")
        m = _SQL.match(sql)
        if not m:
            return sql_error(f"Incorrect syntax near '{sql[:40]}'.")
        top = int(m.group(1))
        columns = [c.strip() for c in m.group(2).split(",")]
        d1, d2, x0, y0, z0, cos_r = (float(m.group(i)) for i in range(3, 9))
        by_lower = {c.lower(): c for c in self.table.columns}
        unknown = [c for c in columns if c.lower() not in by_lower]
        if unknown:
            return sql_error(f"Invalid column name '{unknown[0]}'.")
        ra = np.radians(self.table["ra"].to_numpy(np.float64))
        dec_deg = self.table["dec"].to_numpy(np.float64)
        dec = np.radians(dec_deg)
        dot = np.cos(dec) * np.cos(ra) * x0 + np.cos(dec) * np.sin(ra) * y0 + np.sin(dec) * z0
        hits = np.flatnonzero((dec_deg >= d1) & (dec_deg <= d2) & (dot >= cos_r))
        cap = self.file_cap if self.file_cap is not None else int(np.floor(15000 / len(columns) + 0.5)) * 1000
        n_all = min(len(hits), top)
        sent = hits[: min(top, cap)]
        self.queries.append({"sql": sql, "top": top, "columns": columns, "n_hits": len(hits), "n_sent": len(sent)})
        n_query = n_all if self.stated is None else self.stated
        n_file = len(sent) if self.stated is None else self.stated
        if len(sent) == 0 and self.zero_rows == "vague":
            return page("<p>No matching objects were found.</p>")
        if len(sent) == 0 and self.zero_rows == "message":
            return page(f"<p>(Query returned {n_query} result rows.)</p>" if self.counts else "<p></p>")
        rows = self.table.iloc[sent][[by_lower[c.lower()] for c in columns]].copy()
        rows.columns = columns
        for c in columns:
            if pd.api.types.is_float_dtype(rows[c]):
                default = -99.999995 if "mag" in c.lower() else -0.99999995e9
                rows[c] = rows[c].fillna(default)
        name = f"ssa_{next(self._names):06d}.csv"
        self.files[name] = rows.to_csv(index=False, lineterminator="\n").encode()
        note = ""
        if n_all > len(sent):
            note = f"<p>WARNING: the file row limit was exceeded; {n_all - len(sent)} rows were not written.</p>"
        counted = (
            f"<p>(Query returned {n_query} result rows, the first {min(n_query, 10)} are shown.)</p>"
            f"<p>(Contains <b>{n_file} rows</b>, {len(self.files[name]) / 1024:.1f} KB)</p>"
            if self.counts
            else ""
        )
        return page(f'{note}\n<p>Results file: <a href="{self.url}{TMP}{name}">{name}</a></p>{counted}')

"""A stand-in for the SuperCOSMOS Science Archive's freeform SQL form (``SSASQL``).

``POST /ssa/SSASQL`` (form fields ``action=freeform``, ``server=amachine``,
``sqlstmt``, ``format=CSV``, ``compress=NONE``, ``rows``, ``emailAddress``)
runs the SQL on the table handed to it and answers, as the SSA does, an
HTML page linking the results file (``href="<url>/tmp/<name>.csv"``), or
reporting ``<b>SQL Error:</b> ...``.  ``GET /tmp/<name>.csv`` serves the
file: a header of the selected column names, one line per row.  Like the
SSA, it writes no NULLs: a missing magnitude is -99.999995, a missing
proper motion -0.99999995e9.

The SQL it understands is the cone VASCO sends (anything else is an SQL
error)::

    SELECT TOP n col, col, ... FROM Source
    WHERE dec BETWEEN d1 AND d2 AND cx*x0 + cy*y0 + cz*z0 >= c

(numbers possibly in parentheses), ``cx, cy, cz`` being the unit vector of
each row's (ra, dec).  A column the table lacks is ``Invalid column name``.
The file holds at most ``TOP`` rows and at most ``file_cap`` rows (default:
the SSA's ``nint(15000 / n_columns) x 1000``), with a warning on the page
when that cap cut it.  ``zero_rows``: how a query with no row is answered:
``"file"`` (a link to a header-only file) or ``"message"`` (no link, "Query
returned 0 rows").

Scripted answers (``queue``), one per request (form post or file get):
``("status", code, headers)``, the delivery faults of
:func:`servers.vizier.deliver` (``("html",)``, ``("cut",)``, ``("short",)``,
``("empty",)``, ``("slow", seconds)``), ``("busy",)`` (a 200 page without
results link) and ``("sql_error", message)``.
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
        "<html><head><title>SuperCOSMOS Science Archive - freeform SQL results</title></head><body>\n"
        f"{body}\n</body></html>\n"
    ).encode()


class SupercosmosStandIn(StandInServer):
    """``table``: the SSA ``Source`` rows (``objID``, ``ra``, ``dec`` and any other columns)."""

    def __init__(self, table: pd.DataFrame, file_cap: int | None = None, zero_rows: str = "file"):
        super().__init__()
        self.table = table.reset_index(drop=True)
        self.file_cap = file_cap
        self.zero_rows = zero_rows
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
                self.send(h, 200, page(f"<b>SQL Error:</b> {escape(str(action[1]))}"), "text/html")
                return
            fields = {k: v[-1] for k, v in urllib.parse.parse_qs(seen.body.decode(), keep_blank_values=True).items()}
            seen.extra["fields"] = fields
            deliver(self, h, action, 200, self.run(fields), "text/html")
            return
        if seen.method == "GET" and seen.path.startswith(TMP) and seen.path[len(TMP) :] in self.files:
            deliver(self, h, action, 200, self.files[seen.path[len(TMP) :]], "text/csv")
            return
        self.send(h, 404, b"<html><body>not found</body></html>", "text/html")

    # ------------------------------------------------------------------ the query
    def run(self, fields: dict[str, str]) -> bytes:
        if fields.get("action") != "freeform" or fields.get("server") != "amachine":
            return page("<p>Unknown request: must be a select statement.</p>")
        if fields.get("format") != "CSV" or fields.get("compress") != "NONE":
            return page("<p>Only CSV output without compression is served here.</p>")
        sql = fields.get("sqlstmt", "")
        m = _SQL.match(sql)
        if not m:
            return page(f"<b>SQL Error:</b> Incorrect syntax near '{escape(sql[:40])}'.")
        top = int(m.group(1))
        columns = [c.strip() for c in m.group(2).split(",")]
        d1, d2, x0, y0, z0, cos_r = (float(m.group(i)) for i in range(3, 9))
        by_lower = {c.lower(): c for c in self.table.columns}
        unknown = [c for c in columns if c.lower() not in by_lower]
        if unknown:
            return page(f"<b>SQL Error:</b> Invalid column name '{escape(unknown[0])}'.")
        ra = np.radians(self.table["ra"].to_numpy(np.float64))
        dec_deg = self.table["dec"].to_numpy(np.float64)
        dec = np.radians(dec_deg)
        dot = np.cos(dec) * np.cos(ra) * x0 + np.cos(dec) * np.sin(ra) * y0 + np.sin(dec) * z0
        hits = np.flatnonzero((dec_deg >= d1) & (dec_deg <= d2) & (dot >= cos_r))
        cap = self.file_cap if self.file_cap is not None else int(np.floor(15000 / len(columns) + 0.5)) * 1000
        n_all = min(len(hits), top)
        sent = hits[: min(top, cap)]
        self.queries.append({"sql": sql, "top": top, "columns": columns, "n_hits": len(hits), "n_sent": len(sent)})
        if len(sent) == 0 and self.zero_rows == "message":
            return page("<p>Query returned 0 rows.</p>")
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
        return page(
            f"<p>Your query returned {len(sent)} rows.</p>{note}\n"
            f'<p>Results file: <a href="{self.url}{TMP}{name}">{name}</a></p>'
        )

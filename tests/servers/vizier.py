"""A stand-in for VizieR's ``/viz-bin/votable`` endpoint, as astroquery calls it.

astroquery POSTs a plain-text script, one ``key=value`` per line
(``-source=I/350/gaiaedr3``, ``-out.max=50000``, ``-out=RA_ICRS,DE_ICRS,...``,
``-c=150.00000000+20.00000000``, ``-c.rd=0.25`` (or ``-c.rm``/``-c.rs``),
``-out.meta=huUD``, ``-out.form=mini``, ``-oc.form=d``).  The stand-in
selects the rows of the test's table within the cone (ordered by distance,
as VizieR does), keeps the ``-out`` columns, stops at ``-out.max`` rows (or
at ``hard_cap``, a server-side limit below the client's), and writes a
VOTable with astropy.  A cut answer carries VizieR's truncation signal,
``<INFO name="QUERY_STATUS" value="OVERFLOW">truncated result (maxtup=N)</INFO>``
after the TABLE.  An empty cone gives a RESOURCE without TABLE.

Also understood, as astroquery sends them:

* column constraints, one ``column=constraint`` line each (``R2mag=<=15.3``):
  ``<x``, ``>x``, ``<=x``, ``>=x``, ``=x``, ``!=x``, ``x..y`` on numbers (a
  row whose value is missing never passes), ``=text`` / ``text`` with ``*``
  wildcards on text; a constraint on a column the table does not have is
  answered with ``QUERY_STATUS=ERROR``;
* a list of positions: ``-c=<<====AstroqueryList``, one ``ra+dec`` a line,
  ``====AstroqueryList``; every (position, row) pair within the radius is a
  row, with ``_q`` the 1-based position number; ``-out.max`` caps the whole
  answer;
* ``-out=*`` (the table's default columns: here all of them), ``-out.all``,
  ``-out.add=_q,_RAJ2000,_DEJ2000`` (computed columns; ``_RAJ2000`` and
  ``_DEJ2000`` are the table's own positions, UCD ``pos.eq.ra``/``pos.eq.dec``).

FIELDs carry UCDs as VizieR's do: ``pos.eq.ra;meta.main`` and
``pos.eq.dec;meta.main`` on the table's position columns and
``meta.id;meta.main`` on its id column (``ids``, when given).

Scripted answers (``queue``), one per request, come first:
``("status", code, headers)`` and the delivery faults of :func:`deliver`
(``("html",)``, ``("cut",)``, ``("short",)``, ``("empty",)``,
``("slow", seconds)``), which the other stand-ins share.
"""

from __future__ import annotations

import fnmatch
import io
import re
from typing import Any

import numpy as np
import pandas as pd
from astropy.io import votable
from astropy.table import Table

from servers.base import Seen, StandInServer

PATH = "/viz-bin/votable"
_CENTRE = re.compile(r"^([0-9.]+)([+-][0-9.]+)$")
_NUMBER = r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?"
_COMPARE = re.compile(rf"^(<=|>=|!=|<|>|=)?\s*({_NUMBER})$")
_RANGE = re.compile(rf"^({_NUMBER})\.\.({_NUMBER})$")
_XML_ID = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")
_LIST_START = "<<====AstroqueryList"
_LIST_END = "====AstroqueryList"
_EMPTY = b"""<?xml version="1.0" encoding="UTF-8"?>
<VOTABLE version="1.4" xmlns="http://www.ivoa.net/xml/VOTable/v1.3">
<INFO name="QUERY_STATUS" value="OK"/>
<RESOURCE ID="yCat" name="%s"><INFO name="matches" value="0">No rows in this region</INFO></RESOURCE>
</VOTABLE>
"""
_ERROR = """<?xml version="1.0" encoding="UTF-8"?>
<VOTABLE version="1.4" xmlns="http://www.ivoa.net/xml/VOTable/v1.3">
<INFO name="QUERY_STATUS" value="ERROR">{message}</INFO>
</VOTABLE>
"""
HTML_PAGE = b"""<!DOCTYPE html>
<html><head><title>503 Service Unavailable</title></head>
<body><h1>Service Unavailable</h1><p>The server is temporarily overloaded.</p></body></html>
"""


def sep_deg(ra0: float, dec0: float, ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
    """Haversine separation in degrees (the stand-in's own, independent of VASCO)."""
    r0, d0, r, d = (np.radians(np.asarray(x, dtype=np.float64)) for x in (ra0, dec0, ra, dec))
    h = np.sin((d - d0) / 2) ** 2 + np.cos(d0) * np.cos(d) * np.sin((r - r0) / 2) ** 2
    return np.degrees(2 * np.arcsin(np.sqrt(np.clip(h, 0, 1))))


def parse_script(body: bytes) -> dict[str, str]:
    """The script's ``key=value`` lines; a ``<<====AstroqueryList`` block is one value, lines joined by newlines."""
    out: dict[str, str] = {}
    lines = iter(body.decode("utf-8").splitlines())
    for line in lines:
        line = line.strip()
        if not line:
            continue
        key, _, value = line.partition("=")
        if value == _LIST_START:
            items = []
            for item in lines:
                if item.strip() == _LIST_END:
                    break
                items.append(item.strip())
            value = "\n".join(items)
        out[key] = value
    return out


def constraint_mask(values: pd.Series, constraint: str) -> np.ndarray:
    """Rows of ``values`` that pass one VizieR constraint (numbers: missing never passes)."""
    text = constraint.strip()
    if pd.api.types.is_numeric_dtype(values):
        v = values.to_numpy(np.float64)
        with np.errstate(invalid="ignore"):
            m = _RANGE.match(text)
            if m:
                return (v >= float(m.group(1))) & (v <= float(m.group(2)))
            m = _COMPARE.match(text)
            if not m:
                raise ValueError(f"bad numeric constraint {constraint!r}")
            op, x = m.group(1) or "=", float(m.group(2))
            return {
                "<": v < x,
                ">": v > x,
                "<=": v <= x,
                ">=": v >= x,
                "=": v == x,
                "!=": (v != x) & np.isfinite(v),
            }[op]
    pattern = text[1:] if text.startswith("=") else text
    return np.array([isinstance(s, str) and fnmatch.fnmatchcase(s, pattern) for s in values], dtype=bool)


def deliver(
    server: StandInServer,
    h: Any,
    action: tuple[Any, ...] | None,
    code: int,
    body: bytes,
    content_type: str,
) -> None:
    """Send an answer as scripted: normally, or with one delivery fault.

    ``None``/``("pass",)``: as is; ``("html",)``: a 200 HTML error page
    instead; ``("cut",)``: the full Content-Length announced, half the body
    sent, the connection closed; ``("short",)``: half the body with a
    matching Content-Length; ``("empty",)``: a 200 with no body;
    ``("slow", seconds)``: the answer after that long (nothing if the server
    stops first).
    """
    kind = action[0] if action else "pass"
    if kind == "pass":
        server.send(h, code, body, content_type)
    elif kind == "html":
        server.send(h, 200, HTML_PAGE, "text/html")
    elif kind == "cut":
        h.send_response(code)
        h.send_header("Content-Type", content_type)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body[: len(body) // 2])
        h.wfile.flush()
        h.close_connection = True
    elif kind == "short":
        server.send(h, code, body[: len(body) // 2], content_type)
    elif kind == "empty":
        server.send(h, 200, b"", content_type)
    elif kind == "slow":
        if not server.stopping.wait(float(action[1])):  # type: ignore[index]
            server.send(h, code, body, content_type)
    else:
        raise ValueError(f"unknown stand-in action {action!r}")


class VizierStandIn(StandInServer):
    """``tables`` maps a VizieR table name to (DataFrame, ra column, dec column).

    ``ids`` maps a table name to its id column (given the UCD ``meta.id;meta.main``).
    """

    def __init__(
        self,
        tables: dict[str, tuple[pd.DataFrame, str, str]],
        hard_cap: int | None = None,
        ids: dict[str, str] | None = None,
    ):
        super().__init__()
        self.tables = tables
        self.hard_cap = hard_cap
        self.ids = dict(ids or {})

    def handle(self, h: Any, seen: Seen) -> None:
        action = self.next_action()
        if action is not None and self.answer_status(h, action):
            return
        if seen.method != "POST" or seen.path != PATH:
            self.send(h, 404, b"<html><body>not found</body></html>", "text/html")
            return
        args = parse_script(seen.body)
        seen.extra["args"] = args
        code, body, ctype = self.answer(args, seen)
        deliver(self, h, action, code, body, ctype)

    # ------------------------------------------------------------------ the query
    def answer(self, args: dict[str, str], seen: Seen) -> tuple[int, bytes, str]:
        name = args.get("-source", "")
        if name not in self.tables:
            return 200, _EMPTY % name.encode(), "text/xml"
        table, ra_col, dec_col = self.tables[name]
        centres = []
        for line in args.get("-c", "").split("\n"):
            m = _CENTRE.match(line.strip())
            if not m:
                return 400, b"bad -c", "text/plain"
            centres.append((float(m.group(1)), float(m.group(2))))
        if "-c.rd" in args:
            radius = float(args["-c.rd"])
        elif "-c.rm" in args:
            radius = float(args["-c.rm"]) / 60.0
        elif "-c.rs" in args:
            radius = float(args["-c.rs"]) / 3600.0
        else:
            return 400, b"no radius", "text/plain"
        constraints = {k: v for k, v in args.items() if not k.startswith("-")}
        keep = np.ones(len(table), dtype=bool)
        for col, constraint in constraints.items():
            if col not in table.columns:
                return 200, _ERROR.format(message=f"unknown column {col} in {name}").encode(), "text/xml"
            try:
                keep &= constraint_mask(table[col], constraint)
            except ValueError as exc:
                return 200, _ERROR.format(message=str(exc)).encode(), "text/xml"
        pieces = []
        for q, (ra0, dec0) in enumerate(centres, start=1):
            sep = sep_deg(ra0, dec0, table[ra_col].to_numpy(), table[dec_col].to_numpy())
            inside = np.flatnonzero((sep <= radius) & keep)
            inside = inside[np.argsort(sep[inside], kind="stable")]
            pieces.append((q, inside))
        n_inside = sum(len(p[1]) for p in pieces)
        out_max = args.get("-out.max", "50")
        limit = n_inside if out_max == "unlimited" else int(out_max)
        if self.hard_cap is not None:
            limit = min(limit, self.hard_cap)
        overflow = n_inside > limit
        rows = pd.concat(
            [table.iloc[idx].assign(_q=q) for q, idx in pieces] if pieces else [table.iloc[:0].assign(_q=0)],
            ignore_index=True,
        ).iloc[:limit]
        list_query = len(centres) > 1 or "_q" in args.get("-out.add", "")
        rows = self.columns(rows, args, ra_col, dec_col, list_query=list_query)
        seen.extra.update(
            centre=centres[0],
            centres=centres,
            radius=radius,
            n_inside=n_inside,
            n_sent=len(rows),
            overflow=overflow,
            constraints=constraints,
        )
        if len(rows) == 0:
            return 200, _EMPTY % name.encode(), "text/xml"
        # Column names that are not XML ids (VizieR's "2MASS") are written as VizieR
        # does: an id of its own ("_2MASS"), the name kept (astropy would warn).
        names = list(rows.columns)
        safe = [c if _XML_ID.match(c) else "_" + re.sub(r"[^A-Za-z0-9_]", "_", c) for c in names]
        vot = votable.from_table(Table.from_pandas(rows.reset_index(drop=True).set_axis(safe, axis=1)))
        vot.resources[0].name = name
        fields = vot.resources[0].tables[0]
        fields.name = name
        for f, real in zip(fields.fields, names, strict=True):
            f.name = real
        ucds = {ra_col: "pos.eq.ra;meta.main", dec_col: "pos.eq.dec;meta.main", "_RAJ2000": "pos.eq.ra"}
        ucds["_DEJ2000"] = "pos.eq.dec"
        if name in self.ids:
            ucds[self.ids[name]] = "meta.id;meta.main"
        for f in fields.fields:
            if f.name in ucds:
                f.ucd = ucds[f.name]
        buf = io.BytesIO()
        vot.to_xml(buf)
        xml = buf.getvalue()
        if overflow:
            info = f'<INFO name="QUERY_STATUS" value="OVERFLOW">truncated result (maxtup={limit})</INFO>\n'
            xml = xml.replace(b"</TABLE>", b"</TABLE>\n" + info.encode(), 1)
        return 200, xml, "text/xml;content=x-votable"

    @staticmethod
    def columns(rows: pd.DataFrame, args: dict[str, str], ra_col: str, dec_col: str, list_query: bool) -> pd.DataFrame:
        """The ``-out`` columns (all for ``*``/``-out.all``) and the ``-out.add`` computed ones."""
        own = [c for c in rows.columns if c != "_q"]
        wanted = args.get("-out", "*").split(",")
        if "-out.all" in args or "*" in wanted:
            keep = own
        else:
            keep = [c for c in wanted if c in own]
        out = rows[keep].copy()
        for extra in [c for c in args.get("-out.add", "").split(",") if c]:
            if extra == "_q" and list_query:
                out["_q"] = rows["_q"].to_numpy(np.int32)
            elif extra == "_RAJ2000":
                out["_RAJ2000"] = rows[ra_col].to_numpy(np.float64)
            elif extra == "_DEJ2000":
                out["_DEJ2000"] = rows[dec_col].to_numpy(np.float64)
        return out

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
after the TABLE.  An empty cone gives a RESOURCE without TABLE.  Scripted
``("status", code, headers)`` answers come first when queued.
"""

from __future__ import annotations

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
_EMPTY = b"""<?xml version="1.0" encoding="UTF-8"?>
<VOTABLE version="1.4" xmlns="http://www.ivoa.net/xml/VOTable/v1.3">
<INFO name="QUERY_STATUS" value="OK"/>
<RESOURCE ID="yCat" name="%s"><INFO name="matches" value="0">No rows in this region</INFO></RESOURCE>
</VOTABLE>
"""


def sep_deg(ra0: float, dec0: float, ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
    """Haversine separation in degrees (the stand-in's own, independent of VASCO)."""
    r0, d0, r, d = (np.radians(np.asarray(x, dtype=np.float64)) for x in (ra0, dec0, ra, dec))
    h = np.sin((d - d0) / 2) ** 2 + np.cos(d0) * np.cos(d) * np.sin((r - r0) / 2) ** 2
    return np.degrees(2 * np.arcsin(np.sqrt(np.clip(h, 0, 1))))


def parse_script(body: bytes) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in body.decode("utf-8").splitlines():
        line = line.strip()
        if not line:
            continue
        key, _, value = line.partition("=")
        out[key] = value
    return out


class VizierStandIn(StandInServer):
    """``tables`` maps a VizieR table name to (DataFrame, ra column, dec column)."""

    def __init__(self, tables: dict[str, tuple[pd.DataFrame, str, str]], hard_cap: int | None = None):
        super().__init__()
        self.tables = tables
        self.hard_cap = hard_cap

    def handle(self, h: Any, seen: Seen) -> None:
        action = self.next_action()
        if action is not None and self.answer_status(h, action):
            return
        if seen.method != "POST" or seen.path != PATH:
            self.send(h, 404, b"<html><body>not found</body></html>", "text/html")
            return
        args = parse_script(seen.body)
        seen.extra["args"] = args
        name = args.get("-source", "")
        if name not in self.tables:
            self.send(h, 200, _EMPTY % name.encode(), "text/xml")
            return
        table, ra_col, dec_col = self.tables[name]
        m = _CENTRE.match(args.get("-c", ""))
        if not m:
            self.send(h, 400, b"bad -c", "text/plain")
            return
        ra0, dec0 = float(m.group(1)), float(m.group(2))
        if "-c.rd" in args:
            radius = float(args["-c.rd"])
        elif "-c.rm" in args:
            radius = float(args["-c.rm"]) / 60.0
        elif "-c.rs" in args:
            radius = float(args["-c.rs"]) / 3600.0
        else:
            self.send(h, 400, b"no radius", "text/plain")
            return
        sep = sep_deg(ra0, dec0, table[ra_col].to_numpy(), table[dec_col].to_numpy())
        inside = np.flatnonzero(sep <= radius)
        inside = inside[np.argsort(sep[inside], kind="stable")]
        out_max = args.get("-out.max", "50")
        limit = len(inside) if out_max == "unlimited" else int(out_max)
        if self.hard_cap is not None:
            limit = min(limit, self.hard_cap)
        overflow = len(inside) > limit
        rows = table.iloc[inside[:limit]]
        if "-out" in args:
            rows = rows[[c for c in args["-out"].split(",") if c in rows.columns]]
        seen.extra.update(centre=(ra0, dec0), radius=radius, n_inside=len(inside), n_sent=len(rows), overflow=overflow)
        if len(rows) == 0:
            self.send(h, 200, _EMPTY % name.encode(), "text/xml")
            return
        vot = votable.from_table(Table.from_pandas(rows.reset_index(drop=True)))
        vot.resources[0].name = name
        vot.resources[0].tables[0].name = name
        buf = io.BytesIO()
        vot.to_xml(buf)
        xml = buf.getvalue()
        if overflow:
            info = f'<INFO name="QUERY_STATUS" value="OVERFLOW">truncated result (maxtup={limit})</INFO>\n'
            xml = xml.replace(b"</TABLE>", b"</TABLE>\n" + info.encode(), 1)
        self.send(h, 200, xml, "text/xml;content=x-votable")

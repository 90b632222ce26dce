"""A stand-in for IMCCE SkyBoT's cone search (``conesearch.php``), as astroquery calls it.

``GET /webservices/skybot/api/conesearch.php`` with ``-ep`` (Julian date),
``-ra``, ``-dec`` (deg), ``-rd`` (deg) or ``-rs`` (arcsec), ``-mime``
(``votable`` or ``text``), ``-output`` (``object``, ``basic``, ``obs``,
``all``), ``-loc`` (observer), ``-filter`` (largest position uncertainty,
arcsec), ``-objFilter`` (three 0/1 digits: asteroids, planets, comets),
``-refsys``, ``-from``.

It serves the objects handed to it (a DataFrame: ``Num`` (int, or None when
unnumbered), ``Name``, ``ra``/``dec`` in degrees at ``epoch0_jd``,
``Class``, ``Mv``, ``ErrPos`` (arcsec), ``dRAcosDec``/``dDEC`` (arcsec/h)),
each moved linearly to the requested epoch, and answers in SkyBoT's formats
(the VOTable fields as in IMCCE's answer recorded in astroquery's tests,
``astroquery/imcce/tests/data/skybot_query.vot``; the text layout as quoted
in astroquery issue #3119 and lightkurve issues #1396/#1417):

* VOTable: ``vot:``-prefixed VOTable 1.3 as SkyBoT writes it, a TABLE with
  the fields ``Num``, ``Name``, ``RA`` (``hh mm ss.ssss``), ``DEC``
  (``+dd mm ss.sss``), ``Class``, ``Mv``, ``ErrPos``, ``d``, then (not for
  ``-output=object``) ``dRAcosDec``, ``dDEC``, ``Dgeo``, ``Dhelio``, and the
  hidden ``_RAJ2000``/``_DECJ2000`` in degrees (left out with
  ``hidden_positions=False``).  A bad request (no epoch, epoch out of
  range, no radius) is a ``QUERY_STATUS=ERROR`` with the reason.
* text: ``# Flag: 1`` (``-1``: error), ``# Ticket: ...``, the
  ``# Num | Name | RA(h) | DE(deg) | ...`` header and `` | ``-separated rows.

No object in the field (``no_object``): ``"empty"`` (the default) answers
a 200 with an empty body and ``Content-Length: 0``, in either format: what
the current service does, as the lightkurve maintainers report (PR #1556,
April 2026, for the text output; for the VOTable output it is not
verified); ``"legacy"`` the older answers, ``<vot:INFO
name="QUERY_STATUS" value="ERROR">No solar system object was found in the
requested FOV</vot:INFO>`` or ``# Flag: 0``; ``"table"`` a VOTable whose
TABLE has no row (text: as ``"legacy"``).

Scripted answers (``queue``), one per request: ``("status", code, headers)``,
the delivery faults of :func:`servers.vizier.deliver` (``("html",)``,
``("cut",)``, ``("short",)``, ``("empty",)``, ``("slow", seconds)``),
``("raw", body, content_type)`` (a given body, e.g. a recorded IMCCE answer),
``("error", message)`` (a ``QUERY_STATUS=ERROR`` VOTable), and the framings
of an answer: ``("unframed",)`` (the normal answer with neither
``Content-Length`` nor chunking, the connection closed after it),
``("chunked",)`` (sent in chunks, closing chunk included) and
``("chunked_cut",)`` (the first half in one chunk, then the connection
closed without the closing chunk).
"""

from __future__ import annotations

from typing import Any
from xml.sax.saxutils import escape

import numpy as np
import pandas as pd

from servers.base import Seen, StandInServer
from servers.vizier import deliver, sep_deg

PATH = "/webservices/skybot/api/conesearch.php"
EPOCH_MIN_JD = 2411320.0
EPOCH_MAX_JD = 2473540.0
NO_OBJECT = "No solar system object was found in the requested FOV"

_HEAD = """<?xml version="1.0" encoding="UTF-8" ?>
<vot:VOTABLE version="1.3" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" \
xmlns:vot="http://www.ivoa.net/xml/VOTable/v1.3" xmlns:stc="http://www.ivoa.net/xml/STC">
<vot:COOSYS ID="J2000" equinox="J2000" epoch="J2000" system="eq_FK5"/>
<vot:INFO ID="status" name="QUERY_STATUS" value="{status}">{message}</vot:INFO>
<vot:INFO ID="ticket" name="Ticket" value="{ticket}"/>
<vot:INFO ID="reqEpoch" name="Epoch" value="{epoch}"/>
<vot:INFO ID="supplier" name="Supplier" value="Provided by the VASCO stand-in"/>
"""
_FIELDS = [
    ('ID="num" name="Num" ucd="meta.id;meta.number" datatype="char" arraysize="6"', "object"),
    ('ID="name" name="Name" ucd="meta.id;meta.main" datatype="char" arraysize="32"', "object"),
    ('ID="ra" name="RA" ucd="pos.eq.ra;meta.main" datatype="char" arraysize="13" unit="h:m:s"', "object"),
    ('ID="de" name="DEC" ucd="pos.eq.dec;meta.main" datatype="char" arraysize="13" unit="d:m:s"', "object"),
    ('ID="class" name="Class" ucd="meta.code.class;src.class" datatype="char" arraysize="24"', "object"),
    ('ID="magV" name="Mv" ucd="phot.mag;em.opt.V" datatype="float" width="13" precision="2"', "object"),
    (
        'ID="errpos" name="ErrPos" ucd="stat.error.sys" datatype="float" width="10" precision="3" unit="arcsec"',
        "object",
    ),
    ('ID="angdist" name="d" ucd="pos.ang" datatype="float" width="8" precision="3" unit="arcsec"', "object"),
    ('ID="dracosdec" name="dRAcosDec" ucd="pos.pm;pos.eq.ra" datatype="double" width="12" unit="arcsec/h"', "basic"),
    ('ID="ddec" name="dDEC" ucd="pos.pm;pos.eq.dec" datatype="double" width="12" unit="arcsec/h"', "basic"),
    ('ID="dgeo" name="Dgeo" ucd="phys.distance" datatype="double" width="15" unit="AU"', "basic"),
    ('ID="dhelio" name="Dhelio" ucd="phys.distance" datatype="double" width="15" unit="AU"', "basic"),
    (
        'ID="_raj2000" name="_RAJ2000" ucd="pos.eq.ra" datatype="double" precision="9" width="13" unit="deg" '
        'type="hidden"',
        "hidden",
    ),
    (
        'ID="_decj2000" name="_DECJ2000" ucd="pos.eq.dec" datatype="double" precision="9" width="13" unit="deg" '
        'type="hidden"',
        "hidden",
    ),
]


def hms(ra_deg: float) -> str:
    """``hh mm ss.ssss`` of an RA in degrees."""
    total = round((ra_deg % 360.0) / 15.0 * 3600.0, 4)
    h, rest = divmod(total, 3600.0)
    m, s = divmod(rest, 60.0)
    return f"{int(h) % 24:02d} {int(m):02d} {s:07.4f}"


def dms(dec_deg: float) -> str:
    """``+dd mm ss.sss`` of a Dec in degrees (the sign even for -0 deg)."""
    sign = "-" if dec_deg < 0 else "+"
    total = round(abs(dec_deg) * 3600.0, 3)
    d, rest = divmod(total, 3600.0)
    m, s = divmod(rest, 60.0)
    return f"{sign}{int(d):02d} {int(m):02d} {s:06.3f}"


def framed(h: Any, how: str, code: int, body: bytes, content_type: str) -> None:
    """Send an answer without Content-Length: read to the close, or chunked (whole or cut)."""
    h.send_response(code)
    h.send_header("Content-Type", content_type)
    if how != "unframed":
        h.send_header("Transfer-Encoding", "chunked")
    h.end_headers()
    if how == "unframed":
        h.wfile.write(body)
    elif how == "chunked":
        for i in range(0, len(body), 512):
            part = body[i : i + 512]
            h.wfile.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
        h.wfile.write(b"0\r\n\r\n")
    else:  # chunked_cut: half the body (nothing if it is empty), no closing chunk
        half = body[: len(body) // 2]
        if half:
            h.wfile.write(f"{len(half):x}\r\n".encode() + half + b"\r\n")
    h.wfile.flush()
    h.close_connection = True


class SkybotStandIn(StandInServer):
    """``objects`` at ``epoch0_jd``, moved linearly to the epoch asked for."""

    def __init__(
        self, objects: pd.DataFrame, epoch0_jd: float, hidden_positions: bool = True, no_object: str = "empty"
    ):
        super().__init__()
        if no_object not in ("empty", "legacy", "table"):
            raise ValueError(f"no_object={no_object!r}: 'empty', 'legacy' or 'table'")
        self.objects = objects.reset_index(drop=True)
        self.epoch0_jd = float(epoch0_jd)
        self.hidden_positions = hidden_positions
        self.no_object = no_object
        self.tickets = 0

    @property
    def base_url(self) -> str:
        return self.url + PATH

    def handle(self, h: Any, seen: Seen) -> None:
        action = self.next_action()
        seen.extra["action"] = action[0] if action else "ok"
        if action is not None and self.answer_status(h, action):
            return
        if seen.method != "GET" or seen.path != PATH:
            self.send(h, 404, b"<html><body>not found</body></html>", "text/html")
            return
        args = {k: v[-1] for k, v in seen.query.items()}
        seen.extra["args"] = args
        if action is not None and action[0] == "raw":
            self.send(h, 200, bytes(action[1]), str(action[2]))
            return
        if action is not None and action[0] == "error":
            self.send(h, 200, self.votable_error(str(action[1]), args), "text/xml")
            return
        code, body, ctype = self.answer(args, seen)
        if action is not None and action[0] in ("unframed", "chunked", "chunked_cut"):
            framed(h, action[0], code, body, ctype)
            return
        deliver(self, h, action, code, body, ctype)

    # ------------------------------------------------------------------ the query
    def select(self, args: dict[str, str]) -> tuple[pd.DataFrame | None, str]:
        """The objects in the cone at the epoch, or (None, reason) for a bad request."""
        try:
            epoch = float(args["-ep"])
        except (KeyError, ValueError):
            return None, "the epoch (-ep) is missing or not a Julian date"
        if not EPOCH_MIN_JD <= epoch <= EPOCH_MAX_JD:
            return None, f"epoch {epoch} is out of the range of the SkyBoT database"
        try:
            ra0, dec0 = float(args["-ra"]), float(args["-dec"])
        except (KeyError, ValueError):
            return None, "the field centre (-ra, -dec) is missing"
        if "-rd" in args:
            radius = float(args["-rd"])
        elif "-rs" in args:
            radius = float(args["-rs"]) / 3600.0
        else:
            return None, "the field radius (-rd or -rs) is missing"
        max_err = float(args.get("-filter", "120"))
        flags = args.get("-objFilter", "111").ljust(3, "1")
        obj = self.objects
        hours = (epoch - self.epoch0_jd) * 24.0
        dec = obj["dec"].to_numpy(np.float64) + obj["dDEC"].to_numpy(np.float64) * hours / 3600.0
        ra = obj["ra"].to_numpy(np.float64) + obj["dRAcosDec"].to_numpy(np.float64) * hours / 3600.0 / np.cos(
            np.radians(dec)
        )
        sep = sep_deg(ra0, dec0, ra, dec)
        cls = obj["Class"].astype(str)
        is_planet = cls.str.startswith("Planet").to_numpy()
        is_comet = cls.str.startswith("Comet").to_numpy()
        kind_ok = np.where(is_planet, flags[1] == "1", np.where(is_comet, flags[2] == "1", flags[0] == "1"))
        keep = (sep <= radius) & (obj["ErrPos"].to_numpy(np.float64) <= max_err) & kind_ok
        found = obj.loc[keep].copy()
        found["ra"] = ra[keep] % 360.0
        found["dec"] = dec[keep]
        found["d"] = sep[keep] * 3600.0
        return found.sort_values("d", kind="stable").reset_index(drop=True), ""

    def answer(self, args: dict[str, str], seen: Seen) -> tuple[int, bytes, str]:
        found, reason = self.select(args)
        seen.extra["n_found"] = None if found is None else len(found)
        text = args.get("-mime", "votable") == "text"
        if found is None:
            if text:
                return 200, f"# Flag: -1\n# Ticket: {self.ticket()}\n# {reason}\n".encode(), "text/plain"
            return 200, self.votable_error(reason, args), "text/xml"
        if len(found) == 0 and self.no_object == "empty":
            return 200, b"", "text/plain" if text else "text/xml"
        if text:
            return 200, self.text(found, args).encode(), "text/plain"
        if len(found) == 0 and self.no_object == "legacy":
            return 200, self.votable_error(NO_OBJECT, args), "text/xml"
        return 200, self.votable(found, args).encode(), "text/xml"

    def ticket(self) -> int:
        with self.lock:
            self.tickets += 1
            return 183080492634082511 + self.tickets

    def votable_error(self, message: str, args: dict[str, str]) -> bytes:
        head = _HEAD.format(status="ERROR", message=escape(message), ticket=self.ticket(), epoch=args.get("-ep", ""))
        return (head + "</vot:VOTABLE>\n").encode()

    def votable(self, found: pd.DataFrame, args: dict[str, str]) -> str:
        output = args.get("-output", "basic")
        groups = {"object"} if output == "object" else {"object", "basic"}
        if self.hidden_positions:
            groups.add("hidden")
        fields = [f for f, group in _FIELDS if group in groups]
        parts = [_HEAD.format(status="OK", message="", ticket=self.ticket(), epoch=escape(args.get("-ep", "")))]
        parts.append(
            '<vot:RESOURCE name="Skybot.ConeSearch"><vot:DESCRIPTION>SkyBoT - List of the targets located in the FOV'
            '</vot:DESCRIPTION>\n<vot:INFO name="QUERY_STATUS" value="OK"/>\n'
            '<vot:PARAM ID="observer" name="Observer" datatype="char" arraysize="*" '
            f'value="{escape(args.get("-loc", ""))}"/>\n'
            f'<vot:TABLE ID="SkybotConeSearch_results" name="SkybotConeSearch" nrows="{len(found)}">\n'
        )
        parts += [f"<vot:FIELD {f}/>\n" for f in fields]
        parts.append("<vot:DATA><vot:TABLEDATA>\n")
        for row in found.itertuples(index=False):
            num = "-" if row.Num is None or pd.isna(row.Num) else str(int(row.Num))
            cells = [
                num,
                escape(str(row.Name)),
                hms(row.ra),
                dms(row.dec),
                escape(str(row.Class)),
                f"{row.Mv:.2f}",
                f"{row.ErrPos:.3f}",
                f"{row.d:.3f}",
            ]
            if "basic" in groups:
                cells += [f"{row.dRAcosDec:.4f}", f"{row.dDEC:.3f}", "2.500000000", "3.100000000"]
            if "hidden" in groups:
                cells += [repr(float(row.ra)), repr(float(row.dec))]
            parts.append("<vot:TR>" + "".join(f"<vot:TD>{c}</vot:TD>" for c in cells) + "</vot:TR>\n")
        parts.append("</vot:TABLEDATA></vot:DATA>\n</vot:TABLE>\n</vot:RESOURCE>\n</vot:VOTABLE>\n")
        return "".join(parts)

    def text(self, found: pd.DataFrame, args: dict[str, str]) -> str:
        if len(found) == 0:
            return f"# Flag: 0\n# Ticket: {self.ticket()}\n{NO_OBJECT}\n"
        basic = args.get("-output", "basic") != "object"
        header = "# Num | Name | RA(h) | DE(deg) | Class | Mv | Err(arcsec) | d(arcsec)"
        if basic:
            header += " | dRA(arcsec/h) | dDEC(arcsec/h) | Dg(ua) | Dh(ua)"
        lines = ["# Flag: 1", f"# Ticket: {self.ticket()}", header]
        for row in found.itertuples(index=False):
            num = "-" if row.Num is None or pd.isna(row.Num) else str(int(row.Num))
            cells = [
                num,
                str(row.Name),
                hms(row.ra),
                dms(row.dec),
                str(row.Class),
                f"{row.Mv:.1f}",
                f"{row.ErrPos:.3f}",
                f"{row.d:.3f}",
            ]
            if basic:
                cells += [f"{row.dRAcosDec:.4f}", f"{row.dDEC:.3f}", "2.5", "3.1"]
            lines.append(" | ".join(cells))
        return "\n".join(lines) + "\n"

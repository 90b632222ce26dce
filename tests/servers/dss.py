"""A stand-in for the STScI ``dss_search`` cutout service.

It serves one FITS file (``body``, replaceable by the test) for every
``GET /cgi-bin/dss_search?...`` and can be scripted, one action per request
(``queue``), to answer:

* ``("status", code, headers)``: that status (429 with ``Retry-After``,
  404, 500/502/503/504...);
* ``("html",)``: a 200 HTML error page, as the real service does;
* ``("truncated",)``: the FITS file cut to a size that is not a multiple of
  2880, with a matching Content-Length;
* ``("short_data",)``: the FITS file cut at a block boundary, so the data is
  shorter than NAXIS says;
* ``("cut",)``: the full Content-Length announced, half the body sent, then
  the connection closed;
* ``("empty",)``: a 200 with no body;
* ``("text",)``: a 200 plain-text body that is neither FITS nor HTML;
* ``("slow", seconds)``: wait that long before answering (past the client's
  read timeout);
* ``("gzip",)``: the FITS file gzip-compressed (as a gzip body, no
  Content-Encoding);
* ``("ok",)`` or ``("pass",)``: the FITS file (also the answer once the
  script is used up).

Every answer is delayed by ``delay`` seconds (concurrency tests); ``max_active``
counts the most simultaneous requests seen.
"""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

from servers.base import Seen, StandInServer

PATH = "/cgi-bin/dss_search"

HTML_PAGE = b"""<!DOCTYPE html>
<html><head><title>DSS Search Error</title></head>
<body><h1>Error</h1><p>The server is busy, please try again later.</p></body></html>
"""


class DssStandIn(StandInServer):
    def __init__(self, body: bytes | Path, delay: float = 0.0):
        super().__init__()
        self.body = Path(body).read_bytes() if isinstance(body, Path) else bytes(body)
        self.delay = delay

    @property
    def base_url(self) -> str:
        return self.url + PATH

    def handle(self, h: Any, seen: Seen) -> None:
        if seen.path != PATH:
            self.send(h, 404, b"no such page\n", "text/plain")
            return
        if self.delay:
            self.stopping.wait(self.delay)
        action = self.next_action() or ("ok",)
        seen.extra["action"] = action[0]
        if self.answer_status(h, action):
            return
        kind = action[0]
        body = self.body
        if kind in ("ok", "pass"):
            self.send(h, 200, body, "image/x-fits")
        elif kind == "html":
            self.send(h, 200, HTML_PAGE, "text/html")
        elif kind == "truncated":
            self.send(h, 200, body[: len(body) - 1234], "image/x-fits")
        elif kind == "short_data":
            self.send(h, 200, body[: 2880 * 20], "image/x-fits")
        elif kind == "cut":
            h.send_response(200)
            h.send_header("Content-Type", "image/x-fits")
            h.send_header("Content-Length", str(len(body)))
            h.end_headers()
            h.wfile.write(body[: len(body) // 2])
            h.wfile.flush()
            h.close_connection = True
        elif kind == "empty":
            self.send(h, 200, b"", "image/x-fits")
        elif kind == "text":
            self.send(h, 200, b"ERROR: no plate found at this position\n", "text/plain")
        elif kind == "slow":
            if not self.stopping.wait(float(action[1])):
                self.send(h, 200, body, "image/x-fits")
        elif kind == "gzip":
            self.send(h, 200, gzip.compress(body), "application/x-gzip")
        elif kind == "bad_gzip":
            # Says gzip, is not: the gzip magic followed by garbage.
            self.send(h, 200, b"\x1f\x8b\x08\x00" + bytes(range(256)) * 8, "image/x-fits", {"Content-Encoding": "gzip"})
        else:
            raise ValueError(f"unknown DSS stand-in action {action!r}")

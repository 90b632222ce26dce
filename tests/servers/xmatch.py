"""A stand-in for the CDS XMatch sync API, as astroquery calls it.

* ``GET <url>/tables?action=getVizieRTableNames&RESPONSEFORMAT=txt``: the
  table list as plain text, one name a line: ``simbad``, then the test's
  tables (without ``vizier:``), then ``extra_names`` (names listed but with no
  data, like the thousands of VizieR tables a test does not query).  Other
  ``action`` values answer 400.

Verified, and where from: the path ``<sync url>/tables``, the GET and its two
parameters are what astroquery's ``XMatchClass.get_available_tables`` sends
(``astroquery/xmatch/core.py``, astroquery main as of 2026-08); the answer
format (text, one name per line, VizieR ids without ``vizier:``, ``simbad``
listed) is astroquery's recorded answer ``astroquery/xmatch/tests/data/tables.csv``
and how astroquery reads it (``response.text.splitlines()``, then
``cat2`` minus ``vizier:`` looked up in it); the default endpoint
``https://cdsxmatch.cds.unistra.fr/xmatch/api/v1/sync`` is
``astroquery.xmatch.conf.url``.  The job request (``request=xmatch``,
``distMaxArcsec``, ``cat1`` upload with ``colRA1``/``colDec1``, ``cat2``,
``area``) is what astroquery's ``query_async`` builds.  Not verified: the
service's exact error text for an unknown ``cat2`` and for a parallel job
(the stand-in's wording is its own).
* ``POST <url>`` (multipart): ``request=xmatch``, ``distMaxArcsec``,
  ``RESPONSEFORMAT=csv``, ``cat1`` an uploaded CSV file with ``colRA1`` and
  ``colDec1``, ``cat2=vizier:<table>``, ``area=allsky`` or ``area=cone`` with
  ``coneRA``/``coneDec``/``coneRadiusDeg``.  Answers CSV: ``angDist``
  (arcsec), then the uploaded columns, then the catalogue's columns, one row
  per pair within the distance (only matched pairs, like the real service).

Like CDS, it answers 403 to a job that arrives while another one is running
(``job_delay`` keeps each job busy for a while so overlaps show).
"""

from __future__ import annotations

import io
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any

import numpy as np
import pandas as pd

from servers.base import Seen, StandInServer
from servers.vizier import sep_deg

PATH = "/xmatch/api/v1/sync"


def parse_multipart(content_type: str, body: bytes) -> tuple[dict[str, str], dict[str, bytes]]:
    msg = BytesParser(policy=HTTP).parsebytes(b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body)
    fields: dict[str, str] = {}
    files: dict[str, bytes] = {}
    for part in msg.iter_parts():
        name = part.get_param("name", header="content-disposition")
        data = part.get_payload(decode=True) or b""
        if part.get_filename():
            files[name] = data
        else:
            fields[name] = data.decode("utf-8")
    return fields, files


class XMatchStandIn(StandInServer):
    """``tables`` maps ``vizier:<table>`` to (DataFrame, ra column, dec column)."""

    def __init__(
        self,
        tables: dict[str, tuple[pd.DataFrame, str, str]],
        job_delay: float = 0.0,
        extra_names: tuple[str, ...] = (),
    ):
        super().__init__()
        self.tables = tables
        self.extra_names = tuple(extra_names)
        self.table_list_requests = 0
        self.job_delay = job_delay
        self.jobs_running = 0
        self.max_jobs_running = 0
        self.jobs: list[dict[str, Any]] = []

    @property
    def sync_url(self) -> str:
        return self.url + PATH

    def handle(self, h: Any, seen: Seen) -> None:
        action = self.next_action()
        if action is not None and self.answer_status(h, action):
            return
        if seen.method == "GET" and seen.path == PATH + "/tables":
            with self.lock:
                self.table_list_requests += 1
            if seen.query.get("action") != ["getVizieRTableNames"] or seen.query.get("RESPONSEFORMAT") != ["txt"]:
                self.send(h, 400, b"unsupported action", "text/plain")
                return
            listed = ["simbad", *(k.removeprefix("vizier:") for k in self.tables), *self.extra_names]
            self.send(h, 200, ("\n".join(listed) + "\n").encode(), "text/plain")
            return
        if seen.method != "POST" or seen.path != PATH:
            self.send(h, 404, b"not found", "text/plain")
            return
        with self.lock:
            self.jobs_running += 1
            self.max_jobs_running = max(self.max_jobs_running, self.jobs_running)
            parallel = self.jobs_running > 1
        try:
            if parallel:
                code, body = 403, b"parallel jobs are not allowed"
            else:
                if self.job_delay:
                    self.stopping.wait(self.job_delay)
                code, body = self._job(seen)
        finally:
            # The job is over when its answer is ready (before it is sent).
            with self.lock:
                self.jobs_running -= 1
        self.send(h, code, body, "text/csv" if code == 200 else "text/plain")

    def _job(self, seen: Seen) -> tuple[int, bytes]:
        fields, files = parse_multipart(seen.headers.get("Content-Type", ""), seen.body)
        if fields.get("request") != "xmatch" or "cat1" not in files or fields.get("RESPONSEFORMAT") != "csv":
            return 400, b"bad request"
        cat1 = pd.read_csv(io.BytesIO(files["cat1"]), dtype=str)
        name = fields.get("cat2", "")
        with self.lock:
            self.jobs.append({"fields": fields, "n_upload": len(cat1)})
        if name not in self.tables:
            return 400, f"unknown table {name}".encode()
        table, ra_col, dec_col = self.tables[name]
        ra1 = cat1[fields["colRA1"]].astype(float).to_numpy()
        dec1 = cat1[fields["colDec1"]].astype(float).to_numpy()
        ra2 = table[ra_col].to_numpy(np.float64)
        dec2 = table[dec_col].to_numpy(np.float64)
        keep2 = np.ones(len(table), dtype=bool)
        if fields.get("area") == "cone":
            keep2 = sep_deg(float(fields["coneRA"]), float(fields["coneDec"]), ra2, dec2) <= float(
                fields["coneRadiusDeg"]
            )
        dmax = float(fields["distMaxArcsec"]) / 3600.0
        rows = []
        for i in range(len(cat1)):
            d = sep_deg(ra1[i], dec1[i], ra2, dec2)
            for j in np.flatnonzero((d <= dmax) & keep2):
                rows.append((d[j] * 3600.0, i, j))
        out = pd.DataFrame(
            {
                "angDist": [r[0] for r in rows],
                **{c: cat1[c].to_numpy()[[r[1] for r in rows]] for c in cat1.columns},
                **{c: table[c].to_numpy()[[r[2] for r in rows]] for c in table.columns},
            }
        )
        return 200, out.to_csv(index=False).encode()

"""Cone queries on VizieR catalogues, without a silent row cap.

:func:`query_cone` builds the request with astroquery's own
:class:`astroquery.vizier.VizierClass` (``query_region_async(...,
get_query_payload=True)``: the ``-source``, ``-out``, ``-out.max``, ``-c``,
``-c.rd`` script astroquery would POST to ``<server>/viz-bin/votable``) and
sends it through :class:`vasco.sources.http.HttpClient` (timeouts, retries,
backoff, size cap; reason tokens ``FAIL_VIZIER_*``).

Truncation: VizieR stops at ``-out.max`` rows and says so with
``<INFO name="QUERY_STATUS" value="OVERFLOW">truncated result ...</INFO>``
in the answer (after the TABLE).  astroquery does not report it (its parser
keeps the tables only), so the VOTable is parsed here with
:mod:`astropy.io.votable` and every INFO is looked at.  An answer with that
INFO, or with ``row_limit`` rows or more, is treated as truncated: the cone is
covered by 4 smaller cones (centres at ``r/sqrt(2)`` towards PA 45, 135, 225,
315 deg, radius ``cover_margin * r/sqrt(2)``: they cover the disc), queried
recursively up to ``max_split_depth`` times (then ``FAIL_VIZIER_TRUNCATED``).
Rows are deduplicated on the source id and cut to the requested cone with
their own coordinates, so a split and an unsplit query give the same rows.

Server URL: the ``server_url`` argument, else ``$VASCO_VIZIER_URL``, else
``VizierConfig.server_url``, else astroquery's ``conf.server`` (the knob
astroquery has: ``Vizier(vizier_server=...)`` / ``astroquery.vizier.conf.server``,
a host name only, to which astroquery always prefixes ``https://``).  A full
URL with its scheme (``http://127.0.0.1:8123``) is accepted here: the
astroquery class is subclassed to build ``<url>/viz-bin/votable``.
"""

from __future__ import annotations

import functools
import io
import os
from collections.abc import Sequence
from dataclasses import dataclass, field

import astropy.units as u
import numpy as np
import pandas as pd
from astropy.coordinates import SkyCoord
from astropy.io import votable

from vasco.matching.crossmatch import angular_separation_arcsec
from vasco.sources.config import VizierConfig
from vasco.sources.http import HttpClient, SourceError

__all__ = [
    "VIZIER_URL_ENV",
    "VizierCatalog",
    "GAIA_EDR3",
    "PS1_DR2",
    "KNOWN_CATALOGS",
    "ConeStats",
    "vizier_base_url",
    "query_cone",
    "cover_disc",
]

VIZIER_URL_ENV = "VASCO_VIZIER_URL"
SERVICE = "VIZIER"


@dataclass(frozen=True)
class VizierCatalog:
    """A VizieR table and the columns VASCO asks of it."""

    name: str
    columns: tuple[str, ...]
    ra_column: str
    dec_column: str
    id_column: str


#: Gaia EDR3 (positions at epoch 2016.0, with proper motions).
GAIA_EDR3 = VizierCatalog(
    "I/350/gaiaedr3",
    ("RA_ICRS", "DE_ICRS", "pmRA", "pmDE", "Plx", "Gmag", "Source", "Epoch"),
    "RA_ICRS",
    "DE_ICRS",
    "Source",
)
#: Pan-STARRS1 DR2 mean objects (no proper motions; Dec >= -30 only).
PS1_DR2 = VizierCatalog(
    "II/389/ps1_dr2",
    ("RAJ2000", "DEJ2000", "objID", "Qual", "gmag", "rmag", "imag"),
    "RAJ2000",
    "DEJ2000",
    "objID",
)
KNOWN_CATALOGS: dict[str, VizierCatalog] = {c.name: c for c in (GAIA_EDR3, PS1_DR2)}


@dataclass
class ConeStats:
    """What a :func:`query_cone` call did (pass one to see it)."""

    requests: int = 0
    truncated_answers: int = 0
    max_depth: int = 0
    rows_received: int = 0
    cones: list[tuple[float, float, float]] = field(default_factory=list)


def vizier_base_url(server_url: str | None = None, config: VizierConfig | None = None) -> str:
    """Base URL (scheme://host[:port][/path]) of the VizieR server to use."""
    url = server_url or os.environ.get(VIZIER_URL_ENV, "").strip() or (config or VizierConfig()).server_url
    if not url:
        from astroquery.vizier import conf

        url = str(conf.server)
    if "://" not in url:
        url = "https://" + url
    return url.rstrip("/")


@functools.cache
def _vizier_class() -> type:  # astroquery is imported lazily (its import is slow)
    from astroquery.vizier import VizierClass

    class _VizierAt(VizierClass):
        """astroquery's Vizier with a full base URL (scheme included)."""

        def __init__(self, base_url: str, **kwargs):
            super().__init__(**kwargs)
            self.base_url = base_url

        def _server_to_url(self, return_type: str = "votable") -> str:
            super()._server_to_url(return_type)  # keeps astroquery's checks on return_type
            return f"{self.base_url}/viz-bin/{return_type}"

    return _VizierAt


def _unit(ra: float, dec: float) -> np.ndarray:
    a, d = np.radians(ra), np.radians(dec)
    return np.array([np.cos(d) * np.cos(a), np.cos(d) * np.sin(a), np.sin(d)])


def _radec(v: np.ndarray) -> tuple[float, float]:
    v = v / np.linalg.norm(v)
    return float(np.degrees(np.arctan2(v[1], v[0])) % 360.0), float(np.degrees(np.arcsin(np.clip(v[2], -1, 1))))


def cover_disc(ra: float, dec: float, radius_deg: float, margin: float = 1.02) -> list[tuple[float, float, float]]:
    """Four cones ``(ra, dec, radius)`` that together cover the cone.

    Their centres are ``r/sqrt(2)`` from the centre towards position angles
    45, 135, 225 and 315 deg (the centres of the quadrants of the square
    circumscribing the disc) and their radius ``margin * r/sqrt(2)``.
    Built from unit vectors, so it works at the poles too.
    """
    c = _unit(ra, dec)
    east = np.cross([0.0, 0.0, 1.0], c)
    if np.linalg.norm(east) < 1e-12:  # at a pole: any tangent basis will do
        east = np.array([0.0, 1.0, 0.0])
    east /= np.linalg.norm(east)
    north = np.cross(c, east)
    step = np.radians(radius_deg / np.sqrt(2.0))
    out = []
    for pa in (45.0, 135.0, 225.0, 315.0):
        t = np.radians(pa)
        v = np.cos(step) * c + np.sin(step) * (np.cos(t) * north + np.sin(t) * east)
        sra, sdec = _radec(v)
        out.append((sra, sdec, margin * radius_deg / np.sqrt(2.0)))
    return out


def _spec(
    catalog: str,
    columns: Sequence[str] | None,
    id_column: str | None,
    ra_column: str | None,
    dec_column: str | None,
) -> VizierCatalog:
    known = KNOWN_CATALOGS.get(catalog)
    cols = tuple(columns) if columns else (known.columns if known else ())
    ra_c = ra_column or (known.ra_column if known else None)
    dec_c = dec_column or (known.dec_column if known else None)
    id_c = id_column or (known.id_column if known else None)
    if not (cols and ra_c and dec_c and id_c):
        raise ValueError(
            f"VizieR catalogue {catalog!r} is not one of {sorted(KNOWN_CATALOGS)}: give columns, "
            "ra_column, dec_column and id_column"
        )
    for c in (ra_c, dec_c, id_c):
        if c not in cols:
            cols = cols + (c,)
    return VizierCatalog(catalog, cols, ra_c, dec_c, id_c)


def _parse_answer(content: bytes, url: str) -> tuple[pd.DataFrame | None, bool]:
    """Tables of a VizieR VOTable answer (None if no table) and its overflow flag."""
    head = content[:2048].lstrip()
    if not content.strip():
        raise SourceError(f"FAIL_{SERVICE}_EMPTY", f"{url}: empty answer")
    if not (head.startswith(b"<?xml") or head.startswith(b"<VOTABLE")):
        kind = "HTML" if b"<html" in head.lower() or head.startswith(b"<") else "NOT_VOTABLE"
        raise SourceError(f"FAIL_{SERVICE}_{kind}", f"{url}: answer is not a VOTable: {head[:120]!r}")
    try:
        vot = votable.parse(io.BytesIO(content), verify="ignore")
        overflow = False
        for info in vot.iter_info():
            if str(info.name).upper() == "QUERY_STATUS":
                value = str(info.value).upper()
                if value == "OVERFLOW":
                    overflow = True
                elif value == "ERROR":
                    raise SourceError(f"FAIL_{SERVICE}_ERROR", f"{url}: VizieR error: {info.content or info.value}")
        frames = [t.to_table(use_names_over_ids=True).to_pandas() for t in vot.iter_tables()]
    except SourceError:
        raise
    except Exception as exc:  # astropy raises many kinds on a broken VOTable
        raise SourceError(f"FAIL_{SERVICE}_BAD_VOTABLE", f"{url}: cannot parse the VOTable ({exc})") from exc
    if not frames:
        return None, overflow
    return (frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)), overflow


def query_cone(
    catalog: str,
    ra: float,
    dec: float,
    radius_deg: float,
    columns: Sequence[str] | None = None,
    row_limit: int | None = None,
    server_url: str | None = None,
    *,
    id_column: str | None = None,
    ra_column: str | None = None,
    dec_column: str | None = None,
    config: VizierConfig | None = None,
    http: HttpClient | None = None,
    stats: ConeStats | None = None,
) -> pd.DataFrame:
    """All rows of a VizieR catalogue within a cone.

    Parameters
    ----------
    catalog : str
        VizieR table, e.g. ``'I/350/gaiaedr3'`` or ``'II/389/ps1_dr2'``
        (:data:`KNOWN_CATALOGS` have default columns and id/RA/Dec columns).
    ra, dec, radius_deg : float
        Cone in degrees (ICRS).
    columns : sequence of str, optional
        Columns to return (the RA, Dec and id columns are always added).
    row_limit : int, optional
        ``-out.max`` of one request (default ``VizierConfig.row_limit``); an
        answer that reaches it is split, never silently kept.
    server_url : str, optional
        Overrides ``$VASCO_VIZIER_URL`` and the configuration.
    id_column, ra_column, dec_column : str, optional
        Needed for catalogues not in :data:`KNOWN_CATALOGS`.
    config : VizierConfig, optional
    http : HttpClient, optional
        Client to use (tests inject one); service name set to ``VIZIER``.
    stats : ConeStats, optional
        Filled with the number of requests, truncated answers and depth.

    Returns
    -------
    pandas.DataFrame
        The requested columns, float64 RA/Dec, unique on the id column,
        sorted by it.

    Raises
    ------
    SourceError
        ``FAIL_VIZIER_*`` (transport, ``HTML``, ``BAD_VOTABLE``, ``ERROR``,
        ``TRUNCATED`` when splitting cannot get under the row limit).
    """
    cfg = config or VizierConfig()
    ra, dec, radius_deg = float(ra), float(dec), float(radius_deg)
    if not (np.isfinite(ra) and np.isfinite(dec) and -90.0 <= dec <= 90.0):
        raise ValueError(f"cone centre ra={ra}, dec={dec} is not a valid sky position")
    if not (np.isfinite(radius_deg) and 0.0 < radius_deg <= 10.0):
        raise ValueError(f"cone radius {radius_deg} deg is outside (0, 10]")
    ra %= 360.0
    limit = int(row_limit if row_limit is not None else cfg.row_limit)
    if limit < 1:
        raise ValueError(f"row_limit must be positive, got {limit}")
    spec = _spec(catalog, columns, id_column, ra_column, dec_column)
    if http is None:
        client = HttpClient(SERVICE, cfg.http)
    else:
        client = http.with_service(SERVICE, cfg.http if config is not None else None)
    stats = stats if stats is not None else ConeStats()
    base = vizier_base_url(server_url, cfg)
    viz = _vizier_class()(
        base, columns=list(spec.columns), row_limit=limit, catalog=spec.name, timeout=client.config.read_timeout_s
    )
    url = viz._server_to_url("votable")
    frames: list[pd.DataFrame] = []
    template: list[pd.DataFrame] = []

    def one_cone(c_ra: float, c_dec: float, r: float, depth: int) -> None:
        payload = viz.query_region_async(
            SkyCoord(c_ra * u.deg, c_dec * u.deg, frame="icrs"),
            radius=r * u.deg,
            frame="icrs",
            get_query_payload=True,
            cache=False,
        )
        stats.requests += 1
        stats.cones.append((c_ra, c_dec, r))
        stats.max_depth = max(stats.max_depth, depth)
        answer = client.fetch("POST", url, data=payload.encode("utf-8"))
        table, overflow = _parse_answer(answer.content, url)
        n = 0 if table is None else len(table)
        stats.rows_received += n
        if table is not None and not template:
            template.append(table.iloc[:0])
        if overflow or n >= limit:
            stats.truncated_answers += 1
            if depth >= cfg.max_split_depth:
                raise SourceError(
                    f"FAIL_{SERVICE}_TRUNCATED",
                    f"{spec.name}: cone ({c_ra:.5f}, {c_dec:+.5f}, r={r:.5f} deg) still has >= {limit} rows "
                    f"after {depth} splits; raise row_limit or max_split_depth",
                )
            for s_ra, s_dec, s_r in cover_disc(c_ra, c_dec, r, cfg.cover_margin):
                one_cone(s_ra, s_dec, s_r, depth + 1)
            return
        if n:
            frames.append(table)

    one_cone(ra, dec, radius_deg, 0)
    return _finish(frames, template, spec, ra, dec, radius_deg)


def _finish(
    frames: list[pd.DataFrame],
    template: list[pd.DataFrame],
    spec: VizierCatalog,
    ra: float,
    dec: float,
    radius_deg: float,
) -> pd.DataFrame:
    if frames:
        table = pd.concat(frames, ignore_index=True)
    elif template:
        table = template[0]
    else:
        table = pd.DataFrame({c: pd.Series(dtype=np.float64) for c in spec.columns})
    missing = [c for c in (spec.ra_column, spec.dec_column, spec.id_column) if c not in table.columns]
    if missing:
        raise SourceError(
            f"FAIL_{SERVICE}_COLUMNS", f"{spec.name}: answer lacks column(s) {missing}; it has {list(table.columns)}"
        )
    table[spec.ra_column] = table[spec.ra_column].astype(np.float64)
    table[spec.dec_column] = table[spec.dec_column].astype(np.float64)
    sep = angular_separation_arcsec(ra, dec, table[spec.ra_column].to_numpy(), table[spec.dec_column].to_numpy())
    table = table.loc[sep <= radius_deg * 3600.0]
    has_id = table[spec.id_column].notna()
    if has_id.all():
        table = table.drop_duplicates(subset=[spec.id_column])
    else:  # rows without an id are told apart by position
        table = pd.concat(
            [
                table.loc[has_id].drop_duplicates(subset=[spec.id_column]),
                table.loc[~has_id].drop_duplicates(subset=[spec.ra_column, spec.dec_column]),
            ],
            ignore_index=True,
        )
    return table.sort_values(spec.id_column, kind="stable").reset_index(drop=True)

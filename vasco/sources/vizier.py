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

Column constraints (``column_filters={"R2mag": "<=15.3"}``) are passed the
way astroquery passes them: one ``column=constraint`` line of the script, in
VizieR's syntax (``<x``, ``>x``, ``<=x``, ``>=x``, ``=x``, ``!=x``,
``x..y``).  A constrained query is split on truncation like any other.

Catalogues: the tables VASCO uses have a :class:`VizierCatalog` (default
columns, RA/Dec and id columns) in :data:`KNOWN_CATALOGS`.  Any other table
can be named: without ``columns`` it is asked for its default columns plus
VizieR's computed ``_RAJ2000``/``_DEJ2000``; the RA/Dec columns are then
found in the answer (numeric columns whose UCD is ``pos.eq.ra;meta.main`` /
``pos.eq.dec;meta.main``, else ``_RAJ2000``/``_DEJ2000``, else the usual
names) and the id column by the UCD ``meta.id;meta.main`` (without one, rows
are deduplicated on all their values).

Many small cones: :func:`query_positions` sends a list of positions in one
request (astroquery's list form, ``-c=<<====AstroqueryList`` ... one
``ra+dec`` per line ... ``====AstroqueryList``, with ``-c.rs`` the radius),
``VizierConfig.positions_per_request`` positions at a time; a full answer is
halved, down to one position, which is then an ordinary split cone.  Rows are
paired with every requested position within the radius by their own
coordinates (VizieR's ``_q`` column is not relied upon).

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
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import astropy.units as u
import numpy as np
import pandas as pd
from astropy.coordinates import SkyCoord
from astropy.io import votable
from numpy.typing import ArrayLike, NDArray

from vasco.matching.crossmatch import angular_separation_arcsec
from vasco.sources.config import GAIA_EDR3_TABLE, PS1_DR1_TABLE, PS1_DR2_TABLE, VizierConfig
from vasco.sources.http import HttpClient, SourceError

__all__ = [
    "VIZIER_URL_ENV",
    "VizierCatalog",
    "GAIA_EDR3",
    "PS1_DR2",
    "PS1_DR1",
    "USNO_B1",
    "ALLWISE",
    "TWOMASS_PSC",
    "CATWISE2020",
    "VSX",
    "KNOWN_CATALOGS",
    "ConeStats",
    "vizier_base_url",
    "query_cone",
    "query_bright_stars",
    "query_positions",
    "cover_disc",
    "check_cone",
]

VIZIER_URL_ENV = "VASCO_VIZIER_URL"
SERVICE = "VIZIER"
MAX_RADIUS_DEG = 10.0
MAX_POSITION_RADIUS_ARCSEC = 600.0


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
    GAIA_EDR3_TABLE,
    ("RA_ICRS", "DE_ICRS", "pmRA", "pmDE", "Plx", "Gmag", "Source", "Epoch"),
    "RA_ICRS",
    "DE_ICRS",
    "Source",
)
#: Pan-STARRS1 DR2 mean objects (no proper motions; Dec >= -30 only).
PS1_DR2 = VizierCatalog(
    PS1_DR2_TABLE,
    ("RAJ2000", "DEJ2000", "objID", "Qual", "gmag", "rmag", "imag"),
    "RAJ2000",
    "DEJ2000",
    "objID",
)
#: Pan-STARRS1 DR1 mean objects (the table XMatch users ask; ``Epoch`` is the mean epoch as an MJD).
PS1_DR1 = VizierCatalog(
    PS1_DR1_TABLE,
    ("RAJ2000", "DEJ2000", "objID", "Qual", "Epoch", "gmag", "rmag", "imag"),
    "RAJ2000",
    "DEJ2000",
    "objID",
)
#: USNO-B1.0 (bright-star veto: R1/R2 are the POSS-I and POSS-II red plates).
USNO_B1 = VizierCatalog(
    "I/284/out",
    ("USNO-B1.0", "RAJ2000", "DEJ2000", "R1mag", "R2mag", "B1mag", "B2mag", "pmRA", "pmDE"),
    "RAJ2000",
    "DEJ2000",
    "USNO-B1.0",
)
#: AllWISE source catalogue (``ccf`` contamination flags, ``qph`` photometric quality).
ALLWISE = VizierCatalog(
    "II/328/allwise",
    ("AllWISE", "RAJ2000", "DEJ2000", "W1mag", "W2mag", "ccf", "qph"),
    "RAJ2000",
    "DEJ2000",
    "AllWISE",
)
#: 2MASS point-source catalogue.
TWOMASS_PSC = VizierCatalog(
    "II/246/out",
    ("2MASS", "RAJ2000", "DEJ2000", "Jmag", "Hmag", "Kmag"),
    "RAJ2000",
    "DEJ2000",
    "2MASS",
)
#: CatWISE2020 (positions at epoch 2015.4 with proper motions; W1/W2 from the PM fit).
CATWISE2020 = VizierCatalog(
    "II/365/catwise",
    ("Name", "RA_ICRS", "DE_ICRS", "W1mproPM", "W2mproPM", "pmRA", "pmDE"),
    "RA_ICRS",
    "DE_ICRS",
    "Name",
)
#: AAVSO International Variable Star Index.
VSX = VizierCatalog(
    "B/vsx/vsx",
    ("Name", "RAJ2000", "DEJ2000", "Type", "max", "min"),
    "RAJ2000",
    "DEJ2000",
    "Name",
)
KNOWN_CATALOGS: dict[str, VizierCatalog] = {
    c.name: c for c in (GAIA_EDR3, PS1_DR2, PS1_DR1, USNO_B1, ALLWISE, TWOMASS_PSC, CATWISE2020, VSX)
}

#: Columns asked of a table VASCO has no spec for: its default ones and VizieR's J2000 position.
GENERIC_COLUMNS: tuple[str, ...] = ("*", "_RAJ2000", "_DEJ2000")
_RA_NAMES = ("_RAJ2000", "RAJ2000", "RA_ICRS", "RAdeg", "ra", "RA")
_DEC_NAMES = ("_DEJ2000", "DEJ2000", "DE_ICRS", "DEdeg", "dec", "DEC", "DE")
_FILTER_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.+/\-]*$")


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

        def __init__(self, base_url: str, **kwargs: Any):
            super().__init__(**kwargs)
            self.base_url = base_url

        def _server_to_url(self, return_type: str = "votable") -> str:
            super()._server_to_url(return_type)  # keeps astroquery's checks on return_type
            return f"{self.base_url}/viz-bin/{return_type}"

    return _VizierAt


def check_cone(
    ra: float, dec: float, radius_deg: float, max_radius_deg: float = MAX_RADIUS_DEG
) -> tuple[float, float, float]:
    """Validate a cone and return it as float64 ``(ra % 360, dec, radius)``.

    Raises
    ------
    ValueError
        Naming the bad input: a non-finite RA, a Dec outside [-90, 90], a
        radius that is not in ``(0, max_radius_deg]``.
    """
    ra, dec, radius_deg = float(ra), float(dec), float(radius_deg)
    if not np.isfinite(ra):
        raise ValueError(f"cone centre ra={ra} is not a finite number of degrees")
    if not (np.isfinite(dec) and -90.0 <= dec <= 90.0):
        raise ValueError(f"cone centre dec={dec} is outside [-90, 90] deg")
    if not (np.isfinite(radius_deg) and 0.0 < radius_deg <= max_radius_deg):
        raise ValueError(f"cone radius {radius_deg} deg is outside (0, {max_radius_deg:g}]")
    return ra % 360.0, dec, radius_deg


def _unit(ra: float, dec: float) -> NDArray[np.float64]:
    a, d = np.radians(ra), np.radians(dec)
    return np.array([np.cos(d) * np.cos(a), np.cos(d) * np.sin(a), np.sin(d)])


def _radec(v: NDArray[np.float64]) -> tuple[float, float]:
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


# ====================================================================== request plan


@dataclass(frozen=True)
class _Plan:
    """What to ask of one table; RA/Dec/id may be left to detect in the answer."""

    name: str
    columns: tuple[str, ...]
    ra_column: str | None
    dec_column: str | None
    id_column: str | None
    generic: bool


def _plan(
    catalog: str,
    columns: Sequence[str] | None,
    id_column: str | None,
    ra_column: str | None,
    dec_column: str | None,
) -> _Plan:
    if not isinstance(catalog, str) or not catalog.strip() or any(c in catalog for c in "\n\r="):
        raise ValueError(f"VizieR catalogue name {catalog!r} is not a table name like 'I/284/out'")
    catalog = catalog.strip()
    known = KNOWN_CATALOGS.get(catalog)
    if columns is not None and isinstance(columns, str):
        raise ValueError(f"columns must be a sequence of column names, got the string {columns!r}")
    if columns:
        cols = tuple(columns)
    elif known:
        cols = known.columns
    else:
        cols = GENERIC_COLUMNS
    ra_c = ra_column or (known.ra_column if known else None)
    dec_c = dec_column or (known.dec_column if known else None)
    id_c = id_column or (known.id_column if known else None)
    explicit = "*" not in cols and "**" not in cols
    for c in (ra_c, dec_c, id_c):
        if c and explicit and c not in cols:
            cols = cols + (c,)
    return _Plan(catalog, cols, ra_c, dec_c, id_c, generic=known is None)


def _check_filters(column_filters: Mapping[str, str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in (column_filters or {}).items():
        if not isinstance(key, str) or not _FILTER_KEY.match(key):
            raise ValueError(f"column_filters key {key!r} is not a VizieR column name")
        if not isinstance(value, str) or not value.strip() or any(c in value for c in "\n\r"):
            raise ValueError(f"column_filters[{key!r}] = {value!r} is not a one-line VizieR constraint")
        out[key] = value.strip()
    return out


def _parse_answer(content: bytes, url: str) -> tuple[pd.DataFrame | None, bool, dict[str, str]]:
    """Tables of a VizieR VOTable answer (None if no table), its overflow flag and field UCDs."""
    head = content[:2048].lstrip()
    if not content.strip():
        raise SourceError(f"FAIL_{SERVICE}_EMPTY", f"{url}: empty answer")
    if not (head.startswith(b"<?xml") or head.startswith(b"<VOTABLE")):
        kind = "HTML" if b"<html" in head.lower() or head.startswith(b"<") else "NOT_VOTABLE"
        raise SourceError(f"FAIL_{SERVICE}_{kind}", f"{url}: answer is not a VOTable: {head[:120]!r}")
    ucds: dict[str, str] = {}
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
        frames = []
        for t in vot.iter_tables():
            for f in t.fields:
                if f.ucd and str(f.name) not in ucds:
                    ucds[str(f.name)] = str(f.ucd)
            frames.append(t.to_table(use_names_over_ids=True).to_pandas())
    except SourceError:
        raise
    except Exception as exc:  # astropy raises many kinds on a broken VOTable
        raise SourceError(f"FAIL_{SERVICE}_BAD_VOTABLE", f"{url}: cannot parse the VOTable ({exc})") from exc
    if not frames:
        return None, overflow, ucds
    return (frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)), overflow, ucds


@dataclass
class _Run:
    """One call's state: the request builder, the client and what came back."""

    plan: _Plan
    viz: Any
    client: HttpClient
    url: str
    limit: int
    cfg: VizierConfig
    stats: ConeStats
    frames: list[pd.DataFrame] = field(default_factory=list)
    template: list[pd.DataFrame] = field(default_factory=list)
    ucds: dict[str, str] = field(default_factory=dict)

    def send(self, payload: str) -> tuple[pd.DataFrame | None, bool]:
        answer = self.client.fetch("POST", self.url, data=payload.encode("utf-8"))
        table, overflow, ucds = _parse_answer(answer.content, self.url)
        for k, v in ucds.items():
            self.ucds.setdefault(k, v)
        if table is not None:
            table = table.drop(columns=[c for c in ("_q",) if c in table.columns])
            if not self.template:
                self.template.append(table.iloc[:0])
        self.stats.rows_received += 0 if table is None else len(table)
        return table, overflow

    def cone(self, c_ra: float, c_dec: float, r: float, depth: int) -> None:
        """Collect every row within the cone, splitting it while answers are full."""
        payload = self.viz.query_region_async(
            SkyCoord(c_ra * u.deg, c_dec * u.deg, frame="icrs"),
            radius=r * u.deg,
            frame="icrs",
            get_query_payload=True,
            cache=False,
        )
        self.stats.requests += 1
        self.stats.cones.append((c_ra, c_dec, r))
        self.stats.max_depth = max(self.stats.max_depth, depth)
        table, overflow = self.send(payload)
        n = 0 if table is None else len(table)
        if overflow or n >= self.limit:
            self.stats.truncated_answers += 1
            if depth >= self.cfg.max_split_depth:
                raise SourceError(
                    f"FAIL_{SERVICE}_TRUNCATED",
                    f"{self.plan.name}: cone ({c_ra:.5f}, {c_dec:+.5f}, r={r:.5f} deg) still has >= {self.limit} "
                    f"rows after {depth} splits; raise row_limit or max_split_depth",
                )
            for s_ra, s_dec, s_r in cover_disc(c_ra, c_dec, r, self.cfg.cover_margin):
                self.cone(s_ra, s_dec, s_r, depth + 1)
            return
        if table is not None and n:
            self.frames.append(table)

    def positions(self, ras: NDArray[np.float64], decs: NDArray[np.float64], radius_deg: float) -> None:
        """Collect the rows around a list of positions, halving the list while answers are full."""
        if len(ras) == 1:
            self.cone(float(ras[0]), float(decs[0]), radius_deg, 0)
            return
        payload = self.viz.query_region_async(
            SkyCoord(ras * u.deg, decs * u.deg, frame="icrs"),
            radius=radius_deg * 3600.0 * u.arcsec,
            frame="icrs",
            get_query_payload=True,
            cache=False,
        )
        self.stats.requests += 1
        table, overflow = self.send(payload)
        n = 0 if table is None else len(table)
        if overflow or n >= self.limit:
            self.stats.truncated_answers += 1
            half = len(ras) // 2
            self.positions(ras[:half], decs[:half], radius_deg)
            self.positions(ras[half:], decs[half:], radius_deg)
            return
        if table is not None and n:
            self.frames.append(table)


def _start(
    catalog: str,
    columns: Sequence[str] | None,
    row_limit: int | None,
    server_url: str | None,
    column_filters: Mapping[str, str] | None,
    id_column: str | None,
    ra_column: str | None,
    dec_column: str | None,
    config: VizierConfig | None,
    http: HttpClient | None,
    stats: ConeStats | None,
) -> _Run:
    cfg = config or VizierConfig()
    limit = int(row_limit if row_limit is not None else cfg.row_limit)
    if limit < 1:
        raise ValueError(f"row_limit must be positive, got {limit}")
    plan = _plan(catalog, columns, id_column, ra_column, dec_column)
    filters = _check_filters(column_filters)
    if http is None:
        client = HttpClient(SERVICE, cfg.http)
    else:
        client = http.with_service(SERVICE, cfg.http if config is not None else None)
    base = vizier_base_url(server_url, cfg)
    viz = _vizier_class()(
        base,
        columns=list(plan.columns),
        column_filters=filters,
        row_limit=limit,
        catalog=plan.name,
        timeout=client.config.read_timeout_s,
    )
    stats = stats if stats is not None else ConeStats()
    return _Run(plan, viz, client, viz._server_to_url("votable"), limit, cfg, stats)


def _numeric(table: pd.DataFrame, col: str) -> bool:
    return col in table.columns and pd.api.types.is_numeric_dtype(table[col])


def _detect(table: pd.DataFrame, ucds: dict[str, str], plan: _Plan) -> tuple[str, str, str | None]:
    """RA, Dec and id columns of an answer (the plan's, else found by UCD or name)."""

    def by_ucd(wanted: str, numeric: bool) -> str | None:
        for col, ucd in ucds.items():
            parts = [p.strip().lower() for p in ucd.split(";")]
            if wanted in parts and "meta.main" in parts and col in table.columns:
                if not numeric or _numeric(table, col):
                    return col
        return None

    ra_c = plan.ra_column or by_ucd("pos.eq.ra", True) or next((c for c in _RA_NAMES if _numeric(table, c)), None)
    dec_c = plan.dec_column or by_ucd("pos.eq.dec", True) or next((c for c in _DEC_NAMES if _numeric(table, c)), None)
    id_c = plan.id_column or by_ucd("meta.id", False)
    missing = [what for what, c in (("RA", ra_c), ("Dec", dec_c)) if c is None]
    if missing:
        raise SourceError(
            f"FAIL_{SERVICE}_COLUMNS",
            f"{plan.name}: cannot tell the {' and '.join(missing)} column(s) of the answer "
            f"{list(table.columns)}; give ra_column and dec_column",
        )
    assert ra_c is not None and dec_c is not None
    return ra_c, dec_c, id_c


def _assemble(run: _Run) -> tuple[pd.DataFrame, str, str, str | None]:
    """All rows received, float64 positions, duplicates removed; with the RA/Dec/id columns."""
    plan = run.plan
    if run.frames:
        table = pd.concat(run.frames, ignore_index=True)
    elif run.template:
        table = run.template[0].copy()
    else:  # no table in any answer: the columns asked for (their names only)
        cols = [c for c in plan.columns if c not in ("*", "**")]
        cols += [c for c in (plan.ra_column, plan.dec_column, plan.id_column) if c and c not in cols]
        table = pd.DataFrame({c: pd.Series(dtype=np.float64) for c in cols})
    ra_c, dec_c, id_c = _detect(table, run.ucds, plan)
    missing = [c for c in (ra_c, dec_c, id_c) if c is not None and c not in table.columns]
    if missing:
        raise SourceError(
            f"FAIL_{SERVICE}_COLUMNS", f"{plan.name}: answer lacks column(s) {missing}; it has {list(table.columns)}"
        )
    try:
        table[ra_c] = table[ra_c].astype(np.float64)
        table[dec_c] = table[dec_c].astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise SourceError(
            f"FAIL_{SERVICE}_COLUMNS", f"{plan.name}: RA/Dec columns {ra_c!r}/{dec_c!r} are not numbers ({exc})"
        ) from exc
    if id_c is None:
        try:
            table = table.drop_duplicates()
        except TypeError:  # unhashable cells (arrays): tell rows apart by position
            table = table.drop_duplicates(subset=[ra_c, dec_c])
        return table.reset_index(drop=True), ra_c, dec_c, None
    has_id = table[id_c].notna()
    if has_id.all():
        table = table.drop_duplicates(subset=[id_c])
    else:  # rows without an id are told apart by position
        table = pd.concat(
            [
                table.loc[has_id].drop_duplicates(subset=[id_c]),
                table.loc[~has_id].drop_duplicates(subset=[ra_c, dec_c]),
            ],
            ignore_index=True,
        )
    return table.reset_index(drop=True), ra_c, dec_c, id_c


def _sort(table: pd.DataFrame, ra_c: str, dec_c: str, id_c: str | None) -> pd.DataFrame:
    keys = [id_c] if id_c is not None else [ra_c, dec_c]
    return table.sort_values(keys, kind="stable").reset_index(drop=True)


# ====================================================================== public queries


def query_cone(
    catalog: str,
    ra: float,
    dec: float,
    radius_deg: float,
    columns: Sequence[str] | None = None,
    row_limit: int | None = None,
    server_url: str | None = None,
    *,
    column_filters: Mapping[str, str] | None = None,
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
        (:data:`KNOWN_CATALOGS` have default columns and id/RA/Dec columns;
        any other table is asked for its default columns and VizieR's
        ``_RAJ2000``/``_DEJ2000``, its RA/Dec/id columns found in the answer).
    ra, dec, radius_deg : float
        Cone in degrees (ICRS); radius in (0, 10].
    columns : sequence of str, optional
        Columns to return (the RA, Dec and id columns are always added).
    row_limit : int, optional
        ``-out.max`` of one request (default ``VizierConfig.row_limit``); an
        answer that reaches it is split, never silently kept.
    server_url : str, optional
        Overrides ``$VASCO_VIZIER_URL`` and the configuration.
    column_filters : mapping of str to str, optional
        VizieR column constraints, e.g. ``{"R2mag": "<=15.3"}``.
    id_column, ra_column, dec_column : str, optional
        Override (or spare the detection of) the id/RA/Dec columns.
    config : VizierConfig, optional
    http : HttpClient, optional
        Client to use (tests inject one); service name set to ``VIZIER``.
    stats : ConeStats, optional
        Filled with the number of requests, truncated answers and depth.

    Returns
    -------
    pandas.DataFrame
        The requested columns, float64 RA/Dec, unique on the id column
        (on all values when the table has none), sorted by it (by RA, Dec).

    Raises
    ------
    SourceError
        ``FAIL_VIZIER_*`` (transport, ``HTML``, ``BAD_VOTABLE``, ``ERROR``,
        ``COLUMNS``, ``TRUNCATED`` when splitting cannot get under the row
        limit).
    ValueError
        For a bad cone, catalogue name, columns or constraint.
    """
    ra, dec, radius_deg = check_cone(ra, dec, radius_deg)
    run = _start(
        catalog, columns, row_limit, server_url, column_filters, id_column, ra_column, dec_column, config, http, stats
    )
    run.cone(ra, dec, radius_deg, 0)
    table, ra_c, dec_c, id_c = _assemble(run)
    sep = angular_separation_arcsec(ra, dec, table[ra_c].to_numpy(), table[dec_c].to_numpy())
    return _sort(table.loc[sep <= radius_deg * 3600.0], ra_c, dec_c, id_c)


def _mag_text(mag: float) -> str:
    return np.format_float_positional(mag, trim="-")


def query_bright_stars(
    ra: float,
    dec: float,
    radius_deg: float,
    mag_max: float,
    row_limit: int | None = None,
    server_url: str | None = None,
    *,
    config: VizierConfig | None = None,
    http: HttpClient | None = None,
    stats: ConeStats | None = None,
) -> pd.DataFrame:
    """Every USNO-B1.0 star with ``R1mag <= mag_max`` or ``R2mag <= mag_max`` in a cone.

    Two constrained cone queries (``R1mag=<=m`` and ``R2mag=<=m``), each
    split on truncation like :func:`query_cone` (no row cap truncates a dense
    field), their union taken on the ``USNO-B1.0`` id.

    Parameters
    ----------
    ra, dec, radius_deg : float
        Cone in degrees (ICRS).
    mag_max : float
        Faintest R magnitude kept (either epoch).
    row_limit, server_url, config, http, stats
        As for :func:`query_cone` (``stats`` counts both queries).

    Returns
    -------
    pandas.DataFrame
        :data:`USNO_B1` columns plus ``Rmag_bright`` (the brighter of R1mag and
        R2mag, float64), unique on ``USNO-B1.0``, sorted by it.  Rows are
        checked here too: one with neither magnitude <= ``mag_max`` is never
        returned.

    Raises
    ------
    SourceError
        ``FAIL_VIZIER_*``, as :func:`query_cone`.
    ValueError
        For a bad cone or a non-finite ``mag_max``.
    """
    mag_max = float(mag_max)
    if not np.isfinite(mag_max):
        raise ValueError(f"mag_max={mag_max} is not a finite magnitude")
    ra, dec, radius_deg = check_cone(ra, dec, radius_deg)
    stats = stats if stats is not None else ConeStats()
    parts = [
        query_cone(
            USNO_B1.name,
            ra,
            dec,
            radius_deg,
            row_limit=row_limit,
            server_url=server_url,
            column_filters={band: "<=" + _mag_text(mag_max)},
            config=config,
            http=http,
            stats=stats,
        )
        for band in ("R1mag", "R2mag")
    ]
    nonempty = [p for p in parts if len(p)]
    table = pd.concat(nonempty, ignore_index=True) if nonempty else parts[0]
    id_c = USNO_B1.id_column
    table = table.drop_duplicates(subset=[id_c])
    r1 = pd.to_numeric(table["R1mag"], errors="coerce").to_numpy(np.float64)
    r2 = pd.to_numeric(table["R2mag"], errors="coerce").to_numpy(np.float64)
    with np.errstate(invalid="ignore"):
        keep = (r1 <= mag_max) | (r2 <= mag_max)
    table = table.loc[keep].copy()
    table["Rmag_bright"] = np.fmin(r1[keep], r2[keep]).astype(np.float64)
    return table.sort_values(id_c, kind="stable").reset_index(drop=True)


def _check_positions(ra: ArrayLike, dec: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    ras = np.atleast_1d(np.asarray(ra, dtype=np.float64))
    decs = np.atleast_1d(np.asarray(dec, dtype=np.float64))
    if ras.ndim != 1 or ras.shape != decs.shape:
        raise ValueError(f"ra and dec must be 1-D and of the same length, got shapes {ras.shape} and {decs.shape}")
    for i, (a, d) in enumerate(zip(ras, decs, strict=True)):
        if not np.isfinite(a):
            raise ValueError(f"position {i}: ra={a} is not a finite number of degrees")
        if not (np.isfinite(d) and -90.0 <= d <= 90.0):
            raise ValueError(f"position {i}: dec={d} is outside [-90, 90] deg")
    return ras % 360.0, decs


def query_positions(
    catalog: str,
    ra: ArrayLike,
    dec: ArrayLike,
    radius_arcsec: float,
    columns: Sequence[str] | None = None,
    row_limit: int | None = None,
    server_url: str | None = None,
    *,
    column_filters: Mapping[str, str] | None = None,
    id_column: str | None = None,
    ra_column: str | None = None,
    dec_column: str | None = None,
    config: VizierConfig | None = None,
    http: HttpClient | None = None,
    stats: ConeStats | None = None,
) -> pd.DataFrame:
    """Catalogue rows around each of many positions (small cones, e.g. one per candidate).

    The positions go ``VizierConfig.positions_per_request`` at a time in
    VizieR list queries; a full answer is halved, down to a single position,
    which is then a :func:`query_cone` (split while truncated).

    Parameters
    ----------
    catalog : str
        VizieR table (as for :func:`query_cone`).
    ra, dec : array-like of float
        Positions in degrees (ICRS).
    radius_arcsec : float
        Cone radius, in (0, 600] arcsec.
    columns, row_limit, server_url, column_filters, id_column, ra_column, dec_column, config, http, stats
        As for :func:`query_cone`.

    Returns
    -------
    pandas.DataFrame
        One row per (position, catalogue row) pair within the radius:
        ``pos_index`` (int64, index into ``ra``/``dec``), ``sep_arcsec``
        (float64), then the catalogue columns; sorted by ``pos_index`` and
        ``sep_arcsec``.  A position without a row has none: anti-join on
        ``pos_index``.

    Raises
    ------
    SourceError
        ``FAIL_VIZIER_*``, as :func:`query_cone`.
    ValueError
        For a bad position (named by its index), radius, catalogue or constraint.
    """
    ras, decs = _check_positions(ra, dec)
    radius_arcsec = float(radius_arcsec)
    if not (np.isfinite(radius_arcsec) and 0.0 < radius_arcsec <= MAX_POSITION_RADIUS_ARCSEC):
        raise ValueError(f"radius_arcsec={radius_arcsec} is outside (0, {MAX_POSITION_RADIUS_ARCSEC:g}]")
    run = _start(
        catalog, columns, row_limit, server_url, column_filters, id_column, ra_column, dec_column, config, http, stats
    )
    radius_deg = radius_arcsec / 3600.0
    step = run.cfg.positions_per_request
    for start in range(0, len(ras), step):
        run.positions(ras[start : start + step], decs[start : start + step], radius_deg)
    table, ra_c, dec_c, id_c = _assemble(run)
    table = _sort(table, ra_c, dec_c, id_c)
    t_ra = table[ra_c].to_numpy(np.float64)
    t_dec = table[dec_c].to_numpy(np.float64)
    pos_idx: list[NDArray[np.int64]] = []
    row_idx: list[NDArray[np.int64]] = []
    seps: list[NDArray[np.float64]] = []
    for i in range(len(ras)):
        sep = angular_separation_arcsec(ras[i], decs[i], t_ra, t_dec)
        hit = np.flatnonzero(sep <= radius_arcsec)
        pos_idx.append(np.full(len(hit), i, dtype=np.int64))
        row_idx.append(hit.astype(np.int64))
        seps.append(sep[hit])
    rows = np.concatenate(row_idx) if row_idx else np.zeros(0, dtype=np.int64)
    out = table.iloc[rows].reset_index(drop=True)
    out.insert(0, "sep_arcsec", (np.concatenate(seps) if seps else np.zeros(0)).astype(np.float64))
    out.insert(0, "pos_index", np.concatenate(pos_idx) if pos_idx else np.zeros(0, dtype=np.int64))
    return out.sort_values(["pos_index", "sep_arcsec"], kind="stable").reset_index(drop=True)

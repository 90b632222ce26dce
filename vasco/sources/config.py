"""Settings of the archive clients (DSS, VizieR, XMatch, SkyBoT, SuperCOSMOS, local files).

Kept here, in one small pydantic model, until it is merged into
:class:`vasco.config.VascoConfig` (as a ``sources`` section).  Every field
has a default that is polite to the public services.

Service URLs are resolved, for each call, as: the function's explicit
argument, else the environment variable (``VASCO_DSS_URL``,
``VASCO_VIZIER_URL``, ``VASCO_XMATCH_URL``, ``VASCO_SKYBOT_URL``,
``VASCO_SUPERCOSMOS_URL``), else the value here, else (for VizieR and XMatch)
astroquery's own configuration (``astroquery.vizier.conf.server``,
``astroquery.xmatch.conf.url``).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "GAIA_EDR3_TABLE",
    "PS1_DR1_TABLE",
    "PS1_DR2_TABLE",
    "XMATCH_DEFAULT_TABLES",
    "HttpConfig",
    "DssConfig",
    "VizierConfig",
    "XMatchConfig",
    "SkybotConfig",
    "SupercosmosConfig",
    "SourcesConfig",
]

MiB = 1 << 20

# The VizieR tables of the reference catalogues: the one place their ids are written
# (vasco.sources.vizier's catalogue specs, the XMatch defaults and the configuration use these).
#: Gaia EDR3 (Gaia Collaboration 2020), positions at epoch J2016.0.
GAIA_EDR3_TABLE = "I/350/gaiaedr3"
#: Pan-STARRS1 DR1 mean objects (Chambers+ 2016); ``Epoch`` is an MJD.
PS1_DR1_TABLE = "II/349/ps1"
#: Pan-STARRS1 DR2 mean objects, the table the paper names (VizieR cone queries use it).
PS1_DR2_TABLE = "II/389/ps1_dr2"
#: The XMatch names asked by default, by catalogue.  The public XMatch clients
#: found (astroquery scripts, several pipelines) ask PS1 as ``vizier:II/349/ps1``;
#: the only public mention of II/389/ps1_dr2 with XMatch found is the seed
#: replication jannefi/vasco setting it as STILTS cdsskymatch's table (an
#: environment variable; whether the service accepted it is not shown), so DR1
#: is the default there.  ``catalogs.xmatch_tables`` overrides it, and a survey
#: checks its names against the service's table list before any tile runs.
XMATCH_DEFAULT_TABLES: dict[Literal["gaia", "ps1"], str] = {
    "gaia": "vizier:" + GAIA_EDR3_TABLE,
    "ps1": "vizier:" + PS1_DR1_TABLE,
}


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HttpConfig(_Section):
    """Timeouts, retries and size limits of one service's HTTP requests."""

    connect_timeout_s: float = Field(10.0, gt=0, description="TCP connect timeout.")
    read_timeout_s: float = Field(
        60.0, gt=0, description="Longest wait for the next bytes of an answer (headers or body)."
    )
    total_timeout_s: float = Field(
        900.0, gt=0, description="Longest time one attempt may take, body included (slow-drip guard)."
    )
    max_attempts: int = Field(5, ge=1, le=20, description="Attempts per request (1 = no retry).")
    backoff_base_s: float = Field(
        2.0, ge=0, description="Backoff before retry k is uniform in [0, min(backoff_max_s, base * 2**(k-1))]."
    )
    backoff_max_s: float = Field(60.0, ge=0, description="Upper bound of one backoff sleep.")
    retry_after_max_s: float = Field(
        300.0,
        ge=0,
        description="Longest Retry-After (429/503) we wait; a server asking for more fails the request at once.",
    )
    max_bytes: int = Field(256 * MiB, gt=0, description="Largest answer accepted (after gzip decoding).")
    user_agent: str = Field(
        "vasco/0.1 (POSS-I vanishing-source search; python-requests)",
        min_length=1,
        description="User-Agent sent with every request.",
    )

    @model_validator(mode="after")
    def _check(self) -> HttpConfig:
        if self.backoff_max_s < self.backoff_base_s:
            raise ValueError(f"backoff_max_s ({self.backoff_max_s}) is below backoff_base_s ({self.backoff_base_s})")
        return self


class DssConfig(_Section):
    """The STScI DSS cutout service (``dss_search``)."""

    base_url: str = Field(
        "https://archive.stsci.edu/cgi-bin/dss_search",
        min_length=1,
        description="The dss_search service (VASCO_DSS_URL overrides it).",
    )
    survey: str = Field("poss1_red", min_length=1, description="The service's ``v=`` value.")
    max_size_arcmin: float = Field(60.0, gt=0, description="Largest cutout width/height requested.")
    require_position_inside: bool = Field(
        True, description="Refuse a cutout whose astrometry does not put the requested position on the image."
    )
    http: HttpConfig = HttpConfig(max_bytes=64 * MiB, read_timeout_s=120.0)


class VizierConfig(_Section):
    """VizieR cone queries."""

    server_url: str | None = Field(
        None,
        description="Base URL (scheme and host, e.g. 'https://vizier.cds.unistra.fr'); a bare host "
        "gets https://. None: astroquery.vizier.conf.server.",
    )
    row_limit: int = Field(50_000, ge=10, description="-out.max of one request; a full answer is split.")
    max_split_depth: int = Field(
        6, ge=0, le=12, description="Times a truncated cone may be split in 4 before giving up."
    )
    cover_margin: float = Field(
        1.02, ge=1.0, le=1.5, description="Radius factor of the 4 sub-cones that cover a split cone."
    )
    positions_per_request: int = Field(
        100,
        ge=1,
        le=1000,
        description="Positions sent in one VizieR list query (query_positions); a full answer is halved.",
    )
    http: HttpConfig = HttpConfig(read_timeout_s=300.0)


class XMatchConfig(_Section):
    """CDS XMatch jobs (one at a time: CDS bans parallel jobs)."""

    url: str | None = Field(None, description="The sync endpoint. None: astroquery.xmatch.conf.url.")
    chunk_rows: int = Field(50_000, ge=1, le=1_000_000, description="Detections uploaded per job.")
    table_list_max_age_s: float = Field(
        3600.0,
        ge=0,
        description="A tile's jobs reuse the service's table list (hundreds of kB) asked within this many "
        "seconds by the same process; 0 asks it for every call. The survey-start check always asks it anew.",
    )
    cone_area_max_deg: float = Field(
        5.0,
        ge=0,
        description="Restrict a job to the cone enclosing its chunk (area=cone) when that cone is "
        "smaller than this radius; else area=allsky.",
    )
    http: HttpConfig = HttpConfig(read_timeout_s=600.0, total_timeout_s=1800.0, max_attempts=4)


class SkybotConfig(_Section):
    """IMCCE SkyBoT cone search (known solar-system objects at an epoch)."""

    base_url: str = Field(
        "https://ssp.imcce.fr/webservices/skybot/api/conesearch.php",
        min_length=1,
        description="The conesearch.php endpoint (GET).",
    )
    mime: Literal["votable", "text"] = Field("votable", description="The service's -mime= answer format.")
    output: Literal["object", "basic", "obs", "all"] = Field(
        "basic", description="The service's -output= set of columns (basic adds motion and distances)."
    )
    position_error_arcsec: float = Field(
        120.0,
        gt=0,
        le=120.0,
        description="-filter=: objects whose position is uncertain by more than this are left out (max 120).",
    )
    find_asteroids: bool = Field(True, description="Ask SkyBoT for asteroids.")
    find_planets: bool = Field(True, description="Ask SkyBoT for planets.")
    find_comets: bool = Field(True, description="Ask SkyBoT for comets.")
    http: HttpConfig = HttpConfig(read_timeout_s=180.0, total_timeout_s=600.0, max_attempts=4)


class SupercosmosConfig(_Section):
    """SuperCOSMOS Science Archive (WFAU Edinburgh), freeform SQL interface."""

    base_url: str = Field(
        "http://ssa.roe.ac.uk:8080/ssa/SSASQL",
        min_length=1,
        description="The SSASQL form endpoint (POST, action=freeform).",
    )
    server: str = Field("amachine", min_length=1, description="The form's server= value ('amachine': full SSA).")
    row_limit: int = Field(
        50_000, ge=10, le=1_000_000, description="SELECT TOP of one query; an answer that exceeds it is split."
    )
    max_split_depth: int = Field(
        6, ge=0, le=12, description="Times a cone over the row limit may be split in 4 before giving up."
    )
    cover_margin: float = Field(
        1.02, ge=1.0, le=1.5, description="Radius factor of the 4 sub-cones that cover a split cone."
    )
    http: HttpConfig = HttpConfig(read_timeout_s=300.0, max_attempts=4)


class SourcesConfig(_Section):
    """All archive clients."""

    dss: DssConfig = DssConfig()
    vizier: VizierConfig = VizierConfig()
    xmatch: XMatchConfig = XMatchConfig()
    skybot: SkybotConfig = SkybotConfig()
    supercosmos: SupercosmosConfig = SupercosmosConfig()

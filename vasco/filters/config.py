"""Settings of the paper's later vetoes (a section of :class:`vasco.config.VascoConfig`).

The vetoes run on the candidates of a tile (detections that pass the quality
cuts and have no Gaia/PS1 counterpart), in the order of the veto registry
(:data:`vasco.filters.registry.STAGES`), each a named stage of the funnel
that can be switched off.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "VetoSource",
    "SpikesConfig",
    "ArchivesConfig",
    "AsteroidsConfig",
    "VariablesConfig",
    "SupercosmosVetoConfig",
    "HpmConfig",
    "VetoesConfig",
]

#: Where a veto's reference list comes from: 'auto' (the synthetic sky's own
#: list on the synthetic sky, the service otherwise), 'service', 'local'
#: (a file per list in ``local``), or 'synthetic'.
VetoSource = Literal["auto", "service", "local", "synthetic"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SpikesConfig(_Section):
    """Diffraction spikes and halos of bright stars (the paper's rule)."""

    enabled: bool = Field(True, description="Run the stage.")
    catalog: Literal["usnob", "gaia", "ps1"] = Field(
        "usnob",
        description="Bright-star list: 'usnob' (USNO-B1.0 I/284, R magnitude: the paper's), 'gaia' "
        "(the tile's Gaia list, G as the magnitude) or 'ps1' (r).",
    )
    radius_arcsec: float = Field(90.0, gt=0, description="Every bright star within this distance is tested.")
    mag_always: float = Field(12.4, description="A star at most this bright within the radius rejects the source.")
    slope: float = Field(-0.09, description="Otherwise rejected if m < slope * d + intercept (d in arcsec).")
    intercept: float = Field(15.3, description="See slope.")
    source: VetoSource = Field("auto", description="Where the bright-star list comes from.")


class ArchivesConfig(_Section):
    """A counterpart in other archives (infrared first) within a radius."""

    enabled: bool = Field(True, description="Run the stage.")
    radius_arcsec: float = Field(5.0, gt=0, description='Counterpart radius (paper: 5").')
    tables: tuple[str, ...] = Field(
        ("allwise", "catwise", "2mass"),
        description="Archives asked, by short name (allwise, catwise, 2mass) or VizieR table name "
        "(e.g. 'II/311/wise').",
    )
    source: VetoSource = Field(
        "auto",
        description="Where the reference list comes from (auto: the synthetic sky's own on the synthetic sky, "
        "the service otherwise; local: a file in local).",
    )


class AsteroidsConfig(_Section):
    """Known minor planets at the plate's exposure epoch (IMCCE SkyBoT)."""

    enabled: bool = Field(True, description="Run the stage.")
    radius_arcsec: float = Field(
        10.0, gt=0, description="A candidate within this distance (or 3x the ephemeris error) of an asteroid is one."
    )
    observer: str = Field("675", description="IAU observatory code (675: Palomar).")
    source: VetoSource = Field(
        "auto",
        description="Where the reference list comes from (auto: the synthetic sky's own on the synthetic sky, "
        "the service otherwise; local: a file in local).",
    )


class VariablesConfig(_Section):
    """Known variable stars (AAVSO VSX)."""

    enabled: bool = Field(True, description="Run the stage.")
    radius_arcsec: float = Field(5.0, gt=0, description="Match radius (arcsec).")
    source: VetoSource = Field(
        "auto",
        description="Where the reference list comes from (auto: the synthetic sky's own on the synthetic sky, "
        "the service otherwise; local: a file in local).",
    )


class SupercosmosVetoConfig(_Section):
    """The second, independent digitisation must see the source too."""

    enabled: bool = Field(True, description="Run the stage.")
    radius_arcsec: float = Field(5.0, gt=0, description="A SuperCOSMOS detection within this keeps the candidate.")
    source: VetoSource = Field(
        "auto",
        description="Where the reference list comes from (auto: the synthetic sky's own on the synthetic sky, "
        "the service otherwise; local: a file in local).",
    )


class HpmConfig(_Section):
    """High-proper-motion stars that Gaia lists without a proper motion."""

    enabled: bool = Field(True, description="Run the stage.")
    radius_arcsec: float = Field(
        60.0,
        gt=0,
        description="A Gaia source without proper motion (2-parameter solution), with no plate detection "
        "within matching.radius_arcsec of its Gaia position, within this distance (1,000 mas/yr over 60 "
        "years) may be the candidate, moved.",
    )
    gmag_max: float = Field(19.5, description="Only Gaia sources at most this faint (G) count.")


class VetoesConfig(_Section):
    """The later vetoes' settings, one section per stage of :data:`vasco.filters.registry.STAGES`."""

    spikes: SpikesConfig = SpikesConfig()
    archives: ArchivesConfig = ArchivesConfig()
    asteroids: AsteroidsConfig = AsteroidsConfig()
    variables: VariablesConfig = VariablesConfig()
    supercosmos: SupercosmosVetoConfig = SupercosmosVetoConfig()
    hpm: HpmConfig = HpmConfig()

"""The single configuration model of a VASCO run.

Every tunable number of the pipeline lives here, with the defaults of
Solano, Villarroel & Rodrigo 2022 (MNRAS 515, 1380) where the paper states
one.  Each run writes the configuration it used (``config.json``) beside its
outputs, and the configuration hash is part of every cache key and of every
``tile.json``.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from vasco.filters.config import VetoesConfig
from vasco.model_docs import iter_fields, meaning, nested_model, type_name
from vasco.sources.config import GAIA_EDR3_TABLE, PS1_DR2_TABLE, XMATCH_DEFAULT_TABLES, SourcesConfig


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ExtractionConfig(_Section):
    """SExtractor and PSFEx settings (the paper's where it gives them)."""

    detect_thresh: float = Field(5.0, gt=0, description="Detection threshold in sigma (paper: 5).")
    analysis_thresh: float = Field(5.0, gt=0, description="Analysis threshold in sigma.")
    detect_minarea: int = Field(5, ge=1, description="Minimum pixels above threshold.")
    deblend_nthresh: int = Field(32, ge=1, description="SExtractor DEBLEND_NTHRESH.")
    deblend_mincont: float = Field(0.005, gt=0, description="SExtractor DEBLEND_MINCONT.")
    back_size: int = Field(64, ge=8, description="Background mesh size (px).")
    back_filtersize: int = Field(3, ge=1, description="SExtractor BACK_FILTERSIZE (meshes).")
    satur_level: float = Field(
        50000.0,
        gt=0,
        description="SATUR_LEVEL of the measurement pass. POSS-I scans saturate near "
        "13,000 ADU but the paper's FLAGS==0 cut keeps saturated stars, so the "
        "measurement pass does not flag them.",
    )
    psf_peak_fraction: float = Field(
        0.6,
        gt=0,
        le=1,
        description="Pass 1 only selects PSFEx stars. Its SATUR_LEVEL is set per tile to "
        "median + psf_peak_fraction * (plateau - median), where the plateau is the "
        "99.999th percentile of the pixels (the photographic saturation of that plate); "
        "stars whose peak reaches it are flagged and so left out of the PSF model. "
        "The model then describes the faint, unsaturated stars candidates are made of "
        "(photographically grown stars would make genuine faint point sources look "
        "sharper than the PSF and fail the SPREAD_MODEL cut).",
    )
    psf_size: int = Field(25, ge=9, description="PSFEx model size (px, odd).")
    psfvar_degree: int = Field(2, ge=0, le=4, description="PSFEx PSFVAR_DEGREES.")
    psf_sample_minsn: float = Field(20.0, gt=0, description="PSFEx SAMPLE_MINSN: least S/N of a PSF star.")
    psf_sample_maxellip: float = Field(
        0.3, gt=0, lt=1, description="PSFEx SAMPLE_MAXELLIP: most ellipticity of a PSF star."
    )
    tool_timeout_s: float = Field(600.0, gt=0, description="Timeout for each SExtractor/PSFEx call.")
    psf_fit_scope: Literal["needed", "all"] = Field(
        "needed",
        description="Which detections get the PSF-model columns (SPREAD_MODEL, SPREADERR_MODEL, MAG_PSF, "
        "MAGERR_PSF), about 95% of SExtractor's time when measured for all. 'needed': pass 2 leaves them out "
        "and one SExtractor ASSOC run measures them after the counterpart tests, only for the detections "
        "that reach the SPREAD_MODEL cut (they passed every other quality cut and have no Gaia/PS1 "
        "counterpart); the values, cut decisions, funnel and candidates are those of 'all', the other "
        "detections get NaN. 'all': pass 2 measures every detection.",
    )


class CutsConfig(_Section):
    """The paper's quality cuts on pass 2 (FIELD_NOTES.md)."""

    flags_max: int = Field(0, ge=0, description="Keep FLAGS <= this (paper: FLAGS == 0).")
    snr_win_min: float = Field(30.0, description="Keep SNR_WIN > this.")
    spread_model_min: float = Field(-0.002, description="Keep SPREAD_MODEL > this.")
    fwhm_min_px: float = Field(2.0, description="Keep FWHM_IMAGE > this.")
    fwhm_max_px: float = Field(7.0, description="Keep FWHM_IMAGE < this.")
    elongation_max: float = Field(1.3, description="Keep ELONGATION < this.")
    extent_delta_max_px: float = Field(2.0, description="Keep |(XMAX-XMIN)-(YMAX-YMIN)| < this.")
    extent_min_px: float = Field(1.0, description="Keep both extents > this.")
    mad_clip_sigma: float = Field(
        2.0, gt=0, description="Per-tile clip of FWHM and ELONGATION about the median, in 1.4826*MAD."
    )

    @model_validator(mode="after")
    def _check_ranges(self) -> CutsConfig:
        if self.fwhm_min_px >= self.fwhm_max_px:
            raise ValueError(
                f"cuts.fwhm_min_px ({self.fwhm_min_px}) must be below cuts.fwhm_max_px ({self.fwhm_max_px})"
            )
        return self


class MatchingConfig(_Section):
    """Counterpart search in the modern catalogues."""

    radius_arcsec: float = Field(5.0, gt=0, description='Counterpart radius (paper: 5").')
    catalogs: tuple[Literal["gaia", "ps1"], ...] = Field(
        ("gaia", "ps1"), min_length=1, description="Reference catalogues that veto a detection."
    )
    ps1_dec_min: float = Field(-30.0, description="Pan-STARRS covers Dec >= this only.")
    dedup_radius_arcsec: float = Field(
        0.5,
        gt=0,
        description="Detections in overlapping tiles closer than this (true angular separation) are one source.",
    )


class AstrometryTrustConfig(_Section):
    """When a tile's positions can support a 5\" "no counterpart" claim.

    A tile is untrusted (``astrometry.trusted`` false in tile.json, and its
    detections and candidates carry ``astrometry_trusted`` false) when its
    Gaia-tied fit fell back (a shift, no correction, or no fit), when the fit
    stars' median residual after the fit exceeds ``max_median_residual_arcsec``,
    or when fewer than ``min_match_fraction`` of its bright point-like
    detections have a counterpart in the fit's reference catalogue.  Its
    candidates stay in the catalogue, marked.
    """

    max_median_residual_arcsec: float = Field(
        0.5, gt=0, description="Untrusted when the median residual of the fit stars after the fit exceeds this."
    )
    min_match_fraction: float = Field(
        0.8,
        ge=0,
        le=1,
        description="Untrusted when fewer than this fraction of the tile's test stars have a counterpart in "
        "astrometry.reference (Gaia by default) within matching.radius_arcsec. Test stars: SNR_WIN above snr_min, "
        "FLAGS at most flags_max and, with require_shape_cuts, point-like by the quality cuts' shape tests. They "
        "are bright (on the synthetic sky, calibrated on a real POSS-I tile, 99% of the matched ones have G < 18.7), "
        "far above Gaia's limit (G ~ 21), so a real star among them without a counterpart means the positions are "
        "off, not that Gaia is too shallow.",
    )
    snr_min: float = Field(30.0, gt=0, description="Test stars of the match fraction: SNR_WIN above this.")
    flags_max: int = Field(
        0,
        ge=0,
        description="Test stars of the match fraction: FLAGS at most this (0: no neighbours, blends or "
        "truncated sources, whose centroids are pulled).",
    )
    require_shape_cuts: bool = Field(
        True,
        description="Test stars must also pass the shape tests of the quality cuts (cuts.fwhm_*, "
        "cuts.elongation_max, the extent test and the per-tile MAD clip of FWHM and ELONGATION): the point-like "
        "population a candidate is drawn from, without the galaxies, trails and plate flaws that Gaia does "
        "not list and that would lower the fraction whatever the astrometry.",
    )


class AstrometryConfig(_Section):
    """Header solutions and the per-tile plate solution tied to Gaia."""

    solution: Literal["auto", "plate", "tan"] = Field(
        "auto",
        description="Which header solution turns pixel centroids into sky positions before the fit: "
        "'plate' (the GSSS plate polynomial, evaluated by VASCO), 'tan' (the explicit CD/CRPIX WCS), "
        "or 'auto' (the one whose raw positions agree better with the epoch-propagated reference stars; "
        "the plate polynomial when there is nothing to compare or only one solution exists).",
    )
    refit: bool = Field(
        True,
        description="Fit a per-tile correction (tangent-plane polynomial) that ties the positions to the "
        "reference catalogue at the plate epoch; corrected positions are used for matching and outputs.",
    )
    reference: Literal["gaia", "ps1"] = Field(
        "gaia", description="Reference catalogue of the fit (must be among matching.catalogs)."
    )
    fit_snr_min: float = Field(30.0, gt=0, description="Fit stars: SNR_WIN above this.")
    fit_flags_max: int = Field(
        0, ge=0, description="Fit stars: FLAGS at most this (0 leaves out saturated and blended)."
    )
    fit_match_radius_arcsec: float = Field(
        5.0, gt=0, description="Pairing radius between fit stars and reference stars before the fit."
    )
    fit_isolation_arcsec: float = Field(
        6.0,
        ge=0,
        description="Only reference stars with no other reference star within this radius anchor the fit "
        "(an unresolved neighbour, even one below the plate limit, pulls the centroid); 0 keeps all.",
    )
    fit_clip_arcsec: float = Field(
        1.0,
        gt=0,
        description="Pairs whose residual exceeds this (or 3 robust sigma) are rejected and the fit repeated.",
    )
    fit_max_degree: int = Field(
        3, ge=1, le=3, description="Highest polynomial degree tried; the data choose 1..max by BIC."
    )
    fit_min_stars_per_term: int = Field(
        5, ge=1, description="A degree is tried only with at least this many pairs per polynomial coefficient."
    )
    fit_min_stars_shift: int = Field(
        3,
        ge=1,
        description="With fewer pairs than a degree-1 fit needs, a shift is fitted; "
        "with fewer than this, no correction.",
    )
    fit_require_pm: bool = Field(
        True,
        description="Only reference stars with a proper motion (Gaia 5/6-parameter solutions) anchor the fit: "
        "without one their position at the plate epoch is unknown.",
    )
    trust: AstrometryTrustConfig = AstrometryTrustConfig()


class SyntheticConfig(_Section):
    """The offline synthetic POSS-I sky."""

    n_transients: int = Field(
        40,
        ge=0,
        description="Injected vanishing sources per 30' tile (0.25 deg^2), unless transients_per_deg2 is set; "
        "they are drawn per sky cell, so overlapping tiles share them.",
    )
    transient_mag_min: float = Field(16.0, description="Brightest injected transient (R).")
    transient_mag_max: float = Field(20.5, description="Faintest injected transient (R).")
    transient_clearance_arcsec: float = Field(
        8.0, gt=0, description="Transients are placed at least this far from any catalogued or rendered source."
    )
    hpm_fraction: float = Field(
        0.004, ge=0, le=1, description="Fraction of stars with G <= 19 given a high proper motion (100-1000 mas/yr)."
    )
    gaia_gmax: float = Field(21.0, description="Faint limit of the Gaia-like list.")
    ps1_rmax: float = Field(21.4, description="Faint limit of the PS1-like list.")
    n_defects_per_deg2: float = Field(400.0, ge=0, description="Small sharp emulsion spots per square degree.")
    n_dust_per_deg2: float = Field(
        40.0, ge=0, description="Dust blobs (soft, 4-18 px, brighter or darker than the sky) per square degree."
    )
    n_scratches_per_deg2: float = Field(
        2.4, ge=0, description="Scratches (thin straight lines) per square degree (~0.6 per 30' tile)."
    )
    max_star_density_per_deg2: float = Field(
        300_000.0,
        gt=0,
        description="Cap on the density of rendered stars fainter than G=13 (per square degree, to G=22); "
        "denser fields are thinned uniformly so that a 30' tile renders in a few seconds.",
    )
    distortion_arcsec: float = Field(
        0.0,
        ge=0,
        le=60,
        description="RMS (over the tile) of a smooth seeded distortion field (degree 2-3 polynomial) by which "
        "objects are rendered away from where the header's plate polynomial puts them: the plate's real "
        "astrometry is the polynomial plus this field, the header keeps the plain polynomial. 0 = exact header.",
    )
    tan_offset_arcsec: float = Field(
        0.0,
        ge=0,
        le=600,
        description="Shift of the header's explicit TAN WCS (CRVAL, in a seeded direction) from the plate "
        'polynomial: the two disagree by exactly this at the tile centre (real plates: median 2.3" on a third '
        "of them). The polynomial (plus distortion_arcsec) stays the truth. Header cards SYNTANOF/SYNTANPA.",
    )
    transients_per_deg2: float | None = Field(
        None,
        ge=0,
        description="Sky density of injected vanishing sources. None: 4 * n_transients, i.e. n_transients "
        "per 0.25 deg^2 (a 30' tile). The synthetic sky is global: transients are drawn per sky cell "
        "(Poisson) and kept only where clear of every catalogued object, with a compensation so that about "
        "this density survives; a tile holds those inside it.",
    )
    n_asteroids_per_deg2: float = Field(
        20.0,
        ge=0,
        description="Asteroids (near their stationary point: point-like) per deg^2, per plate: rendered on "
        "the plate, listed by the synthetic SkyBoT answer at the plate epoch (a quarter too faint to be seen).",
    )
    header_date_offset_days: dict[str, float] = Field(
        default_factory=dict,
        description="Plate region -> days: the cutout header of that plate gets a DATE-OBS this far from the "
        'plate\'s true date (e.g. {"XE133": 1.0}), as old cutout headers are a day off, while the sky '
        "(asteroids) is rendered at the true date, the plate table's. For testing plate dates and "
        "`vasco epochs`.",
    )
    n_ir_sources_per_deg2: float = Field(
        20.0,
        ge=0,
        description="Optically faint (R 17-20), very red sources per deg^2: on the plate, in the synthetic "
        "AllWISE list, never in Gaia/PS1.",
    )
    n_variables_per_deg2: float = Field(
        20.0,
        ge=0,
        description="Variable stars caught in a bright phase on the plate (R 15.5-19) and below the Gaia/PS1 "
        "limits today, per deg^2: in the synthetic VSX list.",
    )
    hpm_gaia_no_pm_fraction: float = Field(
        0.25,
        ge=0,
        le=1,
        description="Fraction of the high-proper-motion stars that the Gaia-like list gives without a proper "
        "motion (pmra/pmdec/parallax NaN, position at 2016.0), as Gaia's two-parameter solutions do.",
    )
    vsx_star_fraction: float = Field(
        0.003,
        ge=0,
        le=1,
        description="Fraction of ordinary stars with R <= 17 also listed as variable in the synthetic VSX.",
    )
    scos_rmax: float = Field(
        20.5, description="Limit (R, 50% completeness) of the synthetic SuperCOSMOS digitisation of the plate."
    )
    scos_missing_fraction: float = Field(
        0.01, ge=0, le=1, description="Random incompleteness of the synthetic SuperCOSMOS list above its limit."
    )
    scos_position_sigma_arcsec: float = Field(
        0.3, ge=0, description="Position noise (per axis) of the synthetic SuperCOSMOS list."
    )

    @model_validator(mode="after")
    def _check_date_offsets(self) -> SyntheticConfig:
        for region, days in self.header_date_offset_days.items():
            if not re.fullmatch(r"XE\d{3}", region):
                raise ValueError(f"header_date_offset_days: {region!r} is not a POSS-I E plate region like 'XE133'")
            if not (abs(days) <= 366.0):
                raise ValueError(f"header_date_offset_days[{region!r}] = {days!r}: must be within +-366 days")
        return self


class CatalogsConfig(_Section):
    """Where the reference catalogues of a tile come from."""

    source: Literal["auto", "synthetic", "vizier", "xmatch", "local"] = Field(
        "auto",
        description="'synthetic': the lists that come with the synthetic sky; 'vizier': one cone "
        f"query per tile and catalogue (Gaia EDR3 {GAIA_EDR3_TABLE}, PS1 DR2 {PS1_DR2_TABLE}); "
        "'xmatch': the tile's detections uploaded to CDS XMatch (tables: `xmatch_tables`); "
        "'local': the files of `local`; "
        "'auto': synthetic on the synthetic sky, vizier otherwise.",
    )
    xmatch_radius_arcsec: float = Field(
        60.0,
        gt=0,
        le=180,
        description="XMatch search radius. XMatch cannot move catalogue positions to the plate "
        'epoch, so it is asked for every catalogue source this close (60" covers ~1"/yr over the '
        "60-odd years since the plates); VASCO then propagates those rows and applies "
        "matching.radius_arcsec itself.",
    )
    xmatch_tables: dict[Literal["gaia", "ps1"], str] = Field(
        default_factory=lambda: dict(XMATCH_DEFAULT_TABLES),
        description="For source 'xmatch': catalogue name -> XMatch table name ('vizier:' added when missing). "
        "PS1 defaults to DR1 (vizier:II/349/ps1), the table public XMatch clients ask; a survey checks "
        "these names against the service's table list before any tile runs and refuses an unknown one.",
    )
    local: dict[str, str] = Field(
        default_factory=dict,
        description="For source 'local': catalogue name (gaia, ps1) -> CSV/Parquet file or HATS folder.",
    )
    cone_margin_arcmin: float = Field(
        2.0,
        ge=0,
        description="Added to the tile's half-diagonal for the cone queries: room for stars that "
        "moved across the tile edge since the plate epoch (2' = 1.7\"/yr over 70 yr).",
    )
    vizier_row_limit: int = Field(
        200_000, ge=1, description="Rows asked per VizieR query; a full answer is split, never truncated."
    )
    service_concurrency: int = Field(
        2,
        ge=1,
        le=16,
        description="Simultaneous calls per service (a strict Prefect global concurrency limit); "
        "XMatch is held to 1 and SkyBoT to at most 2 (the service's own limit) whatever this says.",
    )

    @field_validator("xmatch_tables")
    @classmethod
    def _xmatch_names(cls, tables: dict[Literal["gaia", "ps1"], str]) -> dict[Literal["gaia", "ps1"], str]:
        """Defaults for the catalogues not named, and every name as ``vizier:<table>``."""
        out = dict(XMATCH_DEFAULT_TABLES)
        for name, table in tables.items():
            table = table.strip()
            if not table.removeprefix("vizier:"):
                raise ValueError(f"catalogs.xmatch_tables.{name}: empty table name")
            out[name] = table if table.startswith("vizier:") else "vizier:" + table
        return out

    def resolved(self, sky: str) -> str:
        if self.source != "auto":
            return self.source
        return "synthetic" if sky == "synthetic" else "vizier"


class SurveyConfig(_Section):
    tiles: int = Field(4, ge=1, le=1_000_000, description="Number of sampled tile positions.")
    seed: int = Field(1, ge=0, description="Seed for sampling and the synthetic sky.")
    size_arcmin: float = Field(30.0, gt=0, le=120, description="Tile width and height (arcmin).")
    dec_min: float = Field(-30.0, ge=-90, le=90, description="Southern limit of the sampled footprint.")
    workers: int = Field(2, ge=1, le=64, description="Tiles processed at once.")
    tiles_per_subflow: int = Field(
        250,
        ge=1,
        le=100_000,
        description="Tiles run by one 'vasco-survey-batch' subflow. Prefect keeps every task state of a flow "
        "run in memory until it ends, so a survey runs its tiles a batch at a time and the survey process "
        "stays the same size however many tiles it has.",
    )
    tile_processes: bool = Field(
        False,
        description="With more than one worker and the local fan-out, run the tile subflows in worker processes "
        "(one per worker) rather than threads of the survey's process, so the Python work of two tiles and "
        "Prefect's bookkeeping of each run on two cores instead of taking turns on one interpreter lock "
        "(each batch then starts its worker processes, a few seconds).",
    )


class ReportConfig(_Section):
    """What ``vasco report`` (and the end of a survey) draws and writes; never changes a tile's science."""

    after_survey: bool = Field(
        True,
        description="Build DIR/report/ (plots, MOC, gallery, index.html) when a survey run ends; "
        "`vasco report DIR` builds it at any time.",
    )
    tile_plots: Literal["candidates", "all", "none"] = Field(
        "candidates",
        description="Tiles that get a per-tile QC plot (tiles/<id>/qc/tile.png): those with candidates "
        "(default; about 1 s each), every processed tile, or none.",
    )
    stamp_size_px: int = Field(64, ge=16, le=512, description="Side of each candidate's POSS-I stamp (px).")
    plot_sample_rows: int = Field(
        200_000,
        ge=1_000,
        description="Scatter plots of the survey draw at most this many detections (an even subsample); "
        "histograms use every detection.",
    )


class EpochsConfig(_Section):
    """``vasco epochs``: which plate date the asteroids on the plate confirm."""

    radius_arcsec: float = Field(
        5.0,
        gt=0,
        le=60,
        description="A predicted minor planet is a hit when a detection lies within this "
        "(arcsec, after the Gaia-tied fit) of its SkyBoT position at mid-exposure of the candidate date.",
    )
    mag_max: float = Field(
        21.0,
        description="Only minor planets SkyBoT predicts at V <= this count (POSS-I E reaches R ~ 20; "
        "asteroids have V - R ~ 0.45).",
    )
    errpos_max_arcsec: float = Field(
        10.0,
        gt=0,
        description="Minor planets whose ephemeris uncertainty (SkyBoT ErrPos) exceeds this are not counted.",
    )
    day_offsets: tuple[float, ...] = Field(
        (-1.0, 1.0),
        description="Further candidate dates: the header date shifted by these many days "
        "(the common error is one day). Candidates within plates.conflict_hours of one another are one "
        "candidate.",
    )
    min_hits: int = Field(3, ge=1, description="A date is chosen only with at least this many hits.")
    min_ratio: float = Field(
        2.0,
        ge=1,
        description="...and at least this many times the hits of the best other candidate "
        "(every candidate farther than plates.conflict_hours from it).",
    )
    exclude_counterparts: bool = Field(
        True,
        description="Count only detections without a Gaia/PS1 counterpart (a minor planet has none): "
        "fewer chance hits on stars.",
    )
    edge_margin_px: float = Field(
        10.0, ge=0, description="Predictions closer than this to a tile's edge are not counted."
    )


class PlatesConfig(_Section):
    """Plate dates: which date of a plate a tile uses."""

    date_source: Literal["table", "header", "epochs"] = Field(
        "table",
        description="Which plate date tiles use. 'table': the date of the shipped plate table (the "
        "archive's full-plate header; one value per plate, the same for every cutout), the header's when "
        "the plate has none. 'header': the cutout header's DATE-OBS (old GetImage cutouts can be a day off "
        "the full-plate header). 'epochs': the date `vasco epochs DIR` found the plate's asteroids at "
        "(DIR/epochs.json), else as 'table'. Every tile records both dates, the one used and why.",
    )
    conflict_hours: float = Field(
        1.0,
        gt=0,
        description="A tile whose header and table dates differ by more than this (hours) is "
        "flagged (plate.date_conflict).",
    )
    epochs: EpochsConfig = EpochsConfig()


class VascoConfig(_Section):
    """Every parameter of a VASCO run."""

    sky: Literal["synthetic", "dss"] = Field(
        "synthetic",
        description="Where tiles come from: 'synthetic' (offline, rendered) or 'dss' (the STScI "
        "dss_search service, POSS-I red; URL from VASCO_DSS_URL or sources.dss.base_url).",
    )
    survey: SurveyConfig = SurveyConfig()
    extraction: ExtractionConfig = ExtractionConfig()
    cuts: CutsConfig = CutsConfig()
    matching: MatchingConfig = MatchingConfig()
    vetoes: VetoesConfig = VetoesConfig()
    astrometry: AstrometryConfig = AstrometryConfig()
    synthetic: SyntheticConfig = SyntheticConfig()
    catalogs: CatalogsConfig = CatalogsConfig()
    sources: SourcesConfig = SourcesConfig()
    report: ReportConfig = ReportConfig()
    plates: PlatesConfig = PlatesConfig()

    @model_validator(mode="after")
    def _check_catalogs(self) -> VascoConfig:
        source = self.catalogs.resolved(self.sky)
        if source == "synthetic" and self.sky != "synthetic":
            raise ValueError("catalogs.source 'synthetic' needs sky 'synthetic'")
        if source == "local":
            missing = [c for c in self.matching.catalogs if c not in self.catalogs.local]
            if missing:
                raise ValueError(f"catalogs.source 'local' needs a file for {missing} in catalogs.local")
        return self

    def to_json(self) -> str:
        """Canonical JSON (sorted keys) of the whole configuration."""
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, indent=2)

    def science_hash(self) -> str:
        """Hash of everything that can change a tile's science outputs.

        The survey section (how many tiles, how many workers) and the service
        settings (URLs, timeouts, concurrency) do not change what a given tile
        produces, so they are left out: adding tiles to a survey reuses the
        tiles already done.
        """
        payload = self.model_dump(mode="json")
        seed = payload["survey"]["seed"]
        size = payload["survey"]["size_arcmin"]
        payload.pop("survey")
        # How catalogues are fetched (URLs, timeouts, politeness) does not change them.
        payload.pop("sources")
        # What the report draws does not change the tiles.
        payload.pop("report")
        payload["catalogs"].pop("service_concurrency")
        # The XMatch tables change a tile only when its catalogues come from XMatch.
        if self.catalogs.resolved(self.sky) != "xmatch":
            payload["catalogs"].pop("xmatch_tables")
        payload["tile"] = {"seed": seed, "size_arcmin": size}
        blob = json.dumps(payload, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def write(self, path: Path) -> Path:
        from vasco.io import write_text_atomic

        return write_text_atomic(Path(path), self.to_json() + "\n")

    @classmethod
    def read(cls, path: Path) -> VascoConfig:
        """A configuration file: JSON (as every run writes it), TOML (``.toml``) or YAML (``.yaml``, ``.yml``).

        Only the parameters to change need be given; the others keep their defaults.

        Raises
        ------
        ValueError
            Naming the file and what is wrong: unreadable, not valid for its
            format, or a bad or unknown parameter (by its dotted name).
        """
        path = Path(path)
        try:
            text = path.read_text()
        except OSError as exc:
            raise ValueError(f"config file {path}: cannot be read ({exc.strerror})") from exc
        suffix = path.suffix.lower()
        try:
            if suffix == ".toml":
                import tomllib

                data = tomllib.loads(text)
            elif suffix in (".yaml", ".yml"):
                import yaml

                data = yaml.safe_load(text)
            else:
                data = json.loads(text)
        except Exception as exc:  # noqa: BLE001 - each parser has its own error class
            kind = {".toml": "TOML", ".yaml": "YAML", ".yml": "YAML"}.get(suffix, "JSON")
            raise ValueError(f"config file {path}: not valid {kind} ({exc})") from None
        if not isinstance(data, dict):
            raise ValueError(f"config file {path}: must hold a mapping of sections, got {type(data).__name__}")
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise ValueError(f"config file {path}: {describe_validation_error(exc)}") from None


def describe_validation_error(exc: ValidationError) -> str:
    """A pydantic error as one line per bad parameter: ``cuts.snr_min: Extra inputs are not permitted``."""
    parts = []
    for err in exc.errors():
        where = ".".join(str(x) for x in err.get("loc", ())) or "config"
        got = f" (got {err['input']!r:.60})" if err.get("type") != "extra_forbidden" and "input" in err else ""
        parts.append(f"{where}: {err.get('msg')}{got}")
    return "; ".join(parts)


def config_reference(model: type[BaseModel] = VascoConfig, prefix: str = "") -> str:
    """Every parameter of ``model`` as a Markdown reference: dotted name, type, default, description.

    Sections (nested models) become headings, in declaration order.  The
    text is what ``vasco config reference`` prints and what
    ``docs/configuration.md`` holds (a test checks they agree).
    """
    lines: list[str] = []
    if not prefix:
        lines += [
            "# Configuration reference",
            "",
            "Every parameter of `vasco.config.VascoConfig`, with its default (the paper's where it gives "
            "one). A configuration file (JSON, TOML or YAML) holds only the values to change, under the "
            "section names below; `vasco config show --config FILE` prints the result. Generated by "
            "`vasco config reference` from the model itself.",
            "",
        ]
    rows: list[str] = []
    sections: list[tuple[str, type[BaseModel]]] = []
    for dotted, field in iter_fields(model, prefix):
        inner = nested_model(field.annotation)
        if inner is not None:
            sections.append((dotted, inner[0]))
            continue
        default = field.get_default(call_default_factory=True)
        shown = json.dumps(default.model_dump(mode="json") if isinstance(default, BaseModel) else default, default=str)
        rows.append(f"| `{dotted}` | {type_name(field.annotation)} | `{shown}` | {meaning(field)} |")
    if rows:
        if prefix:
            doc = " ".join((model.__doc__ or "").split())
            lines += [f"## `{prefix.rstrip('.')}`", "", doc, ""] if doc else [f"## `{prefix.rstrip('.')}`", ""]
        lines += ["| parameter | type | default | meaning |", "|---|---|---|---|", *rows, ""]
    for dotted, sub in sections:
        lines.append(config_reference(sub, f"{dotted}."))
    return "\n".join(lines).rstrip("\n") + "\n" if not prefix else "\n".join(lines)

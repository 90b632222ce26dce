"""The typed records VASCO writes: ``tile.json`` and ``summary.json``.

:class:`TileRecord` is a tile's record (``tiles/<tile_id>/tile.json``) and
:class:`SurveySummary` a survey's (``summary.json``).  Every key has a type
and a description; the README's Outputs tables are generated from those
descriptions (:func:`outputs_reference`, checked by a test).

One function writes each file (:func:`write_tile_record`,
:func:`write_summary`, atomically) and one reads and validates it
(:func:`read_tile_record`, :func:`read_summary`); a file that does not fit
its model is refused with a :class:`RecordError` naming the file and the key.

What is written is what the producer set: a key that does not apply to a
tile (``error`` on a finished tile, ``injection`` off the synthetic sky,
``source_file`` for a sampled tile) is absent, not ``null``, exactly as
before the records were typed.  Keys holding ``null`` are written as such.

Schema versions
---------------
Each file carries ``schema_version`` (:data:`SCHEMA_VERSION`).  Version 1
is the first typed record: the keys written before it plus
``schema_version``.  A file without the key was written before version 1
and is read as version 0: its keys are those of version 1, so the same
model reads it and ``schema_version`` comes back as 0.  A later change to
the keys raises :data:`SCHEMA_VERSION` and says here how older versions are
read.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from vasco.config import describe_validation_error
from vasco.io import read_json, write_json_atomic, write_text_atomic
from vasco.model_docs import field_table

__all__ = [
    "SCHEMA_VERSION",
    "TILE_STATUSES",
    "RecordError",
    "Centre",
    "PlateInfo",
    "RunBy",
    "VetoesInfo",
    "CatalogsInfo",
    "PsfFitInfo",
    "AstrometryInfo",
    "TileCounts",
    "TileInjection",
    "Query",
    "TileProvenance",
    "TileTimings",
    "TileRecord",
    "SurveySummary",
    "write_tile_record",
    "read_tile_record",
    "tile_record_from_dict",
    "write_summary",
    "read_summary",
    "summary_from_dict",
    "outputs_reference",
    "fill_readme",
]

#: The schema version written into tile.json and summary.json (0: a file from before versions).
SCHEMA_VERSION = 1

#: A tile's ``status``.
TileStatus = Literal["ok", "rejected", "failed"]
TILE_STATUSES: tuple[str, ...] = get_args(TileStatus)


class RecordError(ValueError):
    """A tile.json or summary.json that does not fit its model (the message names the file and the key)."""


class _Block(BaseModel):
    """A block of a record: only the keys declared, each checked when set."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    def to_dict(self) -> dict[str, Any]:
        """The keys that were set (a key never set is absent), in declaration order, as JSON-ready values."""
        return self.model_dump(mode="python", exclude_unset=True)


class _Versioned(_Block):
    """A whole record: ``schema_version`` is always written, even when left at its default."""

    def model_post_init(self, context: Any, /) -> None:
        self.__pydantic_fields_set__.add("schema_version")


# --------------------------------------------------------------------------- tile.json


class Centre(_Block):
    """The tile's centre."""

    ra: float = Field(description="Right ascension of the tile centre (deg, ICRS).")
    dec: float = Field(description="Declination of the tile centre (deg, ICRS).")


class PlateInfo(_Block):
    """The tile's POSS-I plate and its dates (:func:`vasco.plates.header.plate_dates`)."""

    region: str | None = Field(None, description="The plate's region id (e.g. `XE465`; null before the plate check).")
    label: str | None = Field(None, description="The plate's label (e.g. `E823`).")
    epoch: float | None = Field(None, description="Decimal Julian year of `date_obs` (exposure start).")
    date_obs: str | None = Field(None, description="The date used: exposure start, ISO (chosen by `date_rule`).")
    date_obs_header: str | None = Field(
        None, description="The cutout header's DATE-OBS + UT, ISO (null when the header has none)."
    )
    date_obs_table: str | None = Field(
        None, description="The shipped plate table's date, ISO (null when the plate is not in the table)."
    )
    date_rule: str | None = Field(
        None, description="Which date was used and why (`plates.date_source`), e.g. `table (plates.date_source=table)`."
    )
    date_conflict_hours: float | None = Field(
        None, description="|header - table| (hours); null unless both dates are known."
    )
    date_conflict: bool | None = Field(
        None, description="True when `date_conflict_hours` exceeds `plates.conflict_hours`."
    )
    exposure_min: float | None = Field(
        None, description="Exposure length (minutes): the header's EXPOSURE, else the plate table's."
    )
    epoch_mid: float | None = Field(
        None, description="Decimal Julian year of mid-exposure: what proper motions and SkyBoT use."
    )

    @classmethod
    def empty(cls) -> PlateInfo:
        """Every key present and null: the block of a tile whose plate was not checked."""
        return cls(**{k: None for k in cls.model_fields})


class RunBy(_Block):
    """Who ran the tile."""

    host: str = Field(description="Host name of the machine that ran the tile.")
    pid: int = Field(description="Process id of the run.")
    worker: str | None = Field(description="`VASCO_WORKER_ID` of the worker (null when unset).")


class VetoesInfo(_Block):
    """The later veto stages."""

    stages: list[str] = Field(description="The enabled veto stages, in the order applied.")
    skipped: dict[str, str] = Field(description="Stage or list name -> why it was skipped on this tile.")


class CatalogsInfo(_Block):
    """The reference catalogues of the counterpart test."""

    used: list[str] = Field(description="Catalogues matched against (e.g. `gaia`, `ps1`).")
    skipped: dict[str, str] = Field(
        description="Catalogue -> why it does not apply to this tile (e.g. PS1 south of its limit)."
    )


class PsfFitInfo(_Block):
    """The PSF-model measurement (SPREAD_MODEL)."""

    scope: Literal["needed", "all"] = Field(description="`extraction.psf_fit_scope`: which detections were measured.")
    measured: int = Field(description="Detections that got the PSF-model columns.")


class AstrometryInfo(_Block):
    """The Gaia-tied plate solution and its trust decision (:mod:`vasco.astrometry`).

    Every key may be absent in a record written before it existed; a record
    without ``trusted`` has no trust decision (``tiles_unassessed`` of the summary).
    """

    solution: str | None = Field(None, description="The header solution used: `plate` (plate polynomial) or `tan`.")
    choice: str | None = Field(
        None, description="Why that solution: `raw_residuals`, `only_solution`, `configured` or `no_reference`."
    )
    fitted: bool | None = Field(None, description="True when a correction was fitted (degree >= 0).")
    status: str | None = Field(
        None, description="Fit status: `fit`, `fallback_shift`, `fallback_none` or `not_fitted`."
    )
    degree: int | None = Field(None, description="Degree of the fitted correction polynomial (null without a fit).")
    n_fit_stars: int | None = Field(None, description="Detections eligible as fit stars.")
    n_ref: int | None = Field(None, description="Fit stars paired with a reference star.")
    n_used: int | None = Field(None, description="Pairs kept by the fit after rejection.")
    median_residual_arcsec: float | None = Field(
        None, description="Median residual of the paired fit stars after the fit (arcsec)."
    )
    p90_residual_arcsec: float | None = Field(
        None, description="90th percentile residual of the paired fit stars after the fit (arcsec)."
    )
    raw_median_residual_arcsec: float | None = Field(
        None, description="Median residual of the paired fit stars before the fit (arcsec)."
    )
    raw_p90_residual_arcsec: float | None = Field(None, description="90th percentile residual before the fit (arcsec).")
    fit_median_residual_arcsec: float | None = Field(
        None, description="Median residual of the stars the fit kept (arcsec)."
    )
    raw_median_by_solution: dict[str, float | None] | None = Field(
        None, description="Header solution -> median raw residual with it (arcsec)."
    )
    pixel_scale_arcsec: float | None = Field(None, description="Pixel scale at the tile centre (arcsec/px).")
    fit_scatter_arcsec: float | None = Field(
        None, description="The fit part of every detection's position uncertainty (arcsec, 1-sigma radial)."
    )
    reference: str | None = Field(None, description="The reference catalogue fitted to (null without one).")
    plate_epoch: float | None = Field(
        None, description="Epoch the reference positions were moved to (decimal Julian year, mid-exposure)."
    )
    solutions_in_header: list[str] | None = Field(None, description="The header's astrometric solutions.")
    two_solution_offset_arcsec: float | None = Field(
        None,
        description="Plate polynomial vs TAN at the cutout centre (arcsec); null when the header has one solution.",
    )
    trusted: bool | None = Field(
        None, description='Can these positions support a 5" "no counterpart" claim (decided after the match).'
    )
    trust_reasons: list[str] | None = Field(
        None,
        description="Reason tokens when not trusted: `fit_fallback_shift`, `fit_fallback_none`, "
        "`fit_not_fitted`, `median_residual`, `match_fraction`.",
    )
    trust_reason: str | None = Field(None, description="The reasons in words (null when trusted).")
    match_catalog: str | None = Field(None, description="Catalogue of the match-fraction test.")
    match_stars: int | None = Field(None, description="Bright point-like detections the match fraction is measured on.")
    match_with_counterpart: int | None = Field(None, description="Of those, the ones with a counterpart.")
    match_fraction: float | None = Field(
        None, description="`match_with_counterpart / match_stars` (null without stars)."
    )
    plot: str | None = Field(
        None,
        description="The residual plot, relative to the tile folder; written by tile runs before issue 17 only "
        "(the report now draws `qc/astrometry.png`, see `astrometry.csv`'s `plot`); absent in new records.",
    )


class TileCounts(_Block):
    """Counts of the tile's catalogue."""

    detections: int = Field(description="Pass-2 detections.")
    candidates: int = Field(description="Candidates left after the last funnel stage.")


class _InjectionCounts(_Block):
    """The counts a tile's injection score and the survey's sum share."""

    injected: int = Field(description="Transients injected.")
    detected: int = Field(description="Injected transients detected.")
    recoverable: int = Field(description="Detected transients that pass every quality cut.")
    recovered: int = Field(description="Recoverable transients found among the candidates.")
    model_recoverable: int = Field(description="Transients the injection model predicts recoverable.")
    model_recovered: int = Field(description="Of those, the ones found among the candidates.")
    recovered_any: int = Field(description="Injected transients found among the candidates.")
    candidates: int = Field(description="The tile's candidates.")
    true_candidates: int = Field(description="Candidates that are injected transients.")
    false_by_class: dict[str, int] = Field(description="False candidates by the class of what they are.")


class TileInjection(_InjectionCounts):
    """Injection scores of a synthetic tile (:func:`vasco.qc.injection.score_tile`)."""

    lost_by_stage: dict[str, int] = Field(
        description="Detected transients lost, by the funnel stage that removed them."
    )


class Query(_Block):
    """One query of a service or local file (:func:`vasco.sources.provenance.query_entry`)."""

    service: str = Field(description="`dss`, `vizier`, `xmatch`, `skybot`, `supercosmos` or `local`.")
    url: str = Field(description="The service's base URL (no credentials), or the local file.")
    tables: list[str] = Field(description="Tables, survey or list asked.")
    query_time: str = Field(description="When the query began (UTC, ISO 8601).")
    rows: int | None = Field(description="Rows received (null for an image).")
    requests: int | None = Field(None, description="HTTP requests it took, when known (absent otherwise).")
    cached: bool = Field(description="True when the answer was recorded by an earlier run and reused.")


class TileProvenance(_Block):
    """What the tile asked of the outside world, and with which tools.

    Built by :func:`vasco.sources.provenance.tile_provenance`.
    """

    queries: list[Query] = Field(description="Every query of the steps the tile used.")
    services: list[str] = Field(description="The services asked (sorted).")
    tools: dict[str, str | None] = Field(description="External tool -> version (null when not found).")


class TileTimings(_Block):
    """Where the tile's time went."""

    steps_s: dict[str, float] = Field(description="Step -> its computing time when it ran (s).")
    tile_wall_s: float = Field(description="This run's wall time for the tile (s), Prefect bookkeeping included.")


class TileRecord(_Versioned):
    """A tile's record, ``tiles/<tile_id>/tile.json`` (written last: it says the tile is finished)."""

    tile_id: str | None = Field(
        description="Built from the centre, e.g. `t132.8250+11.8000` (null when a FITS file could not be read)."
    )
    centre: Centre | None = Field(description="The tile centre (null when a FITS file could not be read).")
    plate: PlateInfo = Field(description="The plate and its dates.")
    status: TileStatus = Field(
        description="`ok`, `rejected` (not a POSS-I E plate, or a `REJECT_*` reason) or `failed`."
    )
    reason: str | None = Field(
        description="Reason token when not ok (e.g. `REJECT_NON_POSS`, `FAIL_PASS2`); null when ok."
    )
    funnel: dict[str, int] = Field(description="Ordered funnel: step -> sources left after it.")
    config_hash: str = Field(description="Hash of the science configuration the tile was run with.")
    schema_version: int = Field(SCHEMA_VERSION, description="Version of these keys (0: written before versions).")
    error: str | None = Field(
        None, description="The exception that failed the tile (first 500 characters); absent when none."
    )
    vasco_version: str | None = Field(None, description="VASCO version that ran the tile.")
    size_arcmin: float | None = Field(None, description="Tile width and height (arcmin).")
    sky: str | None = Field(None, description="Where the image came from: `synthetic`, `dss` or `file`.")
    source_file: str | None = Field(None, description="The user's FITS file (`vasco tile --fits`); absent otherwise.")
    dry_run: bool | None = Field(None, description="True for a dry run (no pixel work); absent otherwise.")
    run_by: RunBy | None = Field(None, description="Who ran the tile.")
    vetoes: VetoesInfo | None = Field(None, description="The later veto stages (finished tiles).")
    catalogs: CatalogsInfo | None = Field(None, description="Reference catalogues used and skipped (finished tiles).")
    psf_stars: int | None = Field(None, description="Stars in the PSFEx model.")
    psf_fit: PsfFitInfo | None = Field(None, description="The PSF-model measurement.")
    astrometry: AstrometryInfo | None = Field(None, description="The plate solution and its trust decision.")
    counts: TileCounts | None = Field(None, description="Detections and candidates (finished tiles).")
    injection: TileInjection | None = Field(None, description="Injection scores (synthetic sky only).")
    provenance: TileProvenance | None = Field(None, description="Queries made and tool versions.")
    timings: TileTimings | None = Field(None, description="Step and wall times (finished tiles).")

    @model_validator(mode="after")
    def _reason_when_not_ok(self) -> TileRecord:
        if self.status != "ok" and not self.reason:
            raise ValueError(f"status {self.status} needs a reason token")
        return self


# --------------------------------------------------------------------------- summary.json


class TileTally(_Block):
    """The survey's tiles by outcome."""

    planned: int = Field(description="Every position of `positions.csv`.")
    processed: int = Field(description="Tiles with status ok.")
    rejected: int = Field(description="Tiles rejected.")
    failed: int = Field(description="Tiles failed.")
    not_run: int = Field(description="Tiles without a readable tile.json.")


class PaperRow(_Block):
    """One of the paper's funnel stages beside ours (:func:`vasco.publish.paper.funnel_vs_paper`)."""

    stage: str = Field(description="The paper's stage.")
    ours: int | None = Field(description="Our sources left at that stage (null when it did not run).")
    ours_kept: float | None = Field(description="Fraction of our previous row's sources the stage keeps.")
    paper: int = Field(description="The paper's sources left.")
    paper_kept: float | None = Field(description="Fraction of the paper's previous row the stage keeps.")


class TrustSummary(_Block):
    """Processed tiles whose astrometry cannot support a 5\" claim.

    Built by :func:`vasco.publish.merge.astrometry_trust_summary`.
    """

    tiles_trusted: int = Field(description="Processed tiles whose astrometry is trusted.")
    tiles_untrusted: int = Field(description="Processed tiles whose astrometry is not trusted.")
    tiles_unassessed: int = Field(description="Processed tiles without a trust decision (older records).")
    tile_candidates_untrusted: int = Field(description="The untrusted tiles' own candidates, before deduplication.")
    candidates_untrusted: int = Field(description="Survey candidates (each source once) on untrusted tiles.")
    by_reason: dict[str, int] = Field(description="Trust reason token -> tiles (a tile can have several).")
    untrusted_tiles: dict[str, str] = Field(description="Tile id -> the reason in words.")


class ServiceSummary(_Block):
    """One service over all tiles."""

    urls: list[str] = Field(description="Base URLs or files asked (sorted).")
    tables: list[str] = Field(description="Tables asked (sorted).")
    queries: int = Field(description="Queries made.")
    requests: int = Field(description="HTTP requests (a query counts one when unknown).")
    rows: int = Field(description="Rows received.")
    cached: int = Field(description="Queries whose recorded answer was reused.")
    fresh: int = Field(description="Queries made by the run that wrote the tile.")
    first_query: str | None = Field(description="Earliest query time (UTC, ISO 8601).")
    last_query: str | None = Field(description="Latest query time (UTC, ISO 8601).")


class ProvenanceSummary(_Block):
    """The tiles' provenance summed (:func:`vasco.sources.provenance.summarize_provenance`)."""

    tiles: int = Field(description="Tiles with a provenance block.")
    services: dict[str, ServiceSummary] = Field(description="Service name -> what was asked of it.")
    tools: dict[str, list[str]] = Field(description="External tool -> every version seen (sorted).")


class InjectionSummary(_InjectionCounts):
    """The tiles' injection scores summed (:func:`vasco.qc.injection.combine_scores`)."""

    candidates: int = Field(description="Candidates of the tiles (before deduplication).")
    lost_by_stage: dict[str, int] = Field(description="Detected transients lost, by funnel stage.")
    completeness: float | None = Field(description="`recovered / recoverable`.")
    completeness_searchable: float | None = Field(
        description="Completeness outside the bright-star zones the paper's rule removes by design."
    )
    completeness_model: float | None = Field(description="`model_recovered / model_recoverable`.")
    purity: float | None = Field(description="`true_candidates / candidates`.")


class DuplicatesSummary(_Block):
    """Sources measured in more than one tile (``duplicates.parquet``)."""

    radius_arcsec: float = Field(description="`matching.dedup_radius_arcsec`: the radius of one source.")
    groups: int = Field(description="Sources measured more than once.")
    measurements_in_groups: int = Field(description="Measurements in those groups.")
    tile_candidates: int = Field(description="The tiles' candidates before deduplication.")


class AstrometrySummary(_Block):
    """Astrometric quality over the processed tiles (:func:`vasco.qc.astrometry.summarize_astrometry`);
    only ``tiles`` when there are none."""

    tiles: int = Field(description="Processed tiles.")
    solutions: dict[str, int] | None = Field(None, description="Header solution -> tiles that used it.")
    status: dict[str, int] | None = Field(None, description="Fit status -> tiles.")
    median_of_tile_medians_arcsec: float | None = Field(
        None, description="Median over tiles of the per-tile median residual (arcsec)."
    )
    p90_of_tile_medians_arcsec: float | None = Field(None, description="90th percentile of the same (arcsec).")
    worst_tile_median_arcsec: float | None = Field(None, description="The largest per-tile median residual (arcsec).")
    raw_median_of_tile_medians_arcsec: float | None = Field(
        None, description="Median over tiles of the residual before the fit (arcsec)."
    )
    two_solution_offset_median_arcsec: float | None = Field(
        None, description="Median over tiles of the two-solution offset (arcsec)."
    )
    untrusted_tiles: int | None = Field(None, description="Tiles whose astrometry is not trusted.")


class SurveySummary(_Versioned):
    """A survey's summary, ``summary.json`` (written when the survey is published)."""

    schema_version: int = Field(SCHEMA_VERSION, description="Version of these keys (0: written before versions).")
    tiles: TileTally = Field(description="Tiles by outcome.")
    detections: int = Field(description="Rows of the merged `detections.parquet` (every measurement).")
    candidates: int = Field(description="Unique candidate sources (`candidates.parquet`).")
    funnel: dict[str, int] = Field(
        description="The processed tiles' funnels summed step by step, then `unique` (after deduplication)."
    )
    funnel_vs_paper: list[PaperRow] = Field(description="The paper's stages beside ours.")
    failures: dict[str, int] = Field(description="Reason token -> rejected and failed tiles.")
    failed_tiles: dict[str, list[str]] = Field(description="Reason token -> the rejected and failed tile ids.")
    config_hash: str = Field(description="Hash of the science configuration.")
    astrometry_trust: TrustSummary = Field(description="Tiles whose astrometry is not trusted, and their candidates.")
    provenance: ProvenanceSummary = Field(description="Services asked and tool versions, over all tiles.")
    injection: InjectionSummary | None = Field(None, description="Injection scores (synthetic sky only).")
    duplicates: DuplicatesSummary | None = Field(None, description="Sources measured in more than one tile.")
    astrometry: AstrometrySummary | None = Field(None, description="Astrometric quality over the tiles.")


# --------------------------------------------------------------------------- reading and writing

_Model = TypeVar("_Model", TileRecord, SurveySummary)


def _validated(model: type[_Model], data: Any, where: str) -> _Model:
    if not isinstance(data, Mapping):
        raise RecordError(f"{where}: must hold a JSON object, got {type(data).__name__}")
    if "schema_version" not in data:
        data = {"schema_version": 0, **data}
    try:
        return model.model_validate(dict(data))
    except ValidationError as exc:
        raise RecordError(f"{where}: {describe_validation_error(exc)}") from None


def tile_record_from_dict(data: Any, where: str = "tile.json") -> TileRecord:
    """Validate a tile record already read (e.g. from a remote root); ``where`` names it in errors.

    Raises
    ------
    RecordError
        The record does not fit :class:`TileRecord` (the message names ``where`` and the key).
    """
    return _validated(TileRecord, data, where)


def read_tile_record(path: Path) -> TileRecord:
    """Read and validate a ``tile.json``.

    Parameters
    ----------
    path : Path
        The file.

    Returns
    -------
    TileRecord
        A file without ``schema_version`` comes back as version 0.

    Raises
    ------
    OSError
        The file cannot be read.
    RecordError
        It is not JSON, or does not fit the model (the message names the
        file and the key, e.g. ``centre.ra: Input should be a valid number``).
    """
    try:
        data = read_json(Path(path))
    except ValueError as exc:
        raise RecordError(f"{path}: not valid JSON ({exc})") from None
    return _validated(TileRecord, data, str(path))


def write_tile_record(tile_dir: Path, record: TileRecord) -> dict[str, Any]:
    """Write ``tile_dir/tile.json`` atomically.

    Parameters
    ----------
    tile_dir : Path
        The tile folder.
    record : TileRecord
        The record (validated as it was built).

    Returns
    -------
    dict
        What was written (:meth:`TileRecord.to_dict`).
    """
    data = record.to_dict()
    write_json_atomic(Path(tile_dir) / "tile.json", data)
    return data


def summary_from_dict(data: Any, where: str = "summary.json") -> SurveySummary:
    """Validate a survey summary already read; ``where`` names it in errors (:class:`RecordError`)."""
    return _validated(SurveySummary, data, where)


def read_summary(path: Path) -> SurveySummary:
    """Read and validate a ``summary.json`` (version 0 without ``schema_version``).

    Raises
    ------
    OSError
        The file cannot be read.
    RecordError
        It is not JSON, or does not fit :class:`SurveySummary` (naming the file and the key).
    """
    try:
        data = read_json(Path(path))
    except ValueError as exc:
        raise RecordError(f"{path}: not valid JSON ({exc})") from None
    return _validated(SurveySummary, data, str(path))


def write_summary(out_dir: Path, summary: SurveySummary) -> dict[str, Any]:
    """Write ``out_dir/summary.json`` atomically; return what was written (:meth:`SurveySummary.to_dict`)."""
    data = summary.to_dict()
    write_json_atomic(Path(out_dir) / "summary.json", data)
    return data


# --------------------------------------------------------------------------- documentation

#: The README's generated tables: marker name -> model.
README_TABLES: dict[str, type[BaseModel]] = {"tile.json": TileRecord, "summary.json": SurveySummary}


def outputs_reference(model: type[BaseModel]) -> str:
    """The Markdown table of a record's keys (the README's Outputs tables), from the field descriptions."""
    return "\n".join(field_table(model)) + "\n"


def fill_readme(text: str) -> str:
    """``text`` (the README) with each generated table of :data:`README_TABLES` rewritten from its model.

    A table sits between ``<!-- BEGIN <name> ... -->`` and ``<!-- END <name> -->``.

    Raises
    ------
    ValueError
        A table's markers are missing.
    """
    for name, model in README_TABLES.items():
        pattern = re.compile(rf"<!-- BEGIN {re.escape(name)} [^\n]*-->\n(.*?)<!-- END {re.escape(name)} -->", re.DOTALL)
        found = pattern.search(text)
        if found is None:
            raise ValueError(f"no generated {name} table (<!-- BEGIN {name} ... --> ... <!-- END {name} -->)")
        text = text[: found.start(1)] + outputs_reference(model) + text[found.end(1) :]
    return text


def main(argv: list[str] | None = None) -> int:
    """``python -m vasco.outputs README.md``: rewrite the README's generated tables in place."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m vasco.outputs README.md", file=sys.stderr)
        return 2
    path = Path(args[0])
    text = path.read_text(encoding="utf-8")
    new = fill_readme(text)
    if new != text:
        write_text_atomic(path, new)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

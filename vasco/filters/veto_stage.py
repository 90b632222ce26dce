"""What a later-veto stage is: its reference lists, its apply function, and what they exchange.

A stage (:class:`VetoStage`) is one module of :mod:`vasco.filters.stages`
and one entry of :data:`vasco.filters.registry.STAGES`.  It names the
reference lists it reads (:class:`ReferenceList`: where each comes from, as
a local file, a service's table or the synthetic sky's answer) and an
``apply`` function from a :class:`StageInput` (the candidates still alive
and the lists) to a :class:`StageResult` (which candidates it rejects and
what it matched), or None when its list is missing for the tile (the stage
is then recorded as skipped, never as "nothing there").
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from vasco.matching.catalogs import normalize_catalog

if TYPE_CHECKING:
    from vasco.config import VascoConfig
    from vasco.filters.config import VetoesConfig

__all__ = ["ServiceQuery", "ReferenceList", "StageInput", "StageResult", "VetoStage", "BadListError", "veto_reference"]


@dataclass(frozen=True)
class ServiceQuery:
    """What a reference list's ``fetch`` gets to ask its service.

    Attributes
    ----------
    ra, dec, radius_deg
        The tile's cone (centre and radius, degrees).
    epoch
        The plate's mid-exposure epoch (Julian year).
    cand_ra, cand_dec
        The candidates still alive after the SPREAD_MODEL cut (degrees, float64).
    cfg
        The run's configuration (:class:`vasco.config.VascoConfig`): service
        settings and the stages' radii.
    """

    ra: float
    dec: float
    radius_deg: float
    epoch: float
    cand_ra: NDArray[np.float64]
    cand_dec: NDArray[np.float64]
    cfg: VascoConfig


@dataclass(frozen=True)
class ReferenceList:
    """A list a veto stage reads, and where it comes from.

    Attributes
    ----------
    name
        The list's name: its key among the tile's lists and its file
        ``catalogs/veto_<name>.parquet``.
    local
        Key of its file in ``catalogs.local`` (a local list).
    synthetic
        Name of the synthetic sky's answer (a :class:`vasco.synthetic.tile.SyntheticTile`
        attribute and ``acquire`` output), None when the synthetic sky has none.
    service
        The service asked: ``vizier``, ``skybot`` or ``supercosmos``.
    table
        The service's table (for VizieR the table id, written only here).
    fetch
        Asks the service (:class:`ServiceQuery` -> the rows as served).
    per_candidate
        Asked only around the candidates: a tile without any gets an empty list.
    """

    name: str
    local: str
    synthetic: str | None
    service: str
    table: str
    fetch: Callable[[ServiceQuery], pd.DataFrame]
    per_candidate: bool = True


@dataclass(frozen=True)
class StageInput:
    """What a stage's ``apply`` reads.

    Attributes
    ----------
    ra, dec
        The candidates still alive (float64 degrees, at the plate epoch).
    idx
        Their row numbers in ``table``.
    table
        Every detection of the tile (read only).
    lists
        The tile's reference lists as served, by list name (veto lists,
        ``gaia``, and the catalogue the bright-star stage may use).
    cfg
        The run's configuration (:class:`vasco.config.VascoConfig`).
    """

    ra: NDArray[np.float64]
    dec: NDArray[np.float64]
    idx: NDArray[np.intp]
    table: pd.DataFrame
    lists: Mapping[str, pd.DataFrame]
    cfg: VascoConfig


@dataclass
class StageResult:
    """What a stage decided about the candidates it tested.

    Attributes
    ----------
    vetoed
        True for each tested candidate (aligned with :attr:`StageInput.idx`) the stage rejects.
    columns
        The columns it adds, in order: (boolean column, result table aligned
        with the tested candidates holding ``vetoed``, {result column: column
        of the detections table}).  Rows not tested get False / NaN / <NA>.
    notes
        Entries for the tile's ``skipped`` record (e.g. lists missing for part of a stage).
    """

    vetoed: NDArray[np.bool_]
    columns: list[tuple[str, pd.DataFrame, dict[str, str]]]
    notes: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class VetoStage:
    """One later veto: a funnel stage.

    Attributes
    ----------
    name
        The funnel key (``not_bright_star`` ...) and its column ``veto_<name>``.
    section
        Its section of :class:`vasco.filters.config.VetoesConfig` (``enabled``,
        ``source``), or None for a stage always on, whose lists come from
        ``auto``.
    lists
        The veto lists it reads under a configuration (``vetoes`` section) -> lists.
    apply
        The stage (:class:`StageInput` -> :class:`StageResult`, None when its list is missing).
    test
        The test that checks it (``tests/<file>.py::<test>``).
    """

    name: str
    section: str | None
    lists: Callable[[VetoesConfig], tuple[ReferenceList, ...]]
    apply: Callable[[StageInput], StageResult | None]
    test: str


class BadListError(ValueError):
    """A reference list a stage cannot read (e.g. missing columns).

    Attributes
    ----------
    reason
        The reason token for tile.json (e.g. ``FAIL_SUPERCOSMOS_COLUMNS``).
    list_name
        The list's name.
    """

    def __init__(self, reason: str, list_name: str, message: str):
        super().__init__(message)
        self.reason = reason
        self.list_name = list_name


def veto_reference(raw: pd.DataFrame, name: str) -> pd.DataFrame:
    """A veto list (as served, or as the synthetic sky writes it) in the reference schema.

    USNO-B1.0 rows (``usnob``, ``bright``) get ``Rmag_best``, the brighter of
    their two R epochs (a star is not let off by its fainter measurement);
    positions without an epoch are taken as J2000
    (:func:`vasco.matching.catalogs.normalize_catalog`).
    """
    raw = raw.copy()
    if name in ("usnob", "bright") and {"R1mag", "R2mag"} & set(raw.columns):
        r1 = raw["R1mag"].to_numpy(np.float64) if "R1mag" in raw else np.full(len(raw), np.nan)
        r2 = raw["R2mag"].to_numpy(np.float64) if "R2mag" in raw else np.full(len(raw), np.nan)
        with np.errstate(invalid="ignore"):
            raw["Rmag_best"] = np.fmin(r1, r2)
        raw = raw.drop(columns=[c for c in ("R1mag", "R2mag", "pmRA", "pmDE") if c in raw.columns])
    return normalize_catalog(raw, name, 2000.0)

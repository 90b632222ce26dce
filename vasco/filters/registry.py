"""The later vetoes: their order, their reference lists and where each comes from.

:data:`STAGES` lists the stages in funnel order, each a
:class:`vasco.filters.veto_stage.VetoStage` defined in its own module of
:mod:`vasco.filters.stages`: its funnel key, its configuration section, its
reference lists (:class:`vasco.filters.veto_stage.ReferenceList`: local file
key, synthetic sky answer, service and table), its apply function and its
test.  Everything else about the vetoes derives from here: the order
(:func:`veto_order`), the lists a configuration reads (:func:`list_names`)
and where each comes from (:func:`list_sources`), the synthetic sky's lists
(:func:`synthetic_lists`), and the veto step itself (:func:`apply_vetoes`).

Adding a stage: write ``vasco/filters/stages/<name>.py`` defining ``STAGE``
and put it in :data:`STAGES` (and, if it can be switched off or take its
list from elsewhere, a section of :class:`vasco.filters.config.VetoesConfig`).
:func:`register` adds one at run time (tests).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from vasco.config import VascoConfig
from vasco.filters.config import VetoesConfig
from vasco.filters.stages import in_supercosmos, no_archive, not_asteroid, not_bright_star, not_hpm, not_variable
from vasco.filters.veto_stage import ReferenceList, StageInput, VetoStage

__all__ = [
    "STAGES",
    "VETO_ORDER",
    "VetoOutcome",
    "register",
    "unregister",
    "veto_order",
    "enabled_stages",
    "enabled_stage_names",
    "reference_lists",
    "list_names",
    "list_sources",
    "synthetic_lists",
    "apply_vetoes",
]

#: The later vetoes, in funnel order.
STAGES: list[VetoStage] = [
    not_bright_star.STAGE,
    no_archive.STAGE,
    not_asteroid.STAGE,
    not_variable.STAGE,
    in_supercosmos.STAGE,
    not_hpm.STAGE,
]

#: Stage names of the shipped stages in funnel order; each adds ``<stage>`` to the tile funnel.
VETO_ORDER: tuple[str, ...] = tuple(s.name for s in STAGES)


def register(stage: VetoStage, after: str | None = None) -> None:
    """Add a stage: after the stage named ``after``, or last.

    Raises
    ------
    ValueError
        When a stage of that name is already registered.
    """
    if any(s.name == stage.name for s in STAGES):
        raise ValueError(f"veto stage {stage.name!r} is already registered")
    pos = len(STAGES) if after is None else [s.name for s in STAGES].index(after) + 1
    STAGES.insert(pos, stage)


def unregister(name: str) -> None:
    """Remove the stage named ``name`` (no error if absent)."""
    STAGES[:] = [s for s in STAGES if s.name != name]


def veto_order() -> list[str]:
    """Names of the registered stages, in funnel order."""
    return [s.name for s in STAGES]


def enabled_stages(vc: VetoesConfig) -> list[VetoStage]:
    """The stages that run under ``vetoes`` settings, in order (a stage without a section always runs)."""
    return [s for s in STAGES if s.section is None or getattr(vc, s.section).enabled]


def enabled_stage_names(vc: VetoesConfig) -> list[str]:
    """Names of :func:`enabled_stages`."""
    return [s.name for s in enabled_stages(vc)]


def reference_lists(vc: VetoesConfig) -> list[tuple[VetoStage, ReferenceList]]:
    """The veto lists the enabled stages read, with their stage, in order."""
    return [(stage, ref) for stage in enabled_stages(vc) for ref in stage.lists(vc)]


def list_names(vc: VetoesConfig) -> list[str]:
    """The reference lists the enabled vetoes read (``bright``, ``archive_<name>``, ``skybot``, ``vsx``, ``scos``)."""
    return [ref.name for _, ref in reference_lists(vc)]


def list_sources(cfg: VascoConfig, synthetic_tile: bool) -> dict[str, str]:
    """Where each veto list comes from: 'synthetic', 'local' or 'service'.

    A stage's ``source`` 'auto' follows the reference catalogues: the
    synthetic sky's own list for a synthetic tile, the user's files when
    ``catalogs.source`` is 'local' (a list without a file is then skipped),
    and the service otherwise.  A list is read from the file named in
    ``catalogs.local`` when its source is 'local'.
    """
    vc = cfg.vetoes
    catalogs_local = cfg.catalogs.resolved(cfg.sky) == "local"
    out: dict[str, str] = {}
    for stage, ref in reference_lists(vc):
        src = getattr(vc, stage.section).source if stage.section is not None else "auto"
        if src == "auto":
            src = "synthetic" if synthetic_tile else ("local" if catalogs_local else "service")
        out[ref.name] = src
    return out


def synthetic_lists(vc: VetoesConfig) -> dict[str, str]:
    """Veto list name -> the synthetic sky's answer for it, for the lists the synthetic sky has."""
    return {ref.name: ref.synthetic for _, ref in reference_lists(vc) if ref.synthetic is not None}


@dataclass
class VetoOutcome:
    """What :func:`apply_vetoes` returns.

    Attributes
    ----------
    table
        Every detection with the stages' columns and ``is_candidate``.
    funnel
        Stage -> detections alive after it (stages that ran, in order).
    skipped
        Stage (or note) -> why it did not run, or not in full.
    """

    table: pd.DataFrame
    funnel: dict[str, int]
    skipped: dict[str, str]


def apply_vetoes(table: pd.DataFrame, lists: Mapping[str, pd.DataFrame], cfg: VascoConfig) -> VetoOutcome:
    """The later vetoes on the detections still alive (``survives_psf``), stage after stage.

    Each enabled stage (:func:`enabled_stages` of ``cfg.vetoes``) tests the
    detections alive after the one before; it adds ``veto_<stage>`` (True:
    rejected by it) and what it matched; rows it did not test get False /
    NaN / <NA>.  A stage whose list is missing is recorded in ``skipped``,
    never taken for "nothing found".

    Parameters
    ----------
    table : DataFrame
        Every detection, with float64 ``ra``/``dec`` and ``survives_psf``; changed in place.
    lists : mapping
        The tile's reference lists as served, by list name.
    cfg : VascoConfig
        The run's configuration.

    Returns
    -------
    VetoOutcome
        The table with ``is_candidate`` (alive after the last stage), the funnel and the skipped stages.

    Raises
    ------
    vasco.filters.veto_stage.BadListError
        When a stage cannot read its list.
    """
    alive = table["survives_psf"].to_numpy(bool).copy()
    funnel: dict[str, int] = {}
    skipped: dict[str, str] = {}
    n = len(table)
    for stage in enabled_stages(cfg.vetoes):
        idx = np.flatnonzero(alive)
        inp = StageInput(
            ra=table["ra"].to_numpy(np.float64)[idx],
            dec=table["dec"].to_numpy(np.float64)[idx],
            idx=idx,
            table=table,
            lists=lists,
            cfg=cfg,
        )
        res = stage.apply(inp)
        if res is None:
            skipped[stage.name] = "no reference list for this tile"
            continue
        for column, found, extra in res.columns:
            col = np.zeros(n, dtype=bool)
            col[idx] = found["vetoed"].to_numpy(bool)
            table[column] = col
            for src, dst in extra.items():
                # Rows the stage did not test get NaN / <NA>.
                table[dst] = pd.Series(found[src].array, index=table.index[idx]).reindex(table.index)
        skipped.update(res.notes)
        alive[idx[res.vetoed]] = False
        funnel[stage.name] = int(alive.sum())
    table["is_candidate"] = alive
    return VetoOutcome(table=table, funnel=funnel, skipped=skipped)

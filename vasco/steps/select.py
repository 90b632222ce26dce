"""Step ``select``: quality cuts, the counterpart tests (Gaia, PS1), and the tile's astrometric trust."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from vasco.astrometry.trust import tile_trust
from vasco.config import VascoConfig
from vasco.filters.cuts import apply_quality_cuts, counterpart_tests
from vasco.io import read_json, write_parquet_atomic
from vasco.records import Output
from vasco.steps.base import run_step

__all__ = ["run", "select"]


def run(
    table: pd.DataFrame, catalogs_used: list[str], astrometry_summary: Mapping[str, Any], cfg: VascoConfig
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Quality cuts, then the counterpart tests; and whether the tile's astrometry can be trusted.

    Parameters
    ----------
    table : DataFrame
        The matched table (:mod:`vasco.steps.match`).
    catalogs_used : list of str
        The catalogues matched on this tile, in order.
    astrometry_summary : mapping
        The fit's summary (:mod:`vasco.steps.astrometry`).
    cfg : VascoConfig
        ``cuts`` and ``astrometry`` (``reference``, ``trust``) are read.

    Returns
    -------
    tuple
        The table with its ``cut_*`` columns, ``passes_cuts``,
        ``no_<catalogue>``, ``no_counterpart`` (passes the cuts and has no
        counterpart in any catalogue used), ``astrometry_trusted`` and
        ``astrometry_trust_reason``; and the info: ``funnel``
        (``detections``, the cuts of :data:`vasco.filters.cuts.CUT_ORDER`,
        then ``no_<catalogue>`` in order) and ``astrometry_trust``
        (:meth:`vasco.astrometry.trust.TrustDecision.to_dict`).
    """
    table, funnel = apply_quality_cuts(table, cfg.cuts)
    trust = tile_trust(table, astrometry_summary, cfg.astrometry.trust, cfg.astrometry.reference)
    table = counterpart_tests(table, catalogs_used, funnel)
    return table, {"funnel": dict(funnel), "astrometry_trust": trust.to_dict()}


def select(
    tile_dir: Path, matched: Output, match_info: Mapping[str, Any], cfg: VascoConfig, *, astrometry: Output
) -> dict[str, Any]:
    """The selection (:func:`run`) of a tile's matched table, into ``work/selected.parquet``.

    ``astrometry`` is ``work/astrometry.json`` of
    :func:`vasco.steps.astrometry.astrometry`.  With the counterparts known,
    the tile's trust is decided (thresholds ``astrometry.trust``); the step
    info's ``astrometry_trust`` holds the decision.
    :func:`vasco.steps.spread_model.spread_model` (the SPREAD_MODEL cut) and
    the later vetoes (:func:`vasco.steps.vetoes.vetoes`) take it from there.
    """
    tile_dir = Path(tile_dir)
    used = list(match_info.get("catalogs_used", []))
    tcfg = cfg.astrometry.trust
    ref = cfg.astrometry.reference

    def body() -> tuple[dict[str, Path], dict[str, Any]]:
        summary = read_json(Path(astrometry["path"]))["summary"]
        table, info = run(pd.read_parquet(matched["path"]), used, summary, cfg)
        sel = write_parquet_atomic(tile_dir / "work" / "selected.parquet", table)
        return {"selected": sel}, info

    return run_step(
        tile_dir,
        "select",
        {"matched": matched, "astrometry": astrometry},
        {**cfg.cuts.model_dump(mode="json"), "used": used, "trust": tcfg.model_dump(mode="json"), "reference": ref},
        select,
        body,
    )

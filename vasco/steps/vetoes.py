"""Step ``vetoes``: the paper's later vetoes on the tile's candidates; detections and candidates."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from vasco.config import VascoConfig
from vasco.filters.registry import apply_vetoes
from vasco.filters.veto_stage import BadListError
from vasco.io import write_parquet_atomic
from vasco.records import Output
from vasco.steps.base import StepError, run_step

__all__ = ["run", "vetoes"]


def run(
    table: pd.DataFrame,
    lists: Mapping[str, pd.DataFrame],
    cfg: VascoConfig,
    origins: Mapping[str, str] | None = None,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The later vetoes (:func:`vasco.filters.registry.apply_vetoes`) on a tile's detections.

    Parameters
    ----------
    table : DataFrame
        The table of :mod:`vasco.steps.spread_model` (``survives_psf``: where the vetoes start).
    lists : mapping
        The tile's reference lists as served, by list name
        (:func:`vasco.filters.registry.list_names`, ``gaia``).
    cfg : VascoConfig
        The run's configuration (``vetoes``).
    origins : mapping, optional
        List name -> where it was read (a path), named in error messages.

    Returns
    -------
    tuple
        Every detection with the stages' columns and ``is_candidate``; and
        the info: ``funnel`` (stage -> alive after it) and ``skipped``.

    Raises
    ------
    StepError
        When a stage cannot read its list (the stage's reason token).
    """
    try:
        out = apply_vetoes(table, lists, cfg)
    except BadListError as exc:
        raise StepError(exc.reason, f"{(origins or {}).get(exc.list_name, exc.list_name)}: {exc}") from exc
    return out.table, {"funnel": out.funnel, "skipped": out.skipped}


def vetoes(tile_dir: Path, selected: Output, lists: Mapping[str, Output], cfg: VascoConfig) -> dict[str, Any]:
    """The later vetoes (:func:`run`); write ``detections.parquet`` and ``candidates.parquet``.

    ``selected`` is the table of :func:`vasco.steps.spread_model.spread_model`;
    ``lists`` the manifests of the reference lists by list name.  Each stage
    adds ``veto_<stage>`` (True: rejected by it) and what it matched;
    ``is_candidate`` is the final flag.  A stage whose list is missing is
    recorded as skipped (in the step info and tile.json), never as "nothing
    found".
    """
    tile_dir = Path(tile_dir)

    def body() -> tuple[dict[str, Path], dict[str, Any]]:
        tables = {name: pd.read_parquet(out["path"]) for name, out in lists.items()}
        table, info = run(
            pd.read_parquet(selected["path"]),
            tables,
            cfg,
            origins={name: str(out["path"]) for name, out in lists.items()},
        )
        det = write_parquet_atomic(tile_dir / "detections.parquet", table)
        cand = write_parquet_atomic(
            tile_dir / "candidates.parquet", table.loc[table["is_candidate"].to_numpy(bool)].reset_index(drop=True)
        )
        return {"detections": det, "candidates": cand}, info

    return run_step(
        tile_dir,
        "vetoes",
        {"selected": selected, **{f"list_{k}": v for k, v in lists.items()}},
        cfg.vetoes.model_dump(mode="json"),
        vetoes,
        body,
    )

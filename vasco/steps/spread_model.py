"""Step ``spread_model``: the SPREAD_MODEL cut, with the PSF fit of the detections that reach it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from vasco.config import CutsConfig, VascoConfig
from vasco.extraction import sextractor
from vasco.filters.cuts import SPREAD_CUT, spread_model_stage
from vasco.io import write_parquet_atomic
from vasco.records import Output
from vasco.steps.base import StepError, run_step
from vasco.steps.tools import tool_step

__all__ = ["reached", "run", "spread_model"]


def reached(table: pd.DataFrame) -> np.ndarray:
    """The detections that reach the SPREAD_MODEL cut (``no_counterpart``): those whose PSF fit matters."""
    return table["no_counterpart"].to_numpy(bool)


def run(table: pd.DataFrame, psf_fit: pd.DataFrame | None, cfg: CutsConfig) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The PSF-model columns and the SPREAD_MODEL cut.

    Parameters
    ----------
    table : DataFrame
        The selected table (:mod:`vasco.steps.select`).
    psf_fit : DataFrame or None
        The PSF-model columns (:data:`vasco.extraction.sextractor.PSF_COLUMNS`)
        of the detections that reach the cut (:func:`reached`), in their
        order (``psf_fit_scope = 'needed'``); None when pass 2 measured
        every detection (``'all'``).
    cfg : CutsConfig
        ``cuts`` (``spread_model_min``).

    Returns
    -------
    tuple
        The table with the PSF-model columns (NaN where not measured),
        ``psf_measured``, ``cut_spread_model`` and ``survives_psf``
        (:func:`vasco.filters.cuts.spread_model_stage`); and the info:
        ``funnel`` (the ``spread_model`` stage) and ``psf_measured`` (count).

    Raises
    ------
    StepError
        ``FAIL_PASS2`` when pass 2 with scope 'all' lacks a PSF-model column,
        ``FAIL_PSF_FIT`` when a tested detection has no SPREAD_MODEL.
    """
    hit = reached(table)
    if psf_fit is not None:
        for col in sextractor.PSF_COLUMNS:
            values = np.full(len(table), np.nan, dtype=np.float32)
            values[hit] = psf_fit[col].to_numpy(np.float32)
            table[col] = values
        table["psf_measured"] = hit
    else:
        missing = [c for c in sextractor.PSF_COLUMNS if c not in table.columns]
        if missing:
            raise StepError("FAIL_PASS2", f"pass 2 with psf_fit_scope 'all' lacks column(s) {missing}")
        table["psf_measured"] = True
    # The same column order either way: the PSF-model columns, then psf_measured, at the end.
    table = table[
        [c for c in table.columns if c not in sextractor.PSF_COLUMNS and c != "psf_measured"]
        + [*sextractor.PSF_COLUMNS, "psf_measured"]
    ]
    try:
        table, alive = spread_model_stage(table, cfg)
    except ValueError as exc:
        raise StepError("FAIL_PSF_FIT", str(exc)) from exc
    return table, {"funnel": {SPREAD_CUT: alive}, "psf_measured": int(hit.sum())}


def spread_model(tile_dir: Path, selected: Output, image: Output, psf: Output, cfg: VascoConfig) -> dict[str, Any]:
    """The SPREAD_MODEL cut (:func:`run`), on the detections alive after the counterpart tests.

    With ``extraction.psf_fit_scope = 'needed'`` the PSF-model columns
    (SPREAD_MODEL, SPREADERR_MODEL, MAG_PSF, MAGERR_PSF) are measured here,
    in one SExtractor ASSOC run (:func:`vasco.extraction.sextractor.run_psf_fit`),
    for those detections only (``psf_measured``; NaN for the others).  With
    ``'all'`` pass 2 already measured every detection.  Writes
    ``work/spread.parquet``; the funnel gets the ``spread_model`` stage.
    """
    tile_dir = Path(tile_dir)
    scope = cfg.extraction.psf_fit_scope
    inputs: dict[str, Output] = {"selected": selected}
    if scope == "needed":
        inputs.update(image=image, psf=psf)
    params = {**cfg.extraction.model_dump(mode="json"), "spread_model_min": cfg.cuts.spread_model_min}

    def body() -> tuple[dict[str, Path], dict[str, Any]]:
        table = pd.read_parquet(selected["path"])
        got = None
        if scope == "needed":
            listed = table.loc[reached(table), ["NUMBER", "X_IMAGE", "Y_IMAGE"]]
            got = tool_step(
                lambda: sextractor.run_psf_fit(
                    Path(image["path"]), Path(psf["path"]), listed, tile_dir / "work", cfg.extraction
                )
            )
        table, info = run(table, got, cfg.cuts)
        path = write_parquet_atomic(tile_dir / "work" / "spread.parquet", table)
        return {"table": path}, {"funnel": info["funnel"], "psf_fit_scope": scope, "psf_measured": info["psf_measured"]}

    return run_step(tile_dir, "spread_model", inputs, params, spread_model, body)

"""Survey-level astrometric quality: one row per tile, and the survey's figures.

Reads the ``astrometry`` block each tile wrote into its ``tile.json``
(:func:`vasco.steps.astrometry.astrometry`), so it costs nothing to rebuild.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from vasco.io import atomic_path

__all__ = [
    "ASTROMETRY_COLUMNS",
    "RESIDUAL_PLOT",
    "residual_plot_wanted",
    "astrometry_table",
    "summarize_astrometry",
    "write_astrometry_table",
]

#: A tile's astrometric residual plot, relative to its folder (drawn by the report, not the tile).
RESIDUAL_PLOT = "qc/astrometry.png"


def residual_plot_wanted(rec: Mapping[str, Any], tile_plots: str = "candidates") -> bool:
    """Does the report draw this tile's residual plot (:data:`RESIDUAL_PLOT`)?

    For a processed tile with an astrometric fit: every one with
    ``report.tile_plots = 'all'``; with ``'candidates'`` those with candidates
    and those whose astrometry is not trusted; none with ``'none'``.  The
    report draws them from what the tile wrote (the fit's residual pairs),
    off the tile's critical path.
    """
    if tile_plots == "none" or rec.get("status") != "ok" or not rec.get("astrometry"):
        return False
    if tile_plots == "all":
        return True
    ast = rec["astrometry"]
    return int((rec.get("counts") or {}).get("candidates") or 0) > 0 or ast.get("trusted") is False


#: Columns of ``DIR/astrometry.csv``.
ASTROMETRY_COLUMNS: tuple[str, ...] = (
    "tile_id",
    "plate_id",
    "solution",
    "choice",
    "status",
    "degree",
    "n_fit_stars",
    "n_ref",
    "n_used",
    "raw_median_residual_arcsec",
    "median_residual_arcsec",
    "p90_residual_arcsec",
    "two_solution_offset_arcsec",
    "fit_scatter_arcsec",
    "match_fraction",
    "trusted",
    "trust_reasons",
    "plot",
)

_INT_COLUMNS = ("degree", "n_fit_stars", "n_ref", "n_used")
_FLOAT_COLUMNS = (
    "raw_median_residual_arcsec",
    "median_residual_arcsec",
    "p90_residual_arcsec",
    "two_solution_offset_arcsec",
    "fit_scatter_arcsec",
    "match_fraction",
)


def astrometry_table(records: Iterable[Mapping[str, Any]], tile_plots: str = "candidates") -> pd.DataFrame:
    """One row per processed tile with its astrometric figures (:data:`ASTROMETRY_COLUMNS`).

    ``plot`` is where the report draws the tile's residual plot
    (:func:`residual_plot_wanted` with ``tile_plots``, the ``report.tile_plots``
    setting), empty for a tile it does not draw.
    """
    rows = []
    for rec in records:
        ast = rec.get("astrometry")
        if rec.get("status") != "ok" or not ast:
            continue
        plot = RESIDUAL_PLOT if residual_plot_wanted(rec, tile_plots) else None
        rows.append(
            {
                "tile_id": rec["tile_id"],
                "plate_id": (rec.get("plate") or {}).get("region"),
                **{k: ast.get(k) for k in ASTROMETRY_COLUMNS[2:-3]},
                # None: a record without a trust decision (written before it existed).
                "trusted": ast.get("trusted"),
                "trust_reasons": ";".join(ast.get("trust_reasons") or []) if "trusted" in ast else None,
                "plot": f"tiles/{rec['tile_id']}/{plot}" if plot else None,
            }
        )
    table = pd.DataFrame(rows, columns=list(ASTROMETRY_COLUMNS))
    for col in _INT_COLUMNS:
        table[col] = table[col].astype("Int64")
    for col in _FLOAT_COLUMNS:
        table[col] = table[col].astype(np.float64)
    table["trusted"] = table["trusted"].astype("boolean")
    return table


def summarize_astrometry(table: pd.DataFrame) -> dict[str, Any]:
    """Survey figures: the median and 90th percentile over tiles of the per-tile
    median residuals, the solutions used, and tiles left without a fit."""
    if table.empty:
        return {"tiles": 0}
    med = table["median_residual_arcsec"].dropna().to_numpy()
    raw = table["raw_median_residual_arcsec"].dropna().to_numpy()
    off = table["two_solution_offset_arcsec"].dropna().to_numpy()

    def _q(a: np.ndarray, q: float) -> float | None:
        return float(np.percentile(a, q)) if a.size else None

    return {
        "tiles": int(len(table)),
        "solutions": dict(Counter(table["solution"].dropna())),
        "status": dict(Counter(table["status"].dropna())),
        "median_of_tile_medians_arcsec": _q(med, 50),
        "p90_of_tile_medians_arcsec": _q(med, 90),
        "worst_tile_median_arcsec": float(med.max()) if med.size else None,
        "raw_median_of_tile_medians_arcsec": _q(raw, 50),
        "two_solution_offset_median_arcsec": _q(off, 50),
        "untrusted_tiles": int((table["trusted"] == False).sum()),  # noqa: E712 - <NA> is not untrusted
    }


def write_astrometry_table(path: Path, table: pd.DataFrame) -> Path:
    """Write the table as CSV (atomically)."""
    path = Path(path)
    with atomic_path(path, suffix=".csv") as tmp:
        table.to_csv(tmp, index=False, float_format="%.4f")
    return path

"""Step ``astrometry_plot``: the tile's astrometric residual plot, ``qc/astrometry.png``.

Drawing a file is the work: there is no pure part.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from vasco.io import read_json
from vasco.records import Output
from vasco.steps.base import run_step

__all__ = ["astrometry_plot"]


def astrometry_plot(tile_dir: Path, pairs: Output, astrometry: Output, tile_id: str) -> dict[str, Any]:
    """The tile's astrometric residual plot, ``qc/astrometry.png`` (vectors and histogram)."""
    from vasco.qc.astrometry_plot import plot_residuals

    tile_dir = Path(tile_dir)

    def body() -> tuple[dict[str, Path], dict[str, Any]]:
        table = pd.read_parquet(pairs["path"])
        summary = read_json(Path(astrometry["path"]))["summary"]
        path = plot_residuals(table, summary, tile_dir / "qc" / "astrometry.png", title=tile_id)
        return {"plot": path}, {}

    return run_step(
        tile_dir,
        "astrometry_plot",
        {"pairs": pairs, "astrometry": astrometry},
        {"tile_id": tile_id},
        astrometry_plot,
        body,
    )

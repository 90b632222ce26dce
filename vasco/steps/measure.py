"""Step ``measure``: header sky positions of the pass-2 detections, and the plate frame."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from astropy.io import fits

from vasco.astrometry.solve import SOLUTIONS, header_positions, two_solution_offset_arcsec
from vasco.config import VascoConfig
from vasco.extraction import sextractor
from vasco.io import write_parquet_atomic
from vasco.plates.frame import plate_frame
from vasco.records import Output
from vasco.steps.base import StepError, run_step
from vasco.steps.header import read_header

__all__ = ["NoSolutionError", "run", "measure"]


class NoSolutionError(ValueError):
    """The header has no usable astrometric solution, or not the one asked for."""


def run(table: pd.DataFrame, header: fits.Header, solution: str) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Header sky positions (float64) from the windowed centroids, and the plate frame.

    Parameters
    ----------
    table : DataFrame
        The pass-2 catalogue (``XWIN_IMAGE``/``YWIN_IMAGE``, with
        ``X_IMAGE``/``Y_IMAGE`` where the windowed centroid is not finite).
    header : astropy.io.fits.Header
        The cutout's header.
    solution : str
        ``astrometry.solution``: ``auto`` (the plate polynomial when present)
        or a solution the header must carry.

    Returns
    -------
    tuple
        The table with ``ra``/``dec`` (the chosen solution) first,
        ``ra_<s>``/``dec_<s>`` of every solution (NaN when the header lacks
        it), the plate frame columns (:func:`vasco.plates.frame.plate_frame`),
        ``tile_edge_dist_px`` and ``astrometry_solution``; and the info:
        ``n``, ``solutions`` found, ``two_solution_offset_arcsec``.

    Raises
    ------
    NoSolutionError
        When the header has no usable solution, or not the one asked for.
    """
    x = table["XWIN_IMAGE"].to_numpy(np.float64, copy=True)
    y = table["YWIN_IMAGE"].to_numpy(np.float64, copy=True)
    bad = ~np.isfinite(x) | ~np.isfinite(y)
    x[bad] = table["X_IMAGE"].to_numpy(np.float64)[bad]
    y[bad] = table["Y_IMAGE"].to_numpy(np.float64)[bad]
    try:
        positions = header_positions(header, x, y)
    except ValueError as exc:
        raise NoSolutionError(str(exc)) from exc
    if solution != "auto" and solution not in positions:
        raise NoSolutionError(f"astrometry.solution {solution!r} is not in the header (it has: {', '.join(positions)})")
    start = solution if solution != "auto" else next(s for s in SOLUTIONS if s in positions)
    ra, dec = positions[start]
    table.insert(0, "ra", ra.astype(np.float64))
    table.insert(1, "dec", dec.astype(np.float64))
    for name in SOLUTIONS:
        nan = np.full(len(table), np.nan)
        table[f"ra_{name}"], table[f"dec_{name}"] = positions.get(name, (nan, nan))
    for col, values in plate_frame(header, x, y).items():
        table[col] = values.to_numpy() if col != "plate_id" else values.array
    nx, ny = float(header["NAXIS1"]), float(header["NAXIS2"])
    table["tile_edge_dist_px"] = np.minimum.reduce([x - 0.5, nx + 0.5 - x, y - 0.5, ny + 0.5 - y])
    table["astrometry_solution"] = start
    info = {
        "n": len(table),
        "solutions": list(positions),
        "two_solution_offset_arcsec": two_solution_offset_arcsec(header),
    }
    return table, info


def measure(tile_dir: Path, pass2: Output, image: Output, cfg: VascoConfig) -> dict[str, Any]:
    """Header sky positions and the plate frame (:func:`run`), into ``work/measured.parquet``.

    ``ra``/``dec`` hold the configured solution until
    :func:`vasco.steps.astrometry.astrometry` replaces them.  The step info
    holds the solutions found and their offset at the tile centre.
    """
    tile_dir = Path(tile_dir)

    def body() -> tuple[dict[str, Path], dict[str, Any]]:
        table = sextractor.read_ldac(Path(pass2["path"]))
        header = read_header(Path(image["path"]))
        try:
            table, info = run(table, header, cfg.astrometry.solution)
        except NoSolutionError as exc:
            raise StepError("FAIL_NO_ASTROMETRY", f"{Path(image['path']).name}: {exc}") from exc
        path = write_parquet_atomic(tile_dir / "work" / "measured.parquet", table)
        return {"table": path}, info

    return run_step(
        tile_dir,
        "measure",
        {"pass2": pass2, "image": image},
        {"solution": cfg.astrometry.solution},
        measure,
        body,
    )

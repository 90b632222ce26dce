"""Where detections sit on the full plate: pixel, edge distance, centre distance.

Artefacts cluster toward plate corners and edges, so every detection keeps
its full-plate position (CNPIX offset + cutout pixel, 1-based), its
distance to the nearest plate edge and to the plate centre (pixels and mm),
and the plate id.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from vasco.plates.table import find_plate

__all__ = ["plate_frame"]


def plate_frame(header: Mapping[str, Any], x: ArrayLike, y: ArrayLike) -> pd.DataFrame:
    """Plate-frame columns for 1-based cutout pixels ``x``, ``y``.

    Columns: ``plate_id`` (REGION), ``x_plate``, ``y_plate`` (1-based pixels
    of the full scan), ``edge_dist_px`` (to the nearest edge of the scan),
    ``centre_dist_px`` and ``centre_dist_mm`` (to the optical centre, PPO3/PPO6).
    The scan size comes from the shipped plate table; for a plate not in it
    the distances are NaN.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    region = str(header.get("REGION", "")).strip()
    xp = x + float(header.get("CNPIX1", 0))
    yp = y + float(header.get("CNPIX2", 0))
    plate = find_plate(region, by="region") if region else None
    edge = np.full(x.shape, np.nan)
    cdist = np.full(x.shape, np.nan)
    cdist_mm = np.full(x.shape, np.nan)
    if plate is not None:
        h = plate.header()
        nx, ny = plate.naxis1, plate.naxis2
        edge = np.minimum.reduce([xp - 0.5, nx + 0.5 - xp, yp - 0.5, ny + 0.5 - yp])
        xs, ys = float(h["XPIXELSZ"]), float(h["YPIXELSZ"])
        # Plate pixel (x - 0.5) times the pixel size is the position in microns (GSSS convention).
        xc, yc = float(h["PPO3"]) / xs + 0.5, float(h["PPO6"]) / ys + 0.5
        cdist = np.hypot(xp - xc, yp - yc)
        cdist_mm = np.hypot((xp - xc) * xs, (yp - yc) * ys) / 1000.0
    return pd.DataFrame(
        {
            "plate_id": pd.array([region or None] * len(x), dtype="string"),
            "x_plate": xp,
            "y_plate": yp,
            "edge_dist_px": edge,
            "centre_dist_px": cdist,
            "centre_dist_mm": cdist_mm,
        }
    )

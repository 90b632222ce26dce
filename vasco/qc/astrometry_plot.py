"""The per-tile astrometric residual plot.

Left: residual vectors (reference minus VASCO position) of the fit stars
on the tangent plane of the tile (east to the left, north up), before the
fit (grey) and after it (red), magnified so that an arcsecond is visible
on a 30' tile.  Right: histograms of the residual
lengths before and after, with their medians.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from vasco.io import atomic_path

__all__ = ["plot_residuals"]


def plot_residuals(pairs: pd.DataFrame, summary: Mapping[str, Any], path: Path, *, title: str = "") -> Path:
    """Write the residual plot of one tile as a PNG (atomically) and return its path.

    Parameters
    ----------
    pairs : DataFrame
        :data:`vasco.astrometry.solve.PAIR_COLUMNS` (pixels and arcsec).
    summary : mapping
        The tile's ``astrometry`` block (solution, degree, medians).
    path : Path
        Where the PNG goes.
    title : str
        Printed above the plot (e.g. the tile id).
    """
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 5), dpi=100)
    ax, hx = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.15, 1]})
    n = len(pairs)
    if n:
        x = pairs["xi_arcmin"].to_numpy()
        y = pairs["eta_arcmin"].to_numpy()
        span = max(float(np.ptp(x)), float(np.ptp(y)), 1e-3)
        # 1" drawn as 4% of the tile width.
        gain = 0.04 * span
        ax.quiver(
            x,
            y,
            pairs["dxi_before"] * gain,
            pairs["deta_before"] * gain,
            angles="xy",
            scale_units="xy",
            scale=1,
            color="0.6",
            width=0.002,
            label="header solution",
        )
        ax.quiver(
            x,
            y,
            pairs["dxi_after"] * gain,
            pairs["deta_after"] * gain,
            angles="xy",
            scale_units="xy",
            scale=1,
            color="tab:red",
            width=0.002,
            label="after the fit",
        )
        x0, y0 = float(np.max(x)), float(np.min(y)) - 0.06 * span
        ax.annotate(
            "", xy=(x0 - gain, y0), xytext=(x0, y0), arrowprops=dict(arrowstyle="->", color="k"), annotation_clip=False
        )
        ax.text(x0 - gain * 1.1, y0, '1"', va="center", fontsize=8)
        ax.legend(loc="upper left", fontsize=8)
        before = pairs["res_before_arcsec"].to_numpy()
        after = pairs["res_after_arcsec"].to_numpy()
        top = float(np.percentile(np.r_[before, after], 99)) if n > 2 else float(max(before.max(), after.max()))
        bins = np.linspace(0.0, max(top, 0.5), 40)
        hx.hist(np.clip(before, 0, bins[-1]), bins=bins, histtype="step", color="0.4", label="header solution")
        hx.hist(
            np.clip(after, 0, bins[-1]),
            bins=bins,
            histtype="stepfilled",
            alpha=0.5,
            color="tab:red",
            label="after the fit",
        )
        for data, colour in ((before, "0.4"), (after, "tab:red")):
            hx.axvline(float(np.median(data)), color=colour, ls="--", lw=1)
        hx.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, "no reference stars paired", ha="center", va="center", transform=ax.transAxes)
        hx.text(0.5, 0.5, "no residuals", ha="center", va="center", transform=hx.transAxes)
    ax.set_xlabel("xi (arcmin, east to the left)")
    ax.set_ylabel("eta (arcmin, north up)")
    ax.set_aspect("equal", adjustable="datalim")
    ax.invert_xaxis()
    hx.set_xlabel("residual (arcsec)")
    hx.set_ylabel("fit stars")

    def _fmt(v: Any) -> str:
        return "-" if v is None else f'{v:.3f}"'

    fig.suptitle(
        f"{title}  solution={summary.get('solution')} ({summary.get('choice')})  "
        f"degree={summary.get('degree')}  pairs={n}  "
        f"median {_fmt(summary.get('raw_median_residual_arcsec'))} -> {_fmt(summary.get('median_residual_arcsec'))}  "
        f"p90 {_fmt(summary.get('p90_residual_arcsec'))}",
        fontsize=9,
    )
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", metadata={"Software": None})
    return path

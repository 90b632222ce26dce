"""QC plots: one per tile, and the survey's plots over every detection.

* :func:`tile_qc_plot` -- one PNG per tile (``tiles/<tile>/qc/tile.png``):
  FWHM and elongation histograms with the cut lines, SNR against magnitude,
  the detections on the tile, the tile on its plate, and the tile's funnel.
* :func:`survey_plots` -- the survey plots (``report/plots/*.png``): FWHM and
  elongation over all detections, the SNR-magnitude density, astrometric
  residuals per tile, candidates on the plate frame with their distance to
  the plate edge, and the survey funnel.

The survey's ``detections.parquet`` can hold hundreds of millions of rows, so
it is never loaded: :func:`survey_statistics` reads only the needed columns,
a batch at a time, into fixed-grid histograms and a deterministic, evenly
thinned sample (at most ``sample_rows`` rows), so memory stays bounded
whatever the number of rows.  :func:`stream_histograms` is the same streaming
for any columns.

Plate-frame positions on the survey plots are in millimetres on the plate,
``(x_plate - 0.5) * XPIXELSZ``: the POSS-I E scans are of two kinds (14000 px
at 25.28 um and 23040 px at 15.03 um, from the plate table of
:mod:`vasco.plates.table`), so pixels of different plates are not
comparable, but millimetres are.  The per-tile plot, on one plate, uses that
plate's pixels.

All figures use matplotlib's object API (no pyplot state) on the Agg
canvas, are written atomically, and carry no software/date metadata: the
same inputs give the same PNG bytes.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from vasco.config import VascoConfig
from vasco.io import atomic_path
from vasco.plates.table import find_plate

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "DEFAULT_BATCH_ROWS",
    "StreamedHistograms",
    "SurveyStatistics",
    "stream_histograms",
    "survey_plots",
    "survey_statistics",
    "tile_qc_plot",
]

#: Rows read from a Parquet file at a time.
DEFAULT_BATCH_ROWS = 262_144

# Fixed accumulation grids of the survey plots (fine; cropped and rebinned for display).
FWHM_EDGES = np.linspace(0.0, 100.0, 2001)  # px, 0.05 px
ELONGATION_EDGES = np.linspace(1.0, 11.0, 2001)  # 0.005
MAG_EDGES = np.linspace(-40.0, 40.0, 1601)  # mag, 0.05 mag (instrumental MAG_AUTO can be negative)
LOG_SNR_EDGES = np.linspace(-1.0, 6.0, 351)  # log10(SNR_WIN), 0.02 dex
EDGE_MM_EDGES = np.linspace(0.0, 200.0, 401)  # mm from the nearest plate edge, 0.5 mm

#: Columns of the survey detections read by :func:`survey_statistics`.
SURVEY_COLUMNS = ("FWHM_IMAGE", "ELONGATION", "SNR_WIN", "MAG_AUTO", "passes_cuts", "x_plate", "y_plate", "plate_id")
#: Columns a tile's detections need for :func:`tile_qc_plot`.
TILE_COLUMNS = (
    "FWHM_IMAGE",
    "ELONGATION",
    "SNR_WIN",
    "MAG_AUTO",
    "X_IMAGE",
    "Y_IMAGE",
    "x_plate",
    "y_plate",
    "passes_cuts",
    "is_candidate",
)

# Survey plots: caption -> file name, in display order.
_SURVEY_FILES = {
    "FWHM and elongation": "fwhm_elongation.png",
    "SNR vs magnitude": "snr_mag.png",
    "Astrometric residuals": "astrometry.png",
    "Detections and candidates on the plate frame": "plate_frame.png",
    "Funnel": "funnel.png",
}

_GREY = "0.55"
_PASS = "tab:blue"
_CAND = "tab:red"
_CUT: dict[str, Any] = {"color": "k", "ls": "--", "lw": 1.1}
_MAG_SENTINEL = 90.0  # SExtractor writes 99 for magnitudes of non-positive fluxes


# ----------------------------------------------------------------------------------------------- helpers


def _figure(size: tuple[float, float], dpi: float, *, constrained: bool = True) -> Figure:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    return Figure(figsize=size, dpi=dpi, layout="constrained" if constrained else None)


def _save(fig: Figure, path: Path) -> Path:
    """Write ``fig`` as a PNG atomically, without metadata that varies between runs."""
    path = Path(path)
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", metadata={"Software": None})
    return path


def _message(ax: Axes, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, fontsize=11, color="0.3", wrap=True)


def _require(columns: Sequence[str], present: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in present]
    if missing:
        raise ValueError(f"{what} lacks the column(s) {missing} needed for the QC plots")


def _floats(df: pd.DataFrame, name: str) -> np.ndarray:
    return pd.to_numeric(df[name], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


def _bools(df: pd.DataFrame, name: str) -> np.ndarray:
    col = df[name]
    if col.dtype == bool:
        return col.to_numpy()
    return col.astype("boolean").fillna(False).to_numpy(dtype=bool)


def _plain_log_y(ax: Axes) -> None:
    """Label a log y axis with plain numbers (20, 30, 100) rather than powers of ten."""
    from matplotlib.ticker import LogFormatter

    ax.yaxis.set_major_formatter(LogFormatter(labelOnlyBase=False))
    ax.yaxis.set_minor_formatter(LogFormatter(labelOnlyBase=False, minor_thresholds=(2, 0.5)))


def _legend_below(ax: Axes) -> None:
    """A frameless legend under the axes (below its x label), so that it hides no data."""
    ax.legend(
        fontsize=8,
        loc="upper center",
        bbox_to_anchor=(0.5, -0.13),
        ncols=3,
        frameon=False,
        handletextpad=0.3,
        columnspacing=1.0,
    )


def _log10_positive(v: np.ndarray) -> np.ndarray:
    return np.log10(np.where(v > 0, v, np.nan))


def _funnel_axes(
    ax: Axes, funnel: Mapping[str, Any], *, title: str, of_all: bool = True, bar_fraction: float = 0.6
) -> None:
    """Horizontal log bars of a funnel ``{stage: count}``, labelled with counts and the fraction kept.

    The x range is set so that the longest bar takes ``bar_fraction`` of the
    axes, leaving room for the labels; ``of_all`` adds each stage's share of
    the first stage.
    """
    stages = [str(s) for s in funnel]
    counts = np.array([float(funnel[s]) if funnel[s] is not None else 0.0 for s in funnel], dtype=np.float64)
    ax.set_title(title)
    if not stages:
        _message(ax, "no funnel")
        ax.set_axis_off()
        return
    y = np.arange(len(stages))
    shown = np.where(counts > 0, counts, np.nan)
    ax.barh(y, shown, color=_PASS, alpha=0.75, height=0.7, left=0.0)
    ax.set_xscale("log")
    top = max(float(np.nanmax(shown)) if np.isfinite(shown).any() else 1.0, 10.0)
    lo = 0.8
    ax.set_xlim(lo, 10.0 ** (math.log10(lo) + (math.log10(top) - math.log10(lo)) / bar_fraction))
    first = counts[0]
    for i, c in enumerate(counts):
        prev = counts[i - 1] if i else np.nan
        text = f"{int(c):,}"
        if i and prev > 0:
            text += f"  ({100 * c / prev:.3g}% kept"
            text += f", {100 * c / first:.3g}% of all)" if of_all and first > 0 and i > 1 else ")"
        ax.text(max(c, 0.9) * 1.15, i, text, va="center", fontsize=8)
    ax.set_yticks(y, stages, fontsize=8)
    ax.set_ylim(len(stages) - 0.5, -0.5)
    ax.set_xlabel("count (log scale)")


def _title_of(record: Mapping[str, Any]) -> str:
    plate = record.get("plate") or {}
    epoch = plate.get("epoch")
    epoch_s = f"epoch {float(epoch):.2f}" if isinstance(epoch, (int, float)) and math.isfinite(epoch) else "epoch ?"
    return (
        f"{record.get('tile_id', '?')}   plate {plate.get('label', '?')} ({plate.get('region', '?')}),"
        f" {epoch_s}   status {record.get('status', '?')}"
    )


@functools.cache
def _plate_geometry(region: str) -> tuple[float, float, int, int] | None:
    """``(x pixel mm, y pixel mm, NAXIS1, NAXIS2)`` of a plate of the shipped table, or None."""
    plate = find_plate(region, by="region") if region else None
    if plate is None:
        return None
    h = plate.header()
    return float(h["XPIXELSZ"]) / 1000.0, float(h["YPIXELSZ"]) / 1000.0, plate.naxis1, plate.naxis2


def _geometry_arrays(regions: Sequence[Any]) -> np.ndarray:
    """``(n, 4)`` float64 plate geometry of each region (NaN rows for unknown plates)."""
    out = np.full((len(regions), 4), np.nan)
    for i, r in enumerate(regions):
        g = _plate_geometry(str(r)) if r is not None and not (isinstance(r, float) and math.isnan(r)) else None
        if g is not None:
            out[i] = g
    return out


def _geometry_of(plate_ids: pd.Series) -> np.ndarray:
    """Plate geometry (see :func:`_geometry_arrays`) of each row of a plate-id column, looked up once per plate."""
    codes, uniques = pd.factorize(plate_ids, use_na_sentinel=True)
    table = np.vstack([_geometry_arrays(list(uniques)), np.full((1, 4), np.nan)])
    return table[np.where(codes < 0, len(uniques), codes)]


def _plate_mm(x_plate: np.ndarray, y_plate: np.ndarray, geom: np.ndarray) -> tuple[np.ndarray, ...]:
    """Millimetres on the plate and to its nearest edge, from 1-based plate pixels and each row's geometry."""
    xm = (x_plate - 0.5) * geom[:, 0]
    ym = (y_plate - 0.5) * geom[:, 1]
    width = geom[:, 2] * geom[:, 0]
    height = geom[:, 3] * geom[:, 1]
    edge = np.minimum(np.minimum(xm, width - xm), np.minimum(ym, height - ym))
    return xm, ym, edge


def _bin_index(values: np.ndarray, edges: np.ndarray, *, clip: bool) -> np.ndarray:
    """Bin of each value, ``edges[i] <= v < edges[i+1]`` (last bin closed, as numpy); -1 when not counted.

    NaN is never counted; values outside the edges are counted in the end
    bins when ``clip``, else not.  Uniform edges take numpy's fast path (an
    arithmetic guess corrected against the edges, so values on an edge land
    exactly as with :func:`numpy.histogram`); others use a binary search.
    """
    v = np.asarray(values, dtype=np.float64)
    n = len(edges) - 1
    lo, hi = float(edges[0]), float(edges[-1])
    if clip:
        v = np.clip(v, lo, hi)
    valid = (v >= lo) & (v <= hi)
    width = np.diff(edges)
    if np.all(np.abs(width - (hi - lo) / n) <= 1e-9 * (hi - lo) / n):
        with np.errstate(invalid="ignore", over="ignore"):
            guess = np.where(valid, (v - lo) * (n / (hi - lo)), 0.0)
        idx = np.minimum(guess.astype(np.int64), n - 1)
        idx -= (v < edges[idx]) & valid
        idx += (v >= edges[idx + 1]) & (idx != n - 1) & valid
    else:
        idx = np.minimum(np.searchsorted(edges, v, side="right") - 1, n - 1)
    idx[~valid] = -1
    return idx


def _count(idx: np.ndarray, n: int, mask: np.ndarray | None = None) -> np.ndarray:
    keep = idx >= 0 if mask is None else (idx >= 0) & mask
    return np.bincount(idx[keep], minlength=n).astype(np.int64)


def _batches(path: Path, columns: Sequence[str], batch_size: int) -> Iterator[pa.RecordBatch]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such detections file")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    # pre_buffer=False: pyarrow would otherwise buffer every row group's column chunks of the file
    # as iteration proceeds (memory growing with the file); without it one row group is held at a time.
    with pq.ParquetFile(path, pre_buffer=False) as pf:
        _require(columns, pf.schema_arrow.names, str(path))
        yield from pf.iter_batches(columns=list(columns), batch_size=batch_size)


def _arrow_floats(batch: pa.RecordBatch, name: str) -> np.ndarray:
    col = batch.column(batch.schema.get_field_index(name))
    return np.asarray(col.to_numpy(zero_copy_only=False), dtype=np.float64)


def _arrow_bools(batch: pa.RecordBatch, name: str) -> np.ndarray:
    col = batch.column(batch.schema.get_field_index(name))
    if not pa.types.is_boolean(col.type):
        col = pc.cast(col, pa.bool_())
    return np.asarray(pc.fill_null(col, False).to_numpy(zero_copy_only=False), dtype=bool)


def _arrow_geometry(col: pa.Array) -> np.ndarray:
    """Plate geometry (see :func:`_geometry_arrays`) of each row of a plate-id column."""
    if not pa.types.is_dictionary(col.type):
        col = pc.dictionary_encode(col)
    table = np.vstack([_geometry_arrays(col.dictionary.to_pylist()), np.full((1, 4), np.nan)])
    idx = np.asarray(pc.fill_null(col.indices, -1).to_numpy(zero_copy_only=False), dtype=np.int64)
    return table[idx]


def _rebin(edges: np.ndarray, counts: np.ndarray, lo: float, hi: float, nmax: int) -> tuple[np.ndarray, np.ndarray]:
    """Crop fine uniform ``edges``/``counts`` (last axis) to ``[lo, hi]`` and merge bins to at most ``nmax``."""
    i0 = int(np.clip(np.searchsorted(edges, lo, side="right") - 1, 0, len(edges) - 2))
    i1 = int(np.clip(np.searchsorted(edges, hi, side="left"), i0 + 1, len(edges) - 1))
    k = max(1, math.ceil((i1 - i0) / nmax))
    i1 = min(i0 + k * math.ceil((i1 - i0) / k), len(edges) - 1)
    n = (i1 - i0) // k
    i1 = i0 + n * k
    c = counts[..., i0:i1]
    c = c.reshape(c.shape[:-1] + (n, k)).sum(axis=-1)
    return edges[i0 : i1 + 1 : k], c


def _quantile_edge(edges: np.ndarray, counts: np.ndarray, q: float) -> float:
    """Upper edge of the bin holding quantile ``q`` of histogram ``counts``."""
    total = counts.sum()
    if total <= 0:
        return float(edges[-1])
    i = int(np.searchsorted(np.cumsum(counts), q * total, side="left"))
    return float(edges[min(i + 1, len(edges) - 1)])


# ----------------------------------------------------------------------------------------- streaming


@dataclass(frozen=True)
class StreamedHistograms:
    """Histogram counts of Parquet columns, accumulated over batches (see :func:`stream_histograms`).

    Attributes
    ----------
    rows : int
        Rows read.
    selected_rows : int
        Rows whose ``select`` column is true (0 without ``select``).
    edges : dict
        Bin edges of each column (float64).
    counts : dict
        Counts of each column over every row (int64, ``len(edges) - 1``).
    selected : dict
        Counts of each column over the selected rows (empty without ``select``).
    """

    rows: int
    selected_rows: int
    edges: dict[str, np.ndarray]
    counts: dict[str, np.ndarray]
    selected: dict[str, np.ndarray]


def stream_histograms(
    path: Path,
    bins: Mapping[str, Any],
    *,
    select: str | None = None,
    clip: bool = False,
    batch_size: int = DEFAULT_BATCH_ROWS,
) -> StreamedHistograms:
    """Histograms of Parquet columns, read a batch at a time (bounded memory).

    Parameters
    ----------
    path : Path
        A Parquet file.
    bins : mapping
        Column name -> increasing bin edges.  A value ``v`` falls in bin
        ``i`` when ``edges[i] <= v < edges[i+1]`` (the last bin is closed), as
        :func:`numpy.histogram` with the same edges; NaN and null are not counted.
    select : str, optional
        A boolean column (null = false): also count the rows where it is true.
    clip : bool
        Count values outside the edges in the first/last bin instead of
        dropping them.
    batch_size : int
        Rows per batch.

    Returns
    -------
    StreamedHistograms

    Raises
    ------
    ValueError
        Naming the file and the missing columns, or bad edges.
    """
    edges = {}
    for name, e in bins.items():
        arr = np.asarray(e, dtype=np.float64)
        if arr.ndim != 1 or len(arr) < 2 or not np.all(np.diff(arr) > 0):
            raise ValueError(f"bins[{name!r}] must be at least two increasing edges")
        edges[name] = arr
    columns = list(edges) + ([select] if select and select not in edges else [])
    counts = {n: np.zeros(len(e) - 1, np.int64) for n, e in edges.items()}
    chosen = {n: np.zeros(len(e) - 1, np.int64) for n, e in edges.items()} if select else {}
    rows = selected_rows = 0
    for batch in _batches(path, columns, batch_size):
        rows += batch.num_rows
        mask = _arrow_bools(batch, select) if select else None
        if mask is not None:
            selected_rows += int(mask.sum())
        for name, e in edges.items():
            idx = _bin_index(_arrow_floats(batch, name), e, clip=clip)
            counts[name] += _count(idx, len(e) - 1)
            if mask is not None:
                chosen[name] += _count(idx, len(e) - 1, mask)
    return StreamedHistograms(rows, selected_rows, edges, counts, chosen)


@dataclass(frozen=True)
class SurveyStatistics:
    """What the survey plots draw of ``detections.parquet``, from one streaming pass.

    Attributes
    ----------
    rows, passing_rows : int
        Detections, and those passing the quality cuts (``passes_cuts``).
    fwhm_all, fwhm_passing : ndarray
        Counts on :data:`FWHM_EDGES` (values beyond the grid in the end bins).
    elongation_all, elongation_passing : ndarray
        Counts on :data:`ELONGATION_EDGES` (likewise).
    snr_mag : ndarray
        ``(len(MAG_EDGES) - 1, len(LOG_SNR_EDGES) - 1)`` counts of MAG_AUTO
        against log10(SNR_WIN) of all detections (outside the grid: not counted).
    edge_mm_passing : ndarray
        Counts on :data:`EDGE_MM_EDGES` of the passing detections' distance to
        the nearest plate edge (mm), for those on plates of the plate table.
    sample_x_mm, sample_y_mm : ndarray
        Plate position (mm) of every ``sample_step``-th passing detection
        (in file order, from the first): at most ``sample_rows``.
    sample_step : int
        The thinning step (a power of two).
    plates : tuple of str
        Plate ids seen (sorted).
    """

    rows: int
    passing_rows: int
    fwhm_all: np.ndarray
    fwhm_passing: np.ndarray
    elongation_all: np.ndarray
    elongation_passing: np.ndarray
    snr_mag: np.ndarray
    edge_mm_passing: np.ndarray
    sample_x_mm: np.ndarray
    sample_y_mm: np.ndarray
    sample_step: int
    plates: tuple[str, ...]


def survey_statistics(
    detections_path: Path, *, sample_rows: int = 200_000, batch_size: int = DEFAULT_BATCH_ROWS
) -> SurveyStatistics:
    """One streaming pass over the survey detections: histograms and an even sample.

    Reads only :data:`SURVEY_COLUMNS`, ``batch_size`` rows at a time.  The
    sample keeps the passing detections whose running index (0, 1, ... over
    the passing rows in file order) is a multiple of a step that doubles
    whenever more than ``sample_rows`` would be kept, so it is deterministic,
    even, and never larger than ``sample_rows``.

    Raises
    ------
    FileNotFoundError
        If the file is missing.
    ValueError
        Naming the file and the missing columns.
    """
    if sample_rows < 1:
        raise ValueError(f"sample_rows must be >= 1, got {sample_rows}")
    nf, ne, nm, ns, nd = (len(e) - 1 for e in (FWHM_EDGES, ELONGATION_EDGES, MAG_EDGES, LOG_SNR_EDGES, EDGE_MM_EDGES))
    fwhm_all = np.zeros(nf, np.int64)
    fwhm_pass = np.zeros(nf, np.int64)
    el_all = np.zeros(ne, np.int64)
    el_pass = np.zeros(ne, np.int64)
    snr_mag = np.zeros(nm * ns, np.int64)
    edge_pass = np.zeros(nd, np.int64)
    keep_idx = np.zeros(0, np.int64)
    keep_x = np.zeros(0, np.float64)
    keep_y = np.zeros(0, np.float64)
    step = 1
    rows = passing_rows = 0
    plates: set[str] = set()
    for batch in _batches(detections_path, SURVEY_COLUMNS, batch_size):
        n = batch.num_rows
        passing = _arrow_bools(batch, "passes_cuts")
        i = _bin_index(_arrow_floats(batch, "FWHM_IMAGE"), FWHM_EDGES, clip=True)
        fwhm_all += _count(i, nf)
        fwhm_pass += _count(i, nf, passing)
        i = _bin_index(_arrow_floats(batch, "ELONGATION"), ELONGATION_EDGES, clip=True)
        el_all += _count(i, ne)
        el_pass += _count(i, ne, passing)
        im = _bin_index(_arrow_floats(batch, "MAG_AUTO"), MAG_EDGES, clip=False)
        is_ = _bin_index(_log10_positive(_arrow_floats(batch, "SNR_WIN")), LOG_SNR_EDGES, clip=False)
        ok = (im >= 0) & (is_ >= 0)
        snr_mag += np.bincount(im[ok] * ns + is_[ok], minlength=nm * ns)
        pid = batch.column(batch.schema.get_field_index("plate_id"))
        plates.update(
            str(p)
            for p in pc.unique(pid.dictionary if pa.types.is_dictionary(pid.type) else pid).to_pylist()
            if p is not None
        )
        sel = np.flatnonzero(passing)
        if len(sel):
            geom = _arrow_geometry(pc.take(pid, pa.array(sel)))
            xm, ym, edge = _plate_mm(_arrow_floats(batch, "x_plate")[sel], _arrow_floats(batch, "y_plate")[sel], geom)
            edge_pass += _count(_bin_index(edge, EDGE_MM_EDGES, clip=True), nd)
            running = passing_rows + np.arange(len(sel), dtype=np.int64)
            take = running % step == 0
            keep_idx = np.concatenate([keep_idx, running[take]])
            keep_x = np.concatenate([keep_x, xm[take]])
            keep_y = np.concatenate([keep_y, ym[take]])
            while len(keep_idx) > sample_rows:
                step *= 2
                thin = keep_idx % step == 0
                keep_idx, keep_x, keep_y = keep_idx[thin], keep_x[thin], keep_y[thin]
        rows += n
        passing_rows += len(sel)
    return SurveyStatistics(
        rows=rows,
        passing_rows=passing_rows,
        fwhm_all=fwhm_all,
        fwhm_passing=fwhm_pass,
        elongation_all=el_all,
        elongation_passing=el_pass,
        snr_mag=snr_mag.reshape(nm, ns),
        edge_mm_passing=edge_pass,
        sample_x_mm=keep_x,
        sample_y_mm=keep_y,
        sample_step=step,
        plates=tuple(sorted(plates)),
    )


def _no_statistics() -> SurveyStatistics:
    """The statistics of a survey without detections."""
    zeros = [np.zeros(len(e) - 1, np.int64) for e in (FWHM_EDGES, ELONGATION_EDGES, EDGE_MM_EDGES)]
    return SurveyStatistics(
        rows=0,
        passing_rows=0,
        fwhm_all=zeros[0],
        fwhm_passing=zeros[0].copy(),
        elongation_all=zeros[1],
        elongation_passing=zeros[1].copy(),
        snr_mag=np.zeros((len(MAG_EDGES) - 1, len(LOG_SNR_EDGES) - 1), np.int64),
        edge_mm_passing=zeros[2],
        sample_x_mm=np.zeros(0),
        sample_y_mm=np.zeros(0),
        sample_step=1,
        plates=(),
    )


# ------------------------------------------------------------------------------------------ tile plot


def tile_qc_plot(
    detections: pd.DataFrame, record: dict, cfg: VascoConfig, path: Path, *, image_shape: tuple[int, int] | None = None
) -> Path:
    """Write the QC plot of one tile as a PNG (atomically) and return its path.

    Six panels: (1) FWHM_IMAGE histogram of all detections and of those
    passing the quality cuts, candidates as red ticks, the fixed FWHM cut
    lines; (2) ELONGATION likewise with ``elongation_max``; (3) SNR_WIN
    (log) against MAG_AUTO, passing detections and candidates highlighted,
    the SNR cut line; (4) the detections on the tile in its pixels, passing
    ones in blue, candidates as large red circles, the tile outline; (5)
    the tile's footprint and candidates on the whole plate (plate pixels,
    plate outline from the plate table) to show clustering toward the plate
    edges; (6) the tile's funnel.  The per-tile MAD clip depends on the data
    and is not drawn; cut lines are the fixed cuts of ``cfg.cuts``.  NaN
    values are left out of each panel.

    A tile with no detections (a rejected or failed tile, or an empty
    catalogue) still gets a (small) plot saying so, with its status and
    reason, so that every tile asked for has a plot.

    Parameters
    ----------
    detections : DataFrame
        The tile's ``detections.parquet`` (at least :data:`TILE_COLUMNS`;
        ``is_candidate`` marks the tile's candidates).
    record : dict
        The tile's ``tile.json`` (``tile_id``, ``plate``, ``status``,
        ``reason``, ``funnel``).
    cfg : VascoConfig
        The survey configuration (cut values).
    path : Path
        Where the PNG goes (e.g. ``tiles/<tile>/qc/tile.png``).
    image_shape : (int, int), optional
        ``(NAXIS2, NAXIS1)`` of the tile image, numpy order (rows, columns):
        draws the tile outline.  Without it the outline is not drawn.

    Raises
    ------
    ValueError
        If a non-empty ``detections`` lacks one of :data:`TILE_COLUMNS`.
    """
    title = _title_of(record)
    if len(detections) == 0:
        fig = _figure((9.0, 3.0), 90)
        ax = fig.add_subplot()
        ax.set_axis_off()
        reason = record.get("reason")
        _message(
            ax,
            f"no detections to plot\nstatus: {record.get('status', '?')}" + (f"\nreason: {reason}" if reason else ""),
        )
        fig.suptitle(title, fontsize=11)
        return _save(fig, path)
    _require(TILE_COLUMNS, list(detections.columns), f"the detections of tile {record.get('tile_id', '?')}")
    cuts = cfg.cuts
    fwhm = _floats(detections, "FWHM_IMAGE")
    elong = _floats(detections, "ELONGATION")
    snr = _floats(detections, "SNR_WIN")
    mag = _floats(detections, "MAG_AUTO")
    x = _floats(detections, "X_IMAGE")
    y = _floats(detections, "Y_IMAGE")
    xp = _floats(detections, "x_plate")
    yp = _floats(detections, "y_plate")
    passing = _bools(detections, "passes_cuts")
    cand = _bools(detections, "is_candidate")
    n_all, n_pass, n_cand = len(detections), int(passing.sum()), int(cand.sum())

    # A fixed layout: constrained layout would double the time of this plot (drawn for many tiles).
    fig = _figure((14.0, 9.0), 90, constrained=False)
    axes = fig.subplots(2, 3, gridspec_kw=dict(left=0.05, right=0.975, top=0.93, bottom=0.1, wspace=0.3, hspace=0.42))
    fig.suptitle(f"{title}   {n_all:,} detections, {n_pass:,} pass the cuts, {n_cand} candidates", fontsize=12)

    # (1), (2): histograms with the fixed cut lines.
    for ax, values, lo_cut, hi_cut, lo, hi_min, hi_max, name, unit in (
        (
            axes[0, 0],
            fwhm,
            cuts.fwhm_min_px,
            cuts.fwhm_max_px,
            0.0,
            1.5 * cuts.fwhm_max_px,
            4.0 * cuts.fwhm_max_px,
            "FWHM_IMAGE",
            " (px)",
        ),
        (
            axes[0, 1],
            elong,
            None,
            cuts.elongation_max,
            1.0,
            1.0 + 2.5 * (cuts.elongation_max - 1.0),
            1.0 + 8.0 * (cuts.elongation_max - 1.0),
            "ELONGATION",
            " (A/B)",
        ),
    ):
        finite = np.isfinite(values)
        hi = hi_min
        if finite.any():
            hi = float(np.clip(np.percentile(values[finite], 99.0), hi_min, hi_max))
        bins = np.linspace(lo, hi, 61)
        v = np.clip(values[finite], lo, hi)
        over = int((values[finite] > hi).sum())
        ax.hist(
            v,
            bins=bins,
            color=_GREY,
            alpha=0.6,
            label=f"all ({int(finite.sum()):,}" + (f"; {over:,} > {hi:.3g} in last bin)" if over else ")"),
        )
        ax.hist(
            v[passing[finite]],
            bins=bins,
            histtype="step",
            color=_PASS,
            lw=1.6,
            label=f"passing cuts ({int((passing & finite).sum()):,})",
        )
        cv = values[cand & finite]
        if len(cv):
            ax.plot(
                np.clip(cv, lo, hi), np.zeros(len(cv)), "|", color=_CAND, ms=14, mew=2, label=f"candidates ({len(cv)})"
            )
        for j, c in enumerate(c for c in (lo_cut, hi_cut) if c is not None):
            ax.axvline(c, **_CUT, label="fixed cut" if j == 0 else None)
        ax.set_xlabel(name + unit)
        ax.set_ylabel("detections")
        ax.set_title(f"{name} (per-tile MAD clip not drawn)", fontsize=10)
        ax.legend(fontsize=8, loc="upper right")

    # (3): SNR against magnitude.
    ax = axes[0, 2]
    good = np.isfinite(mag) & (mag < _MAG_SENTINEL) & np.isfinite(snr) & (snr > 0)
    if good.any():
        ax.scatter(mag[good], snr[good], s=3, color=_GREY, alpha=0.5, lw=0, label=f"all ({int(good.sum()):,})")
        g = good & passing
        ax.scatter(mag[g], snr[g], s=5, color=_PASS, alpha=0.7, lw=0, label=f"passing cuts ({int(g.sum()):,})")
        g = good & cand
        if g.any():
            ax.scatter(
                mag[g],
                snr[g],
                s=45,
                color=_CAND,
                edgecolors="k",
                lw=0.6,
                zorder=3,
                label=f"candidates ({int(g.sum())})",
            )
        ax.set_yscale("log")
        _plain_log_y(ax)
        ax.axhline(cuts.snr_win_min, **_CUT, label=f"SNR_WIN > {cuts.snr_win_min:g}")
        ax.legend(fontsize=8, loc="upper right")
    else:
        _message(ax, "no finite SNR_WIN / MAG_AUTO")
    ax.set_xlabel("MAG_AUTO (mag, instrumental)")
    ax.set_ylabel("SNR_WIN")
    ax.set_title("SNR against magnitude", fontsize=10)

    # (4): detections on the tile.
    ax = axes[1, 0]
    good = np.isfinite(x) & np.isfinite(y)
    ax.scatter(x[good], y[good], s=2, color="0.7", lw=0, label=f"all ({int(good.sum()):,})")
    g = good & passing
    ax.scatter(x[g], y[g], s=4, color=_PASS, lw=0, label="passing cuts")
    g = good & cand
    if g.any():
        ax.scatter(x[g], y[g], s=140, facecolors="none", edgecolors=_CAND, lw=1.6, label=f"candidates ({int(g.sum())})")
    if image_shape is not None:
        ny, nx = (int(v) for v in image_shape)
        from matplotlib.patches import Rectangle

        ax.add_patch(Rectangle((0.5, 0.5), nx, ny, fill=False, ec="k", lw=1.0))
        ax.set_xlim(0.5 - 0.02 * nx, nx + 0.5 + 0.02 * nx)
        ax.set_ylim(0.5 - 0.02 * ny, ny + 0.5 + 0.02 * ny)
        ax.set_title(f"detections on the tile ({nx} x {ny} px)", fontsize=10)
    else:
        ax.set_title("detections on the tile (image size unknown)", fontsize=10)
    ax.set_aspect("equal", adjustable="box")
    ax.set_xlabel("X_IMAGE (px)")
    ax.set_ylabel("Y_IMAGE (px)")
    _legend_below(ax)

    # (5): the tile on its plate.
    _tile_on_plate(axes[1, 1], record, detections, x, y, xp, yp, cand, image_shape)

    # (6): the tile's funnel.
    _funnel_axes(axes[1, 2], record.get("funnel") or {}, title="the tile's funnel", of_all=False, bar_fraction=0.62)
    return _save(fig, path)


def _tile_on_plate(
    ax: Axes,
    record: Mapping[str, Any],
    detections: pd.DataFrame,
    x: np.ndarray,
    y: np.ndarray,
    xp: np.ndarray,
    yp: np.ndarray,
    cand: np.ndarray,
    image_shape: tuple[int, int] | None,
) -> None:
    from matplotlib.patches import Rectangle

    region = str((record.get("plate") or {}).get("region") or "")
    if not region and "plate_id" in detections.columns and len(detections):
        region = str(detections["plate_id"].iloc[0])
    geom = _plate_geometry(region)
    label = (record.get("plate") or {}).get("label", "?")
    title = f"the tile on plate {label} ({region or '?'})"
    dx = xp - x
    dy = yp - y
    ok = np.isfinite(dx) & np.isfinite(dy)
    if geom is not None:
        nx_p, ny_p = geom[2], geom[3]
        ax.add_patch(Rectangle((0.5, 0.5), nx_p, ny_p, fill=False, ec="k", lw=1.2))
        ax.set_xlim(0.5 - 0.03 * nx_p, nx_p + 0.5 + 0.03 * nx_p)
        ax.set_ylim(0.5 - 0.03 * ny_p, ny_p + 0.5 + 0.03 * ny_p)
        ax.plot([nx_p / 2 + 0.5], [ny_p / 2 + 0.5], "+", color="k", ms=10)
        title += f", {nx_p} x {ny_p} px"
    else:
        title += " (not in the plate table: no outline)"
    if ok.any():
        ox, oy = float(np.median(dx[ok])), float(np.median(dy[ok]))
        if image_shape is not None:
            ny, nx = (int(v) for v in image_shape)
        else:
            nx = int(np.ceil(np.nanmax(x))) if np.isfinite(x).any() else 0
            ny = int(np.ceil(np.nanmax(y))) if np.isfinite(y).any() else 0
        ax.add_patch(
            Rectangle((ox + 0.5, oy + 0.5), nx, ny, fc=_PASS, alpha=0.25, ec=_PASS, lw=1.0, label="tile footprint")
        )
        g = cand & np.isfinite(xp) & np.isfinite(yp)
        if g.any():
            ax.scatter(
                xp[g], yp[g], s=22, color=_CAND, edgecolors="k", lw=0.4, zorder=3, label=f"candidates ({int(g.sum())})"
            )
        if geom is not None:
            cx, cy = ox + nx / 2 + 0.5, oy + ny / 2 + 0.5
            edge = min(cx - 0.5, geom[2] + 0.5 - cx, cy - 0.5, geom[3] + 0.5 - cy)
            title += f"\ntile centre {edge:,.0f} px from the nearest plate edge"
        else:
            # No plate outline to frame the view: frame the footprint (a patch does not autoscale it here).
            pad = 0.5 * max(nx, ny, 1)
            ax.set_xlim(ox + 0.5 - pad, ox + nx + 0.5 + pad)
            ax.set_ylim(oy + 0.5 - pad, oy + ny + 0.5 + pad)
        _legend_below(ax)
    else:
        _message(ax, "no plate positions (x_plate, y_plate)")
    ax.set_title(title, fontsize=10)
    ax.set_aspect("equal", adjustable="box")
    ax.set_xlabel("x_plate (px)")
    ax.set_ylabel("y_plate (px)")


# ---------------------------------------------------------------------------------------- survey plots


def survey_plots(
    detections_path: Path,
    candidates: pd.DataFrame,
    records: list[dict],
    summary: dict,
    astrometry: pd.DataFrame | None,
    cfg: VascoConfig,
    out_dir: Path,
    *,
    sample_rows: int = 200_000,
) -> dict[str, Path]:
    """Write the survey's QC plots into ``out_dir`` and return them as caption -> path, in display order.

    * ``"FWHM and elongation"`` (``fwhm_elongation.png``): histograms of
      FWHM_IMAGE and ELONGATION over every detection and over those passing
      the cuts, with the fixed cut lines.
    * ``"SNR vs magnitude"`` (``snr_mag.png``): the density of all detections
      in MAG_AUTO and SNR_WIN (log colour), the candidates on top, the SNR cut.
    * ``"Astrometric residuals"`` (``astrometry.png``): each tile's median
      residual after the fit against before it, and their histograms (from
      ``astrometry``, else the records' ``astrometry`` blocks).
    * ``"Detections and candidates on the plate frame"`` (``plate_frame.png``):
      the candidates and an even sample of at most ``sample_rows`` passing
      detections on the plate (mm), and the normalised distributions of
      their distance to the nearest plate edge.
    * ``"Funnel"`` (``funnel.png``): ``summary["funnel"]`` as log bars with
      counts and the fraction kept.

    Parameters
    ----------
    detections_path : Path
        The survey's ``detections.parquet``; streamed (see :func:`survey_statistics`).
        Missing or empty (0 bytes, as published when no tile was processed):
        the plots say there are no detections.
    candidates : DataFrame
        The survey candidates (rows with ``is_survey_candidate`` false, if
        that column exists, are left out).  May be empty, even without columns.
    records : list of dict
        The tile records (``tile.json``).
    summary : dict
        The survey ``summary.json`` (``funnel``).
    astrometry : DataFrame or None
        ``astrometry.csv`` (``tile_id``, ``raw_median_residual_arcsec``,
        ``median_residual_arcsec``), or None.
    cfg : VascoConfig
        The cut values.
    out_dir : Path
        Folder of the PNGs (created).
    sample_rows : int
        Most passing detections drawn on the plate-frame scatter.

    Raises
    ------
    ValueError
        Naming the missing columns of the detections file or of non-empty
        ``candidates``.
    """
    out_dir = Path(out_dir)
    cands = _candidate_table(candidates)
    path = Path(detections_path)
    if path.is_file() and path.stat().st_size > 0:
        stats = survey_statistics(path, sample_rows=sample_rows)
    else:
        stats = _no_statistics()
    paths = {caption: out_dir / name for caption, name in _SURVEY_FILES.items()}
    _plot_fwhm_elongation(stats, cands, cfg, paths["FWHM and elongation"])
    _plot_snr_mag(stats, cands, cfg, paths["SNR vs magnitude"])
    _plot_astrometry(astrometry, records, paths["Astrometric residuals"])
    _plot_plate_frame(stats, cands, paths["Detections and candidates on the plate frame"])
    _plot_funnel(summary, paths["Funnel"])
    return paths


def _candidate_table(candidates: pd.DataFrame | None) -> pd.DataFrame:
    """The survey candidates with the columns the plots use, as float64 (empty frame when none)."""
    cols = ["FWHM_IMAGE", "ELONGATION", "SNR_WIN", "MAG_AUTO", "x_plate", "y_plate", "plate_id"]
    if candidates is None or len(candidates) == 0:
        return pd.DataFrame({c: pd.Series(dtype=object if c == "plate_id" else np.float64) for c in cols})
    _require(cols, list(candidates.columns), "the candidates table")
    c = candidates
    if "is_survey_candidate" in c.columns:
        c = c[_bools(c, "is_survey_candidate")]
    out = pd.DataFrame({n: _floats(c, n) for n in cols if n != "plate_id"})
    out["plate_id"] = c["plate_id"].to_numpy(dtype=object)
    return out


def _plot_fwhm_elongation(stats: SurveyStatistics, cands: pd.DataFrame, cfg: VascoConfig, path: Path) -> Path:
    cuts = cfg.cuts
    fig = _figure((13.0, 5.0), 90)
    axes = fig.subplots(1, 2)
    for ax, edges, c_all, c_pass, name, unit, cut_values, floor in (
        (
            axes[0],
            FWHM_EDGES,
            stats.fwhm_all,
            stats.fwhm_passing,
            "FWHM_IMAGE",
            " (px)",
            (cuts.fwhm_min_px, cuts.fwhm_max_px),
            1.5 * cuts.fwhm_max_px,
        ),
        (
            axes[1],
            ELONGATION_EDGES,
            stats.elongation_all,
            stats.elongation_passing,
            "ELONGATION",
            " (A/B)",
            (cuts.elongation_max,),
            1.0 + 2.5 * (cuts.elongation_max - 1.0),
        ),
    ):
        total = int(c_all.sum())
        if total == 0:
            _message(ax, "no detections")
        else:
            hi = max(floor, _quantile_edge(edges, c_all, 0.995))
            e, ca = _rebin(edges, c_all, float(edges[0]), hi, 100)
            _, cp = _rebin(edges, c_pass, float(edges[0]), hi, 100)
            beyond = total - int(ca.sum())
            ax.stairs(
                ca,
                e,
                fill=True,
                color=_GREY,
                alpha=0.6,
                label=f"all ({total:,}" + (f"; {beyond:,} beyond the axis)" if beyond else ")"),
            )
            ax.stairs(cp, e, color=_PASS, lw=1.6, label=f"passing cuts ({int(c_pass.sum()):,})")
            cv = cands[name].to_numpy()
            cv = cv[np.isfinite(cv)]
            if len(cv):
                ax.plot(
                    np.clip(cv, e[0], e[-1]),
                    np.zeros(len(cv)),
                    "|",
                    color=_CAND,
                    ms=14,
                    mew=1.5,
                    label=f"candidates ({len(cv):,})",
                )
            for j, c in enumerate(cut_values):
                ax.axvline(c, **_CUT, label="fixed cut" if j == 0 else None)
            ax.set_xlim(e[0], e[-1])
            ax.legend(fontsize=9, loc="upper right")
        ax.set_xlabel(name + unit)
        ax.set_ylabel("detections per bin")
        ax.set_title(f"{name} of all detections (per-tile MAD clip not drawn)", fontsize=10)
    fig.suptitle(
        f"FWHM and elongation: {stats.rows:,} detections, {stats.passing_rows:,} pass the quality cuts", fontsize=12
    )
    return _save(fig, path)


def _plot_snr_mag(stats: SurveyStatistics, cands: pd.DataFrame, cfg: VascoConfig, path: Path) -> Path:
    from matplotlib.colors import LogNorm

    fig = _figure((10.0, 6.5), 90)
    ax = fig.add_subplot()
    counts = stats.snr_mag
    total = int(counts.sum())
    if total == 0:
        _message(ax, "no detections with finite MAG_AUTO and positive SNR_WIN")
    else:
        m_marg, s_marg = counts.sum(axis=1), counts.sum(axis=0)
        m_lo = _quantile_edge(MAG_EDGES, m_marg, 0.0005) - 0.5
        m_hi = _quantile_edge(MAG_EDGES, m_marg, 0.9995) + 0.5
        s_lo = _quantile_edge(LOG_SNR_EDGES, s_marg, 0.0005) - 0.1
        s_hi = _quantile_edge(LOG_SNR_EDGES, s_marg, 0.9995) + 0.1
        me, c = _rebin(MAG_EDGES, counts.T, m_lo, m_hi, 160)
        se, c = _rebin(LOG_SNR_EDGES, c.T, s_lo, s_hi, 120)
        shown = np.ma.masked_less_equal(c.T.astype(np.float64), 0)
        mesh = ax.pcolormesh(
            me, 10.0**se, shown, cmap="viridis", norm=LogNorm(vmin=1, vmax=max(float(shown.max()), 2.0)), shading="flat"
        )
        fig.colorbar(mesh, ax=ax, label="detections per cell")
        ax.set_yscale("log")
        _plain_log_y(ax)
        ax.set_xlim(me[0], me[-1])
        ax.set_ylim(10.0 ** se[0], 10.0 ** se[-1])
        good = (np.isfinite(cands["MAG_AUTO"]) & (cands["SNR_WIN"] > 0)).to_numpy()
        if good.any():
            ax.scatter(
                cands["MAG_AUTO"][good],
                cands["SNR_WIN"][good],
                s=30,
                color=_CAND,
                edgecolors="k",
                lw=0.5,
                zorder=3,
                label=f"candidates ({int(good.sum()):,})",
            )
        ax.axhline(cfg.cuts.snr_win_min, **_CUT, label=f"SNR_WIN > {cfg.cuts.snr_win_min:g}")
        ax.legend(fontsize=9, loc="upper right")
    ax.set_xlabel("MAG_AUTO (mag, instrumental)")
    ax.set_ylabel("SNR_WIN")
    ax.set_title(f"SNR against magnitude: {total:,} detections (density), candidates on top", fontsize=11)
    return _save(fig, path)


def _astrometry_table(astrometry: pd.DataFrame | None, records: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """Per-tile ``tile_id, before, after`` median residuals (arcsec), finite rows only."""
    cols = ("raw_median_residual_arcsec", "median_residual_arcsec")
    if astrometry is not None and len(astrometry) and all(c in astrometry.columns for c in cols):
        tid = (
            astrometry["tile_id"].astype(str) if "tile_id" in astrometry.columns else pd.Series([""] * len(astrometry))
        )
        table = pd.DataFrame(
            {"tile_id": tid.to_numpy(), "before": _floats(astrometry, cols[0]), "after": _floats(astrometry, cols[1])}
        )
    else:
        rows = [
            (
                str(r.get("tile_id", "")),
                (r.get("astrometry") or {}).get(cols[0]),
                (r.get("astrometry") or {}).get(cols[1]),
            )
            for r in records
        ]
        table = pd.DataFrame(rows, columns=["tile_id", "before", "after"])
        for c in ("before", "after"):
            table[c] = pd.to_numeric(table[c], errors="coerce").astype(np.float64)
    finite = np.isfinite(table["before"].to_numpy()) & np.isfinite(table["after"].to_numpy())
    return table[finite].reset_index(drop=True)


def _plot_astrometry(astrometry: pd.DataFrame | None, records: Sequence[Mapping[str, Any]], path: Path) -> Path:
    from matplotlib.ticker import MaxNLocator

    table = _astrometry_table(astrometry, records)
    fig = _figure((12.0, 5.0), 90)
    sc, hx = fig.subplots(1, 2)
    n = len(table)
    if n == 0:
        for ax in (sc, hx):
            _message(ax, "no astrometry")
            ax.set_axis_off()
        fig.suptitle("Astrometric residuals: no astrometry", fontsize=12)
        return _save(fig, path)
    before = table["before"].to_numpy()
    after = table["after"].to_numpy()
    top = max(float(np.max(before)), float(np.max(after))) * 1.08
    sc.plot([0, top], [0, top], color="0.5", lw=1, ls=":", label="after = before")
    sc.scatter(
        before,
        after,
        s=14 if n > 1000 else 28,
        color=_PASS,
        alpha=0.6 if n > 1000 else 0.9,
        lw=0,
        label=f"tiles ({n:,})",
    )
    worst = int(np.argmax(after))
    sc.annotate(
        f"worst: {table['tile_id'].iat[worst]}",
        (before[worst], after[worst]),
        fontsize=8,
        xytext=(-6, 6),
        textcoords="offset points",
        ha="right",
    )
    sc.set_xlim(0, top)
    sc.set_ylim(0, top)
    sc.set_aspect("equal", adjustable="box")
    sc.set_xlabel("median residual with the header solution (arcsec)")
    sc.set_ylabel("median residual after the fit (arcsec)")
    sc.set_title("per tile: after the fit against before", fontsize=10)
    sc.legend(fontsize=9, loc="upper left")
    lo = min(float(np.min(before)), float(np.min(after)))
    hi = top / 1.08
    pad = max(0.05 * (hi - lo), 0.005)
    bins = np.linspace(max(lo - pad, 0.0), hi + pad, 41 if n > 40 else 21)
    hx.hist(before, bins=bins, histtype="step", color="0.4", lw=1.5, label="header solution")
    hx.hist(after, bins=bins, histtype="stepfilled", color=_CAND, alpha=0.45, label="after the fit")
    for data, colour in ((before, "0.4"), (after, _CAND)):
        hx.axvline(float(np.median(data)), color=colour, ls="--", lw=1)
    hx.set_xlabel("tile median residual (arcsec)")
    hx.set_ylabel("tiles")
    hx.yaxis.set_major_locator(MaxNLocator(integer=True))
    hx.set_title("tile medians (dashed: median over tiles)", fontsize=10)
    hx.legend(fontsize=9)
    fig.suptitle(
        f'Astrometric residuals of {n:,} tiles: median of tile medians {np.median(before):.3f}" -> '
        f'{np.median(after):.3f}", worst tile {after[worst]:.3f}"',
        fontsize=12,
    )
    return _save(fig, path)


def _plot_plate_frame(stats: SurveyStatistics, cands: pd.DataFrame, path: Path) -> Path:
    from matplotlib.patches import Rectangle

    fig = _figure((13.0, 6.0), 90)
    sc, hx = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.0, 1.1]})
    geom = _geometry_of(cands["plate_id"])
    cx, cy, cedge = _plate_mm(cands["x_plate"].to_numpy(), cands["y_plate"].to_numpy(), geom)
    plates = np.vstack([_geometry_arrays(stats.plates), _geometry_of(pd.Series(cands["plate_id"].unique()))])
    plates = plates[np.isfinite(plates[:, 0])]
    sizes = sorted({(round(float(g[2] * g[0]), 2), round(float(g[3] * g[1]), 2)) for g in plates})
    for j, (w, h) in enumerate(sizes):
        sc.add_patch(
            Rectangle(
                (0.0, 0.0),
                w,
                h,
                fill=False,
                ec="k",
                lw=1.0,
                ls="-" if j == 0 else "--",
                label=f"plate scan {w:.0f} x {h:.0f} mm",
            )
        )
    sx, sy = stats.sample_x_mm, stats.sample_y_mm
    good = np.isfinite(sx) & np.isfinite(sy)
    if good.any():
        sc.scatter(
            sx[good],
            sy[good],
            s=1.5,
            color=_GREY,
            alpha=0.35,
            lw=0,
            rasterized=False,
            label=f"passing cuts (every {stats.sample_step:,}th: {int(good.sum()):,} of {stats.passing_rows:,})"
            if stats.sample_step > 1
            else f"passing cuts ({int(good.sum()):,})",
        )
    cgood = np.isfinite(cx) & np.isfinite(cy)
    if cgood.any():
        sc.scatter(
            cx[cgood],
            cy[cgood],
            s=16,
            color=_CAND,
            edgecolors="k",
            lw=0.4,
            zorder=3,
            label=f"candidates ({int(cgood.sum()):,})",
        )
    if not sizes and not good.any() and not cgood.any():
        _message(sc, "no positions on plates of the plate table")
    else:
        big = max([max(w, h) for w, h in sizes] + [360.0])
        sc.set_xlim(-0.03 * big, 1.03 * big)
        sc.set_ylim(-0.03 * big, 1.03 * big)
        sc.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncols=2, frameon=False)
    sc.set_aspect("equal", adjustable="box")
    sc.set_xlabel("x on the plate (mm) = (x_plate - 0.5) x pixel size")
    sc.set_ylabel("y on the plate (mm)")
    sc.set_title("positions on the plate frame (all plates overlaid)", fontsize=10)

    total = int(stats.edge_mm_passing.sum())
    cedge = cedge[np.isfinite(cedge)]
    if total == 0 and not len(cedge):
        _message(hx, "no edge distances")
    else:
        hi = max(
            _quantile_edge(EDGE_MM_EDGES, stats.edge_mm_passing, 1.0), float(np.max(cedge)) if len(cedge) else 0.0, 20.0
        )
        e, cp = _rebin(EDGE_MM_EDGES, stats.edge_mm_passing, 0.0, hi, 40)
        width = np.diff(e)
        if total:
            hx.stairs(cp / (cp.sum() * width), e, fill=True, color=_GREY, alpha=0.5, label=f"passing cuts ({total:,})")
        if len(cedge):
            cc = np.histogram(np.clip(cedge, e[0], e[-1]), bins=e)[0]
            hx.stairs(cc / (cc.sum() * width), e, color=_CAND, lw=1.8, label=f"candidates ({len(cedge):,})")
        hx.set_xlim(e[0], e[-1])
        hx.legend(fontsize=9)
    hx.set_xlabel("distance to the nearest plate edge (mm)")
    hx.set_ylabel("fraction per mm (normalised)")
    hx.set_title("edge clustering: candidates against detections passing the cuts", fontsize=10)
    fig.suptitle("Detections and candidates on the plate frame", fontsize=12)
    return _save(fig, path)


def _plot_funnel(summary: Mapping[str, Any], path: Path) -> Path:
    funnel = dict(summary.get("funnel") or {})
    fig = _figure((11.0, 0.9 + 0.36 * max(len(funnel), 3)), 90)
    ax = fig.add_subplot()
    _funnel_axes(ax, funnel, title="Survey funnel: count at each stage (fraction of the previous stage kept)")
    return _save(fig, path)

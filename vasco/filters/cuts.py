"""The paper's quality cuts, and the funnel.

Each cut adds a boolean column ``cut_<name>`` (True = the detection passes
that test) so every decision is auditable in ``detections.parquet``; the
funnel counts the detections left after each cut in order.

The cuts that need no PSF model (:data:`CUT_ORDER`) come first, on every
detection.  The SPREAD_MODEL cut (:func:`spread_model_cut`) comes after the
counterpart tests, on the detections still alive there: those are the only
ones whose SPREAD_MODEL can change a decision, so the pipeline fits the PSF
model only for them.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from vasco.config import CutsConfig

__all__ = [
    "CUT_ORDER",
    "SPREAD_CUT",
    "apply_quality_cuts",
    "counterpart_tests",
    "mad_sigma",
    "ordered_funnel",
    "spread_model_cut",
    "spread_model_stage",
]

#: Cuts that need no PSF model, in the order the funnel applies them.
CUT_ORDER: tuple[str, ...] = (
    "flags",
    "snr",
    "fwhm",
    "elongation",
    "extent",
    "mad_clip",
)

#: The funnel stage (and ``cut_<name>`` column) of the SPREAD_MODEL cut, after the counterparts.
SPREAD_CUT = "spread_model"

REQUIRED_COLUMNS = (
    "FLAGS",
    "SNR_WIN",
    "FWHM_IMAGE",
    "ELONGATION",
    "XMIN_IMAGE",
    "XMAX_IMAGE",
    "YMIN_IMAGE",
    "YMAX_IMAGE",
)


def mad_sigma(values: np.ndarray) -> float:
    """Robust sigma: 1.4826 times the median absolute deviation."""
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return float("nan")
    med = np.median(values)
    return float(1.4826 * np.median(np.abs(values - med)))


def _clip_mask(values: np.ndarray, among: np.ndarray, nsigma: float) -> np.ndarray:
    """Within ``nsigma`` robust sigmas of the median of ``values[among]``."""
    ref = values[among]
    if ref.size == 0:
        return np.zeros(values.shape, dtype=bool)
    med = np.median(ref)
    sig = mad_sigma(ref)
    if not np.isfinite(sig) or sig == 0.0:
        # All reference values equal: keep exactly those equal to the median.
        return values == med
    return np.abs(values - med) <= nsigma * sig


def _fixed_tests(table: pd.DataFrame, cfg: CutsConfig, names: tuple[str, ...]) -> dict[str, np.ndarray]:
    """The fixed cuts ``names`` (a subset of CUT_ORDER without mad_clip), True = passes."""
    fwhm = table["FWHM_IMAGE"].to_numpy(np.float64)
    tests: dict[str, np.ndarray] = {}
    for name in names:
        if name == "flags":
            tests[name] = table["FLAGS"].to_numpy() <= cfg.flags_max
        elif name == "snr":
            tests[name] = table["SNR_WIN"].to_numpy(np.float64) > cfg.snr_win_min
        elif name == "fwhm":
            tests[name] = (fwhm > cfg.fwhm_min_px) & (fwhm < cfg.fwhm_max_px)
        elif name == "elongation":
            tests[name] = table["ELONGATION"].to_numpy(np.float64) < cfg.elongation_max
        elif name == "extent":
            # SExtractor's XMAX-XMIN is the extent in pixels minus one; the
            # paper's test uses these differences as they are.
            dx = (table["XMAX_IMAGE"] - table["XMIN_IMAGE"]).to_numpy(np.float64)
            dy = (table["YMAX_IMAGE"] - table["YMIN_IMAGE"]).to_numpy(np.float64)
            tests[name] = (
                (np.abs(dx - dy) < cfg.extent_delta_max_px) & (dx > cfg.extent_min_px) & (dy > cfg.extent_min_px)
            )
        else:
            raise ValueError(f"unknown fixed cut {name!r}")
    return tests


def apply_quality_cuts(table: pd.DataFrame, cfg: CutsConfig) -> tuple[pd.DataFrame, OrderedDict[str, int]]:
    """Add the ``cut_*`` columns of :data:`CUT_ORDER` and ``passes_cuts``; return the table and the funnel.

    The fixed cuts are FLAGS <= flags_max, SNR_WIN > snr_win_min,
    fwhm_min < FWHM_IMAGE < fwhm_max, ELONGATION < elongation_max, and the
    extent test ``|(XMAX-XMIN) - (YMAX-YMIN)| < extent_delta_max`` with both
    extents above ``extent_min``.  The MAD clip then keeps, among the
    detections that passed all of those, the ones whose FWHM_IMAGE and
    ELONGATION are within ``mad_clip_sigma`` robust sigmas (1.4826*MAD) of
    their medians over that same set.  ``passes_cuts`` is True for the
    detections that pass all of them; SPREAD_MODEL is tested later
    (:func:`spread_model_cut`).

    Raises
    ------
    ValueError
        If a required SExtractor column is missing.
    """
    missing = [c for c in REQUIRED_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"detections table lacks column(s) {missing} needed by the quality cuts")
    out = table.copy()
    fwhm = out["FWHM_IMAGE"].to_numpy(np.float64)
    elong = out["ELONGATION"].to_numpy(np.float64)
    tests = _fixed_tests(out, cfg, tuple(n for n in CUT_ORDER if n != "mad_clip"))
    fixed = np.ones(len(out), dtype=bool)
    for mask in tests.values():
        fixed &= mask
    tests["mad_clip"] = _clip_mask(fwhm, fixed, cfg.mad_clip_sigma) & _clip_mask(elong, fixed, cfg.mad_clip_sigma)

    funnel: OrderedDict[str, int] = OrderedDict(detections=len(out))
    alive = np.ones(len(out), dtype=bool)
    for name in CUT_ORDER:
        out[f"cut_{name}"] = tests[name]
        alive &= tests[name]
        funnel[name] = int(alive.sum())
    out["passes_cuts"] = alive
    return out, funnel


def spread_model_cut(spread_model: np.ndarray, tested: np.ndarray, cfg: CutsConfig) -> pd.arrays.BooleanArray:
    """The SPREAD_MODEL cut (SPREAD_MODEL > spread_model_min) on the ``tested`` detections.

    Returns a nullable boolean array (pandas ``boolean``): True/False where
    ``tested``, missing (``<NA>``) elsewhere, since those detections left the
    funnel before this stage and their SPREAD_MODEL need not exist.

    Raises
    ------
    ValueError
        If a tested detection has no finite SPREAD_MODEL.
    """
    spread = np.asarray(spread_model, dtype=np.float64)
    tested = np.asarray(tested, dtype=bool)
    bad = tested & ~np.isfinite(spread)
    if bad.any():
        raise ValueError(f"{int(bad.sum())} detection(s) reach the SPREAD_MODEL cut without a SPREAD_MODEL value")
    values = pd.array(spread > cfg.spread_model_min, dtype="boolean")
    values[~tested] = pd.NA
    return values


def counterpart_tests(table: pd.DataFrame, catalogs: list[str], funnel: OrderedDict[str, int]) -> pd.DataFrame:
    """The counterpart vetoes after the quality cuts: ``no_<catalogue>`` and ``no_counterpart``.

    Parameters
    ----------
    table : DataFrame
        Detections with ``passes_cuts`` and ``<catalogue>_sep_arcsec`` (NaN: no
        counterpart); changed in place.
    catalogs : list of str
        The catalogues matched on this tile, in funnel order.
    funnel : OrderedDict
        The funnel so far; gets ``no_<catalogue>`` (detections alive after
        each test), in place.

    Returns
    -------
    DataFrame
        ``table`` with ``no_<catalogue>`` (no counterpart in it) and
        ``no_counterpart`` (passes the cuts and has no counterpart in any).
    """
    alive = table["passes_cuts"].to_numpy().copy()
    for name in catalogs:
        no_cp = ~np.isfinite(table[f"{name}_sep_arcsec"].to_numpy(np.float64))
        table[f"no_{name}"] = no_cp
        alive &= no_cp
        funnel[f"no_{name}"] = int(alive.sum())
    table["no_counterpart"] = alive
    return table


def spread_model_stage(table: pd.DataFrame, cfg: CutsConfig) -> tuple[pd.DataFrame, int]:
    """The SPREAD_MODEL cut on the detections alive after the counterpart tests.

    Adds ``cut_spread_model`` (:func:`spread_model_cut` on the detections
    with ``no_counterpart``; missing for the others) and ``survives_psf``
    (alive after this stage: where the later vetoes start).

    Returns
    -------
    tuple
        The table (changed in place) and the number of detections alive.

    Raises
    ------
    ValueError
        From :func:`spread_model_cut` (a SPREAD_MODEL missing where tested).
    """
    reached = table["no_counterpart"].to_numpy(bool)
    table[f"cut_{SPREAD_CUT}"] = spread_model_cut(table["SPREAD_MODEL"].to_numpy(np.float64), reached, cfg)
    alive = reached & table[f"cut_{SPREAD_CUT}"].fillna(False).to_numpy(bool)
    table["survives_psf"] = alive
    return table, int(alive.sum())


def ordered_funnel(*infos: Mapping[str, Any]) -> OrderedDict[str, int]:
    """The tile's funnel: the ``funnel`` of each step's info (select, spread_model, vetoes), in step order."""
    return OrderedDict((k, int(v)) for info in infos for k, v in info["funnel"].items())

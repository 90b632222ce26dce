"""The paper's quality cuts on the pass-2 catalogue, and the funnel.

Each cut adds a boolean column ``cut_<name>`` (True = the detection passes
that test) so every decision is auditable in ``detections.parquet``; the
funnel counts the detections left after each cut in order.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pandas as pd

from vasco.config import CutsConfig

__all__ = ["CUT_ORDER", "apply_quality_cuts", "mad_sigma", "reaches_spread_cut"]

#: Cut names in the order the funnel applies them.
CUT_ORDER: tuple[str, ...] = (
    "flags",
    "snr",
    "spread_model",
    "fwhm",
    "elongation",
    "extent",
    "mad_clip",
)

REQUIRED_COLUMNS = (
    "FLAGS",
    "SNR_WIN",
    "SPREAD_MODEL",
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
        elif name == "spread_model":
            tests[name] = table["SPREAD_MODEL"].to_numpy(np.float64) > cfg.spread_model_min
        elif name == "fwhm":
            tests[name] = (fwhm > cfg.fwhm_min_px) & (fwhm < cfg.fwhm_max_px)
        elif name == "elongation":
            tests[name] = table["ELONGATION"].to_numpy(np.float64) < cfg.elongation_max
        elif name == "extent":
            # SExtractor's XMAX-XMIN is the extent in pixels minus one; the
            # paper's test uses these differences as they are.
            dx = (table["XMAX_IMAGE"] - table["XMIN_IMAGE"]).to_numpy(np.float64)
            dy = (table["YMAX_IMAGE"] - table["YMIN_IMAGE"]).to_numpy(np.float64)
            tests[name] = (np.abs(dx - dy) < cfg.extent_delta_max_px) & (dx > cfg.extent_min_px) & (dy > cfg.extent_min_px)
        else:
            raise ValueError(f"unknown fixed cut {name!r}")
    return tests


def reaches_spread_cut(table: pd.DataFrame, cfg: CutsConfig) -> np.ndarray:
    """True for the detections that pass every cut before ``spread_model`` in CUT_ORDER.

    Only these can change a decision or a funnel count through SPREAD_MODEL:
    the funnel counts the spread-model stage over them, the MAD clip's
    reference set is a subset of them, and every other detection is already
    rejected.  Needs only the columns of a pass 2 without the PSF model.
    """
    before = CUT_ORDER[: CUT_ORDER.index("spread_model")]
    ok = np.ones(len(table), dtype=bool)
    for mask in _fixed_tests(table, cfg, before).values():
        ok &= mask
    return ok


def apply_quality_cuts(table: pd.DataFrame, cfg: CutsConfig) -> tuple[pd.DataFrame, "OrderedDict[str, int]"]:
    """Add ``cut_*`` columns and ``passes_cuts``; return the table and the funnel.

    The fixed cuts are FLAGS <= flags_max, SNR_WIN > snr_win_min,
    SPREAD_MODEL > spread_model_min, fwhm_min < FWHM_IMAGE < fwhm_max,
    ELONGATION < elongation_max, and the extent test
    ``|(XMAX-XMIN) - (YMAX-YMIN)| < extent_delta_max`` with both extents
    above ``extent_min``.  The MAD clip then keeps, among the detections that
    passed all of those, the ones whose FWHM_IMAGE and ELONGATION are within
    ``mad_clip_sigma`` robust sigmas (1.4826*MAD) of their medians over that
    same set.

    Raises
    ------
    ValueError
        If a required SExtractor column is missing, or (for a pass 2 that
        measured the PSF-model columns only where needed, ``psf_measured``)
        a detection that reaches the SPREAD_MODEL cut was not measured.
    """
    missing = [c for c in REQUIRED_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"detections table lacks column(s) {missing} needed by the quality cuts")
    out = table.copy()
    fwhm = out["FWHM_IMAGE"].to_numpy(np.float64)
    elong = out["ELONGATION"].to_numpy(np.float64)
    tests = _fixed_tests(out, cfg, tuple(n for n in CUT_ORDER if n != "mad_clip"))
    if "psf_measured" in out.columns:
        lost = reaches_spread_cut(out, cfg) & ~out["psf_measured"].to_numpy(bool)
        if lost.any():
            raise ValueError(
                f"{int(lost.sum())} detection(s) reach the SPREAD_MODEL cut but have no PSF-model "
                "measurement (pass 2 selected them with other cut settings)"
            )
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

"""Step ``astrometry``: choose the header solution and tie the positions to the reference catalogue."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from vasco.astrometry.solve import SOLUTIONS, fit_star_mask, reference_at_epoch, solve_tile
from vasco.astrometry.trust import add_position_errors
from vasco.config import AstrometryConfig, VascoConfig
from vasco.io import write_json_atomic, write_parquet_atomic
from vasco.matching.reference import reference_table
from vasco.records import Output
from vasco.steps.base import StepError, plate_epoch_mid, run_step

__all__ = ["AstrometryResult", "run", "astrometry"]


@dataclass
class AstrometryResult:
    """What :func:`run` returns.

    Attributes
    ----------
    table
        The measured table with the corrected positions (``work/positioned.parquet``).
    pairs
        Residual vectors of the fit stars, before and after (``work/astrometry_pairs.parquet``).
    record
        ``{"summary": ..., "fit": ...}`` (``work/astrometry.json``).
    """

    table: pd.DataFrame
    pairs: pd.DataFrame
    record: dict[str, Any]


def run(
    table: pd.DataFrame,
    reference: pd.DataFrame | None,
    plate_epoch: float,
    ra0: float,
    dec0: float,
    cfg: AstrometryConfig,
) -> AstrometryResult:
    """Choose the header solution, fit the Gaia-tied correction and each detection's position error.

    Parameters
    ----------
    table : DataFrame
        The measured table (``ra_<s>``/``dec_<s>`` of each header solution,
        windowed centroids and their errors, SNR_WIN, FLAGS).
    reference : DataFrame or None
        The reference catalogue (``astrometry.reference``) as served; None:
        positions stay those of the header.
    plate_epoch : float
        The plate's mid-exposure epoch (Julian year): the reference is moved there.
    ra0, dec0 : float
        The tile centre (tangent point).
    cfg : AstrometryConfig
        ``astrometry`` settings.

    Returns
    -------
    AstrometryResult
        ``ra``/``dec`` replaced by the corrected float64 positions,
        ``ra_header``/``dec_header`` keeping those of the header solution used,
        ``astrometry_solution``, and ``pos_err_arcsec`` with its parts
        ``pos_err_centroid_arcsec`` and ``pos_err_fit_arcsec``
        (:func:`vasco.astrometry.trust.add_position_errors`).

    Raises
    ------
    StepError
        ``FAIL_NO_ASTROMETRY`` when no solution can be chosen, ``FAIL_PASS2``
        when the centroid errors are missing.
    """
    positions = {
        s: (table[f"ra_{s}"].to_numpy(np.float64), table[f"dec_{s}"].to_numpy(np.float64))
        for s in SOLUTIONS
        if f"ra_{s}" in table.columns and np.isfinite(table[f"ra_{s}"].to_numpy(np.float64)).any()
    }
    ref_ra = ref_dec = None
    if reference is not None:
        ref = reference_table(reference, cfg.reference)
        ref_ra, ref_dec = reference_at_epoch(ref, plate_epoch, require_pm=cfg.fit_require_pm)
    x = table["XWIN_IMAGE"].to_numpy(np.float64)
    y = table["YWIN_IMAGE"].to_numpy(np.float64)
    try:
        sol = solve_tile(positions, x, y, fit_star_mask(table, cfg), ref_ra, ref_dec, ra0, dec0, cfg)
    except ValueError as exc:
        raise StepError("FAIL_NO_ASTROMETRY", str(exc)) from exc
    hra, hdec = positions[sol.solution]
    table["ra"] = sol.ra
    table["dec"] = sol.dec
    table["ra_header"] = hra
    table["dec_header"] = hdec
    table["astrometry_solution"] = sol.solution
    summary = sol.summary()
    try:
        summary.update(add_position_errors(table, x, y, sol.ra, sol.dec, sol.pairs, ra0, dec0))
    except ValueError as exc:
        raise StepError("FAIL_PASS2", str(exc)) from exc
    summary["reference"] = cfg.reference if ref_ra is not None else None
    summary["plate_epoch"] = plate_epoch
    record = {"summary": summary, "fit": sol.fit.to_dict() if sol.fit is not None else None}
    return AstrometryResult(table=table, pairs=sol.pairs, record=record)


def astrometry(
    tile_dir: Path,
    measured: Output,
    catalogs: Mapping[str, Output],
    plate: Output,
    ra0: float,
    dec0: float,
    cfg: VascoConfig,
) -> dict[str, Any]:
    """The plate solution (:func:`run`) of a tile's measured table.

    Writes ``work/positioned.parquet``, ``work/astrometry.json`` (the
    ``astrometry`` block of tile.json and the fit's coefficients) and
    ``work/astrometry_pairs.parquet``.  Without a reference catalogue, or
    with ``astrometry.refit`` off, positions stay those of the header.
    """
    tile_dir = Path(tile_dir)
    acfg = cfg.astrometry
    inputs: dict[str, Output] = {"measured": measured, "plate": plate}
    if acfg.reference in catalogs:
        inputs["reference"] = catalogs[acfg.reference]

    def body() -> tuple[dict[str, Path], dict[str, Any]]:
        reference = pd.read_parquet(inputs["reference"]["path"]) if "reference" in inputs else None
        res = run(pd.read_parquet(measured["path"]), reference, plate_epoch_mid(plate), ra0, dec0, acfg)
        outs = {
            "table": write_parquet_atomic(tile_dir / "work" / "positioned.parquet", res.table),
            "pairs": write_parquet_atomic(tile_dir / "work" / "astrometry_pairs.parquet", res.pairs),
            "astrometry": write_json_atomic(tile_dir / "work" / "astrometry.json", res.record),
        }
        return outs, {"astrometry": res.record["summary"]}

    # The trust thresholds are applied after the counterpart match (select), not here.
    params = {**acfg.model_dump(mode="json", exclude={"trust"}), "ra0": ra0, "dec0": dec0}
    return run_step(tile_dir, "astrometry", inputs, params, astrometry, body)

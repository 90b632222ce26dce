"""Step ``match``: counterparts of every detection in each reference catalogue, at the plate epoch."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from vasco.config import MatchingConfig, VascoConfig
from vasco.io import write_parquet_atomic
from vasco.matching.catalogs import add_counterparts
from vasco.matching.coverage import catalog_applies
from vasco.matching.reference import reference_table
from vasco.records import Output
from vasco.steps.base import StepError, plate_epoch_mid, run_step

__all__ = ["run", "match"]


def run(
    table: pd.DataFrame,
    catalogs: Mapping[str, pd.DataFrame],
    plate_epoch: float,
    tile_dec: float,
    cfg: MatchingConfig,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Counterparts in each reference catalogue of ``matching.catalogs``, moved to the plate epoch.

    Parameters
    ----------
    table : DataFrame
        Detections with float64 ``ra``/``dec``.
    catalogs : mapping
        Catalogue name -> table as served.
    plate_epoch : float
        The plate's mid-exposure epoch (Julian year).
    tile_dec : float
        The tile centre's declination (which catalogues cover it).
    cfg : MatchingConfig
        ``matching`` settings.

    Returns
    -------
    tuple
        The table with the counterpart columns
        (:func:`vasco.matching.catalogs.add_counterparts`), and the info
        ``catalogs_used`` / ``catalogs_skipped`` (name -> why).

    Raises
    ------
    StepError
        ``FAIL_CATALOG_MISSING`` when a catalogue that covers the tile is not in ``catalogs``.
    """
    used: list[str] = []
    skipped: dict[str, str] = {}
    refs: dict[str, pd.DataFrame] = {}
    for name in cfg.catalogs:
        applies, why = catalog_applies(name, tile_dec, cfg.ps1_dec_min)
        if not applies:
            skipped[name] = str(why)
            continue
        if name not in catalogs:
            raise StepError("FAIL_CATALOG_MISSING", f"catalogue {name!r} was not acquired for this tile")
        refs[name] = reference_table(catalogs[name], name)
        used.append(name)
    table = add_counterparts(table, refs, list(cfg.catalogs), skipped, plate_epoch, cfg.radius_arcsec)
    return table, {"catalogs_used": used, "catalogs_skipped": skipped}


def match(
    tile_dir: Path,
    measured: Output,
    catalogs: Mapping[str, Output],
    plate: Output,
    tile_dec: float,
    cfg: VascoConfig,
) -> dict[str, Any]:
    """The counterparts (:func:`run`) of a tile's positioned table, into ``work/matched.parquet``.

    For each catalogue ``c`` adds ``c_id``, ``c_sep_arcsec`` and ``c_mag``;
    then ``counterpart_sep_arcsec`` / ``counterpart_catalog`` (the nearest over
    all catalogues).  A catalogue that does not cover the tile (PS1 below
    Dec -30) is skipped and the reason recorded in the step info.
    """
    tile_dir = Path(tile_dir)
    inputs: dict[str, Output] = {"measured": measured, "plate": plate}
    inputs.update({f"cat_{k}": v for k, v in catalogs.items()})

    def body() -> tuple[dict[str, Path], dict[str, Any]]:
        wanted = [
            n
            for n in cfg.matching.catalogs
            if n in catalogs and catalog_applies(n, tile_dec, cfg.matching.ps1_dec_min)[0]
        ]
        tables: dict[str, pd.DataFrame] = {n: pd.read_parquet(catalogs[n]["path"]) for n in wanted}
        table, info = run(pd.read_parquet(measured["path"]), tables, plate_epoch_mid(plate), tile_dec, cfg.matching)
        path = write_parquet_atomic(tile_dir / "work" / "matched.parquet", table)
        return {"table": path}, info

    params = {**cfg.matching.model_dump(mode="json"), "tile_dec": tile_dec}
    return run_step(tile_dir, "match", inputs, params, match, body)

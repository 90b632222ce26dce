"""Step ``catalogs``: the reference catalogues (Gaia, PS1) of a tile, in two variants.

* :func:`catalogs` asks VizieR for a cone around the tile, or reads the
  user's local files.
* :func:`catalogs_xmatch` uploads the tile's detections to CDS XMatch.

Both write ``catalogs/<name>.parquet`` and the step record ``catalogs``.
Acquiring is I/O: there is no pure part.  (The synthetic sky's catalogues
come with :func:`vasco.steps.acquire.acquire_synthetic`.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from vasco.config import VascoConfig
from vasco.io import write_parquet_atomic
from vasco.matching.coverage import catalog_applies
from vasco.records import Output
from vasco.steps.base import StepError, run_step

__all__ = ["catalogs", "catalogs_xmatch"]


def catalogs(tile_dir: Path, ra: float, dec: float, cfg: VascoConfig) -> dict[str, Any]:
    """Reference catalogues in a cone around the tile, from VizieR or local files.

    The cone is the tile's half-diagonal plus ``catalogs.cone_margin_arcmin``.
    A catalogue that does not cover the tile (PS1 below Dec -30) is not asked.
    """
    tile_dir = Path(tile_dir)
    source = cfg.catalogs.resolved(cfg.sky)
    radius = (cfg.survey.size_arcmin / 2.0 * np.sqrt(2.0) + cfg.catalogs.cone_margin_arcmin) / 60.0
    params = {
        "ra": ra,
        "dec": dec,
        "radius_deg": radius,
        "source": source,
        "catalogs": list(cfg.matching.catalogs),
        "local": dict(cfg.catalogs.local),
    }

    def body() -> tuple[dict[str, Path], dict[str, Any]]:
        from vasco.sources.http import SourceError
        from vasco.sources.local import LocalCatalogError, read_local_cone
        from vasco.sources.provenance import query_entry, utc_now
        from vasco.sources.vizier import GAIA_EDR3, PS1_DR2, ConeStats, query_cone, vizier_base_url

        outs: dict[str, Path] = {}
        info: dict[str, Any] = {"source": source, "radius_deg": radius, "queries": []}
        for name in cfg.matching.catalogs:
            applies, why = catalog_applies(name, dec, cfg.matching.ps1_dec_min)
            if not applies:
                info[f"{name}_skipped"] = why
                continue
            asked = utc_now()
            try:
                if source == "local":
                    table = read_local_cone(Path(cfg.catalogs.local[name]), ra, dec, radius)
                    query = query_entry("local", str(cfg.catalogs.local[name]), [name], asked, len(table))
                else:
                    spec = GAIA_EDR3 if name == "gaia" else PS1_DR2
                    stats = ConeStats()
                    table = query_cone(
                        spec.name,
                        ra,
                        dec,
                        radius,
                        row_limit=cfg.catalogs.vizier_row_limit,
                        config=cfg.sources.vizier,
                        stats=stats,
                    )
                    query = query_entry(
                        "vizier",
                        vizier_base_url(None, cfg.sources.vizier),
                        [spec.name],
                        asked,
                        len(table),
                        requests=stats.requests,
                    )
            except SourceError as exc:
                # No answer is not "no counterpart": the tile fails, it never yields candidates.
                raise StepError(exc.reason, str(exc)) from exc
            except LocalCatalogError as exc:
                raise StepError("FAIL_LOCAL_CATALOG", str(exc)) from exc
            outs[name] = write_parquet_atomic(tile_dir / "catalogs" / f"{name}.parquet", table)
            info[f"n_{name}"] = len(table)
            info["queries"].append(query)
        return outs, info

    return run_step(tile_dir, "catalogs", {}, params, catalogs, body)


def catalogs_xmatch(tile_dir: Path, measured: Output, tile_dec: float, cfg: VascoConfig) -> dict[str, Any]:
    """Catalogue rows near the tile's detections, through CDS XMatch.

    Every detection is uploaded (in chunks, one job at a time) and every
    catalogue source within ``catalogs.xmatch_radius_arcsec`` comes back; the
    rows are stored like a cone answer, so :func:`vasco.steps.match.match`
    moves them to the plate epoch and applies the counterpart radius itself.
    """
    tile_dir = Path(tile_dir)
    params = {
        "catalogs": list(cfg.matching.catalogs),
        "radius": cfg.catalogs.xmatch_radius_arcsec,
        "tile_dec": tile_dec,
        "tables": {name: cfg.catalogs.xmatch_tables[name] for name in cfg.matching.catalogs},
    }

    def body() -> tuple[dict[str, Path], dict[str, Any]]:
        from vasco.sources.http import SourceError
        from vasco.sources.provenance import query_entry, utc_now
        from vasco.sources.xmatch import xmatch_detections

        det = pd.read_parquet(measured["path"], columns=["NUMBER", "ra", "dec"])
        upload = pd.DataFrame({"our_id": det["NUMBER"].to_numpy(np.int64), "ra": det["ra"], "dec": det["dec"]})
        outs: dict[str, Path] = {}
        info: dict[str, Any] = {"source": "xmatch", "queries": []}
        for name in cfg.matching.catalogs:
            applies, why = catalog_applies(name, tile_dec, cfg.matching.ps1_dec_min)
            if not applies:
                info[f"{name}_skipped"] = why
                continue
            asked = utc_now()
            try:
                res = xmatch_detections(
                    upload,
                    cfg.catalogs.xmatch_tables[name],
                    cfg.catalogs.xmatch_radius_arcsec,
                    config=cfg.sources.xmatch,
                )
            except SourceError as exc:
                raise StepError(exc.reason, str(exc)) from exc
            rows = res.matches.drop(
                columns=[c for c in ("our_id", "angDist", "our_ra", "our_dec") if c in res.matches.columns]
            )
            rows = rows.drop_duplicates("catalog_id").sort_values("catalog_id").reset_index(drop=True)
            outs[name] = write_parquet_atomic(tile_dir / "catalogs" / f"{name}.parquet", rows)
            info[f"n_{name}"] = len(rows)
            info[f"jobs_{name}"] = res.jobs
            info["queries"].append(
                query_entry("xmatch", res.url, [res.catalog], asked, len(res.matches), requests=res.jobs)
            )
        return outs, info

    return run_step(tile_dir, "catalogs", {"measured": measured}, params, catalogs_xmatch, body)

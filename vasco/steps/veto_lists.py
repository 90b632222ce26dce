"""Step ``veto_lists``: the reference lists of the later vetoes, from local files or from the services.

Which lists, and where each comes from, is the veto registry's
(:mod:`vasco.filters.registry`).  Acquiring is I/O: there is no pure part.
(The synthetic sky writes its own lists: :mod:`vasco.steps.acquire`.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from vasco.config import VascoConfig
from vasco.filters.registry import list_sources, reference_lists
from vasco.filters.veto_stage import ServiceQuery
from vasco.io import write_parquet_atomic
from vasco.records import Output
from vasco.steps.base import StepError, plate_epoch_mid, run_step

__all__ = ["service_url", "veto_lists"]


def service_url(service: str, cfg: VascoConfig) -> str:
    """Base URL of a veto list's service (``vizier``, ``skybot``, ``supercosmos``) under ``cfg.sources``."""
    if service == "skybot":
        from vasco.sources.skybot import skybot_url

        return skybot_url(None, cfg.sources.skybot)
    if service == "supercosmos":
        from vasco.sources.supercosmos import supercosmos_url

        return supercosmos_url(None, cfg.sources.supercosmos)
    from vasco.sources.vizier import vizier_base_url

    return vizier_base_url(None, cfg.sources.vizier)


def _empty_list() -> pd.DataFrame:
    """The list a per-candidate service gives a tile without candidates."""
    return pd.DataFrame(
        {"source_id": pd.Series(dtype="string"), "ra": pd.Series(dtype=np.float64), "dec": pd.Series(dtype=np.float64)}
    )


def veto_lists(
    tile_dir: Path,
    selected: Output,
    plate: Output,
    ra: float,
    dec: float,
    cfg: VascoConfig,
) -> dict[str, Any]:
    """Reference lists of the later vetoes from local files or from the services.

    ``local`` lists are the rows of the file named in ``catalogs.local`` (by
    the list's local key: ``usnob``, ``allwise``, ``catwise``, ``2mass``,
    ``vsx``, ``skybot``, ``scos``) within the tile's cone plus the spike
    radius.  ``service`` lists are asked only around the detections still
    alive after the Gaia/PS1 veto and the SPREAD_MODEL cut (``survives_psf``
    of :func:`vasco.steps.spread_model.spread_model`'s table): the bright
    USNO-B1.0 stars of the tile's cone (R <= the rule's intercept, both R
    epochs, never truncated), SkyBoT for the tile's cone at the plate epoch,
    and small cones (the stage's radius) per candidate for the archives, VSX
    and SuperCOSMOS.  A list with no file is not written (its stage is then
    recorded as skipped); a service failure fails the tile with the
    service's reason token: no answer is never taken for "nothing there".
    Writes ``catalogs/veto_<name>.parquet``.
    """
    from vasco.sources.http import SourceError
    from vasco.sources.local import LocalCatalogError, read_local_cone

    tile_dir = Path(tile_dir)
    vc = cfg.vetoes
    radius = (cfg.survey.size_arcmin / 2.0 * np.sqrt(2.0)) / 60.0 + vc.spikes.radius_arcsec / 3600.0
    sources = list_sources(cfg, synthetic_tile=False)
    refs = {ref.name: ref for _, ref in reference_lists(vc)}
    local = {
        n: cfg.catalogs.local[refs[n].local]
        for n, src in sources.items()
        if src == "local" and refs[n].local in cfg.catalogs.local
    }
    service = [n for n, src in sources.items() if src == "service"]
    params = {
        "ra": ra,
        "dec": dec,
        "radius_deg": radius,
        "files": local,
        "service": service,
        "vetoes": vc.model_dump(mode="json"),
    }

    def body() -> tuple[dict[str, Path], dict[str, Any]]:
        from vasco.sources.provenance import query_entry, utc_now

        outs: dict[str, Path] = {}
        info: dict[str, Any] = {"local": sorted(local), "service": service, "queries": []}
        for name, path in local.items():
            asked = utc_now()
            try:
                table = read_local_cone(Path(path), ra, dec, radius)
            except LocalCatalogError as exc:
                raise StepError("FAIL_LOCAL_CATALOG", str(exc)) from exc
            outs[name] = write_parquet_atomic(tile_dir / "catalogs" / f"veto_{name}.parquet", table)
            info[f"n_{name}"] = len(table)
            info["queries"].append(query_entry("local", str(path), [name], asked, len(table)))
        if service:
            sel = pd.read_parquet(selected["path"], columns=["ra", "dec", "survives_psf"])
            alive = sel.loc[sel["survives_psf"].to_numpy(bool)]
            query = ServiceQuery(
                ra=ra,
                dec=dec,
                radius_deg=radius,
                epoch=plate_epoch_mid(plate),
                cand_ra=alive["ra"].to_numpy(np.float64),
                cand_dec=alive["dec"].to_numpy(np.float64),
                cfg=cfg,
            )
            try:
                for name in service:
                    ref = refs[name]
                    asked = utc_now()
                    table = _empty_list() if ref.per_candidate and not len(alive) else ref.fetch(query)
                    outs[name] = write_parquet_atomic(tile_dir / "catalogs" / f"veto_{name}.parquet", table)
                    info[f"n_{name}"] = len(table)
                    info["queries"].append(
                        query_entry(ref.service, service_url(ref.service, cfg), [ref.table], asked, len(table))
                    )
            except SourceError as exc:
                raise StepError(exc.reason, str(exc)) from exc
        return outs, info

    return run_step(tile_dir, "veto_lists", {"selected": selected, "plate": plate}, params, veto_lists, body)

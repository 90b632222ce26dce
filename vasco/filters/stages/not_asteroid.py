"""Stage ``not_asteroid``: known minor planets at the plate's exposure epoch (IMCCE SkyBoT)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from vasco.filters.veto_stage import ReferenceList, ServiceQuery, StageInput, StageResult, VetoStage, veto_reference
from vasco.filters.vetoes import counterpart_veto
from vasco.plates.header import julian_date

__all__ = ["SKYBOT", "STAGE", "apply"]


def _fetch(q: ServiceQuery) -> pd.DataFrame:
    """SkyBoT's cone search over the tile at the plate epoch."""
    from vasco.sources.skybot import query_skybot

    return query_skybot(
        q.ra, q.dec, q.radius_deg, julian_date(q.epoch), q.cfg.vetoes.asteroids.observer, config=q.cfg.sources.skybot
    )


#: The asteroids of the tile's cone at the plate epoch.
SKYBOT = ReferenceList(
    name="skybot",
    local="skybot",
    synthetic="skybot",
    service="skybot",
    table="skybot",
    fetch=_fetch,
    per_candidate=False,
)


def apply(inp: StageInput) -> StageResult | None:
    """An asteroid within its own radius: ``asteroids.radius_arcsec`` or 3x its ephemeris error (``ErrPos``).

    Rows without a position are left out.  Adds ``asteroid_name`` and ``asteroid_sep_arcsec``.
    """
    if "skybot" not in inp.lists:
        return None
    raw = inp.lists["skybot"]
    raw = raw.loc[
        np.isfinite(raw["ra"].to_numpy(np.float64)) & np.isfinite(raw["dec"].to_numpy(np.float64))
    ].reset_index(drop=True)
    ref = veto_reference(raw, "skybot")
    err = raw["ErrPos"].to_numpy(np.float64) if "ErrPos" in raw else np.zeros(len(raw))
    radius = np.maximum(inp.cfg.vetoes.asteroids.radius_arcsec, 3.0 * np.nan_to_num(err))
    res = counterpart_veto(inp.ra, inp.dec, ref, radius)
    extra = {"match_id": "asteroid_name", "match_sep_arcsec": "asteroid_sep_arcsec"}
    return StageResult(vetoed=res["vetoed"].to_numpy(bool), columns=[("veto_not_asteroid", res, extra)])


STAGE = VetoStage(
    name="not_asteroid",
    section="asteroids",
    lists=lambda vc: (SKYBOT,),
    apply=apply,
    test="tests/test_vetoes_step.py::test_each_stage_removes_its_own_and_records_what_it_matched",
)

"""Stage ``not_variable``: known variable stars (AAVSO VSX)."""

from __future__ import annotations

import pandas as pd

from vasco.filters.veto_stage import ReferenceList, ServiceQuery, StageInput, StageResult, VetoStage, veto_reference
from vasco.filters.vetoes import counterpart_veto
from vasco.sources.vizier import VSX

__all__ = ["VSX_LIST", "STAGE", "apply"]


def _fetch(q: ServiceQuery) -> pd.DataFrame:
    """VSX rows around each candidate."""
    from vasco.sources.vizier import query_positions

    return query_positions(
        VSX.name, q.cand_ra, q.cand_dec, q.cfg.vetoes.variables.radius_arcsec, config=q.cfg.sources.vizier
    )


#: The known variables around the candidates.
VSX_LIST = ReferenceList(name="vsx", local="vsx", synthetic="vsx", service="vizier", table=VSX.name, fetch=_fetch)


def apply(inp: StageInput) -> StageResult | None:
    """A VSX star within ``variables.radius_arcsec``; adds ``vsx_name`` and ``vsx_sep_arcsec``."""
    if "vsx" not in inp.lists:
        return None
    res = counterpart_veto(
        inp.ra, inp.dec, veto_reference(inp.lists["vsx"], "vsx"), inp.cfg.vetoes.variables.radius_arcsec
    )
    extra = {"match_id": "vsx_name", "match_sep_arcsec": "vsx_sep_arcsec"}
    return StageResult(vetoed=res["vetoed"].to_numpy(bool), columns=[("veto_not_variable", res, extra)])


STAGE = VetoStage(
    name="not_variable",
    section="variables",
    lists=lambda vc: (VSX_LIST,),
    apply=apply,
    test="tests/test_vetoes_step.py::test_each_stage_removes_its_own_and_records_what_it_matched",
)

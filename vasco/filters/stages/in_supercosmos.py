"""Stage ``in_supercosmos``: the second, independent digitisation of the POSS-I E plate must see the source."""

from __future__ import annotations

import pandas as pd

from vasco.filters.veto_stage import (
    BadListError,
    ReferenceList,
    ServiceQuery,
    StageInput,
    StageResult,
    VetoStage,
    veto_reference,
)
from vasco.filters.vetoes import supercosmos_veto
from vasco.sources.supercosmos import POSS_I_E_DEC_MIN, has_r1_measurement

__all__ = ["SCOS", "STAGE", "apply"]


def _fetch(q: ServiceQuery) -> pd.DataFrame:
    """SuperCOSMOS ``Source`` rows in a small cone around each candidate (one row per ``objID``)."""
    from vasco.sources.supercosmos import query_supercosmos

    radius = q.cfg.vetoes.supercosmos.radius_arcsec / 3600.0
    parts = [
        query_supercosmos(
            float(a), float(d), radius, ["objID", "ra", "dec", "sCorMagR1", "objIDR1"], config=q.cfg.sources.supercosmos
        )
        for a, d in zip(q.cand_ra, q.cand_dec)
    ]
    table = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    return table.drop_duplicates("objID").reset_index(drop=True) if "objID" in table else table


#: SuperCOSMOS rows around the candidates.
SCOS = ReferenceList(name="scos", local="scos", synthetic="scos", service="supercosmos", table="Source", fetch=_fetch)


def apply(inp: StageInput) -> StageResult | None:
    """Only a detection on the same POSS-I E plate (R1) counts; the test does not apply south of Dec -17.5.

    Adds ``scos_sep_arcsec`` and ``scos_status`` (``pass``, ``fail``,
    ``not_applicable``: :func:`vasco.filters.vetoes.supercosmos_veto`).

    Raises
    ------
    BadListError
        ``FAIL_SUPERCOSMOS_COLUMNS`` when the list has no R1 column.
    """
    if "scos" not in inp.lists:
        return None
    raw = inp.lists["scos"]
    try:
        r1 = has_r1_measurement(raw)
    except ValueError as exc:
        raise BadListError("FAIL_SUPERCOSMOS_COLUMNS", "scos", str(exc)) from exc
    ref = veto_reference(raw.loc[r1].reset_index(drop=True), "scos")
    res = supercosmos_veto(inp.ra, inp.dec, ref, inp.cfg.vetoes.supercosmos.radius_arcsec, POSS_I_E_DEC_MIN)
    extra = {"match_sep_arcsec": "scos_sep_arcsec", "status": "scos_status"}
    return StageResult(vetoed=res["vetoed"].to_numpy(bool), columns=[("veto_in_supercosmos", res, extra)])


STAGE = VetoStage(
    name="in_supercosmos",
    section="supercosmos",
    lists=lambda vc: (SCOS,),
    apply=apply,
    test="tests/test_vetoes_step.py::test_supercosmos_needs_the_poss_i_e_plate_and_does_not_apply_south_of_it",
)

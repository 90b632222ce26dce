"""Stage ``not_hpm``: high-proper-motion stars that Gaia lists without a proper motion."""

from __future__ import annotations

import numpy as np

from vasco.filters.veto_stage import StageInput, StageResult, VetoStage
from vasco.filters.vetoes import hpm_veto
from vasco.matching.reference import reference_table

__all__ = ["STAGE", "apply"]


def apply(inp: StageInput) -> StageResult | None:
    """A Gaia source without proper motion, itself not on the plate, within ``hpm.radius_arcsec`` (:func:`hpm_veto`).

    Reads the tile's Gaia catalogue (list ``gaia``); adds ``hpm_gaia_id`` and ``hpm_sep_arcsec``.
    """
    if "gaia" not in inp.lists:
        return None
    h = inp.cfg.vetoes.hpm
    res = hpm_veto(
        inp.ra,
        inp.dec,
        reference_table(inp.lists["gaia"], "gaia"),
        radius_arcsec=h.radius_arcsec,
        gmag_max=h.gmag_max,
        plate_ra=inp.table["ra"].to_numpy(np.float64),
        plate_dec=inp.table["dec"].to_numpy(np.float64),
        plate_radius_arcsec=inp.cfg.matching.radius_arcsec,
    )
    extra = {"match_id": "hpm_gaia_id", "match_sep_arcsec": "hpm_sep_arcsec"}
    return StageResult(vetoed=res["vetoed"].to_numpy(bool), columns=[("veto_not_hpm", res, extra)])


STAGE = VetoStage(
    name="not_hpm",
    section="hpm",
    lists=lambda vc: (),
    apply=apply,
    test="tests/test_vetoes_step.py::test_each_stage_removes_its_own_and_records_what_it_matched",
)

"""Stage ``not_bright_star``: diffraction spikes and halos of bright stars (the paper's rule)."""

from __future__ import annotations

import pandas as pd

from vasco.filters.veto_stage import ReferenceList, ServiceQuery, StageInput, StageResult, VetoStage, veto_reference
from vasco.filters.vetoes import bright_star_veto
from vasco.matching.reference import reference_table
from vasco.sources.vizier import USNO_B1

__all__ = ["BRIGHT", "STAGE", "apply"]


def _fetch(q: ServiceQuery) -> pd.DataFrame:
    """The bright USNO-B1.0 stars of the tile's cone (both R epochs, never truncated)."""
    from vasco.sources.vizier import query_bright_stars

    s = q.cfg.vetoes.spikes
    # The rule can only reject with m < intercept (at d = 0) or m <= mag_always.
    return query_bright_stars(q.ra, q.dec, q.radius_deg, max(s.intercept, s.mag_always), config=q.cfg.sources.vizier)


#: The USNO-B1.0 bright-star list (``spikes.catalog = 'usnob'``, the paper's).
BRIGHT = ReferenceList(
    name="bright",
    local="usnob",
    synthetic="usnob",
    service="vizier",
    table=USNO_B1.name,
    fetch=_fetch,
    per_candidate=False,
)


def apply(inp: StageInput) -> StageResult | None:
    """Every bright star within ``spikes.radius_arcsec`` tested against the rule (:func:`bright_star_veto`).

    The list is ``bright`` (USNO-B1.0 R) or, with ``spikes.catalog`` 'gaia' or
    'ps1', the tile's own catalogue.  Adds ``bright_star_id``,
    ``bright_star_mag`` and ``bright_star_dist_arcsec``.
    """
    s = inp.cfg.vetoes.spikes
    name = "bright" if s.catalog == "usnob" else s.catalog
    if name not in inp.lists:
        return None
    if name == "gaia":
        ref = reference_table(inp.lists[name], "gaia")
    else:
        ref = veto_reference(inp.lists[name], name)
    res = bright_star_veto(
        inp.ra,
        inp.dec,
        ref,
        radius_arcsec=s.radius_arcsec,
        mag_always=s.mag_always,
        slope=s.slope,
        intercept=s.intercept,
    )
    extra = {"star_id": "bright_star_id", "star_mag": "bright_star_mag", "star_dist_arcsec": "bright_star_dist_arcsec"}
    return StageResult(vetoed=res["vetoed"].to_numpy(bool), columns=[("veto_not_bright_star", res, extra)])


STAGE = VetoStage(
    name="not_bright_star",
    section="spikes",
    lists=lambda vc: (BRIGHT,) if vc.spikes.catalog == "usnob" else (),
    apply=apply,
    test="tests/test_vetoes_step.py::test_each_stage_removes_its_own_and_records_what_it_matched",
)

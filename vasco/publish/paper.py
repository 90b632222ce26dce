"""The published funnel of Solano, Villarroel & Rodrigo 2022 (MNRAS 515, 1380, abstract).

298,165 sources seen only in POSS-I (after the quality cuts, the Gaia/PS1
veto and the bright-star rule); 288,770 of them have a counterpart in other
archives within 5"; then 189 asteroids, 35 variables, 3,592 SuperCOSMOS
artefacts and 180 high-proper-motion objects are removed, leaving 5,399.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["PAPER_FUNNEL", "PAPER_STAGE_OF", "funnel_vs_paper"]

#: Sources left after each stage, as published.
PAPER_FUNNEL: dict[str, int] = {
    "poss1_only": 298_165,
    "no_archive": 298_165 - 288_770,
    "not_asteroid": 298_165 - 288_770 - 189,
    "not_variable": 298_165 - 288_770 - 189 - 35,
    "in_supercosmos": 298_165 - 288_770 - 189 - 35 - 3_592,
    "not_hpm": 5_399,
}

#: Our funnel stage that corresponds to each of the paper's.
PAPER_STAGE_OF: dict[str, str] = {
    "poss1_only": "not_bright_star",
    "no_archive": "no_archive",
    "not_asteroid": "not_asteroid",
    "not_variable": "not_variable",
    "in_supercosmos": "in_supercosmos",
    "not_hpm": "not_hpm",
}


def funnel_vs_paper(funnel: Mapping[str, int]) -> list[dict[str, Any]]:
    """Rows ``{stage, ours, ours_kept, paper, paper_kept}`` for the paper's stages.

    ``*_kept`` is the fraction of the previous row's sources that the stage
    keeps (None for the first row or when the previous count is 0); ``ours``
    is None for a stage that did not run.
    """
    rows = []
    prev_ours: int | None = None
    prev_paper: int | None = None
    for stage, paper in PAPER_FUNNEL.items():
        ours = funnel.get(PAPER_STAGE_OF[stage])
        rows.append(
            {
                "stage": stage,
                "ours": None if ours is None else int(ours),
                "ours_kept": (ours / prev_ours) if (ours is not None and prev_ours) else None,
                "paper": paper,
                "paper_kept": (paper / prev_paper) if prev_paper else None,
            }
        )
        prev_ours = ours if ours is not None else prev_ours
        prev_paper = paper
    return rows

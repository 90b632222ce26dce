"""Stage ``no_archive``: a counterpart in other archives (infrared first) within a radius."""

from __future__ import annotations

import numpy as np
import pandas as pd

from vasco.filters.veto_stage import ReferenceList, ServiceQuery, StageInput, StageResult, VetoStage, veto_reference
from vasco.filters.vetoes import counterpart_veto
from vasco.sources.vizier import ALLWISE, CATWISE2020, TWOMASS_PSC

__all__ = ["ARCHIVE_TABLES", "archive_list", "STAGE", "apply"]

#: Short archive names of ``vetoes.archives.tables`` -> VizieR table.
ARCHIVE_TABLES = {"allwise": ALLWISE.name, "catwise": CATWISE2020.name, "2mass": TWOMASS_PSC.name}

#: Archives the synthetic sky answers for (short name -> its list).
_SYNTHETIC = {"allwise": "allwise"}


def archive_list(archive: str) -> ReferenceList:
    """The list ``archive_<archive>``: a short name of :data:`ARCHIVE_TABLES` or a VizieR table name."""
    table = ARCHIVE_TABLES.get(archive, archive)

    def fetch(q: ServiceQuery) -> pd.DataFrame:
        from vasco.sources.vizier import query_positions

        return query_positions(
            table, q.cand_ra, q.cand_dec, q.cfg.vetoes.archives.radius_arcsec, config=q.cfg.sources.vizier
        )

    return ReferenceList(
        name=f"archive_{archive}",
        local=archive,
        synthetic=_SYNTHETIC.get(archive),
        service="vizier",
        table=table,
        fetch=fetch,
    )


def apply(inp: StageInput) -> StageResult | None:
    """Each archive's counterpart within ``archives.radius_arcsec`` (:func:`counterpart_veto`).

    Adds ``veto_archive_<name>`` and ``<name>_sep_arcsec`` per archive (``/``
    in a table name becomes ``_``); rejected by any.  Archives without a list
    are noted as ``archives`` in the tile's skipped record.
    """
    a = inp.cfg.vetoes.archives
    found = [t for t in a.tables if f"archive_{t}" in inp.lists]
    if not found:
        return None
    hit = np.zeros(inp.idx.size, dtype=bool)
    columns: list[tuple[str, pd.DataFrame, dict[str, str]]] = []
    for t in found:
        res = counterpart_veto(inp.ra, inp.dec, veto_reference(inp.lists[f"archive_{t}"], t), a.radius_arcsec)
        col = t.replace("/", "_")
        columns.append((f"veto_archive_{col}", res, {"match_sep_arcsec": f"{col}_sep_arcsec"}))
        hit |= res["vetoed"].to_numpy(bool)
    columns.append(("veto_no_archive", pd.DataFrame({"vetoed": hit}), {}))
    missing = [t for t in a.tables if t not in found]
    notes = {"archives": f"no list for {missing}"} if missing else {}
    return StageResult(vetoed=hit, columns=columns, notes=notes)


STAGE = VetoStage(
    name="no_archive",
    section="archives",
    lists=lambda vc: tuple(archive_list(t) for t in vc.archives.tables),
    apply=apply,
    test="tests/test_vetoes_step.py::test_each_stage_removes_its_own_and_records_what_it_matched",
)

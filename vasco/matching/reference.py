"""The reference catalogues (Gaia, PS1) as the steps read them: their default epochs.

A module of its own, so that the epochs are part of the code key of the
steps that read reference positions (astrometry, match, vetoes), not of
those that only fetch catalogues.
"""

from __future__ import annotations

import pandas as pd

from vasco.matching.catalogs import normalize_catalog

__all__ = ["GAIA_EPOCH", "PS1_EPOCH", "reference_table"]

#: Default position epoch (Julian year) of Gaia rows without one (EDR3/DR3: 2016.0).
GAIA_EPOCH = 2016.0
#: Default position epoch (Julian year) of the other reference catalogues' rows (PS1).
PS1_EPOCH = 2012.0


def reference_table(raw: pd.DataFrame, name: str) -> pd.DataFrame:
    """A reference catalogue as served (``gaia``, ``ps1``) in the schema of :data:`vasco.matching.catalogs.REF_COLUMNS`.

    Rows without an epoch get :data:`GAIA_EPOCH` for ``gaia`` and
    :data:`PS1_EPOCH` for any other catalogue (:func:`vasco.matching.catalogs.normalize_catalog`).
    """
    return normalize_catalog(raw, name, GAIA_EPOCH if name == "gaia" else PS1_EPOCH)

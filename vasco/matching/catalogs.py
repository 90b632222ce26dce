"""Reference catalogues in one schema, and the counterpart search."""

from __future__ import annotations

import numpy as np
import pandas as pd

from vasco.matching.crossmatch import nearest_within
from vasco.matching.propagate import propagate_positions

__all__ = ["REF_COLUMNS", "COLUMN_ALIASES", "normalize_catalog", "find_counterparts"]

#: The schema every reference catalogue is turned into.
REF_COLUMNS = ("source_id", "ra", "dec", "pmra", "pmdec", "epoch", "mag")

# Accepted spellings: Gaia archive, VizieR (I/350, II/389 and the veto tables
# I/284 USNO-B1.0, II/328 AllWISE, II/246 2MASS, B/vsx), PS1 MAST names,
# SkyBoT and the SuperCOSMOS Science Archive.
COLUMN_ALIASES: dict[str, tuple[str, ...]] = {
    "source_id": ("source_id", "Source", "objID", "objid", "USNO-B1.0", "AllWISE", "CatWISE", "Name_CatWISE",
                  "2MASS", "Name"),
    "ra": ("ra", "RA_ICRS", "raMean", "RAJ2000"),
    "dec": ("dec", "DE_ICRS", "decMean", "DEJ2000"),
    "pmra": ("pmra", "pmRA"),
    "pmdec": ("pmdec", "pmDE"),
    "epoch": ("ref_epoch", "epoch", "Epoch", "epochMean"),
    "mag": ("phot_g_mean_mag", "Gmag", "rMeanPSFMag", "rmag", "mag", "Rmag_best", "W1mag", "W1mproPM", "Jmag",
            "max", "sCorMagR1", "Mv"),
}


def _pick(table: pd.DataFrame, key: str) -> str | None:
    for name in COLUMN_ALIASES[key]:
        if name in table.columns:
            return name
    return None


def normalize_catalog(table: pd.DataFrame, name: str, default_epoch: float) -> pd.DataFrame:
    """Return ``table`` in the :data:`REF_COLUMNS` schema (float64 coordinates).

    Missing proper motions become NaN (the position is then used as it is);
    a missing epoch column takes ``default_epoch``.  Raises ValueError naming
    the catalogue when it has no recognisable RA/Dec columns.
    """
    cols = {key: _pick(table, key) for key in COLUMN_ALIASES}
    if cols["ra"] is None or cols["dec"] is None:
        raise ValueError(f"catalogue {name!r}: no RA/Dec columns among {list(table.columns)[:12]}")
    n = len(table)
    out = pd.DataFrame(
        {
            "source_id": table[cols["source_id"]].to_numpy() if cols["source_id"] else np.arange(n),
            "ra": table[cols["ra"]].to_numpy(np.float64),
            "dec": table[cols["dec"]].to_numpy(np.float64),
            "pmra": table[cols["pmra"]].to_numpy(np.float64) if cols["pmra"] else np.full(n, np.nan),
            "pmdec": table[cols["pmdec"]].to_numpy(np.float64) if cols["pmdec"] else np.full(n, np.nan),
            "epoch": table[cols["epoch"]].to_numpy(np.float64) if cols["epoch"] else np.full(n, default_epoch),
            "mag": table[cols["mag"]].to_numpy(np.float64) if cols["mag"] else np.full(n, np.nan),
        }
    )
    out["epoch"] = out["epoch"].fillna(default_epoch)
    bad = ~np.isfinite(out["ra"]) | ~np.isfinite(out["dec"])
    return out.loc[~bad].reset_index(drop=True)


def find_counterparts(
    ra: np.ndarray,
    dec: np.ndarray,
    catalog: pd.DataFrame,
    plate_epoch: float,
    radius_arcsec: float,
) -> pd.DataFrame:
    """Nearest counterpart of each detection after moving the catalogue to the plate epoch.

    Returns a DataFrame aligned with the detections: ``id`` (the catalogue
    source_id or NA), ``sep_arcsec`` (NaN when none within the radius) and
    ``mag``.
    """
    cra, cdec = propagate_positions(
        catalog["ra"], catalog["dec"], catalog["pmra"], catalog["pmdec"], catalog["epoch"], plate_epoch
    )
    idx, sep = nearest_within(ra, dec, cra, cdec, radius_arcsec)
    found = idx >= 0
    ids = pd.array(np.zeros(len(idx), dtype=np.int64), dtype="Int64")
    ids[~found] = pd.NA
    if found.any():
        ids[found] = catalog["source_id"].to_numpy()[idx[found]].astype(np.int64)
    mags = np.full(len(idx), np.nan)
    mags[found] = catalog["mag"].to_numpy(np.float64)[idx[found]]
    return pd.DataFrame({"id": ids, "sep_arcsec": sep, "mag": mags})

"""Reference catalogues in one schema, and the counterpart search."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from vasco.matching.crossmatch import nearest_within
from vasco.matching.propagate import propagate_positions

__all__ = [
    "REF_COLUMNS",
    "COLUMN_ALIASES",
    "EPOCH_UNITS",
    "epoch_to_julian_year",
    "normalize_catalog",
    "find_counterparts",
    "add_counterparts",
]


#: The schema every reference catalogue is turned into.
REF_COLUMNS = ("source_id", "ra", "dec", "pmra", "pmdec", "epoch", "mag")

# Accepted spellings: Gaia archive, VizieR (I/350, II/389 and the veto tables
# I/284 USNO-B1.0, II/328 AllWISE, II/246 2MASS, B/vsx), PS1 MAST names,
# SkyBoT and the SuperCOSMOS Science Archive.
COLUMN_ALIASES: dict[str, tuple[str, ...]] = {
    "source_id": (
        "source_id",
        "Source",
        "objID",
        "objid",
        "USNO-B1.0",
        "AllWISE",
        "CatWISE",
        "Name_CatWISE",
        "2MASS",
        "Name",
    ),
    "ra": ("ra", "RA_ICRS", "raMean", "RAJ2000"),
    "dec": ("dec", "DE_ICRS", "decMean", "DEJ2000"),
    "pmra": ("pmra", "pmRA"),
    "pmdec": ("pmdec", "pmDE"),
    "epoch": ("ref_epoch", "epoch", "Epoch", "epochMean"),
    "mag": (
        "phot_g_mean_mag",
        "Gmag",
        "rMeanPSFMag",
        "rmag",
        "mag",
        "Rmag_best",
        "W1mag",
        "W1mproPM",
        "Jmag",
        "max",
        "sCorMagR1",
        "Mv",
    ),
}


#: How a catalogue's epoch column counts time, where that column's meaning is documented
#: (catalogue name as the pipeline names it, column) -> "jyear" (Julian year) or "mjd".
#: * Gaia: ``ref_epoch`` of the Gaia archive and ``Epoch`` of VizieR I/350/gaiaedr3 are
#:   the reference epoch as a Julian year, 2016.0 for EDR3 (the Gaia data model's
#:   gaia_source.ref_epoch; that page was not retrieved here: the value 2016.0 in Julian
#:   years is how this code base and the public clients found use it).
#: * PS1: ``Epoch`` of VizieR II/349/ps1 is the mean epoch of the detections as an MJD
#:   (values such as 55761.365).  Evidence found: STScI's PS1 table documentation
#:   (outerspace.stsci.edu, "PS1 AstrometryCorrection table fields") describes ObjectThin's
#:   ``epochMean``, which VizieR's ``Epoch`` carries, as the "Modified Julian Date (MJD) of
#:   the mean epoch"; a public XMatch client declares vizier:II/349/ps1 ``Epoch`` as
#:   "Mean epoch (MJD)", unit d, UCD time.epoch.  The VizieR ReadMe of II/349 itself was
#:   not retrieved.  II/389/ps1_dr2 (same PS1 object table, DR2) is read the same way.
EPOCH_UNITS: dict[tuple[str, str], str] = {
    ("gaia", "ref_epoch"): "jyear",
    ("gaia", "Epoch"): "jyear",
    ("ps1", "Epoch"): "mjd",
}
# A column whose unit is not declared above (a local file, MAST's epochMean, which the
# synthetic sky writes as Julian years, the veto lists) is read as Julian years, as
# before, unless every finite value lies in [15000, 100000]: those are MJDs (MJD 15000
# is 1899-12-22, 100000 is 2132-09-01) and no Julian-year epoch of a catalogue can be
# there, so that rule never misreads a real epoch in either unit.
_JYEAR_RANGE = (1000.0, 3000.0)
_MJD_RANGE = (15000.0, 100000.0)
_MJD_J2000 = 51544.5  # MJD of J2000.0 (JD 2451545.0)
_DAYS_PER_JULIAN_YEAR = 365.25


def epoch_to_julian_year(values: np.ndarray, catalog: str, column: str) -> np.ndarray:
    """A catalogue's epoch column as Julian years (float64, NaN kept).

    The unit comes from :data:`EPOCH_UNITS` when the (catalogue, column) pair
    is listed there; else the column is an MJD only if every finite value is
    in [15000, 100000], and Julian years otherwise.  MJD -> Julian year:
    ``2000 + (MJD - 51544.5) / 365.25``.

    Raises
    ------
    ValueError
        Naming the catalogue and column, when the values do not fit their
        declared unit (Julian years in [1000, 3000], MJDs in [15000, 100000]).
    """
    v = np.asarray(values, dtype=np.float64)
    finite = v[np.isfinite(v)]
    in_years = bool(finite.size) and bool(((finite >= _JYEAR_RANGE[0]) & (finite <= _JYEAR_RANGE[1])).all())
    in_mjd = bool(finite.size) and bool(((finite >= _MJD_RANGE[0]) & (finite <= _MJD_RANGE[1])).all())
    unit = EPOCH_UNITS.get((catalog, column))
    if not finite.size:
        return v
    if unit is None:
        unit = "mjd" if in_mjd else "jyear"
    elif (unit == "jyear" and not in_years) or (unit == "mjd" and not in_mjd):
        want = _JYEAR_RANGE if unit == "jyear" else _MJD_RANGE
        raise ValueError(
            f"catalogue {catalog!r}: epoch column {column!r} is documented as {unit} but has values "
            f"{finite.min():g}..{finite.max():g} outside {want}"
        )
    if unit == "mjd":
        return 2000.0 + (v - _MJD_J2000) / _DAYS_PER_JULIAN_YEAR
    return v


def _pick(table: pd.DataFrame, key: str) -> str | None:
    for name in COLUMN_ALIASES[key]:
        if name in table.columns:
            return name
    return None


def normalize_catalog(table: pd.DataFrame, name: str, default_epoch: float) -> pd.DataFrame:
    """Return ``table`` in the :data:`REF_COLUMNS` schema (float64 coordinates).

    Missing proper motions become NaN (the position is then used as it is);
    a missing epoch column takes ``default_epoch``.  The epoch is in Julian
    years, converted from an MJD where the column is one (PS1's ``Epoch``;
    see :func:`epoch_to_julian_year`).  Raises ValueError naming the catalogue
    when it has no recognisable RA/Dec columns, or an epoch column in no known unit.
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
            "epoch": (
                epoch_to_julian_year(table[cols["epoch"]].to_numpy(np.float64), name, cols["epoch"])
                if cols["epoch"]
                else np.full(n, default_epoch)
            ),
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


def add_counterparts(
    table: pd.DataFrame,
    references: Mapping[str, pd.DataFrame],
    names: Sequence[str],
    skipped: Mapping[str, str],
    plate_epoch: float,
    radius_arcsec: float,
) -> pd.DataFrame:
    """Counterpart columns of each reference catalogue, and the nearest over all of them.

    Parameters
    ----------
    table : DataFrame
        Detections with float64 ``ra``/``dec`` at the plate epoch; changed in place.
    references : mapping
        Catalogue name -> table in the schema of :data:`REF_COLUMNS`
        (:func:`reference_table`), for each name in ``names`` not skipped.
    names : sequence of str
        The catalogues, in the order the nearest counterpart is chosen (the
        first one wins a tie).
    skipped : mapping
        Catalogues that do not cover the tile (name -> why): their columns
        are added, empty, so tile tables merge.
    plate_epoch : float
        Epoch (Julian year) the catalogues are moved to (:func:`find_counterparts`).
    radius_arcsec : float
        Counterpart radius.

    Returns
    -------
    DataFrame
        ``table`` with ``<c>_id``, ``<c>_sep_arcsec`` and ``<c>_mag`` for each
        catalogue ``c``, then ``counterpart_sep_arcsec`` and
        ``counterpart_catalog`` (the nearest counterpart over all catalogues;
        NaN and "" when none).
    """
    best_sep = np.full(len(table), np.nan)
    best_cat = np.full(len(table), "", dtype=object)
    for name in names:
        if name in skipped:
            table[f"{name}_id"] = pd.array([pd.NA] * len(table), dtype="Int64")
            table[f"{name}_sep_arcsec"] = np.nan
            table[f"{name}_mag"] = np.nan
            continue
        res = find_counterparts(
            table["ra"].to_numpy(), table["dec"].to_numpy(), references[name], plate_epoch, radius_arcsec
        )
        table[f"{name}_id"] = res["id"].to_numpy()
        table[f"{name}_sep_arcsec"] = res["sep_arcsec"].to_numpy()
        table[f"{name}_mag"] = res["mag"].to_numpy()
        closer = np.isfinite(res["sep_arcsec"].to_numpy()) & ~(res["sep_arcsec"].to_numpy() >= best_sep)
        best_sep = np.where(closer, res["sep_arcsec"].to_numpy(), best_sep)
        best_cat = np.where(closer, name, best_cat)
    table["counterpart_sep_arcsec"] = best_sep
    table["counterpart_catalog"] = pd.array(best_cat, dtype="string")
    return table

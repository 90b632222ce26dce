"""Reference catalogues from the user's own files, cut to a cone.

Three forms are read by :func:`read_local_cone`:

* a CSV file (``.csv``, ``.csv.gz``);
* a Parquet file (``.parquet``, ``.pq``);
* a folder of HEALPix-partitioned Parquet files in the HATS/LSDB layout::

      <root>/[dataset/]Norder=<k>/Dir=<d>/Npix=<p>.parquet

  where ``p`` is the NESTED HEALPix pixel at order ``k`` (ICRS ra/dec) that
  holds every row of the file, and ``d = (p // 10000) * 10000``.  ``Npix=<p>``
  may also be a folder of Parquet files (newer HATS writers), and partitions
  may be at different orders.  Other files in the folder (``properties``,
  ``partition_info.csv``, ``_metadata``...) are ignored.  Only the partitions
  whose pixel can overlap the cone are read: a partition is read when the
  distance from the cone centre to its pixel centre is at most the cone
  radius plus the largest pixel radius at that order (a bound that holds for
  every HEALPix pixel), so no row in the cone is ever missed.

Column names: Gaia archive (``ra``, ``dec``, ``pmra``, ``pmdec``,
``ref_epoch``, ``phot_g_mean_mag``, ``source_id``), VizieR (``RA_ICRS``,
``DE_ICRS``, ``pmRA``, ``pmDE``, ``Epoch``, ``Gmag``, ``Source``; ``RAJ2000``
...) and PS1 names are all accepted: the table is put into the pipeline's
reference schema by :func:`vasco.matching.catalogs.normalize_catalog`
(``source_id, ra, dec, pmra, pmdec, epoch, mag``, float64 coordinates).
The cone is applied to the catalogue's own coordinates (at its own epoch).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from vasco.matching.catalogs import COLUMN_ALIASES, REF_COLUMNS, normalize_catalog
from vasco.matching.crossmatch import angular_separation_arcsec
from vasco.sources.healpix import max_pixrad_deg, pix2ang_nest

__all__ = ["LocalCatalogError", "HatsPartition", "read_local_cone", "hats_partitions", "partitions_in_cone"]

_NORDER = re.compile(r"^Norder=(\d+)$")
_DIR = re.compile(r"^Dir=(\d+)$")
_NPIX = re.compile(r"^Npix=(\d+)(\.parquet|\.pq)?$")


class LocalCatalogError(ValueError):
    """A local catalogue that cannot be used; the message names the file."""


@dataclass(frozen=True)
class HatsPartition:
    order: int
    pixel: int
    path: Path


def _check_cone(ra: float, dec: float, radius_deg: float) -> tuple[float, float, float]:
    ra, dec, radius_deg = float(ra), float(dec), float(radius_deg)
    if not (np.isfinite(ra) and np.isfinite(dec) and -90.0 <= dec <= 90.0):
        raise ValueError(f"cone centre ra={ra}, dec={dec} is not a valid sky position")
    if not (np.isfinite(radius_deg) and 0.0 < radius_deg <= 180.0):
        raise ValueError(f"cone radius {radius_deg} deg is outside (0, 180]")
    return ra % 360.0, dec, radius_deg


def _require_coordinates(table: pd.DataFrame, path: Path) -> None:
    for key, label in (("ra", "right ascension"), ("dec", "declination")):
        if not any(name in table.columns for name in COLUMN_ALIASES[key]):
            raise LocalCatalogError(
                f"{path}: missing {label} column (one of {', '.join(COLUMN_ALIASES[key])}); "
                f"columns are {list(table.columns)[:20]}"
            )


def _read_table(path: Path) -> pd.DataFrame:
    name = path.name.lower()
    try:
        if name.endswith((".parquet", ".pq")) or path.is_dir():
            return pd.read_parquet(path)
        if name.endswith((".csv", ".csv.gz")):
            return pd.read_csv(path)
    except (OSError, ValueError) as exc:
        raise LocalCatalogError(f"{path}: cannot be read ({exc})") from exc
    raise LocalCatalogError(f"{path}: unknown catalogue format (expected .csv, .csv.gz, .parquet or a HATS folder)")


def _cone_cut(table: pd.DataFrame, ra: float, dec: float, radius_deg: float) -> pd.DataFrame:
    sep = angular_separation_arcsec(ra, dec, table["ra"].to_numpy(), table["dec"].to_numpy())
    return table.loc[sep <= radius_deg * 3600.0].reset_index(drop=True)


def _normalize(table: pd.DataFrame, path: Path, default_epoch: float) -> pd.DataFrame:
    _require_coordinates(table, path)
    try:
        return normalize_catalog(table, str(path), default_epoch)
    except (ValueError, TypeError) as exc:
        raise LocalCatalogError(f"{path}: {exc}") from exc


def hats_partitions(root: Path) -> list[HatsPartition]:
    """Every ``Norder=k/Dir=d/Npix=p[.parquet]`` partition under ``root`` (or ``root/dataset``)."""
    root = Path(root)
    base = root / "dataset" if (root / "dataset").is_dir() else root
    parts: list[HatsPartition] = []
    for order_dir in sorted(base.iterdir()):
        m_order = _NORDER.match(order_dir.name)
        if not (m_order and order_dir.is_dir()):
            continue
        order = int(m_order.group(1))
        for dir_dir in sorted(order_dir.iterdir()):
            if not (_DIR.match(dir_dir.name) and dir_dir.is_dir()):
                continue
            for item in sorted(dir_dir.iterdir()):
                m_pix = _NPIX.match(item.name)
                if not m_pix:
                    continue
                if item.is_dir() and m_pix.group(2):
                    continue
                pixel = int(m_pix.group(1))
                if pixel >= 12 * 4**order:
                    raise LocalCatalogError(f"{item}: pixel {pixel} does not exist at HEALPix order {order}")
                parts.append(HatsPartition(order, pixel, item))
    if not parts:
        raise LocalCatalogError(f"{root}: no HEALPix partitions found (expected Norder=<k>/Dir=<d>/Npix=<p>.parquet)")
    return parts


def partitions_in_cone(parts: Iterable[HatsPartition], ra: float, dec: float, radius_deg: float) -> list[HatsPartition]:
    """The partitions whose pixel can overlap the cone (conservative)."""
    ra, dec, radius_deg = _check_cone(ra, dec, radius_deg)
    by_order: dict[int, list[HatsPartition]] = {}
    for p in parts:
        by_order.setdefault(p.order, []).append(p)
    keep: list[HatsPartition] = []
    for order, group in sorted(by_order.items()):
        pix = np.array([p.pixel for p in group], dtype=np.int64)
        cra, cdec = pix2ang_nest(order, pix)
        sep_deg = angular_separation_arcsec(ra, dec, cra, cdec) / 3600.0
        reach = radius_deg + max_pixrad_deg(order) * 1.001 + 1e-9
        keep.extend(p for p, s in zip(group, sep_deg) if s <= reach)
    return sorted(keep, key=lambda p: (p.order, p.pixel))


def read_local_cone(
    path: Path,
    ra: float,
    dec: float,
    radius_deg: float,
    *,
    default_epoch: float = 2016.0,
) -> pd.DataFrame:
    """Rows of a local catalogue within ``radius_deg`` of ``(ra, dec)``.

    Parameters
    ----------
    path : Path
        CSV or Parquet file, or a HATS-like folder (module docstring).
    ra, dec, radius_deg : float
        Cone in degrees.
    default_epoch : float
        Epoch (Julian year) of rows without an epoch column (Gaia DR3/EDR3:
        2016.0).

    Returns
    -------
    pandas.DataFrame
        In the :data:`vasco.matching.catalogs.REF_COLUMNS` schema, float64
        ``ra``/``dec``.

    Raises
    ------
    LocalCatalogError
        Naming the file (and the missing column) when it cannot be used.
    FileNotFoundError
        When ``path`` does not exist.
    """
    path = Path(path)
    ra, dec, radius_deg = _check_cone(ra, dec, radius_deg)
    if not path.exists():
        raise FileNotFoundError(f"local catalogue {path} does not exist")
    if path.is_dir() and not path.name.lower().endswith((".parquet", ".pq")):
        frames = []
        for part in partitions_in_cone(hats_partitions(path), ra, dec, radius_deg):
            table = _normalize(_read_table(part.path), part.path, default_epoch)
            frames.append(_cone_cut(table, ra, dec, radius_deg))
        if not frames:
            return _empty()
        full = [f for f in frames if len(f)]
        return pd.concat(full, ignore_index=True) if full else frames[0]
    table = _normalize(_read_table(path), path, default_epoch)
    return _cone_cut(table, ra, dec, radius_deg)


def _empty() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=np.float64) for c in REF_COLUMNS}).astype({"source_id": np.int64})

"""Global deduplication of detections across overlapping tiles.

Two tiles of a survey can overlap, and a source in the overlap is measured
once in each.  :func:`find_duplicates` pairs the detections of every pair of
overlapping tiles within a true angular separation (default 0.5"), joins the
pairs into groups (a source seen in three tiles is one group), and picks one
*primary* measurement per group: the one farthest from its own tile's edge
(a source near an edge can be cut by it), then the highest SNR_WIN, then the
lowest tile id.  The other members are recorded with the primary they
duplicate.

A group is a candidate only if its primary measurement is one *and* no
measurement of it has a Gaia/PS1 counterpart: a source cut by a tile edge
must never become a false candidate because its other measurement is elsewhere.

Memory stays bounded: only pairs of overlapping tiles are compared, the
detections of a few tiles at a time (an LRU cache), with the columns the
test needs.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from scipy.spatial import cKDTree

from vasco.matching.crossmatch import angular_separation_arcsec, chord, nearest_within
from vasco.matching.propagate import radec_to_unit

__all__ = ["DEDUP_COLUMNS", "overlapping_tile_pairs", "find_duplicates"]

#: Columns :func:`find_duplicates` returns, one row per detection in a group of two or more.
DEDUP_COLUMNS = (
    "tile_id",
    "NUMBER",
    "dup_group",
    "n_measurements",
    "is_primary",
    "primary_tile_id",
    "primary_NUMBER",
    "dup_sep_arcsec",
    "group_has_counterpart",
    "group_is_candidate",
)

_READ = ["NUMBER", "ra", "dec", "SNR_WIN", "tile_edge_dist_px", "counterpart_sep_arcsec", "is_candidate"]


def overlapping_tile_pairs(tiles: Sequence[Mapping[str, Any]]) -> list[tuple[int, int]]:
    """Index pairs of tiles whose footprints can overlap.

    Each tile is ``{"ra", "dec", "size_arcmin"}``; two tiles are a pair when
    their centres are closer than the sum of their half-diagonals (a bound
    that never misses an overlap).
    """
    if len(tiles) < 2:
        return []
    ra = np.array([float(t["ra"]) for t in tiles])
    dec = np.array([float(t["dec"]) for t in tiles])
    half_diag = np.array([float(t["size_arcmin"]) for t in tiles]) / 60.0 / np.sqrt(2.0)
    reach = 2.0 * float(half_diag.max())
    tree = cKDTree(radec_to_unit(ra, dec).reshape(-1, 3))
    pairs = []
    for i, j in sorted(tree.query_pairs(chord(reach * 3600.0))):
        if angular_separation_arcsec(ra[i], dec[i], ra[j], dec[j]) / 3600.0 <= half_diag[i] + half_diag[j]:
            pairs.append((int(i), int(j)))
    return pairs


class _TileCache:
    def __init__(self, out_dir: Path, size: int = 8):
        self.out_dir = Path(out_dir)
        self.size = size
        self.data: OrderedDict[str, pd.DataFrame] = OrderedDict()

    def get(self, tile_id: str) -> pd.DataFrame:
        if tile_id in self.data:
            self.data.move_to_end(tile_id)
            return self.data[tile_id]
        path = self.out_dir / "tiles" / tile_id / "detections.parquet"
        have = set(pq.read_schema(path).names)
        table = pd.read_parquet(path, columns=[c for c in _READ if c in have])
        if "tile_edge_dist_px" not in table:
            table["tile_edge_dist_px"] = np.nan
        self.data[tile_id] = table
        if len(self.data) > self.size:
            self.data.popitem(last=False)
        return table


def _find(parent: dict[int, int], a: int) -> int:
    while parent[a] != a:
        parent[a] = parent[parent[a]]
        a = parent[a]
    return a


def find_duplicates(
    out_dir: Path,
    records: Iterable[Mapping[str, Any]],
    radius_arcsec: float = 0.5,
) -> pd.DataFrame:
    """Groups of detections of one source in overlapping tiles.

    Parameters
    ----------
    out_dir : Path
        Survey folder (``tiles/<tile_id>/detections.parquet``).
    records : iterable of mapping
        Tile records (``tile.json``); tiles with status ``ok`` take part.
    radius_arcsec : float
        Two detections in different tiles closer than this are one source.

    Returns
    -------
    DataFrame
        :data:`DEDUP_COLUMNS`, one row per detection that belongs to a group
        of two or more, sorted by tile id and NUMBER.  Detections not in it
        are single measurements (primary).
    """
    if radius_arcsec <= 0:
        raise ValueError(f"dedup radius_arcsec must be positive, got {radius_arcsec}")
    ok = [r for r in records if r.get("status") == "ok"]
    tiles = [
        {"ra": r["centre"]["ra"], "dec": r["centre"]["dec"], "size_arcmin": r.get("size_arcmin", 30.0)} for r in ok
    ]
    ids = [r["tile_id"] for r in ok]
    cache = _TileCache(Path(out_dir))
    # Nodes are (tile index, row); edges are cross-tile pairs within the radius.
    node: dict[tuple[int, int], int] = {}
    parent: dict[int, int] = {}
    sep_of: dict[int, float] = {}

    def nid(key: tuple[int, int]) -> int:
        if key not in node:
            node[key] = len(node)
            parent[node[key]] = node[key]
        return node[key]

    for i, j in overlapping_tile_pairs(tiles):
        a, b = cache.get(ids[i]), cache.get(ids[j])
        if not len(a) or not len(b):
            continue
        idx, sep = nearest_within(
            a["ra"].to_numpy(), a["dec"].to_numpy(), b["ra"].to_numpy(), b["dec"].to_numpy(), radius_arcsec
        )
        for ra_row in np.flatnonzero(idx >= 0):
            u, v = nid((i, int(ra_row))), nid((j, int(idx[ra_row])))
            sep_of[u] = min(sep_of.get(u, np.inf), float(sep[ra_row]))
            sep_of[v] = min(sep_of.get(v, np.inf), float(sep[ra_row]))
            ru, rv = _find(parent, u), _find(parent, v)
            if ru != rv:
                parent[max(ru, rv)] = min(ru, rv)
    if not node:
        return pd.DataFrame(
            {
                c: pd.Series(dtype=t)
                for c, t in zip(
                    DEDUP_COLUMNS,
                    ("string", "int64", "int64", "int64", "bool", "string", "int64", "float64", "bool", "bool"),
                )
            }
        )
    rows = []
    for (ti, row), n in sorted(node.items()):
        t = cache.get(ids[ti])
        rows.append(
            {
                "tile_id": ids[ti],
                "NUMBER": int(t["NUMBER"].iat[row]),
                "root": _find(parent, n),
                "edge": float(t["tile_edge_dist_px"].iat[row])
                if np.isfinite(t["tile_edge_dist_px"].iat[row])
                else -1.0,
                "snr": float(t["SNR_WIN"].iat[row]),
                "sep": sep_of.get(n, np.nan),
                "cp": bool(np.isfinite(t["counterpart_sep_arcsec"].iat[row])),
                "cand": bool(t["is_candidate"].iat[row]),
            }
        )
    df = pd.DataFrame(rows)
    # Primary: farthest from its tile edge, then highest SNR, then lowest tile id.
    df = df.sort_values(["root", "edge", "snr", "tile_id"], ascending=[True, False, False, True], kind="mergesort")
    first = df.groupby("root", sort=False).head(1).set_index("root")
    group_no = {
        root: k
        for k, root in enumerate(sorted(first.index, key=lambda r: (first.at[r, "tile_id"], first.at[r, "NUMBER"])))
    }
    size = df.groupby("root")["tile_id"].transform("size")
    any_cp = df.groupby("root")["cp"].transform("any")
    out = pd.DataFrame(
        {
            "tile_id": pd.array(df["tile_id"], dtype="string"),
            "NUMBER": df["NUMBER"].astype(np.int64),
            "dup_group": df["root"].map(group_no).astype(np.int64),
            "n_measurements": size.astype(np.int64),
            "is_primary": False,
            "primary_tile_id": pd.array(df["root"].map(first["tile_id"]), dtype="string"),
            "primary_NUMBER": df["root"].map(first["NUMBER"]).astype(np.int64),
            "dup_sep_arcsec": df["sep"].astype(np.float64),
            "group_has_counterpart": any_cp.astype(bool),
        }
    )
    out["is_primary"] = (out["tile_id"] == out["primary_tile_id"]).to_numpy(bool) & (
        out["NUMBER"] == out["primary_NUMBER"]
    ).to_numpy(bool)
    prim_cand = df["root"].map(first["cand"]).astype(bool)
    out["group_is_candidate"] = (prim_cand & ~any_cp).to_numpy(bool)
    return out.sort_values(["tile_id", "NUMBER"], kind="mergesort").reset_index(drop=True)

"""Golden outputs: what the pipeline produced before a change, kept in the repo.

Two references live under ``tests/golden/``:

- ``synthetic8/``: ``vasco survey --sky synthetic --tiles 8 --seed 1`` (30' tiles);
- ``m101/``: ``vasco tile`` on the real M101 cutout (``../shared/data/real``)
  with a Gaia file made from every other star of its own SExtractor pass 1.

Each holds, in text so that a diff shows what a change did:

- ``candidates.csv``: the candidate table (survey-merged, or the tile's), every
  column, floats written in full (``repr``) so that a diff shows any change;
- ``funnels.json``: the survey funnel (when a survey) and every tile's funnel;
- ``detections.json``: per tile, the row count and a SHA-256 of each column of
  ``detections.parquet`` (the values, in row order).

Floats are compared to :data:`FLOAT_DIGITS` significant digits, everything
else exactly.  The same code and inputs give floats that differ in the last
bit from one machine to another (measured: ``pos_err_arcsec`` differed by one
unit in the last place, relative 9e-16, on 52 rows between two of this
project's machines, from the CPU's vector routines), which an exact
comparison would call a change; 12 digits are still 1e-9 of a coordinate in
degrees (a few micro-arcseconds).

The comparison is one way: every row and column recorded here must come back
identical; columns added later are allowed (and listed by :func:`compare`).
``python scripts/record_golden.py`` rewrites the files after an intended change.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

GOLDEN = Path(__file__).parent / "golden"

#: Significant digits to which floats are compared (see the module docstring).
FLOAT_DIGITS = 12


def _csv(table: pd.DataFrame) -> str:
    buf = io.StringIO()
    table.to_csv(buf, index=False, float_format=None, lineterminator="\n")
    return buf.getvalue()


def _rounded(values: pd.Series) -> pd.Series:
    """Float values as text to :data:`FLOAT_DIGITS` significant digits; other values as they are."""
    if pd.api.types.is_float_dtype(values.dtype):
        arr = values.to_numpy(dtype=np.float64, na_value=np.nan)
        return pd.Series(np.char.mod(f"%.{FLOAT_DIGITS}g", arr), dtype=object)
    return values.reset_index(drop=True)


def column_digest(values: pd.Series) -> str:
    """SHA-256 of a column's values in row order, floats to :data:`FLOAT_DIGITS` digits (NaN hash alike)."""
    hashed = pd.util.hash_pandas_object(_rounded(values), index=False)
    return hashlib.sha256(np.ascontiguousarray(hashed.to_numpy()).tobytes()).hexdigest()


def _csv_rounded(text: str) -> str:
    """A candidates CSV with its floats to :data:`FLOAT_DIGITS` significant digits (the other cells as written)."""
    if not text.strip():
        return text
    table = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    for col in table.columns:
        cells = table[col]
        floats = pd.to_numeric(cells, errors="coerce")
        is_float = cells.str.contains(r"[.eE]|nan|inf", regex=True) & (
            floats.notna() | cells.isin(["nan", "inf", "-inf"])
        )
        table.loc[is_float, col] = np.char.mod(f"%.{FLOAT_DIGITS}g", floats[is_float].to_numpy(np.float64))
    return _csv(table)


def _tile_dirs(folder: Path) -> list[Path]:
    if (folder / "tile.json").is_file():
        return [folder]
    return sorted(p.parent for p in (folder / "tiles").glob("*/tile.json"))


def snapshot(folder: Path) -> dict[str, Any]:
    """The golden view of a survey folder or of one tile folder."""
    folder = Path(folder)
    tiles = _tile_dirs(folder)
    funnels: dict[str, Any] = {}
    if (folder / "summary.json").is_file():
        funnels["survey"] = json.loads((folder / "summary.json").read_text())["funnel"]
    dets: dict[str, Any] = {}
    for tile in tiles:
        rec = json.loads((tile / "tile.json").read_text())
        funnels[tile.name] = rec.get("funnel", {})
        if (tile / "detections.parquet").is_file():
            t = pd.read_parquet(tile / "detections.parquet")
            dets[tile.name] = {"rows": len(t), "columns": {c: column_digest(t[c]) for c in t.columns}}
    cand_path = folder / "candidates.parquet"
    candidates = pd.read_parquet(cand_path) if cand_path.is_file() else pd.DataFrame()
    return {"candidates": candidates, "funnels": funnels, "detections": dets}


def record(folder: Path, name: str) -> Path:
    """Write ``tests/golden/<name>/`` from ``folder``."""
    snap = snapshot(folder)
    dest = GOLDEN / name
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "candidates.csv").write_text(_csv(snap["candidates"]))
    (dest / "funnels.json").write_text(json.dumps(snap["funnels"], indent=1) + "\n")
    (dest / "detections.json").write_text(json.dumps(snap["detections"], indent=1, sort_keys=True) + "\n")
    return dest


def compare(folder: Path, name: str) -> list[str]:
    """Differences between ``folder`` and ``tests/golden/<name>/`` (empty when identical).

    Columns present now but not in the golden files are not differences; they
    are reported by :func:`new_columns`.
    """
    snap = snapshot(folder)
    dest = GOLDEN / name
    problems: list[str] = []
    want_funnels = json.loads((dest / "funnels.json").read_text())
    if snap["funnels"] != want_funnels:
        for key in sorted(set(want_funnels) | set(snap["funnels"])):
            a, b = want_funnels.get(key), snap["funnels"].get(key)
            if a != b:
                problems.append(f"funnel {key}: golden {a} != now {b}")
    want_csv = (dest / "candidates.csv").read_text()
    want_cols = want_csv.split("\n", 1)[0].split(",") if want_csv.strip() else []
    cand = snap["candidates"]
    missing = [c for c in want_cols if c not in cand.columns]
    if missing:
        problems.append(f"candidates: columns gone: {missing}")
    else:
        now_csv = _csv(cand[want_cols]) if want_cols else _csv(cand.iloc[:, :0])
        if _csv_rounded(now_csv) != _csv_rounded(want_csv):
            a, b = _csv_rounded(want_csv).splitlines(), _csv_rounded(now_csv).splitlines()
            rows = [i for i in range(max(len(a), len(b))) if (a[i : i + 1] != b[i : i + 1])]
            problems.append(
                f"candidates: {len(a) - 1} golden rows, {len(b) - 1} now; "
                f"{len(rows)} lines differ (first: line {rows[0] + 1 if rows else '?'})"
            )
    want_dets = json.loads((dest / "detections.json").read_text())
    for tile, want in want_dets.items():
        got = snap["detections"].get(tile)
        if got is None:
            problems.append(f"detections {tile}: missing")
            continue
        if got["rows"] != want["rows"]:
            problems.append(f"detections {tile}: {want['rows']} golden rows, {got['rows']} now")
        for col, digest in want["columns"].items():
            if col not in got["columns"]:
                problems.append(f"detections {tile}: column {col} gone")
            elif got["columns"][col] != digest:
                problems.append(f"detections {tile}: column {col} changed")
    for tile in snap["detections"]:
        if tile not in want_dets:
            problems.append(f"detections {tile}: not in the golden files")
    return problems


def new_columns(folder: Path, name: str) -> dict[str, list[str]]:
    """Per tile, the detection columns written now that the golden files lack."""
    snap = snapshot(folder)
    want = json.loads((GOLDEN / name / "detections.json").read_text())
    return {
        t: sorted(set(d["columns"]) - set(want.get(t, {}).get("columns", {}))) for t, d in snap["detections"].items()
    }


def m101_gaia_file(m101: Path, workdir: Path) -> Path:
    """A Gaia-like CSV for the M101 field: every other star of its own SExtractor pass 1."""
    from vasco.astrometry.positions import pixel_to_sky
    from vasco.config import ExtractionConfig
    from vasco.extraction import sextractor as sx
    from vasco.plates.header import read_fits_header

    workdir.mkdir(parents=True, exist_ok=True)
    t = sx.read_ldac(sx.run_pass1(m101, workdir / "p1.ldac", ExtractionConfig()))
    ra, dec = pixel_to_sky(read_fits_header(m101), t["X_IMAGE"], t["Y_IMAGE"])
    cat = pd.DataFrame(
        {
            "RA_ICRS": ra,
            "DE_ICRS": dec,
            "pmRA": 0.0,
            "pmDE": 0.0,
            "Gmag": 16.0,
            "Source": np.arange(len(t), dtype=np.int64),
        }
    ).iloc[::2]
    path = workdir / "gaia.csv"
    cat.to_csv(path, index=False)
    return path


def run_m101(m101: Path, workdir: Path) -> Path:
    """``vasco tile`` on the real M101 cutout with :func:`m101_gaia_file`; returns the tile folder."""
    from flows.cli import main

    gaia = m101_gaia_file(m101, workdir)
    out = workdir / "tile"
    code = main(["tile", "--fits", str(m101), "--catalog", f"gaia={gaia}", "--out", str(out)])
    if code != 0:
        raise RuntimeError(f"vasco tile on {m101} exited {code}")
    return out


def run_synthetic8(out: Path) -> Path:
    """``vasco survey --sky synthetic --tiles 8 --seed 1`` into ``out``."""
    from flows.cli import main

    code = main(["survey", "--sky", "synthetic", "--tiles", "8", "--seed", "1", "--out", str(out)])
    if code != 0:
        raise RuntimeError(f"vasco survey exited {code}")
    return out

"""Benchmark: the paper's later vetoes and the global deduplication on overlapping synthetic tiles.

Runs one synthetic survey over a grid of overlapping tiles twice into the
same folder — with every later veto, then with all of them switched off
(the per-tile steps before the vetoes are reused from the first run) — and
prints, for both: the funnel of ``summary.json`` beside the paper's, the
duplicates found, and purity and completeness of the final, deduplicated
candidates against the synthetic truth (each injected transient counted
once however many tiles see it), with the false candidates by class.

    .venv/bin/python scripts/bench_vetoes.py --grid 3 --step-arcmin 25 --seed 1
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from vasco.matching.crossmatch import nearest_within
from vasco.qc.injection import CLASS_OF, FALSE_CLASSES

REPO = Path(__file__).resolve().parents[1]

_OFF = {
    "vetoes": {s: {"enabled": False} for s in ("spikes", "archives", "asteroids", "variables", "supercosmos", "hpm")}
}


def grid(ra0: float, dec0: float, n: int, step_arcmin: float) -> list[tuple[float, float]]:
    """An n x n grid of tile centres, ``step_arcmin`` apart on the sky."""
    out = []
    half = (n - 1) / 2.0
    for j in range(n):
        dec = dec0 + (j - half) * step_arcmin / 60.0
        for i in range(n):
            out.append(((ra0 + (i - half) * step_arcmin / 60.0 / np.cos(np.radians(dec))) % 360.0, dec))
    return out


def score(out: Path) -> dict:
    """Purity and completeness of the survey's unique candidates against the union of the tiles' truth."""
    truths = [pd.read_parquet(p) for p in sorted((out / "tiles").glob("*/truth.parquet"))]
    truth = pd.concat(truths, ignore_index=True)
    tr = truth.loc[truth["cls"] == "transient"].copy()
    # One row per transient: the same object is in the truth of every tile that covers it.
    tr["key"] = np.round(tr["ra"] * 3.6e5).astype(np.int64) * 10**9 + np.round(tr["dec"] * 3.6e5).astype(np.int64)
    rec = tr.groupby("key")["recoverable"].any()
    tr = tr.drop_duplicates("key").set_index("key")
    tr["recoverable_any"] = rec
    cands = pd.read_parquet(out / "candidates.parquet")
    idx, _ = nearest_within(cands["ra"], cands["dec"], tr["ra"], tr["dec"], 3.0)
    true = idx >= 0
    found = np.zeros(len(tr), dtype=bool)
    found[idx[true]] = True
    recoverable = tr["recoverable_any"].to_numpy(bool) | found
    others = truth.loc[truth["cls"] != "transient"]
    j, _ = nearest_within(cands["ra"], cands["dec"], others["ra"], others["dec"], 3.0)
    false_by = {c: 0 for c in FALSE_CLASSES}
    for k in np.flatnonzero(~true):
        lab = CLASS_OF.get(others["cls"].to_numpy()[j[k]], "other") if j[k] >= 0 else "other"
        false_by[lab] += 1
    return {
        "transients": int(len(tr)),
        "recoverable": int(recoverable.sum()),
        "recovered": int(found.sum()),
        "completeness": float(found.sum() / recoverable.sum()) if recoverable.sum() else None,
        "candidates": int(len(cands)),
        "true": int(true.sum()),
        "purity": float(true.mean()) if len(cands) else None,
        "false_by_class": false_by,
    }


def run(out: Path, pos: Path, seed: int, size: float, cfg: Path | None) -> dict:
    cmd = [
        sys.executable,
        str(REPO / "flows" / "survey.py"),
        "--sky",
        "synthetic",
        "--positions",
        str(pos),
        "--seed",
        str(seed),
        "--size-arcmin",
        str(size),
        "--out",
        str(out),
    ]
    if cfg is not None:
        cmd += ["--config", str(cfg)]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return json.loads((out / "summary.json").read_text())


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ra", type=float, default=150.0)
    p.add_argument("--dec", type=float, default=20.0)
    p.add_argument("--grid", type=int, default=3, help="n for an n x n grid of tiles")
    p.add_argument("--step-arcmin", type=float, default=25.0, help="centre spacing (< size: tiles overlap)")
    p.add_argument("--size-arcmin", type=float, default=30.0)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", help="output folder (default: a temporary folder)")
    a = p.parse_args()
    out = Path(a.out) if a.out else Path(tempfile.mkdtemp(prefix="vasco-vetoes-"))
    out.mkdir(parents=True, exist_ok=True)
    pos = out / "grid.csv"
    pos.write_text("ra,dec\n" + "".join(f"{r:.6f},{d:.6f}\n" for r, d in grid(a.ra, a.dec, a.grid, a.step_arcmin)))
    off_cfg = out / "vetoes-off.json"
    off_cfg.write_text(json.dumps(_OFF))
    results = {}
    for name, cfg in (("vetoes on", None), ("vetoes off", off_cfg)):
        summary = run(out / name.replace(" ", "-"), pos, a.seed, a.size_arcmin, cfg)
        results[name] = (summary, score(out / name.replace(" ", "-")))
    print(
        f"{a.grid}x{a.grid} tiles of {a.size_arcmin}' every {a.step_arcmin}' around "
        f"({a.ra}, {a.dec}), seed {a.seed}; output {out}"
    )
    on, off = results["vetoes on"], results["vetoes off"]
    print("\nfunnel (vetoes on):")
    for k, v in on[0]["funnel"].items():
        print(f"  {k:16s} {v:8,d}")
    print("\nside by side with the paper (sources kept by each stage):")
    for r in on[0]["funnel_vs_paper"]:
        ours = "   -   " if r["ours_kept"] is None else f"{r['ours_kept']:7.1%}"
        paper = "   -   " if r["paper_kept"] is None else f"{r['paper_kept']:7.1%}"
        print(
            f"  {r['stage']:16s} ours {r['ours'] if r['ours'] is not None else '-':>6} {ours}   "
            f"paper {r['paper']:>7,} {paper}"
        )
    print(f"\nduplicates: {on[0]['duplicates']}")
    for name, (_summary, sc) in results.items():
        print(
            f"\n{name}: {sc['candidates']} unique candidates, {sc['true']} true; purity "
            f"{sc['purity']:.3f}; completeness {sc['recovered']}/{sc['recoverable']} = {sc['completeness']:.3f}"
            f"\n  false by class: {sc['false_by_class']}"
        )
    d_comp = (off[1]["completeness"] - on[1]["completeness"]) * 100
    print(f"\npurity {off[1]['purity']:.3f} -> {on[1]['purity']:.3f}; completeness drop {d_comp:.1f} points")
    return 0 if (on[1]["purity"] > off[1]["purity"] and d_comp <= 2.0) else 1


if __name__ == "__main__":
    raise SystemExit(main())

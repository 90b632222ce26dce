"""Benchmark: the same survey twice, cold then from its cache.

Runs ``python flows/survey.py --sky synthetic --tiles N --seed S --out DIR``
twice into a fresh folder and prints the wall time of each run, the
speed-up, whether ``candidates.parquet`` has the same content both times,
and the injection figures of ``summary.json``.

    .venv/bin/python scripts/bench_rerun.py --tiles 8 --seed 1
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]


def run_once(args: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, str(REPO / "flows" / "survey.py"), *args],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return time.perf_counter() - t0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tiles", type=int, default=8)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--size-arcmin", type=float, default=30.0)
    p.add_argument("--out", help="output folder (default: a new temporary folder, removed afterwards)")
    a = p.parse_args()
    out = Path(a.out) if a.out else Path(tempfile.mkdtemp(prefix="vasco-bench-"))
    if out.exists() and any(out.iterdir()):
        print(f"error: --out {out} must be empty or absent", file=sys.stderr)
        return 2
    cli = [
        "--sky",
        "synthetic",
        "--tiles",
        str(a.tiles),
        "--seed",
        str(a.seed),
        "--size-arcmin",
        str(a.size_arcmin),
        "--out",
        str(out),
    ]
    try:
        cold = run_once(cli)
        first = pd.read_parquet(out / "candidates.parquet")
        warm = run_once(cli)
        second = pd.read_parquet(out / "candidates.parquet")
        summary = json.loads((out / "summary.json").read_text())
    finally:
        if not a.out:
            shutil.rmtree(out, ignore_errors=True)
    same = first.equals(second)
    print(f"survey: {a.tiles} tiles of {a.size_arcmin}' , seed {a.seed}")
    print(f"cold run:   {cold:8.1f} s")
    print(f"cached run: {warm:8.1f} s   speed-up x{cold / warm:.1f}")
    print(f"candidates.parquet identical: {same} ({len(first)} candidates)")
    t = summary["tiles"]
    print(
        f"tiles: {t['processed']} processed, {t['rejected']} rejected, {t['failed']} failed; "
        f"detections {summary['detections']}"
    )
    inj = summary.get("injection")
    if inj:
        print(
            f"injection: {inj['recovered']}/{inj['recoverable']} recoverable recovered, "
            f"completeness {inj['completeness']:.3f}, outside the bright-star zones "
            f"{inj['completeness_searchable']:.3f}, model {inj['completeness_model']:.3f}, "
            f"purity {inj['purity']:.3f}"
        )
        print(f"recoverable transients lost by stage: {inj['lost_by_stage']}")
        print(f"false candidates by class: {inj['false_by_class']}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark: the survey flow's orchestration overhead per tile, and its peak memory, as tiles grow.

Runs ``python flows/survey.py --dry-run`` (every tile goes through the
survey's sliding window, a task, a tile subflow, its lease, tile.json and the
publishing step, but no pixels are made or read) for each tile count, each in
a fresh process with Prefect's local ephemeral server, and prints the wall
time, the time per tile and the peak resident memory of the survey process
(which holds the flow, its futures and task states).

    .venv/bin/python scripts/bench_orchestration.py --tiles 1000 10000
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from survey_child import run_survey  # scripts/, the script's own folder, is first on the import path


def run(n: int, workers: int, out: Path) -> tuple[float, float]:
    wall, peak, _ = run_survey(
        ["--dry-run", "--tiles", str(n), "--seed", "1", "--workers", str(workers), "--out", str(out)]
    )
    return wall, peak


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tiles", type=int, nargs="+", default=[1000, 10000])
    p.add_argument("--workers", type=int, default=2)
    a = p.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="vasco-orch-") as tmp:
        for n in a.tiles:
            wall, peak = run(n, a.workers, Path(tmp) / f"n{n}")
            rows.append((n, wall, peak))
            print(
                f"{n:7d} tiles: {wall:8.1f} s wall, {1000 * wall / n:7.1f} ms per tile, peak memory {peak:7.1f} MiB",
                flush=True,
            )
    (n0, w0, m0), (n1, w1, m1) = rows[0], rows[-1]
    print(f"from {n0} to {n1} tiles: time per tile x{(w1 / n1) / (w0 / n0):.2f}, peak memory x{m1 / m0:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Benchmark: the survey flow's orchestration overhead per tile, and its peak memory, as tiles grow.

Runs ``python flows/survey.py --dry-run`` (every tile goes through the
survey's sliding window, a task, a tile subflow, its lease, tile.json and the
publishing step, but no pixels are made or read) for each tile count, each in
a fresh process with Prefect's local ephemeral server, and prints the wall
time, the time and CPU time per tile (CPU: the survey's process, its tile worker
processes and Prefect's temporary server, which are all its children; the
robust figure on a shared machine) and the peak resident memory of the
survey process (which holds the flow, its futures and task states).
``--processes`` runs the tile subflows in worker processes
(``survey.tile_processes = true``) instead of threads of the survey's process.

    .venv/bin/python scripts/bench_orchestration.py --tiles 1000 10000
"""

from __future__ import annotations

import argparse
import resource
import tempfile
from pathlib import Path

from survey_child import run_survey  # scripts/, the script's own folder, is first on the import path

from vasco.config import VascoConfig


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run(n: int, workers: int, out: Path, processes: bool) -> tuple[float, float, float]:
    """Return (wall s, CPU s of the survey and its children, peak MiB of the survey process)."""
    args = ["--dry-run", "--tiles", str(n), "--seed", "1", "--workers", str(workers), "--out", str(out)]
    if processes:
        cfg = out.parent / f"{out.name}-processes.json"
        VascoConfig.model_validate({"survey": {"tile_processes": True}}).write(cfg)
        args += ["--config", str(cfg)]
    cpu0 = _children_cpu()
    wall, peak, _ = run_survey(args)
    return wall, _children_cpu() - cpu0, peak


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tiles", type=int, nargs="+", default=[1000, 10000])
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--processes", action="store_true", help="tile subflows in worker processes, not threads")
    a = p.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="vasco-orch-") as tmp:
        for n in a.tiles:
            wall, cpu, peak = run(n, a.workers, Path(tmp) / f"n{n}", a.processes)
            rows.append((n, wall, peak))
            print(
                f"{n:7d} tiles: {wall:8.1f} s wall, {1000 * wall / n:7.1f} ms per tile (wall), "
                f"{1000 * cpu / n:7.1f} ms CPU per tile, peak memory {peak:7.1f} MiB",
                flush=True,
            )
    (n0, w0, m0), (n1, w1, m1) = rows[0], rows[-1]
    print(f"from {n0} to {n1} tiles: time per tile x{(w1 / n1) / (w0 / n0):.2f}, peak memory x{m1 / m0:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

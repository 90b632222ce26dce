"""Shared by the benchmarks: run ``flows/survey.py`` in a fresh Python process
and report its wall time and peak memory."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

_CHILD = """
import resource, runpy, sys
sys.argv = {argv!r}
try:
    runpy.run_path({script!r}, run_name="__main__")
except SystemExit as exc:
    code = exc.code
else:
    code = 0
print("PEAK_RSS_KB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
      resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, flush=True)
sys.exit(code)
"""


def run_survey(args: list[str]) -> tuple[float, float, float]:
    """Run ``flows/survey.py ARGS``; return (wall s, peak MiB of the survey process,
    peak MiB of the largest process it ran, e.g. SExtractor).

    Raises SystemExit with the end of the survey's stderr when it fails.
    """
    argv = ["flows/survey.py", *args]
    code = _CHILD.format(argv=argv, script=str(REPO / "flows" / "survey.py"))
    t0 = time.perf_counter()
    res = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, "PREFECT_LOGGING_LEVEL": "WARNING"},
    )
    wall = time.perf_counter() - t0
    if res.returncode != 0:
        raise SystemExit(f"flows/survey.py {' '.join(args)} failed:\n{res.stderr[-3000:]}")
    line = next(ln for ln in res.stdout.splitlines() if ln.startswith("PEAK_RSS_KB"))
    own, children = (float(v) / 1024.0 for v in line.split()[1:3])
    return wall, own, children

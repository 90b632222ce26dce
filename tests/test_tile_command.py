"""``vasco tile``: the same chain with and without Prefect, a finished tile left alone, clean output (issue 17).

The in-process runs are real ``vasco`` processes with no Prefect server
configured (a private, empty ``PREFECT_HOME``), reading the real M101 cutout.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from goldens import m101_gaia_file

REPO = Path(__file__).resolve().parents[1]

#: What a successful run must never print.
NOISE = ("Traceback", "| ERROR", "Error flushing")


def _vasco(args: list[str], home: Path) -> subprocess.CompletedProcess[str]:
    """Run ``vasco`` in a fresh process with no Prefect server configured."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env["PREFECT_HOME"] = str(home)
    return subprocess.run(
        [sys.executable, "-m", "flows.cli", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=600
    )


@pytest.fixture(scope="module")
def m101_runs(tmp_path_factory, m101_path):
    """``vasco tile`` on M101 in process (twice), and the Prefect tile flow on the same file."""
    from flows.cli import main

    root = tmp_path_factory.mktemp("tilecmd")
    gaia = m101_gaia_file(m101_path, root / "cat")
    args = ["tile", "--fits", str(m101_path), "--catalog", f"gaia={gaia}"]
    home = root / "prefect-home"
    first = _vasco([*args, "--out", str(root / "plain")], home)
    tile_json = root / "plain" / "tile.json"
    stamp = tile_json.stat().st_mtime_ns if tile_json.is_file() else None
    again = _vasco([*args, "--out", str(root / "plain")], home)
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        code = main([*args, "--out", str(root / "prefect"), "--orchestration", "prefect"])
    return root, first, again, stamp, code, args, home


@pytest.mark.slow
def test_in_process_and_prefect_runs_write_the_same_tile(m101_runs):
    root, first, _, _, code, _, home = m101_runs
    assert first.returncode == 0, first.stderr[-3000:]
    assert code == 0
    # No Prefect server was started for the in-process run: its database was never created.
    assert not (home / "prefect.db").exists()
    for name in ("detections.parquet", "candidates.parquet"):
        a, b = pd.read_parquet(root / "plain" / name), pd.read_parquet(root / "prefect" / name)
        assert len(a) > 0 and a.equals(b), name
    plain = json.loads((root / "plain" / "tile.json").read_text())
    flow = json.loads((root / "prefect" / "tile.json").read_text())
    for key in ("status", "funnel", "plate", "astrometry", "psf_stars", "catalogs", "vetoes", "config_hash"):
        assert plain[key] == flow[key], key
    # The same steps ran in both (their keys can differ: SExtractor stamps its catalogues with the run's date).
    assert sorted(p.name for p in (root / "plain" / "steps").glob("*.json")) == sorted(
        p.name for p in (root / "prefect" / "steps").glob("*.json")
    )


@pytest.mark.slow
def test_a_finished_tile_is_left_alone_and_a_successful_run_prints_no_traceback(m101_runs):
    root, first, again, stamp, _, _, _ = m101_runs
    for run in (first, again):
        assert run.returncode == 0
        assert not [n for n in NOISE if n in run.stdout + run.stderr], run.stderr[-3000:]
    assert "already done" in again.stderr
    assert json.loads(again.stdout)["status"] == "ok"
    assert (root / "plain" / "tile.json").stat().st_mtime_ns == stamp  # not rewritten
    assert "astrometry.png" not in {p.name for p in (root / "plain").rglob("*")}  # no plot on the tile's path


@pytest.mark.slow
def test_a_changed_file_is_run_again(m101_runs, tmp_path):
    root, _, _, _, _, args, home = m101_runs
    out = tmp_path / "tile"
    shutil.copytree(root / "plain", out)
    changed = tmp_path / "m101.fits"
    raw = Path(args[2]).read_bytes()
    end = next(i for i in range(0, 2880 * 20, 80) if raw[i : i + 80] == b"END".ljust(80))
    assert raw[end + 80 : end + 160] == b" " * 80  # room in the header block for one more card
    history = b"HISTORY touched".ljust(80)
    changed.write_bytes(raw[:end] + history + b"END".ljust(80) + raw[end + 160 :])  # new bytes, same pixels
    moved = [*args[:2], str(changed), *args[3:]]
    run = _vasco([*moved, "--out", str(out)], home)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "already done" not in run.stderr
    rec = json.loads((out / "tile.json").read_text())
    assert rec["source_file"] == str(changed) and rec["status"] == "ok"


@pytest.mark.slow
def test_a_finished_survey_run_again_does_nothing_but_say_so(tmp_path):
    """A survey's second run starts no Prefect server and rewrites nothing; a changed tile publishes again."""
    out = tmp_path / "s"
    args = ["survey", "--sky", "synthetic", "--tiles", "1", "--seed", "3", "--size-arcmin", "8", "--out", str(out)]
    home = tmp_path / "prefect-home"
    first = _vasco(args, home)
    assert first.returncode == 0, first.stderr[-3000:]
    assert not [n for n in NOISE if n in first.stdout + first.stderr], (first.stdout + first.stderr)[-3000:]
    published = {p: p.stat().st_mtime_ns for p in (out / "summary.json", out / "report" / "report.json")}
    db = home / "prefect.db"
    db_stamp = db.stat().st_mtime_ns
    again = _vasco(args, home)
    assert again.returncode == 0 and "nothing to do" in again.stdout, again.stderr[-3000:]
    assert "1/1 tiles processed" in again.stdout
    assert {p: p.stat().st_mtime_ns for p in published} == published
    assert db.stat().st_mtime_ns == db_stamp  # no Prefect server was started
    # A tile record newer than the summary: the survey publishes again.
    (tile_json,) = list(out.glob("tiles/*/tile.json"))
    os.utime(tile_json)
    third = _vasco(args, home)
    assert third.returncode == 0 and "nothing to do" not in third.stdout, third.stderr[-3000:]
    assert (out / "summary.json").stat().st_mtime_ns > published[out / "summary.json"]

"""A real Prefect server, a process work pool, two workers and the deployments of prefect.yaml.

Starts ``prefect server`` on 127.0.0.1 (SQLite in a temporary PREFECT_HOME),
creates the ``vasco-process`` pool, deploys everything in ``prefect.yaml``,
starts two workers and runs ``vasco-survey/survey-fanout`` on four small
synthetic tiles: the tiles become flow runs of ``vasco-tile/tile`` on both
workers, and the survey's outputs equal those of an in-process run.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]
PREFECT = str(Path(sys.executable).with_name("prefect"))

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("source-extractor") is None, reason="SExtractor is not installed"),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_http(url: str, timeout: float) -> None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"{url} did not answer within {timeout} s")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    home = tmp_path_factory.mktemp("prefect-home")
    port = _free_port()
    env = {
        **os.environ,
        "PREFECT_HOME": str(home),
        "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_WORKER_QUERY_SECONDS": "1",
        "PREFECT_WORKER_PREFETCH_SECONDS": "1",
        "PREFECT_LOGGING_LEVEL": "WARNING",
        "VASCO_HOME": str(REPO),
    }
    log = open(home / "server.log", "wb")  # noqa: SIM115 - closed in the teardown
    proc = subprocess.Popen(
        [PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    workers: list[subprocess.Popen] = []
    try:
        _wait_http(f"http://127.0.0.1:{port}/api/health", 120)
        subprocess.run(
            [PREFECT, "work-pool", "create", "vasco-process", "--type", "process"],
            env=env,
            check=True,
            capture_output=True,
            timeout=120,
        )
        dep = subprocess.run(
            [PREFECT, "--no-prompt", "deploy", "--all"], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
        )
        assert dep.returncode == 0, dep.stdout[-3000:] + dep.stderr[-3000:]
        # Two slots each: whichever worker runs the survey keeps one for a tile; with three tiles
        # in flight the three free slots are all needed, so both workers take tiles.
        for name, limit in (("w1", "2"), ("w2", "2")):
            wlog = open(home / f"{name}.log", "wb")  # noqa: SIM115
            workers.append(
                subprocess.Popen(
                    [PREFECT, "worker", "start", "--pool", "vasco-process", "--name", name, "--limit", limit],
                    env={**env, "VASCO_WORKER_ID": name},
                    cwd=REPO,
                    stdout=wlog,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
        yield env, home
    finally:
        for p in [*workers, proc]:
            try:
                os.killpg(p.pid, 15)
            except ProcessLookupError:
                pass
        for p in [*workers, proc]:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, 9)
        log.close()


def _api(env: dict, path: str, body: dict | None = None) -> dict | list:
    req = urllib.request.Request(
        env["PREFECT_API_URL"] + path,
        method="POST" if body is not None else "GET",
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def _final_state(env: dict, deployment: str, timeout: float) -> str | None:
    """The state type of the deployment's (first) flow run once it has ended, or the last one seen."""
    t0 = time.monotonic()
    state = None
    while time.monotonic() - t0 < timeout:
        runs = _api(env, "/flow_runs/filter", {"deployments": {"name": {"any_": [deployment]}}})
        state = runs[0]["state"]["type"] if runs else None
        if state in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED"):
            break
        time.sleep(2)
    return state


def test_deployments_fan_tiles_out_over_two_workers(server, tmp_path):
    env, home = server
    deps = _api(env, "/deployments/filter", {})
    names = {d["name"] for d in deps}
    assert {"survey-on-demand", "survey-fanout", "survey-nightly", "tile"} <= names
    nightly = next(d for d in deps if d["name"] == "survey-nightly")
    assert nightly["schedules"] and nightly["schedules"][0]["schedule"]["cron"] == "0 2 * * *"
    # Parameters are validated against the flow's signature (and VascoConfig) by the server.
    tile = next(d for d in deps if d["name"] == "tile")
    assert "config" in tile["parameter_openapi_schema"]["properties"]

    out = tmp_path / "fanout"
    pos = tmp_path / "pos.csv"
    pos.write_text("ra,dec\n132.8250,11.8000\n184.0164,27.8682\n150.0000,20.0000\n200.0000,40.0000\n")
    params = {"out": str(out), "positions": str(pos), "size_arcmin": 10.0, "seed": 1, "workers": 3}
    run = subprocess.run(
        [PREFECT, "deployment", "run", "vasco-survey/survey-fanout", "--params", json.dumps(params)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    state = _final_state(env, "survey-fanout", 900)
    logs = "".join((home / f).read_text(errors="replace")[-2000:] for f in ("w1.log", "w2.log"))
    assert state == "COMPLETED", logs
    summary = json.loads((out / "summary.json").read_text())
    assert summary["tiles"]["processed"] == 4, summary
    # Every tile was its own flow run of the tile deployment, and both workers took some.
    tile_runs = _api(env, "/flow_runs/filter", {"deployments": {"name": {"any_": ["tile"]}}})
    assert len(tile_runs) == 4 and all(r["state"]["type"] == "COMPLETED" for r in tile_runs)
    who = {json.loads(p.read_text())["run_by"]["worker"] for p in (out / "tiles").glob("*/tile.json")}
    assert who == {"w1", "w2"}, who

    # The same survey in one process gives the same outputs (run as a separate process, as a
    # user would, so this test leaves no client state pointing at its server behind).
    local_run = subprocess.run(
        [
            sys.executable,
            str(REPO / "flows" / "survey.py"),
            "--positions",
            str(pos),
            "--size-arcmin",
            "10",
            "--seed",
            "1",
            "--workers",
            "2",
            "--out",
            str(tmp_path / "local"),
        ],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert local_run.returncode == 0, local_run.stdout[-2000:] + local_run.stderr[-2000:]
    local = json.loads((tmp_path / "local" / "summary.json").read_text())
    assert local["candidates"] == summary["candidates"] and local["funnel"] == summary["funnel"]
    for name in ("candidates.parquet", "detections.parquet"):
        a = pd.read_parquet(out / name)
        b = pd.read_parquet(tmp_path / "local" / name)
        pd.testing.assert_frame_equal(a, b)


def test_deployment_run_with_a_config_file_keeps_its_values(server, tmp_path):
    """Issue 15: a deployment passes only what it sets, so a config file's survey values hold (dry run)."""
    env, home = server
    conf = tmp_path / "run.toml"
    conf.write_text("[survey]\ntiles = 3\nseed = 5\n")
    out = tmp_path / "ondemand"
    params = {"out": str(out), "config_file": str(conf), "dry_run": True}
    run = subprocess.run(
        [PREFECT, "deployment", "run", "vasco-survey/survey-on-demand", "--params", json.dumps(params)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    state = _final_state(env, "survey-on-demand", 600)
    assert state == "COMPLETED", "".join((home / f).read_text(errors="replace")[-2000:] for f in ("w1.log", "w2.log"))
    written = json.loads((out / "config.json").read_text())
    assert written["survey"]["tiles"] == 3 and written["survey"]["seed"] == 5
    assert json.loads((out / "summary.json").read_text())["tiles"]["planned"] == 3

"""Screenshots of the Prefect UI with VASCO's deployments and a finished survey run.

Starts a Prefect server on 127.0.0.1 (SQLite in a temporary PREFECT_HOME),
creates the ``vasco-process`` pool, deploys ``prefect.yaml``, starts one
worker, runs ``vasco-survey/survey-on-demand`` on two small synthetic tiles,
and saves with headless Chromium (Playwright):

* ``deployment.png``: the scheduled ``survey-nightly`` deployment;
* ``run.png``: the finished survey run;
* ``artifacts.png``: that run's artifacts (progress, funnel, candidates, products).

Needs Debian's ``chromium`` (``apt-get install chromium``) and Playwright
(pinned in ``requirements.lock``; the report-page tests use it too).

    .venv/bin/python scripts/screenshot_ui.py --out docs/ui
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PREFECT = str(Path(sys.executable).with_name("prefect"))


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _api(base: str, path: str, body: dict | None = None) -> object:
    req = urllib.request.Request(
        base + path,
        method="POST" if body is not None else "GET",
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="docs/ui", help="folder for the PNG files")
    p.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    a = p.parse_args()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        print("error: Playwright is missing: .venv/bin/pip install playwright", file=sys.stderr)
        return 2
    if not Path(a.chromium).exists():
        print(f"error: no Chromium at {a.chromium}: apt-get install chromium", file=sys.stderr)
        return 2
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    home = Path(tempfile.mkdtemp(prefix="vasco-ui-"))
    port = _port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "PREFECT_HOME": str(home),
        "PREFECT_API_URL": f"{base}/api",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_WORKER_QUERY_SECONDS": "1",
        "VASCO_HOME": str(REPO),
        "VASCO_WORKER_ID": "ui-worker",
    }
    procs = [
        subprocess.Popen(
            [PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
    ]
    try:
        for _ in range(240):
            try:
                _api(f"{base}/api", "/health")
                break
            except OSError:
                time.sleep(0.5)
        subprocess.run(
            [PREFECT, "work-pool", "create", "vasco-process", "--type", "process"],
            env=env,
            check=True,
            capture_output=True,
        )
        subprocess.run([PREFECT, "--no-prompt", "deploy", "--all"], cwd=REPO, env=env, check=True, capture_output=True)
        procs.append(
            subprocess.Popen(
                [PREFECT, "worker", "start", "--pool", "vasco-process", "--limit", "2"],
                cwd=REPO,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
        )
        params = {"out": str(home / "survey"), "tiles": 2, "size_arcmin": 10.0, "seed": 1, "workers": 2}
        subprocess.run(
            [PREFECT, "deployment", "run", "vasco-survey/survey-on-demand", "--params", json.dumps(params)],
            env=env,
            check=True,
            capture_output=True,
        )
        run = None
        for _ in range(900):
            runs = _api(f"{base}/api", "/flow_runs/filter", {"deployments": {"name": {"any_": ["survey-on-demand"]}}})
            if runs and runs[0]["state"]["type"] in ("COMPLETED", "FAILED", "CRASHED"):
                run = runs[0]
                break
            time.sleep(1)
        if run is None or run["state"]["type"] != "COMPLETED":
            print(f"error: the survey run did not complete: {run and run['state']}", file=sys.stderr)
            return 1
        deps = _api(f"{base}/api", "/deployments/filter", {})
        nightly = next(d for d in deps if d["name"] == "survey-nightly")
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=a.chromium, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1500, "height": 1000})
            shots = {
                "deployment.png": f"{base}/deployments/deployment/{nightly['id']}",
                "run.png": f"{base}/runs/flow-run/{run['id']}",
                "artifacts.png": f"{base}/runs/flow-run/{run['id']}",
            }
            for name, url in shots.items():
                page.goto(url, wait_until="networkidle")
                page.wait_for_timeout(2500)
                if name == "artifacts.png":
                    page.get_by_text("Artifacts", exact=True).first.click()
                    page.wait_for_timeout(2500)
                page.screenshot(path=str(out / name), full_page=True)
                print(f"wrote {out / name}  ({url})")
            browser.close()
    finally:
        for proc in procs:
            try:
                os.killpg(proc.pid, 15)
            except ProcessLookupError:
                pass
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, 9)
        shutil.rmtree(home, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The first run on a cold machine (issue 15, part 1).

The whole first command runs in ``.ci/run`` (an empty HOME, both cores busy);
these check the two settings it rests on, in fresh processes.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

_PROBE = (
    "import flows; from prefect.settings import PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS as s; print(s.value())"
)


def _probe(**env: str) -> str:
    base = {k: v for k, v in os.environ.items() if k != "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"}
    res = subprocess.run(
        [sys.executable, "-c", _PROBE], env={**base, **env}, cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert res.returncode == 0, res.stderr[-2000:]
    return res.stdout.strip().splitlines()[-1]


def test_vasco_gives_the_temporary_server_time_to_start():
    """Prefect itself reads VASCO's start-up limit (not its own 20 s)."""
    assert _probe() == "300"


def test_a_users_own_setting_wins():
    assert _probe(PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="45") == "45"


def test_install_prepares_the_database_and_ci_runs_the_readme_command():
    install = (REPO / "scripts" / "install.sh").read_text()
    assert "server database upgrade" in install
    ci = (REPO / ".ci" / "run").read_text()
    assert "## Set-up and first run" in ci and 'HOME="$fresh_home"' in ci
    readme = (REPO / "README.md").read_text()
    first = readme.split("## Set-up and first run", 1)[1].split("```bash", 1)[1].strip().splitlines()[0]
    assert first.startswith("bash scripts/install.sh && ") and "--out " in first

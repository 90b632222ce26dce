"""Shared test fixtures: paths to the real reference data beside the repo."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from vasco.sources.dss import DSS_URL_ENV
from vasco.sources.skybot import SKYBOT_URL_ENV
from vasco.sources.supercosmos import SUPERCOSMOS_URL_ENV
from vasco.sources.vizier import VIZIER_URL_ENV
from vasco.sources.xmatch import XMATCH_URL_ENV

pytest_plugins = ["faultlog"]

# The local Prefect servers the tests start are offline: no telemetry.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("VASCO_SHARED", REPO.parent / "shared")) / "data"
M101 = SHARED / "real" / "dss1red_XE133_m101.fits"
SERC = SHARED / "real" / "serc_er_ER768_horsehead.fits"
PLATE_HEADERS = SHARED / "plates" / "poss1e_plate_headers.jsonl.gz"


@pytest.fixture(scope="session")
def m101_path() -> Path:
    if not M101.exists():
        pytest.fail(f"reference data missing: {M101} (the repo expects ../shared/data beside it)")
    return M101


@pytest.fixture(scope="session")
def serc_path() -> Path:
    if not SERC.exists():
        pytest.fail(f"reference data missing: {SERC}")
    return SERC


#: Environment variables that point VASCO's clients at a service.
SERVICE_URL_ENVS = (DSS_URL_ENV, VIZIER_URL_ENV, XMATCH_URL_ENV, SKYBOT_URL_ENV, SUPERCOSMOS_URL_ENV)


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Never route loopback through a proxy; never inherit a real service URL."""
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    for var in SERVICE_URL_ENVS:
        monkeypatch.delenv(var, raising=False)


@pytest.fixture(scope="module")
def harness():
    """A temporary Prefect server (SQLite) for one test module's flow runs; Prefect is imported only here."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(autouse=True)
def _fresh_xmatch_table_lists() -> None:
    """A stand-in's table list is never taken from an earlier test's server on the same port."""
    from vasco.sources.xmatch import forget_table_lists

    forget_table_lists()

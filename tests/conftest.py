"""Shared test fixtures: paths to the real reference data beside the repo."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

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

"""The fault table: every fault-injection test adds one row, the run writes it.

A test asks for the ``fault`` fixture, names its fault and the behaviour it
expects, and records what it saw::

    def test_x(fault):
        row = fault("network", "connection refused", "FAIL_DSS_CONNECT; no file left")
        ...
        row.saw(f"{rec['reason']}; files left: {n}")

The row's verdict is the test's own outcome (a failed assertion is a failed
row).  With ``VASCO_FAULT_REPORT=PATH`` in the environment the session
writes the table as Markdown to PATH (``scripts/test.sh`` writes
``docs/faults.md``); only a run of the whole fault suite does, so a partial
run never overwrites it with a partial table.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
from dataclasses import dataclass, field
from pathlib import Path

import pytest

#: Order of the areas in the table.
AREAS = ("network", "files", "tools", "process", "concurrency", "parameters", "security")


@dataclass
class FaultRow:
    area: str
    fault: str
    expected: str
    test: str
    observed: list[str] = field(default_factory=list)
    outcome: str = "not run"

    def saw(self, text: str) -> None:
        """Add what the pipeline did (several calls are joined with '; ')."""
        self.observed.append(str(text))


ROWS: list[FaultRow] = []
_COLLECTED: set[str] = set()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):  # type: ignore[no-untyped-def]
    outcome = yield
    rep = outcome.get_result()
    if rep.when == "call" or (rep.when == "setup" and rep.outcome != "passed"):
        item._fault_outcome = rep.outcome  # type: ignore[attr-defined]


def pytest_collection_modifyitems(items):  # type: ignore[no-untyped-def]
    for item in items:
        if "fault" in getattr(item, "fixturenames", ()):
            _COLLECTED.add(item.nodeid)


@pytest.fixture
def fault(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    rows: list[FaultRow] = []

    def make(area: str, name: str, expected: str) -> FaultRow:
        if area not in AREAS:
            raise ValueError(f"unknown fault area {area!r}")
        row = FaultRow(area, name, expected, request.node.nodeid)
        rows.append(row)
        ROWS.append(row)
        return row

    yield make
    for row in rows:
        row.outcome = getattr(request.node, "_fault_outcome", "passed")


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def write_report(path: Path) -> None:
    ok = sum(r.outcome == "passed" for r in ROWS)
    lines = [
        "# Fault-injection results",
        "",
        "Written by the test suite itself (`tests/test_faults.py`, `tests/faultlog.py`) on its last full run:",
        f"{_dt.datetime.now(_dt.UTC).strftime('%Y-%m-%d %H:%M UTC')}, Python {platform.python_version()}.",
        f'**{ok} of {len(ROWS)} faults behaved as expected.** Each row is one test; "observed" is what',
        "the pipeline did in that run, and the verdict is the test's outcome.",
        "",
        "| area | fault | expected | observed | verdict |",
        "|---|---|---|---|---|",
    ]
    for r in sorted(ROWS, key=lambda r: (AREAS.index(r.area), r.test)):
        verdict = "ok" if r.outcome == "passed" else f"**{r.outcome.upper()}**"
        lines.append(
            f"| {r.area} | {_cell(r.fault)} | {_cell(r.expected)} | {_cell('; '.join(r.observed) or '-')} | {verdict} |"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text("\n".join(lines) + "\n")
    os.replace(tmp, path)


def pytest_sessionfinish(session, exitstatus):  # type: ignore[no-untyped-def]
    target = os.environ.get("VASCO_FAULT_REPORT")
    ran = {r.test for r in ROWS}
    if target and ROWS and _COLLECTED and _COLLECTED <= ran:
        write_report(Path(target))

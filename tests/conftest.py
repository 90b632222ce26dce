"""Shared test fixtures: paths to the real reference data beside the repo; headless Chromium for the report pages."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from vasco.sources.dss import DSS_URL_ENV
from vasco.sources.skybot import SKYBOT_URL_ENV
from vasco.sources.supercosmos import SUPERCOSMOS_URL_ENV
from vasco.sources.vizier import VIZIER_URL_ENV
from vasco.sources.xmatch import XMATCH_URL_ENV

if TYPE_CHECKING:
    from playwright.sync_api import Browser, ConsoleMessage, Error, Page, ViewportSize

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


# --------------------------------------------------------------------------- headless Chromium (Playwright)

#: Viewport of the report-page tests and their screenshots, CSS px.
VIEWPORT: ViewportSize = {"width": 1280, "height": 1600}

#: True once a report page has finished its own start-up (the pages set ``body.dataset.ready``).
PAGE_READY_JS = "() => !!document.body && document.body.dataset.ready === '1'"


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    """Debian's ``chromium`` (scripts/install.sh installs it), driven by Playwright; no browser download.

    Skips the test when ``chromium`` is not on PATH.
    """
    binary = shutil.which("chromium")
    if binary is None:
        pytest.skip("chromium is not on PATH: apt-get install chromium (scripts/install.sh installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=binary)
        yield browser
        browser.close()


@dataclass
class OpenPage:
    """A page loaded in Chromium, and every console message, uncaught exception and browser log entry so far.

    ``messages`` grows while the page runs; each is ``"<level>: <text> (<url>:<line>)"``
    (level ``error``, ``warning``, ``info``, ``log``, ``debug`` ...).
    """

    page: Page
    messages: list[str]

    def problems(self) -> list[str]:
        """The messages at level warning or error."""
        return [m for m in self.messages if m.startswith(("warning:", "error:"))]


def _console_text(msg: ConsoleMessage) -> str:
    level = "error" if msg.type == "assert" else msg.type
    where = msg.location
    return f"{level}: {msg.text} ({where.get('url', '')}:{where.get('lineNumber', -1) + 1})"


def _exception_text(err: Error) -> str:
    return f"error: {err.name}: {err.message}"


@pytest.fixture
def open_page(chromium: Browser) -> Iterator[Callable[..., OpenPage]]:
    """``open_page(path, query="", wait_ready=True)``: a local page loaded in a fresh browser context.

    The call returns once the page's load event fired and, with ``wait_ready``,
    its ``body.dataset.ready`` became ``"1"``; ``query`` (``"eager=1"``) is
    appended to the file URL.  The contexts are closed after the test.
    """
    contexts = []

    def load(path: str | Path, *, query: str = "", wait_ready: bool = True) -> OpenPage:
        context = chromium.new_context(viewport=VIEWPORT)
        context.set_default_timeout(60_000)
        contexts.append(context)
        page = context.new_page()
        opened = OpenPage(page, [])
        page.on("console", lambda msg: opened.messages.append(_console_text(msg)))
        page.on("pageerror", lambda err: opened.messages.append(_exception_text(err)))
        url = Path(path).resolve().as_uri()
        page.goto(f"{url}?{query}" if query else url)
        if wait_ready:
            page.wait_for_function(PAGE_READY_JS)
        # One round trip to the page: every message it sent before has arrived.
        page.evaluate("0")
        return opened

    yield load
    for context in contexts:
        context.close()

"""Screenshots of a survey's report pages (``docs/report/``), with headless Chromium.

    .venv/bin/vasco survey --sky synthetic --tiles 4 --seed 1 --out runs/demo
    .venv/bin/python scripts/screenshot_report.py runs/demo --out docs/report

Saves ``gallery.png`` (the candidate cards with their stamps) and
``index.png`` (the top of the report page), 1280 x 1600 px, once each page
has set ``body.dataset.ready``.  Drives Debian's ``chromium`` with Playwright,
as the report tests do (``tests/conftest.py``).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("survey", help="a survey folder with report/ (vasco report DIR builds it)")
    p.add_argument("--out", default=str(REPO / "docs" / "report"), help="where the PNGs go")
    p.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    a = p.parse_args()
    report = Path(a.survey) / "report"
    if not (report / "gallery.html").is_file():
        print(f"error: {report}/gallery.html does not exist: run `vasco report {a.survey}` first", file=sys.stderr)
        return 2
    if not Path(a.chromium).exists():
        print(f"error: no Chromium at {a.chromium}: apt-get install chromium", file=sys.stderr)
        return 2
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=a.chromium)
        page = browser.new_page(viewport={"width": 1280, "height": 1600})
        for name in ("gallery", "index"):
            page.goto((report / f"{name}.html").resolve().as_uri())
            page.wait_for_function("() => document.body.dataset.ready === '1'", timeout=60_000)
            page.screenshot(path=out / f"{name}.png")
            print(f"wrote {out / (name + '.png')}")
        browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

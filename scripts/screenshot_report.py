"""Screenshots of a survey's report pages (``docs/report/``), with headless Chromium.

    .venv/bin/vasco survey --sky synthetic --tiles 4 --seed 1 --out runs/demo
    .venv/bin/python scripts/screenshot_report.py runs/demo --out docs/report

Saves ``gallery.png`` (the candidate cards with their stamps) and
``index.png`` (the top of the report page).  Uses ``tests/browser.py``, the
same Chromium driver the report tests use (Debian ``chromium``).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import testlib  # scripts/, the script's own folder, is first on the import path

REPO = Path(__file__).resolve().parents[1]
browser = testlib.load("browser")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("survey", help="a survey folder with report/ (vasco report DIR builds it)")
    p.add_argument("--out", default=str(REPO / "docs" / "report"), help="where the PNGs go")
    a = p.parse_args()
    report = Path(a.survey) / "report"
    if not (report / "gallery.html").is_file():
        print(f"error: {report}/gallery.html does not exist: run `vasco report {a.survey}` first", file=sys.stderr)
        return 2
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for page in ("gallery", "index"):
            browser.screenshot(report / f"{page}.html", out / f"{page}.png", Path(tmp))
            print(f"wrote {out / (page + '.png')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

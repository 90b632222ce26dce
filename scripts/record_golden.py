"""Rewrite the golden outputs in tests/golden/ (see tests/goldens.py).

Run after a change that is meant to alter the pipeline's outputs, then read
``git diff tests/golden`` and explain it in the commit message::

    .venv/bin/python scripts/record_golden.py            # both references
    .venv/bin/python scripts/record_golden.py m101       # one of synthetic8, m101
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import testlib  # scripts/, the script's own folder, is first on the import path

ROOT = Path(__file__).resolve().parents[1]
M101 = ROOT.parent / "shared" / "data" / "real" / "dss1red_XE133_m101.fits"


def main(argv: list[str]) -> int:
    goldens = testlib.load("goldens")

    which = argv or ["synthetic8", "m101"]
    with tempfile.TemporaryDirectory() as tmp:
        for name in which:
            if name == "synthetic8":
                folder = goldens.run_synthetic8(Path(tmp) / "synthetic8")
            elif name == "m101":
                folder = goldens.run_m101(M101, Path(tmp) / "m101")
            else:
                print(f"record_golden: unknown reference {name!r} (synthetic8, m101)", file=sys.stderr)
                return 2
            print(f"{name}: {goldens.record(folder, name)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

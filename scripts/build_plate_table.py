"""Build the shipped POSS-I E plate table ``vasco/data/poss1e_plates.json.gz``.

Reads the 932 DSS1 POSS-I E full-plate headers
(``shared/data/plates/poss1e_plate_headers.jsonl.gz``, one
``{"region": ..., "header": {...}}`` object per line) and writes one record per
plate::

    {"region", "label", "plate_id", "date_obs", "epoch", "ra", "dec",
     "naxis1", "naxis2", "header": {KEYWORD: value, ...}}

``epoch`` is the Julian epoch (decimal year) of ``DATE-OBS`` as computed by
:func:`vasco.plates.header.iso_to_jyear`; ``ra``/``dec`` are the plate centre
(the tangent point of the plate polynomial, from ``PLTRAH``/``PLTRAM``/
``PLTRAS`` and ``PLTDECSN``/``PLTDECD``/``PLTDECM``/``PLTDECS``) in float64
degrees.  ``header`` keeps every full-plate header keyword except the
structural ones (``SIMPLE``, ``BITPIX``, ``NAXIS``, ``DATE``) and the unused
second coefficient set ``AMDREX*``/``AMDREY*``; ``NAXIS1``/``NAXIS2`` are kept.

The output bytes are deterministic (sorted by region, compact JSON, gzip with
``mtime=0``), so rebuilding from the same input gives an identical file.

Usage::

    python scripts/build_plate_table.py [HEADERS_JSONL_GZ] [--output PATH]
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
from pathlib import Path
from typing import Any

from vasco.plates.header import iso_to_jyear
from vasco.plates.model import SOLUTION_KEYWORDS, PlateSolution

REPO = Path(__file__).resolve().parents[1]
DEFAULT_INPUT = Path(__file__).resolve().parents[2] / "shared/data/plates/poss1e_plate_headers.jsonl.gz"
DEFAULT_OUTPUT = REPO / "vasco/data/poss1e_plates.json.gz"

FORMAT = "vasco-poss1e-plates"
FORMAT_VERSION = 1
_DROP = re.compile(r"^(SIMPLE|BITPIX|NAXIS|DATE|AMDRE[XY]\d+)$")
_REQUIRED = (
    "REGION",
    "PLTLABEL",
    "PLATEID",
    "DATE-OBS",
    "SURVEY",
    "EMULSION",
    "EXPOSURE",
    "PLTSCALE",
    "NAXIS1",
    "NAXIS2",
    "PPO1",
    "PPO2",
    "PPO4",
    "PPO5",
    *SOLUTION_KEYWORDS,
    *(f"AMDX{i}" for i in range(14, 21)),
    *(f"AMDY{i}" for i in range(14, 21)),
)


def build_record(region: str, header: dict[str, Any]) -> dict[str, Any]:
    """One table record from a full-plate header; raises ``ValueError`` if unusable."""
    missing = [k for k in _REQUIRED if k not in header]
    if missing:
        raise ValueError(f"plate {region}: header lacks {', '.join(missing)}")
    if str(header["REGION"]).strip() != region:
        raise ValueError(f"plate {region}: REGION keyword is {header['REGION']!r}")
    if str(header["SURVEY"]).strip() != "POSSI-E":
        raise ValueError(f"plate {region}: SURVEY is {header['SURVEY']!r}, not 'POSSI-E'")
    for key in (*(f"AMDX{i}" for i in range(14, 21)), *(f"AMDY{i}" for i in range(14, 21))):
        if float(header[key]) != 0.0:
            raise ValueError(f"plate {region}: magnitude/colour term {key} = {header[key]} is not zero")
    solution = PlateSolution.from_header(header)
    date_obs = str(header["DATE-OBS"]).strip()
    kept = {k: (v.strip() if isinstance(v, str) else v) for k, v in header.items() if not _DROP.match(k)}
    kept["NAXIS1"] = int(header["NAXIS1"])
    kept["NAXIS2"] = int(header["NAXIS2"])
    return {
        "region": region,
        "label": str(header["PLTLABEL"]).strip(),
        "plate_id": str(header["PLATEID"]).strip(),
        "date_obs": date_obs,
        "epoch": iso_to_jyear(date_obs),
        "ra": solution.ra0,
        "dec": solution.dec0,
        "naxis1": int(header["NAXIS1"]),
        "naxis2": int(header["NAXIS2"]),
        "header": kept,
    }


def build_table(source: Path) -> bytes:
    """Return the gzipped JSON bytes of the plate table built from ``source``."""
    records: dict[str, dict[str, Any]] = {}
    with gzip.open(source, "rt", encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            entry = json.loads(line)
            region = str(entry["region"]).strip()
            if region in records:
                raise ValueError(f"{source}:{lineno}: duplicate plate {region}")
            records[region] = build_record(region, entry["header"])
    labels = [r["label"] for r in records.values()]
    if len(set(labels)) != len(labels):
        raise ValueError(f"{source}: plate labels are not unique")
    payload = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "source": (
            "DSS1 POSS-I E (red) full-plate headers, STScI/MAST, as exported in the public "
            "jannefi/vasco repository (metadata/plates/headers/); built by scripts/build_plate_table.py"
        ),
        "n_plates": len(records),
        "plates": [records[k] for k in sorted(records)],
    }
    text = json.dumps(payload, separators=(",", ":"), ensure_ascii=True, allow_nan=False) + "\n"
    return gzip.compress(text.encode("ascii"), compresslevel=9, mtime=0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", nargs="?", type=Path, default=DEFAULT_INPUT, help="plate headers (.jsonl.gz)")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="table to write (.json.gz)")
    args = parser.parse_args(argv)
    data = build_table(args.source)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.output.with_name(args.output.name + ".part")
    tmp.write_bytes(data)
    tmp.replace(args.output)
    print(f"wrote {args.output} ({len(data)} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

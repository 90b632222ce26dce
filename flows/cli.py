"""The ``vasco`` command.

    vasco survey --sky synthetic --tiles 4 --seed 1 --out DIR      (same as python flows/survey.py)
    vasco tile --fits FILE --catalog gaia=PATH [--catalog ps1=PATH] --out DIR
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

__all__ = ["main"]


def _tile(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        prog="vasco tile",
        description="Run the per-tile flow on a FITS cutout you have (a DSS cutout from anywhere, "
        "old GetImage headers included) with local catalogue files; writes tile.json, "
        "detections.parquet and candidates.parquet into --out.",
    )
    p.add_argument("--fits", required=True, help="the FITS cutout (POSS-I E)")
    p.add_argument("--catalog", action="append", required=True, metavar="NAME=PATH",
                   help="gaia=PATH or ps1=PATH: CSV, Parquet or HATS folder (Gaia archive or VizieR column names)")
    p.add_argument("--config", dest="config_file", help="JSON configuration file")
    p.add_argument("--out", required=True, help="output folder for this tile")
    a = p.parse_args(argv)

    from flows.survey import parse_catalog_files
    from vasco.config import VascoConfig

    try:
        if not Path(a.fits).is_file():
            raise ValueError(f"--fits {a.fits}: no such file")
        files = parse_catalog_files(a.catalog)
        base = VascoConfig.read(Path(a.config_file)) if a.config_file else VascoConfig()
        data = base.model_dump()
        data["sky"] = "dss"  # real data: the file stands in for a DSS cutout
        data["catalogs"] = {**data["catalogs"], "source": "local", "local": files}
        # Only the catalogues given veto a detection.
        data["matching"] = {**data["matching"], "catalogs": [c for c in ("gaia", "ps1") if c in files]}
        cfg = VascoConfig.model_validate(data)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    from flows.tile import tile_flow

    rec = tile_flow(out=a.out, fits=str(Path(a.fits).resolve()), config=cfg)
    print(json.dumps({k: rec[k] for k in ("tile_id", "status", "reason", "plate", "funnel")}, indent=2))
    return 0 if rec["status"] == "ok" else 1


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = {"survey": "run a survey (see vasco survey --help)", "tile": "run one FITS file (see vasco tile --help)"}
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in commands:
        print("usage: vasco {survey,tile} ...\n")
        for name, text in commands.items():
            print(f"  {name:8s} {text}")
        return 0 if argv[:1] in ([], ["-h"], ["--help"]) else 2
    if argv[0] == "survey":
        from flows.survey import main as survey_main

        return survey_main(argv[1:])
    return _tile(argv[1:])


if __name__ == "__main__":
    sys.exit(main())

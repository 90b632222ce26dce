"""The ``vasco`` command.

vasco survey --sky synthetic --tiles 4 --seed 1 --out DIR      (same as python flows/survey.py)
vasco tile --fits FILE --catalog gaia=PATH [--catalog ps1=PATH] --out DIR [--orchestration auto|prefect|none]
vasco compare DIR --published FILE.csv [--match-radius 5]
vasco status DIR                      (tiles by status, failed ones by reason, not run yet, untrusted astrometry)
vasco clean DIR [--dry-run]           (remove intermediate files, keep catalogues)
vasco reset DIR --tile ID [--step S]  (forget a tile, or one step of it)
vasco report DIR [--force]            (rebuild the QC plots, MOC, gallery and DIR/report/index.html)
vasco epochs DIR [--skybot auto|synthetic|service]  (which plate dates the asteroids confirm)
vasco config show [--config FILE]     (the effective configuration, defaults included)
vasco config reference                (every parameter: default and meaning, as docs/configuration.md)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from vasco.config import VascoConfig
from vasco.config_merge import build_config, read_config, tile_config

__all__ = ["main", "survey_main", "survey_parser", "config_from_args", "parse_catalog_files", "usage_error"]


def usage_error(exc: ValueError) -> int:
    """Print a bad-input error on one line (pydantic's as one entry per parameter); return exit status 2."""
    from pydantic import ValidationError

    from vasco.config import describe_validation_error

    msg = describe_validation_error(exc) if isinstance(exc, ValidationError) else str(exc)
    print(f"error: {msg}", file=sys.stderr)
    return 2


def parse_catalog_files(items: list[str] | None) -> dict[str, str]:
    """``["gaia=PATH", ...]`` -> ``{"gaia": "PATH"}`` (the ``--catalog`` options).

    Raises
    ------
    ValueError
        Naming a bad item, or a file that does not exist.
    """
    out: dict[str, str] = {}
    for item in items or []:
        name, sep, path = item.partition("=")
        if not sep or name not in ("gaia", "ps1") or not path:
            raise ValueError(f"--catalog {item!r}: expected gaia=PATH or ps1=PATH")
        if not Path(path).exists():
            raise ValueError(f"--catalog {item!r}: {path} does not exist")
        out[name] = path
    return out


def _default(name: str) -> str:
    """Help-text tail naming where a value comes from when its option is not given."""
    value: Any = VascoConfig()
    for part in name.split("."):
        value = getattr(value, part)
    return f" (default: the --config file's {name}, else {value})"


def survey_parser(prog: str = "vasco survey") -> argparse.ArgumentParser:
    """The options of ``vasco survey`` (and ``python flows/survey.py``)."""
    p = argparse.ArgumentParser(
        prog=prog,
        description="Run a VASCO survey: POSS-I tiles -> vanishing-source candidates. Values come from the "
        "configuration model's defaults, then the --config file, then the options given here.",
    )
    p.add_argument(
        "--sky",
        choices=["synthetic", "dss"],
        default=None,
        help="where tiles come from: the offline synthetic sky, or STScI DSS (POSS-I red; "
        f"URL from $VASCO_DSS_URL){_default('sky')}",
    )
    p.add_argument(
        "--catalogs",
        choices=["auto", "synthetic", "vizier", "xmatch", "local"],
        default=None,
        help="where the Gaia/PS1 catalogues come from (default auto: synthetic on the synthetic "
        "sky, VizieR otherwise; URLs from $VASCO_VIZIER_URL, $VASCO_XMATCH_URL)",
    )
    p.add_argument(
        "--catalog",
        action="append",
        metavar="NAME=PATH",
        help="a local catalogue file (CSV, Parquet or HATS folder) for gaia or ps1; repeatable",
    )
    p.add_argument(
        "--tiles", type=int, default=None, help=f"number of tile positions to sample{_default('survey.tiles')}"
    )
    p.add_argument(
        "--seed", type=int, default=None, help=f"seed for sampling and the synthetic sky{_default('survey.seed')}"
    )
    p.add_argument(
        "--size-arcmin",
        type=float,
        default=None,
        help=f"tile width and height in arcmin{_default('survey.size_arcmin')}",
    )
    p.add_argument(
        "--workers", type=int, default=None, help=f"tiles processed at once, one per core{_default('survey.workers')}"
    )
    p.add_argument("--positions", help="CSV file of tile centres (columns ra, dec in degrees) instead of sampling")
    p.add_argument(
        "--config",
        dest="config_file",
        help="configuration file: JSON (see config.json of any run), TOML (.toml) or YAML (.yaml)",
    )
    p.add_argument(
        "--fanout",
        choices=["local", "deployment"],
        default="local",
        help="run tiles in this process (local, default) or as flow runs of the tile deployment "
        "on its work pool (deployment; needs a Prefect server and `prefect deploy`)",
    )
    p.add_argument(
        "--tile-deployment",
        default="vasco-tile/tile",
        help="the tile deployment for --fanout deployment (default vasco-tile/tile)",
    )
    p.add_argument(
        "--batch", type=int, default=None, help="run at most this many of the tiles not yet done (default: all)"
    )
    p.add_argument(
        "--retry-failed",
        action="store_true",
        help="run only the tiles whose last run failed (their tile.json says failed); "
        "summary.json lists failed tiles by reason (failed_tiles)",
    )
    p.add_argument(
        "--dry-run", action="store_true", help="orchestration only: no pixels are read or made (for measuring overhead)"
    )
    p.add_argument("--out", required=True, help="output folder, or an fsspec URL such as s3://bucket/prefix")
    return p


def config_from_args(args: argparse.Namespace) -> VascoConfig:
    """The configuration a parsed command line asks for (options not given are ``None``: not applied)."""
    return build_config(
        args.sky,
        args.tiles,
        args.seed,
        args.size_arcmin,
        args.workers,
        args.config_file,
        args.catalogs,
        parse_catalog_files(args.catalog),
    )


def survey_main(argv: list[str] | None = None, prog: str = "vasco survey") -> int:
    """``vasco survey`` (``python flows/survey.py``): check the options, run the survey flow, print the totals.

    Returns
    -------
    int
        The exit status: 0, or 2 for bad input (before any work starts).
    """
    args = survey_parser(prog).parse_args(argv)
    try:
        # Validate everything before any work starts.
        files = parse_catalog_files(args.catalog)
        cfg = config_from_args(args)
        if not args.dry_run:
            from vasco.sources.xmatch import check_configured_tables

            check_configured_tables(cfg)  # an unknown XMatch table is refused before any work
        if args.positions:
            from vasco.sky.sampling import read_positions

            read_positions(Path(args.positions))
        if args.batch is not None and args.batch < 1:
            raise ValueError(f"--batch must be at least 1, got {args.batch}")
        from vasco.roots import check_writable

        check_writable(args.out)
    except ValueError as exc:
        return usage_error(exc)
    summary = None
    if not args.retry_failed and not args.dry_run:
        # Before Prefect starts: a survey done and published with this configuration is left as it is.
        from vasco.resume import planned_positions, published_and_current

        summary = published_and_current(args.out, cfg, planned_positions(cfg, args.positions)[0])
        if summary is not None:
            print(f"VASCO: {args.out}: every tile is done and published with this configuration; nothing to do")
            index = Path(args.out) / "report" / "index.html"
            if cfg.report.after_survey and index.is_file():
                summary["report"] = str(index.resolve())
    if summary is None:
        from flows.survey import survey_flow

        params = {k: v for k, v in vars(args).items() if k != "catalog"}
        summary = survey_flow(**params, catalog_files=files or None)
    t = summary["tiles"]
    print(
        f"VASCO: {t['processed']}/{t['planned']} tiles processed ({t['rejected']} rejected, {t['failed']} failed), "
        f"{summary['detections']} detections, {summary['candidates']} candidates -> {args.out}"
    )
    if summary.get("report"):
        print(f"report: {summary['report']}  (vasco report {args.out} rebuilds it)")
    inj = summary.get("injection")
    if inj:

        def fmt(v: Any) -> str:
            return "n/a" if v is None else f"{v:.3f}"

        print(
            f"synthetic injection: completeness {fmt(inj['completeness'])} "
            f"({fmt(inj.get('completeness_searchable'))} outside the bright-star zones), "
            f"purity {fmt(inj['purity'])}; recoverable transients lost by stage {inj.get('lost_by_stage')}; "
            f"false candidates by class {inj['false_by_class']}"
        )
    return 0


def _tile(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        prog="vasco tile",
        description="Run the per-tile flow on a FITS cutout you have (a DSS cutout from anywhere, "
        "old GetImage headers included) with local catalogue files; writes tile.json, "
        "detections.parquet and candidates.parquet into --out.",
    )
    p.add_argument("--fits", required=True, help="the FITS cutout (POSS-I E)")
    p.add_argument(
        "--catalog",
        action="append",
        required=True,
        metavar="NAME=PATH",
        help="gaia=PATH or ps1=PATH: CSV, Parquet or HATS folder (Gaia archive or VizieR column names)",
    )
    p.add_argument("--config", dest="config_file", help="configuration file: JSON, TOML (.toml) or YAML (.yaml)")
    p.add_argument("--out", required=True, help="output folder for this tile")
    p.add_argument(
        "--orchestration",
        choices=["auto", "prefect", "none"],
        default="auto",
        help="prefect: run the tile flow (each step a task run, shown in the Prefect UI); none: run the same "
        "steps in this process, no Prefect server; auto (default): prefect when a Prefect server is "
        "configured (PREFECT_API_URL, or the active Prefect profile), none otherwise. The outputs are the same.",
    )
    a = p.parse_args(argv)

    try:
        if not Path(a.fits).is_file():
            raise ValueError(f"--fits {a.fits}: no such file")
        cfg = tile_config(parse_catalog_files(a.catalog), a.config_file)
        from vasco.roots import check_writable

        check_writable(a.out)
    except ValueError as exc:
        return usage_error(exc)

    fits_file = Path(a.fits).resolve()
    from vasco.chain import finished_file_tile

    done = finished_file_tile(Path(a.out), fits_file, cfg)
    if done is not None:
        print(f"{a.out}: already done from {fits_file} with this configuration; nothing to do", file=sys.stderr)
        rec = done
    elif a.orchestration == "prefect" or (a.orchestration == "auto" and prefect_server_configured()):
        from flows.tile import tile_flow

        rec = tile_flow(out=a.out, fits=str(fits_file), config=cfg)
    else:
        rec = _tile_in_process(Path(a.out), fits_file, cfg)
    shown = {k: rec[k] for k in ("tile_id", "status", "reason", "plate", "funnel")}
    ast = rec.get("astrometry") or {}
    if "trusted" in ast:
        shown["astrometry"] = {
            k: ast.get(k) for k in ("trusted", "trust_reason", "median_residual_arcsec", "match_fraction")
        }
    print(json.dumps(shown, indent=2))
    return 0 if rec["status"] == "ok" else 1


def prefect_server_configured() -> bool:
    """Is a Prefect server configured (``PREFECT_API_URL`` in the environment or the active profile)?

    Without one, a Prefect flow run starts a temporary local server (about
    10 s) and stops it when the command ends.
    """
    import os

    if os.environ.get("PREFECT_API_URL"):
        return True
    from prefect.settings import get_current_settings

    return bool(get_current_settings().api.url)


def _tile_in_process(out: Path, fits_file: Path, cfg: VascoConfig) -> dict[str, Any]:
    """``vasco tile`` without Prefect: the tile flow's chain of library steps, in this process."""
    import logging

    from vasco.chain import epochs_verdicts, library_step, run_tile
    from vasco.roots import open_root

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s.%(msecs)03d | %(levelname)-7s | %(message)s", datefmt="%H:%M:%S"
    )
    log = logging.getLogger("vasco.tile")
    verdicts = epochs_verdicts(open_root(str(out)), cfg)
    return run_tile(
        None, None, out, cfg, steps=library_step, log=log, fits_path=fits_file, tile_dir=out, verdicts=verdicts
    )


def _compare(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        prog="vasco compare",
        description="Compare a finished survey with a published list of candidates (CSV with RA/Dec in "
        "degrees): recall of our detections and candidates at 1, 2, 3, 5 and 10 arcsec over the sky the "
        "survey covered, the funnel stage that removed each published source we detected, and our "
        "candidates the list does not have. Writes DIR/compare/<list>.json and <list>.csv.",
    )
    p.add_argument("survey", help="the survey folder (--out of vasco survey)")
    p.add_argument("--published", required=True, help="CSV of published positions (ra,dec or RA,DEC columns)")
    p.add_argument("--match-radius", type=float, default=5.0, help="arcsec (default 5)")
    a = p.parse_args(argv)

    import pandas as pd

    from vasco.io import write_json_atomic
    from vasco.outputs import read_tile_record
    from vasco.qc.compare import compare_published, read_published

    out = Path(a.survey)
    try:
        if not (out / "detections.parquet").is_file():
            raise ValueError(f"{out}: no detections.parquet (is this a finished survey folder?)")
        published = read_published(Path(a.published))
        tiles = []
        for path in sorted((out / "tiles").glob("*/tile.json")):
            rec = read_tile_record(path)
            if rec.status == "ok" and rec.centre is not None:
                size = rec.size_arcmin if rec.size_arcmin is not None else 30.0
                tiles.append({"tile_id": rec.tile_id, "ra": rec.centre.ra, "dec": rec.centre.dec, "size_arcmin": size})
        res = compare_published(
            published, pd.read_parquet(out / "detections.parquet"), tiles, match_radius_arcsec=a.match_radius
        )
    except ValueError as exc:
        return usage_error(exc)
    name = Path(a.published).stem
    rows, ours = res.pop("rows"), res.pop("ours_only")
    res["published_file"] = str(a.published)
    dest = out / "compare"
    write_json_atomic(dest / f"{name}.json", {**res, "ours_only": ours.to_dict(orient="records")})
    from vasco.io import atomic_path

    with atomic_path(dest / f"{name}.csv", suffix=".csv") as tmp:
        rows.to_csv(tmp, index=False)
    print(
        f"{name}: {res['published_in_footprint']} of {res['published_total']} published positions lie in "
        f"the {len(tiles)} processed tiles"
    )
    print("recall      " + "  ".join(f'{r:>5s}"' for r in res["recall_detections"]))
    for key in ("recall_detections", "recall_candidates"):
        vals = ["  n/a " if v is None else f"{v:6.3f}" for v in res[key].values()]
        print(f"{key.split('_')[1]:11s} " + " ".join(vals))
    print(f'where they went (nearest detection within {a.match_radius}"): {res["removed_by_stage"]}')
    if "neowise_split" in res:
        print(f"NEOWISE split: {res['neowise_split']}")
    print(f"our candidates: {res['our_candidates']}, not in the list: {res['our_candidates_not_published']}")
    print(f"written: {dest / (name + '.json')}, {dest / (name + '.csv')}")
    return 0


def _status(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        prog="vasco status",
        description="Progress of a survey folder: tiles by "
        "status, rejected and failed tiles by reason token, tiles not run yet, processed "
        "tiles whose astrometry is not trusted (by reason token).",
    )
    p.add_argument("survey", help="the survey folder (--out of vasco survey)")
    a = p.parse_args(argv)
    from vasco.survey_tree import survey_status

    try:
        st = survey_status(Path(a.survey))
    except ValueError as exc:
        return usage_error(exc)
    print("\n".join(st.lines()))
    return 0


def _clean(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        prog="vasco clean",
        description="Remove a survey's intermediate files (each "
        "tile's work/ folder and Prefect's result cache .vasco-cache/); catalogues, tile "
        "and step records, cutouts, reference catalogues and QC plots stay.",
    )
    p.add_argument("survey", help="the survey folder")
    p.add_argument("--dry-run", action="store_true", help="list what would be removed, remove nothing")
    a = p.parse_args(argv)
    from vasco.survey_tree import clean_survey

    try:
        paths, size = clean_survey(Path(a.survey), dry_run=a.dry_run)
    except ValueError as exc:
        return usage_error(exc)
    verb = "would remove" if a.dry_run else "removed"
    print(f"{verb} {len(paths)} folders/files, {size / 2**20:.1f} MiB")
    return 0


def _reset(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        prog="vasco reset",
        description="Forget a tile (its folder goes) or one step "
        "of it (the step record and tile.json go), so the next survey run does it again.",
    )
    p.add_argument("survey", help="the survey folder")
    p.add_argument("--tile", required=True, help="the tile id, e.g. t132.8250+11.8000")
    p.add_argument("--step", help="only this step (e.g. psf, pass2, match, vetoes)")
    a = p.parse_args(argv)
    from vasco.survey_tree import reset_tile

    try:
        removed = reset_tile(Path(a.survey), a.tile, a.step)
    except ValueError as exc:
        return usage_error(exc)
    for path in removed:
        print(f"removed {path}")
    return 0


def _report(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        prog="vasco report",
        description="Rebuild a survey's report from what is on "
        "disk: QC plots (survey and per tile), the coverage MOC and sky map, the candidate "
        "gallery with POSS-I stamps, and DIR/report/index.html, which ties them together. "
        "Open that file in a browser; no server is needed.",
    )
    p.add_argument("survey", help="the survey folder (--out of vasco survey; it must have summary.json)")
    p.add_argument(
        "--force", action="store_true", help="redraw per-tile plots and stamps even where the tile has not changed"
    )
    a = p.parse_args(argv)
    from vasco.report.build import build_report

    try:
        man = build_report(Path(a.survey), force=a.force)
    except ValueError as exc:
        return usage_error(exc)
    root = Path(a.survey)
    print(f"report: {root / man['index']}")
    print(f"gallery: {root / man['gallery']} ({man['candidates']} candidates, {man['stamps']} stamps)")
    print(
        f"coverage: {root / man['moc']} ({man['tiles']['ok']} tiles, {man['coverage_deg2']:.2f} deg2), "
        f"sky map {root / man['sky']}"
    )
    print(
        f"plots: {len(man['plots'])} survey plots in {root / 'report' / 'plots'}, "
        f"{len(man['tile_plots'])} tile plots (tiles/<id>/qc/tile.png); {man['timings']['total_s']:.1f} s"
    )
    return 0


def _epochs(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        prog="vasco epochs",
        description="Decide each plate's date with the sky: for every plate of a finished survey, ask SkyBoT "
        "for the known minor planets over the plate's processed tiles at mid-exposure of each candidate "
        "date (the plate table's, the cutout header's, and the header's shifted by "
        "plates.epochs.day_offsets days) and count the predicted positions that land on a detection "
        "(within plates.epochs.radius_arcsec). The date with clearly most hits wins. Writes DIR/epochs.csv "
        "(one row per plate) and DIR/epochs.json (counts per candidate and tile); a survey run with "
        "plates.date_source = 'epochs' then uses each plate's chosen date.",
    )
    p.add_argument("survey", help="the survey folder (--out of vasco survey)")
    p.add_argument(
        "--config",
        dest="config_file",
        help="configuration file (default: the survey's own DIR/config.json); plates.* is used",
    )
    p.add_argument(
        "--skybot",
        choices=["auto", "synthetic", "service"],
        default="auto",
        help="where predictions come from: the synthetic sky's SkyBoT (the survey's), or the "
        "SkyBoT service (VASCO_SKYBOT_URL or sources.skybot.base_url); auto: synthetic for a "
        "synthetic-sky survey (default)",
    )
    a = p.parse_args(argv)
    from vasco.epochs import epochs_table, service_skybot, survey_epochs, synthetic_skybot, write_epochs

    root = Path(a.survey)
    try:
        if not (root / "tiles").is_dir():
            raise ValueError(f"{root}: no tiles/ folder (is this a survey folder?)")
        if a.config_file:
            cfg = VascoConfig.read(Path(a.config_file))
        elif (root / "config.json").is_file():
            cfg = VascoConfig.read(root / "config.json")
        else:
            cfg = VascoConfig()
        kind = a.skybot if a.skybot != "auto" else ("synthetic" if cfg.sky == "synthetic" else "service")
        ask = synthetic_skybot if kind == "synthetic" else service_skybot(cfg)
        result = survey_epochs(root, cfg, ask, kind, log=print)
    except ValueError as exc:
        return usage_error(exc)
    js, csv = write_epochs(root, result)
    table = epochs_table(result)
    cols = ["region", "n_tiles", "date_obs_header", "date_obs_table", "candidates", "verdict", "date_obs"]
    print(table[cols].to_string(index=False))
    print(f"written: {csv}, {js}")
    if (root / "report" / "index.html").is_file():
        from vasco.report.build import build_report

        try:
            man = build_report(root)
            print(f"report: {root / man['index']} (with the plate-dates table)")
        except ValueError as exc:
            print(f"warning: the report was not rebuilt: {exc}", file=sys.stderr)
    return 0


def _config(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        prog="vasco config",
        description="Configuration: `vasco config show` prints "
        "the effective configuration (a file's values over the defaults) as JSON; "
        "`vasco config reference` prints every parameter with its default and meaning "
        "(Markdown, as in docs/configuration.md).",
    )
    p.add_argument("action", choices=["show", "reference"])
    p.add_argument("--config", dest="config_file", help="a configuration file: JSON, TOML (.toml) or YAML (.yaml)")
    a = p.parse_args(argv)
    from vasco.config import config_reference

    if a.action == "reference":
        print(config_reference(), end="")
        return 0
    try:
        cfg = read_config(a.config_file)
    except ValueError as exc:
        return usage_error(exc)
    print(cfg.to_json())
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = {
        "survey": "run a survey (see vasco survey --help)",
        "tile": "run one FITS file (see vasco tile --help)",
        "compare": "compare a survey with a published list (see vasco compare --help)",
        "status": "progress and failures of a survey folder",
        "clean": "remove a survey's intermediate files, keep its catalogues",
        "reset": "forget a tile or one of its steps",
        "report": "rebuild a survey's QC plots, coverage map, candidate gallery and report page",
        "epochs": "decide each plate's date by the asteroids on it (DIR/epochs.csv)",
        "config": "show the effective configuration, or the reference of every parameter",
    }
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in commands:
        print("usage: vasco {" + ",".join(commands) + "} ...\n")
        for name, text in commands.items():
            print(f"  {name:8s} {text}")
        return 0 if argv[:1] in ([], ["-h"], ["--help"]) else 2
    if argv[0] == "survey":
        return survey_main(argv[1:], prog="vasco survey")
    handlers = {
        "compare": _compare,
        "status": _status,
        "clean": _clean,
        "reset": _reset,
        "config": _config,
        "tile": _tile,
        "report": _report,
        "epochs": _epochs,
    }
    return handlers[argv[0]](argv[1:])


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark: per-tile cost against the SExtractor + PSFEx floor, and both cores busy.

For ``--tiles`` synthetic tiles (sampled with ``--seed``), in one run:

1. the survey flow with one worker (``--workers 1``): each tile's wall time,
   the time of each step (from the step records), tiles per hour and the
   peak memory of one process (the survey's Python or a tool it ran);
2. the same survey with ``--workers`` workers (default 2, one per core):
   tiles per hour, and the speed-up over one worker;
3. the same survey with the full pass 2 (``extraction.psf_fit_scope = 'all'``,
   SPREAD_MODEL for every detection): its candidates and funnels must be
   identical to run 1's on every tile.  Its detections (SPREAD_MODEL for
   all) also give the effect of clipping FWHM/ELONGATION before the
   SPREAD_MODEL cut rather than after it (the replications' order): how many
   detections would reach the later vetoes either way;
4. on each tile's image, bare SExtractor pass 1 + PSFEx + pass 2 (as the flow
   runs it, without the PSF model) + the PSF fit of the detections the flow
   fitted + the full pass 2 (the tools alone, no Python around them), one
   after another, and the floor (``scripts/floor.py``: SExtractor then PSFEx
   with their Debian default settings);
5. the same for the real M101 cutout, run as ``vasco tile --fits`` with a
   Gaia file made from its own pass 1 (``tests/goldens.py`` ``run_m101``);
   with no Prefect server configured that command runs the tile's steps in
   its own process (``vasco/chain.py``).

It prints one row per tile (detections, the bare times, the flow's time
without acquiring the tile, and that time over bare pass 1 + PSFEx), then,
per step (pass1, psfex, pass2, spread_model, the Python steps, the flow's
overhead), the flow's time against the floor (the tools with their default
settings) and against VASCO's own tools run bare, on M101 and as medians over
the synthetic tiles; then the throughput figures.

The flow's step times are wall times (from the step records); the bare and
floor tool times are given as CPU time of the tools' processes (median of
``--repeats``) and as wall time.  Ratios of a flow step use wall over wall;
the "CPU" ratios compare VASCO's tools with the floor's.

    PYTHONPATH=$PWD .venv/bin/python scripts/bench_speed.py --tiles 16 --seed 1
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import testlib  # scripts/, the script's own folder, is first on the import path
from floor import child_cpu, floor, median_runs
from survey_child import run_survey

from vasco.config import ExtractionConfig, VascoConfig
from vasco.extraction import sextractor as sx
from vasco.sky.sampling import sample_positions

REPO = Path(__file__).resolve().parents[1]


def survey(out: Path, positions: Path, cfg_file: Path, workers: int, size: float, seed: int) -> tuple[float, float]:
    """Run flows/survey.py in a fresh process; return (wall s, peak MiB of one process)."""
    wall, own, tools = run_survey(
        [
            "--positions",
            str(positions),
            "--config",
            str(cfg_file),
            "--workers",
            str(workers),
            "--size-arcmin",
            f"{size:g}",
            "--seed",
            str(seed),
            "--out",
            str(out),
        ]
    )
    return wall, max(own, tools)


def tile_records(out: Path) -> dict[str, dict]:
    return {p.parent.name: json.loads(p.read_text()) for p in sorted((out / "tiles").glob("*/tile.json"))}


def bare(tile_dir: Path, work: Path, repeats: int) -> dict[str, float]:
    """VASCO's tools on the tile's image, timed one after another: CPU (median of ``repeats``) and wall.

    Pass 1, PSFEx, pass 2 as the flow runs it (no PSF model), the PSF fit of
    the detections the flow fitted (``psf_measured`` in ``work/spread.parquet``)
    and the full pass 2 (PSF model for every detection).
    """
    cfg = ExtractionConfig()
    image = tile_dir / "raw" / "image.fits"
    work.mkdir(parents=True, exist_ok=True)
    paths = {"p1": work / "pass1.ldac", "psf": work / "pass1.psf"}
    spread = pd.read_parquet(tile_dir / "work" / "spread.parquet")
    listed = spread.loc[spread["psf_measured"].to_numpy(bool), ["NUMBER", "X_IMAGE", "Y_IMAGE"]]
    runs = {
        "pass1": lambda: sx.run_pass1(image, paths["p1"], cfg),
        "psfex": lambda: sx.run_psfex(paths["p1"], paths["psf"], cfg),
        "pass2": lambda: sx.run_pass2(image, None, work / "pass2.ldac", cfg),
        "psf_fit": lambda: sx.run_psf_fit(image, paths["psf"], listed, work, cfg),
        "pass2_full": lambda: sx.run_pass2(image, paths["psf"], work / "pass2_full.ldac", cfg),
    }
    t: dict[str, float] = {}
    for name, run in runs.items():
        t[f"{name}_cpu"], t[f"{name}_wall"] = median_runs(repeats, lambda run=run: child_cpu(run))
    return t


#: The steps whose work is an external tool's; the others are the Python steps.
TOOL_STEPS = ("acquire", "psf", "pass2", "spread_model")


def measure_tile(tile_dir: Path, work: Path, repeats: int) -> dict[str, float]:
    """The flow's step times of one tile next to the bare tools and the floor on its image.

    Keys: ``flow_<part>`` (wall s from the step records: pass1, psfex,
    pass2, spread_model, python = the steps that run no tool, overhead = the
    tile's wall time not in any step, total = without acquiring the tile),
    ``bare_*`` (:func:`bare`) and ``floor_*`` (:func:`floor.floor`).
    """
    rec = json.loads((tile_dir / "tile.json").read_text())
    steps = rec["timings"]["steps_s"]
    psf_info = json.loads((tile_dir / "steps" / "psf.json").read_text())["info"]
    row: dict[str, float] = {
        "detections": rec["funnel"]["detections"],
        "psf_stars": psf_info["psf_stars"],
        "flow_pass1": psf_info["pass1_s"],
        "flow_psfex": psf_info["psfex_s"],
        "flow_pass2": steps.get("pass2", float("nan")),
        "flow_spread_model": steps.get("spread_model", float("nan")),
        "flow_python": sum(v for k, v in steps.items() if k not in TOOL_STEPS),
        "flow_overhead": rec["timings"]["tile_wall_s"] - sum(steps.values()),
        "flow_total": rec["timings"]["tile_wall_s"] - steps.get("acquire", 0.0),
    }
    row.update({f"bare_{k}": v for k, v in bare(tile_dir, work / "bare", repeats).items()})
    fl = floor(tile_dir / "raw" / "image.fits", work / "floor", repeats)
    row.update({f"floor_{k}": v for k, v in fl.items()})
    return row


#: Per step of the flow: (its bare tool time key, the floor's time key); None where there is none.
PARTS: dict[str, tuple[str | None, str | None]] = {
    "pass1": ("pass1", "sex"),
    "psfex": ("psfex", "psfex"),
    "pass2": ("pass2", "sex"),
    "spread_model": ("psf_fit", None),
    "python": (None, None),
    "overhead": (None, None),
    "total": (None, "total"),
}


def step_ratios(rows: pd.DataFrame) -> pd.DataFrame:
    """Per step: the flow's wall time, the bare tool's and the floor's, and the ratios (medians over ``rows``).

    ``x_floor`` is the flow's step (wall) over the floor's matching tool (wall:
    SExtractor for pass 1 and pass 2, PSFEx for PSFEx) or, where it has none,
    over the whole floor (SExtractor + PSFEx); ``x_bare`` is over VASCO's own
    tool run bare (wall); ``cpu_x_floor`` is VASCO's bare tool over the floor's, in CPU time.
    """
    out = []
    floor_total = rows["floor_total_wall"]
    for part, (bare_key, floor_key) in PARTS.items():
        flow = rows[f"flow_{part}"]
        fl_wall = rows[f"floor_{floor_key}_wall"] if floor_key else floor_total
        if part == "total":
            bare_wall = sum(rows[f"bare_{k}_wall"] for k in ("pass1", "psfex", "pass2", "psf_fit"))
            bare_cpu = sum(rows[f"bare_{k}_cpu"] for k in ("pass1", "psfex", "pass2", "psf_fit"))
        else:
            bare_wall = rows[f"bare_{bare_key}_wall"] if bare_key else None
            bare_cpu = rows[f"bare_{bare_key}_cpu"] if bare_key else None
        fl_cpu = rows[f"floor_{floor_key}_cpu"] if floor_key else None
        out.append(
            {
                "step": part,
                "flow_wall_s": flow.median(),
                "bare_cpu_s": bare_cpu.median() if bare_cpu is not None else float("nan"),
                "bare_wall_s": bare_wall.median() if bare_wall is not None else float("nan"),
                "floor_cpu_s": fl_cpu.median() if fl_cpu is not None else float("nan"),
                "floor_wall_s": fl_wall.median(),
                "against": floor_key or "floor total",
                "x_floor": (flow / fl_wall).median(),
                "x_bare": (flow / bare_wall).median() if bare_wall is not None else float("nan"),
                "cpu_x_floor": (bare_cpu / fl_cpu).median()
                if bare_cpu is not None and fl_cpu is not None
                else float("nan"),
            }
        )
    return pd.DataFrame(out)


def run_m101_tile(root: Path) -> Path | None:
    """``vasco tile --fits`` on the real M101 cutout (as the golden test runs it); the tile folder."""
    goldens = testlib.load("goldens")
    m101 = REPO.parent / "shared" / "data" / "real" / "dss1red_XE133_m101.fits"
    if not m101.is_file():
        print(f"M101 cutout {m101} not found: left out")
        return None
    with contextlib.redirect_stdout(io.StringIO()):  # vasco tile prints the tile record
        return goldens.run_m101(m101, root / "m101")


def clip_order_effect(full_out: Path, cuts) -> tuple[int, int, int]:
    """Detections reaching the later vetoes with the MAD clip before SPREAD_MODEL (VASCO) and after it.

    Reads the detections of a ``psf_fit_scope = 'all'`` run, where every
    detection has SPREAD_MODEL.  Returns (VASCO's count, the replications'
    count, how many are in one set and not the other).
    """
    from vasco.filters.cuts import CUT_ORDER, _clip_mask, _fixed_tests

    det = pd.read_parquet(full_out / "detections.parquet")
    ours = det["survives_psf"].to_numpy(bool) if "survives_psf" in det else np.zeros(len(det), bool)
    theirs = np.zeros(len(det), dtype=bool)
    for _, idx in det.groupby("tile_id").indices.items():
        t = det.iloc[idx]
        fixed = np.ones(len(t), dtype=bool)
        for mask in _fixed_tests(t, cuts, tuple(n for n in CUT_ORDER if n != "mad_clip")).values():
            fixed &= mask
        fixed &= t["SPREAD_MODEL"].to_numpy(np.float64) > cuts.spread_model_min
        clip = _clip_mask(t["FWHM_IMAGE"].to_numpy(np.float64), fixed, cuts.mad_clip_sigma) & _clip_mask(
            t["ELONGATION"].to_numpy(np.float64), fixed, cuts.mad_clip_sigma
        )
        no_cp = ~np.isfinite(t["counterpart_sep_arcsec"].to_numpy(np.float64))
        theirs[idx] = fixed & clip & no_cp
    return int(ours.sum()), int(theirs.sum()), int((ours ^ theirs).sum())


def candidates_of(out: Path) -> pd.DataFrame:
    c = pd.read_parquet(out / "candidates.parquet")
    if not len(c):
        return pd.DataFrame(columns=["tile_id", "NUMBER", "ra", "dec"])
    return c[["tile_id", "NUMBER", "ra", "dec"]].sort_values(["tile_id", "NUMBER"]).reset_index(drop=True)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tiles", type=int, default=16)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--size-arcmin", type=float, default=30.0)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3, help="runs of each bare tool and of the floor (median)")
    p.add_argument("--no-m101", action="store_true", help="leave out the real M101 cutout")
    p.add_argument("--keep", help="keep the runs in this folder (default: a temporary one)")
    p.add_argument("--no-full", action="store_true", help="skip run 3 (the full pass 2) and its comparisons")
    a = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="vasco-speed-") as tmp:
        root = Path(a.keep or tmp)
        root.mkdir(parents=True, exist_ok=True)
        pos = sample_positions(a.tiles, a.seed)
        positions = root / "positions.csv"
        pd.DataFrame({"ra": [q.ra for q in pos], "dec": [q.dec for q in pos]}).to_csv(
            positions, index=False, float_format="%.10f"
        )
        configs = {}
        for scope in ("needed", "all"):
            cfg = VascoConfig.model_validate(
                {"survey": {"size_arcmin": a.size_arcmin, "seed": a.seed}, "extraction": {"psf_fit_scope": scope}}
            )
            configs[scope] = root / f"config-{scope}.json"
            cfg.write(configs[scope])

        print(f"{a.tiles} synthetic {a.size_arcmin:g}' tiles, seed {a.seed}", flush=True)
        w1, m1 = survey(root / "one-worker", positions, configs["needed"], 1, a.size_arcmin, a.seed)
        print(f"  one worker:          {w1:7.1f} s  peak {m1:6.1f} MiB", flush=True)
        wn, mn = survey(root / f"{a.workers}-workers", positions, configs["needed"], a.workers, a.size_arcmin, a.seed)
        print(f"  {a.workers} workers:           {wn:7.1f} s  peak {mn:6.1f} MiB", flush=True)
        if a.no_full:
            print(
                f"tiles per hour: one worker {3600 * a.tiles / w1:.0f}, {a.workers} workers {3600 * a.tiles / wn:.0f} "
                f"(x{w1 / wn:.2f}; all tiles, failed or not)"
            )
            return 0
        wf, _ = survey(root / "full-pass2", positions, configs["all"], a.workers, a.size_arcmin, a.seed)
        print(f"  full pass 2, {a.workers} workers: {wf:7.1f} s", flush=True)

        recs = tile_records(root / "one-worker")
        full = tile_records(root / "full-pass2")
        rows = []
        for tid, rec in recs.items():
            if rec.get("status") != "ok":
                print(f"  {tid}: {rec.get('status')} {rec.get('reason')} (left out)")
                continue
            steps = rec["timings"]["steps_s"]
            m = measure_tile(root / "one-worker" / "tiles" / tid, root / "measure" / tid, a.repeats)
            rows.append(
                {
                    "tile": tid,
                    **m,
                    "ratio": m["flow_total"] / (m["bare_pass1_wall"] + m["bare_psfex_wall"]),
                    "same_funnel": rec["funnel"] == full.get(tid, {}).get("funnel"),
                    **{f"step_{k}": v for k, v in steps.items()},
                }
            )
        table = pd.DataFrame(rows)
        pd.set_option("display.width", 220)
        print()
        print(
            table[
                [
                    "tile",
                    "detections",
                    "psf_stars",
                    "bare_pass1_wall",
                    "bare_psfex_wall",
                    "bare_pass2_full_wall",
                    "floor_total_wall",
                    "flow_total",
                    "ratio",
                    "same_funnel",
                ]
            ]
            .round(2)
            .to_string(index=False)
        )
        m101_tile = None if a.no_m101 else run_m101_tile(root)
        if m101_tile is not None:
            m101 = pd.DataFrame([measure_tile(m101_tile, root / "measure" / "m101", a.repeats)])
            print(f"\nM101 (vasco tile --fits, {int(m101['detections'].iloc[0])} detections), per step:")
            print(step_ratios(m101).round(2).to_string(index=False))
        print(f"\nsynthetic tiles ({len(table)}), per step, medians:")
        print(step_ratios(table).round(2).to_string(index=False))
        print(
            "x_floor: the flow's step (wall) / the floor's tool (wall; SExtractor for pass1 and pass2, PSFEx for "
            "psfex, else SExtractor + PSFEx); x_bare: / VASCO's tool run bare (wall); cpu_x_floor: VASCO's bare "
            "tool / the floor's, CPU time"
        )
        step_cols = sorted(c for c in table.columns if c.startswith("step_"))
        print("\nmedian step times (s), one worker:")
        for c in step_cols:
            print(f"  {c[5:]:<14} {table[c].median():7.3f}")
        print(f"  {'tile (flow)':<14} {table['flow_total'].median():7.3f}   (without acquiring the tile)")
        same = candidates_of(root / "one-worker").equals(candidates_of(root / "full-pass2"))
        near = table.iloc[(table["detections"] - 3000).abs().argsort()[:1]].iloc[0]
        n_ok = len(table)
        print(
            f"\nflow (without acquiring) / bare (pass 1 + PSFEx), wall: median x{table['ratio'].median():.2f}; "
            f"on the tile nearest 3,000 detections ({near['tile']}, {near['detections']}): x{near['ratio']:.2f}"
        )
        print(
            f"pass 2 (bare, wall): full {table['bare_pass2_full_wall'].median():.2f} s; without the PSF model + "
            f"PSF fit where needed {(table['bare_pass2_wall'] + table['bare_psf_fit_wall']).median():.2f} s (medians)"
        )
        print(
            f"tiles per hour: one worker {3600 * n_ok / w1:.0f}, {a.workers} workers {3600 * n_ok / wn:.0f} "
            f"(x{w1 / wn:.2f}); full pass 2 with {a.workers} workers {3600 * n_ok / wf:.0f}"
        )
        print(f"peak memory of one process: {max(m1, mn):.1f} MiB")
        print(
            f"candidates identical to the full pass 2 on every tile: {same} "
            f"({len(candidates_of(root / 'one-worker'))} candidates); funnels identical: "
            f"{bool(table['same_funnel'].all())}"
        )
        ours, theirs, differ = clip_order_effect(root / "full-pass2", VascoConfig().cuts)
        print(
            f"MAD clip before SPREAD_MODEL (VASCO) / after it (replications): {ours} / {theirs} detections "
            f"reach the later vetoes, {differ} differ"
        )
    return 0 if same and bool(table["same_funnel"].all()) else 1


if __name__ == "__main__":
    raise SystemExit(main())

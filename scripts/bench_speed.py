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
4. on each tile's image, bare SExtractor pass 1 + PSFEx + full pass 2 (the
   tools alone, no Python around them), one after another.

It prints one row per tile (detections, the bare times, the flow's time
without acquiring the tile, and that time over bare pass 1 + PSFEx), then
the medians and the throughput figures.

    .venv/bin/python scripts/bench_speed.py --tiles 16 --seed 1
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from survey_child import run_survey  # scripts/, the script's own folder, is first on the import path

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


def bare(image: Path, work: Path) -> dict[str, float]:
    """Pass 1, PSFEx and the full pass 2 on one image, timed one after another."""
    cfg = ExtractionConfig()
    work.mkdir(parents=True, exist_ok=True)
    t = {}
    t0 = time.perf_counter()
    p1 = sx.run_pass1(image, work / "pass1.ldac", cfg)
    t["pass1"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    psf = sx.run_psfex(p1, work / "pass1.psf", cfg)
    t["psfex"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    sx.run_pass2(image, psf, work / "pass2.ldac", cfg)
    t["pass2_full"] = time.perf_counter() - t0
    return t


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
            image = root / "one-worker" / "tiles" / tid / "raw" / "image.fits"
            b = bare(image, root / "bare" / tid)
            flow = rec["timings"]["tile_wall_s"] - steps.get("acquire", 0.0)
            rows.append(
                {
                    "tile": tid,
                    "detections": rec["funnel"]["detections"],
                    "bare_pass1": b["pass1"],
                    "bare_psfex": b["psfex"],
                    "bare_pass2_full": b["pass2_full"],
                    "flow_pass2": steps.get("pass2", float("nan")) + steps.get("spread_model", float("nan")),
                    "flow_s": flow,
                    "ratio": flow / (b["pass1"] + b["psfex"]),
                    "same_funnel": rec["funnel"] == full.get(tid, {}).get("funnel"),
                    **{f"step_{k}": v for k, v in steps.items()},
                }
            )
        table = pd.DataFrame(rows)
        pd.set_option("display.width", 200)
        print()
        print(
            table[
                [
                    "tile",
                    "detections",
                    "bare_pass1",
                    "bare_psfex",
                    "bare_pass2_full",
                    "flow_pass2",
                    "flow_s",
                    "ratio",
                    "same_funnel",
                ]
            ]
            .round(2)
            .to_string(index=False)
        )
        step_cols = sorted(c for c in table.columns if c.startswith("step_"))
        print("\nmedian step times (s), one worker:")
        for c in step_cols:
            print(f"  {c[5:]:<14} {table[c].median():7.3f}")
        print(f"  {'tile (flow)':<14} {table['flow_s'].median():7.3f}   (without acquiring the tile)")
        same = candidates_of(root / "one-worker").equals(candidates_of(root / "full-pass2"))
        near = table.iloc[(table["detections"] - 3000).abs().argsort()[:1]].iloc[0]
        n_ok = len(table)
        print(
            f"\nflow / bare (pass 1 + PSFEx): median x{table['ratio'].median():.2f}; "
            f"on the tile nearest 3,000 detections ({near['tile']}, {near['detections']}): x{near['ratio']:.2f}"
        )
        print(
            f"pass 2: full {table['bare_pass2_full'].median():.2f} s; without the PSF model + PSF fit where "
            f"needed {table['flow_pass2'].median():.2f} s (medians)"
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

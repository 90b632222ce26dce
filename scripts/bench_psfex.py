"""Benchmark: the cost of VASCO's PSF model against the floor, and what cheaper settings do to SPREAD_MODEL.

On the real M101 cutout and on ``--tiles`` synthetic 30' tiles (rendered
with the library, positions from :func:`vasco.sky.sampling.sample_positions`
with ``--seed``), it times:

(a) the floor (``scripts/floor.py``): SExtractor then PSFEx with their Debian
    default settings; also PSFEx's defaults with the check outputs off;
(b) VASCO's pass 1 + PSFEx with the current settings (``ExtractionConfig()``);
(c) PSFEx on VASCO's pass-1 catalogue with each candidate setting of
    :data:`SETTINGS` (PSF_SIZE, PSF_SAMPLING, PSFVAR_DEGREES, sample
    selection, the pass-1 VIGNET size, ...).

Times are the CPU time of the tools' processes (median of ``--repeats``) and
their wall time (median; the machine is shared, so wall times are noisy).

To see whether a setting keeps the science, each PSF model is used for the
PSF fit (SPREAD_MODEL, SPREADERR_MODEL) of the detections that pass the
quality cuts before the SPREAD_MODEL cut (:func:`vasco.filters.cuts.apply_quality_cuts`
on pass 2), as the ``spread_model`` step does (one SExtractor ASSOC run,
:func:`vasco.extraction.sextractor.run_psf_fit`), and compared with the
current settings' values: the median and maximum of
``|dSPREAD_MODEL| / SPREADERR_MODEL`` and how many detections cross the
SPREAD_MODEL cut either way.

    PYTHONPATH=$PWD .venv/bin/python scripts/bench_psfex.py --tiles 4 --seed 1
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from floor import child_cpu, floor, median_runs, psf_header, timed  # scripts/ is first on the import path

from vasco.config import ExtractionConfig, VascoConfig
from vasco.extraction import sextractor as sx
from vasco.filters.cuts import apply_quality_cuts

REPO = Path(__file__).resolve().parents[1]
M101 = REPO.parent / "shared" / "data" / "real" / "dss1red_XE133_m101.fits"


@dataclass(frozen=True)
class Setting:
    """A candidate PSF setting: ExtractionConfig changes, extra PSFEx options, the pass-1 VIGNET size."""

    name: str
    cfg: dict[str, float] = field(default_factory=dict)
    extra: tuple[str, ...] = ()
    vignet: int = 0  # 0: the shipped pass1.param


#: The settings tried, each a change from the current one ("current").
SETTINGS: tuple[Setting, ...] = (
    Setting("current"),
    # PSFVAR_NSNAP: snapshots per axis for PSFEx's diagnostics (the model itself does not depend on it).
    Setting("nsnap9", extra=("-PSFVAR_NSNAP", "9")),
    Setting("nsnap3", extra=("-PSFVAR_NSNAP", "3")),
    Setting("nsnap1", extra=("-PSFVAR_NSNAP", "1")),
    Setting("size19", {"psf_size": 19}),
    Setting("size15", {"psf_size": 15}),
    Setting("size13", {"psf_size": 13}),
    Setting("size11", {"psf_size": 11}),
    Setting("samp0.5", extra=("-PSF_SAMPLING", "0.5")),
    Setting("samp0.5 size15", {"psf_size": 15}, extra=("-PSF_SAMPLING", "0.5")),
    Setting("samp1 size25", extra=("-PSF_SAMPLING", "1.0")),
    Setting("samp1 size15", {"psf_size": 15}, extra=("-PSF_SAMPLING", "1.0")),
    Setting("samp1 size11", {"psf_size": 11}, extra=("-PSF_SAMPLING", "1.0")),
    Setting("deg1", {"psfvar_degree": 1}),
    Setting("deg1 size15", {"psfvar_degree": 1, "psf_size": 15}),
    Setting("deg1 size13", {"psfvar_degree": 1, "psf_size": 13}),
    Setting("basis10", extra=("-BASIS_NUMBER", "10")),
    Setting("minsn50", {"psf_sample_minsn": 50.0}),
    Setting("minsn100", {"psf_sample_minsn": 100.0}),
    Setting("minsn50 size15", {"psf_sample_minsn": 50.0, "psf_size": 15}),
    Setting("fwhm2-10", extra=("-SAMPLE_FWHMRANGE", "2.0,10.0")),
    Setting("recenter", extra=("-PSF_RECENTER", "Y")),
    Setting("accuracy0.02", extra=("-PSF_ACCURACY", "0.02")),
    Setting("vignet25", vignet=25),
    Setting("vignet25 size15", {"psf_size": 15}, vignet=25),
    Setting("vignet21 size13", {"psf_size": 13}, vignet=21),
    Setting("deg0", {"psfvar_degree": 0}),
    Setting("nsnap1 deg1", {"psfvar_degree": 1}, extra=("-PSFVAR_NSNAP", "1")),
    Setting("nsnap1 size19", {"psf_size": 19}, extra=("-PSFVAR_NSNAP", "1")),
    Setting("nsnap1 vignet25", extra=("-PSFVAR_NSNAP", "1"), vignet=25),
)


def pass1_params(work: Path, vignet: int) -> Path | None:
    """The shipped pass1.param with VIGNET(vignet, vignet) (None: the shipped file as it is)."""
    if not vignet:
        return None
    lines = [
        f"VIGNET({vignet},{vignet})" if ln.startswith("VIGNET(") else ln
        for ln in (sx.config_dir() / "pass1.param").read_text().splitlines()
    ]
    path = work / f"pass1_v{vignet}.param"
    path.write_text("\n".join(lines) + "\n")
    return path


def psfex_run(cat: Path, out_dir: Path, cfg: ExtractionConfig, extra: tuple[str, ...], repeats: int) -> dict:
    """PSFEx on ``cat`` with ``cfg`` (+ ``extra``): median CPU/wall, the model and what PSFEx chose."""
    out_dir.mkdir(parents=True, exist_ok=True)
    cmd = [*sx.psfex_command(sx.find_tool(sx.PSFEX_NAMES), cat.resolve(), out_dir.resolve(), cfg), *extra]
    cpu, wall = median_runs(repeats, lambda: timed(cmd, out_dir))
    psf = out_dir / f"{cat.stem}.psf"
    return {"psfex_cpu": cpu, "psfex_wall": wall, "psf": psf, **psf_header(psf)}


def science_sample(image: Path, work: Path, cfg: VascoConfig) -> pd.DataFrame:
    """The pass-2 detections that pass the quality cuts before SPREAD_MODEL."""
    p2 = sx.run_pass2(image, None, work / "pass2.ldac", cfg.extraction)
    table, _ = apply_quality_cuts(sx.read_ldac(p2), cfg.cuts)
    return table.loc[table["passes_cuts"], ["NUMBER", "X_IMAGE", "Y_IMAGE"]].reset_index(drop=True)


def bench_image(label: str, image: Path, work: Path, repeats: int, settings: tuple[Setting, ...]) -> list[dict]:
    """Rows for one image: the floor, VASCO's pass 1 + PSFEx, then every setting with its SPREAD_MODEL check."""
    cfg = VascoConfig()
    rows: list[dict] = []
    fl = floor(image, work / "floor", repeats)
    print(
        f"{label}: floor SExtractor {fl['sex_cpu']:.2f} s CPU ({fl['detections']} detections), PSFEx defaults "
        f"{fl['psfex_cpu']:.2f} s CPU{' (CHECKPLOT_DEV NULL: no PNG device here)' if fl['plot_dev_null'] else ''}, "
        f"check outputs off {fl['psfex_quiet_cpu']:.2f} s; {fl['stars']} stars, sampling {fl['sampling']:.2f}",
        flush=True,
    )
    listed = science_sample(image, work, cfg)
    cats: dict[int, Path] = {}
    pass1_cpu: dict[int, tuple[float, float]] = {}
    ref: pd.DataFrame | None = None
    for s in settings:
        if s.vignet not in cats:
            params = pass1_params(work, s.vignet)
            cat = work / f"p1v{s.vignet}" / "pass1.ldac"
            cat.parent.mkdir(parents=True, exist_ok=True)
            pass1_cpu[s.vignet] = median_runs(
                repeats,
                lambda cat=cat, params=params: child_cpu(lambda: sx.run_pass1(image, cat, cfg.extraction, params)),
            )
            cats[s.vignet] = cat
        ecfg = cfg.extraction.model_copy(update=s.cfg)
        try:
            got = psfex_run(cats[s.vignet], work / "psf" / s.name.replace(" ", "_"), ecfg, s.extra, repeats)
            holder: dict[str, pd.DataFrame] = {}
            fit_cpu, _ = child_cpu(
                lambda got=got, holder=holder: holder.update(
                    fit=sx.run_psf_fit(image, got["psf"], listed, work, cfg.extraction)
                )
            )
        except (RuntimeError, sx.ToolError) as exc:
            print(f"  {s.name:<18} failed: {str(exc)[-160:]}", flush=True)
            rows.append({"image": label, "setting": s.name, "failed": True})
            continue
        fit = holder["fit"]
        if ref is None:
            ref = fit
        rows.append(
            {
                "image": label,
                "setting": s.name,
                "failed": False,
                "pass1_cpu": pass1_cpu[s.vignet][0],
                **{k: v for k, v in got.items() if k != "psf"},
                "fit_cpu": fit_cpu,
                "floor_sex_cpu": fl["sex_cpu"],
                "floor_psfex_cpu": fl["psfex_cpu"],
                "floor_psfex_quiet_cpu": fl["psfex_quiet_cpu"],
                "floor_psfex_wall": fl["psfex_wall"],
                **compare(ref, fit, cfg.cuts.spread_model_min),
            }
        )
        r = rows[-1]
        print(
            f"  {s.name:<18} PSFEx {r['psfex_cpu']:5.2f} s CPU ({r['psfex_cpu'] / fl['psfex_cpu']:.2f} x floor) "
            f"{r['stars']:4d} stars samp {r['sampling']:.2f}  fit {fit_cpu:5.2f} s  "
            f"|d|/err med {r['d_med']:.3f} max {r['d_max']:.3f}  cross {r['cross_out']}/{r['cross_in']} of {r['n']}",
            flush=True,
        )
    return rows


def compare(ref: pd.DataFrame, new: pd.DataFrame, cut: float) -> dict[str, float]:
    """``|dSPREAD_MODEL| / SPREADERR_MODEL`` (the reference's error) and the cut crossings, new vs ref."""
    a = ref["SPREAD_MODEL"].to_numpy(np.float64)
    b = new["SPREAD_MODEL"].to_numpy(np.float64)
    err = ref["SPREADERR_MODEL"].to_numpy(np.float64)
    d = np.abs(b - a) / err
    return {
        "n": len(a),
        "d_med": float(np.median(d)) if len(d) else float("nan"),
        "d_p99": float(np.percentile(d, 99)) if len(d) else float("nan"),
        "d_max": float(np.max(d)) if len(d) else float("nan"),
        # passes now, failed before (out of the cut's rejects) / fails now, passed before
        "cross_out": int(((a <= cut) & (b > cut)).sum()),
        "cross_in": int(((a > cut) & (b <= cut)).sum()),
    }


def synthetic_images(root: Path, n: int, seed: int) -> list[tuple[str, Path]]:
    """Render ``n`` synthetic 30' tiles at :func:`sample_positions` (``seed``); (tile id, image) pairs."""
    from vasco.sky.sampling import sample_positions
    from vasco.steps.acquire import acquire_synthetic

    if n < 1:
        return []
    cfg = VascoConfig.model_validate({"survey": {"size_arcmin": 30.0, "seed": seed}})
    out = []
    for pos in sample_positions(n, seed):
        tile = root / pos.tile_id
        try:
            acquire_synthetic(tile, pos.ra, pos.dec, cfg)
        except Exception as exc:  # noqa: BLE001 - a hole in the plate coverage: say so and go on
            print(f"{pos.tile_id}: not rendered ({exc})")
            continue
        out.append((pos.tile_id, tile / "raw" / "image.fits"))
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tiles", type=int, default=4, help="synthetic tiles (default 4)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--repeats", type=int, default=3, help="runs of each timed tool (median)")
    p.add_argument("--only", nargs="*", help="only these settings (names of SETTINGS; 'current' always runs)")
    p.add_argument("--no-m101", action="store_true", help="leave out the real M101 cutout")
    p.add_argument("--csv", help="write the table here")
    p.add_argument("--keep", help="keep the files in this folder (default: a temporary one)")
    a = p.parse_args()
    settings = SETTINGS if not a.only else tuple(s for s in SETTINGS if s.name == "current" or s.name in a.only)
    with tempfile.TemporaryDirectory(prefix="vasco-psfex-") as tmp:
        root = Path(a.keep or tmp)
        root.mkdir(parents=True, exist_ok=True)
        images = [] if a.no_m101 or not M101.is_file() else [("m101", M101)]
        images += synthetic_images(root / "synthetic", a.tiles, a.seed)
        rows: list[dict] = []
        for label, image in images:
            rows += bench_image(label, image, root / "bench" / label, a.repeats, settings)
    table = pd.DataFrame(rows)
    if a.csv:
        table.to_csv(a.csv, index=False)
    print("\nper setting, over the images (PSFEx CPU median of runs; ratio = PSFEx CPU / floor PSFEx CPU):")
    summary = []
    for name, g in table.groupby("setting", sort=False):
        failed = int(g["failed"].sum())
        g = g[~g["failed"].astype(bool)]
        summary.append(
            {
                "setting": name,
                "psfex_cpu_m101": float(g.loc[g["image"] == "m101", "psfex_cpu"].median())
                if (g["image"] == "m101").any()
                else float("nan"),
                "psfex_cpu_med": float(g["psfex_cpu"].median()),
                "ratio_med": float((g["psfex_cpu"] / g["floor_psfex_cpu"]).median()),
                "ratio_max": float((g["psfex_cpu"] / g["floor_psfex_cpu"]).max()),
                "fit_cpu_med": float(g["fit_cpu"].median()),
                "sampling": float(g["sampling"].median()),
                "stars": float(g["stars"].median()),
                "d_med": float(g["d_med"].median()),
                "d_max": float(g["d_max"].max()),
                "cross": f"{int(g['cross_out'].sum())}/{int(g['cross_in'].sum())}",
                "n": int(g["n"].sum()),
                "failed": failed,
            }
        )
    pd.set_option("display.width", 220)
    print(pd.DataFrame(summary).round(3).to_string(index=False))
    fl = table[~table["failed"].astype(bool)].drop_duplicates("image")
    print(
        f"\nfloor (medians over {len(fl)} images): SExtractor {statistics.median(fl['floor_sex_cpu']):.2f} s CPU, "
        f"PSFEx defaults {statistics.median(fl['floor_psfex_cpu']):.2f} s CPU "
        f"({statistics.median(fl['floor_psfex_wall']):.2f} s wall), with check outputs off "
        f"{statistics.median(fl['floor_psfex_quiet_cpu']):.2f} s CPU"
    )
    print("cross = detections whose SPREAD_MODEL cut decision flips: now passes / now fails (vs 'current')")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

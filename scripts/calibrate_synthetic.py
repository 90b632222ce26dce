#!/usr/bin/env python
"""Measure how much a synthetic VASCO tile looks like a real DSS1 POSS-I E tile.

Writes a synthetic tile (``vasco.synthetic.tile.make_synthetic_tile``) to a
temporary directory, runs SExtractor pass 1 (DETECT_THRESH 5, with VIGNET),
PSFEx (default-like settings) and SExtractor pass 2 with the PSF
(SPREAD_MODEL, FWHM_IMAGE, FLUX_MAX, SNR_WIN ...), matches the detections to
the tile's truth table and prints the realism figures next to the targets
measured on the real M67 tile (FIELD_NOTES.md):

* number of detections, background level and robust sigma;
* median peak (FLUX_MAX + BACKGROUND) and median FWHM_IMAGE per Gaia G bin;
* fraction of stars with SPREAD_MODEL > -0.002 per G bin;
* injected transients: recoverable (truth), detected, passing the paper's cuts.

Usage::

    python scripts/calibrate_synthetic.py --ra 132.825 --dec 11.8 [--seed 1] [--size 30]
    python scripts/calibrate_synthetic.py --ra 123.025 --dec 40.689     # b=+32 without a cluster
    python scripts/calibrate_synthetic.py --ra 278.852 --dec -1.237     # dense field, l=30 b=+3
    python scripts/calibrate_synthetic.py --ra 132.825 --dec 11.8 --psf-fwhm-range 2.6,3.2

SExtractor and PSFEx are run with argument lists and timeouts; minimal
configurations (default-like: 3x3 default.conv filter, BACK_SIZE 64,
SATUR_LEVEL 50000, GAIN 0, PSFEx defaults) are written inside the temporary
directory, so the figures are comparable with the FIELD_NOTES measurements
rather than with whatever the production configuration becomes.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from astropy.io import fits
from scipy.spatial import cKDTree

SEX = shutil.which("source-extractor") or shutil.which("sex") or "source-extractor"
PSFEX = shutil.which("psfex") or "psfex"
TIMEOUT = 600
NNW = Path("/usr/share/source-extractor/default.nnw")

# Targets measured on the real M67 tile (FIELD_NOTES.md)
TARGET_BINS = [
    # label, gmin, gmax, peak, fwhm, spread_frac
    ("G<13", -10.0, 13.0, None, 6.0, 1.00),
    ("13-14", 13.0, 14.0, None, 4.9, 1.00),
    ("14-15", 14.0, 15.0, None, 4.1, 1.00),
    ("15-16", 15.0, 16.0, None, 3.3, 1.00),
    ("16-17", 16.0, 17.0, None, 2.7, 0.95),
    ("17-18", 17.0, 18.0, 10500.0, 2.2, 0.14),
    ("18-19", 18.0, 19.0, 7800.0, 2.0, 0.04),
    ("19-20", 19.0, 20.0, None, None, None),
]
PEAK_BINS = [
    ("10-15", 10.0, 15.0, 12970.0),
    ("16-16.5", 16.0, 16.5, 12260.0),
    ("17-18", 17.0, 18.0, 10500.0),
    ("18-19", 18.0, 19.0, 7800.0),
]

PASS1_PARAMS = """NUMBER
X_IMAGE
Y_IMAGE
XWIN_IMAGE
YWIN_IMAGE
FLUX_APER(1)
FLUXERR_APER(1)
FLUX_RADIUS
FWHM_IMAGE
ELONGATION
FLAGS
SNR_WIN
FLUX_MAX
VIGNET(35,35)
"""

PASS2_PARAMS = """NUMBER
X_IMAGE
Y_IMAGE
XMIN_IMAGE
XMAX_IMAGE
YMIN_IMAGE
YMAX_IMAGE
FLUX_AUTO
FLUX_MAX
BACKGROUND
FWHM_IMAGE
ELONGATION
FLAGS
SNR_WIN
SPREAD_MODEL
SPREADERR_MODEL
MAG_PSF
CLASS_STAR
"""

CONV = """CONV NORM
# 3x3 all-ground convolution mask with FWHM = 2 pixels.
1 2 1
2 4 2
1 2 1
"""


def sex_args(image: Path, cat: Path, params: Path, conv: Path, extra: dict[str, str]) -> list[str]:
    opts = {
        "CATALOG_NAME": str(cat),
        "PARAMETERS_NAME": str(params),
        "FILTER_NAME": str(conv),
        "DETECT_THRESH": "5",
        "ANALYSIS_THRESH": "5",
        "DETECT_MINAREA": "5",
        "DEBLEND_NTHRESH": "32",
        "DEBLEND_MINCONT": "0.005",
        "BACK_SIZE": "64",
        "BACK_FILTERSIZE": "3",
        "SATUR_LEVEL": "50000",
        "GAIN": "0",
        "PIXEL_SCALE": "0",
        "PHOT_APERTURES": "5",
        "VERBOSE_TYPE": "NORMAL",
        "NTHREADS": "1",
        "STARNNW_NAME": str(NNW) if NNW.exists() else "default.nnw",
    }
    opts.update(extra)
    args = [SEX, str(image), "-c", "/dev/null"]
    for k, v in opts.items():
        args += [f"-{k}", v]
    return args


def run(args: list[str], cwd: Path) -> str:
    res = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT)
    if res.returncode != 0:
        raise RuntimeError(f"{args[0]} failed ({res.returncode}): {res.stderr[-2000:]}")
    return res.stdout + res.stderr


def extract(
    image: Path, work: Path, spread: bool = True, psf_fwhm_range: tuple[float, float] | None = None
) -> tuple[pd.DataFrame, dict]:
    """SExtractor pass 1 -> PSFEx -> pass 2. Returns the pass-2 catalogue and run info.

    PSFEx runs with default-like settings (automatic star selection from the
    FLUX_RADIUS mode); ``psf_fwhm_range`` instead fixes the sample to stars with
    2 x FLUX_RADIUS in that range (SAMPLE_AUTOSELECT N).
    """
    (work / "default.conv").write_text(CONV)
    (work / "pass1.param").write_text(PASS1_PARAMS)
    (work / "pass2.param").write_text(PASS2_PARAMS)
    info: dict = {}
    t0 = time.perf_counter()
    out = run(
        sex_args(
            image,
            work / "pass1.ldac",
            work / "pass1.param",
            work / "default.conv",
            {
                "CATALOG_TYPE": "FITS_LDAC",
                "CHECKIMAGE_TYPE": "SEGMENTATION,BACKGROUND",
                "CHECKIMAGE_NAME": f"{work / 'seg.fits'},{work / 'bkg.fits'}",
            },
        ),
        work,
    )
    m = re.search(r"Background:\s*([\d.]+)\s+RMS:\s*([\d.]+)", out)
    if m:
        info["sex_background"], info["sex_rms"] = float(m.group(1)), float(m.group(2))
    info["t_pass1"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    run(
        [
            PSFEX,
            str(work / "pass1.ldac"),
            "-c",
            "/dev/null",
            "-PSF_SIZE",
            "25,25",
            "-PSFVAR_DEGREES",
            "2",
            "-SAMPLE_FWHMRANGE",
            f"{psf_fwhm_range[0]},{psf_fwhm_range[1]}" if psf_fwhm_range else "2.0,10.0",
            "-SAMPLE_AUTOSELECT",
            "N" if psf_fwhm_range else "Y",
            "-SAMPLE_VARIABILITY",
            "0.2",
            "-SAMPLE_MINSN",
            "20",
            "-SAMPLE_MAXELLIP",
            "0.3",
            "-CHECKPLOT_TYPE",
            "NONE",
            "-CHECKIMAGE_TYPE",
            "NONE",
            "-WRITE_XML",
            "Y",
            "-XML_NAME",
            str(work / "psfex.xml"),
            "-PSF_DIR",
            str(work),
            "-NTHREADS",
            "1",
        ],
        work,
    )
    info["t_psfex"] = time.perf_counter() - t0
    info.update(psfex_summary(work / "psfex.xml"))
    t0 = time.perf_counter()
    params = work / "pass2.param"
    if not spread:
        params.write_text(PASS2_PARAMS.replace("SPREAD_MODEL\nSPREADERR_MODEL\n", ""))
    run(
        sex_args(
            image,
            work / "pass2.fits",
            params,
            work / "default.conv",
            {"CATALOG_TYPE": "FITS_1.0", "PSF_NAME": str(work / "pass1.psf")},
        ),
        work,
    )
    info["t_pass2"] = time.perf_counter() - t0
    with fits.open(work / "pass2.fits") as hl:
        tab = hl[1].data
        cat = pd.DataFrame({n: np.asarray(tab[n]).astype(np.float64) for n in tab.columns.names})
    return cat, info


def psfex_summary(xml_path: Path) -> dict:
    """A few numbers from PSFEx's XML report (PSF_Fields table): stars accepted, FWHM."""
    try:
        xml = xml_path.read_text()
    except OSError:
        return {}
    m = re.search(r'<TABLE ID="PSF_Fields".*?</TABLE>', xml, re.S)
    if not m:
        return {}
    tab = m.group(0)
    names = re.findall(r'<FIELD name="([^"]+)"', tab)
    row = re.search(r"<TR>(.*?)</TR>", tab, re.S)
    if not row:
        return {}
    vals = re.findall(r"<TD>(.*?)</TD>", row.group(1), re.S)
    d = dict(zip(names, vals))
    out = {}
    for k in ("NStars_Accepted_Total", "FWHM_Mean", "FWHM_FromFluxRadius_Mean", "Ellipticity_Mean", "MoffatBeta_Mean"):
        if k in d:
            try:
                out["psfex_" + k] = float(d[k])
            except ValueError:
                pass
    return out


def background_stats(image: np.ndarray, work: Path) -> tuple[float, float]:
    """Median and robust sigma (1.4826 MAD) of the image away from detected sources."""
    from scipy import ndimage

    seg = fits.getdata(work / "seg.fits")
    bkg = fits.getdata(work / "bkg.fits").astype(np.float64)
    mask = ndimage.binary_dilation(seg > 0, iterations=3)
    resid = (image.astype(np.float64) - bkg)[~mask]
    med = float(np.median(image[~mask]))
    sig = 1.4826 * float(np.median(np.abs(resid - np.median(resid))))
    return med, sig


def paper_cuts(cat: pd.DataFrame) -> np.ndarray:
    """The paper's per-source cuts (before the MAD clip)."""
    dx = cat.XMAX_IMAGE - cat.XMIN_IMAGE
    dy = cat.YMAX_IMAGE - cat.YMIN_IMAGE
    ok = (
        (cat.FLAGS == 0)
        & (cat.SNR_WIN > 30)
        & (cat.SPREAD_MODEL > -0.002)
        & (cat.FWHM_IMAGE > 2)
        & (cat.FWHM_IMAGE < 7)
        & (cat.ELONGATION < 1.3)
        & ((dx - dy).abs() < 2)
        & (dx > 1)
        & (dy > 1)
    )
    ok = ok.to_numpy().copy()
    if ok.sum() > 5:
        for col in ("FWHM_IMAGE", "ELONGATION"):
            v = cat[col].to_numpy()[ok]
            med = np.median(v)
            mad = 1.4826 * np.median(np.abs(v - med))
            ok &= np.abs(cat[col].to_numpy() - med) <= 2.0 * max(mad, 1e-6)
    return ok


def match_truth(cat: pd.DataFrame, truth: pd.DataFrame, radius_px: float = 1.5) -> pd.DataFrame:
    """For each detection, the brightest point-like truth object within radius (or none)."""
    pts = truth[
        truth.cls.isin(["star", "hpm_star", "transient", "galaxy", "defect", "asteroid", "ir_source", "variable"])
    ].reset_index(drop=True)
    tree = cKDTree(np.c_[pts.x.to_numpy(), pts.y.to_numpy()])
    hits = tree.query_ball_point(np.c_[cat.X_IMAGE.to_numpy(), cat.Y_IMAGE.to_numpy()], r=radius_px)
    best = np.full(len(cat), -1, dtype=np.int64)
    mags = pts.mag.to_numpy()
    for i, h in enumerate(hits):
        if h:
            best[i] = h[int(np.argmin(mags[h]))]
    out = cat.copy()
    out["truth_idx"] = best
    for col in ("cls", "mag", "gmag", "obj_id"):
        if col in pts:
            vals = pts[col].to_numpy()
            out["t_" + col] = np.where(best >= 0, vals[np.maximum(best, 0)], None if vals.dtype == object else np.nan)
    return out


def summarise(cat: pd.DataFrame, truth: pd.DataFrame, image: np.ndarray, work: Path, info: dict) -> str:
    m = match_truth(cat, truth)
    lines = []
    bg, sig = background_stats(image, work)
    lines.append(f"detections (pass 2, 5 sigma): {len(cat)}   [real M67 tile: 1,353]")
    lines.append(
        f"background: median {bg:.0f} ADU (SExtractor {info.get('sex_background', float('nan')):.0f}), "
        f"robust sigma {sig:.0f} (SExtractor RMS {info.get('sex_rms', float('nan')):.0f})   "
        f"[real: ~3,770, ~256]"
    )
    counts = m.t_cls.value_counts(dropna=False).to_dict()
    lines.append("matched classes: " + ", ".join(f"{k}={v}" for k, v in counts.items()))
    stars = m[m.t_cls.isin(["star", "hpm_star"])]
    g = stars.t_gmag.astype(float)
    peak = stars.FLUX_MAX + stars.BACKGROUND
    lines.append("")
    lines.append(
        f"{'G bin':>8} {'N':>5} {'FWHM syn':>9} {'target':>7} {'SPREAD>-0.002':>14} {'target':>7} {'ELONG<1.3':>10}"
    )
    for label, lo, hi, _, fw_t, sp_t in TARGET_BINS:
        s = (g >= lo) & (g < hi)
        n = int(s.sum())
        if n == 0:
            lines.append(f"{label:>8} {0:>5}")
            continue
        fw = float(np.median(stars.FWHM_IMAGE[s]))
        sp = float(np.mean(stars.SPREAD_MODEL[s] > -0.002)) if "SPREAD_MODEL" in stars else float("nan")
        el = float(np.mean(stars.ELONGATION[s] < 1.3))
        fwt = f"{fw_t:.1f}" if fw_t else "-"
        spt = f"{100 * sp_t:.0f}%" if sp_t is not None else "-"
        lines.append(f"{label:>8} {n:>5} {fw:>9.2f} {fwt:>7} {100 * sp:>13.0f}% {spt:>7} {100 * el:>9.0f}%")
    lines.append("")
    lines.append(f"{'G bin':>8} {'N':>5} {'peak syn':>9} {'target':>7}")
    for label, lo, hi, pk_t in PEAK_BINS:
        s = (g >= lo) & (g < hi)
        n = int(s.sum())
        pk = float(np.median(peak[s])) if n else float("nan")
        lines.append(f"{label:>8} {n:>5} {pk:>9.0f} {pk_t:>7.0f}")
    # transients
    tr = truth[truth.cls == "transient"]
    if len(tr):
        tree = cKDTree(np.c_[cat.X_IMAGE.to_numpy(), cat.Y_IMAGE.to_numpy()])
        d, j = tree.query(np.c_[tr.x.to_numpy(), tr.y.to_numpy()])
        det = d < 1.5
        cuts = paper_cuts(cat)
        passed = det & cuts[np.minimum(j, len(cat) - 1)]
        rec = tr.recoverable.to_numpy().astype(bool)
        lines.append("")
        lines.append(
            f"transients: injected {len(tr)}, recoverable (truth) {rec.sum()}, detected {det.sum()} "
            f"(of recoverable {np.sum(det & rec)}), pass paper cuts {passed.sum()} "
            f"(of recoverable {np.sum(passed & rec)}; "
            f"non-recoverable passing {np.sum(passed & ~rec)})"
        )
        if det.any():
            ratio = cat.SNR_WIN.to_numpy()[j[det]] / tr.snr_model.to_numpy()[det]
            lines.append(
                f"transients: measured SNR_WIN / snr_model, median {np.median(ratio):.2f} "
                f"(16-84%: {np.percentile(ratio, 16):.2f}-{np.percentile(ratio, 84):.2f}, n={det.sum()})"
            )
        star_like = m.t_cls.isin(["star", "hpm_star"]).to_numpy()
        lines.append(f"stars passing the paper's cuts (incl. MAD clip): {int(np.sum(cuts & star_like))}")
    if "psfex_FWHM_Mean" in info:
        lines.append(
            f"PSFEx: {info.get('psfex_NStars_Accepted_Total', 0):.0f} stars accepted, model FWHM "
            f"{info['psfex_FWHM_Mean']:.2f} px, ellipticity {info.get('psfex_Ellipticity_Mean', float('nan')):.3f}"
        )
    lines.append(f"timing: pass1 {info['t_pass1']:.1f}s psfex {info['t_psfex']:.1f}s pass2 {info['t_pass2']:.1f}s")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ra", type=float, required=True)
    ap.add_argument("--dec", type=float, required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--size", type=float, default=30.0, help="tile size (arcmin)")
    ap.add_argument("--keep", type=Path, default=None, help="copy the work directory here")
    ap.add_argument("--no-spread", action="store_true", help="skip SPREAD_MODEL (fast)")
    ap.add_argument(
        "--psf-fwhm-range",
        type=str,
        default=None,
        help="fix the PSFEx sample to 2*FLUX_RADIUS in 'lo,hi' px instead of the automatic choice",
    )
    a = ap.parse_args(argv)

    from vasco.config import SyntheticConfig
    from vasco.synthetic.tile import make_synthetic_tile

    t0 = time.perf_counter()
    tile = make_synthetic_tile(a.ra, a.dec, a.size, a.seed, SyntheticConfig())
    t_render = time.perf_counter() - t0
    with tempfile.TemporaryDirectory(prefix="vasco_cal_") as tmp:
        work = Path(tmp)
        img_path = work / "tile.fits"
        fits.PrimaryHDU(tile.image, header=tile.header).writeto(img_path)
        rng = tuple(float(v) for v in a.psf_fwhm_range.split(",")) if a.psf_fwhm_range else None
        cat, info = extract(img_path, work, spread=not a.no_spread, psf_fwhm_range=rng)
        if a.no_spread:
            cat["SPREAD_MODEL"] = np.nan
        print(
            f"tile RA {a.ra} Dec {a.dec} size {a.size}' seed {a.seed}: plate {tile.plate.region} "
            f"({tile.plate.label}, epoch {tile.plate.epoch:.2f}), {tile.image.shape[1]}x{tile.image.shape[0]} px, "
            f"rendered in {t_render:.1f}s; truth: "
            + ", ".join(f"{k}={v}" for k, v in tile.truth.cls.value_counts().items())
        )
        print(
            "lists: "
            + ", ".join(
                f"{k}={len(getattr(tile, k))}" for k in ("gaia", "ps1", "usnob", "allwise", "vsx", "skybot", "scos")
            )
        )
        print(summarise(cat, tile.truth, tile.image, work, info))
        if a.keep:
            shutil.copytree(work, a.keep, dirs_exist_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

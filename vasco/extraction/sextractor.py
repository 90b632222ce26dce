"""Run SExtractor and PSFEx: pass 1 -> PSF model -> pass 2.

The real Debian binaries (``source-extractor``, ``psfex``) are called with
argument lists (never a shell string), each with its own timeout.  Every
output is written under a temporary name and renamed into place only when
the tool succeeded and the file is readable, so a crash or a kill never
leaves a half-written catalogue under its final name.

Run-dependent settings come from :class:`vasco.config.ExtractionConfig` and
are passed as command-line overrides of the shipped configuration files in
``vasco/extraction/config/``.
"""

from __future__ import annotations

import os
import shutil
import warnings
import subprocess
import tempfile
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
from astropy.io import fits
from astropy.io.fits.verify import VerifyWarning

from vasco.config import ExtractionConfig

__all__ = [
    "ToolError",
    "config_dir",
    "find_tool",
    "run_pass1",
    "run_psfex",
    "run_pass2",
    "read_ldac",
    "psf_star_count",
    "psf_saturation_level",
]

SEXTRACTOR_NAMES = ("source-extractor", "sex")
PSFEX_NAMES = ("psfex",)


class ToolError(RuntimeError):
    """A SExtractor/PSFEx failure, with a short reason token for tile.json."""

    def __init__(self, reason: str, message: str):
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message


def config_dir() -> Path:
    """Folder of the shipped SExtractor/PSFEx configuration files."""
    return Path(str(resources.files("vasco.extraction") / "config"))


def find_tool(names: Sequence[str]) -> str:
    """Absolute path of the first of ``names`` found on PATH."""
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    raise ToolError(
        "FAIL_TOOL_MISSING",
        f"none of {', '.join(names)} is on PATH (install the Debian packages source-extractor and psfex)",
    )


def _run(cmd: list[str], cwd: Path, timeout: float, tool: str) -> None:
    try:
        proc = subprocess.run(
            cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise ToolError("FAIL_TOOL_TIMEOUT", f"{tool} did not finish within {timeout:.0f} s") from exc
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise ToolError(
            f"FAIL_{tool.upper()}",
            f"{tool} exited with status {proc.returncode}: {' | '.join(tail)}",
        )


def _sex_overrides(cfg: ExtractionConfig, satur_level: float) -> list[str]:
    cdir = config_dir()
    values = {
        "FILTER_NAME": str(cdir / "pyramid_2.0_3x3.conv"),
        "DETECT_THRESH": f"{cfg.detect_thresh:g}",
        "ANALYSIS_THRESH": f"{cfg.analysis_thresh:g}",
        "DETECT_MINAREA": str(cfg.detect_minarea),
        "DEBLEND_NTHRESH": str(cfg.deblend_nthresh),
        "DEBLEND_MINCONT": f"{cfg.deblend_mincont:g}",
        "BACK_SIZE": str(cfg.back_size),
        "BACK_FILTERSIZE": str(cfg.back_filtersize),
        "SATUR_LEVEL": f"{satur_level:g}",
        # Keep SExtractor away from header keywords that could override us.
        # (Key names longer than 8 characters silently break SATUR_LEVEL.)
        "SATUR_KEY": "NONE",
        "GAIN_KEY": "NONE",
    }
    args: list[str] = []
    for key, value in values.items():
        args += [f"-{key}", value]
    return args


def _tmp_name(final: Path) -> Path:
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".part", dir=final.parent)
    os.close(fd)
    return Path(tmp)


def _check_ldac(path: Path, tool: str) -> None:
    try:
        with fits.open(path, memmap=False) as hdul:
            if len(hdul) < 3 or hdul[2].name != "LDAC_OBJECTS":
                raise ToolError(f"FAIL_{tool.upper()}", f"{path.name} is not a FITS_LDAC catalogue")
    except OSError as exc:
        raise ToolError(f"FAIL_{tool.upper()}", f"{path.name} is unreadable: {exc}") from exc


def _sextract(
    image: Path, out: Path, cfg: ExtractionConfig, which: str, satur_level: float, extra: list[str]
) -> Path:
    sex = find_tool(SEXTRACTOR_NAMES)
    cdir = config_dir()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_name(out)
    cmd = [
        sex,
        str(Path(image).resolve()),
        "-c",
        str(cdir / f"{which}.sex"),
        "-PARAMETERS_NAME",
        str(cdir / f"{which}.param"),
        "-CATALOG_NAME",
        str(tmp.resolve()),
        *_sex_overrides(cfg, satur_level),
        *extra,
    ]
    try:
        _run(cmd, cwd=out.parent, timeout=cfg.tool_timeout_s, tool="sextractor")
        _check_ldac(tmp, "sextractor")
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out


def psf_saturation_level(image: Path, fraction: float) -> float:
    """Pass-1 SATUR_LEVEL of a tile: ``median + fraction * (plateau - median)``.

    The plateau (the 99.999th percentile of the pixels) is where the plate's
    density saturates; it differs from plate to plate (about 13,000 ADU on
    M67's tile, over 15,000 on M101's), so the level is measured per tile.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", VerifyWarning)
            with fits.open(image, memmap=False) as hdul:
                data = np.asarray(hdul[0].data, dtype=np.float32)
    except (OSError, TypeError, ValueError, VerifyWarning) as exc:
        raise ToolError("FAIL_BAD_IMAGE", f"{Path(image).name} is not a readable FITS image: {exc}") from exc
    if data.ndim != 2 or data.size == 0:
        raise ToolError("FAIL_BAD_IMAGE", f"{Path(image).name} has no 2-D image in its primary HDU")
    med, plateau = np.percentile(data, [50.0, 99.999])
    return float(med + fraction * (plateau - med))


def run_pass1(image: Path, out: Path, cfg: ExtractionConfig) -> Path:
    """SExtractor pass 1: detections with vignets, for PSFEx only.

    Stars whose peak reaches :func:`psf_saturation_level` are flagged
    saturated here, so PSFEx (SAMPLE_FLAGMASK) leaves them out of the PSF model.
    """
    level = psf_saturation_level(image, cfg.psf_peak_fraction)
    return _sextract(image, out, cfg, "pass1", level, [])


def psf_star_count(psf_path: Path) -> int:
    """Number of stars PSFEx accepted for the model (header key ACCEPTED)."""
    with fits.open(psf_path, memmap=False) as hdul:
        return int(hdul[1].header.get("ACCEPTED", 0))


def run_psfex(pass1_cat: Path, out: Path, cfg: ExtractionConfig, min_stars: int = 10) -> Path:
    """Build the PSF model from the pass-1 catalogue.

    Raises
    ------
    ToolError
        ``FAIL_PSFEX`` when PSFEx fails, ``REJECT_TOO_FEW_PSF_STARS`` when it
        accepted fewer than ``min_stars`` stars.
    """
    psfex = find_tool(PSFEX_NAMES)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".psfex.", dir=out.parent) as tdir:
        # Absolute paths: PSFEx runs inside the temporary folder.
        tdir_path = Path(tdir).resolve()
        # PSFEx names its output after the catalogue: give it a private copy.
        cat = tdir_path / "pass1.cat"
        shutil.copyfile(pass1_cat, cat)
        size = cfg.psf_size if cfg.psf_size % 2 else cfg.psf_size + 1
        cmd = [
            psfex,
            str(cat),
            "-c",
            str(config_dir() / "psfex.conf"),
            "-PSF_DIR",
            str(tdir_path),
            "-PSF_SIZE",
            f"{size},{size}",
            "-PSFVAR_DEGREES",
            str(cfg.psfvar_degree),
            "-SAMPLE_MINSN",
            f"{cfg.psf_sample_minsn:g}",
            "-SAMPLE_MAXELLIP",
            f"{cfg.psf_sample_maxellip:g}",
        ]
        _run(cmd, cwd=tdir_path, timeout=cfg.tool_timeout_s, tool="psfex")
        produced = tdir_path / "pass1.psf"
        if not produced.exists():
            raise ToolError("FAIL_PSFEX", "PSFEx wrote no PSF model (too few usable stars?)")
        n = psf_star_count(produced)
        if n < min_stars:
            raise ToolError(
                "REJECT_TOO_FEW_PSF_STARS", f"PSFEx accepted {n} stars, fewer than the {min_stars} required"
            )
        os.replace(produced, out)
    return out


def run_pass2(image: Path, psf: Path, out: Path, cfg: ExtractionConfig) -> Path:
    """SExtractor pass 2 with the PSF model: the measurements the cuts use."""
    return _sextract(
        image, out, cfg, "pass2", cfg.satur_level, ["-PSF_NAME", str(Path(psf).resolve())]
    )


def read_ldac(path: Path, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """Read the LDAC_OBJECTS table of a SExtractor FITS_LDAC catalogue.

    Multi-dimensional columns (VIGNET) are dropped unless asked for by name;
    big-endian columns are converted to native byte order.
    """
    with fits.open(path, memmap=False) as hdul:
        data = hdul["LDAC_OBJECTS"].data
        names = list(columns) if columns is not None else list(data.columns.names)
        out: dict[str, np.ndarray] = {}
        for name in names:
            col = np.asarray(data[name])
            if col.ndim > 1:
                if columns is None:
                    continue
                raise ValueError(f"{path}: column {name} is multi-dimensional")
            out[name] = col.astype(col.dtype.newbyteorder("="), copy=False)
    return pd.DataFrame(out)

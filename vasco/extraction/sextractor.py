"""Run SExtractor and PSFEx: pass 1 -> PSF model -> pass 2 -> PSF fit where needed.

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
import subprocess
import tempfile
import warnings
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
from astropy.io import fits
from astropy.io.fits.verify import VerifyWarning

from vasco.config import ExtractionConfig
from vasco.tools import tool_version

__all__ = [
    "ToolError",
    "config_dir",
    "find_tool",
    "run_pass1",
    "run_psfex",
    "psfex_command",
    "run_pass2",
    "run_psf_fit",
    "PSF_COLUMNS",
    "read_ldac",
    "psf_star_count",
    "ldac_rows",
    "psf_saturation_level",
    "tool_versions",
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


def tool_versions() -> dict[str, str | None]:
    """Versions of the SExtractor and PSFEx found on PATH (``--version``).

    Returns ``{"source-extractor": "2.25.0", "psfex": "3.21.1"}``: the word
    after "version" in the tool's answer (its whole first line when there is
    none); None for a tool that is missing or does not answer within 5 s.
    Each executable is asked once per process (:func:`vasco.tools.tool_version`).
    """
    out: dict[str, str | None] = {}
    for key, names in (("source-extractor", SEXTRACTOR_NAMES), ("psfex", PSFEX_NAMES)):
        try:
            exe = find_tool(names)
        except ToolError:
            out[key] = None
            continue
        out[key] = tool_version(os.path.realpath(exe))
    return out


def _run(cmd: list[str], cwd: Path, timeout: float, tool: str) -> None:
    try:
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)
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
    image: Path,
    out: Path,
    cfg: ExtractionConfig,
    which: str,
    satur_level: float,
    extra: list[str],
    params: Path | None = None,
) -> Path:
    sex = find_tool(SEXTRACTOR_NAMES)
    cdir = config_dir()
    params = params or cdir / f"{which}.param"
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_name(out)
    cmd = [
        sex,
        str(Path(image).resolve()),
        "-c",
        str(cdir / f"{which}.sex"),
        "-PARAMETERS_NAME",
        str(Path(params).resolve()),
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


def run_pass1(image: Path, out: Path, cfg: ExtractionConfig, params: Path | None = None) -> Path:
    """SExtractor pass 1: detections with vignets, for PSFEx only.

    Stars whose peak reaches :func:`psf_saturation_level` are flagged
    saturated here, so PSFEx (SAMPLE_FLAGMASK) leaves them out of the PSF model.
    ``params`` replaces the shipped ``pass1.param`` (the benchmarks try other
    VIGNET sizes with it).
    """
    level = psf_saturation_level(image, cfg.psf_peak_fraction)
    return _sextract(image, out, cfg, "pass1", level, [], params=params)


def ldac_rows(path: Path) -> int:
    """Number of detections in a FITS_LDAC catalogue (its header only)."""
    with fits.open(path, memmap=True) as hdul:
        return int(hdul["LDAC_OBJECTS"].header["NAXIS2"])


def psf_star_count(psf_path: Path) -> int:
    """Number of stars PSFEx accepted for the model (header key ACCEPTED)."""
    with fits.open(psf_path, memmap=False) as hdul:
        return int(hdul[1].header.get("ACCEPTED", 0))


def psfex_command(psfex: str, cat: Path, psf_dir: Path, cfg: ExtractionConfig) -> list[str]:
    """The PSFEx command line of :func:`run_psfex`: ``psfex.conf`` and the settings of ``cfg``.

    PSFEx writes ``<cat stem>.psf`` into ``psf_dir``.  Options appended to the
    list override these (PSFEx keeps the last value of a repeated option).
    """
    size = cfg.psf_size if cfg.psf_size % 2 else cfg.psf_size + 1
    return [
        psfex,
        str(cat),
        "-c",
        str(config_dir() / "psfex.conf"),
        "-PSF_DIR",
        str(psf_dir),
        "-PSF_SIZE",
        f"{size},{size}",
        "-PSFVAR_DEGREES",
        str(cfg.psfvar_degree),
        "-SAMPLE_MINSN",
        f"{cfg.psf_sample_minsn:g}",
        "-SAMPLE_MAXELLIP",
        f"{cfg.psf_sample_maxellip:g}",
    ]


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
        cmd = psfex_command(psfex, cat, tdir_path, cfg)
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


#: Pass-2 columns that need the PSF model (PSF fit and model fit): nearly all of
#: pass 2's time when measured for every detection.
PSF_COLUMNS: tuple[str, ...] = ("MAG_PSF", "MAGERR_PSF", "SPREAD_MODEL", "SPREADERR_MODEL")

#: ASSOC match radius (px) between a listed detection and itself in the PSF run
#: (the same detection at the same position, up to the list's decimal digits).
_ASSOC_RADIUS_PX = 0.5


def _pass2_params() -> list[str]:
    return [p for p in (config_dir() / "pass2.param").read_text().split() if not p.startswith("#")]


def run_pass2(image: Path, psf: Path | None, out: Path, cfg: ExtractionConfig) -> Path:
    """SExtractor pass 2: the measurements the cuts use.

    With ``psf`` (a PSFEx model), every detection also gets the PSF-model
    columns (:data:`PSF_COLUMNS`), about 95% of the run's time.  With
    ``psf=None`` the run leaves them out and is as fast as pass 1; detection,
    deblending and every other column are the same (the tests compare them
    bit for bit), and :func:`run_psf_fit` measures the PSF-model columns later
    for the detections that need them.
    """
    if psf is not None:
        return _sextract(image, out, cfg, "pass2", cfg.satur_level, ["-PSF_NAME", str(Path(psf).resolve())])
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".pass2.", dir=out.parent) as tdir:
        params = Path(tdir) / "measure.param"
        params.write_text("\n".join(p for p in _pass2_params() if p not in PSF_COLUMNS) + "\n")
        return _sextract(image, out, cfg, "pass2", cfg.satur_level, [], params=params)


def run_psf_fit(image: Path, psf: Path, listed: pd.DataFrame, workdir: Path, cfg: ExtractionConfig) -> pd.DataFrame:
    """The PSF-model columns of the pass-2 detections in ``listed``, and only those.

    Runs SExtractor with the pass-2 configuration and the PSF model in ASSOC
    mode (``ASSOCSELEC_TYPE MATCHED``) on the list of ``NUMBER``,
    ``X_IMAGE``, ``Y_IMAGE`` of ``listed`` (rows of a pass 2 of the same image
    and configuration).  SExtractor 2.25 detects and deblends before it looks
    at the list, and skips every measurement of an unlisted detection, so
    each listed detection gets exactly the values a full pass 2 gives it.

    Returns a table of ``NUMBER`` and :data:`PSF_COLUMNS`, one row per listed
    detection, in the order of ``listed``.  The temporary files go in a
    private folder under ``workdir`` and are removed.

    Raises
    ------
    ToolError
        When SExtractor fails, or does not give back every listed detection
        at its position (``FAIL_SEXTRACTOR``): a missing value is never
        filled in.
    """
    missing_cols = {"NUMBER", "X_IMAGE", "Y_IMAGE"} - set(listed.columns)
    if missing_cols:
        raise ValueError(f"listed detections lack column(s) {sorted(missing_cols)}")
    listed = listed[["NUMBER", "X_IMAGE", "Y_IMAGE"]]
    if listed.empty:
        return pd.DataFrame({"NUMBER": np.array([], np.int64), **{c: np.array([], np.float32) for c in PSF_COLUMNS}})
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".psf_fit.", dir=workdir) as tdir:
        tdir_path = Path(tdir)
        assoc = tdir_path / "assoc.txt"
        np.savetxt(assoc, listed.to_numpy(np.float64), fmt=["%d", "%.10f", "%.10f"])
        psf_params = tdir_path / "psf.param"
        psf_params.write_text("\n".join(["X_IMAGE", "Y_IMAGE", "VECTOR_ASSOC(1)", *PSF_COLUMNS]) + "\n")
        psf_cat = _sextract(
            image,
            tdir_path / "psf.ldac",
            cfg,
            "pass2",
            cfg.satur_level,
            [
                "-PSF_NAME",
                str(Path(psf).resolve()),
                "-ASSOC_NAME",
                str(assoc.resolve()),
                "-ASSOC_PARAMS",
                "2,3",
                "-ASSOC_DATA",
                "1",
                "-ASSOC_RADIUS",
                f"{_ASSOC_RADIUS_PX:g}",
                "-ASSOC_TYPE",
                "NEAREST",
                "-ASSOCSELEC_TYPE",
                "MATCHED",
            ],
            params=psf_params,
        )
        got = _assoc_rows(psf_cat, listed)
    got = got.set_index("NUMBER").loc[listed["NUMBER"].to_numpy()].reset_index()
    return got[["NUMBER", *PSF_COLUMNS]].reset_index(drop=True)


def _assoc_rows(psf_cat: Path, listed: pd.DataFrame) -> pd.DataFrame:
    """The ASSOC run's rows, one per listed detection, with its NUMBER.

    A detection near (within the ASSOC radius of) a listed one but not itself
    listed is matched to it too; the row at the listed position is kept.
    """
    with fits.open(psf_cat, memmap=False) as hdul:
        data = hdul["LDAC_OBJECTS"].data
        got = pd.DataFrame(
            {
                "NUMBER": np.rint(np.asarray(data["VECTOR_ASSOC"], np.float64).reshape(len(data), -1)[:, 0]).astype(
                    np.int64
                ),
                "x": np.asarray(data["X_IMAGE"], np.float64),
                "y": np.asarray(data["Y_IMAGE"], np.float64),
                **{c: np.asarray(data[c]).astype(np.float32) for c in PSF_COLUMNS},
            }
        )
    ref = listed.set_index("NUMBER")
    known = got["NUMBER"].isin(ref.index)
    got = got[known].copy()
    got["d2"] = (got["x"] - ref.loc[got["NUMBER"], "X_IMAGE"].to_numpy()) ** 2 + (
        got["y"] - ref.loc[got["NUMBER"], "Y_IMAGE"].to_numpy()
    ) ** 2
    got = got.sort_values(["NUMBER", "d2"], kind="stable").drop_duplicates("NUMBER")
    missing = len(ref) - len(got)
    if missing or (got["d2"] > 1e-6).any():
        raise ToolError(
            "FAIL_SEXTRACTOR",
            f"the PSF (ASSOC) pass did not give back {max(missing, 0)} of {len(ref)} listed detection(s) "
            "at their positions",
        )
    return got


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

"""Shared by the benchmarks: the floor, SExtractor then PSFEx with their Debian default settings.

"The floor" is what a user who knows nothing of VASCO would run to get a PSF
model of an image: ``source-extractor`` with the configuration that
``source-extractor -d`` prints, changed only where PSFEx needs it
(``CATALOG_TYPE FITS_LDAC``, a parameter list of the columns PSFEx's
documentation asks for, the Debian ``default.conv`` filter found by path),
then ``psfex`` with the configuration ``psfex -d`` prints, changed only in
where it writes (``PSF_DIR`` and the folder it runs in).  The literal
defaults also write check-images, check-plots and an XML report; a second
PSFEx figure has those off (``CHECKIMAGE_TYPE NONE``, ``CHECKPLOT_TYPE NONE``,
``WRITE_XML N``).  The floor is the first (what a user would run).  Where
PLplot has no PNG device (this machine) PSFEx's literal defaults abort while
plotting, after writing the model: there the plots go to PLplot's NULL device
(``CHECKPLOT_DEV NULL``, every plot still computed), and the result says so
(``plot_dev_null``).

Times are the CPU time (user + system) of the tool's process, from
``getrusage(RUSAGE_CHILDREN)`` deltas, and its wall time; :func:`median_runs`
repeats a run and keeps the median of each.
"""

from __future__ import annotations

import resource
import statistics
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from astropy.io import fits

SEX_SHARE = Path("/usr/share/source-extractor")

#: The columns PSFEx's documentation asks of the SExtractor catalogue (its
#: cookbook's list, plus SNR_WIN which PSFEx 3.x reads for SAMPLE_MINSN).
FLOOR_PARAMS: tuple[str, ...] = (
    "NUMBER",
    "X_IMAGE",
    "Y_IMAGE",
    "FLUX_RADIUS",
    "FLAGS",
    "FLUX_APER(1)",
    "FLUXERR_APER(1)",
    "ELONGATION",
    "SNR_WIN",
    "VIGNET(35,35)",
)

#: PSFEx switches that turn off its check outputs (the floor's second figure).
QUIET_PSFEX: tuple[str, ...] = ("-CHECKIMAGE_TYPE", "NONE", "-CHECKPLOT_TYPE", "NONE", "-WRITE_XML", "N")


def timed(cmd: Sequence[str], cwd: Path) -> tuple[float, float]:
    """Run ``cmd`` in ``cwd``; return (CPU s of the child, wall s).  Raises on failure."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run([*cmd], cwd=cwd, capture_output=True, text=True, errors="replace", check=False)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[0]} exited {proc.returncode}: {(proc.stderr or proc.stdout)[-500:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu, wall


def median_runs(n: int, run: Callable[[], tuple[float, float]]) -> tuple[float, float]:
    """Call ``run`` ``n`` times; the median CPU and the median wall time."""
    got = [run() for _ in range(n)]
    return statistics.median(c for c, _ in got), statistics.median(w for _, w in got)


def default_config(tool: str, dest: Path) -> Path:
    """``tool -d`` (its built-in default configuration) written to ``dest``."""
    text = subprocess.run([tool, "-d"], capture_output=True, text=True, check=True).stdout
    dest.write_text(text)
    return dest


def floor_sextractor_cmd(image: Path, work: Path) -> list[str]:
    """The floor's SExtractor command: ``source-extractor -d``'s settings, FITS_LDAC, PSFEx's columns."""
    work.mkdir(parents=True, exist_ok=True)
    conf = default_config("source-extractor", work / "default.sex")
    params = work / "floor.param"
    params.write_text("\n".join(FLOOR_PARAMS) + "\n")
    return [
        "source-extractor",
        str(Path(image).resolve()),
        "-c",
        str(conf),
        "-CATALOG_TYPE",
        "FITS_LDAC",
        "-CATALOG_NAME",
        str((work / "floor.cat").resolve()),
        "-PARAMETERS_NAME",
        str(params.resolve()),
        "-FILTER_NAME",
        str(SEX_SHARE / "default.conv"),
    ]


def floor_psfex_cmd(cat: Path, work: Path, quiet: bool = False, plot_dev: str | None = None) -> list[str]:
    """The floor's PSFEx command: ``psfex -d``'s settings, writing into ``work``.

    ``quiet`` turns the check outputs off; ``plot_dev`` replaces CHECKPLOT_DEV
    (where PLplot lacks the default PNG device PSFEx aborts after writing the model).
    """
    conf = default_config("psfex", work / "default.psfex")
    cmd = ["psfex", str(Path(cat).resolve()), "-c", str(conf), "-PSF_DIR", str(work.resolve())]
    if plot_dev:
        cmd += ["-CHECKPLOT_DEV", plot_dev]
    return cmd + list(QUIET_PSFEX if quiet else ())


_LITERAL_OK: list[bool] = []


def literal_psfex_works(cat: Path, work: Path) -> bool:
    """Whether PSFEx with its literal defaults finishes here (asked once per process).

    It draws its check-plots with PLplot's PNG device; where PLplot lacks it
    (as on this machine) PSFEx aborts (status 1) after writing the model.
    """
    if _LITERAL_OK:
        return _LITERAL_OK[0]
    cmd = floor_psfex_cmd(cat, work)
    proc = subprocess.run(cmd, cwd=work, capture_output=True, text=True, errors="replace", check=False)
    _LITERAL_OK.append(proc.returncode == 0)
    return _LITERAL_OK[0]


def child_cpu(run: Callable[[], object]) -> tuple[float, float]:
    """Call ``run`` (which runs external tools); return (CPU s of the processes it ran, wall s)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    run()
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), wall


def psf_header(psf: Path) -> dict[str, float]:
    """What PSFEx chose: accepted stars, sampling step, model size, FWHM (px)."""
    with fits.open(psf, memmap=False) as hdul:
        h = hdul[1].header
        return {
            "stars": int(h.get("ACCEPTED", 0)),
            "loaded": int(h.get("LOADED", 0)),
            "sampling": float(h.get("PSF_SAMP", float("nan"))),
            "size": int(h.get("PSFAXIS1", 0)),
            "fwhm": float(h.get("PSF_FWHM", float("nan"))),
        }


def floor(image: Path, work: Path, repeats: int = 3) -> dict[str, float]:
    """Time the floor on ``image`` (median of ``repeats`` runs of each tool).

    Returns CPU and wall seconds of SExtractor (``sex_cpu``, ``sex_wall``), of
    PSFEx as its defaults stand (``psfex_cpu``, ``psfex_wall``: the floor) and
    of PSFEx with its check outputs off (``psfex_quiet_cpu``,
    ``psfex_quiet_wall``), ``total_cpu`` / ``total_wall`` (SExtractor + the
    floor's PSFEx), the catalogue's detections and what PSFEx chose
    (:func:`psf_header`).  Files go in ``work``.
    """
    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    sex = floor_sextractor_cmd(image, work)
    out: dict[str, float] = {}
    out["sex_cpu"], out["sex_wall"] = median_runs(repeats, lambda: timed(sex, work))
    cat = work / "floor.cat"
    with fits.open(cat, memmap=False) as hdul:
        out["detections"] = int(hdul["LDAC_OBJECTS"].header["NAXIS2"])
    plot_dev = None if literal_psfex_works(cat, work) else "NULL"
    out["plot_dev_null"] = plot_dev is not None
    psfex = floor_psfex_cmd(cat, work, plot_dev=plot_dev)
    out["psfex_cpu"], out["psfex_wall"] = median_runs(repeats, lambda: timed(psfex, work))
    quiet = floor_psfex_cmd(cat, work, quiet=True)
    out["psfex_quiet_cpu"], out["psfex_quiet_wall"] = median_runs(repeats, lambda: timed(quiet, work))
    out.update(psf_header(work / "floor.psf"))
    out["total_cpu"] = out["sex_cpu"] + out["psfex_cpu"]
    out["total_wall"] = out["sex_wall"] + out["psfex_wall"]
    return out

"""Fault injection: what the pipeline answers to each fault, written into the fault table.

Every test here asks for the ``fault`` fixture (``tests/faultlog.py``), names
the fault and the behaviour expected, records what the pipeline did, and
asserts it.  ``bash scripts/test.sh`` writes the table to ``docs/faults.md``.
Everything is offline: loopback stand-in servers, the real M101 cutout, the
synthetic sky, and the real SExtractor/PSFEx (or a stand-in on PATH that
crashes or hangs, for those faults).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from astropy.io import fits
from servers.dss import DssStandIn

import flows.survey  # noqa: F401 - Prefect sets up its log handlers now, on the real stderr
from vasco.config import VascoConfig
from vasco.io import read_json

REPO = Path(__file__).resolve().parents[1]
M101_CENTRE = (210.80254413455, 54.347395233845)
HAVE_TOOLS = shutil.which("source-extractor") is not None and shutil.which("psfex") is not None
needs_tools = pytest.mark.skipif(not HAVE_TOOLS, reason="SExtractor/PSFEx are not installed")


def leftovers(folder: Path) -> list[str]:
    """Every file under ``folder`` (relative), temporary ones included."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


# =========================================================================== network


def _dss_cfg(url: str, **http: float) -> VascoConfig:
    fast = {
        "max_attempts": 3,
        "backoff_base_s": 0.01,
        "backoff_max_s": 0.05,
        "read_timeout_s": 2.0,
        "connect_timeout_s": 2.0,
        **http,
    }
    return VascoConfig.model_validate(
        {"survey": {"size_arcmin": 15.0}, "sources": {"dss": {"base_url": url, "http": fast}}}
    )


def _acquire(tile_dir: Path, cfg: VascoConfig) -> tuple[str, float]:
    """Run the acquire step; return its outcome ('ok' or the reason token) and its time."""
    from vasco.steps.acquire import acquire_dss
    from vasco.steps.base import StepError

    t0 = time.perf_counter()
    try:
        acquire_dss(tile_dir, *M101_CENTRE, cfg)
        return "ok", time.perf_counter() - t0
    except StepError as exc:
        return exc.reason, time.perf_counter() - t0


@pytest.fixture
def dss(m101_path: Path):
    with DssStandIn(m101_path) as server:
        yield server


NETWORK_ONCE = [
    ("connection reset mid-body", ("cut",)),
    ("timeout (no answer within read_timeout_s)", ("slow", 5.0)),
    ("HTTP 500", ("status", 500)),
    ("HTTP 502", ("status", 502)),
    ("HTTP 503", ("status", 503)),
    ("HTTP 504", ("status", 504)),
]


@pytest.mark.parametrize("name,action", NETWORK_ONCE, ids=[n for n, _ in NETWORK_ONCE])
def test_transient_network_fault_is_retried(name, action, dss, m101_path, tmp_path, fault):
    """Once: the next attempt gets the real cutout, byte for byte."""
    row = fault("network", f"DSS: {name}, once", "retried; the tile gets the intact cutout")
    dss.queue(action)
    outcome, _ = _acquire(tmp_path / "tile", _dss_cfg(dss.base_url))
    row.saw(f"{outcome} after {len(dss.seen)} requests")
    assert outcome == "ok" and len(dss.seen) == 2
    assert (tmp_path / "tile" / "raw" / "image.fits").read_bytes() == m101_path.read_bytes()


NETWORK_ALWAYS = [
    ("HTTP 503 on every attempt", ("status", 503), "FAIL_DSS_HTTP_503", 3),
    ("timeout on every attempt", ("slow", 5.0), "FAIL_DSS_TIMEOUT", 3),
    ("connection reset mid-body on every attempt", ("cut",), "FAIL_DSS_TRUNCATED", 3),
    ("complete answer whose FITS is cut short", ("truncated",), "FAIL_DSS_TRUNCATED", 1),
    ("gzip that does not decompress", ("bad_gzip",), "FAIL_DSS_DECODE", 1),
    ("HTML page instead of FITS", ("html",), "FAIL_DSS_HTML", 1),
    ("empty body", ("empty",), "FAIL_DSS_EMPTY", 1),
]


@pytest.mark.parametrize("name,action,token,attempts", NETWORK_ALWAYS, ids=[n for n, *_ in NETWORK_ALWAYS])
def test_persistent_network_fault_fails_the_step_with_its_token(name, action, token, attempts, dss, tmp_path, fault):
    tries = "not retried" if attempts == 1 else f"after {attempts} attempts"
    row = fault("network", f"DSS: {name}", f"`{token}` {tries}; no file left")
    dss.queue(*[action] * 5)
    outcome, _ = _acquire(tmp_path / "tile", _dss_cfg(dss.base_url))
    left = leftovers(tmp_path / "tile" / "raw")
    row.saw(f"`{outcome}` after {len(dss.seen)} requests; files left in raw/: {len(left)}")
    assert outcome == token and left == [] and len(dss.seen) == attempts


def test_connection_refused(tmp_path, fault):
    import socket

    row = fault("network", "DSS: connection refused", "`FAIL_DSS_CONNECTION` after every attempt; no file left")
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    outcome, _ = _acquire(tmp_path / "tile", _dss_cfg(f"http://127.0.0.1:{port}/cgi-bin/dss_search"))
    left = leftovers(tmp_path / "tile" / "raw")
    row.saw(f"`{outcome}`; files left: {len(left)}")
    assert outcome == "FAIL_DSS_CONNECTION" and left == []


def test_429_retry_after_is_honoured(dss, tmp_path, fault):
    row = fault("network", "DSS: 429 with Retry-After: 1", "waits the 1 s asked, then gets the cutout")
    dss.queue(("status", 429, {"Retry-After": "1"}))
    outcome, took = _acquire(tmp_path / "tile", _dss_cfg(dss.base_url))
    row.saw(f"{outcome} after {len(dss.seen)} requests, {took:.2f} s")
    assert outcome == "ok" and len(dss.seen) == 2 and took >= 1.0


def test_answer_over_the_size_cap_is_refused(dss, tmp_path, fault):
    row = fault("security", "download bigger than the cap (`http.max_bytes`)", "`FAIL_DSS_TOO_BIG`, no retry, no file")
    outcome, _ = _acquire(tmp_path / "tile", _dss_cfg(dss.base_url, max_bytes=100_000))
    row.saw(f"`{outcome}` after {len(dss.seen)} request(s)")
    assert outcome == "FAIL_DSS_TOO_BIG" and len(dss.seen) == 1 and leftovers(tmp_path / "tile" / "raw") == []


def test_catalogue_answer_cut_at_the_row_limit_is_completed(fault):
    """VizieR's answer stops at the row limit: the cone is split until every part is complete."""
    from servers.clients import Recorder, client
    from servers.vizier import VizierStandIn
    from test_sources import gaia_like, in_cone

    from vasco.sources.vizier import ConeStats, query_cone

    row = fault("network", "VizieR: answer cut at the row limit", "cone split until complete: every row, once")
    table = gaia_like(900, 150.0, 20.0, 0.4, seed=3)
    stats = ConeStats()
    with VizierStandIn({"I/350/gaiaedr3": (table, "RA_ICRS", "DE_ICRS")}) as viz:
        got = query_cone(
            "I/350/gaiaedr3", 150.0, 20.0, 0.3, row_limit=120, server_url=viz.url, http=client(Recorder()), stats=stats
        )
    want = in_cone(table, 150.0, 20.0, 0.3, "RA_ICRS", "DE_ICRS")
    row.saw(
        f"{len(got)} rows of {len(want)} in the cone, {int(got['Source'].duplicated().sum())} duplicates; "
        f"{stats.truncated_answers} cut answers, {stats.requests} requests"
    )
    assert len(want) > 120 and sorted(got["Source"]) == sorted(want["Source"]) and got["Source"].is_unique


def test_skybot_empty_answer_is_no_object_only_when_complete(fault):
    """SkyBoT answers a field without known objects with an empty body: "no object" only if it is whole."""
    from servers.clients import Recorder, client
    from servers.skybot import SkybotStandIn
    from test_sources_vetoes import JD_1953, asteroids

    from vasco.sources.http import SourceError
    from vasco.sources.skybot import query_skybot

    row = fault(
        "network",
        "SkyBoT: empty answer (a field with no known object)",
        "Content-Length 0 or a finished chunked body: no object; no length and no chunks: "
        "FAIL_SKYBOT_EMPTY; chunked body cut: FAIL_SKYBOT_TRUNCATED",
    )
    seen = {}
    with SkybotStandIn(asteroids(), JD_1953, no_object="empty") as server:
        for action in ("pass", "chunked", "unframed", "chunked_cut"):
            server.queue((action,))
            try:
                got = query_skybot(
                    10.0, -40.0, 0.05, JD_1953, base_url=server.base_url, http=client(Recorder(), max_attempts=1)
                )
                seen[action] = f"{len(got)} objects"
            except SourceError as exc:
                seen[action] = exc.reason
    row.saw("; ".join(f"{k}: `{v}`" for k, v in seen.items()))
    assert seen == {
        "pass": "0 objects",
        "chunked": "0 objects",
        "unframed": "FAIL_SKYBOT_EMPTY",
        "chunked_cut": "FAIL_SKYBOT_TRUNCATED",
    }


def test_supercosmos_unreadable_page_is_never_no_rows(fault):
    """The SSA form's page without a link or an explicit row count fails: the veto removes what is not seen."""
    from servers.clients import Recorder, client
    from servers.supercosmos import SupercosmosStandIn
    from test_sources_vetoes import ssa_like

    from vasco.sources.http import SourceError
    from vasco.sources.supercosmos import query_supercosmos

    row = fault(
        "network",
        "SuperCOSMOS: answer page unreadable (busy page, loose 'nothing found', miscount)",
        "FAIL_SUPERCOSMOS_UNREADABLE / COUNT_MISMATCH, never an empty answer",
    )
    table = ssa_like(300, 0.05, 20.0, 0.1, seed=2)
    seen = {}
    for label, kwargs, action, centre in (
        ("busy page", {}, ("busy",), (0.05, 20.0)),
        ("loose 'no objects'", {"zero_rows": "vague"}, None, (90.0, -10.0)),
        ("stated 3 rows", {}, ("miscount", 3), (0.05, 20.0)),
    ):
        with SupercosmosStandIn(table, **kwargs) as server:
            if action:
                server.queue(action)
            try:
                got = query_supercosmos(*centre, 0.05, base_url=server.base_url, http=client(Recorder()))
                seen[label] = f"{len(got)} rows"
            except SourceError as exc:
                seen[label] = exc.reason
    row.saw("; ".join(f"{k}: `{v}`" for k, v in seen.items()))
    assert seen == {
        "busy page": "FAIL_SUPERCOSMOS_UNREADABLE",
        "loose 'no objects'": "FAIL_SUPERCOSMOS_UNREADABLE",
        "stated 3 rows": "FAIL_SUPERCOSMOS_COUNT_MISMATCH",
    }


# =========================================================================== files and tools (one tile)


@pytest.fixture(scope="module")
def gaia_csv(tmp_path_factory) -> Path:
    """A small Gaia-like file over the M101 cutout (random stars: the faults strike before matching)."""
    rng = np.random.default_rng(1)
    n = 200
    path = tmp_path_factory.mktemp("gaia") / "gaia.csv"
    pd.DataFrame(
        {
            "RA_ICRS": M101_CENTRE[0] + rng.uniform(-0.2, 0.2, n),
            "DE_ICRS": M101_CENTRE[1] + rng.uniform(-0.12, 0.12, n),
            "pmRA": 0.0,
            "pmDE": 0.0,
            "Gmag": rng.uniform(12, 19, n),
            "Source": np.arange(n, dtype=np.int64),
        }
    ).to_csv(path, index=False)
    return path


def _tile(fits_path: Path, out: Path, gaia: Path, config: dict | None = None) -> tuple[int, dict]:
    """``vasco tile`` on a file; return its exit code and tile.json (empty if none)."""
    from flows.cli import main

    args = ["tile", "--fits", str(fits_path), "--catalog", f"gaia={gaia}", "--out", str(out)]
    if config:
        conf = out.parent / f"{out.name}-config.json"
        conf.write_text(json.dumps(config))
        args += ["--config", str(conf)]
    code = main(args)
    rec = read_json(out / "tile.json") if (out / "tile.json").exists() else {}
    return code, rec


def _temporaries(folder: Path) -> list[str]:
    """Partial files and private temporary folders left anywhere under ``folder``."""
    if not folder.exists():
        return []
    return sorted(
        str(p.relative_to(folder))
        for p in folder.rglob(".*")
        if p.name.endswith((".part", ".tmp")) or (p.is_dir() and p.parent.name == "work")
    )


def _with_data(m101_path: Path, dest: Path, data: np.ndarray | None = None, strip: tuple[str, ...] = ()) -> Path:
    """The M101 cutout with other pixels and/or header keywords removed."""
    with fits.open(m101_path) as hdul:
        header = hdul[0].header.copy()
        pixels = hdul[0].data if data is None else data
    for key in list(header.keys()):
        if any(key.startswith(p) for p in strip):
            del header[key]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the DSS header's non-standard SKEW card
        fits.PrimaryHDU(data=pixels, header=header).writeto(dest, output_verify="ignore")
    return dest


def _tile_row(row, code: int, rec: dict, out: Path) -> None:
    row.saw(
        f"exit {code}; tile.json status `{rec.get('status')}`, reason `{rec.get('reason')}`; "
        f"candidates file: {(out / 'candidates.parquet').exists()}; temporaries left: {len(_temporaries(out))}"
    )


@needs_tools
def test_corrupt_fits(tmp_path, gaia_csv, harness, fault):
    row = fault("files", "corrupt FITS (random bytes)", "tile `failed`, `FAIL_BAD_IMAGE`; no candidates")
    bad = tmp_path / "bad.fits"
    bad.write_bytes(np.random.default_rng(2).bytes(200_000))
    code, rec = _tile(bad, tmp_path / "out", gaia_csv)
    _tile_row(row, code, rec, tmp_path / "out")
    assert code == 1 and rec["status"] == "failed" and rec["reason"] == "FAIL_BAD_IMAGE"
    assert not (tmp_path / "out" / "candidates.parquet").exists() and _temporaries(tmp_path / "out") == []


@needs_tools
def test_fits_without_usable_astrometry(m101_path, tmp_path, gaia_csv, harness, fault):
    row = fault(
        "files",
        "FITS with no usable astrometry (WCS and plate solution removed)",
        "tile `failed`, `FAIL_NO_ASTROMETRY`; no candidates",
    )
    img = _with_data(
        m101_path,
        tmp_path / "noast.fits",
        strip=("CRPIX", "CRVAL", "CD1_", "CD2_", "CTYPE", "AMDX", "AMDY", "PLTRA", "PLTDEC", "PPO", "CDELT"),
    )
    code, rec = _tile(img, tmp_path / "out", gaia_csv)
    _tile_row(row, code, rec, tmp_path / "out")
    assert code == 1 and rec["status"] == "failed" and rec["reason"] == "FAIL_NO_ASTROMETRY"
    assert not (tmp_path / "out" / "candidates.parquet").exists()


@needs_tools
def test_non_poss_plate(serc_path, tmp_path, gaia_csv, harness, fault):
    row = fault("files", "not a POSS-I E plate (SERC-ER cutout)", "tile `rejected`, `REJECT_NON_POSS`; no extraction")
    code, rec = _tile(serc_path, tmp_path / "out", gaia_csv)
    _tile_row(row, code, rec, tmp_path / "out")
    assert code == 1 and rec["status"] == "rejected" and rec["reason"] == "REJECT_NON_POSS"
    assert not (tmp_path / "out" / "steps" / "psf.json").exists()


@needs_tools
@pytest.mark.parametrize("kind", ["blank", "no stars (sky noise only)", "saturated"])
def test_tile_without_usable_stars(kind, m101_path, tmp_path, gaia_csv, harness, fault):
    row = fault("files", f"tile {kind}", "tile `rejected` or `failed` with a PSF reason token; no candidates")
    shape = fits.getdata(m101_path).shape
    if kind == "blank":
        data = np.full(shape, 4000, dtype=np.int16)
    elif kind == "saturated":
        data = np.full(shape, 32767, dtype=np.int16)
    else:
        data = (4000 + 250 * np.random.default_rng(3).standard_normal(shape)).astype(np.int16)
    img = _with_data(m101_path, tmp_path / "img.fits", data=data)
    code, rec = _tile(img, tmp_path / "out", gaia_csv)
    _tile_row(row, code, rec, tmp_path / "out")
    assert code == 1 and rec["status"] in ("rejected", "failed")
    assert rec["reason"] in ("REJECT_TOO_FEW_PSF_STARS", "FAIL_PSFEX")
    assert not (tmp_path / "out" / "candidates.parquet").exists() and _temporaries(tmp_path / "out") == []


def _fake_tool(folder: Path, name: str, script: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text("#!/bin/sh\n" + script + "\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


@needs_tools
def test_sextractor_missing(m101_path, tmp_path, gaia_csv, harness, fault, monkeypatch):
    row = fault("tools", "SExtractor not installed (not on PATH)", "tile `failed`, `FAIL_TOOL_MISSING`, not retried")
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    code, rec = _tile(m101_path, tmp_path / "out", gaia_csv)
    _tile_row(row, code, rec, tmp_path / "out")
    assert code == 1 and rec["status"] == "failed" and rec["reason"] == "FAIL_TOOL_MISSING"
    assert "source-extractor" in rec["error"]


@needs_tools
@pytest.mark.parametrize("tool,names", [("SExtractor", ("source-extractor", "sex")), ("PSFEx", ("psfex",))])
def test_tool_crashes(tool, names, m101_path, tmp_path, gaia_csv, harness, fault, monkeypatch):
    token = "FAIL_SEXTRACTOR" if tool == "SExtractor" else "FAIL_PSFEX"
    row = fault("tools", f"{tool} crashes (exit status 3)", f"tile `failed`, `{token}`, stderr in the error")
    bin_dir = tmp_path / "bin"
    for name in names:
        _fake_tool(bin_dir, name, "echo 'segmentation fault (stand-in)' >&2; exit 3")
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    code, rec = _tile(m101_path, tmp_path / "out", gaia_csv)
    _tile_row(row, code, rec, tmp_path / "out")
    assert code == 1 and rec["status"] == "failed" and rec["reason"] == token
    assert "segmentation fault (stand-in)" in rec["error"] and _temporaries(tmp_path / "out") == []


@needs_tools
def test_tool_hangs(m101_path, tmp_path, gaia_csv, harness, fault, monkeypatch):
    row = fault(
        "tools", "SExtractor hangs", "killed at `extraction.tool_timeout_s`; tile `failed`, `FAIL_TOOL_TIMEOUT`"
    )
    bin_dir = tmp_path / "bin"
    for name in ("source-extractor", "sex"):
        _fake_tool(bin_dir, name, "exec sleep 120")
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    t0 = time.perf_counter()
    code, rec = _tile(m101_path, tmp_path / "out", gaia_csv, {"extraction": {"tool_timeout_s": 1.0}})
    took = time.perf_counter() - t0
    _tile_row(row, code, rec, tmp_path / "out")
    row.saw(f"{took:.1f} s in all")
    assert code == 1 and rec["status"] == "failed" and rec["reason"] == "FAIL_TOOL_TIMEOUT" and took < 60


@needs_tools
def test_corrupt_cache_entries_are_recomputed(m101_path, tmp_path, gaia_csv, harness, fault):
    row = fault(
        "files",
        "corrupt cache entries (an intermediate file and a step record overwritten)",
        "the damaged steps run again; outputs identical to the first run",
    )
    out = tmp_path / "out"
    code, rec = _tile(m101_path, out, gaia_csv)
    assert code == 0
    first = pd.read_parquet(out / "detections.parquet")
    (out / "work" / "pass2.ldac").write_bytes(b"garbage")
    (out / "steps" / "match.json").write_text("{not json")
    (out / "tile.json").unlink()
    code2, rec2 = _tile(m101_path, out, gaia_csv)
    again = pd.read_parquet(out / "detections.parquet")
    redone = sorted(k for k, v in rec2["timings"]["steps_s"].items() if v is not None)
    row.saw(
        f"second run exit {code2}; pass2.ldac rebuilt: {fits.getheader(out / 'work' / 'pass2.ldac', 2)['NAXIS2']} "
        f"rows; detections identical: {again.equals(first)}"
    )
    assert code2 == 0 and again.equals(first) and rec2["funnel"] == rec["funnel"]
    assert redone  # the records carry the times of the steps that ran


def _mount_tmpfs(where: Path, options: str) -> bool:
    where.mkdir(parents=True, exist_ok=True)
    return (
        subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True).returncode
        == 0
    )


@needs_tools
def test_full_disk(m101_path, tmp_path, gaia_csv, harness, fault):
    row = fault(
        "files",
        "disk full (an 800 KiB tmpfs as the output folder; the cutout is 585 KiB)",
        "tile `failed` with a reason token, or a clear error; no partial file left",
    )
    disk = tmp_path / "disk"
    if not _mount_tmpfs(disk, "size=800k"):
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        out = disk / "out"
        try:
            code, rec = _tile(m101_path, out, gaia_csv)
            row.saw(f"exit {code}; status `{rec.get('status')}`, reason `{rec.get('reason')}`")
        except OSError as exc:
            code, rec = -1, {}
            row.saw(f"error: {exc}")
        left = _temporaries(out)
        row.saw(f"temporaries left: {len(left)}")
        assert left == []
        assert code != 0 and (rec == {} or (rec["status"] == "failed" and rec["reason"].startswith("FAIL_")))
        assert not (out / "candidates.parquet").exists()
    finally:
        subprocess.run(["umount", str(disk)], check=False)


def test_unwritable_output_folder(tmp_path, fault, capsys):
    from flows.cli import main

    row = fault(
        "files",
        "output folder not writable (read-only filesystem, or under a file)",
        "exit 2 before any work, naming the folder",
    )
    blocker = tmp_path / "file"
    blocker.write_text("x")
    targets = [blocker / "out"]
    ro = tmp_path / "ro"
    if _mount_tmpfs(ro, "ro,size=1m"):
        targets.append(ro / "out")
    try:
        for target in targets:
            code = main(["survey", "--sky", "synthetic", "--tiles", "1", "--out", str(target)])
            err = capsys.readouterr().err
            row.saw(
                f"{'read-only fs' if target.parent == ro else 'under a file'}: exit {code}, "
                f"`{err.strip().replace(f'{tmp_path}/', '')[:110]}`"
            )
            assert code == 2 and str(target) in err and "--out" in err
    finally:
        if len(targets) > 1:
            subprocess.run(["umount", str(ro)], check=False)


# =========================================================================== process and concurrency

#: Two 10' synthetic tiles with enough stars, and a denser injection so they have candidates.
POSITIONS = [(132.8250, 11.8000), (184.0164, 27.8682)]
SURVEY_CONFIG = {"synthetic": {"n_transients": 300}}


def _survey_files(folder: Path, positions=POSITIONS) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    pos = folder / "positions.csv"
    pos.write_text("ra,dec\n" + "".join(f"{ra},{dec}\n" for ra, dec in positions))
    conf = folder / "config.json"
    conf.write_text(json.dumps(SURVEY_CONFIG))
    return pos, conf


def _survey_cmd(pos: Path, conf: Path, out: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        str(REPO / "flows" / "survey.py"),
        "--sky",
        "synthetic",
        "--positions",
        str(pos),
        "--size-arcmin",
        "10",
        "--seed",
        "1",
        "--config",
        str(conf),
        "--out",
        str(out),
        *extra,
    ]


def _api_env() -> dict[str, str]:
    """The environment for child surveys: the test harness's Prefect server (no server start per run)."""
    from prefect.settings import PREFECT_API_URL

    return {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value()), "PYTHONPATH": str(REPO)}


def _outputs(out: Path) -> dict[str, pd.DataFrame]:
    return {name: pd.read_parquet(out / f"{name}.parquet") for name in ("detections", "candidates")}


def _tile_results(out: Path) -> dict[str, tuple]:
    res = {}
    for path in sorted((out / "tiles").glob("*/tile.json")):
        rec = read_json(path)
        res[rec["tile_id"]] = (rec["status"], rec["reason"], json.dumps(rec["funnel"]))
    return res


@pytest.fixture(scope="module")
def reference(tmp_path_factory, harness) -> Path:
    """The survey run once, uninterrupted, in a child process."""
    folder = tmp_path_factory.mktemp("reference")
    pos, conf = _survey_files(folder)
    out = folder / "out"
    subprocess.run(_survey_cmd(pos, conf, out), env=_api_env(), check=True, capture_output=True, timeout=600)
    assert len(_outputs(out)["candidates"]) > 0
    return out


@pytest.mark.slow
@needs_tools
def test_sigkill_at_random_points_then_rerun(reference, tmp_path, fault):
    """20 SIGKILLs of the whole survey (its process group: SExtractor and PSFEx too) at random moments.

    The kills come in rounds, each on a fresh survey folder: a round kills runs of the survey until one
    kill lands after its first complete publish (so kills hit the pixel work, the publishing and the
    report), then runs it once more to the end and compares with the uninterrupted run.
    """
    kills_wanted = 20
    row = fault(
        "process",
        f"survey killed with SIGKILL at random points ({kills_wanted} kills), then run again",
        "final catalogues identical to an uninterrupted run; no partial file; no finished tile run again",
    )
    pos, conf = _survey_files(tmp_path)
    t0 = time.perf_counter()
    subprocess.run(
        _survey_cmd(pos, conf, tmp_path / "timing"), env=_api_env(), check=True, capture_output=True, timeout=600
    )
    full = time.perf_counter() - t0
    rng = np.random.default_rng(20261121)
    kills = finished_early = mid_work = rounds = 0
    problems: list[str] = []
    candidates = set()
    while kills < kills_wanted:
        out = tmp_path / f"out{rounds}"
        rounds += 1
        first_written: dict[str, int] = {}
        while kills < kills_wanted:
            delay = float(rng.uniform(0.3, 0.6 * full))
            proc = subprocess.Popen(
                _survey_cmd(pos, conf, out),
                env=_api_env(),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            try:
                proc.wait(timeout=delay)
                finished_early += 1
            except subprocess.TimeoutExpired:
                published = (out / "summary.json").exists()
                mid_work += not published
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                kills += 1
            for path in (out / "tiles").glob("*/tile.json") if (out / "tiles").exists() else []:
                first_written.setdefault(path.parent.name, path.stat().st_mtime_ns)
            if (out / "summary.json").exists():
                break  # this round's survey has been complete once: run it to the end and check it
        final = subprocess.run(_survey_cmd(pos, conf, out), env=_api_env(), capture_output=True, text=True, timeout=600)
        assert final.returncode == 0, final.stderr[-2000:]
        rewritten = [t for t, ns in first_written.items() if (out / "tiles" / t / "tile.json").stat().st_mtime_ns != ns]
        ref, got = _outputs(reference), _outputs(out)
        candidates.add(len(got["candidates"]))
        left = _temporaries(out) + [str(p.relative_to(out)) for p in out.rglob(".lease*")]
        if not all(ref[k].equals(got[k]) for k in ref) or _tile_results(out) != _tile_results(reference):
            problems.append(
                f"round {rounds}: catalogues or tile results differ: {_tile_results(out)}; "
                f"final run: {final.stdout[-1500:]}{final.stderr[-3000:]}"
            )
        if left or rewritten:
            problems.append(
                f"round {rounds}: partial files or leases left {left}; finished tiles run again {rewritten}"
            )
    saw = (
        f"{kills} kills in {rounds} rounds (fresh survey folders), {mid_work} of them before the survey's "
        f"first complete publish (uninterrupted run {full:.0f} s; {finished_early} runs ended before their "
        f"kill); candidates per round {sorted(candidates)}; rounds with catalogues or tile results unlike the "
        f"uninterrupted run's, partial files, leases or finished tiles run again: {len(problems)}"
    )
    row.saw(saw)
    detail = saw + "\n" + "\n".join(problems)
    assert kills == kills_wanted and mid_work >= 10, detail
    assert problems == [], detail


@pytest.mark.slow
@needs_tools
def test_two_workers_given_the_same_tile_at_once(reference, tmp_path, fault):
    row = fault(
        "concurrency",
        "two workers given the same tiles at the same moment (two survey processes)",
        "each tile processed by one of them; one result, identical to a single run; no corruption",
    )
    pos, conf = _survey_files(tmp_path)
    out = tmp_path / "out"
    procs = [
        subprocess.Popen(
            _survey_cmd(pos, conf, out, "--workers", "1"),
            env=_api_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(2)
    ]
    logs = [p.communicate(timeout=600)[0] for p in procs]
    codes = [p.returncode for p in procs]
    skipped = sum(log.count("being processed by another worker") + log.count("is already done") for log in logs)
    ref, got = _outputs(reference), _outputs(out)
    same = all(ref[k].equals(got[k]) for k in ref)
    row.saw(
        f"exit codes {codes}; tiles left to the other worker: {skipped}; catalogues identical: {same}; "
        f"partial files left: {len(_temporaries(out))}"
    )
    assert codes == [0, 0] and same and _tile_results(out) == _tile_results(reference)
    assert skipped >= 1 and _temporaries(out) == []


@needs_tools
def test_retry_failed_reruns_only_the_failed_tiles(tmp_path, harness, fault, monkeypatch):
    from flows.survey import survey_flow

    row = fault(
        "process",
        "`--retry-failed` after a run where a tile failed",
        "only the failed tile runs again; summary.json lists failed tiles by reason",
    )
    pos1, conf = _survey_files(tmp_path / "first", POSITIONS[:1])
    out = tmp_path / "out"
    bin_dir = tmp_path / "bin"
    _fake_tool(bin_dir, "psfex", "echo 'psfex stand-in crash' >&2; exit 3")
    with monkeypatch.context() as m:
        m.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
        first = survey_flow(out=str(out), positions=str(pos1), size_arcmin=10.0, config_file=str(conf))
    failed_tid = next(iter(first["failed_tiles"]["FAIL_PSFEX"]))
    pos2, _ = _survey_files(tmp_path / "second", POSITIONS)
    again = survey_flow(out=str(out), positions=str(pos2), size_arcmin=10.0, config_file=str(conf), retry_failed=True)
    statuses = _tile_results(out)
    row.saw(
        f"first run failed_tiles {first['failed_tiles']}; retry: {again['tiles']}; tiles with a tile.json: "
        f"{len(statuses)} of {len(POSITIONS)}"
    )
    assert first["tiles"]["failed"] == 1 and first["failures"] == {"FAIL_PSFEX": 1}
    assert statuses[failed_tid][0] == "ok" and len(statuses) == 1
    assert again["tiles"]["processed"] == 1 and again["tiles"]["not_run"] == 1


# =========================================================================== bad parameters

BAD_PARAMETERS = [
    ("positions file with RA 400", "ra,dec\n400,10\n", [], "ra"),
    ("positions file with RA -1", "ra,dec\n-1,10\n", [], "ra"),
    ("positions file with Dec 95", "ra,dec\n10,95\n", [], "dec"),
    ("positions file without a dec column", "ra,decl\n10,20\n", [], "dec"),
    ("positions file with text for a number", "ra,dec\nten,20\n", [], "ra"),
    ("empty positions file", "", [], "positions"),
    ("negative tile size", None, ["--size-arcmin", "-5"], "size_arcmin"),
    ("huge tile size", None, ["--size-arcmin", "100000"], "size_arcmin"),
    ("zero tiles", None, ["--tiles", "0"], "tiles"),
    ("zero workers", None, ["--workers", "0"], "workers"),
    ("config file that is not JSON", None, ["--config", "{broken"], "config"),
    ("config file with an unknown parameter", None, ["--config", '{"cuts": {"snr_min": 30}}'], "snr_min"),
    ("config file that does not exist", None, ["--config", "/nonexistent/vasco.json"], "nonexistent"),
    ("unknown catalogue file name", None, ["--catalog", "gaiadr9=x.csv"], "gaiadr9"),
]


@pytest.mark.parametrize("name,positions,args,named", BAD_PARAMETERS, ids=[b[0] for b in BAD_PARAMETERS])
def test_bad_parameter_is_named_before_any_work(name, positions, args, named, tmp_path, fault, capsys):
    from flows.cli import main

    row = fault("parameters", name, f"exit 2 before any work, the message names `{named}`")
    out = tmp_path / "out"
    extra = list(args)
    if positions is not None:
        (tmp_path / "pos.csv").write_text(positions)
        extra += ["--positions", str(tmp_path / "pos.csv")]
    if "--config" in extra:
        i = extra.index("--config") + 1
        if not extra[i].startswith("/nonexistent"):
            (tmp_path / "conf.json").write_text(extra[i])
            extra[i] = str(tmp_path / "conf.json")
    code = main(["survey", "--sky", "synthetic", *extra, "--out", str(out)])
    err = capsys.readouterr().err.strip().replace(f"{tmp_path}/", "")
    row.saw(f"exit {code}: `{err[:140]}`")
    assert code == 2 and named.lower() in err.lower() and not out.exists()


@pytest.mark.parametrize(
    "name,args,words",
    [
        ("unknown sky", ["--sky", "mars"], "invalid choice: 'mars'"),
        ("unknown catalogue source", ["--catalogs", "simbad"], "invalid choice: 'simbad'"),
    ],
)
def test_unknown_names_are_refused_by_the_parser(name, args, words, tmp_path, fault, capsys):
    from flows.cli import main

    row = fault("parameters", name, "exit 2 before any work, listing the valid choices")
    with pytest.raises(SystemExit) as exc:
        main(["survey", *args, "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip()
    row.saw(f"exit {exc.value.code}: `{err.splitlines()[-1][:110]}`")
    assert exc.value.code == 2 and words in err and not (tmp_path / "out").exists()


# =========================================================================== security


def test_no_shell_strings_anywhere(fault):
    """Every subprocess call in the shipped code takes an argument list; nothing goes through a shell."""
    import ast

    row = fault("security", "commands built from input", "argument lists only: no shell=True, os.system, os.popen")
    found, calls = [], 0
    for folder in ("vasco", "flows", "tasks", "deployments", "scripts"):
        for path in sorted((REPO / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if not isinstance(node, ast.Call):
                    continue
                name = ast.unparse(node.func)
                if name.startswith("subprocess."):
                    calls += 1
                    if node.args and not isinstance(node.args[0], (ast.List, ast.Name, ast.Starred)):
                        found.append(f"{path.name}:{node.lineno} {name} with a non-list command")
                if any(
                    k.arg == "shell" and not (isinstance(k.value, ast.Constant) and k.value.value is False)
                    for k in node.keywords
                ):
                    found.append(f"{path.name}:{node.lineno} shell=")
                if name in ("os.system", "os.popen", "subprocess.getoutput", "subprocess.getstatusoutput"):
                    found.append(f"{path.name}:{node.lineno} {name}")
    row.saw(f"{calls} subprocess calls checked, {len(found)} problems {found[:3]}")
    assert calls > 0 and found == []


def test_tile_ids_and_paths_come_from_validated_numbers(fault):
    from vasco.sky.sampling import tile_id

    row = fault(
        "security", "tile ids and folders from positions", "ids only from finite RA/Dec in range; anything else refused"
    )
    import re

    ok = [tile_id(0.0, -90.0), tile_id(359.99999, 90.0), tile_id(123.456789, -12.3456)]
    refused = 0
    for ra, dec in [(float("nan"), 0.0), (0.0, float("inf")), (360.0, 0.0), (-0.1, 0.0), (10.0, 90.5)]:
        with pytest.raises(ValueError):
            tile_id(ra, dec)
        refused += 1
    row.saw(f"ids {ok}; {refused} bad positions refused")
    assert all(re.fullmatch(r"t\d{3}\.\d{4}[+-]\d{2}\.\d{4}", t) for t in ok) and refused == 5


def test_credentials_never_reach_outputs_or_logs(tmp_path, harness, fault, caplog, monkeypatch):
    from flows.survey import survey_flow

    row = fault(
        "security",
        "credentials in the environment (S3 keys, Prefect API key)",
        "never logged, never written into any output file",
    )
    secret = "VASCO-TEST-SECRET-7f3a9c"
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", secret + "-id")
    monkeypatch.setenv("VASCO_S3_SECRET", secret)
    monkeypatch.setenv("PREFECT_API_KEY", secret + "-pnu")
    out = tmp_path / "out"
    survey_flow(out=str(out), tiles=2, dry_run=True)
    text = caplog.text
    hits = [str(p.relative_to(out)) for p in out.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]
    row.saw(
        f"files with the secret: {len(hits)} of {sum(1 for p in out.rglob('*') if p.is_file())}; "
        f"in the logs: {secret in text}"
    )
    assert hits == [] and secret not in text

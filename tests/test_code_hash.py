"""The code part of a step's key (vasco.codehash): every vasco module the step's
work depends on, the shipped tool configuration and the tools' versions, and
nothing the step does not use."""

from __future__ import annotations

import importlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

import vasco
from vasco.codehash import PACKAGE_ROOT, code_fingerprint, module_closure
from vasco.io import read_json
from vasco.steps import acquire

#: Step shell function -> its module under vasco.steps (variants of a step share its module).
MODULE = {
    "acquire_synthetic": "acquire",
    "acquire_dss": "acquire",
    "acquire_file": "acquire",
    "catalogs_xmatch": "catalogs",
}
#: The step functions of a tile before the quality cuts, in flow order.
BEFORE_SELECT = (
    "acquire_synthetic",
    "acquire_dss",
    "acquire_file",
    "catalogs",
    "catalogs_xmatch",
    "check_plate",
    "psf",
    "pass2",
    "measure",
    "astrometry",
    "astrometry_plot",
    "match",
)
#: Every step function (each writes a step record).
STEPS = (*BEFORE_SELECT, "select", "spread_model", "veto_lists", "vetoes")
EXTRACTION_STEPS = ("psf", "pass2", "spread_model")
SEXTRACTOR = shutil.which("source-extractor") or shutil.which("sex")
HAS_TOOLS = SEXTRACTOR is not None and shutil.which("psfex") is not None
REPO = Path(__file__).resolve().parents[1]


def step_fn(step: str):
    """The shell function of a step, from its module in vasco.steps."""
    return getattr(importlib.import_module(f"vasco.steps.{MODULE.get(step, step)}"), step)


def _modules(step: str) -> set[str]:
    return set(code_fingerprint(step_fn(step)).modules)


def test_select_depends_on_the_cuts_and_the_steps_before_it_do_not():
    assert "vasco.filters.cuts" in _modules("select")
    assert "vasco.filters.cuts" in _modules("spread_model")  # the SPREAD_MODEL cut
    for step in BEFORE_SELECT:
        mods = _modules(step)
        assert "vasco.filters.cuts" not in mods, step
        assert "vasco.filters.vetoes" not in mods, step
    assert {"vasco.filters.vetoes", "vasco.filters.registry"} <= _modules("vetoes")
    # Per step, not per package: the astrometry fit depends on the plate fit, the PSF model does not.
    assert {"vasco.astrometry.platefit", "vasco.matching.crossmatch"} <= _modules("astrometry")
    assert "vasco.astrometry.platefit" not in _modules("psf")
    assert "vasco.extraction.sextractor" not in _modules("astrometry")
    # A step depends on the shared runner, never on the other steps' modules.
    for step in STEPS:
        mods = _modules(step)
        assert "vasco.steps.base" in mods, step
        own = f"vasco.steps.{MODULE.get(step, step)}"
        assert not {m for m in mods if m.startswith("vasco.steps.") and m != own} - {
            "vasco.steps.base",
            "vasco.steps.header",
            "vasco.steps.tools",
        }, step


def test_function_local_imports_and_package_inits_are_followed():
    # The astrometry step imports vasco.astrometry.solve; solve imports platefit.
    mods = _modules("astrometry")
    assert {"vasco", "vasco.astrometry", "vasco.astrometry.solve", "vasco.astrometry.platefit"} <= mods
    # vasco.plates/__init__.py imports its submodules: importing vasco.plates.frame runs them.
    assert {"vasco.plates", "vasco.plates.table", "vasco.plates.cutout"} <= module_closure(["vasco.plates.frame"])
    fp = code_fingerprint(step_fn("astrometry"))
    assert {"vasco.steps.astrometry.astrometry", "vasco.steps.astrometry.run"} <= set(fp.definitions)
    assert {"vasco.steps.base", "vasco.matching.catalogs"} <= set(fp.modules)
    # Only the definitions the step uses, not the whole of its module.
    acq = code_fingerprint(acquire.acquire_file)
    assert "vasco.steps.acquire.acquire_synthetic" not in acq.definitions and "vasco.steps.acquire" not in acq.modules


def test_extraction_steps_cover_tool_configs_and_versions():
    shipped = sorted(
        p.relative_to(PACKAGE_ROOT).as_posix()
        for p in (PACKAGE_ROOT / "extraction" / "config").iterdir()
        if p.is_file()
    )
    assert len(shipped) >= 5
    for step in EXTRACTION_STEPS:
        fp = code_fingerprint(step_fn(step))
        assert set(shipped) <= set(fp.files), step
        assert set(dict(fp.tools)) == {"source-extractor", "psfex"}, step
    for step in ("select", "astrometry", "match", "check_plate"):
        fp = code_fingerprint(step_fn(step))
        assert not fp.tools and not any(f.startswith("extraction/") for f in fp.files), step
    if HAS_TOOLS:
        tools = dict(code_fingerprint(step_fn("psf")).tools)
        answer = subprocess.run([SEXTRACTOR, "--version"], capture_output=True, text=True, check=False)
        # The version number the tool states ("Source Extractor version 2.25.0 (2018-02-08)" -> "2.25.0").
        assert tools["source-extractor"] in (answer.stdout or answer.stderr)
        assert re.fullmatch(r"\d+\.\d+(\.\d+)?", tools["source-extractor"])
        assert re.fullmatch(r"\d+\.\d+(\.\d+)?", tools["psfex"])


def test_a_missing_tool_is_recorded_not_fatal(tmp_path, monkeypatch):
    before = code_fingerprint(step_fn("psf"))
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing on PATH
    fp = code_fingerprint(step_fn("psf"))
    assert dict(fp.tools) == {"source-extractor": "missing", "psfex": "missing"}
    if HAS_TOOLS:
        assert fp.digest != before.digest
    # A step that runs no tool is unaffected.
    monkeypatch.undo()
    sel = code_fingerprint(step_fn("select")).digest
    monkeypatch.setenv("PATH", str(tmp_path))
    assert code_fingerprint(step_fn("select")).digest == sel


def test_fingerprints_are_the_same_in_every_process():
    here = {s: code_fingerprint(step_fn(s)).summary() for s in STEPS}
    for seed in ("1", "2"):
        assert _fingerprints(REPO, PYTHONHASHSEED=seed) == here
    assert len({d["digest"] for d in here.values()}) == len(STEPS)


def test_step_record_keeps_what_its_code_key_covered(tmp_path):
    src = tmp_path / "in.fits"
    fits.PrimaryHDU(data=np.zeros((4, 4), dtype=np.float32)).writeto(src)
    acquire.acquire_file(tmp_path / "tile", src)
    rec = read_json(tmp_path / "tile" / "steps" / "acquire.json")
    fp = code_fingerprint(acquire.acquire_file)
    assert rec["code"] == fp.summary()
    assert "vasco.records" in rec["code"]["modules"]
    assert "vasco.steps.acquire.acquire_file" in rec["code"]["definitions"]
    assert len(json.dumps(rec["code"])) < 2000


def test_prefect_cache_key_follows_the_library_code(tmp_path, monkeypatch):
    from types import SimpleNamespace

    from tasks import tile_tasks

    src = tmp_path / "in.fits"
    fits.PrimaryHDU(data=np.zeros((4, 4), dtype=np.float32)).writeto(src)
    tile = tmp_path / "tile"
    acquire.acquire_file(tile, src)
    key_fn = tile_tasks._step_cache("acquire", acquire.acquire_file).cache_key_fn
    ctx = SimpleNamespace(task=SimpleNamespace(fn=tile_tasks.acquire_file.fn))
    params = {"tile_dir": tile, "fits_path": src}
    first = key_fn(ctx, params)
    assert first is not None and first == key_fn(ctx, params)
    real = tile_tasks.code_fingerprint
    monkeypatch.setattr(
        tile_tasks, "code_fingerprint", lambda fn: type(real(fn))(digest="0" * 16)
    )  # the library step's code changed
    assert key_fn(ctx, params) != first


# --------------------------------------------------------------------------- in a copy of the package


def _copy_package(dest: Path) -> Path:
    shutil.copytree(Path(vasco.__file__).parent, dest / "vasco", ignore=shutil.ignore_patterns("__pycache__"))
    return dest


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert text.count(old) == 1, f"{old!r} not once in {path}"
    path.write_text(text.replace(old, new))


_PRINT_DIGESTS = """
import json, sys, vasco
from vasco.codehash import fingerprint_of
module = json.loads(sys.argv[1])
print(json.dumps({"file": vasco.__file__, "fingerprints": {
    s: fingerprint_of("vasco.steps." + module.get(s, s), s).summary() for s in sys.argv[2:]}}))
"""


def _fingerprints(root: Path, steps=STEPS, **env: str) -> dict[str, dict]:
    """Step fingerprints computed by a fresh process on the package under ``root`` (nothing imported but it)."""
    out = subprocess.run(
        [sys.executable, "-c", _PRINT_DIGESTS, json.dumps(MODULE), *steps],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(root), **env},
        check=True,
        cwd=root,
    )
    got = json.loads(out.stdout)
    assert Path(got["file"]).is_relative_to(root)
    return got["fingerprints"]


def _digests(root: Path) -> dict[str, str]:
    return {s: fp["digest"] for s, fp in _fingerprints(root).items()}


def test_edits_in_a_copy_change_the_steps_that_use_them(tmp_path):
    root = _copy_package(tmp_path)
    # The copy's code is this code: same digests (fingerprints hold no paths).
    base = {s: code_fingerprint(step_fn(s)).digest for s in STEPS}

    def changed() -> set[str]:
        now = _digests(root)
        return {s for s in base if now[s] != base[s]}

    # A cut threshold in the library's source: selection and the SPREAD_MODEL cut, nothing else.
    _edit(root / "vasco" / "filters" / "cuts.py", "> cfg.snr_win_min", "> cfg.snr_win_min + 20.0")
    assert changed() == {"select", "spread_model"}
    base = _digests(root)
    # The reference catalogues' default epoch: the steps that read Gaia positions (the veto lists'
    # step too, as it reads the veto registry, whose stages read Gaia), not the others.
    _edit(root / "vasco" / "matching" / "reference.py", "GAIA_EPOCH = 2016.0", "GAIA_EPOCH = 2016.00")
    assert changed() == {"astrometry", "match", "vetoes", "veto_lists"}
    base = _digests(root)
    # A shipped SExtractor configuration file: the steps whose work reads the extraction package.
    with open(root / "vasco" / "extraction" / "config" / "pass2.sex", "a") as fh:
        fh.write("# edited\n")
    assert changed() == {"psf", "pass2", "measure", "spread_model"}
    base = _digests(root)
    # The plate fit: astrometry (and measure, which evaluates header solutions through vasco.astrometry.solve,
    # and select, whose astrometric trust measures the pixel scale with its tangent plane).
    _edit(root / "vasco" / "astrometry" / "platefit.py", '"""Per-tile', '"""Edited. Per-tile')
    assert changed() == {"measure", "astrometry", "select"}


_RUN_TILE = """
import json, sys
from pathlib import Path
import vasco
from vasco.config import VascoConfig
from vasco.filters.registry import list_sources, synthetic_lists
from vasco.steps.acquire import acquire_synthetic
from vasco.steps.astrometry import astrometry
from vasco.steps.astrometry_plot import astrometry_plot
from vasco.steps.check_plate import check_plate
from vasco.steps.match import match
from vasco.steps.measure import measure
from vasco.steps.pass2 import pass2
from vasco.steps.psf import psf
from vasco.steps.select import select
from vasco.steps.spread_model import spread_model
from vasco.steps.vetoes import vetoes

tile = Path(sys.argv[1])
ra, dec = 201.5, 12.0
cfg = VascoConfig.model_validate({"survey": {"size_arcmin": 10.0}})
acq = acquire_synthetic(tile, ra, dec, cfg)
image = acq["outputs"]["image"]
chk = check_plate(tile, image)
assert chk["info"]["ok"], chk["info"]
model = psf(tile, image, cfg)
p2 = pass2(tile, image, model["outputs"]["psf"], cfg)
meas = measure(tile, p2["outputs"]["catalog"], image, cfg)
catalogs = {k: acq["outputs"][k] for k in ("gaia", "ps1") if k in acq["outputs"]}
ast = astrometry(tile, meas["outputs"]["table"], catalogs, chk["outputs"]["plate"], ra, dec, cfg)
astrometry_plot(tile, ast["outputs"]["pairs"], ast["outputs"]["astrometry"], "t")
mat = match(tile, ast["outputs"]["table"], catalogs, chk["outputs"]["plate"], dec, cfg)
sel = select(tile, mat["outputs"]["table"], mat["info"], cfg, astrometry=ast["outputs"]["astrometry"])
spr = spread_model(tile, sel["outputs"]["selected"], image, model["outputs"]["psf"], cfg)
lists = {"gaia": catalogs["gaia"]}
synthetic = synthetic_lists(cfg.vetoes)
for name, src in list_sources(cfg, True).items():
    key = synthetic.get(name)
    if src == "synthetic" and key in acq["outputs"]:
        lists[name] = acq["outputs"][key]
vet = vetoes(tile, spr["outputs"]["table"], lists, cfg)
print(json.dumps({"file": vasco.__file__, "funnel": {**sel["info"]["funnel"], **spr["info"]["funnel"],
                                                      **vet["info"]["funnel"]}}))
"""

#: Step records of the tile, in flow order.
RECORDS_BEFORE = ("acquire", "check_plate", "psf", "pass2", "measure", "astrometry", "astrometry_plot", "match")


@pytest.mark.slow
@pytest.mark.skipif(not HAS_TOOLS, reason="SExtractor/PSFEx are not installed (apt-get install source-extractor psfex)")
def test_changing_a_cut_in_the_library_reruns_select_and_after_only(tmp_path):
    root = _copy_package(tmp_path / "copy")
    script = tmp_path / "run_tile.py"
    script.write_text(_RUN_TILE)
    tile = tmp_path / "tile"

    def run() -> tuple[dict[str, int], dict[str, dict]]:
        env = {**os.environ, "PYTHONPATH": str(root)}
        out = subprocess.run(
            [sys.executable, str(script), str(tile)], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600
        )
        assert out.returncode == 0, out.stderr[-3000:]
        got = json.loads(out.stdout.strip().splitlines()[-1])
        assert Path(got["file"]).is_relative_to(root)
        recs = {
            p.stem: {**read_json(p), "mtime_ns": p.stat().st_mtime_ns} for p in sorted((tile / "steps").glob("*.json"))
        }
        return got["funnel"], recs

    funnel1, first = run()
    assert set(RECORDS_BEFORE) | {"select", "spread_model", "vetoes"} <= set(first)
    funnel_same, same = run()  # nothing changed: nothing runs
    assert same == first and funnel_same == funnel1

    _edit(root / "vasco" / "filters" / "cuts.py", "> cfg.snr_win_min", "> cfg.snr_win_min + 20.0")
    funnel2, second = run()
    for step in RECORDS_BEFORE:
        assert second[step] == first[step], f"{step} ran again"
    # select: its own code changed; spread_model: it also uses vasco.filters.cuts (the SPREAD_MODEL cut).
    for step in ("select", "spread_model"):
        assert second[step]["key"] != first[step]["key"] and second[step]["mtime_ns"] != first[step]["mtime_ns"]
        assert "vasco.filters.cuts" in second[step]["code"]["modules"]
    # vetoes: same code, so it runs again only because its input (the spread_model table) changed.
    assert "vasco.filters.cuts" not in second["vetoes"]["code"]["modules"]
    assert second["vetoes"]["code"] == first["vetoes"]["code"]
    assert second["spread_model"]["outputs"]["table"]["sha256"] != first["spread_model"]["outputs"]["table"]["sha256"]
    assert second["vetoes"]["key"] != first["vetoes"]["key"]
    assert funnel2["snr"] < funnel1["snr"] and funnel2["detections"] == funnel1["detections"]

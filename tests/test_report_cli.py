"""``vasco survey`` then ``vasco report`` on a small synthetic survey; the progress bar; the config reference."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from flows.cli import main
from vasco.config import config_reference

REPO = Path(__file__).resolve().parents[1]
VASCO = str(Path(sys.executable).with_name("vasco"))
HAVE_TOOLS = shutil.which("source-extractor") is not None and shutil.which("psfex") is not None
needs_tools = pytest.mark.skipif(not HAVE_TOOLS, reason="SExtractor/PSFEx are not installed")

#: Two 10' synthetic tiles with a dense injection, so both have candidates.
POSITIONS = [(132.8250, 11.8000), (184.0164, 27.8682)]


def test_config_reference_is_current():
    """docs/configuration.md is what `vasco config reference` prints (regenerate it with that command)."""
    text = (REPO / "docs" / "configuration.md").read_text()
    assert text == config_reference(), "docs/configuration.md is stale: vasco config reference > docs/configuration.md"
    assert "| `cuts.snr_win_min` | float | `30.0` |" in text and "## `report`" in text


def test_every_command_has_help(capsys):
    assert main(["--help"]) == 0
    listed = capsys.readouterr().out
    for cmd in ("survey", "tile", "status", "report", "compare", "clean", "reset", "config"):
        assert f"  {cmd}" in listed
        with pytest.raises(SystemExit) as stop:
            main([cmd, "--help"])
        assert stop.value.code == 0
        assert f"usage: vasco {cmd}" in capsys.readouterr().out


def test_report_refuses_a_folder_that_is_not_a_published_survey(tmp_path, capsys):
    assert main(["report", str(tmp_path / "nowhere")]) == 2
    assert "no such folder" in capsys.readouterr().err
    assert main(["report", str(tmp_path)]) == 2
    assert "no summary.json" in capsys.readouterr().err


def test_progress_bar_counts_tiles_on_a_terminal_only():
    from rich.console import Console

    from flows.progress import TerminalProgress

    buf = io.StringIO()
    term = Console(file=buf, force_terminal=True, width=160)
    with TerminalProgress(3, "VASCO test", console=term) as bar:
        assert bar.enabled
        for status in ("ok", "failed", "rejected"):
            bar.tile_done(status)
    shown = buf.getvalue()
    assert "3/3" in shown and "ok 1" in shown and "failed 1" in shown and "rejected 1" in shown
    assert "tiles/h" in shown and "ETA" in shown
    quiet = io.StringIO()
    with TerminalProgress(3, console=Console(file=quiet, force_terminal=False)) as bar:
        bar.tile_done("ok")
        assert not bar.enabled and bar.counts["ok"] == 1
    assert quiet.getvalue() == ""


@pytest.fixture(scope="module")
def survey(tmp_path_factory, harness):
    """`vasco survey` of two synthetic 10' tiles (the report is built at its end), in a child process."""
    from prefect.settings import PREFECT_API_URL

    folder = tmp_path_factory.mktemp("report")
    pos = folder / "positions.csv"
    pos.write_text("ra,dec\n" + "".join(f"{ra},{dec}\n" for ra, dec in POSITIONS))
    conf = folder / "config.toml"
    conf.write_text('[synthetic]\nn_transients = 300\n\n[report]\ntile_plots = "all"\n')
    out = folder / "out"
    env = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value()), "PYTHONPATH": str(REPO)}
    run = subprocess.run(
        [
            VASCO,
            "survey",
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
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    return out, run.stdout


def _png_ok(path: Path) -> None:
    import matplotlib.image as mpimg

    img = mpimg.imread(path)
    assert img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 100, path
    assert float(np.ptp(img[..., :3])) > 0.1, f"{path} is blank"


@pytest.mark.slow
@needs_tools
def test_survey_then_report_write_plots_moc_gallery_and_page(survey, capsys):
    from mocpy import MOC

    out, printed = survey
    assert "report: " in printed and str(out / "report" / "index.html") in printed
    cands = pd.read_parquet(out / "candidates.parquet")
    cands = cands[cands["is_survey_candidate"]]
    assert len(cands) > 0
    man = json.loads((out / "report" / "report.json").read_text())
    assert man["candidates"] == len(cands) and man["stamps"] == len(cands)
    for rel in man["plots"].values():
        _png_ok(out / rel)
    assert len(man["plots"]) >= 5
    tiles = sorted(p.parent.name for p in (out / "tiles").glob("*/tile.json"))
    assert man["tile_plots"] == [f"tiles/{t}/qc/tile.png" for t in tiles]
    for rel in man["tile_plots"]:
        _png_ok(out / rel)
    _png_ok(out / "report" / "sky.png")
    moc = MOC.from_fits(out / "report" / "moc.fits")
    from astropy.coordinates import Angle

    inside = moc.contains_lonlat(
        Angle(np.array([p[0] for p in POSITIONS]), "deg"), Angle(np.array([p[1] for p in POSITIONS]), "deg")
    )
    assert inside.all()
    assert man["coverage_deg2"] == pytest.approx(2 * (10 / 60) ** 2, rel=0.08)
    gallery = (out / "report" / "gallery.html").read_text()
    index = (out / "report" / "index.html").read_text()
    assert "gallery.html" in index and "moc.fits" in index
    for tid in set(cands["tile_id"]):
        assert tid in gallery

    # `vasco report` again: the pages are rebuilt, unchanged tiles' plots are not redrawn, and the
    # partial files of a report build that was killed (its writer is gone) are removed.
    from vasco.io import temp_tag

    dead = int(
        subprocess.run(
            [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True
        ).stdout
    )
    host = temp_tag().rsplit("-", 1)[0]
    killed = [
        out / Path(man["tile_plots"][0]).parent / f".tile.png.{host}-{dead}.0123abcd.png.part",
        out / "report" / "plots" / f".funnel.png.{host}-{dead}.0123abcd.png.part",
    ]
    for path in killed:
        path.write_bytes(b"partial")
    before = {rel: (out / rel).stat().st_mtime_ns for rel in man["tile_plots"]}
    assert main(["report", str(out)]) == 0
    assert not any(p.exists() for p in killed)
    said = capsys.readouterr().out
    assert f"{len(cands)} candidates, {len(cands)} stamps" in said
    assert {rel: (out / rel).stat().st_mtime_ns for rel in man["tile_plots"]} == before
    assert main(["report", str(out), "--force"]) == 0
    assert all((out / rel).stat().st_mtime_ns > ns for rel, ns in before.items())
    assert main(["status", str(out)]) == 0
    assert f"candidates (published): {len(cands)}" in capsys.readouterr().out


@pytest.mark.slow
@needs_tools
def test_gallery_and_report_in_headless_chromium(survey, tmp_path, open_page):
    """The acceptance picture: the gallery of a real (synthetic-sky) survey, cards with their stamps."""
    out, _ = survey
    n = int(pd.read_parquet(out / "candidates.parquet")["is_survey_candidate"].sum())
    gallery = out / "report" / "gallery.html"
    dom = open_page(gallery, query="eager=1").page.content()
    assert 'data-ready="1"' in dom
    assert dom.count('data-stamp="loaded"') == n, "every card's stamp loaded"
    for page in (gallery, out / "report" / "index.html"):
        assert open_page(page).messages == [], page.name
    shot = tmp_path / "gallery.png"
    open_page(gallery).page.screenshot(path=shot)
    _png_ok(shot)

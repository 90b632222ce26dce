"""Candidate stamps, the gallery page and the report page, in Python and in headless chromium.

The unit tests build everything from a small synthetic FITS image (Gaussian
stars and noise) and a hand-made candidates table; the browser tests load
the pages from disk in the Debian ``chromium``, driven by Playwright (the
``open_page`` fixture of ``conftest.py``), and look at the rendered DOM, the
console and a screenshot.
``scripts/screenshot_report.py`` takes the screenshots in ``docs/report/``.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest
from astropy.io import fits

from vasco.report.gallery import EAGER_STAMPS, write_gallery
from vasco.report.page import MAX_TILE_ROWS, write_index
from vasco.report.stamps import EDGE_COLOUR, scale_stamp, write_stamps

REPO = Path(__file__).resolve().parents[1]
HOSTILE = "</script><script>alert(1)</script><!--"
TILE = "t184.0164+27.8682"

# (NUMBER, X_IMAGE, Y_IMAGE) in the 1-based pixels of the 200 x 150 test image.
STARS = [(11, 100.0, 75.0), (12, 40.3, 30.7), (13, 160.0, 120.0), (14, 3.0, 3.0), (15, 196.0, 140.0), (16, 70.0, 100.0)]
OUTSIDE = (17, 250.0, 75.0)
SHAPE = (150, 200)


def _image(path: Path) -> Path:
    """A 200 x 150 FITS image: noise plus a Gaussian star at each of STARS."""
    rng = np.random.default_rng(42)
    ny, nx = SHAPE
    yy, xx = np.mgrid[0:ny, 0:nx].astype(np.float64)
    data = 1000.0 + rng.normal(0.0, 10.0, SHAPE)
    for _, x, y in STARS:
        data += 800.0 * np.exp(-((xx - (x - 1)) ** 2 + (yy - (y - 1)) ** 2) / (2 * 1.5**2))
    path.parent.mkdir(parents=True, exist_ok=True)
    fits.PrimaryHDU(data.astype(np.float32)).writeto(path)
    return path


def _candidates(rows: list[tuple[int, float, float]], *, tile: str = TILE, label: str = "E1398") -> pd.DataFrame:
    """A survey-candidates table with the columns the gallery shows."""
    n = len(rows)
    k = np.arange(n, dtype=np.float64)
    table = pd.DataFrame(
        {
            "tile_id": [tile] * n,
            "plate_region": ["XE320"] * n,
            "plate_label": [label] * n,
            "plate_epoch": 1955.2902730245646 + 0.0 * k,
            "ra": 184.0 + 0.01 * k,
            "dec": 27.8 - 0.02 * k,
            "NUMBER": [r[0] for r in rows],
            "X_IMAGE": [r[1] for r in rows],
            "Y_IMAGE": [r[2] for r in rows],
            "MAG_AUTO": -11.0 - 0.1 * k,
            "MAGERR_AUTO": 0.03 + 0.0 * k,
            "SNR_WIN": 30.0 + 5.0 * k,
            "FWHM_IMAGE": 2.2 + 0.1 * k,
            "ELONGATION": 1.05 + 0.0 * k,
            "SPREAD_MODEL": 0.001 * k,
            "SPREADERR_MODEL": 0.0008 + 0.0 * k,
            "x_plate": 6000.0 + 10 * k,
            "y_plate": 4000.0 + 10 * k,
            "edge_dist_px": 4000.0 - 500.0 * k,
            "centre_dist_mm": 60.0 + k,
            "n_measurements": [1] * n,
            "is_survey_candidate": [True] * n,
            "pos_err_arcsec": 0.12 + 0.01 * k,
            # The last candidate's tile has untrusted astrometry.
            "astrometry_trust_reason": pd.array(
                [""] * max(n - 1, 0) + ["fit_fallback_shift"] * min(n, 1), dtype="string"
            ),
        }
    )
    for col in (
        "cut_flags",
        "cut_snr",
        "cut_fwhm",
        "cut_elongation",
        "cut_extent",
        "cut_mad_clip",
        "no_gaia",
        "no_ps1",
        "cut_spread_model",
    ):
        table[col] = True
    for col in (
        "veto_not_bright_star",
        "veto_no_archive",
        "veto_not_asteroid",
        "veto_not_variable",
        "veto_in_supercosmos",
        "veto_not_hpm",
    ):
        table[col] = False  # True would mean: rejected by the veto
    return table


def _gallery_payload(page: str) -> dict:
    m = re.search(r'<script type="application/json" id="vasco-data">(.*?)</script>', page, re.DOTALL)
    assert m, "no vasco-data block"
    return json.loads(m.group(1))


def _png(path: Path, rgba: tuple[float, ...] = (0.5, 0.5, 0.5, 1.0)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    grid = np.linspace(0.0, 1.0, 40 * 60).reshape(40, 60)
    mpimg.imsave(path, grid, cmap="viridis", format="png", metadata={"Software": None})
    return path


SUMMARY = {
    "tiles": {"planned": 7, "processed": 4, "rejected": 1, "failed": 2, "not_run": 0},
    "detections": 17398,
    "candidates": 6,
    "funnel": {"detections": 17398, "flags": 12031, "snr": 9678, "no_gaia": 102, "not_hpm": 6, "unique": 6},
    "failures": {"astrometry_failed": 2, "no_plate_coverage": 1},
    "failed_tiles": {
        "astrometry_failed": ["t001.0000+01.0000", "t002.0000+02.0000"],
        "no_plate_coverage": ["t003.0000+03.0000"],
    },
    "config_hash": "8cb980c6a82d2fa5",
    "injection": {
        "injected": 131,
        "recovered": 29,
        "completeness": 0.7435897435897436,
        "purity": 1.0,
        "lost_by_stage": {"not_bright_star": 8},
    },
}


def _tiles_rows() -> list[dict]:
    return [
        {
            "tile_id": TILE,
            "status": "ok",
            "reason": None,
            "plate": {"label": "E1398", "region": "XE320"},
            "epoch": 1955.29,
            "detections": 466,
            "candidates": 6,
            "qc": "../tiles/t/qc/tile.png",
            "astrometry": "../tiles/t/qc/astrometry.png",
        },
        {
            "tile_id": "t001.0000+01.0000",
            "status": "failed",
            "reason": "astrometry_failed",
            "plate": "E1",
            "epoch": None,
            "detections": None,
            "candidates": None,
            "qc": None,
            "astrometry": None,
        },
        {
            "tile_id": "t003.0000+03.0000",
            "status": "rejected",
            "reason": "no_plate_coverage",
            "plate": HOSTILE,
            "epoch": 1951.5,
            "detections": 0,
            "candidates": 0,
            "qc": None,
            "astrometry": None,
        },
    ]


# --------------------------------------------------------------------------- stamps


def test_stamps_size_centre_and_names(tmp_path: Path) -> None:
    image = _image(tmp_path / "image.fits")
    names = write_stamps(image, _candidates(STARS + [OUTSIDE]), tmp_path / "stamps")
    assert names == [f"{n}.png" for n, _, _ in STARS] + [None]
    png = mpimg.imread(tmp_path / "stamps" / "11.png")
    assert png.shape == (64, 64, 4)
    grey = png[..., 0]
    # A negative: the star at the centre is darker than the sky in the corners.
    assert grey[31:34, 31:34].mean() < 0.3 < grey[:8, :8].mean()
    assert not (tmp_path / "stamps" / "17.png").exists()


def test_stamps_padded_at_the_edge(tmp_path: Path) -> None:
    image = _image(tmp_path / "image.fits")
    write_stamps(image, _candidates([STARS[3]]), tmp_path / "stamps", size_px=32)
    png = mpimg.imread(tmp_path / "stamps" / "14.png")
    assert png.shape == (32, 32, 4)
    # North up (origin lower): the star at pixel (3, 3) leaves the bottom and left rows beyond the image.
    assert np.allclose(png[-1, 0], EDGE_COLOUR, atol=1 / 255)
    assert np.allclose(png[-1, -1], EDGE_COLOUR, atol=1 / 255)
    assert not np.allclose(png[0, -1], EDGE_COLOUR, atol=1 / 255)
    # The star itself: stamp row and column 16, i.e. PNG row 31 - 16 from the top.
    assert png[15, 16, 0] < 0.3


def test_stamps_idempotent_and_deterministic(tmp_path: Path) -> None:
    image = _image(tmp_path / "image.fits")
    rows = _candidates(STARS)
    first = write_stamps(image, rows, tmp_path / "a")
    mtimes = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "a").iterdir()}
    assert write_stamps(image, rows, tmp_path / "a") == first
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "a").iterdir()} == mtimes
    write_stamps(image, rows, tmp_path / "b")
    for name in first:
        a = (tmp_path / "a" / name).read_bytes()
        assert a == (tmp_path / "b" / name).read_bytes()
        assert b"Matplotlib" not in a
    assert not [p for p in (tmp_path / "a").iterdir() if p.name.startswith(".")]


def test_stamps_bad_input_named(tmp_path: Path) -> None:
    missing = tmp_path / "nope.fits"
    with pytest.raises(ValueError, match="nope.fits"):
        write_stamps(missing, _candidates(STARS), tmp_path / "s")
    junk = tmp_path / "junk.fits"
    junk.write_text("not a FITS file")
    with pytest.raises(ValueError, match="junk.fits"):
        write_stamps(junk, _candidates(STARS), tmp_path / "s")
    image = _image(tmp_path / "image.fits")
    with pytest.raises(ValueError, match="X_IMAGE"):
        write_stamps(image, _candidates(STARS).drop(columns="X_IMAGE"), tmp_path / "s")


def test_scale_stamp_flat_and_blank() -> None:
    flat = np.full((8, 8), 7.0)
    assert np.all(scale_stamp(flat) == 0.5)
    blank = np.full((8, 8), np.nan)
    assert np.all(np.isnan(scale_stamp(blank)))
    half = flat.copy()
    half[:, :4] = np.nan
    out = scale_stamp(half)
    assert np.all(np.isnan(out[:, :4])) and np.all(out[:, 4:] == 0.5)


# --------------------------------------------------------------------------- gallery


def test_gallery_one_datum_per_candidate(tmp_path: Path) -> None:
    rows = _candidates(STARS + [OUTSIDE])
    stamps = [f"stamps/{TILE}/{n}.png" for n, _, _ in STARS] + [None]
    page = write_gallery(rows, stamps, tmp_path / "gallery.html", title="Demo").read_text()
    data = _gallery_payload(page)
    cands = data["candidates"]
    assert [c["number"] for c in cands] == [n for n, _, _ in STARS + [OUTSIDE]]
    assert cands[0]["stamp"] == "stamps/t184.0164%2B27.8682/11.png"
    assert cands[-1]["stamp"] is None
    assert cands[0]["hms"] == "12:16:00.00" and cands[0]["dms"] == "+27:48:00.0"
    assert cands[0]["failed"] == [] and cands[0]["passed"][0] == "flags" and cands[0]["passed"][-1] == "not_hpm"
    assert len(cands[0]["passed"]) == 15
    links = dict(cands[0]["links"])
    assert set(links) == {"SIMBAD", "VizieR", "Aladin", "ESASky", "Legacy Surveys", "Pan-STARRS"}
    assert "Coord=184.000000%20%2B27.800000" in links["SIMBAD"] and "Radius=10" in links["SIMBAD"]
    assert "fov=0.05" in links["Aladin"] and "survey=CDS%2FP%2FDSS2%2Fred" in links["Aladin"]
    assert "6 candidates" not in page and "7 candidates" in page
    # Nothing loaded from elsewhere: no absolute src/href, no CSS import or url().
    assert not re.search(r'(src|href)\s*=\s*"(https?:)?//', page)
    assert "@import" not in page and "url(" not in page


def test_gallery_escapes_hostile_text(tmp_path: Path) -> None:
    rows = _candidates(STARS[:2], tile=HOSTILE, label=HOSTILE)
    page = write_gallery(rows, [None, None], tmp_path / "g.html", title=HOSTILE).read_text()
    assert "<script>alert(1)" not in page
    assert page.count("</script>") == 2  # the data block and the code block, nothing else
    assert "<!--" not in page
    assert html.escape(HOSTILE) in page  # the title, as text
    assert _gallery_payload(page)["candidates"][0]["tile"] == HOSTILE


def test_gallery_empty_and_deterministic(tmp_path: Path) -> None:
    empty = _candidates([])
    page = write_gallery(empty, [], tmp_path / "g.html", title="Empty").read_text()
    assert "No candidates" in page and _gallery_payload(page)["candidates"] == []
    rows = _candidates(STARS)
    stamps = [f"s/{n}.png" for n, _, _ in STARS]
    a = write_gallery(rows, stamps, tmp_path / "a.html", title="T").read_bytes()
    b = write_gallery(rows, stamps, tmp_path / "b.html", title="T").read_bytes()
    assert a == b
    with pytest.raises(ValueError, match="stamps"):
        write_gallery(rows, stamps[:-1], tmp_path / "c.html", title="T")


# --------------------------------------------------------------------------- index page


def test_index_page_summary_and_failures(tmp_path: Path) -> None:
    path = tmp_path / "My survey" / "report" / "index.html"
    page = write_index(
        path,
        summary=SUMMARY,
        plots={"Funnel": "plots/funnel.png", "Magnitudes": "plots/mag.png"},
        tiles=_tiles_rows(),
        coverage={"moc": "moc.fits", "sky": "sky.png", "area_deg2": 0.75, "tiles": 4},
        gallery="gallery.html",
        config_hash="8cb980c6a82d2fa5",
        vasco_version="0.2.0",
        created="2026-11-21T15:00:00Z",
    ).read_text()
    for text in (
        "My survey",
        "2026-11-21T15:00:00Z",
        "0.2.0",
        "8cb980c6a82d2fa5",
        "17,398",
        "12,031",
        "astrometry_failed",
        "no_plate_coverage",
        "t002.0000+02.0000",
        "74.4 %",
        "100.0 %",
        "69.2 %",
        'href="gallery.html"',
        'href="moc.fits"',
        'src="plots/funnel.png"',
        "0.750 deg",
    ):
        assert text in page, text
    assert "<script>alert(1)" not in page and html.escape(HOSTILE) in page
    assert page.index("Funnel</figcaption>") < page.index('id="plots"') < page.index("Magnitudes</figcaption>")


def test_index_page_caps_tile_rows(tmp_path: Path) -> None:
    tiles = [
        {
            "tile_id": f"t{i:06d}",
            "status": "ok",
            "reason": None,
            "plate": "E1",
            "epoch": 1955.0,
            "detections": 10,
            "candidates": 0,
            "qc": None,
            "astrometry": None,
        }
        for i in range(MAX_TILE_ROWS + 500)
    ]
    tiles[-1] = {**tiles[-1], "status": "failed", "reason": "boom"}
    tiles[-2] = {**tiles[-2], "candidates": 3}
    page = write_index(
        tmp_path / "report" / "index.html",
        summary={},
        plots={},
        tiles=tiles,
        coverage={},
        gallery=None,
        config_hash="h",
        vasco_version="v",
        created="c",
    ).read_text()
    body = page[page.index('id="tile-table"') :]
    assert body.count("<tr data-status=") == MAX_TILE_ROWS
    assert f"Showing {MAX_TILE_ROWS:,} of {MAX_TILE_ROWS + 500:,} tiles" in page
    first = re.findall(r'<tr data-status="[^"]*"><td>([^<]*)</td>', body)[:2]
    assert first == [tiles[-1]["tile_id"], tiles[-2]["tile_id"]]
    assert "No gallery" in page and "No QC plots" in page


# --------------------------------------------------------------------------- in chromium


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A small survey report folder: stamps, gallery, plots and index page."""
    root = tmp_path_factory.mktemp("survey")
    report = root / "report"
    image = _image(root / "tiles" / TILE / "raw" / "image.fits")
    rows = _candidates(STARS + [OUTSIDE])
    rows.loc[1, "plate_label"] = HOSTILE
    names = write_stamps(image, rows, report / "stamps" / TILE)
    stamps = [f"stamps/{TILE}/{n}" if n else None for n in names]
    gallery = write_gallery(rows, stamps, report / "gallery.html", title="Synthetic survey: candidates")
    plots = {"Funnel": "plots/funnel.png", "Magnitude histogram": "plots/mag.png"}
    for rel in [*plots.values(), "sky.png"]:
        _png(report / rel)
    (report / "moc.fits").write_bytes(b"")
    index = write_index(
        report / "index.html",
        summary=SUMMARY,
        plots=plots,
        tiles=_tiles_rows(),
        coverage={"moc": "moc.fits", "sky": "sky.png", "area_deg2": 0.75, "tiles": 4},
        gallery="gallery.html",
        config_hash="8cb980c6a82d2fa5",
        vasco_version="0.2.0",
        created="2026-11-21T15:00:00Z",
    )
    return {"gallery": gallery, "index": index, "rows": rows, "stamps": stamps}


def test_console_detector_can_fail(tmp_path: Path, open_page: Callable[..., Any]) -> None:
    """The no-console-errors checks below can fail: the detector sees errors, warnings and syntax errors."""
    pages = {
        "console.html": "<script>console.error('boom-error'); console.warn('boom-warning')</script>",
        "broken.html": "<script>var a = ;</script><script>undefinedFunction()</script>",
        "clean.html": "<script>console.log('just-log'); document.body.dataset.ready = '1'</script>",
    }
    for name, script in pages.items():
        (tmp_path / name).write_text(
            f"<!DOCTYPE html><html><head><link rel=icon href='data:,'></head><body>{script}</body></html>"
        )
    got = {name: open_page(tmp_path / name, wait_ready=False).problems() for name in ("console.html", "broken.html")}
    assert any(m.startswith("error:") and "boom-error" in m for m in got["console.html"]), got
    assert any(m.startswith("warning:") and "boom-warning" in m for m in got["console.html"]), got
    assert any(m.startswith("error:") and "SyntaxError" in m for m in got["broken.html"]), got
    assert any(m.startswith("error:") and "undefinedFunction" in m for m in got["broken.html"]), got
    clean = open_page(tmp_path / "clean.html")
    assert clean.problems() == [] and any(m.startswith("log:") and "just-log" in m for m in clean.messages), clean


def test_gallery_dom_in_chromium(site: dict, open_page: Callable[..., Any]) -> None:
    dom = open_page(site["gallery"]).page.content()
    assert re.search(r'<body[^>]*data-ready="1"', dom), dom[:500]
    states = re.findall(r'<article class="card"[^>]*data-stamp="(\w+)"', dom)
    assert len(states) == len(site["rows"])
    expected = ["loaded" if s else "missing" for s in site["stamps"]][:EAGER_STAMPS]
    assert states[: len(expected)] == expected
    assert f"{len(site['rows'])} of {len(site['rows'])} candidates shown" in dom
    assert dom.count("astrometry untrusted: fit_fallback_shift") == 1 and "Position \u00b1" in dom
    assert "<script>alert(1)" not in dom.split('id="vasco-data"')[0]
    assert html.escape("</script><script>alert(1)</script>", quote=False) in dom


def test_gallery_sort_and_filter_in_chromium(site: dict, open_page: Callable[..., Any]) -> None:
    gallery = open_page(site["gallery"])
    page = gallery.page

    def shown_cards() -> list[int]:
        return [
            int(i)
            for i in page.locator("#cards .card:not([hidden])").evaluate_all("cards => cards.map(c => c.dataset.index)")
        ]

    n = len(site["rows"])
    assert shown_cards() == list(range(n))
    page.fill("#edge-min", "2500")
    assert shown_cards() == [0, 1, 2, 3]  # edge_dist_px = 4000 - 500 k >= 2500
    assert page.text_content("#shown") == f"4 of {n} candidates shown"
    page.fill("#edge-min", "")
    page.select_option("#sort", "snr")
    page.click("#order")
    assert shown_cards() == list(range(n))[::-1]  # SNR grows with k; descending
    page.fill("#text", "xe320")
    assert page.text_content("#shown") == f"{n} of {n} candidates shown"
    page.evaluate("0")  # a round trip: every message the page sent has arrived
    assert gallery.problems() == []


def test_pages_have_no_console_problems(site: dict, open_page: Callable[..., Any]) -> None:
    for path in (site["gallery"], site["index"]):
        opened = open_page(path)
        assert opened.problems() == [], (path, opened.messages)
    assert open_page(site["gallery"], query="eager=1").problems() == []


def test_index_dom_in_chromium(site: dict, open_page: Callable[..., Any]) -> None:
    dom = open_page(site["index"]).page.content()
    assert re.search(r'<body[^>]*data-ready="1"', dom)
    assert dom.count("<tr data-status=") == 3
    assert "3 of 3 rows shown" in dom
    assert "astrometry_failed" in dom and "<script>alert(1)" not in dom


def test_gallery_screenshot(site: dict, tmp_path: Path, open_page: Callable[..., Any]) -> None:
    shot = tmp_path / "gallery.png"
    open_page(site["gallery"]).page.screenshot(path=shot)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pixels = mpimg.imread(shot)
    assert pixels.shape[:2] == (1600, 1280)
    assert float(pixels[..., :3].std()) > 0.05  # not a blank page
    assert np.unique(pixels[::2, ::2, 0]).size > 50  # text, stamps and chips, not a few flat colours

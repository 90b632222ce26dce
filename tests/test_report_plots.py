"""QC plots, streaming histograms, the coverage MOC and the sky map (vasco.report.plots / .coverage).

Fast: small hand-made tables and records in tmp_path, no SExtractor.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from vasco.config import VascoConfig
from vasco.plates.table import find_plate
from vasco.report import coverage, plots
from vasco.report.coverage import moc_area_deg2, sky_map, tiles_moc, write_moc
from vasco.report.plots import stream_histograms, survey_plots, survey_statistics, tile_qc_plot

# Two real plates of the table: a 25.28-um scan (14000 px) and a 15-um one (23040 px).
PLATE_A = "XE320"
PLATE_B = "XE921"


def _png(path: Path) -> np.ndarray:
    from matplotlib.image import imread

    assert path.is_file() and path.stat().st_size > 0
    img = imread(path)
    assert img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 100
    assert float(img[..., :3].std()) > 0.01, "uniform image"
    return img


def _detections(n: int, seed: int = 0, *, plate: str = PLATE_A, tile: str = "t001") -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    fwhm = rng.gamma(6.0, 0.6, n).astype(np.float32)
    elong = (1.0 + rng.exponential(0.2, n)).astype(np.float32)
    mag = rng.uniform(-16.0, -10.0, n).astype(np.float32)
    snr = (10.0 ** (-0.3 * (mag + 10.0)) * 20.0 * rng.lognormal(0.0, 0.2, n)).astype(np.float32)
    x = rng.uniform(1.0, 1059.0, n).astype(np.float32)
    y = rng.uniform(1.0, 1059.0, n).astype(np.float32)
    passing = (fwhm > 2) & (fwhm < 7) & (elong < 1.3) & (snr > 30)
    cand = passing & (rng.uniform(size=n) < 0.02)
    df = pd.DataFrame(
        {
            "tile_id": tile,
            "plate_id": plate,
            "FWHM_IMAGE": fwhm,
            "ELONGATION": elong,
            "SNR_WIN": snr,
            "MAG_AUTO": mag,
            "X_IMAGE": x,
            "Y_IMAGE": y,
            "x_plate": x.astype(np.float64) + 6000.0,
            "y_plate": y.astype(np.float64) + 300.0 + 40.0 * seed,
            "passes_cuts": passing,
            "is_candidate": cand,
            "is_survey_candidate": cand,
            "ra": 184.0 + rng.uniform(-0.2, 0.2, n),
            "dec": 27.9 + rng.uniform(-0.2, 0.2, n),
        }
    )
    # Some NaNs and a SExtractor 99 magnitude.
    df.loc[df.index[:3], "FWHM_IMAGE"] = np.nan
    df.loc[df.index[3:5], "SNR_WIN"] = np.nan
    df.loc[df.index[5], "MAG_AUTO"] = 99.0
    df.loc[df.index[6], "x_plate"] = np.nan
    return df


def _record(
    tile: str = "t001",
    *,
    status: str = "ok",
    ra: float = 184.0,
    dec: float = 27.9,
    plate: str = PLATE_A,
    size: float = 30.0,
    funnel: dict | None = None,
) -> dict:
    return {
        "tile_id": tile,
        "centre": {"ra": ra, "dec": dec},
        "plate": {"region": plate, "label": "E1398", "epoch": 1955.29},
        "status": status,
        "reason": None if status == "ok" else "REJECT_NON_POSS",
        "size_arcmin": size,
        "funnel": funnel if funnel is not None else {"detections": 500, "flags": 400, "snr": 200, "no_gaia": 0},
        "astrometry": {"raw_median_residual_arcsec": 0.3, "median_residual_arcsec": 0.2},
    }


def _write_parquet(df: pd.DataFrame, path: Path, row_group_size: int) -> Path:
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), path, row_group_size=row_group_size)
    return path


@pytest.fixture()
def survey(tmp_path: Path) -> dict:
    """A 3-tile survey table on two plates, several row groups, with nulls in passes_cuts."""
    det = pd.concat(
        [
            _detections(700, 1, tile="t001"),
            _detections(500, 2, plate=PLATE_B, tile="t002"),
            _detections(300, 3, plate="XE999", tile="t003"),
        ],
        ignore_index=True,
    )
    table = pa.Table.from_pandas(det, preserve_index=False)
    passes = table.column("passes_cuts").to_pylist()
    passes[10] = None
    table = table.set_column(table.schema.get_field_index("passes_cuts"), "passes_cuts", pa.array(passes, pa.bool_()))
    path = tmp_path / "detections.parquet"
    pq.write_table(table, path, row_group_size=256)
    assert pq.ParquetFile(path).metadata.num_row_groups > 3
    records = [
        _record("t001", plate=PLATE_A),
        _record("t002", ra=200.0, dec=10.0, plate=PLATE_B),
        _record("t003", ra=210.0, dec=-5.0, plate="XE999"),
    ]
    summary = {
        "funnel": {
            "detections": 1500,
            "flags": 1200,
            "snr": 800,
            "mad_clip": 600,
            "no_gaia": 30,
            "spread_model": 0,
            "unique": 0,
        }
    }
    return {
        "path": path,
        "det": det,
        "records": records,
        "summary": summary,
        "cands": det[det["is_survey_candidate"]].reset_index(drop=True),
    }


# ------------------------------------------------------------------------------------------- streaming


def test_stream_histograms_exact_counts(survey: dict) -> None:
    det = survey["det"]
    bins = {"FWHM_IMAGE": np.linspace(0.0, 8.0, 17), "SNR_WIN": np.geomspace(5.0, 500.0, 23)}
    passes = det["passes_cuts"].to_numpy().copy()
    passes[10] = False  # the null of the file counts as false
    for clip in (False, True):
        got = stream_histograms(survey["path"], bins, select="passes_cuts", clip=clip, batch_size=37)
        assert got.rows == len(det) and got.selected_rows == int(passes.sum())
        for name, edges in bins.items():
            v = det[name].to_numpy(dtype=np.float64)
            v = v[np.isfinite(v)]
            sel = passes[np.isfinite(det[name].to_numpy(dtype=np.float64))]
            w = np.clip(v, edges[0], edges[-1]) if clip else v
            np.testing.assert_array_equal(got.counts[name], np.histogram(w, bins=edges)[0])
            np.testing.assert_array_equal(got.selected[name], np.histogram(w[sel], bins=edges)[0])


def test_bin_index_matches_numpy_on_edges() -> None:
    """Values on, just below and just above every edge land as with numpy.histogram (both code paths)."""
    for edges in (np.linspace(-40.0, 40.0, 1601), np.linspace(0.0, 1.0, 11), np.geomspace(1.0, 1e4, 31)):
        v = np.concatenate(
            [edges, np.nextafter(edges, -np.inf), np.nextafter(edges, np.inf), [np.nan, np.inf, -np.inf, 1e300, -1e300]]
        )
        for clip in (False, True):
            idx = plots._bin_index(v, edges, clip=clip)
            w = np.clip(v, edges[0], edges[-1]) if clip else v
            got = np.bincount(idx[idx >= 0], minlength=len(edges) - 1)
            np.testing.assert_array_equal(got, np.histogram(w[np.isfinite(w)], bins=edges)[0])


def test_stream_histograms_names_missing_column(survey: dict) -> None:
    with pytest.raises(ValueError, match="NOPE"):
        stream_histograms(survey["path"], {"NOPE": [0, 1]})


def test_survey_statistics_match_numpy(survey: dict) -> None:
    det = survey["det"]
    passes = det["passes_cuts"].to_numpy().copy()
    passes[10] = False
    stats = survey_statistics(survey["path"], sample_rows=100, batch_size=50)
    assert stats.rows == len(det) and stats.passing_rows == int(passes.sum())
    assert stats.plates == (PLATE_A, PLATE_B, "XE999")

    fwhm = det["FWHM_IMAGE"].to_numpy(np.float64)
    ok = np.isfinite(fwhm)
    clipped = np.clip(fwhm[ok], plots.FWHM_EDGES[0], plots.FWHM_EDGES[-1])
    np.testing.assert_array_equal(stats.fwhm_all, np.histogram(clipped, plots.FWHM_EDGES)[0])
    np.testing.assert_array_equal(stats.fwhm_passing, np.histogram(clipped[passes[ok]], plots.FWHM_EDGES)[0])
    el = det["ELONGATION"].to_numpy(np.float64)
    np.testing.assert_array_equal(stats.elongation_passing, np.histogram(el[passes], plots.ELONGATION_EDGES)[0])

    mag = det["MAG_AUTO"].to_numpy(np.float64)
    snr = det["SNR_WIN"].to_numpy(np.float64)
    good = np.isfinite(mag) & np.isfinite(snr) & (snr > 0)
    expect = np.histogram2d(mag[good], np.log10(snr[good]), bins=[plots.MAG_EDGES, plots.LOG_SNR_EDGES])[0]
    np.testing.assert_array_equal(stats.snr_mag, expect.astype(np.int64))
    assert stats.snr_mag.sum() == good.sum() - 3  # the 99 magnitudes (one a tile) are off the grid

    # Edge distance in mm, on the plates of the table only (XE999 is not one).
    geo = {p: find_plate(p) for p in (PLATE_A, PLATE_B)}
    sx = det["plate_id"].map({p: float(g.header()["XPIXELSZ"]) / 1000 for p, g in geo.items()}).to_numpy(float)
    sy = det["plate_id"].map({p: float(g.header()["YPIXELSZ"]) / 1000 for p, g in geo.items()}).to_numpy(float)
    w = det["plate_id"].map({p: g.naxis1 for p, g in geo.items()}).to_numpy(float) * sx
    h = det["plate_id"].map({p: g.naxis2 for p, g in geo.items()}).to_numpy(float) * sy
    xm = (det["x_plate"].to_numpy() - 0.5) * sx
    ym = (det["y_plate"].to_numpy() - 0.5) * sy
    edge = np.minimum.reduce([xm, w - xm, ym, h - ym])
    sel = passes & np.isfinite(edge)
    np.testing.assert_array_equal(stats.edge_mm_passing, np.histogram(edge[sel], plots.EDGE_MM_EDGES)[0])

    # The sample: every k-th passing detection (k a power of two), at most sample_rows of them.
    k = stats.sample_step
    assert k & (k - 1) == 0 and len(stats.sample_x_mm) <= 100
    expect_x = xm[passes][::k]
    assert len(stats.sample_x_mm) == len(expect_x) and len(expect_x) > 50
    np.testing.assert_array_equal(stats.sample_x_mm, expect_x)
    np.testing.assert_array_equal(stats.sample_y_mm, ym[passes][::k])
    # The result does not depend on the batch size.
    again = survey_statistics(survey["path"], sample_rows=100, batch_size=997)
    np.testing.assert_array_equal(again.sample_x_mm, stats.sample_x_mm)
    np.testing.assert_array_equal(again.snr_mag, stats.snr_mag)


def test_survey_statistics_names_missing_column(tmp_path: Path) -> None:
    path = _write_parquet(_detections(20).drop(columns=["plate_id"]), tmp_path / "d.parquet", 8)
    with pytest.raises(ValueError, match="plate_id"):
        survey_statistics(path)


# ---------------------------------------------------------------------------------------- survey plots


def test_survey_plots_write_deterministic_pngs(survey: dict, tmp_path: Path) -> None:
    cfg = VascoConfig()
    astrometry = pd.DataFrame(
        {
            "tile_id": ["t001", "t002", "t003"],
            "raw_median_residual_arcsec": [0.3, 0.5, np.nan],
            "median_residual_arcsec": [0.2, 0.25, 0.1],
        }
    )
    out = []
    for name in ("a", "b"):
        out.append(
            survey_plots(
                survey["path"],
                survey["cands"],
                survey["records"],
                survey["summary"],
                astrometry,
                cfg,
                tmp_path / name,
                sample_rows=1000,
            )
        )
    a, b = out
    assert list(a) == [
        "FWHM and elongation",
        "SNR vs magnitude",
        "Astrometric residuals",
        "Detections and candidates on the plate frame",
        "Funnel",
    ]
    for caption, path in a.items():
        assert path.parent == tmp_path / "a"
        _png(path)
        assert path.read_bytes() == b[caption].read_bytes(), caption
    assert not list((tmp_path / "a").glob(".*part"))


def test_survey_plots_without_candidates_or_astrometry(tmp_path: Path) -> None:
    det = _detections(200, 4)
    det["passes_cuts"] = False
    path = _write_parquet(det, tmp_path / "detections.parquet", 64)
    records = [_record("t001")]
    records[0].pop("astrometry")
    got = survey_plots(path, pd.DataFrame(), records, {"funnel": {}}, None, VascoConfig(), tmp_path / "plots")
    assert len(got) == 5
    for p in got.values():
        _png(p)


def test_survey_plots_empty_detections_file(tmp_path: Path) -> None:
    path = _write_parquet(_detections(10).iloc[:0], tmp_path / "detections.parquet", 64)
    got = survey_plots(path, pd.DataFrame(), [], {"funnel": {"detections": 0}}, None, VascoConfig(), tmp_path / "plots")
    for p in got.values():
        assert p.is_file() and p.stat().st_size > 0
    # No tile processed: the published detections file is empty (0 bytes) or absent.
    path.write_bytes(b"")
    assert len(survey_plots(path, pd.DataFrame(), [], {}, None, VascoConfig(), tmp_path / "p0")) == 5
    path.unlink()
    assert len(survey_plots(path, pd.DataFrame(), [], {}, None, VascoConfig(), tmp_path / "p1")) == 5


def test_survey_plots_name_missing_candidate_column(survey: dict, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="x_plate"):
        survey_plots(
            survey["path"],
            survey["cands"].drop(columns=["x_plate"]),
            survey["records"],
            survey["summary"],
            None,
            VascoConfig(),
            tmp_path,
        )


# ------------------------------------------------------------------------------------------ tile plots


def test_tile_qc_plot_writes_deterministic_png(tmp_path: Path) -> None:
    det = _detections(400, 5)
    assert det["is_candidate"].sum() > 0
    cfg = VascoConfig()
    a = tile_qc_plot(det, _record(), cfg, tmp_path / "a" / "tile.png", image_shape=(1059, 1059))
    b = tile_qc_plot(det, _record(), cfg, tmp_path / "b" / "tile.png", image_shape=(1059, 1059))
    img = _png(a)
    assert img.shape[:2] == (810, 1260)  # 14 x 9 in at 90 dpi
    assert a.read_bytes() == b.read_bytes()


def test_tile_qc_plot_no_candidates_unknown_plate_no_shape(tmp_path: Path) -> None:
    det = _detections(150, 6)
    det["is_candidate"] = False
    det["passes_cuts"] = pd.array([True, None] * 75, dtype="boolean")
    _png(tile_qc_plot(det, _record(plate="XE999"), VascoConfig(), tmp_path / "tile.png"))


def test_tile_qc_plot_rejected_tile(tmp_path: Path) -> None:
    path = tile_qc_plot(pd.DataFrame(), _record(status="rejected", funnel={}), VascoConfig(), tmp_path / "t.png")
    _png(path)


def test_tile_qc_plot_names_missing_column(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="ELONGATION"):
        tile_qc_plot(_detections(20).drop(columns=["ELONGATION"]), _record(), VascoConfig(), tmp_path / "t.png")


# ---------------------------------------------------------------------------------------------- coverage


def _separation_deg(ra1: np.ndarray, dec1: np.ndarray, ra2: float, dec2: float) -> np.ndarray:
    from astropy.coordinates import SkyCoord

    return SkyCoord(ra1, dec1, unit="deg").separation(SkyCoord(ra2, dec2, unit="deg")).deg


def test_tile_corners_on_the_tangent_plane() -> None:
    ra = np.array([10.0, 359.9, 150.0])
    dec = np.array([0.0, 45.0, 89.0])
    lon, lat = coverage.tile_corners(ra, dec, 30.0)
    assert lon.shape == (3, 4) and lon.dtype == np.float64
    h = np.deg2rad(0.25)
    for i in range(3):
        # A corner (xi, eta) = (h, h) is atan(h sqrt2) from the tangent point.
        np.testing.assert_allclose(
            _separation_deg(lon[i], lat[i], ra[i], dec[i]), np.rad2deg(np.arctan(h * np.sqrt(2.0))), rtol=1e-9
        )
    # North is up: the northern corners have the higher Dec; east (SE) has the higher RA on the equator.
    assert lat[0, 2] > lat[0, 1] and lon[0, 1] > lon[0, 0]


def test_tiles_moc_contains_tiles_with_the_right_area(tmp_path: Path) -> None:
    from astropy import units as u
    from mocpy import MOC

    records = [
        _record("a", ra=10.0, dec=0.0),
        _record("b", ra=359.9, dec=20.0),
        _record("c", ra=150.0, dec=60.0),
        _record("d", ra=300.0, dec=-25.0),
        _record("r", status="rejected", ra=100.0, dec=10.0),
        _record("f", status="failed", ra=120.0, dec=10.0),
    ]
    ok = [r for r in records if r["status"] == "ok"]
    moc = tiles_moc(records)
    path = write_moc(moc, tmp_path / "moc.fits")
    assert not list(tmp_path.glob(".*part"))
    for back in (MOC.from_fits(path), MOC.load(path, format="fits")):
        assert back == moc
        ra = np.array([r["centre"]["ra"] for r in ok])
        dec = np.array([r["centre"]["dec"] for r in ok])
        assert back.contains_lonlat(ra * u.deg, dec * u.deg).all()
        assert not back.contains_lonlat((ra + 1.0 / np.cos(np.deg2rad(dec))) * u.deg, dec * u.deg).any()
        assert not back.contains_lonlat(ra * u.deg, (dec + 1.0) * u.deg).any()
        assert not back.contains_lonlat([100.0, 120.0] * u.deg, [10.0, 10.0] * u.deg).any()
    # Solid angle of the tangent-plane square |xi|, |eta| <= h: 4 asin(h^2 / (1 + h^2)).
    h = np.deg2rad(0.25)
    true_area = len(ok) * np.rad2deg(np.rad2deg(4.0 * np.arcsin(h * h / (1.0 + h * h))))
    # Depth 12 (default) is conservative by about half a 0.86' cell around each tile.
    assert true_area <= moc_area_deg2(moc) <= 1.12 * true_area
    assert moc_area_deg2(tiles_moc(records, max_depth=14)) == pytest.approx(true_area, rel=0.03)
    write_moc(tiles_moc(records[:1]), path)  # overwrite
    assert MOC.from_fits(path) != moc


def test_tiles_moc_names_bad_record() -> None:
    rec = _record("bad")
    del rec["size_arcmin"]
    with pytest.raises(ValueError, match="bad"):
        tiles_moc([rec])


def test_empty_coverage(tmp_path: Path) -> None:
    from mocpy import MOC

    moc = tiles_moc([])
    assert moc.empty() and moc_area_deg2(moc) == 0.0
    assert MOC.from_fits(write_moc(moc, tmp_path / "moc.fits")).empty()
    _png(sky_map(moc, pd.DataFrame(), tmp_path / "sky.png"))


def test_healpix_centres_inside_their_cells() -> None:
    from astropy import units as u
    from mocpy import MOC

    for order in (0, 3, 7):
        ipix = np.unique(np.random.default_rng(order).integers(0, 12 * 4**order, 40)).astype(np.uint64)
        lon, lat = coverage.healpix_centres(order, ipix)
        for p, lo, la in zip(ipix, lon, lat):
            cell = MOC.from_healpix_cells(np.array([p]), np.array([order]), max_depth=order)
            assert cell.contains_lonlat([lo] * u.deg, [la] * u.deg).all()


def test_sky_map_deterministic(tmp_path: Path) -> None:
    records = [_record("a", ra=10.0, dec=0.0), _record("b", ra=359.9, dec=20.0), _record("c", ra=150.0, dec=60.0)]
    moc = tiles_moc(records)
    cands = pd.DataFrame(
        {"ra": [10.01, 150.0, np.nan], "dec": [0.0, 60.05, 1.0], "is_survey_candidate": [True, True, True]}
    )
    a = sky_map(moc, cands, tmp_path / "a.png", title="test")
    b = sky_map(moc, cands, tmp_path / "b.png", title="test")
    _png(a)
    assert a.read_bytes() == b.read_bytes()
    with pytest.raises(ValueError, match="dec"):
        sky_map(moc, cands.drop(columns=["dec"]), tmp_path / "c.png")

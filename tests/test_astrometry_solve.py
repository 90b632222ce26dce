"""Choosing the header solution and tying a tile to Gaia (vasco.astrometry.solve), and its QC."""

import numpy as np
import pandas as pd
import pytest
from astropy.io import fits

from vasco.astrometry.platefit import fit_plate, from_tangent_plane, tangent_plane
from vasco.astrometry.solve import (
    PAIR_COLUMNS,
    available_solutions,
    isolated,
    reference_at_epoch,
    solve_tile,
    two_solution_offset_arcsec,
)
from vasco.config import AstrometryConfig, SyntheticConfig
from vasco.matching.crossmatch import angular_separation_arcsec
from vasco.qc.astrometry import astrometry_table, summarize_astrometry, write_astrometry_table
from vasco.qc.astrometry_plot import plot_residuals


def _sky(ra0, dec0, n=600, seed=3, half=900.0, noise=0.05):
    """Truth, and the positions two imperfect header solutions give for it."""
    rng = np.random.default_rng(seed)
    xi = rng.uniform(-half, half, n)
    eta = rng.uniform(-half, half, n)
    truth = from_tangent_plane(xi, eta, ra0, dec0)
    s = half
    # The plate polynomial misses a smooth distortion (arcsec) ...
    pxi = xi + 0.5 * (xi / s) ** 2 - 0.4 * (xi / s) * (eta / s) + 0.3 * (eta / s) ** 3 + rng.normal(0, noise, n)
    peta = eta - 0.6 * (eta / s) ** 2 + 0.35 * (xi / s) ** 3 + rng.normal(0, noise, n)
    plate = from_tangent_plane(pxi, peta, ra0, dec0)
    # ... and the TAN WCS is that, 2.3" away.
    tan = from_tangent_plane(pxi + 2.3 * np.cos(0.7), peta + 2.3 * np.sin(0.7), ra0, dec0)
    x = xi / 1.7 + 530.0
    y = eta / 1.7 + 530.0
    return truth, {"plate": plate, "tan": tan}, x, y


@pytest.mark.parametrize("ra0,dec0", [(132.8, 11.8), (359.99, 40.0), (0.01, -25.0), (150.0, 85.0)])
def test_auto_chooses_the_solution_the_data_support_and_fits_it(ra0, dec0):
    truth, pos, x, y = _sky(ra0, dec0)
    mask = np.ones(len(x), bool)
    sol = solve_tile(pos, x, y, mask, truth[0], truth[1], ra0, dec0, AstrometryConfig())
    assert sol.solution == "plate" and sol.choice == "raw_residuals"
    assert sol.raw_median_by_solution["tan"] > 2.0 > sol.raw_median_by_solution["plate"]
    summary = sol.summary()
    assert summary["fitted"] and summary["degree"] in (2, 3)
    assert summary["raw_median_residual_arcsec"] > 0.3
    assert summary["median_residual_arcsec"] <= 0.15
    # Corrected positions are float64 and close to the truth everywhere, also across RA 0/360.
    assert sol.ra.dtype == np.float64 and sol.dec.dtype == np.float64
    err = angular_separation_arcsec(sol.ra, sol.dec, *truth)
    assert np.median(err) < 0.1 and np.percentile(err, 99) < 0.3
    assert ((sol.ra >= 0) & (sol.ra < 360)).all()
    # Isolated reference stars only (a few of 600 random stars have a neighbour within 6").
    assert list(sol.pairs.columns) == list(PAIR_COLUMNS) and 0.95 * len(x) < len(sol.pairs) < len(x)


def test_configured_tan_is_used_and_its_offset_removed():
    truth, pos, x, y = _sky(132.8, 11.8)
    cfg = AstrometryConfig(solution="tan")
    sol = solve_tile(pos, x, y, np.ones(len(x), bool), truth[0], truth[1], 132.8, 11.8, cfg)
    assert sol.solution == "tan" and sol.choice == "configured"
    assert sol.summary()["raw_median_residual_arcsec"] > 2.0
    assert sol.summary()["median_residual_arcsec"] <= 0.15


def test_without_reference_or_refit_positions_stay_the_headers():
    truth, pos, x, y = _sky(132.8, 11.8)
    mask = np.ones(len(x), bool)
    sol = solve_tile(pos, x, y, mask, None, None, 132.8, 11.8, AstrometryConfig())
    assert sol.solution == "plate" and sol.choice == "no_reference" and sol.fit is None
    np.testing.assert_array_equal(sol.ra, pos["plate"][0])
    assert sol.summary()["status"] == "not_fitted" and sol.summary()["median_residual_arcsec"] is None
    # refit off: the data still choose the solution, nothing is corrected.
    sol = solve_tile(pos, x, y, mask, truth[0], truth[1], 132.8, 11.8, AstrometryConfig(refit=False))
    assert sol.solution == "plate" and sol.fit is None
    np.testing.assert_array_equal(sol.dec, pos["plate"][1])
    assert sol.summary()["median_residual_arcsec"] == pytest.approx(sol.summary()["raw_median_residual_arcsec"])


def test_only_plate_polynomial_and_missing_configured_solution():
    truth, pos, x, y = _sky(132.8, 11.8)
    only = {"plate": pos["plate"]}
    sol = solve_tile(only, x, y, np.ones(len(x), bool), truth[0], truth[1], 132.8, 11.8, AstrometryConfig())
    assert sol.choice == "only_solution" and sol.summary()["median_residual_arcsec"] <= 0.15
    with pytest.raises(ValueError, match="'tan' is not in the header"):
        solve_tile(only, x, y, np.ones(len(x), bool), truth[0], truth[1], 132.8, 11.8, AstrometryConfig(solution="tan"))


def test_too_few_stars_fall_back_as_stated():
    truth, pos, x, y = _sky(132.8, 11.8, n=8)
    sol = solve_tile(pos, x, y, np.ones(8, bool), truth[0], truth[1], 132.8, 11.8, AstrometryConfig())
    assert sol.summary()["status"] == "fallback_shift" and sol.summary()["degree"] == 0
    two = {k: (v[0][:2], v[1][:2]) for k, v in pos.items()}
    sol = solve_tile(two, x[:2], y[:2], np.ones(2, bool), truth[0][:2], truth[1][:2], 132.8, 11.8, AstrometryConfig())
    assert sol.summary()["status"] == "fallback_none" and not sol.summary()["fitted"]
    with pytest.raises(ValueError, match="fit_mask has 8 rows, positions have 2"):
        solve_tile(two, x[:2], y[:2], np.ones(8, bool), truth[0], truth[1], 132.8, 11.8, AstrometryConfig())


def test_isolated_and_unusable_references_are_not_paired_with_a_neighbour():
    ra0, dec0 = 10.0, 20.0
    ref = from_tangent_plane(np.array([0.0, 3.0, 100.0]), np.array([0.0, 0.0, 0.0]), ra0, dec0)
    iso = isolated(ref[0], ref[1], 6.0)
    assert iso.tolist() == [False, False, True]
    assert isolated(ref[0], ref[1], 0.0).all()
    # A detection on the crowded pair must not be paired with the other one of it.
    det = from_tangent_plane(np.array([0.2, 100.1]), np.array([0.0, 0.0]), ra0, dec0)
    fit = fit_plate(det[0], det[1], ref[0], ref[1], ra0, dec0, ref_usable=iso, min_stars_shift=1)
    assert fit.n_ref == 1


def test_reference_at_epoch_moves_stars_and_drops_those_without_motion():
    cat = pd.DataFrame(
        {
            "source_id": [1, 2],
            "ra": [10.0, 10.0],
            "dec": [0.0, 1.0],
            "pmra": [1000.0, np.nan],
            "pmdec": [0.0, np.nan],
            "epoch": [2016.0, 2016.0],
            "mag": [15.0, 16.0],
        }
    )
    ra, dec = reference_at_epoch(cat, 1956.0)
    assert len(ra) == 1
    assert (ra[0] - 10.0) * 3600 == pytest.approx(-60.0, rel=1e-6)
    ra, _ = reference_at_epoch(cat, 1956.0, require_pm=False)
    assert len(ra) == 2


def test_two_solution_offset_on_a_synthetic_header():
    from vasco.synthetic.tile import make_synthetic_tile

    cfg = SyntheticConfig(tan_offset_arcsec=2.3, n_transients=0)
    tile = make_synthetic_tile(132.825, 11.8, 5.0, 1, cfg)
    assert available_solutions(tile.header) == ["plate", "tan"]
    assert two_solution_offset_arcsec(tile.header) == pytest.approx(2.3, abs=0.01)
    old = fits.Header({k: tile.header[k] for k in tile.header if not k.startswith(("CD", "CTYPE", "CRPIX", "CRVAL"))})
    assert available_solutions(old) == ["plate"] and two_solution_offset_arcsec(old) is None


def test_residual_plot_and_survey_table(tmp_path):
    truth, pos, x, y = _sky(132.8, 11.8)
    sol = solve_tile(pos, x, y, np.ones(len(x), bool), truth[0], truth[1], 132.8, 11.8, AstrometryConfig())
    png = plot_residuals(sol.pairs, sol.summary(), tmp_path / "qc" / "astrometry.png", title="t1")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000
    empty = plot_residuals(sol.pairs.iloc[:0], {"solution": "plate"}, tmp_path / "empty.png")
    assert empty.stat().st_size > 1000
    recs = [
        {
            "tile_id": "t1",
            "status": "ok",
            "plate": {"region": "XE133"},
            "astrometry": {**sol.summary(), "two_solution_offset_arcsec": 2.3},
            "counts": {"detections": 300, "candidates": 1},
        },
        {"tile_id": "t2", "status": "failed", "plate": {}, "astrometry": None},
    ]
    table = astrometry_table(recs)
    # The report draws the residual plot of a tile with candidates, off the tile's path.
    assert table["tile_id"].tolist() == ["t1"] and table.loc[0, "plot"] == "tiles/t1/qc/astrometry.png"
    quiet = [{**recs[0], "counts": {"detections": 300, "candidates": 0}}]
    assert pd.isna(astrometry_table(quiet).loc[0, "plot"]) and astrometry_table(quiet, "all").loc[0, "plot"]
    summ = summarize_astrometry(table)
    assert summ["tiles"] == 1 and summ["solutions"] == {"plate": 1}
    assert summ["median_of_tile_medians_arcsec"] <= 0.15
    csv = write_astrometry_table(tmp_path / "astrometry.csv", table)
    back = pd.read_csv(csv)
    assert back.loc[0, "two_solution_offset_arcsec"] == pytest.approx(2.3)
    assert summarize_astrometry(astrometry_table([])) == {"tiles": 0}


def test_tangent_plane_round_trip_is_float64_exact():
    xi = np.array([-900.0, 0.0, 899.5])
    eta = np.array([12.0, -870.0, 3.0])
    ra, dec = from_tangent_plane(xi, eta, 359.995, 84.9)
    back = tangent_plane(ra, dec, 359.995, 84.9)
    np.testing.assert_allclose(back[0], xi, atol=1e-8)
    np.testing.assert_allclose(back[1], eta, atol=1e-8)

import numpy as np
import pytest

from vasco.astrometry.platefit import fit_plate, from_tangent_plane, tangent_plane


def _field(ra0, dec0, n, rng, half=900.0):
    xi = rng.uniform(-half, half, n)
    eta = rng.uniform(-half, half, n)
    return xi, eta


def _distort(xi, eta):
    # 2.3" shift, a small rotation/scale and a quadratic term: arcsec.
    s = 900.0
    dxi = 2.3 + 0.4 * (eta / s) + 0.3 * (xi / s) ** 2
    deta = -0.8 + 0.5 * (xi / s) - 0.2 * (xi / s) * (eta / s)
    return xi + dxi, eta + deta


@pytest.mark.parametrize("ra0,dec0", [(132.8, 11.8), (359.95, 20.0), (0.02, -29.0), (10.0, 85.0)])
def test_fit_recovers_a_known_distortion(ra0, dec0):
    rng = np.random.default_rng(4)
    xi, eta = _field(ra0, dec0, 400, rng)
    ref_ra, ref_dec = from_tangent_plane(xi, eta, ra0, dec0)
    dx, dy = _distort(xi, eta)
    noise = 0.08
    dx = dx + rng.normal(0, noise, xi.size)
    dy = dy + rng.normal(0, noise, xi.size)
    # 5% wild outliers (blends, wrong matches).
    bad = rng.random(xi.size) < 0.05
    dx[bad] += rng.uniform(1.5, 3.0, bad.sum())
    ra, dec = from_tangent_plane(dx, dy, ra0, dec0)
    fit = fit_plate(ra, dec, ref_ra, ref_dec, ra0, dec0)
    assert fit.status == "fit" and fit.degree >= 2
    assert fit.raw_median_residual_arcsec > 2.0
    assert fit.median_residual_arcsec < 0.15
    cra, cdec = fit.apply(ra[~bad], dec[~bad])
    cxi, ceta = tangent_plane(cra, cdec, ra0, dec0)
    err = np.hypot(cxi - xi[~bad], ceta - eta[~bad])
    assert np.median(err) < 0.12
    assert cra.dtype == np.float64 and (0 <= cra).all() and (cra < 360).all()


def test_too_few_stars_fall_back_and_say_so():
    ra0, dec0 = 50.0, 10.0
    rng = np.random.default_rng(1)
    xi, eta = _field(ra0, dec0, 8, rng)
    ref = from_tangent_plane(xi, eta, ra0, dec0)
    det = from_tangent_plane(xi + 1.0, eta, ra0, dec0)
    fit = fit_plate(*det, *ref, ra0, dec0)
    assert fit.status == "fallback_shift" and fit.degree == 0
    assert fit.median_residual_arcsec < 0.01
    few = fit_plate(det[0][:2], det[1][:2], *ref, ra0, dec0)
    assert few.status == "fallback_none" and few.degree == -1
    ra2, dec2 = few.apply(det[0][:2], det[1][:2])
    np.testing.assert_allclose(ra2, det[0][:2], atol=1e-12)


def test_tangent_plane_round_trip_across_ra_zero():
    ra = np.array([359.9, 0.1, 0.0])
    dec = np.array([-0.2, 0.3, 0.0])
    xi, eta = tangent_plane(ra, dec, 0.0, 0.0)
    assert xi[0] < 0 < xi[1]
    ra2, dec2 = from_tangent_plane(xi, eta, 0.0, 0.0)
    np.testing.assert_allclose(ra2, ra % 360, atol=1e-10)
    np.testing.assert_allclose(dec2, dec, atol=1e-10)

"""Tests of the synthetic POSS-I E sky (vasco.synthetic).

Small tiles (6-8') keep this file fast; the realism figures on full 30' tiles
are measured by scripts/calibrate_synthetic.py (and the slow test at the end).
"""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

from vasco.config import SyntheticConfig
from vasco.plates.model import PlateSolution, explicit_wcs
from vasco.synthetic import population as pop
from vasco.synthetic import render as rnd
from vasco.synthetic.tile import GAIA_EPOCH, TRUTH_COLUMNS, SyntheticTile, make_synthetic_tile

M67 = (132.825, 11.8)  # b = +32, the open cluster M67 at the centre
FIELD = (140.0, 11.8)  # b ~ +36, no cluster
DENSE = (288.071, 16.542)  # l = 50, b = +3
HIGH_B = (226.583, 36.683)  # l = 60, b = +60
SOUTH_15UM = (220.0, -31.5)  # Dec < -30, a 15-um (1.01"/px) scan
CFG = SyntheticConfig()

_cache: dict = {}


def tile_at(pos, size=8.0, seed=3, cfg=CFG) -> SyntheticTile:
    key = (pos, size, seed, cfg.model_dump_json())
    if key not in _cache:
        _cache[key] = make_synthetic_tile(pos[0], pos[1], size, seed, cfg)
    return _cache[key]


def sep_arcsec(ra1, dec1, ra2, dec2):
    """Angular separation (haversine), arcsec."""
    r1, d1, r2, d2 = (np.radians(np.asarray(v, dtype=np.float64)) for v in (ra1, dec1, ra2, dec2))
    a = np.sin((d2 - d1) / 2) ** 2 + np.cos(d1) * np.cos(d2) * np.sin((r2 - r1) / 2) ** 2
    return np.degrees(2 * np.arcsin(np.sqrt(a))) * 3600.0


# ---------------------------------------------------------------------------
# determinism
# ---------------------------------------------------------------------------


def test_same_inputs_give_identical_tile():
    a = make_synthetic_tile(*M67, 6.0, 11, CFG)
    b = make_synthetic_tile(*M67, 6.0, 11, CFG)
    assert a.image.tobytes() == b.image.tobytes()
    for name in ("gaia", "ps1", "truth"):
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name))
    assert a.header.tostring() == b.header.tostring()


def test_different_seed_gives_different_image():
    a = tile_at(M67, 6.0, seed=11)
    b = tile_at(M67, 6.0, seed=12)
    assert a.image.shape == b.image.shape
    assert not np.array_equal(a.image, b.image)
    assert a.header["SYNSEED"] == 11 and b.header["SYNSEED"] == 12


def test_transient_count_does_not_change_the_stars():
    a = tile_at(M67, 6.0, seed=5)
    b = tile_at(M67, 6.0, seed=5, cfg=SyntheticConfig(n_transients=3))
    sa = a.truth[a.truth.cls == "star"].reset_index(drop=True)
    sb = b.truth[b.truth.cls == "star"].reset_index(drop=True)
    pd.testing.assert_frame_equal(sa.drop(columns="obj_id"), sb.drop(columns="obj_id"))
    assert (b.truth.cls == "transient").sum() == 3


# ---------------------------------------------------------------------------
# header and image
# ---------------------------------------------------------------------------


def test_header_is_poss1e_with_plate_keywords_and_tan_wcs():
    t = tile_at(M67)
    h = t.header
    assert h["SURVEY"].replace(" ", "") == "POSSI-E"
    assert h["BITPIX"] == 16
    assert (h["NAXIS1"], h["NAXIS2"]) == (t.image.shape[1], t.image.shape[0])
    for key in ("REGION", "PLTLABEL", "PLATEID", "DATE-OBS", "CNPIX1", "CNPIX2", "PPO3", "PPO6", "PLTRAH", "PLTDECD"):
        assert key in h, key
    for i in range(1, 14):
        assert f"AMDX{i}" in h and f"AMDY{i}" in h
    assert h["REGION"] == t.plate.region and h["PLTLABEL"] == t.plate.label
    assert h["CTYPE1"] == "RA---TAN" and h["CTYPE2"] == "DEC--TAN"
    assert h["SYNTHET"] is True
    # the explicit TAN and the plate polynomial agree over the cutout (< 0.5")
    sol = PlateSolution.from_header(h)
    w = explicit_wcs(h)
    xs = np.array([1.0, h["NAXIS1"], 0.5 * h["NAXIS1"], 1.0])
    ys = np.array([1.0, h["NAXIS2"], 0.5 * h["NAXIS2"], h["NAXIS2"]])
    ra_p, dec_p = sol.pix_to_sky(xs, ys)
    ra_w, dec_w = w.all_pix2world(xs, ys, 1)
    assert np.max(sep_arcsec(ra_p, dec_p, ra_w, dec_w)) < 0.5


def test_image_dtype_background_and_saturation_levels():
    t = tile_at(FIELD, 10.0, seed=2)
    img = t.image
    assert img.dtype == np.int16 and img.ndim == 2
    med = float(np.median(img))
    assert 3000 <= med <= 4500
    # robust sigma of the sky ~ the real plate's 256 ADU
    lo, hi = np.percentile(img, [25, 50])
    sig_est = (hi - lo) / 0.6745
    assert 180 < sig_est < 340
    # the plateau: bright stars saturate near 13,000-13,400 ADU and never beyond
    assert 12900 <= t.header["SYNSAT"] <= 13400
    assert img.max() <= t.header["SYNSAT"] + 400
    tr = t.truth
    bright = tr[(tr.cls == "star") & (tr.mag < 15.0) & (tr.x > 5) & (tr.x < img.shape[1] - 5)
                & (tr.y > 5) & (tr.y < img.shape[0] - 5)]
    assert len(bright) > 0
    peaks = [img[int(round(y)) - 2 : int(round(y)) + 1, int(round(x)) - 2 : int(round(x)) + 1].max()
             for x, y in zip(bright.x, bright.y)]
    assert np.median(peaks) > 12500


def test_fifteen_micron_plate_and_no_ps1_below_dec_minus_30():
    t = tile_at(SOUTH_15UM, 6.0)
    assert t.plate.pixel_scale_arcsec == pytest.approx(1.01, abs=0.01)
    assert t.image.shape[0] == pytest.approx(6.0 * 60 / 1.01, abs=2)
    assert len(t.ps1) == 0
    assert list(t.ps1.columns) == ["objID", "raMean", "decMean", "rMeanPSFMag", "epochMean"]
    assert len(t.gaia) > 0
    assert not t.truth.in_ps1.any()


# ---------------------------------------------------------------------------
# catalogues
# ---------------------------------------------------------------------------


def test_catalogue_columns_and_dtypes():
    t = tile_at(M67)
    g = t.gaia
    assert list(g.columns) == ["source_id", "ra", "dec", "pmra", "pmdec", "parallax", "phot_g_mean_mag", "ref_epoch"]
    assert g.source_id.dtype == np.int64 and g.source_id.is_unique
    for col in ("ra", "dec", "pmra", "pmdec", "parallax", "phot_g_mean_mag", "ref_epoch"):
        assert g[col].dtype == np.float64, col
    assert (g.ref_epoch == GAIA_EPOCH).all()
    assert g.phot_g_mean_mag.max() <= CFG.gaia_gmax + 0.1
    assert g.pmra.isna().mean() < 0.2  # a few faint two-parameter solutions only
    p = t.ps1
    assert p.objID.dtype == np.int64 and p.objID.is_unique
    for col in ("raMean", "decMean", "rMeanPSFMag", "epochMean"):
        assert p[col].dtype == np.float64, col
    assert p.rMeanPSFMag.max() <= CFG.ps1_rmax
    assert p.epochMean.between(2010, 2014).all()
    tr = t.truth
    assert tuple(tr.columns) == TRUTH_COLUMNS
    assert tr.obj_id.dtype == np.int64 and tr.obj_id.is_unique
    for col in ("x", "y", "ra", "dec", "mag"):
        assert tr[col].dtype == np.float64, col
    assert tr.in_gaia.dtype == bool and tr.in_ps1.dtype == bool and tr.recoverable.dtype == bool
    assert set(tr.cls) <= {"star", "hpm_star", "galaxy", "transient", "defect", "dust", "scratch", "spike", "halo"}
    # catalogued objects in truth point at existing catalogue rows
    assert set(tr.source_id[tr.in_gaia]) <= set(g.source_id)
    assert set(tr.ps1_objid[tr.in_ps1]) <= set(p.objID)


def test_defects_are_in_no_catalogue():
    t = tile_at(M67, 10.0, seed=2)
    tr = t.truth
    d = tr[tr.cls.isin(["defect", "dust", "scratch", "spike", "halo", "transient"])]
    assert len(d) > 0
    assert not d.in_gaia.any() and not d.in_ps1.any()


def test_truth_positions_follow_the_plate_solution():
    t = tile_at(M67)
    sol = PlateSolution.from_header(t.header)
    tr = t.truth[t.truth.cls.isin(["star", "hpm_star", "galaxy", "transient", "defect", "dust"])]
    x, y = sol.sky_to_pix(tr.ra.to_numpy(), tr.dec.to_numpy())
    assert np.max(np.hypot(x - tr.x.to_numpy(), y - tr.y.to_numpy())) < 0.01


def test_plate_positions_are_gaia_positions_moved_back_with_proper_motion():
    t = tile_at(M67, 10.0, seed=2)
    tr = t.truth
    s = tr[tr.in_gaia & tr.cls.isin(["star", "hpm_star"])]
    g = t.gaia.set_index("source_id").loc[s.source_id.to_numpy()]
    ok = g.pmra.notna().to_numpy()
    ra_p, dec_p = pop.propagate(g.ra.to_numpy()[ok], g.dec.to_numpy()[ok], g.pmra.to_numpy()[ok],
                                g.pmdec.to_numpy()[ok], t.plate.epoch - GAIA_EPOCH)
    d = sep_arcsec(ra_p, dec_p, s.ra.to_numpy()[ok], s.dec.to_numpy()[ok])
    assert np.median(d) < 0.1 and np.max(d) < 0.6  # Gaia PM errors (<~1 mas/yr) x 60 yr


def test_hpm_stars_are_in_gaia_with_their_proper_motions():
    cfg = SyntheticConfig(hpm_fraction=0.05)
    t = tile_at(M67, 8.0, seed=4, cfg=cfg)
    tr = t.truth
    h = tr[(tr.cls == "hpm_star") & (tr.gmag <= cfg.gaia_gmax)]
    assert len(h) >= 5
    assert h.in_gaia.all()  # never dropped, even near bright stars
    assert (h.pm_total >= 100).all() and (h.pm_total <= 1000).all()
    g = t.gaia.set_index("source_id").loc[h.source_id.to_numpy()]
    pm = np.hypot(g.pmra.to_numpy(), g.pmdec.to_numpy())
    np.testing.assert_allclose(pm, h.pm_total.to_numpy(), atol=4.0)  # Gaia PM errors
    # they have moved since the plate epoch: 2016 position != plate position
    d = sep_arcsec(g.ra.to_numpy(), g.dec.to_numpy(), h.ra.to_numpy(), h.dec.to_numpy())
    expected = h.pm_total.to_numpy() / 1000.0 * (GAIA_EPOCH - t.plate.epoch)
    np.testing.assert_allclose(d, expected, rtol=0.02)


# ---------------------------------------------------------------------------
# transients
# ---------------------------------------------------------------------------


def test_transients_are_uncatalogued_and_isolated():
    t = tile_at(M67, 10.0, seed=2)
    tr = t.truth
    tt = tr[tr.cls == "transient"]
    assert len(tt) == CFG.n_transients
    assert not tt.in_gaia.any() and not tt.in_ps1.any()
    assert tt.mag.between(CFG.transient_mag_min, CFG.transient_mag_max).all()
    nx, ny = t.image.shape[1], t.image.shape[0]
    assert (tt.x >= 10.5).all() and (tt.x <= nx - 9.5).all() and (tt.y >= 10.5).all() and (tt.y <= ny - 9.5).all()
    clear = CFG.transient_clearance_arcsec
    for cat, rc, dc in ((t.gaia, "ra", "dec"), (t.ps1, "raMean", "decMean")):
        d = sep_arcsec(tt.ra.to_numpy()[:, None], tt.dec.to_numpy()[:, None], cat[rc].to_numpy()[None, :],
                       cat[dc].to_numpy()[None, :])
        assert d.min() >= clear * 0.999
    others = tr[tr.cls.isin(["star", "hpm_star", "galaxy", "defect", "dust"])]
    d = sep_arcsec(tt.ra.to_numpy()[:, None], tt.dec.to_numpy()[:, None], others.ra.to_numpy()[None, :],
                   others.dec.to_numpy()[None, :])
    assert d.min() >= clear * 0.999
    # outside bright-star halos
    for _, h in tr[tr.cls == "halo"].iterrows():
        assert np.min(np.hypot(tt.x - h.x, tt.y - h.y)) > h.extent_px


def test_transient_snr_model_and_recoverable():
    t = tile_at(M67, 10.0, seed=2)
    tt = t.truth[t.truth.cls == "transient"]
    assert tt.snr_model.notna().all()
    # brighter transients have higher predicted SNR
    order = np.argsort(tt.mag.to_numpy())
    snr = tt.snr_model.to_numpy()[order]
    assert np.corrcoef(np.arange(len(snr)), snr)[0, 1] < -0.8
    assert tt.recoverable.any() and not tt.recoverable.all()
    assert (tt.snr_model[tt.recoverable] > 30).all()
    # the faintest injected magnitudes are not recoverable
    assert not tt.recoverable[tt.mag > 20.0].any()


def test_transient_is_rendered_like_a_star():
    t = tile_at(M67, 10.0, seed=2)
    tt = t.truth[(t.truth.cls == "transient") & (t.truth.mag < 17.5)]
    assert len(tt) > 0
    sky = t.header["SYNSKY"]
    for _, r in tt.iterrows():
        i, j = int(round(r.y)) - 1, int(round(r.x)) - 1
        assert t.image[i - 1 : i + 2, j - 1 : j + 2].max() > sky + 3000


# ---------------------------------------------------------------------------
# population
# ---------------------------------------------------------------------------


def test_star_density_is_higher_at_low_latitude():
    dense = tile_at(DENSE, 6.0)
    sparse = tile_at(HIGH_B, 6.0)

    def n_stars(t):
        tr = t.truth
        return int((tr.cls.isin(["star", "hpm_star"]) & (tr.gmag < 20)).sum())

    assert n_stars(dense) > 8 * n_stars(sparse)
    assert n_stars(sparse) > 20


def test_m67_cluster_members_share_its_motion():
    t = tile_at(M67, 8.0)
    g = t.gaia
    near = (np.abs(g.pmra + 10.97) < 0.6) & (np.abs(g.pmdec + 2.94) < 0.6) & (np.abs(g.parallax - 1.13) < 0.2)
    assert near.sum() > 150  # the cluster dominates its own centre
    off = tile_at(FIELD, 8.0)
    og = off.gaia
    assert ((np.abs(og.pmra + 10.97) < 0.6) & (np.abs(og.pmdec + 2.94) < 0.6)).sum() < 10


def test_knee_is_near_the_plateau():
    t = tile_at(FIELD, 10.0, seed=2)
    assert t.header["SYNSKY"] + 0.8 * (t.header["SYNSAT"] - t.header["SYNSKY"]) < t.info["knee_density"] <= t.header["SYNSAT"]


def test_counts_model_latitude_and_bulge():
    edges = np.arange(10.0, 20.01, 0.5)
    n = lambda l, b: star_total(edges, l, b)  # noqa: E731
    assert n(180, 3) > n(180, 30) > n(180, 85)
    assert n(0, 5) > 3 * n(180, 5)


def star_total(edges, l, b):
    return float(pop.star_counts_per_deg2(edges, l, b).sum())


def test_galactic_coordinates():
    l, b = pop.galactic_lb(192.85948, 27.12825)  # north galactic pole
    assert b == pytest.approx(90.0, abs=1e-3)
    l, b = pop.galactic_lb(266.40499, -28.93617)  # galactic centre
    assert l == pytest.approx(0.0, abs=0.01) or l == pytest.approx(360.0, abs=0.01)
    assert b == pytest.approx(0.0, abs=0.01)


def test_tangent_projection_round_trip():
    rng = np.random.default_rng(0)
    xi = rng.uniform(-0.5, 0.5, 100)
    eta = rng.uniform(-0.5, 0.5, 100)
    ra, dec = pop.tangent_to_sky(xi, eta, 359.9, 45.0)
    xi2, eta2 = pop.sky_to_tangent(ra, dec, 359.9, 45.0)
    np.testing.assert_allclose(xi2, xi, atol=1e-10)
    np.testing.assert_allclose(eta2, eta, atol=1e-10)


# ---------------------------------------------------------------------------
# rendering model
# ---------------------------------------------------------------------------


def test_response_curve_inverse_and_knee():
    c = rnd.ResponseCurve(d_fog=1500.0, d_sat=13200.0, gamma=1.5)
    d = np.array([2000.0, 3800.0, 9000.0, 13000.0])
    np.testing.assert_allclose(c.density(c.exposure(d)), d, rtol=1e-9)
    assert c.d_fog < c.knee_density() < c.d_sat


def test_psf_stamps_conserve_flux():
    params = rnd.RenderParams()
    field = rnd.PSFField(nx=101, ny=101, scale_coeffs=(1, 0, 0, 0, 0, 0), e_coeffs1=(0.05, 0, 0),
                         e_coeffs2=(0, 0, 0), plate_xc=0, plate_yc=0, plate_rmax=1e9)
    ctx = rnd.RenderContext(nx=101, ny=101, pixscale=1.7, psf=params.psf, field=field, curve=params.curve,
                            sky_exposure=0.4, noise_sigma=250.0)
    img = rnd.render_point_sources(ctx, np.array([51.3]), np.array([50.8]), np.array([1000.0]))
    halo_rh = params.psf.halo_rh_arcsec / 1.7
    # all but the power-law halo's far tail lands in the stamp
    assert img.sum() == pytest.approx(1000.0, rel=0.03 + 0.0 * halo_rh)
    yy, xx = np.indices(img.shape)
    assert (img * xx).sum() / img.sum() + 1 == pytest.approx(51.3, abs=0.02)
    assert (img * yy).sum() / img.sum() + 1 == pytest.approx(50.8, abs=0.02)


def test_grain_noise_is_unit_variance_and_correlated():
    n = rnd.grain_noise(np.random.default_rng(1), (400, 400), 0.6)
    assert n.std() == pytest.approx(1.0, abs=0.02)
    lag1 = np.mean(n[:, 1:] * n[:, :-1])
    assert 0.3 < lag1 < 0.6


def test_sersic_mixtures_are_normalised():
    for n in (1.0, 4.0):
        w, s = rnd.sersic_mog(n)
        assert w.sum() == pytest.approx(1.0) and (w > 0).all() and (s > 0).all()


# ---------------------------------------------------------------------------
# imperfect header astrometry (distortion field, TAN offset)
# ---------------------------------------------------------------------------

IMPERFECT = SyntheticConfig(distortion_arcsec=1.0, tan_offset_arcsec=2.3)


def _digest(t: SyntheticTile) -> str:
    import hashlib

    h = hashlib.sha256(t.image.tobytes())
    h.update(t.header.tostring().encode())
    for df in (t.truth, t.gaia, t.ps1):
        h.update(pd.util.hash_pandas_object(df).to_numpy().tobytes())
    return h.hexdigest()


def test_zero_astrometry_errors_are_the_default_and_change_nothing():
    assert CFG.distortion_arcsec == 0.0 and CFG.tan_offset_arcsec == 0.0
    plain = tile_at(M67, 6.0, seed=11)
    zeros = tile_at(M67, 6.0, seed=11, cfg=SyntheticConfig(distortion_arcsec=0.0, tan_offset_arcsec=0.0))
    assert _digest(plain) == _digest(zeros)
    for key in ("SYNDIST", "SYNTANOF", "SYNTANPA"):
        assert key not in plain.header
    distorted = tile_at(M67, 6.0, seed=11, cfg=SyntheticConfig(distortion_arcsec=1.0))
    assert distorted.image.tobytes() != plain.image.tobytes()
    # the same sky, only rendered elsewhere: ra/dec (true positions) unchanged for stars
    s0 = plain.truth[plain.truth.cls == "star"]
    s1 = distorted.truth[distorted.truth.cls == "star"]
    common = s0.merge(s1, on=["ra", "dec", "mag"], suffixes=("_0", "_1"))
    assert len(common) > 0.95 * len(s0)
    assert np.hypot(common.x_0 - common.x_1, common.y_0 - common.y_1).max() > 0.1


@pytest.mark.parametrize("pos", [M67, SOUTH_15UM])
def test_distortion_moves_rendered_positions_off_the_header_polynomial(pos):
    from vasco.synthetic.distortion import DistortionField
    from vasco.synthetic.tile import sol_pixscale

    t = tile_at(pos, 8.0, seed=3, cfg=IMPERFECT)
    h = t.header
    sol = PlateSolution.from_header(h)
    nx, ny = h["NAXIS1"], h["NAXIS2"]
    scale = sol_pixscale(sol, nx, ny)
    assert h["SYNDIST"] == 1.0 and t.info["distortion_arcsec"] == 1.0
    field = DistortionField(**t.info["distortion_field"])
    # RMS over the tile is exactly the configured value
    gx, gy = np.meshgrid(np.linspace(0.5, nx + 0.5, 41), np.linspace(0.5, ny + 0.5, 41))
    dx, dy = field.displacement(gx.ravel(), gy.ravel())
    assert np.sqrt(np.mean(dx**2 + dy**2)) * scale == pytest.approx(1.0, rel=1e-9)
    tr = t.truth[t.truth.cls.isin(["star", "hpm_star", "galaxy", "transient", "defect", "dust"])]
    x, y = sol.sky_to_pix(tr.ra.to_numpy(), tr.dec.to_numpy())
    # the truth x/y are the header polynomial's pixels plus the field, exactly
    fx, fy = field.apply(x, y)
    assert np.max(np.hypot(fx - tr.x.to_numpy(), fy - tr.y.to_numpy())) < 1e-6
    # ... i.e. ~1" RMS away from where the header puts them
    stars = tr.cls.isin(["star", "hpm_star", "galaxy"]).to_numpy()
    d = np.hypot(x - tr.x.to_numpy(), y - tr.y.to_numpy())[stars] * scale
    assert stars.sum() > 300
    assert 0.8 < np.sqrt(np.mean(d**2)) < 1.2
    # the field inverts (rendered -> true sky) to numerical precision
    x0, y0 = field.invert(tr.x.to_numpy(), tr.y.to_numpy())
    assert np.max(np.hypot(x0 - x, y0 - y)) < 1e-6


@pytest.mark.parametrize("pos", [M67, SOUTH_15UM, (120.0, 84.0)])
def test_tan_offset_moves_the_explicit_wcs_off_the_polynomial(pos):
    t = tile_at(pos, 8.0, seed=3, cfg=IMPERFECT)
    h = t.header
    sol = PlateSolution.from_header(h)
    xc, yc = 0.5 * (h["NAXIS1"] + 1), 0.5 * (h["NAXIS2"] + 1)
    ra_p, dec_p = sol.pix_to_sky(xc, yc)
    ra_t, dec_t = explicit_wcs(h).all_pix2world(xc, yc, 1)
    assert sep_arcsec(ra_p, dec_p, ra_t, dec_t) == pytest.approx(2.3, abs=0.05)
    assert h["SYNTANOF"] == 2.3 and t.info["tan_offset_arcsec"] == 2.3
    assert 0.0 <= h["SYNTANPA"] < 360.0 and h["SYNTANPA"] == pytest.approx(t.info["tan_offset_pa_deg"], abs=1e-6)
    # the TAN moved toward SYNTANPA (east of north)
    dra = (ra_t - ra_p + 180.0) % 360.0 - 180.0
    pa = np.degrees(np.arctan2(dra * np.cos(np.radians(dec_p)), dec_t - dec_p)) % 360.0
    assert abs((pa - h["SYNTANPA"] + 180.0) % 360.0 - 180.0) < 0.5
    # the polynomial is untouched: the TAN-only change leaves the rendering alone
    only_dist = tile_at(pos, 8.0, seed=3, cfg=SyntheticConfig(distortion_arcsec=1.0))
    assert only_dist.image.tobytes() == t.image.tobytes()
    for i in range(1, 14):
        assert h[f"AMDX{i}"] == only_dist.header[f"AMDX{i}"]


# ---------------------------------------------------------------------------
# end to end with SExtractor (slow)
# ---------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("source-extractor") is None or shutil.which("psfex") is None,
                    reason="SExtractor/PSFEx not installed")
def test_calibration_script_runs(tmp_path):
    import importlib.util
    from pathlib import Path

    from astropy.io import fits

    path = Path(__file__).resolve().parents[1] / "scripts" / "calibrate_synthetic.py"
    spec = importlib.util.spec_from_file_location("calibrate_synthetic", path)
    cal = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cal)
    t = tile_at(M67, 12.0, seed=1)
    img = tmp_path / "t.fits"
    fits.PrimaryHDU(t.image, header=t.header).writeto(img)
    cat, info = cal.extract(img, tmp_path, spread=False)
    assert len(cat) > 50
    assert 200 < info["sex_rms"] < 330
    text = cal.summarise(cat.assign(SPREAD_MODEL=np.nan), t.truth, t.image, tmp_path, info)
    assert "transients" in text

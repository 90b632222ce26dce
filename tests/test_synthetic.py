"""Tests of the synthetic POSS-I E sky (vasco.synthetic).

Small tiles (6-10') keep this file fast, with raised densities of the rare
classes where a test needs many of them; the overlap tests use 30' tiles.
The realism figures on full 30' tiles are measured by
scripts/calibrate_synthetic.py (and the slow test at the end).
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
from vasco.synthetic.tile import GAIA_EPOCH, LIST_NAMES, TRUTH_COLUMNS, SyntheticTile, make_synthetic_tile

M67 = (132.825, 11.8)  # b = +32, the open cluster M67 at the centre
FIELD = (140.0, 11.8)  # b ~ +36, no cluster
DENSE = (288.071, 16.542)  # l = 50, b = +3
HIGH_B = (226.583, 36.683)  # l = 60, b = +60
SOUTH_15UM = (220.0, -31.5)  # Dec < -30, a 15-um (1.01"/px) scan
CFG = SyntheticConfig()
#: Many injected objects on small tiles (transients 2,000 per deg^2: ~55 on a 10' tile).
RICH = SyntheticConfig(
    transients_per_deg2=2000.0,
    n_asteroids_per_deg2=600.0,
    n_ir_sources_per_deg2=600.0,
    n_variables_per_deg2=600.0,
    vsx_star_fraction=0.05,
    hpm_fraction=0.05,
)
POINT_CLASSES = ["star", "hpm_star", "galaxy", "transient", "asteroid", "ir_source", "variable"]
INJECTED = ["transient", "asteroid", "ir_source", "variable"]

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
    for name in ("gaia", "ps1", "truth", *LIST_NAMES):
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name))
    assert a.header.tostring() == b.header.tostring()
    # a fresh process state (no cached cells) gives the same answer too
    from vasco.synthetic import sky

    sky._cell_lb.cache_clear()
    sky._boost.cache_clear()
    c = make_synthetic_tile(*M67, 6.0, 11, CFG)
    assert _digest(c) == _digest(a)


def test_different_seed_gives_different_image():
    a = tile_at(M67, 6.0, seed=11)
    b = tile_at(M67, 6.0, seed=12)
    assert a.image.shape == b.image.shape
    assert not np.array_equal(a.image, b.image)
    assert a.header["SYNSEED"] == 11 and b.header["SYNSEED"] == 12


def test_transient_density_does_not_change_the_stars():
    a = tile_at(M67, 10.0, seed=5, cfg=RICH)
    b = tile_at(M67, 10.0, seed=5, cfg=RICH.model_copy(update={"transients_per_deg2": 500.0}))
    sa = a.truth[a.truth.cls == "star"].reset_index(drop=True)
    sb = b.truth[b.truth.cls == "star"].reset_index(drop=True)
    pd.testing.assert_frame_equal(sa, sb)
    pd.testing.assert_frame_equal(a.gaia, b.gaia)
    na, nb = ((t.truth.cls == "transient").sum() for t in (a, b))
    assert na > 2 * nb > 0
    # transients have the top priority: the other injected classes never move them, and
    # IR sources (next in priority) do not move for fewer transients either
    c = tile_at(M67, 10.0, seed=5, cfg=RICH.model_copy(update={"n_ir_sources_per_deg2": 0.0}))
    assert set(c.truth.obj_id[c.truth.cls == "transient"]) == set(a.truth.obj_id[a.truth.cls == "transient"])


def test_transient_density_follows_the_configuration():
    # n_transients per 0.25 deg^2 (a 30' tile) unless transients_per_deg2 is set
    from vasco.synthetic.sky import injected_density_per_deg2

    assert injected_density_per_deg2(CFG)["transient"] == 4.0 * CFG.n_transients
    assert injected_density_per_deg2(RICH)["transient"] == 2000.0
    t = tile_at(FIELD, 30.0, seed=1)
    n = int((t.truth.cls == "transient").sum())
    assert 0.6 * CFG.n_transients < n < 1.4 * CFG.n_transients
    for cls, dens in (
        ("asteroid", CFG.n_asteroids_per_deg2),
        ("ir_source", CFG.n_ir_sources_per_deg2),
        ("variable", CFG.n_variables_per_deg2),
    ):
        assert (t.truth.cls == cls).sum() <= 4 * dens * 0.25 + 5


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
    bright = tr[
        (tr.cls == "star")
        & (tr.mag < 15.0)
        & (tr.x > 5)
        & (tr.x < img.shape[1] - 5)
        & (tr.y > 5)
        & (tr.y < img.shape[0] - 5)
    ]
    assert len(bright) > 0
    peaks = [
        img[int(round(y)) - 2 : int(round(y)) + 1, int(round(x)) - 2 : int(round(x)) + 1].max()
        for x, y in zip(bright.x, bright.y)
    ]
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
    for col in (
        "in_gaia",
        "in_ps1",
        "recoverable",
        "gaia_no_pm",
        "in_usnob",
        "in_allwise",
        "in_vsx",
        "in_skybot",
        "in_scos",
    ):
        assert tr[col].dtype == bool, col
    for col in ("obj_id", "parent_id", "source_id", "ps1_objid"):
        assert tr[col].dtype == np.int64, col
    assert set(tr.cls) <= {
        "star",
        "hpm_star",
        "galaxy",
        "transient",
        "defect",
        "dust",
        "scratch",
        "spike",
        "halo",
        "asteroid",
        "ir_source",
        "variable",
    }
    # catalogued objects in truth point at existing catalogue rows
    assert set(tr.source_id[tr.in_gaia]) <= set(g.source_id)
    assert set(tr.ps1_objid[tr.in_ps1]) <= set(p.objID)


def test_defects_are_in_no_catalogue():
    t = tile_at(M67, 10.0, seed=2)
    tr = t.truth
    d = tr[tr.cls.isin(["defect", "dust", "scratch", "spike", "halo", "transient"])]
    assert len(d) > 0
    assert not d.in_gaia.any() and not d.in_ps1.any()
    art = tr[tr.cls.isin(["defect", "dust", "scratch", "spike", "halo"])]
    flags = ["in_usnob", "in_allwise", "in_vsx", "in_skybot", "in_scos", "gaia_no_pm"]
    assert not art[flags].to_numpy().any()


def test_truth_positions_follow_the_plate_solution():
    t = tile_at(M67)
    sol = PlateSolution.from_header(t.header)
    tr = t.truth[t.truth.cls.isin([*POINT_CLASSES, "defect", "dust"])]
    x, y = sol.sky_to_pix(tr.ra.to_numpy(), tr.dec.to_numpy())
    assert np.max(np.hypot(x - tr.x.to_numpy(), y - tr.y.to_numpy())) < 0.01


def test_plate_positions_are_gaia_positions_moved_back_with_proper_motion():
    t = tile_at(M67, 10.0, seed=2)
    tr = t.truth
    s = tr[tr.in_gaia & tr.cls.isin(["star", "hpm_star"])]
    g = t.gaia.set_index("source_id").loc[s.source_id.to_numpy()]
    ok = g.pmra.notna().to_numpy()
    ra_p, dec_p = pop.propagate(
        g.ra.to_numpy()[ok],
        g.dec.to_numpy()[ok],
        g.pmra.to_numpy()[ok],
        g.pmdec.to_numpy()[ok],
        t.plate.epoch - GAIA_EPOCH,
    )
    d = sep_arcsec(ra_p, dec_p, s.ra.to_numpy()[ok], s.dec.to_numpy()[ok])
    assert np.median(d) < 0.1 and np.max(d) < 0.6  # Gaia PM errors (<~1 mas/yr) x 60 yr


def test_hpm_stars_are_in_gaia_with_their_proper_motions():
    cfg = SyntheticConfig(hpm_fraction=0.05)
    t = tile_at(M67, 8.0, seed=4, cfg=cfg)
    tr = t.truth
    allh = tr[tr.cls == "hpm_star"]
    assert (allh.gmag <= 19.0).all()  # bright enough to be measured on the plate
    h = allh[~allh.gaia_no_pm]
    assert len(h) >= 5
    assert allh.in_gaia.all()  # never dropped, even near bright stars
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
    t = tile_at(M67, 10.0, seed=2, cfg=RICH)
    tr = t.truth
    tt = tr[tr.cls.isin(INJECTED)]
    assert (tt.cls == "transient").sum() > 25
    assert not tt.in_gaia.any() and not tt.in_ps1.any()
    m = tt[tt.cls == "transient"].mag
    assert m.between(CFG.transient_mag_min, CFG.transient_mag_max).all()
    clear = RICH.transient_clearance_arcsec
    for cat, rc, dc in ((t.gaia, "ra", "dec"), (t.ps1, "raMean", "decMean")):
        d = sep_arcsec(
            tt.ra.to_numpy()[:, None],
            tt.dec.to_numpy()[:, None],
            cat[rc].to_numpy()[None, :],
            cat[dc].to_numpy()[None, :],
        )
        assert d.min() >= clear * 0.999
    # from every star (at the plate epoch), galaxy and other injected object; defects belong to
    # the plate, not the sky, and are not avoided
    others = tr[tr.cls.isin(["star", "hpm_star", "galaxy"])]
    d = sep_arcsec(
        tt.ra.to_numpy()[:, None],
        tt.dec.to_numpy()[:, None],
        others.ra.to_numpy()[None, :],
        others.dec.to_numpy()[None, :],
    )
    assert d.min() >= clear * 0.999
    d = sep_arcsec(
        tt.ra.to_numpy()[:, None], tt.dec.to_numpy()[:, None], tt.ra.to_numpy()[None, :], tt.dec.to_numpy()[None, :]
    )
    assert np.sort(d, axis=1)[:, 1].min() >= clear * 0.999
    # outside bright-star halos (as rendered on this plate) and off their spikes
    for _, h in tr[tr.cls == "halo"].iterrows():
        assert np.min(np.hypot(tt.x - h.x, tt.y - h.y)) > h.extent_px
    for _, sp in tr[tr.cls == "spike"].iterrows():
        along = (tt.x - sp.x) if sp.angle_deg in (0.0, 180.0) else (tt.y - sp.y)
        across = (tt.y - sp.y) if sp.angle_deg in (0.0, 180.0) else (tt.x - sp.x)
        on_arm = (np.abs(along) < sp.extent_px) & (np.abs(across) < 2.0)
        assert not on_arm.any()


def test_transient_snr_model_and_recoverable():
    t = tile_at(M67, 10.0, seed=2, cfg=RICH)
    tt = t.truth[t.truth.cls == "transient"]
    assert tt.snr_model.notna().all()
    # brighter transients have higher predicted SNR
    order = np.argsort(tt.mag.to_numpy())
    snr = tt.snr_model.to_numpy()[order]
    assert np.corrcoef(np.arange(len(snr)), snr)[0, 1] < -0.8
    assert tt.recoverable.any() and not tt.recoverable.all()
    assert (tt.snr_model[tt.recoverable] > 30).all()
    # the faintest injected magnitudes are not recoverable, nor is anything near the edge
    assert not tt.recoverable[tt.mag > 20.0].any()
    nx, ny = t.image.shape[1], t.image.shape[0]
    edge = (tt.x < 10.5) | (tt.x > nx - 9.5) | (tt.y < 10.5) | (tt.y > ny - 9.5)
    assert not tt.recoverable[edge].any()
    # the other injected point classes get the same prediction
    other = t.truth[t.truth.cls.isin(["asteroid", "ir_source", "variable"])]
    assert len(other) > 10 and other.snr_model.notna().all() and other.recoverable.any()


def test_transient_is_rendered_like_a_star():
    t = tile_at(M67, 10.0, seed=2, cfg=RICH)
    ny, nx = t.image.shape
    tt = t.truth[
        t.truth.cls.isin(INJECTED) & (t.truth.mag < 17.5) & t.truth.x.between(3, nx - 3) & t.truth.y.between(3, ny - 3)
    ]
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
    assert (
        t.header["SYNSKY"] + 0.8 * (t.header["SYNSAT"] - t.header["SYNSKY"])
        < t.info["knee_density"]
        <= t.header["SYNSAT"]
    )


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
    field = rnd.PSFField(
        nx=101,
        ny=101,
        scale_coeffs=(1, 0, 0, 0, 0, 0),
        e_coeffs1=(0.05, 0, 0),
        e_coeffs2=(0, 0, 0),
        plate_xc=0,
        plate_yc=0,
        plate_rmax=1e9,
    )
    ctx = rnd.RenderContext(
        nx=101,
        ny=101,
        pixscale=1.7,
        psf=params.psf,
        field=field,
        curve=params.curve,
        sky_exposure=0.4,
        noise_sigma=250.0,
    )
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
# the global sky: cells, per-object numbers, overlapping tiles
# ---------------------------------------------------------------------------


def test_cell_sampling_is_uniform_inside_its_cell():
    from vasco.sources.healpix import ang2pix_nest, pix2ang_nest
    from vasco.synthetic.cells import SKY_ORDER, cell_sample

    rng = np.random.default_rng(7)
    npix = 12 * 4**SKY_ORDER
    # random cells, the first and last of each base face (poles, face corners), and the poles' neighbours
    pix = np.unique(
        np.concatenate(
            [rng.integers(0, npix, 300), np.arange(12) * 4**SKY_ORDER, (np.arange(12) + 1) * 4**SKY_ORDER - 1]
        )
    )
    u = rng.random((pix.size, 400))
    v = rng.random((pix.size, 400))
    ra, dec = cell_sample(np.repeat(pix, 400), u.ravel(), v.ravel())
    assert ra.dtype == np.float64 and np.all((ra >= 0) & (ra < 360)) and np.all(np.abs(dec) <= 90)
    np.testing.assert_array_equal(ang2pix_nest(SKY_ORDER, ra, dec), np.repeat(pix, 400))
    # the centre of the unit square is the HEALPix pixel centre
    rc, dc = cell_sample(pix, 0.5, 0.5)
    r0, d0 = pix2ang_nest(SKY_ORDER, pix)
    assert np.max(sep_arcsec(rc, dc, r0, d0)) < 1e-6
    # equal area: the four children (next order) of a cell receive a quarter each
    big = rng.random((2, 40000))
    for p in (0, 12345, npix - 1):
        child = ang2pix_nest(SKY_ORDER + 1, *cell_sample(np.full(40000, p), big[0], big[1])) - 4 * p
        counts = np.bincount(child, minlength=4)
        assert counts.size == 4 and np.all(np.abs(counts - 10000) < 5 * 100), counts


def test_cells_touching_a_tile_cover_it():
    from vasco.sources.healpix import ang2pix_nest
    from vasco.synthetic.cells import SKY_ORDER, TileRegion

    rng = np.random.default_rng(3)
    for ra0, dec0 in ((132.8, 11.8), (0.1, -29.0), (45.0, 41.8), (120.0, 89.3), (200.0, 0.0)):
        reg = TileRegion(ra0, dec0, 0.26, 0.24)
        cells = reg.cells(90.0)
        xi = rng.uniform(-0.26 - 0.025, 0.26 + 0.025, 20000)
        eta = rng.uniform(-0.24 - 0.025, 0.24 + 0.025, 20000)
        ra, dec = pop.tangent_to_sky(xi, eta, ra0, dec0)
        assert set(ang2pix_nest(SKY_ORDER, ra, dec)) <= set(cells)
        assert np.all(np.diff(cells) > 0)


def test_per_object_random_numbers_depend_on_the_object_only():
    from vasco.synthetic.cells import object_normals, object_uniforms

    ids = np.arange(1, 200001, dtype=np.int64) * 977
    u = object_uniforms(1, ids, 5, 3)
    assert u.shape == (ids.size, 3) and np.all((u > 0) & (u < 1))
    assert abs(u.mean() - 0.5) < 0.005 and abs(np.corrcoef(u[:, 0], u[:, 1])[0, 1]) < 0.01
    # any subset, in any order, gets the same numbers
    sub = ids[::-7]
    np.testing.assert_array_equal(object_uniforms(1, sub, 5, 3), u[::-7])
    assert not np.array_equal(object_uniforms(2, ids[:100], 5, 1), u[:100, :1])
    assert not np.array_equal(object_uniforms(1, ids[:100], 6, 1), u[:100, :1])
    z = object_normals(1, ids, 9, 1)[:, 0]
    assert abs(z.mean()) < 0.01 and abs(z.std() - 1.0) < 0.01


def _shift_east(pos, arcmin):
    return (pos[0] + arcmin / 60.0 / np.cos(np.radians(pos[1])), pos[1])


#: Tiles 20' apart: on the same plate (XE486), and on two neighbouring plates (XE485 / XE486).
SAME_PLATE = (M67, _shift_east(M67, 20.0))
TWO_PLATES = ((130.75, 11.8), _shift_east((130.75, 11.8), 20.0))


def _inside(t, ra, dec, pad_px=3.0):
    sol = PlateSolution.from_header(t.header)
    x, y = sol.sky_to_pix(np.asarray(ra), np.asarray(dec))
    ny, nx = t.image.shape
    return (x > 0.5 + pad_px) & (x < nx + 0.5 - pad_px) & (y > 0.5 + pad_px) & (y < ny + 0.5 - pad_px)


@pytest.mark.parametrize("pair", [SAME_PLATE, TWO_PLATES], ids=["same_plate", "two_plates"])
def test_overlapping_tiles_show_the_same_sky(pair):
    a, b = (tile_at(p, 30.0, seed=1) for p in pair)
    same_plate = a.plate.region == b.plate.region
    assert same_plate == (pair is SAME_PLATE)
    pa = a.truth[a.truth.cls.isin(POINT_CLASSES)].set_index("obj_id")
    pb = b.truth[b.truth.cls.isin(POINT_CLASSES)].set_index("obj_id")
    # everything of one tile that lies well inside the other is there, with the same id
    for p, q, t in ((pa, pb, b), (pb, pa, a)):
        inside = p[_inside(t, p.ra.to_numpy(), p.dec.to_numpy())]
        missing = inside.index.difference(q.index)
        assert len(inside) > 1000
        if same_plate:
            assert len(missing) == 0
        else:  # asteroids belong to the night the plate was taken
            assert set(inside.loc[missing, "cls"]) <= {"asteroid"}
            assert not p.loc[p.cls == "asteroid"].index.isin(q.index).any()
    common = pa.index.intersection(pb.index)
    x, y = pa.loc[common], pb.loc[common]
    assert set(x.cls) >= {"star", "galaxy", "transient"}
    pd.testing.assert_series_equal(x.cls, y.cls)
    for col in (
        "mag",
        "gmag",
        "pm_total",
        "in_gaia",
        "in_ps1",
        "source_id",
        "ps1_objid",
        "gaia_no_pm",
        "in_usnob",
        "in_allwise",
        "in_vsx",
        "in_skybot",
    ):
        pd.testing.assert_series_equal(x[col], y[col], check_names=False)
    # positions: identical on the same plate; on another plate (another epoch) only moved by the PM
    dpos = sep_arcsec(x.ra, x.dec, y.ra, y.dec)
    if same_plate:
        assert np.max(np.abs(x.ra.to_numpy() - y.ra.to_numpy())) < 1e-9
        assert np.max(np.abs(x.dec.to_numpy() - y.dec.to_numpy())) < 1e-9
        pd.testing.assert_series_equal(x.in_scos, y.in_scos, check_names=False)
    else:
        dt = abs(a.plate.epoch - b.plate.epoch)
        assert np.all(dpos <= x.pm_total.to_numpy() / 1000.0 * dt + 1e-6)
    # the same catalogue rows
    for name, key in (
        ("gaia", "source_id"),
        ("ps1", "objID"),
        ("usnob", "USNO-B1.0"),
        ("allwise", "AllWISE"),
        ("vsx", "Name"),
        ("skybot", "Name"),
        ("scos", "objID"),
    ):
        la, lb = getattr(a, name).set_index(key), getattr(b, name).set_index(key)
        both = la.index.intersection(lb.index)
        if name == "skybot" and not same_plate:
            assert len(both) == 0
            continue
        if name == "scos" and not same_plate:  # the plate's own digitisation, at its epoch
            assert len(both) > 1000
            continue
        assert len(both) > (0 if name in ("vsx", "skybot") else 100), name
        pd.testing.assert_frame_equal(la.loc[both], lb.loc[both], obj=name)
    # Gaia rows of the objects in the overlap: the same source, the same row
    sid = x.source_id[x.in_gaia].to_numpy()
    pd.testing.assert_frame_equal(a.gaia.set_index("source_id").loc[sid], b.gaia.set_index("source_id").loc[sid])


@pytest.mark.parametrize("pair", [SAME_PLATE, TWO_PLATES], ids=["same_plate", "two_plates"])
def test_overlap_renders_where_each_header_says(pair):
    """A star in the overlap sits, in each image, where that image's header puts its sky position."""
    tiles = [tile_at(p, 30.0, seed=1) for p in pair]
    ids = set.intersection(
        *(set(t.truth.obj_id[(t.truth.cls == "star") & t.truth.mag.between(15.5, 17.0)]) for t in tiles)
    )
    assert len(ids) > 30
    for t in tiles:
        tr = t.truth.set_index("obj_id")
        sol = PlateSolution.from_header(t.header)
        star = tr.loc[sorted(ids)]
        x, y = sol.sky_to_pix(star.ra.to_numpy(), star.dec.to_numpy())
        np.testing.assert_allclose(x, star.x.to_numpy(), atol=1e-6)
        np.testing.assert_allclose(y, star.y.to_numpy(), atol=1e-6)
        # the light is there: the intensity-weighted centroid of a 7x7 box about the header position
        pts = tr[tr.cls.isin(POINT_CLASSES)]
        img = t.image.astype(np.float64) - t.header["SYNSKY"]
        offs = []
        for xi, yi in zip(x, y):
            near = np.hypot(pts.x - xi, pts.y - yi)
            if np.sort(near.to_numpy())[1] < 8.0:  # a neighbour would pull the centroid
                continue
            i0, j0 = int(round(yi)) - 1, int(round(xi)) - 1
            box = np.clip(img[i0 - 3 : i0 + 4, j0 - 3 : j0 + 4], 0.0, None)
            if box.shape != (7, 7):
                continue
            yy, xx = np.mgrid[-3:4, -3:4]
            cx = (box * xx).sum() / box.sum() + j0 + 1
            cy = (box * yy).sum() / box.sum() + i0 + 1
            offs.append(np.hypot(cx - xi, cy - yi))
        assert len(offs) > 20 and np.median(offs) < 0.25


def test_plate_defects_belong_to_the_plate():
    a, b = (tile_at(p, 30.0, seed=1) for p in SAME_PLATE)
    c, d = (tile_at(p, 30.0, seed=1) for p in TWO_PLATES)
    cls = ["defect", "dust", "scratch"]

    def plate_xy(t):
        r = t.truth[t.truth.cls.isin(cls)].set_index("obj_id")
        return r.assign(xp=r.x + t.header["CNPIX1"], yp=r.y + t.header["CNPIX2"])

    da, db = plate_xy(a), plate_xy(b)
    both = da.index.intersection(db.index)
    assert len(both) > 20
    # same plate: the same defects, at the same place on the plate, where the cutouts overlap
    np.testing.assert_allclose(
        da.loc[both, ["xp", "yp", "extent_px"]], db.loc[both, ["xp", "yp", "extent_px"]], atol=1e-9
    )
    spots = da.loc[both][da.loc[both].cls == "defect"]
    spots = spots[_inside(a, spots.ra, spots.dec, 6) & _inside(b, spots.ra, spots.dec, 6)]
    assert len(spots) > 10
    for _, r in spots.iterrows():  # the same pixels, up to the grain noise of each scan
        pa = a.image[int(round(r.yp - a.header["CNPIX2"])) - 1, int(round(r.xp - a.header["CNPIX1"])) - 1]
        pb = b.image[int(round(r.yp - b.header["CNPIX2"])) - 1, int(round(r.xp - b.header["CNPIX1"])) - 1]
        assert (pa - a.header["SYNSKY"]) * (pb - b.header["SYNSKY"]) > 0 or abs(int(pa) - int(pb)) < 1500
    # ... and none of them on another plate
    dc, dd = plate_xy(c), plate_xy(d)
    assert len(dc) > 20 and len(dd) > 20 and len(dc.index.intersection(dd.index)) == 0


# ---------------------------------------------------------------------------
# the later vetoes' lists and the classes that give them work
# ---------------------------------------------------------------------------

LIST_COLUMNS = {
    "usnob": {
        "USNO-B1.0": object,
        "RAJ2000": np.float64,
        "DEJ2000": np.float64,
        "R1mag": np.float64,
        "R2mag": np.float64,
        "B1mag": np.float64,
        "B2mag": np.float64,
        "pmRA": np.float64,
        "pmDE": np.float64,
    },
    "allwise": {
        "AllWISE": object,
        "RAJ2000": np.float64,
        "DEJ2000": np.float64,
        "W1mag": np.float64,
        "W2mag": np.float64,
        "ccf": object,
        "qph": object,
    },
    "vsx": {
        "Name": object,
        "RAJ2000": np.float64,
        "DEJ2000": np.float64,
        "Type": object,
        "max": np.float64,
        "min": np.float64,
    },
    "skybot": {
        "Num": "Int64",
        "Name": object,
        "ra": np.float64,
        "dec": np.float64,
        "Class": object,
        "Mv": np.float64,
        "ErrPos": np.float64,
        "dRAcosDec": np.float64,
        "dDEC": np.float64,
        "epoch_jd": np.float64,
    },
    "scos": {"objID": np.int64, "ra": np.float64, "dec": np.float64, "sCorMagR1": np.float64, "objIDR1": np.int64},
}


@pytest.mark.parametrize("pos", [M67, SOUTH_15UM])
def test_veto_lists_columns_and_dtypes(pos):
    t = tile_at(pos, 10.0, seed=2, cfg=RICH)
    for name, cols in LIST_COLUMNS.items():
        df = getattr(t, name)
        assert list(df.columns) == list(cols), name
        for col, dt in cols.items():
            assert df[col].dtype == dt, (name, col, df[col].dtype)
        assert len(df) > 0, name
        key = next(iter(cols))
        if name != "skybot":
            assert df[key].is_unique, name
        assert df[key].is_monotonic_increasing or name == "skybot"
    assert t.usnob["USNO-B1.0"].str.fullmatch(r"\d{4}-\d{7}").all()
    assert t.allwise["AllWISE"].str.fullmatch(r"J\d{6}\.\d{2}[+-]\d{6}\.\d").all()
    assert t.skybot["Name"].is_unique
    # an empty tile-less list has the same schema
    from vasco.synthetic.archives import empty_list

    for name in LIST_COLUMNS:
        e = empty_list(name)
        assert len(e) == 0 and list(e.columns) == list(getattr(t, name).columns)
        assert list(e.dtypes) == list(getattr(t, name).dtypes)


def test_usnob_lists_every_bright_star_around_the_tile():
    t = tile_at(M67, 10.0, seed=2)
    u = t.usnob
    zone = np.floor((u.DEJ2000 + 90.0) * 10.0).astype(int)
    assert (u["USNO-B1.0"].str[:4].astype(int) == zone).all()
    # numbers grow with RA within a zone and slice
    num = u["USNO-B1.0"].str[5:].astype(int)
    for _, g in u.assign(num=num, zone=zone).groupby(["zone", num // 1388]):
        assert g.sort_values("RAJ2000").num.is_monotonic_increasing
    # every star with R <= 16 on the tile is listed (J2000 position, R1mag ~ R)
    tr = t.truth
    bright = tr[tr.cls.isin(["star", "hpm_star"]) & (tr.mag <= 16.0)]
    assert len(bright) > 20 and bright.in_usnob.all()
    assert not tr.in_usnob[tr.cls.isin(["star", "hpm_star"]) & (tr.mag > 16.0)].any()
    d = sep_arcsec(
        bright.ra.to_numpy()[:, None],
        bright.dec.to_numpy()[:, None],
        u.RAJ2000.to_numpy()[None, :],
        u.DEJ2000.to_numpy()[None, :],
    )
    j = d.argmin(axis=1)
    assert np.all(d.min(axis=1) < 0.5 + bright.pm_total.to_numpy() / 1000.0 * (2000.0 - t.plate.epoch))
    assert np.median(np.abs(u.R1mag.to_numpy()[j] - bright.mag.to_numpy())) < 0.3
    # ... and the bright stars off the tile whose halos and spikes reach in (tile + 300")
    nx = t.image.shape[1]
    scale = t.info["pixscale"]
    sol = PlateSolution.from_header(t.header)
    x, y = sol.sky_to_pix(u.RAJ2000.to_numpy(), u.DEJ2000.to_numpy())
    outside = (x < 0.5) | (x > nx + 0.5) | (y < 0.5) | (y > nx + 0.5)
    assert outside.sum() > 0.5 * (~outside).sum()
    reach = np.maximum(np.maximum(0.5 - x, x - nx - 0.5), np.maximum(0.5 - y, y - nx - 0.5)) * scale
    assert reach.max() < 300.0 + 20.0
    assert u.R2mag.isna().any() and u.R1mag.notna().all() and u.R1mag.max() < 17.5


def test_new_classes_are_in_exactly_their_lists():
    t = tile_at(M67, 10.0, seed=2, cfg=RICH)
    tr = t.truth
    expected = {  # class -> the lists it must be in (besides SuperCOSMOS, when bright enough)
        "transient": set(),
        "asteroid": {"in_skybot"},
        "ir_source": {"in_allwise"},
        "variable": {"in_vsx"},
    }
    flags = ["in_gaia", "in_ps1", "in_usnob", "in_allwise", "in_vsx", "in_skybot"]
    for cls, lists in expected.items():
        rows = tr[tr.cls == cls]
        assert len(rows) >= 5, cls
        for f in flags:
            assert rows[f].all() if f in lists else not rows[f].any(), (cls, f)
        assert rows.in_scos[rows.mag < 19.5].mean() > 0.9 and not rows.in_scos[rows.mag > 21.0].any()
        # not in Gaia (moved to the plate epoch) or PS1 within 5", found in its own list
        g = t.gaia
        gra, gdec = pop.propagate(
            g.ra.to_numpy(), g.dec.to_numpy(), g.pmra.to_numpy(), g.pmdec.to_numpy(), t.plate.epoch - GAIA_EPOCH
        )
        for cra, cdec in (
            (gra, gdec),
            (g.ra.to_numpy(), g.dec.to_numpy()),
            (t.ps1.raMean.to_numpy(), t.ps1.decMean.to_numpy()),
        ):
            d = sep_arcsec(rows.ra.to_numpy()[:, None], rows.dec.to_numpy()[:, None], cra[None, :], cdec[None, :])
            assert d.min() > 5.0, cls
        for f, (name, rc, dc, tol) in {
            "in_skybot": ("skybot", "ra", "dec", 10.0),
            "in_allwise": ("allwise", "RAJ2000", "DEJ2000", 1.5),
            "in_vsx": ("vsx", "RAJ2000", "DEJ2000", 1.5),
        }.items():
            lst = getattr(t, name)
            d = sep_arcsec(
                rows.ra.to_numpy()[:, None],
                rows.dec.to_numpy()[:, None],
                lst[rc].to_numpy()[None, :],
                lst[dc].to_numpy()[None, :],
            ).min(axis=1)
            assert (d < tol).all() if f in lists else (d > 5.0).all(), (cls, name)


def test_ir_sources_variables_and_asteroids_look_right():
    t = tile_at(M67, 10.0, seed=2, cfg=RICH)
    tr = t.truth
    ir = tr[tr.cls == "ir_source"]
    assert ir.mag.between(17.0, 20.0).all()
    w = t.allwise
    match = sep_arcsec(
        ir.ra.to_numpy()[:, None],
        ir.dec.to_numpy()[:, None],
        w.RAJ2000.to_numpy()[None, :],
        w.DEJ2000.to_numpy()[None, :],
    ).argmin(axis=1)
    r_w1 = ir.mag.to_numpy() - w.W1mag.to_numpy()[match]
    assert np.all(r_w1 > 2.7)  # very red
    assert (w.W1mag < 16.6).all() and (w.ccf == "0000").all() and w.qph.str.fullmatch(r"[ABC]{2}UU").all()
    # stars in AllWISE: those with W1 = R - 1.5 - colour term < 16.5
    st = tr[tr.cls.isin(["star", "hpm_star"])]
    assert st.in_allwise.any() and not st.in_allwise.all()
    assert st.mag[st.in_allwise].max() < 19.5 and st.mag[~st.in_allwise].min() > 16.0
    assert st.in_allwise[st.mag < 16.0].all() and not st.in_allwise[st.mag > 19.5].any()
    # variables: bright on the plate, below the Gaia/PS1 limits today
    v = tr[tr.cls == "variable"]
    assert v.mag.between(15.5, 19.0).all()
    vsx = t.vsx
    names = vsx.Name.str.fullmatch(r"SynV J\d{6}\.\d[+-]\d{6}").all()
    assert names and (vsx.Type.str.len() > 0).all() and (vsx["max"] < vsx["min"]).all()
    faint = vsx[vsx["min"] > 21.4]
    assert len(faint) >= len(v)
    # ordinary stars flagged variable are in Gaia and in the VSX list
    flagged = tr[tr.in_vsx & tr.cls.isin(["star", "hpm_star"])]
    assert len(flagged) > 0 and flagged.in_gaia.mean() > 0.9 and (flagged.mag <= 17.0).all()
    # asteroids: SkyBoT at mid-exposure of the plate's date (start + EXPOSURE/2), position errors 0.5-3"
    a = tr[tr.cls == "asteroid"]
    sb = t.skybot
    half_day = float(t.plate.header()["EXPOSURE"]) / 2.0 / 1440.0
    np.testing.assert_allclose(sb.epoch_jd, 2451545.0 + (t.plate.epoch - 2000.0) * 365.25 + half_day, rtol=0, atol=1e-6)
    assert sb.attrs["epoch_jd"] == pytest.approx(sb.epoch_jd.iloc[0])
    assert sb.ErrPos.between(0.5, 3.0).all()
    d = sep_arcsec(
        a.ra.to_numpy()[:, None], a.dec.to_numpy()[:, None], sb.ra.to_numpy()[None, :], sb.dec.to_numpy()[None, :]
    )
    err = sb.ErrPos.to_numpy()[d.argmin(axis=1)]
    assert np.all(d.min(axis=1) < 4.0 * err)
    assert (sb.Mv - 0.45).between(16.4, 22.6).all() and (sb.Mv - 0.45 > 20.5).any()  # some too faint to see
    assert sb.Num.isna().any() and sb.Num.notna().any() and sb.Name.str.startswith(str(int(t.plate.epoch))).all()
    assert (np.hypot(sb.dRAcosDec, sb.dDEC) < 3.0).all()  # near the stationary point: point-like


def test_hpm_stars_that_gaia_lists_without_proper_motion():
    cfg = SyntheticConfig(hpm_fraction=0.2, hpm_gaia_no_pm_fraction=0.25)
    t = tile_at(M67, 15.0, seed=3, cfg=cfg)
    tr = t.truth
    h = tr[tr.cls == "hpm_star"]
    assert len(h) > 40
    assert 0.12 < h.gaia_no_pm.mean() < 0.4
    assert not tr.gaia_no_pm[tr.cls != "hpm_star"].any()
    # they moved more than 5" between the plate and 2016
    assert (h.pm_total / 1000.0 * (GAIA_EPOCH - t.plate.epoch) > 5.0).all()
    nopm = h[h.gaia_no_pm]
    g = t.gaia.set_index("source_id").loc[nopm.source_id.to_numpy()]
    assert g[["pmra", "pmdec", "parallax"]].isna().all().all()
    # the Gaia row is at 2016.0: more than 5" from where the plate saw the star
    d = sep_arcsec(g.ra.to_numpy(), g.dec.to_numpy(), nopm.ra.to_numpy(), nopm.dec.to_numpy())
    np.testing.assert_allclose(d, nopm.pm_total.to_numpy() / 1000.0 * (GAIA_EPOCH - t.plate.epoch), rtol=0.01)
    assert (d > 5.0).all()
    # bright enough for the plate: they get detections
    assert (h.gmag <= 19.0).all()


def test_supercosmos_sees_the_sky_not_the_scan():
    t = tile_at(M67, 10.0, seed=2, cfg=RICH)
    tr = t.truth
    s = t.scos
    assert np.all(s.objID.to_numpy() >> np.int64(62) == 1)
    real = tr[tr.cls.isin(POINT_CLASSES)]
    obj = (np.int64(1) << np.int64(62)) | real.obj_id.to_numpy()
    listed = np.isin(obj, s.objID.to_numpy())
    np.testing.assert_array_equal(listed, real.in_scos.to_numpy())
    bright = real.mag.to_numpy() < 19.5
    assert 0.97 < listed[bright].mean() < 0.999  # ~1% random incompleteness
    assert listed[real.mag.to_numpy() > 21.5].mean() < 0.01
    # positions: the plate-epoch position with ~0.3" noise; magnitudes ~R
    sr = s.set_index("objID").loc[obj[listed]]
    d = sep_arcsec(sr.ra.to_numpy(), sr.dec.to_numpy(), real.ra.to_numpy()[listed], real.dec.to_numpy()[listed])
    pts = real.cls.to_numpy()[listed] != "galaxy"
    assert 0.25 < np.median(d[pts]) / (0.3 * np.sqrt(2 * np.log(2))) < 1.25 and d[pts].max() < 2.5
    assert np.median(np.abs(sr.sCorMagR1.to_numpy() - real.mag.to_numpy()[listed])) < 0.2
    # HPM stars where the plate saw them, not where Gaia sees them
    h = real.cls.to_numpy()[listed] == "hpm_star"
    assert h.sum() > 0 and d[h].max() < 2.5
    # never the scan's defects: no SuperCOSMOS source on an isolated spot unless a real object is there
    spots = tr[tr.cls.isin(["defect", "dust"])]
    near_s = sep_arcsec(
        spots.ra.to_numpy()[:, None], spots.dec.to_numpy()[:, None], s.ra.to_numpy()[None, :], s.dec.to_numpy()[None, :]
    ).min(axis=1)
    near_real = sep_arcsec(
        spots.ra.to_numpy()[:, None],
        spots.dec.to_numpy()[:, None],
        real.ra.to_numpy()[None, :],
        real.dec.to_numpy()[None, :],
    ).min(axis=1)
    assert len(spots) > 5 and np.all((near_s > 2.0) | (near_real < 3.0))


# ---------------------------------------------------------------------------
# end to end with SExtractor (slow)
# ---------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.skipif(
    shutil.which("source-extractor") is None or shutil.which("psfex") is None, reason="SExtractor/PSFEx not installed"
)
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

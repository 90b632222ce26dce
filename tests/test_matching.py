import astropy.units as u
import numpy as np
import pandas as pd
import pytest
from astropy.coordinates import Distance, SkyCoord
from astropy.time import Time

from vasco.matching.catalogs import find_counterparts, normalize_catalog
from vasco.matching.crossmatch import angular_separation_arcsec, nearest_within
from vasco.matching.propagate import propagate_positions


def test_propagation_agrees_with_astropy_apply_space_motion():
    rng = np.random.default_rng(0)
    n = 200
    ra = rng.uniform(0, 360, n)
    dec = np.degrees(np.arcsin(rng.uniform(-1, 1, n)))
    dec[:3] = [89.99, -89.5, 0.0]
    pmra = rng.normal(0, 300, n)
    pmdec = rng.normal(0, 300, n)
    plx = rng.uniform(1, 100, n)
    c = SkyCoord(
        ra=ra * u.deg,
        dec=dec * u.deg,
        pm_ra_cosdec=pmra * u.mas / u.yr,
        pm_dec=pmdec * u.mas / u.yr,
        distance=Distance(parallax=plx * u.mas),
        radial_velocity=0 * u.km / u.s,
        obstime=Time(2016.0, format="jyear", scale="tdb"),
    )
    moved = c.apply_space_motion(new_obstime=Time(1953.25, format="jyear", scale="tdb"))
    ra2, dec2 = propagate_positions(ra, dec, pmra, pmdec, 2016.0, 1953.25)
    sep = angular_separation_arcsec(ra2, dec2, moved.ra.deg, moved.dec.deg)
    # Differences come only from second-order (radial-velocity-free) terms: micro-arcseconds.
    assert sep.max() < 1e-3
    # And the motion is real: a 300 mas/yr star moves ~19" in 63 yr.
    moved_by = angular_separation_arcsec(ra, dec, ra2, dec2)
    assert np.median(moved_by) > 10


def test_nan_proper_motion_keeps_position():
    ra2, dec2 = propagate_positions([10.0], [20.0], [np.nan], [np.nan], 2016.0, 1950.0)
    assert ra2[0] == pytest.approx(10.0, abs=1e-12) and dec2[0] == pytest.approx(20.0, abs=1e-12)


def test_matching_across_ra_zero():
    ra = np.array([359.9995, 0.0004, 180.0])
    dec = np.array([0.0, 10.0, 0.0])
    ref_ra = np.array([0.0005, 359.9999])
    ref_dec = np.array([0.0, 10.0])
    idx, sep = nearest_within(ra, dec, ref_ra, ref_dec, 5.0)
    assert list(idx) == [0, 1, -1]
    assert sep[0] == pytest.approx(3.6, abs=1e-6)
    assert sep[1] == pytest.approx(0.0005 * 3600 * np.cos(np.radians(10.0)), rel=1e-4)
    assert np.isnan(sep[2])


def test_matching_near_the_pole():
    # Near the pole, large RA differences are small angles.
    ra = np.array([0.0, 90.0])
    dec = np.array([89.9995, 89.9995])
    ref_ra = np.array([180.0, 270.0])
    ref_dec = np.array([89.9995, 89.99])
    idx, sep = nearest_within(ra, dec, ref_ra, ref_dec, 5.0)
    assert idx[0] == 0 and sep[0] == pytest.approx(3.6, abs=1e-3)
    assert idx[1] == 0 and sep[1] == pytest.approx(1.8 * np.sqrt(2), abs=1e-3)


def test_radius_is_strict():
    idx, sep = nearest_within([10.0], [0.0], [10.0 + 5.01 / 3600], [0.0], 5.0)
    assert idx[0] == -1
    idx, sep = nearest_within([10.0], [0.0], [10.0 + 4.99 / 3600], [0.0], 5.0)
    assert idx[0] == 0 and sep[0] == pytest.approx(4.99, abs=1e-6)


def test_find_counterparts_uses_plate_epoch():
    # A star moving 1"/yr east: at 2016 it is 63" from where the plate saw it in 1953.
    plate_ra, plate_dec = 150.0, 20.0
    ra16, dec16 = propagate_positions([plate_ra], [plate_dec], [1000.0], [0.0], 1953.0, 2016.0)
    gaia = pd.DataFrame(
        {
            "source_id": [42],
            "ra": ra16,
            "dec": dec16,
            "pmra": [1000.0],
            "pmdec": [0.0],
            "ref_epoch": [2016.0],
            "phot_g_mean_mag": [15.0],
        }
    )
    cat = normalize_catalog(gaia, "gaia", 2016.0)
    res = find_counterparts(np.array([plate_ra]), np.array([plate_dec]), cat, 1953.0, 5.0)
    assert res["id"].iloc[0] == 42 and res["sep_arcsec"].iloc[0] < 0.01
    # Without proper motion the same star would be missed: the epoch matters.
    cat_nopm = cat.assign(pmra=np.nan, pmdec=np.nan)
    res2 = find_counterparts(np.array([plate_ra]), np.array([plate_dec]), cat_nopm, 1953.0, 5.0)
    assert pd.isna(res2["id"].iloc[0])


def test_normalize_catalog_vizier_names_and_errors():
    viz = pd.DataFrame({"RA_ICRS": [1.0], "DE_ICRS": [2.0], "pmRA": [3.0], "pmDE": [4.0], "Gmag": [18.0]})
    out = normalize_catalog(viz, "gaia", 2016.0)
    assert out.dtypes["ra"] == np.float64 and out["epoch"].iloc[0] == 2016.0 and out["pmdec"].iloc[0] == 4.0
    with pytest.raises(ValueError, match="catalogue 'x': no RA/Dec"):
        normalize_catalog(pd.DataFrame({"a": [1]}), "x", 2016.0)


def test_ps1_epoch_is_an_mjd_and_gaia_epoch_a_julian_year():
    # A PS1 row as VizieR II/349/ps1 (and XMatch) answers it: Epoch is the mean epoch as an MJD.
    ps1 = pd.DataFrame(
        {
            "objID": [153451553325862315],
            "RAJ2000": [155.332573],
            "DEJ2000": [37.877864],
            "Qual": [52],
            "Epoch": [55761.365],
            "rmag": [19.37],
        }
    )
    out = normalize_catalog(ps1, "ps1", 2012.0)
    # MJD 55761.365 is 2011-07-19 08:45:36 (astropy: Time(55761.365, format="mjd").jyear = 2011.54514716)
    assert out["epoch"].iloc[0] == pytest.approx(2000.0 + (55761.365 - 51544.5) / 365.25, abs=1e-12)
    assert out["epoch"].iloc[0] == pytest.approx(2011.5451471594797, abs=1e-9)
    # Gaia's Epoch (VizieR I/350) and ref_epoch (archive) are Julian years: kept as they are.
    viz = pd.DataFrame({"Source": [7], "RA_ICRS": [1.0], "DE_ICRS": [2.0], "Epoch": [2016.0]})
    assert normalize_catalog(viz, "gaia", 2000.0)["epoch"].iloc[0] == 2016.0
    arch = pd.DataFrame({"source_id": [7], "ra": [1.0], "dec": [2.0], "ref_epoch": [2016.0]})
    assert normalize_catalog(arch, "gaia", 2000.0)["epoch"].iloc[0] == 2016.0
    # A value that contradicts the documented unit is refused, naming catalogue and column.
    with pytest.raises(ValueError, match="catalogue 'ps1': epoch column 'Epoch' is documented as mjd"):
        normalize_catalog(ps1.assign(Epoch=2011.5), "ps1", 2012.0)
    with pytest.raises(ValueError, match="catalogue 'gaia': epoch column 'Epoch' is documented as jyear"):
        normalize_catalog(viz.assign(Epoch=57388.5), "gaia", 2000.0)
    # Missing epochs still take the default.
    assert normalize_catalog(ps1.assign(Epoch=np.nan), "ps1", 2012.0)["epoch"].iloc[0] == 2012.0


def test_ps1_mjd_epoch_gives_the_right_position_at_the_plate_epoch():
    # A fast star listed by PS1 with a proper motion (e.g. a local file with Gaia-like motions)
    # at MJD 55761.365: read as the year 55761 it would be moved by ~54,000 years of motion.
    from vasco.matching.propagate import propagate_positions

    mjd = 55761.365
    year = 2000.0 + (mjd - 51544.5) / 365.25
    ra_p, dec_p = propagate_positions([150.0], [20.0], [500.0], [0.0], 1953.0, year)
    ps1 = pd.DataFrame(
        {"objID": [1], "RAJ2000": ra_p, "DEJ2000": dec_p, "pmRA": [500.0], "pmDE": [0.0], "Epoch": [mjd]}
    )
    cat = normalize_catalog(ps1, "ps1", 2012.0)
    res = find_counterparts(np.array([150.0]), np.array([20.0]), cat, 1953.0, 5.0)
    assert res["id"].iloc[0] == 1 and res["sep_arcsec"].iloc[0] < 0.01


def test_undeclared_epoch_columns_rule():
    from vasco.matching.catalogs import epoch_to_julian_year

    # MAST's epochMean is an MJD; the synthetic sky writes Julian years under that name: both read right.
    assert epoch_to_julian_year(np.array([57388.5]), "some.parquet", "epochMean")[0] == pytest.approx(2016.0)
    np.testing.assert_array_equal(
        epoch_to_julian_year(np.array([2012.3, np.nan]), "ps1", "epochMean"), [2012.3, np.nan]
    )
    # Anything else undeclared is read as Julian years, as before.
    assert epoch_to_julian_year(np.array([1953.2]), "scos", "epoch")[0] == 1953.2

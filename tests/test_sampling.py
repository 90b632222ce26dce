import math

import numpy as np
import pytest

from vasco.sky.sampling import read_positions, sample_positions, tile_id


def test_sampling_is_seeded_and_prefix_stable():
    a = sample_positions(50, seed=3)
    b = sample_positions(50, seed=3)
    c = sample_positions(10, seed=3)
    assert a == b
    assert a[:10] == c
    assert sample_positions(10, seed=4) != c


def test_sampling_uniform_on_sphere_within_footprint():
    pos = sample_positions(20000, seed=1, dec_min=-30.0)
    dec = np.array([p.dec for p in pos])
    ra = np.array([p.ra for p in pos])
    assert dec.min() >= -30.0 and dec.max() <= 90.0
    assert ra.min() >= 0.0 and ra.max() < 360.0
    # Uniform on the sphere: sin(dec) is uniform on [sin(-30), 1] = [-0.5, 1].
    s = np.sin(np.radians(dec))
    hist, _ = np.histogram(s, bins=6, range=(-0.5, 1.0))
    assert hist.min() > 0.9 * hist.mean()
    # Uniform in Dec would put ~25% above +52.5 deg; on the sphere it is ~robust 14%.
    frac_north = np.mean(dec > 52.5)
    expected = (1 - math.sin(math.radians(52.5))) / 1.5
    assert abs(frac_north - expected) < 0.01


def test_tile_id_format_and_validation():
    assert tile_id(132.825, 11.8) == "t132.8250+11.8000"
    assert tile_id(0.00001, -0.00001) == "t000.0000+00.0000"
    assert tile_id(359.99999, -29.5) == "t000.0000-29.5000"
    with pytest.raises(ValueError, match="RA"):
        tile_id(360.0, 0.0)
    with pytest.raises(ValueError, match="Dec"):
        tile_id(10.0, 91.0)


def test_read_positions(tmp_path):
    good = tmp_path / "pos.csv"
    good.write_text("ra,dec\n10.5,20.25\n359.9,-29.0\n")
    pos = read_positions(good)
    assert [(p.ra, p.dec) for p in pos] == [(10.5, 20.25), (359.9, -29.0)]
    bad = tmp_path / "bad.csv"
    bad.write_text("ra,dec\n10,20\n400,10\n")
    with pytest.raises(ValueError, match=r"line 3.*RA 400"):
        read_positions(bad)
    nocol = tmp_path / "nocol.csv"
    nocol.write_text("x,y\n1,2\n")
    with pytest.raises(ValueError, match="needs columns 'ra' and 'dec'"):
        read_positions(nocol)
    words = tmp_path / "words.csv"
    words.write_text("ra,dec\nabc,10\n")
    with pytest.raises(ValueError, match="not numbers"):
        read_positions(words)

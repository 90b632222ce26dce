import numpy as np
import pytest

from vasco.plates.cutout import cutout_header
from vasco.plates.frame import plate_frame
from vasco.plates.header import read_fits_header
from vasco.plates.table import covering_plate


def test_plate_frame_on_a_cutout_at_the_plate_centre():
    plate = covering_plate(132.825, 11.8)
    hdr = cutout_header(plate, plate.ra, plate.dec, 101)
    f = plate_frame(hdr, np.array([51.0, 1.0]), np.array([51.0, 1.0]))
    assert (f["plate_id"] == plate.region).all()
    # The cutout centred on the plate centre: its middle pixel is ~at the optical centre.
    # Centred on PLTRA/PLTDEC: within a few mm of the PPO centre (the AMD constant terms).
    assert f["centre_dist_mm"].iloc[0] < 5.0
    assert f["edge_dist_px"].iloc[0] == pytest.approx(min(plate.naxis1, plate.naxis2) / 2, rel=0.02)
    assert f["x_plate"].iloc[1] == 1.0 + hdr["CNPIX1"]


def test_plate_frame_on_the_real_m101_cutout(m101_path):
    hdr = read_fits_header(m101_path)
    f = plate_frame(hdr, np.array([1.0, 530.0]), np.array([1.0, 530.0]))
    assert list(f["x_plate"]) == [5901.0, 6430.0]
    assert (f["edge_dist_px"] > 0).all() and f["centre_dist_mm"].between(50, 250).all()


def test_unknown_plate_gives_nan_distances():
    f = plate_frame({"REGION": "ZZ999", "CNPIX1": 10, "CNPIX2": 20}, [1.0], [2.0])
    assert f["x_plate"].iloc[0] == 11.0 and np.isnan(f["edge_dist_px"].iloc[0])

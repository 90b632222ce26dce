import numpy as np
import pandas as pd
import pytest

from vasco.config import CutsConfig
from vasco.filters.cuts import CUT_ORDER, apply_quality_cuts, mad_sigma, spread_model_cut


def _star(**kw):
    row = dict(
        FLAGS=0,
        SNR_WIN=100.0,
        SPREAD_MODEL=0.0,
        FWHM_IMAGE=3.0,
        ELONGATION=1.05,
        XMIN_IMAGE=10,
        XMAX_IMAGE=14,
        YMIN_IMAGE=20,
        YMAX_IMAGE=24,
    )
    row.update(kw)
    return row


def _table(rows):
    return pd.DataFrame(rows)


def test_each_fixed_cut_rejects_what_the_paper_says():
    cfg = CutsConfig()
    # Many good stars with a little scatter so the MAD clip has a distribution.
    rng = np.random.default_rng(1)
    good = [
        _star(FWHM_IMAGE=3.0 + 0.05 * rng.standard_normal(), ELONGATION=1.05 + 0.01 * rng.standard_normal())
        for _ in range(40)
    ]
    bad = {
        "flags": _star(FLAGS=2),
        "snr": _star(SNR_WIN=30.0),  # must be strictly > 30
        "fwhm": _star(FWHM_IMAGE=7.0),  # must be < 7
        "elongation": _star(ELONGATION=1.3),  # must be < 1.3
        "extent": _star(XMAX_IMAGE=17),  # |7 - 4| = 3 >= 2
    }
    table = _table(good + list(bad.values()))
    out, funnel = apply_quality_cuts(table, cfg)
    for i, name in enumerate(bad):
        row = out.iloc[40 + i]
        assert not row[f"cut_{name}"], name
        assert not row["passes_cuts"], name
    assert list(funnel) == ["detections", *CUT_ORDER]
    assert funnel["detections"] == 45
    # Sequential funnel: never increases.
    counts = list(funnel.values())
    assert all(a >= b for a, b in zip(counts, counts[1:]))
    assert funnel["extent"] == 40


def test_edges_just_inside_pass():
    cfg = CutsConfig()
    rows = [_star(SNR_WIN=30.01, SPREAD_MODEL=-0.00199, FWHM_IMAGE=2.01, ELONGATION=1.29)] * 5
    out, funnel = apply_quality_cuts(_table(rows), cfg)
    assert out["passes_cuts"].all()
    assert funnel["mad_clip"] == 5


def test_extent_requires_both_extents_above_one_pixel():
    rows = [_star(XMIN_IMAGE=5, XMAX_IMAGE=6, YMIN_IMAGE=5, YMAX_IMAGE=6)]
    out, _ = apply_quality_cuts(_table(rows), CutsConfig())
    assert not out["cut_extent"].iloc[0]


def test_mad_clip_removes_outliers_about_the_median():
    fwhm = [3.0, 3.1, 2.9, 3.05, 2.95, 3.0, 3.02, 2.98, 5.5]
    rows = [_star(FWHM_IMAGE=f) for f in fwhm]
    out, funnel = apply_quality_cuts(_table(rows), CutsConfig())
    assert list(out["cut_mad_clip"]) == [True] * 8 + [False]
    assert funnel["mad_clip"] == 8
    sig = mad_sigma(np.array(fwhm[:8]))
    assert sig == pytest.approx(1.4826 * np.median(np.abs(np.array(fwhm[:8]) - np.median(fwhm[:8]))))


def test_mad_clip_statistics_use_only_sources_passing_fixed_cuts():
    # Faint, broad junk failing the SNR cut must not shift the clip.
    rows = [_star(FWHM_IMAGE=3.0 + 0.01 * i) for i in range(10)]
    rows += [_star(FWHM_IMAGE=6.5, SNR_WIN=5.0) for _ in range(30)]
    out, _ = apply_quality_cuts(_table(rows), CutsConfig())
    assert out["passes_cuts"].sum() == 10


def test_missing_column_is_named():
    with pytest.raises(ValueError, match="SNR_WIN"):
        apply_quality_cuts(pd.DataFrame({"FLAGS": [0]}), CutsConfig())


def test_quality_cuts_need_no_psf_model():
    """SPREAD_MODEL is not read by the cuts before the counterparts: not even its column."""
    rows = [_star(FWHM_IMAGE=3.0 + 0.01 * i) for i in range(10)]
    with_psf, funnel = apply_quality_cuts(_table(rows), CutsConfig())
    without, funnel2 = apply_quality_cuts(_table(rows).drop(columns="SPREAD_MODEL"), CutsConfig())
    assert funnel == funnel2 and "spread_model" not in funnel
    assert with_psf["passes_cuts"].equals(without["passes_cuts"])


def test_spread_model_cut_only_where_tested():
    spread = np.array([0.0, -0.002, -0.00199, np.nan, -0.5])
    tested = np.array([True, True, True, False, False])
    out = spread_model_cut(spread, tested, CutsConfig())
    assert str(out.dtype) == "boolean"
    assert list(out[:3]) == [True, False, True]  # strictly > -0.002
    assert out[3:].isna().all()


def test_spread_model_cut_refuses_a_tested_detection_without_a_value():
    with pytest.raises(ValueError, match="1 detection"):
        spread_model_cut(np.array([0.0, np.nan]), np.array([True, True]), CutsConfig())


def test_config_rejects_inverted_fwhm_range():
    with pytest.raises(ValueError, match="fwhm_min_px"):
        CutsConfig(fwhm_min_px=8.0)

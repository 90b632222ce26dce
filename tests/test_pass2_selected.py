"""Pass 2 with the PSF-model columns only where the cuts need them gives the
same values, cut decisions, funnel and candidates as the full pass 2."""

import shutil

import numpy as np
import pandas as pd
import pytest

from vasco.config import CutsConfig, ExtractionConfig, VascoConfig
from vasco.extraction import sextractor as sx
from vasco.filters.cuts import CUT_ORDER, apply_quality_cuts, reaches_spread_cut

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("source-extractor") is None and shutil.which("sex") is None,
                       reason="SExtractor is not installed (apt-get install source-extractor psfex)"),
]


def _both_paths(image, work, cuts=CutsConfig()):
    cfg = ExtractionConfig()
    p1 = sx.run_pass1(image, work / "pass1.ldac", cfg)
    psf = sx.run_psfex(p1, work / "pass1.psf", cfg)
    full = sx.read_ldac(sx.run_pass2(image, psf, work / "pass2.ldac", cfg))
    path, n_psf = sx.run_pass2_selected(image, psf, work / "pass2.parquet", cfg,
                                        lambda t: reaches_spread_cut(t, cuts))
    fast = sx.read_catalog(path)
    return full, fast, n_psf


def _assert_identical(full, fast, n_psf, cuts=CutsConfig()):
    measured = fast["psf_measured"].to_numpy()
    assert n_psf == measured.sum() and 0 < n_psf < len(full)
    # Every column of the full pass 2, in its order, equal bit for bit where measured.
    assert list(fast.columns) == list(full.columns) + ["psf_measured"]
    for col in full.columns:
        a, b = full[col].to_numpy(), fast[col].to_numpy()
        if col in sx.PSF_COLUMNS:
            assert np.array_equal(a[measured], b[measured]), col
            assert np.isnan(b[~measured]).all(), col
        else:
            assert a.dtype == b.dtype and np.array_equal(a, b, equal_nan=True), col
    # The same decisions and funnel.
    cut_full, funnel_full = apply_quality_cuts(full, cuts)
    cut_fast, funnel_fast = apply_quality_cuts(fast, cuts)
    assert funnel_fast == funnel_full
    assert np.array_equal(cut_fast["passes_cuts"], cut_full["passes_cuts"])
    for name in CUT_ORDER:
        same = cut_fast[f"cut_{name}"].to_numpy() == cut_full[f"cut_{name}"].to_numpy()
        if name == "spread_model":
            # Unmeasured detections all fail an earlier cut.
            assert same[measured].all() and not reaches_spread_cut(full, cuts)[~measured].any()
        else:
            assert same.all(), name
    return funnel_full


def test_real_m101_cutout(m101_path, tmp_path):
    full, fast, n_psf = _both_paths(m101_path, tmp_path)
    funnel = _assert_identical(full, fast, n_psf)
    assert funnel["mad_clip"] > 0
    assert not list(tmp_path.glob(".pass2.*")) and not list(tmp_path.glob("*.part"))


def test_synthetic_tile(tmp_path):
    from vasco.pipeline import acquire_synthetic

    cfg = VascoConfig.model_validate({"survey": {"size_arcmin": 20.0}})
    acq = acquire_synthetic(tmp_path / "tile", 201.5, 12.0, cfg)
    full, fast, n_psf = _both_paths(acq["outputs"]["image"]["path"], tmp_path)
    funnel = _assert_identical(full, fast, n_psf)
    assert funnel["mad_clip"] > 20


def test_other_cut_settings_select_other_detections(m101_path, tmp_path):
    """The selection follows the cuts before SPREAD_MODEL (here SNR_WIN > 60)."""
    cuts = CutsConfig(snr_win_min=60.0)
    full, fast, n_psf = _both_paths(m101_path, tmp_path, cuts)
    _assert_identical(full, fast, n_psf, cuts)
    # Cutting with a looser SNR than the selection used is refused, not silently wrong.
    looser = CutsConfig()
    assert reaches_spread_cut(fast, looser).sum() > n_psf
    with pytest.raises(ValueError, match="no PSF-model measurement"):
        apply_quality_cuts(fast, looser)


def test_no_detection_selected(m101_path, tmp_path):
    cfg = ExtractionConfig()
    p1 = sx.run_pass1(m101_path, tmp_path / "pass1.ldac", cfg)
    psf = sx.run_psfex(p1, tmp_path / "pass1.psf", cfg)
    path, n = sx.run_pass2_selected(m101_path, psf, tmp_path / "p2.parquet", cfg, lambda t: np.zeros(len(t), bool))
    t = pd.read_parquet(path)
    assert n == 0 and len(t) > 100 and t["SPREAD_MODEL"].isna().all() and not t["psf_measured"].any()

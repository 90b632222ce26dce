"""SExtractor and PSFEx, the real binaries, on the real M101 POSS-I cutout."""

import shutil
from pathlib import Path

import numpy as np
import pytest

from vasco.config import ExtractionConfig
from vasco.extraction import sextractor as sx

pytestmark = pytest.mark.skipif(
    shutil.which("source-extractor") is None and shutil.which("sex") is None,
    reason="SExtractor is not installed (apt-get install source-extractor psfex)",
)


@pytest.fixture(scope="module")
def m101_run(tmp_path_factory, m101_path):
    work = tmp_path_factory.mktemp("m101")
    cfg = ExtractionConfig()
    p1 = sx.run_pass1(m101_path, work / "pass1.ldac", cfg)
    psf = sx.run_psfex(p1, work / "pass1.psf", cfg)
    p2 = sx.run_pass2(m101_path, psf, work / "pass2.ldac", cfg)
    return work, p1, psf, p2


def test_three_passes_on_real_cutout(m101_run):
    work, p1, psf, p2 = m101_run
    table = sx.read_ldac(p2)
    assert len(table) > 100
    for col in ("XWIN_IMAGE", "SNR_WIN", "SPREAD_MODEL", "FWHM_IMAGE", "ELONGATION", "FLAGS", "XMAX_IMAGE"):
        assert col in table.columns
    assert np.isfinite(table["SPREAD_MODEL"]).all()
    assert table["X_IMAGE"].between(0.5, 530.5).all()
    assert sx.psf_star_count(psf) >= 10
    # Nothing half-written is left beside the outputs.
    assert not list(work.glob("*.part")) and not list(work.glob(".psfex.*"))


def test_pass1_keeps_vignets_but_reader_drops_them(m101_run):
    _, p1, _, _ = m101_run
    assert "VIGNET" not in sx.read_ldac(p1).columns
    with pytest.raises(ValueError, match="multi-dimensional"):
        sx.read_ldac(p1, columns=["VIGNET"])


def test_psf_stars_exclude_saturated(m101_run, m101_path, tmp_path):
    # With the pass-1 saturation level at the scan's saturation, the brightest
    # (photographically grown) stars carry FLAGS bit 4 and PSFEx skips them.
    _, p1, _, _ = m101_run
    t = sx.read_ldac(p1)
    saturated = (t["FLAGS"] & 4) > 0
    assert saturated.any() and (~saturated).sum() > 20
    # The flagged ones are the brightest peaks.
    assert t.loc[saturated, "FLUX_MAX"].min() > t.loc[~saturated, "FLUX_MAX"].median()
    level = sx.psf_saturation_level(m101_path, 0.85)
    assert 12000 < level < 15752


def test_psf_model_does_not_depend_on_the_snapshot_count(m101_run, tmp_path):
    """psfex.conf's PSFVAR_NSNAP 1 (diagnostics only, most of PSFEx's time at 9) gives the model PSFEx's 9 gives."""
    from astropy.io import fits

    _, p1, psf, _ = m101_run
    assert "PSFVAR_NSNAP    1" in (sx.config_dir() / "psfex.conf").read_text()
    nine = tmp_path / "nsnap9"
    nine.mkdir()
    cmd = [*sx.psfex_command(sx.find_tool(sx.PSFEX_NAMES), p1, nine, ExtractionConfig()), "-PSFVAR_NSNAP", "9"]
    sx._run(cmd, cwd=nine, timeout=600, tool="psfex")
    with fits.open(psf) as ours, fits.open(nine / f"{p1.stem}.psf") as theirs:
        assert ours[1].header["PSF_SAMP"] == theirs[1].header["PSF_SAMP"]
        assert ours[1].header["ACCEPTED"] == theirs[1].header["ACCEPTED"]
        np.testing.assert_array_equal(ours[1].data["PSF_MASK"], theirs[1].data["PSF_MASK"])


def test_missing_tool_has_reason(monkeypatch, m101_path, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(sx.ToolError) as err:
        sx.run_pass1(m101_path, tmp_path / "x.ldac", ExtractionConfig())
    assert err.value.reason == "FAIL_TOOL_MISSING"
    assert not (tmp_path / "x.ldac").exists()


def test_unreadable_image_fails_cleanly(tmp_path):
    bad = tmp_path / "bad.fits"
    bad.write_bytes(b"SIMPLE  =                    T" + b" " * 50)
    with pytest.raises(sx.ToolError) as err:
        sx.run_pass1(bad, tmp_path / "x.ldac", ExtractionConfig())
    assert err.value.reason == "FAIL_BAD_IMAGE"
    assert list(tmp_path.iterdir()) == [bad]


def test_timeout_has_reason(m101_path, tmp_path):
    cfg = ExtractionConfig(tool_timeout_s=0.001)
    with pytest.raises(sx.ToolError) as err:
        sx.run_pass1(m101_path, tmp_path / "x.ldac", cfg)
    assert err.value.reason == "FAIL_TOOL_TIMEOUT"
    assert not list(tmp_path.iterdir())


def test_relative_paths_work(m101_path, tmp_path, monkeypatch):
    # The README runs with a relative --out: every tool call must cope.
    monkeypatch.chdir(tmp_path)
    cfg = ExtractionConfig()
    p1 = sx.run_pass1(m101_path, Path("rel") / "pass1.ldac", cfg)
    psf = sx.run_psfex(p1, Path("rel") / "pass1.psf", cfg)
    assert psf.exists() and not psf.is_absolute()

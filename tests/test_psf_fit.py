"""The PSF fit only where the funnel needs it gives the same values, cut
decisions, funnel and candidates as a pass 2 that fits every detection."""

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from vasco.config import CutsConfig, ExtractionConfig
from vasco.extraction import sextractor as sx
from vasco.filters.cuts import apply_quality_cuts
from vasco.io import read_json

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        shutil.which("source-extractor") is None and shutil.which("sex") is None,
        reason="SExtractor is not installed (apt-get install source-extractor psfex)",
    ),
]


def _psf(image, work):
    cfg = ExtractionConfig()
    p1 = sx.run_pass1(image, work / "pass1.ldac", cfg)
    return sx.run_psfex(p1, work / "pass1.psf", cfg)


def _assert_bit_identical(image, work):
    """Pass 2 with and without the PSF columns; the PSF fit of a listed subset."""
    cfg = ExtractionConfig()
    psf = _psf(image, work)
    full = sx.read_ldac(sx.run_pass2(image, psf, work / "full.ldac", cfg))
    fast = sx.read_ldac(sx.run_pass2(image, None, work / "fast.ldac", cfg))
    assert list(fast.columns) == [c for c in full.columns if c not in sx.PSF_COLUMNS]
    for col in fast.columns:
        a, b = full[col].to_numpy(), fast[col].to_numpy()
        assert a.dtype == b.dtype and np.array_equal(a, b, equal_nan=True), col
    # List what the funnel would (the detections passing the cuts), shuffled, plus every 7th one.
    cut, _ = apply_quality_cuts(fast, CutsConfig())
    chosen = cut["passes_cuts"].to_numpy() | (np.arange(len(fast)) % 7 == 0)
    listed = fast.loc[chosen, ["NUMBER", "X_IMAGE", "Y_IMAGE"]].sample(frac=1.0, random_state=3)
    got = sx.run_psf_fit(image, psf, listed, work, cfg)
    assert list(got["NUMBER"]) == list(listed["NUMBER"])
    ref = full.set_index("NUMBER").loc[listed["NUMBER"].to_numpy()]
    for col in sx.PSF_COLUMNS:
        assert np.array_equal(got[col].to_numpy(), ref[col].to_numpy().astype(np.float32)), col
    assert not list(work.glob(".psf_fit.*")) and not list(work.glob(".pass2.*")) and not list(work.glob("*.part"))
    return len(listed), len(fast)


def test_real_m101_cutout_bit_identical(m101_path, tmp_path):
    n_listed, n = _assert_bit_identical(m101_path, tmp_path)
    assert 0 < n_listed < n


def test_synthetic_tile_bit_identical(tmp_path):
    from vasco.config import VascoConfig
    from vasco.steps.acquire import acquire_synthetic

    cfg = VascoConfig.model_validate({"survey": {"size_arcmin": 20.0}})
    acq = acquire_synthetic(tmp_path / "tile", 201.5, 12.0, cfg)
    n_listed, n = _assert_bit_identical(acq["outputs"]["image"]["path"], tmp_path)
    assert 20 < n_listed < n


def test_nothing_listed_runs_nothing(m101_path, tmp_path):
    got = sx.run_psf_fit(
        m101_path,
        tmp_path / "absent.psf",
        pd.DataFrame(columns=["NUMBER", "X_IMAGE", "Y_IMAGE"]),
        tmp_path,
        ExtractionConfig(),
    )
    assert got.empty and list(got.columns) == ["NUMBER", *sx.PSF_COLUMNS]


def test_a_listed_detection_that_is_not_there_fails(m101_path, tmp_path):
    """A position SExtractor does not detect is an error, never a NaN passed on."""
    psf = _psf(m101_path, tmp_path)
    fast = sx.read_ldac(sx.run_pass2(m101_path, None, tmp_path / "fast.ldac", ExtractionConfig()))
    listed = fast.loc[:2, ["NUMBER", "X_IMAGE", "Y_IMAGE"]].copy()
    listed.loc[listed.index[1], ["X_IMAGE", "Y_IMAGE"]] += 3.0
    with pytest.raises(sx.ToolError, match="did not give back 1 of 3") as err:
        sx.run_psf_fit(m101_path, psf, listed, tmp_path, ExtractionConfig())
    assert err.value.reason == "FAIL_SEXTRACTOR"
    assert not list(tmp_path.glob(".psf_fit.*"))


def _run(tmp_path, name, args, scope, **config):
    from flows.cli import main

    conf = tmp_path / f"{name}-{scope}.json"
    conf.write_text(json.dumps({"extraction": {"psf_fit_scope": scope}, **config}))
    out = tmp_path / f"{name}-{scope}"
    assert main([*args, "--config", str(conf), "--out", str(out)]) == 0
    return out


def _assert_same_tile(a, b):
    ra, rb = read_json(a / "tile.json"), read_json(b / "tile.json")
    assert ra["status"] == rb["status"] == "ok"
    assert ra["funnel"] == rb["funnel"]
    assert ra["psf_fit"]["scope"] == "all" and rb["psf_fit"]["scope"] == "needed"
    assert 0 < rb["psf_fit"]["measured"] == ra["psf_fit"]["measured"] < ra["funnel"]["detections"]
    da, db = pd.read_parquet(a / "detections.parquet"), pd.read_parquet(b / "detections.parquet")
    assert list(da.columns) == list(db.columns) and len(da) == len(db)
    measured = db["psf_measured"].to_numpy()
    assert da["psf_measured"].all() and measured.sum() == rb["psf_fit"]["measured"]
    for col in da.columns:
        if col in sx.PSF_COLUMNS:
            x, y = da[col].to_numpy(), db[col].to_numpy()
            assert np.array_equal(x[measured], y[measured]) and np.isnan(y[~measured]).all(), col
        elif col != "psf_measured":
            pd.testing.assert_series_equal(da[col], db[col], obj=col)
    pd.testing.assert_frame_equal(
        pd.read_parquet(a / "candidates.parquet").drop(columns="psf_measured"),
        pd.read_parquet(b / "candidates.parquet").drop(columns="psf_measured"),
    )
    return ra


def test_real_m101_tile_same_candidates_either_scope(tmp_path, m101_path, harness):
    from vasco.astrometry.positions import pixel_to_sky
    from vasco.plates.header import read_fits_header

    # A Gaia-like file: every other star the plate shows, so half have no counterpart.
    t = sx.read_ldac(sx.run_pass1(m101_path, tmp_path / "p1.ldac", ExtractionConfig()))
    ra, dec = pixel_to_sky(read_fits_header(m101_path), t["X_IMAGE"], t["Y_IMAGE"])
    pd.DataFrame(
        {
            "RA_ICRS": ra,
            "DE_ICRS": dec,
            "pmRA": 0.0,
            "pmDE": 0.0,
            "Gmag": 16.0,
            "Source": np.arange(len(t), dtype=np.int64),
        }
    ).iloc[::2].to_csv(tmp_path / "gaia.csv", index=False)
    args = ["tile", "--fits", str(m101_path), "--catalog", f"gaia={tmp_path / 'gaia.csv'}"]
    rec = _assert_same_tile(_run(tmp_path, "m101", args, "all"), _run(tmp_path, "m101", args, "needed"))
    assert rec["funnel"]["spread_model"] > 0


def test_synthetic_survey_same_candidates_either_scope(tmp_path, harness):
    """Two 10' synthetic tiles through the survey flow, every later veto on."""
    pos = tmp_path / "positions.csv"
    pos.write_text("ra,dec\n132.8250,11.8000\n184.0164,27.8682\n")
    args = ["survey", "--sky", "synthetic", "--positions", str(pos), "--seed", "1", "--size-arcmin", "10"]
    # Transients are drawn per 30' tile: a denser injection gives these small tiles candidates.
    more = {"synthetic": {"n_transients": 300}}
    a, b = _run(tmp_path, "synth", args, "all", **more), _run(tmp_path, "synth", args, "needed", **more)
    tiles = sorted(p.name for p in (a / "tiles").iterdir())
    assert tiles == sorted(p.name for p in (b / "tiles").iterdir()) and len(tiles) == 2
    for tid in tiles:
        _assert_same_tile(a / "tiles" / tid, b / "tiles" / tid)
    ca, cb = pd.read_parquet(a / "candidates.parquet"), pd.read_parquet(b / "candidates.parquet")
    assert len(ca) > 0
    pd.testing.assert_frame_equal(ca.drop(columns="psf_measured"), cb.drop(columns="psf_measured"))

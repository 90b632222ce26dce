"""Step ``acquire``: the tile's cutout into ``raw/image.fits``, in one of three variants.

* :func:`acquire_synthetic` renders the synthetic tile, its reference
  catalogues, its truth table and the lists of the later vetoes.
* :func:`acquire_dss` downloads the POSS-I red cutout from STScI's DSS.
* :func:`acquire_file` copies a user's FITS cutout.

All three write the step record ``acquire``.  Acquiring is I/O: there is no
pure part.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from astropy.io import fits

from vasco.config import VascoConfig
from vasco.io import atomic_path, file_sha256, write_parquet_atomic
from vasco.steps.base import StepError, run_step

__all__ = ["acquire_synthetic", "acquire_dss", "acquire_file"]


def acquire_synthetic(tile_dir: Path, ra: float, dec: float, cfg: VascoConfig) -> dict[str, Any]:
    """Render the synthetic tile and its catalogues into the tile folder."""
    import pandas as pd

    from vasco.synthetic.tile import LIST_NAMES, make_synthetic_tile

    tile_dir = Path(tile_dir)
    params = {
        "ra": ra,
        "dec": dec,
        "size_arcmin": cfg.survey.size_arcmin,
        "seed": cfg.survey.seed,
        "synthetic": cfg.synthetic.model_dump(mode="json"),
    }

    def body() -> tuple[dict[str, Path], dict[str, Any]]:
        try:
            tile = make_synthetic_tile(ra, dec, cfg.survey.size_arcmin, cfg.survey.seed, cfg.synthetic)
        except LookupError as exc:
            # A few holes in DSS1's POSS-I E coverage (e.g. above Dec ~ +88).
            raise StepError("REJECT_NO_PLATE", str(exc)) from exc
        image = tile_dir / "raw" / "image.fits"
        with atomic_path(image, suffix=".fits") as tmp:
            fits.PrimaryHDU(data=tile.image, header=tile.header).writeto(tmp, overwrite=True)
        outs = {
            "image": image,
            "gaia": write_parquet_atomic(tile_dir / "catalogs" / "gaia.parquet", tile.gaia),
            "ps1": write_parquet_atomic(tile_dir / "catalogs" / "ps1.parquet", tile.ps1),
            "truth": write_parquet_atomic(tile_dir / "truth.parquet", tile.truth),
        }
        info = {"n_gaia": len(tile.gaia), "n_ps1": len(tile.ps1), "n_truth": len(tile.truth)}
        # The lists of the later vetoes, as the synthetic services would answer.
        for name in sorted(LIST_NAMES):
            extra = getattr(tile, name, None)
            if isinstance(extra, pd.DataFrame):
                outs[name] = write_parquet_atomic(tile_dir / "catalogs" / f"{name}.parquet", extra)
                info[f"n_{name}"] = len(extra)
        return outs, info

    return run_step(tile_dir, "acquire", {}, params, acquire_synthetic, body)


def acquire_dss(tile_dir: Path, ra: float, dec: float, cfg: VascoConfig) -> dict[str, Any]:
    """Download the POSS-I red cutout from the STScI DSS service (checked, atomic)."""
    from vasco.sources.dss import fetch_dss_tile
    from vasco.sources.http import SourceError

    tile_dir = Path(tile_dir)
    params = {"ra": ra, "dec": dec, "size_arcmin": cfg.survey.size_arcmin}

    def body() -> tuple[dict[str, Path], dict[str, Any]]:
        from vasco.sources.dss import dss_base_url
        from vasco.sources.provenance import query_entry, utc_now

        dest = tile_dir / "raw" / "image.fits"
        asked = utc_now()
        try:
            fetch_dss_tile(ra, dec, cfg.survey.size_arcmin, dest, config=cfg.sources.dss)
        except SourceError as exc:
            raise StepError(exc.reason, str(exc)) from exc
        query = query_entry("dss", dss_base_url(None, cfg.sources.dss), [cfg.sources.dss.survey], asked, None)
        return {"image": dest}, {"source": "dss", "queries": [query]}

    return run_step(tile_dir, "acquire", {}, params, acquire_dss, body)


def acquire_file(tile_dir: Path, fits_path: Path) -> dict[str, Any]:
    """Copy a user's FITS cutout into the tile folder (atomically)."""
    tile_dir = Path(tile_dir)
    src = Path(fits_path)
    if not src.is_file():
        raise StepError("FAIL_BAD_IMAGE", f"{src}: no such file")
    digest = file_sha256(src)

    def body() -> tuple[dict[str, Path], dict[str, Any]]:
        dest = tile_dir / "raw" / "image.fits"
        with atomic_path(dest, suffix=".fits") as tmp:
            shutil.copyfile(src, tmp)
        return {"image": dest}, {"source": str(src)}

    return run_step(tile_dir, "acquire", {"file": {"sha256": digest}}, {}, acquire_file, body)

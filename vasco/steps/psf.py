"""Step ``psf``: SExtractor pass 1 then PSFEx, the tile's PSF model ``work/pass1.psf``.

The work is the external tools': there is no pure part.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from vasco.config import VascoConfig
from vasco.extraction import sextractor
from vasco.records import Output
from vasco.steps.base import run_step
from vasco.steps.tools import tool_step

__all__ = ["psf"]


def psf(tile_dir: Path, image: Output, cfg: VascoConfig) -> dict[str, Any]:
    """SExtractor pass 1 then PSFEx: the tile's PSF model, ``work/pass1.psf``.

    Pass 1's catalogue (detections with their VIGNET cut-outs, PSFEx's only
    input and by far the tile's biggest intermediate file) is written to a
    private temporary folder and removed once PSFEx has read it.  The step
    info has the PSF star count, pass 1's detection count and each tool's
    time (``pass1_s``, ``psfex_s``).
    """
    tile_dir = Path(tile_dir)
    out = tile_dir / "work" / "pass1.psf"

    def body() -> tuple[dict[str, Path], dict[str, Any]]:
        out.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".pass1.", dir=out.parent) as tdir:
            t0 = time.perf_counter()
            cat = tool_step(
                lambda: sextractor.run_pass1(Path(image["path"]), Path(tdir) / "pass1.ldac", cfg.extraction)
            )
            t1 = time.perf_counter()
            path = tool_step(lambda: sextractor.run_psfex(cat, out, cfg.extraction))
            t2 = time.perf_counter()
            n_pass1 = sextractor.ldac_rows(cat)
        info = {
            "psf_stars": sextractor.psf_star_count(path),
            "pass1_detections": n_pass1,
            "pass1_s": round(t1 - t0, 4),
            "psfex_s": round(t2 - t1, 4),
        }
        return {"psf": path}, info

    return run_step(tile_dir, "psf", {"image": image}, cfg.extraction.model_dump(mode="json"), psf, body)

"""Step ``pass2``: SExtractor pass 2, the measurements the cuts use, ``work/pass2.ldac``.

The work is the external tool's: there is no pure part.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vasco.config import VascoConfig
from vasco.extraction import sextractor
from vasco.records import Output
from vasco.steps.base import run_step
from vasco.steps.tools import tool_step

__all__ = ["pass2"]


def pass2(tile_dir: Path, image: Output, psf: Output, cfg: VascoConfig) -> dict[str, Any]:
    """SExtractor pass 2, the measurements the cuts use, into ``work/pass2.ldac``.

    With ``extraction.psf_fit_scope = 'needed'`` (the default) it leaves out
    the PSF-model columns (SPREAD_MODEL, MAG_PSF ...) and does not depend on
    the PSF model: :func:`vasco.steps.spread_model.spread_model` measures them
    later for the detections that reach the SPREAD_MODEL cut.  With ``'all'``
    it measures them for every detection.  Both give the same values, cut
    decisions and candidates.
    """
    tile_dir = Path(tile_dir)
    scope = cfg.extraction.psf_fit_scope
    inputs: dict[str, Output] = {"image": image}
    if scope == "all":
        inputs["psf"] = psf

    def body() -> tuple[dict[str, Path], dict[str, Any]]:
        out = tile_dir / "work" / "pass2.ldac"
        psf_path = Path(psf["path"]) if scope == "all" else None
        path = tool_step(lambda: sextractor.run_pass2(Path(image["path"]), psf_path, out, cfg.extraction))
        return {"catalog": path}, {"psf_fit_scope": scope}

    return run_step(tile_dir, "pass2", inputs, cfg.extraction.model_dump(mode="json"), pass2, body)

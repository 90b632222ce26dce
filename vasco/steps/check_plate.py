"""Step ``check_plate``: is the cutout POSS-I E; which plate, which of its dates, which epoch."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from astropy.io import fits

from vasco.config import PlatesConfig, VascoConfig
from vasco.io import write_json_atomic
from vasco.plates.header import check_poss1e, plate_dates
from vasco.records import Output
from vasco.steps.base import StepError, run_step
from vasco.steps.header import read_header

__all__ = ["run", "check_plate"]


def run(header: fits.Header, cfg: PlatesConfig, verdicts: Mapping[str, Mapping[str, Any]] | None) -> dict[str, Any]:
    """The plate of a cutout's header: ``ok``, ``reason``, ``region``, ``label``, dates and epochs.

    Parameters
    ----------
    header : astropy.io.fits.Header
        The cutout's primary header.
    cfg : PlatesConfig
        ``plates`` settings (``date_source``, ``conflict_hours``).
    verdicts : mapping or None
        Region -> entry of ``epochs.json`` (used with ``date_source = 'epochs'``).

    Returns
    -------
    dict
        What ``work/plate.json`` holds (see :func:`check_plate`).

    Raises
    ------
    ValueError
        When an accepted plate's dates cannot be read.
    """
    res = check_poss1e(header)
    plate: dict[str, Any] = {
        "ok": res.ok,
        "reason": res.reason,
        "region": res.region,
        "label": res.label,
        "date_obs": res.date_obs,
        "epoch": res.epoch,
    }
    if res.ok:
        dates = plate_dates(
            header, res.region, cfg.date_source, (verdicts or {}).get(str(res.region)), cfg.conflict_hours
        )
        plate.update(dates.as_dict())
    return plate


def check_plate(
    tile_dir: Path,
    image: Output,
    cfg: VascoConfig | None = None,
    verdicts: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """Check the cutout is POSS-I E; record the plate, both its dates, the one used, and its epochs.

    A rejection is a result, not an error: ``info['ok']`` is False and
    ``info['reason']`` holds the token (e.g. ``REJECT_NON_POSS``).  An
    accepted plate gets the keys of :meth:`vasco.plates.header.PlateDates.as_dict`
    (``date_obs_header``, ``date_obs_table``, ``date_obs`` and ``date_rule``
    by ``plates.date_source``, ``date_conflict_hours``, ``exposure_min``,
    ``epoch`` and ``epoch_mid``).  The later steps take the plate epoch
    (proper motions, SkyBoT) from ``epoch_mid``.  ``verdicts`` (region ->
    entry of ``epochs.json``) is used with ``plates.date_source = 'epochs'``.
    Writes ``work/plate.json``.
    """
    tile_dir = Path(tile_dir)
    pc = (cfg or VascoConfig()).plates
    use = {k: dict(v) for k, v in sorted((verdicts or {}).items())} if pc.date_source == "epochs" else None
    params = {"date_source": pc.date_source, "conflict_hours": pc.conflict_hours, "verdicts": use}

    def body() -> tuple[dict[str, Path], dict[str, Any]]:
        header = read_header(Path(image["path"]))
        try:
            plate = run(header, pc, use)
        except ValueError as exc:
            raise StepError("FAIL_BAD_IMAGE", f"{Path(image['path']).name}: {exc}") from exc
        path = write_json_atomic(tile_dir / "work" / "plate.json", plate)
        return {"plate": path}, plate

    return run_step(tile_dir, "check_plate", {"image": image}, params, check_plate, body)

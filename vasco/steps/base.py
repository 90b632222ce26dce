"""What every step shell shares: the step error, the idempotent runner and small readers.

A step shell reads the files named by its input manifests
(``{"path": ..., "sha256": ...}``), calls its module's pure ``run``, writes
the outputs atomically inside the tile folder and records them through
:func:`run_step`: with the same inputs, parameters and code it returns the
recorded outputs without running again.  Steps take and return small
manifests, never big arrays, which is what the Prefect tasks in ``tasks/``
pass around.

Every step imports this module, so its own imports stay few (the records, the
code fingerprint): whatever it imports is part of every step's code key.
Helpers that need more live beside it (:mod:`vasco.steps.header`,
:mod:`vasco.steps.tools`).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from vasco.codehash import code_fingerprint
from vasco.io import read_json
from vasco.records import Output, load_record, save_record, step_key

__all__ = ["StepError", "StepBody", "run_step", "steps_that_ran", "plate_epoch_mid"]

#: What a step's work returns: its output files by name, and its info for the record.
StepBody = Callable[[], tuple[dict[str, Path], dict[str, Any]]]


#: Where :func:`run_step` notes the steps whose work it did (see :func:`steps_that_ran`).
_RAN: ContextVar[list[str] | None] = ContextVar("vasco_steps_ran", default=None)


@contextlib.contextmanager
def steps_that_ran() -> Iterator[list[str]]:
    """Collect the names of the steps whose work ran (not found done) inside the block.

    The list fills as :func:`run_step` runs step bodies in this context (the
    calling thread, or code it runs with a copy of its context).  An empty
    list at the end means every step was found already done.
    """
    ran: list[str] = []
    token = _RAN.set(ran)
    try:
        yield ran
    finally:
        _RAN.reset(token)


class StepError(RuntimeError):
    """A step failure with a short reason token for tile.json (e.g. ``FAIL_PSFEX``)."""

    def __init__(self, reason: str, message: str):
        super().__init__(f"{reason}: {message}")
        self.reason = reason


def run_step(
    tile_dir: Path,
    step: str,
    inputs: Mapping[str, Output],
    params: Mapping[str, Any],
    code: Callable[..., Any],
    body: StepBody,
) -> dict[str, Any]:
    """Run ``body`` unless a record of the step with the same key is on disk.

    Parameters
    ----------
    tile_dir : Path
        The tile folder.
    step : str
        The step's name (its record is ``steps/<step>.json``).
    inputs : mapping
        Input manifests by name; their SHA-256 are part of the key.
    params : mapping
        The parameters the step's results depend on (JSON-able).
    code : callable
        The step's shell function; its code fingerprint
        (:func:`vasco.codehash.code_fingerprint`: the modules its work depends
        on, shipped tool configuration, tool versions) is part of the key.
    body : callable
        Does the work; returns the output paths and the step info.

    Returns
    -------
    dict
        The step record with absolute output paths (:func:`vasco.records.save_record`).
    """
    fingerprint = code_fingerprint(code)
    key = step_key(step, {k: v["sha256"] for k, v in inputs.items()}, params, fingerprint.digest)
    done = load_record(tile_dir, step, key)
    if done is not None:
        return done
    ran = _RAN.get()
    if ran is not None:
        ran.append(step)
    t0 = time.perf_counter()
    outputs, info = body()
    return save_record(
        tile_dir, step, key, outputs, info, elapsed_s=time.perf_counter() - t0, code=fingerprint.summary()
    )


def plate_epoch_mid(plate: Output) -> float:
    """The mid-exposure epoch (decimal Julian year) of a tile's ``plate.json`` (its ``epoch`` if older)."""
    rec = read_json(Path(plate["path"]))
    value = rec.get("epoch_mid")
    return float(value if value is not None else rec["epoch"])

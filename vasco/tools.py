"""Versions of the external programs VASCO runs (SExtractor, PSFEx), asked once per process.

One reader for the two places that record them: a tile's provenance
(:func:`vasco.extraction.sextractor.tool_versions`) and the code part of a
step's key (:mod:`vasco.codehash`).  Kept apart from :mod:`vasco.extraction`
so that hashing a step's code does not make every step depend on the
extraction package.
"""

from __future__ import annotations

import functools
import re
import subprocess

__all__ = ["tool_version"]


@functools.cache
def tool_version(executable: str) -> str | None:
    """The version an executable reports with ``--version``, asked once per process and path.

    Parameters
    ----------
    executable : str
        Path of the program (resolve symlinks first, so one binary is asked once).

    Returns
    -------
    str or None
        The word after "version" in its answer (``"2.25.0"`` for Debian's
        ``source-extractor``), else the answer's first line; None when it
        cannot be run, says nothing, or does not answer within 5 s.
    """
    try:
        proc = subprocess.run([executable, "--version"], capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    text = (proc.stdout + "\n" + proc.stderr).strip()
    m = re.search(r"version\s+(\S+)", text, flags=re.IGNORECASE)
    return m.group(1) if m else (text.splitlines()[0].strip() if text else None)

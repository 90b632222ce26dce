"""Tile positions: seeded sampling on the sphere, positions files, tile ids."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from vasco.io import atomic_path

__all__ = ["TilePosition", "sample_positions", "read_positions", "write_positions", "tile_id"]

_TILE_ID_RE = re.compile(r"^t\d{3}\.\d{4}[+-]\d{2}\.\d{4}$")


@dataclass(frozen=True)
class TilePosition:
    """A tile centre (ICRS degrees, float64) and its id."""

    ra: float
    dec: float

    def __post_init__(self) -> None:
        validate_position(self.ra, self.dec)

    @property
    def tile_id(self) -> str:
        return tile_id(self.ra, self.dec)


def validate_position(ra: float, dec: float, where: str = "position") -> None:
    """Raise ValueError naming the bad coordinate."""
    if not (isinstance(ra, (int, float, np.floating)) and math.isfinite(ra) and 0.0 <= ra < 360.0):
        raise ValueError(f"{where}: RA {ra!r} is outside [0, 360) degrees")
    if not (isinstance(dec, (int, float, np.floating)) and math.isfinite(dec) and -90.0 <= dec <= 90.0):
        raise ValueError(f"{where}: Dec {dec!r} is outside [-90, 90] degrees")


def tile_id(ra: float, dec: float) -> str:
    """Stable tile id from a validated centre, e.g. ``t132.8250+11.8000``.

    Ids are built from numbers only, so they are safe as folder names.
    """
    validate_position(ra, dec)
    ra_r = round(float(ra), 4) % 360.0
    dec_r = round(float(dec), 4)
    # '+0.0000' for a tiny negative Dec that rounds to zero.
    if dec_r == 0.0:
        dec_r = 0.0
    text = f"t{ra_r:08.4f}{dec_r:+08.4f}"
    assert _TILE_ID_RE.match(text), text
    return text


def sample_positions(n: int, seed: int, dec_min: float = -30.0, dec_max: float = 90.0) -> list[TilePosition]:
    """``n`` positions uniform on the sphere between ``dec_min`` and ``dec_max``.

    Uniform in RA and in sin(Dec) (not in Dec), from ``numpy.random.default_rng(seed)``.
    The same (n, seed) always gives the same list, and the first ``k`` positions
    of a longer list are those of the shorter one.
    """
    if n < 1:
        raise ValueError(f"tiles: {n} must be at least 1")
    if not -90.0 <= dec_min < dec_max <= 90.0:
        raise ValueError(f"dec_min {dec_min} / dec_max {dec_max}: need -90 <= dec_min < dec_max <= 90")
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x7A5C0]))
    # Draw pairs one at a time from one stream so a longer list extends a shorter one.
    u = rng.random((n, 2))
    ra = 360.0 * u[:, 0]
    s_lo, s_hi = math.sin(math.radians(dec_min)), math.sin(math.radians(dec_max))
    dec = np.degrees(np.arcsin(s_lo + (s_hi - s_lo) * u[:, 1]))
    return [TilePosition(float(r), float(d)) for r, d in zip(ra, dec, strict=True)]


def read_positions(path: Path) -> list[TilePosition]:
    """Tile centres from a CSV file with ``ra`` and ``dec`` columns (degrees).

    Raises ValueError naming the file, the row and the problem.
    """
    path = Path(path)
    try:
        table = pd.read_csv(path, comment="#")
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ValueError(f"positions file {path}: cannot be read as CSV ({exc})") from exc
    cols = {c.strip().lower(): c for c in table.columns}
    if "ra" not in cols or "dec" not in cols:
        raise ValueError(f"positions file {path}: needs columns 'ra' and 'dec', found {list(table.columns)}")
    out: list[TilePosition] = []
    for i, (ra, dec) in enumerate(zip(table[cols["ra"]], table[cols["dec"]], strict=True), start=2):
        try:
            ra_f, dec_f = float(ra), float(dec)
        except (TypeError, ValueError):
            raise ValueError(f"positions file {path}, line {i}: ra={ra!r} dec={dec!r} are not numbers") from None
        validate_position(ra_f, dec_f, where=f"positions file {path}, line {i}")
        out.append(TilePosition(ra_f, dec_f))
    if not out:
        raise ValueError(f"positions file {path}: has no rows")
    return out


def write_positions(out: Path, positions: list[TilePosition]) -> None:
    """Write ``out/positions.csv`` atomically: ``tile_id``, ``ra``, ``dec`` (10 decimals; :func:`read_positions`).

    Parameters
    ----------
    out : Path
        The survey folder.
    positions : list of TilePosition
        The tile centres, in order.
    """
    table = pd.DataFrame(
        {
            "tile_id": [p.tile_id for p in positions],
            "ra": [p.ra for p in positions],
            "dec": [p.dec for p in positions],
        }
    )
    with atomic_path(out / "positions.csv", suffix=".csv") as tmp:
        table.to_csv(tmp, index=False, float_format="%.10f")

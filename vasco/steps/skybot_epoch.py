"""Step ``skybot_epoch``: the synthetic SkyBoT list asked at the tile's plate epoch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from vasco.io import write_parquet_atomic
from vasco.records import Output
from vasco.steps.base import plate_epoch_mid, run_step

__all__ = ["skybot_epoch"]


def skybot_epoch(tile_dir: Path, skybot: Output, plate: Output) -> dict[str, Any]:
    """The synthetic SkyBoT asked at the tile's plate epoch (mid-exposure of the date the tile uses).

    The synthetic sky writes its SkyBoT list at the plate's true date;
    asked at another date (a header a day off, ``plates.date_source``), the
    synthetic service answers with the asteroids where they are then
    (:func:`vasco.synthetic.archives.skybot_at`, the pure part), as the real
    one would, so a wrong date misses them on the synthetic sky too.  Writes
    ``catalogs/skybot_at_epoch.parquet``.
    """
    from vasco.plates.header import julian_date
    from vasco.synthetic.archives import skybot_at

    tile_dir = Path(tile_dir)

    def body() -> tuple[dict[str, Path], dict[str, Any]]:
        epoch_jd = julian_date(plate_epoch_mid(plate))
        table = skybot_at(pd.read_parquet(skybot["path"]), epoch_jd)
        path = write_parquet_atomic(tile_dir / "catalogs" / "skybot_at_epoch.parquet", table)
        return {"skybot": path}, {"epoch_jd": epoch_jd, "n_skybot": len(table)}

    return run_step(tile_dir, "skybot_epoch", {"skybot": skybot, "plate": plate}, {}, skybot_epoch, body)

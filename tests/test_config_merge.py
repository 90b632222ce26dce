"""vasco.config_merge: the configuration of ``vasco tile`` and the file-or-defaults base."""

from __future__ import annotations

from pathlib import Path

import pytest

from vasco.config import VascoConfig
from vasco.config_merge import read_config, tile_config


def test_read_config_without_a_file_is_the_defaults():
    assert read_config(None).model_dump() == VascoConfig().model_dump()


def test_read_config_reads_the_file(tmp_path: Path):
    path = tmp_path / "c.toml"
    path.write_text("[survey]\nseed = 42\n")
    assert read_config(str(path)).survey.seed == 42


def test_tile_config_uses_only_the_catalogues_given(tmp_path: Path):
    path = tmp_path / "c.toml"
    path.write_text("[survey]\nseed = 5\n")
    cfg = tile_config({"gaia": "g.csv"}, str(path))
    assert cfg.sky == "dss" and cfg.catalogs.source == "local"
    assert cfg.catalogs.local == {"gaia": "g.csv"}
    assert tuple(cfg.matching.catalogs) == ("gaia",)
    assert cfg.survey.seed == 5  # the file's values hold


def test_tile_config_refuses_a_bad_file(tmp_path: Path):
    path = tmp_path / "bad.json"
    path.write_text('{"cuts": {"no_such": 1}}')
    with pytest.raises(ValueError, match="cuts.no_such"):
        tile_config({"gaia": "g.csv"}, str(path))

import json

import pandas as pd
import pytest

from vasco.config import VascoConfig
from vasco.io import atomic_path, file_sha256, write_parquet_atomic
from vasco.records import load_record, save_record, step_key


def test_atomic_path_leaves_nothing_on_failure(tmp_path):
    final = tmp_path / "a.txt"
    with pytest.raises(RuntimeError):
        with atomic_path(final) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []
    with atomic_path(final) as tmp:
        tmp.write_text("whole")
    assert final.read_text() == "whole"
    assert list(tmp_path.iterdir()) == [final]


def test_parquet_is_byte_reproducible(tmp_path):
    df = pd.DataFrame({"ra": [1.0, 2.0], "n": [1, 2]})
    a = write_parquet_atomic(tmp_path / "a.parquet", df)
    b = write_parquet_atomic(tmp_path / "b.parquet", df)
    assert file_sha256(a) == file_sha256(b)


def test_step_record_round_trip_and_invalidation(tmp_path):
    out = tmp_path / "work" / "x.txt"
    out.parent.mkdir()
    out.write_text("result")
    key = step_key("s", {"in": "abc"}, {"p": 1}, "code1")
    rec = save_record(tmp_path, "s", key, {"x": out}, {"n": 3})
    assert rec["outputs"]["x"]["path"] == str(out)
    again = load_record(tmp_path, "s", key)
    assert again is not None and again["info"] == {"n": 3}
    # Another key (inputs, params or code changed) -> run again.
    assert load_record(tmp_path, "s", step_key("s", {"in": "abd"}, {"p": 1}, "code1")) is None
    # An output changed or gone -> run again.
    out.write_text("tampered")
    assert load_record(tmp_path, "s", key) is None
    out.unlink()
    assert load_record(tmp_path, "s", key) is None
    # A corrupt record counts as none.
    (tmp_path / "steps" / "s.json").write_text("{not json")
    assert load_record(tmp_path, "s", key) is None


def test_config_round_trip_and_hash(tmp_path):
    cfg = VascoConfig()
    path = cfg.write(tmp_path / "config.json")
    back = VascoConfig.read(path)
    assert back == cfg
    assert back.science_hash() == cfg.science_hash()
    # Defaults are the paper's.
    assert cfg.cuts.snr_win_min == 30 and cfg.cuts.spread_model_min == -0.002
    assert cfg.matching.radius_arcsec == 5.0 and cfg.extraction.detect_thresh == 5.0
    # The number of tiles does not change a tile's science; a cut does.
    more = VascoConfig.model_validate({**cfg.model_dump(), "survey": {**cfg.survey.model_dump(), "tiles": 99}})
    assert more.science_hash() == cfg.science_hash()
    other = VascoConfig.model_validate({**cfg.model_dump(), "cuts": {**cfg.cuts.model_dump(), "snr_win_min": 20}})
    assert other.science_hash() != cfg.science_hash()


def test_config_errors_name_the_parameter(tmp_path):
    bad = tmp_path / "c.json"
    bad.write_text(json.dumps({"cuts": {"snr_win_minimum": 3}}))
    with pytest.raises(ValueError, match="snr_win_minimum"):
        VascoConfig.read(bad)
    with pytest.raises(ValueError, match="cannot be read"):
        VascoConfig.read(tmp_path / "missing.json")
    (tmp_path / "j.json").write_text("{")
    with pytest.raises(ValueError, match="not valid JSON"):
        VascoConfig.read(tmp_path / "j.json")

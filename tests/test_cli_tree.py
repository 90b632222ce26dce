"""``vasco status``, ``clean``, ``reset`` and ``config show`` on a survey folder (no Prefect needed)."""

from __future__ import annotations

import json

import pytest

from flows.cli import main
from vasco.config import VascoConfig
from vasco.io import write_json_atomic
from vasco.outputs import PlateInfo, TileRecord, write_tile_record
from vasco.publish.merge import build_summary
from vasco.survey_tree import clean_survey, reset_tile, survey_status

TILES = {
    "t010.0000+10.0000": ("ok", None),
    "t020.0000+20.0000": ("failed", "FAIL_PSFEX"),
    "t030.0000+30.0000": ("rejected", "REJECT_NON_POSS"),
}


@pytest.fixture
def survey(tmp_path):
    out = tmp_path / "survey"
    (out).mkdir()
    (out / "positions.csv").write_text("ra,dec\n10,10\n20,20\n30,30\n40,40\n")
    for tid, (status, reason) in TILES.items():
        d = out / "tiles" / tid
        write_tile_record(
            d,
            TileRecord(
                tile_id=tid, centre=None, plate=PlateInfo(), status=status, reason=reason, funnel={}, config_hash="h"
            ),
        )
        write_json_atomic(d / "steps" / "psf.json", {"key": "k"})
        (d / "work").mkdir()
        (d / "work" / "pass2.ldac").write_bytes(b"x" * 1000)
        (d / "detections.parquet").write_bytes(b"keep")
    (out / ".vasco-cache" / "results").mkdir(parents=True)
    (out / ".vasco-cache" / "results" / "r").write_bytes(b"y" * 500)
    build_summary(out, [], {"candidates": 5}, "h")
    return out


def test_status_counts_lists_failures_and_not_run(survey, capsys):
    st = survey_status(survey)
    assert st.planned == 4 and st.by_status == {"ok": 1, "failed": 1, "rejected": 1}
    assert st.not_run == ["t040.0000+40.0000"] and st.candidates == 5
    assert st.failed == {"FAIL_PSFEX": ["t020.0000+20.0000"], "REJECT_NON_POSS": ["t030.0000+30.0000"]}
    assert main(["status", str(survey)]) == 0
    out = capsys.readouterr().out
    assert "4 planned, 3 with a result, 1 not run yet" in out and "FAIL_PSFEX: 1  t020.0000+20.0000" in out


def test_clean_keeps_catalogues_and_records(survey, capsys):
    paths, size = clean_survey(survey, dry_run=True)
    assert len(paths) == 4 and size == 3 * 1000 + 500 and all(p.exists() for p in paths)
    assert main(["clean", str(survey)]) == 0
    assert "removed 4 folders/files" in capsys.readouterr().out
    assert not list(survey.glob("tiles/*/work")) and not (survey / ".vasco-cache").exists()
    assert len(list(survey.glob("tiles/*/detections.parquet"))) == 3
    assert len(list(survey.glob("tiles/*/steps/psf.json"))) == 3 and (survey / "summary.json").exists()


def test_reset_a_step_or_a_tile(survey, capsys):
    tid = "t010.0000+10.0000"
    removed = reset_tile(survey, tid, "psf")
    assert [p.name for p in removed] == ["psf.json", "tile.json"]
    assert (survey / "tiles" / tid / "detections.parquet").exists()
    with pytest.raises(ValueError, match="no step 'psf'"):
        reset_tile(survey, tid, "psf")
    assert main(["reset", str(survey), "--tile", tid]) == 0
    assert not (survey / "tiles" / tid).exists()
    assert main(["reset", str(survey), "--tile", "../etc"]) == 2
    assert "no tile '../etc'" in capsys.readouterr().err


def test_not_a_survey_folder_is_named(tmp_path, capsys):
    assert main(["status", str(tmp_path)]) == 2
    assert "not a survey folder" in capsys.readouterr().err


@pytest.mark.parametrize(
    "name,text",
    [
        ("c.toml", "[cuts]\nsnr_win_min = 25.0\n[survey]\nworkers = 1\n"),
        ("c.yaml", "cuts:\n  snr_win_min: 25.0\nsurvey:\n  workers: 1\n"),
        ("c.json", json.dumps({"cuts": {"snr_win_min": 25.0}, "survey": {"workers": 1}})),
    ],
)
def test_config_files_in_three_formats_and_config_show(name, text, tmp_path, capsys):
    path = tmp_path / name
    path.write_text(text)
    cfg = VascoConfig.read(path)
    assert cfg.cuts.snr_win_min == 25.0 and cfg.survey.workers == 1 and cfg.cuts.fwhm_max_px == 7.0
    assert main(["config", "show", "--config", str(path)]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["cuts"]["snr_win_min"] == 25.0 and shown["cuts"]["spread_model_min"] == -0.002


def test_bad_config_formats_are_named(tmp_path, capsys):
    (tmp_path / "bad.toml").write_text("[cuts\n")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    assert main(["config", "show", "--config", str(tmp_path / "bad.toml")]) == 2
    assert "not valid TOML" in capsys.readouterr().err
    assert main(["config", "show", "--config", str(tmp_path / "list.yaml")]) == 2
    assert "must hold a mapping" in capsys.readouterr().err

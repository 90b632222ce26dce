"""One precedence for every way a survey starts: model defaults < config file < explicit options.

Issue 15, part 2: ``vasco survey --config run.toml`` with ``tiles = 500`` in
the file used to run 4 tiles, because the flow's own defaults were put over
the file.  These tests pin the order for the library function, the command
line (parsed exactly as ``flows.cli.survey_main`` parses it), the flow itself and the
deployments declared in ``prefect.yaml``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from flows.cli import config_from_args, survey_parser
from vasco.config import VascoConfig
from vasco.config_merge import build_config

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def run_toml(tmp_path: Path) -> Path:
    path = tmp_path / "run.toml"
    path.write_text('sky = "dss"\n\n[survey]\ntiles = 500\nseed = 7\nsize_arcmin = 20.0\nworkers = 3\n')
    return path


def test_file_values_hold_when_no_option_is_given(run_toml):
    cfg = build_config(config_file=str(run_toml))
    assert (cfg.sky, cfg.survey.tiles, cfg.survey.seed, cfg.survey.size_arcmin, cfg.survey.workers) == (
        "dss",
        500,
        7,
        20.0,
        3,
    )


def test_explicit_option_wins_over_the_file(run_toml):
    cfg = build_config(tiles=9, sky="synthetic", config_file=str(run_toml))
    assert cfg.survey.tiles == 9 and cfg.sky == "synthetic"
    # What was not given still comes from the file.
    assert cfg.survey.seed == 7 and cfg.survey.workers == 3


def test_without_a_file_the_model_defaults_apply():
    defaults = VascoConfig()
    cfg = build_config()
    assert cfg.model_dump() == defaults.model_dump()


def test_command_line_keeps_the_files_values(run_toml, tmp_path):
    args = survey_parser().parse_args(["--config", str(run_toml), "--out", str(tmp_path / "o")])
    cfg = config_from_args(args)
    assert cfg.survey.tiles == 500 and cfg.sky == "dss" and cfg.survey.size_arcmin == 20.0


def test_command_line_option_wins(run_toml, tmp_path):
    args = survey_parser().parse_args(
        ["--config", str(run_toml), "--tiles", "2", "--workers", "1", "--out", str(tmp_path / "o")]
    )
    cfg = config_from_args(args)
    assert (cfg.survey.tiles, cfg.survey.workers, cfg.survey.seed) == (2, 1, 7)


def test_help_names_the_model_default_not_a_copy():
    text = survey_parser().format_help()
    assert f"else {VascoConfig().survey.tiles}" in text.replace("\n", " ").replace("  ", " ")


def test_flow_signature_restates_no_default():
    """The flow's parameters for configuration values default to None (not given)."""
    import inspect

    from flows.survey import survey_flow

    sig = inspect.signature(survey_flow.fn)
    for name in ("sky", "tiles", "seed", "size_arcmin", "workers"):
        assert sig.parameters[name].default is None, name


@pytest.mark.parametrize("prefect_file", ["prefect.yaml", "deployments/prefect-docker.yaml"])
def test_deployments_restate_no_default(prefect_file):
    """A deployment parameter is an explicit option: one equal to a model default would hide a config file."""
    doc = yaml.safe_load((REPO / prefect_file).read_text())
    defaults = VascoConfig()
    model = {"sky": defaults.sky, **{k: getattr(defaults.survey, k) for k in ("tiles", "seed", "size_arcmin")}}
    for dep in doc["deployments"]:
        params = dep.get("parameters") or {}
        for name, value in model.items():
            assert params.get(name) != value, f"{prefect_file}: {dep['name']} restates {name}={value}"
        if "config_file" in params:
            # A configuration file named by a deployment exists and is valid.
            VascoConfig.read(REPO / params["config_file"])


def test_nightly_deployment_runs_the_full_survey_from_its_file():
    doc = yaml.safe_load((REPO / "prefect.yaml").read_text())
    nightly = next(d for d in doc["deployments"] if d["name"] == "survey-nightly")
    cfg = build_config(config_file=str(REPO / nightly["parameters"]["config_file"]))
    assert cfg.sky == "dss" and cfg.survey.tiles == 124_000


def test_flow_run_with_a_config_file_uses_its_tiles(tmp_path, harness):
    """The flow itself (as a deployment runs it: parameters only for what is given)."""
    from flows.survey import survey_flow

    conf = tmp_path / "run.json"
    conf.write_text(json.dumps({"survey": {"tiles": 3, "seed": 5}}))
    out = tmp_path / "s"
    summary = survey_flow(out=str(out), config_file=str(conf), dry_run=True)
    assert summary["tiles"]["planned"] == 3
    written = VascoConfig.read(out / "config.json")
    assert written.survey.tiles == 3 and written.survey.seed == 5
    again = survey_flow(out=str(tmp_path / "s2"), config_file=str(conf), tiles=2, dry_run=True)
    assert again["tiles"]["planned"] == 2

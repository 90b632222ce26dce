"""A survey whose catalogues come from XMatch checks its table names before any work."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from servers import XMatchStandIn

# Imported here, not under capsys: Prefect's console log handler keeps the stderr it first sees.
from flows.cli import survey_main
from flows.survey import survey_flow
from vasco.config import VascoConfig
from vasco.sources.config import XMATCH_DEFAULT_TABLES
from vasco.sources.xmatch import XMATCH_URL_ENV, check_configured_tables

GAIA = pd.DataFrame({"Source": [1], "RA_ICRS": [10.0], "DE_ICRS": [20.0]})


def _server(*extra: str) -> XMatchStandIn:
    return XMatchStandIn({"vizier:I/350/gaiaedr3": (GAIA, "RA_ICRS", "DE_ICRS")}, extra_names=extra)


def test_defaults_are_the_public_names() -> None:
    cfg = VascoConfig()
    assert cfg.catalogs.xmatch_tables == {"gaia": "vizier:I/350/gaiaedr3", "ps1": "vizier:II/349/ps1"}
    # A partial mapping keeps the other default; a bare id gets 'vizier:'.
    cfg = VascoConfig.model_validate({"catalogs": {"xmatch_tables": {"ps1": "II/389/ps1_dr2"}}})
    assert cfg.catalogs.xmatch_tables == {"gaia": XMATCH_DEFAULT_TABLES["gaia"], "ps1": "vizier:II/389/ps1_dr2"}
    with pytest.raises(ValueError, match="empty table name"):
        VascoConfig.model_validate({"catalogs": {"xmatch_tables": {"ps1": "vizier:"}}})
    # The tables are science when XMatch is used: another PS1 table is another configuration hash;
    # otherwise they change nothing (and the hash of runs without XMatch stays what it was).
    xm = {"sky": "dss", "catalogs": {"source": "xmatch"}}
    other = {"sky": "dss", "catalogs": {"source": "xmatch", "xmatch_tables": {"ps1": "II/389/ps1_dr2"}}}
    assert VascoConfig.model_validate(other).science_hash() != VascoConfig.model_validate(xm).science_hash()
    assert cfg.science_hash() == VascoConfig().science_hash()


def test_check_configured_tables_only_for_xmatch(monkeypatch: pytest.MonkeyPatch) -> None:
    with _server("II/349/ps1") as server:
        monkeypatch.setenv(XMATCH_URL_ENV, server.sync_url)
        assert check_configured_tables(VascoConfig()) is None  # synthetic catalogues: nothing asked
        assert server.table_list_requests == 0
        cfg = VascoConfig.model_validate({"sky": "dss", "catalogs": {"source": "xmatch"}})
        assert "II/349/ps1" in check_configured_tables(cfg)
        bad = VascoConfig.model_validate(
            {"sky": "dss", "catalogs": {"source": "xmatch", "xmatch_tables": {"ps1": "II/389/ps1_dr2"}}}
        )
        with pytest.raises(ValueError, match=r"catalogs.xmatch_tables.ps1: XMatch table 'vizier:II/389/ps1_dr2'"):
            check_configured_tables(bad)
        # PS1 not asked (matching.catalogs = gaia only): its table is not checked.
        only_gaia = bad.model_copy(update={"matching": bad.matching.model_copy(update={"catalogs": ("gaia",)})})
        assert check_configured_tables(only_gaia) is not None
        assert server.jobs == []


def test_service_without_list_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    with _server() as server:
        monkeypatch.setenv(XMATCH_URL_ENV, server.sync_url + "/nowhere")
        cfg = VascoConfig.model_validate({"sky": "dss", "catalogs": {"source": "xmatch"}})
        with pytest.raises(ValueError, match="cannot read the table list of .*/nowhere"):
            check_configured_tables(cfg)


def test_cli_refuses_unknown_table_before_any_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    with _server("II/246/out", "II/349/ps1c") as server:  # no II/349/ps1
        monkeypatch.setenv(XMATCH_URL_ENV, server.sync_url)
        code = survey_main(["--out", str(out), "--sky", "dss", "--catalogs", "xmatch", "--tiles", "1"])
        assert server.jobs == [] and server.table_list_requests == 1
    err = capsys.readouterr().err
    assert code == 2
    assert "catalogs.xmatch_tables.ps1" in err and "'vizier:II/349/ps1'" in err and "vizier:II/349/ps1c" in err
    assert not (out / "tiles").exists() and not (out / "config.json").exists()


def test_survey_flow_refuses_unknown_table_before_any_tile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, harness: None
) -> None:
    out = tmp_path / "run"
    with _server("II/349/ps1") as server:
        monkeypatch.setenv(XMATCH_URL_ENV, server.sync_url)
        cfg = tmp_path / "c.json"
        cfg.write_text('{"catalogs": {"xmatch_tables": {"gaia": "vizier:I/355/gaiadr3"}}}')
        with pytest.raises(ValueError, match="catalogs.xmatch_tables.gaia: XMatch table 'vizier:I/355/gaiadr3'"):
            survey_flow(out=str(out), sky="dss", catalogs="xmatch", tiles=1, config_file=str(cfg))
        assert server.jobs == []
    assert not (out / "tiles").exists() and not (out / "config.json").exists()

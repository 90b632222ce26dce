"""Provenance: what each tile asked of which service, when, and with which tools; summed per survey."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from servers import VizierStandIn, XMatchStandIn

from vasco.config import VascoConfig
from vasco.io import file_sha256, write_parquet_atomic
from vasco.publish.merge import build_summary
from vasco.sources.provenance import query_entry, summarize_provenance, tile_provenance, utc_now
from vasco.sources.vizier import VIZIER_URL_ENV
from vasco.sources.xmatch import XMATCH_URL_ENV
from vasco.steps.catalogs import catalogs, catalogs_xmatch

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def _stars(n: int, ra0: float, dec0: float, r: float, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rr = r * np.sqrt(rng.uniform(0, 1, n))
    t = rng.uniform(0, 2 * np.pi, n)
    dec = dec0 + rr * np.cos(t)
    ra = ra0 + rr * np.sin(t) / np.cos(np.radians(dec))
    return pd.DataFrame({"ra": ra, "dec": dec, "id": 10**15 + np.arange(n, dtype=np.int64)})


def _gaia(stars: pd.DataFrame) -> pd.DataFrame:
    n = len(stars)
    return pd.DataFrame(
        {
            "RA_ICRS": stars["ra"],
            "DE_ICRS": stars["dec"],
            "pmRA": np.zeros(n),
            "pmDE": np.zeros(n),
            "Plx": np.ones(n),
            "Gmag": np.full(n, 17.0),
            "Source": stars["id"],
            "Epoch": np.full(n, 2016.0),
        }
    )


def _ps1(stars: pd.DataFrame) -> pd.DataFrame:
    # As VizieR II/349/ps1 answers: Epoch is the mean epoch as an MJD.
    n = len(stars)
    return pd.DataFrame(
        {
            "RAJ2000": stars["ra"],
            "DEJ2000": stars["dec"],
            "objID": stars["id"] + 7,
            "Qual": np.full(n, 52),
            "Epoch": np.full(n, 55761.365),
            "gmag": np.full(n, 18.0),
            "rmag": np.full(n, 17.5),
            "imag": np.full(n, 17.2),
        }
    )


def test_tile_provenance_marks_reused_answers_cached() -> None:
    early = query_entry(
        "vizier", "https://vizier.example", ["I/350/gaiaedr3"], "2026-01-01T00:00:00.000Z", 12, requests=3
    )
    start = utc_now()
    assert ISO.match(start)
    late = query_entry("xmatch", "https://xm.example/sync", ["vizier:II/349/ps1"], utc_now(), 5, requests=1)
    prov = tile_provenance([{"queries": [early]}, None, {"queries": [late]}, {}], start, {"psfex": "3.21.1"})
    assert [q["cached"] for q in prov["queries"]] == [True, False]
    assert prov["services"] == ["vizier", "xmatch"] and prov["tools"] == {"psfex": "3.21.1"}
    assert prov["queries"][0]["tables"] == ["I/350/gaiaedr3"] and prov["queries"][0]["rows"] == 12


def test_summary_sums_services_tables_times_and_tools(tmp_path: Path) -> None:
    def q(service: str, table: str, t: str, rows: int, requests: int | None = None, cached: bool = False) -> dict:
        return {**query_entry(service, f"https://{service}.example", [table], t, rows, requests), "cached": cached}

    recs = [
        {
            "tile_id": "a",
            "status": "ok",
            "funnel": {"detections": 1},
            "provenance": {
                "queries": [
                    q("vizier", "I/350/gaiaedr3", "2026-01-02T00:00:00.000Z", 10, 2),
                    q("dss", "poss1_red", "2026-01-01T00:00:00.000Z", 0),
                ],
                "services": ["dss", "vizier"],
                "tools": {"psfex": "3.21.1", "source-extractor": "2.25.0"},
            },
        },
        {
            "tile_id": "b",
            "status": "failed",
            "reason": "FAIL_X",
            "funnel": {},
            "provenance": {
                "queries": [q("vizier", "II/389/ps1_dr2", "2026-01-03T00:00:00.000Z", 4, cached=True)],
                "services": ["vizier"],
                "tools": {"psfex": "3.22.0", "source-extractor": None},
            },
        },
        {"tile_id": "c", "status": "missing"},
    ]
    summary = build_summary(tmp_path, recs, {"detections": 1, "candidates": 0}, "h").to_dict()
    prov = summary["provenance"]
    assert prov["tiles"] == 2
    viz = prov["services"]["vizier"]
    assert viz["tables"] == ["I/350/gaiaedr3", "II/389/ps1_dr2"] and viz["urls"] == ["https://vizier.example"]
    assert (viz["queries"], viz["requests"], viz["rows"], viz["cached"], viz["fresh"]) == (2, 3, 14, 1, 1)
    assert (viz["first_query"], viz["last_query"]) == ("2026-01-02T00:00:00.000Z", "2026-01-03T00:00:00.000Z")
    assert prov["services"]["dss"]["queries"] == 1
    assert prov["tools"] == {"psfex": ["3.21.1", "3.22.0"], "source-extractor": ["2.25.0"]}
    assert summarize_provenance([{"status": "ok"}]) == {"tiles": 0, "services": {}, "tools": {}}
    assert (tmp_path / "summary.json").read_text().count('"provenance"') == 1


def test_vizier_catalogs_step_records_its_queries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stars = _stars(300, 150.0, 20.0, 0.45, seed=1)
    cfg = VascoConfig.model_validate({"sky": "dss", "catalogs": {"source": "vizier"}})
    with VizierStandIn(
        {"I/350/gaiaedr3": (_gaia(stars), "RA_ICRS", "DE_ICRS"), "II/389/ps1_dr2": (_ps1(stars), "RAJ2000", "DEJ2000")}
    ) as server:
        monkeypatch.setenv(VIZIER_URL_ENV, server.url)
        before = utc_now()
        got = catalogs(tmp_path, 150.0, 20.0, cfg)
        n_requests = len(server.seen)
        again = catalogs(tmp_path, 150.0, 20.0, cfg)  # recorded step: not asked again
        assert len(server.seen) == n_requests
    queries = got["info"]["queries"]
    assert [q["tables"] for q in queries] == [["I/350/gaiaedr3"], ["II/389/ps1_dr2"]]
    assert all(q["service"] == "vizier" and q["url"] == server.url for q in queries)
    assert [q["rows"] for q in queries] == [got["info"]["n_gaia"], got["info"]["n_ps1"]]
    assert sum(q["requests"] for q in queries) == n_requests
    assert all(ISO.match(q["query_time"]) and q["query_time"] >= before for q in queries)
    # Run again later: the same queries, now marked as answers reused.
    prov = tile_provenance([again["info"]], utc_now(), {})
    assert [q["query_time"] for q in prov["queries"]] == [q["query_time"] for q in queries]
    assert all(q["cached"] for q in prov["queries"])


def test_xmatch_catalogs_step_records_its_queries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stars = _stars(200, 150.0, 20.0, 0.3, seed=2)
    det = pd.DataFrame(
        {
            "NUMBER": np.arange(1, 61, dtype=np.int64),
            "ra": stars["ra"][:60].to_numpy() + 1e-5,
            "dec": stars["dec"][:60].to_numpy(),
        }
    )
    path = write_parquet_atomic(tmp_path / "work" / "measured.parquet", det)
    measured = {"path": str(path), "sha256": file_sha256(path)}
    cfg = VascoConfig.model_validate({"sky": "dss", "catalogs": {"source": "xmatch"}})
    with XMatchStandIn(
        {
            "vizier:I/350/gaiaedr3": (_gaia(stars), "RA_ICRS", "DE_ICRS"),
            "vizier:II/349/ps1": (_ps1(stars), "RAJ2000", "DEJ2000"),
        }
    ) as server:
        monkeypatch.setenv(XMATCH_URL_ENV, server.sync_url)
        got = catalogs_xmatch(tmp_path, measured, 20.0, cfg)
        assert [j["fields"]["cat2"] for j in server.jobs] == ["vizier:I/350/gaiaedr3", "vizier:II/349/ps1"]
    queries = got["info"]["queries"]
    assert [q["tables"] for q in queries] == [["vizier:I/350/gaiaedr3"], ["vizier:II/349/ps1"]]
    assert all(q["service"] == "xmatch" and q["url"] == server.sync_url and q["requests"] == 1 for q in queries)
    assert all(q["rows"] >= 60 for q in queries)  # every detection sits on a star: at least one pair each
    # The PS1 rows XMatch returned keep their MJD epoch; matching reads it as 2011.545 (see test_matching).
    ps1 = pd.read_parquet(got["outputs"]["ps1"]["path"])
    assert (ps1["Epoch"] == 55761.365).all()


@pytest.mark.skipif(shutil.which("psfex") is None, reason="PSFEx is not installed")
def test_tool_versions_once_per_process() -> None:
    from vasco.extraction.sextractor import tool_versions
    from vasco.tools import tool_version

    versions = tool_versions()
    assert set(versions) == {"source-extractor", "psfex"}
    assert re.fullmatch(r"\d+\.\d+(\.\d+)?", versions["psfex"] or "")
    assert tool_versions() == versions
    assert tool_version.cache_info().hits >= 2  # each executable asked once per process


def test_tool_versions_of_missing_or_silent_tools(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from vasco.extraction.sextractor import tool_versions

    fake = tmp_path / "psfex"
    fake.write_text("#!/bin/sh\necho 'PSFEx version 9.8.7 (2030-01-01)'\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))  # no SExtractor here
    assert tool_versions() == {"source-extractor": None, "psfex": "9.8.7"}


def test_urls_are_written_without_credentials() -> None:
    e = query_entry(
        "vizier", "https://user:s3cret@vizier.example:8443/viz-bin?token=abc#x", ["I/350/gaiaedr3"], utc_now(), 1
    )
    assert e["url"] == "https://vizier.example:8443/viz-bin"
    assert query_entry("local", "/data/gaia.parquet", ["gaia"], utc_now(), 1)["url"] == "/data/gaia.parquet"

"""The clients of the later vetoes against loopback stand-ins: VizieR (USNO-B1.0,
AllWISE, 2MASS, CatWISE2020, VSX, any named table; column constraints,
bright stars, many small cones), IMCCE SkyBoT and the SuperCOSMOS Science
Archive.

No test reaches the internet: every server is a ``ThreadingHTTPServer`` on
127.0.0.1 (tests/servers/).  Backoff is checked through an injected ``sleep``
that records the delays instead of waiting.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from servers.base import StandInServer
from servers.clients import Recorder, client
from servers.skybot import SkybotStandIn
from servers.supercosmos import SupercosmosStandIn
from servers.vizier import VizierStandIn, sep_deg

from vasco.sources.config import HttpConfig, SkybotConfig, SourcesConfig, SupercosmosConfig, VizierConfig
from vasco.sources.http import HttpClient, SourceError
from vasco.sources.skybot import SKYBOT_COLUMNS, SKYBOT_URL_ENV, query_skybot
from vasco.sources.supercosmos import SUPERCOSMOS_URL_ENV, query_supercosmos
from vasco.sources.vizier import (
    ALLWISE,
    CATWISE2020,
    KNOWN_CATALOGS,
    TWOMASS_PSC,
    USNO_B1,
    VSX,
    ConeStats,
    query_bright_stars,
    query_cone,
    query_positions,
)

JD_1953 = 2434500.5  # 1953-03-10, a POSS-I epoch


def disc(n: int, ra0: float, dec0: float, radius_deg: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Points spread over a disc (flat-sky, which is all these small fields need).

    The positions draw from their own stream, independent of the callers' magnitudes.
    """
    rng = np.random.default_rng([seed, 99])
    r = radius_deg * np.sqrt(rng.uniform(0, 1, n))
    t = rng.uniform(0, 2 * np.pi, n)
    dec = dec0 + r * np.cos(t)
    ra = (ra0 + r * np.sin(t) / np.cos(np.radians(dec))) % 360.0
    return ra, dec


def within(table: pd.DataFrame, ra: float, dec: float, r_deg: float, ra_col: str, dec_col: str) -> pd.DataFrame:
    """Rows within the cone, by the stand-ins' own haversine (independent of VASCO)."""
    return table.loc[sep_deg(ra, dec, table[ra_col].to_numpy(), table[dec_col].to_numpy()) <= r_deg]


def usno_like(n: int, ra0: float, dec0: float, radius_deg: float, seed: int) -> pd.DataFrame:
    """A USNO-B1.0-like field: string ids, R1/R2 with gaps, a share of bright stars."""
    rng = np.random.default_rng(seed)
    ra, dec = disc(n, ra0, dec0, radius_deg, seed)
    r1 = rng.uniform(9.0, 20.0, n)
    r2 = r1 + rng.normal(0.0, 0.6, n)
    r1[rng.uniform(0, 1, n) < 0.15] = np.nan
    r2[rng.uniform(0, 1, n) < 0.15] = np.nan
    zone = 1000 + int(dec0 * 10)
    return pd.DataFrame(
        {
            "USNO-B1.0": [f"{zone:04d}-{i:07d}" for i in range(n)],
            "RAJ2000": ra,
            "DEJ2000": dec,
            "R1mag": r1,
            "R2mag": r2,
            "B1mag": r1 + 1.0,
            "B2mag": r2 + 1.0,
            "pmRA": rng.normal(0, 8, n),
            "pmDE": rng.normal(0, 8, n),
        }
    )


# =========================================================================== VizieR tables


def test_new_catalogue_specs_are_known_and_consistent() -> None:
    assert (USNO_B1.name, USNO_B1.id_column) == ("I/284/out", "USNO-B1.0")
    assert {"R1mag", "R2mag", "B1mag", "B2mag", "pmRA", "pmDE"} <= set(USNO_B1.columns)
    assert (ALLWISE.name, ALLWISE.id_column) == ("II/328/allwise", "AllWISE")
    assert {"W1mag", "W2mag", "ccf", "qph"} <= set(ALLWISE.columns)
    assert (TWOMASS_PSC.name, TWOMASS_PSC.id_column) == ("II/246/out", "2MASS")
    assert (CATWISE2020.name, CATWISE2020.ra_column, CATWISE2020.dec_column) == ("II/365/catwise", "RA_ICRS", "DE_ICRS")
    assert (VSX.name, VSX.id_column) == ("B/vsx/vsx", "Name")
    for spec in (USNO_B1, ALLWISE, TWOMASS_PSC, CATWISE2020, VSX):
        assert KNOWN_CATALOGS[spec.name] is spec
        assert {spec.ra_column, spec.dec_column, spec.id_column} <= set(spec.columns)


@pytest.mark.parametrize("spec", [ALLWISE, TWOMASS_PSC, CATWISE2020, VSX], ids=lambda s: s.name)
def test_known_tables_ask_for_their_columns(spec: Any) -> None:
    ra, dec = disc(200, 40.0, 30.0, 0.1, seed=5)
    table = pd.DataFrame({c: np.arange(200, dtype=np.float64) for c in spec.columns})
    table[spec.id_column] = [f"J{i:06d}" for i in range(200)]
    table[spec.ra_column], table[spec.dec_column] = ra, dec
    with VizierStandIn({spec.name: (table, spec.ra_column, spec.dec_column)}) as server:
        got = query_cone(spec.name, 40.0, 30.0, 0.05, server_url=server.url, http=client(Recorder()))
    (req,) = server.seen
    assert req.extra["args"]["-out"].split(",") == list(spec.columns)
    want = within(table, 40.0, 30.0, 0.05, spec.ra_column, spec.dec_column)
    assert sorted(got[spec.id_column]) == sorted(want[spec.id_column])
    assert got[spec.ra_column].dtype == np.float64 and len(got) > 10


def test_column_constraint_is_sent_as_astroquery_does_and_applied() -> None:
    field = usno_like(600, 120.0, 15.0, 0.2, seed=2)
    with VizierStandIn({"I/284/out": (field, "RAJ2000", "DEJ2000")}) as server:
        got = query_cone(
            "I/284/out",
            120.0,
            15.0,
            0.15,
            column_filters={"R2mag": "<15.3"},
            server_url=server.url,
            http=client(Recorder()),
        )
    (req,) = server.seen
    assert "R2mag=<15.3" in req.body.decode().splitlines()
    assert req.extra["constraints"] == {"R2mag": "<15.3"}
    want = within(field, 120.0, 15.0, 0.15, "RAJ2000", "DEJ2000")
    want = want.loc[want["R2mag"] < 15.3]
    assert 20 < len(want) < 300
    assert sorted(got["USNO-B1.0"]) == sorted(want["USNO-B1.0"])
    assert (got["R2mag"] < 15.3).all()


def test_constraint_on_a_missing_column_is_a_vizier_error() -> None:
    field = usno_like(50, 120.0, 15.0, 0.1, seed=3)
    with VizierStandIn({"I/284/out": (field, "RAJ2000", "DEJ2000")}) as server:
        with pytest.raises(SourceError) as exc:
            query_cone(
                "I/284/out",
                120.0,
                15.0,
                0.1,
                column_filters={"Vmag": "<12"},
                server_url=server.url,
                http=client(Recorder()),
            )
    assert exc.value.reason == "FAIL_VIZIER_ERROR" and "Vmag" in str(exc.value)


@pytest.mark.parametrize(
    ("filters", "named"),
    [({"-out.max": "10"}, "-out.max"), ({"R2mag": "<15\n-source=II/246"}, "R2mag"), ({"R1mag": ""}, "R1mag")],
)
def test_bad_column_constraints_are_refused_by_name(filters: dict[str, str], named: str) -> None:
    with pytest.raises(ValueError, match=named.replace(".", r"\.")):
        query_cone("I/284/out", 120.0, 15.0, 0.1, column_filters=filters, server_url="http://127.0.0.1:9")


def expected_bright(field: pd.DataFrame, ra: float, dec: float, r: float, mag: float) -> set[str]:
    inside = within(field, ra, dec, r, "RAJ2000", "DEJ2000")
    bright = (inside["R1mag"] <= mag) | (inside["R2mag"] <= mag)
    return set(inside.loc[bright, "USNO-B1.0"])


@pytest.mark.parametrize("hard_cap", [None, 250])
def test_bright_stars_union_is_complete_on_a_dense_field(hard_cap: int | None) -> None:
    # 2500 stars in a 0.3 deg cone, ~900 of them brighter than 12.4 in R1 or R2:
    # both constrained queries overflow the row limit (300, or the server's own
    # cap of 250 with only the OVERFLOW INFO to tell) and must be split.
    field = usno_like(2500, 210.0, 54.0, 0.32, seed=11)
    stats = ConeStats()
    with VizierStandIn({"I/284/out": (field, "RAJ2000", "DEJ2000")}, hard_cap=hard_cap) as server:
        got = query_bright_stars(
            210.0,
            54.0,
            0.3,
            12.4,
            row_limit=300 if hard_cap is None else 5000,
            server_url=server.url,
            http=client(Recorder()),
            stats=stats,
        )
    want = expected_bright(field, 210.0, 54.0, 0.3, 12.4)
    assert len(want) > 600
    assert set(got["USNO-B1.0"]) == want and got["USNO-B1.0"].is_unique
    only_r1 = {i for i in want if i not in set(field.loc[field["R2mag"] <= 12.4, "USNO-B1.0"])}
    only_r2 = {i for i in want if i not in set(field.loc[field["R1mag"] <= 12.4, "USNO-B1.0"])}
    assert only_r1 and only_r2 and only_r1 <= set(got["USNO-B1.0"]) and only_r2 <= set(got["USNO-B1.0"])
    assert got["Rmag_bright"].dtype == np.float64
    assert np.allclose(got["Rmag_bright"], np.fmin(got["R1mag"], got["R2mag"]))
    assert (got["Rmag_bright"] <= 12.4).all()
    assert got["RAJ2000"].dtype == np.float64
    constraints = [r.extra["constraints"] for r in server.seen]
    assert {"R1mag": "<=12.4"} in constraints and {"R2mag": "<=12.4"} in constraints
    assert stats.truncated_answers >= 2 and stats.max_depth >= 1
    assert any(r.extra["overflow"] for r in server.seen)


def test_bright_stars_that_cannot_be_split_enough_fail_loudly() -> None:
    field = usno_like(3000, 210.0, 54.0, 0.2, seed=12)
    with VizierStandIn({"I/284/out": (field, "RAJ2000", "DEJ2000")}, hard_cap=5) as server:
        with pytest.raises(SourceError) as exc:
            query_bright_stars(
                210.0,
                54.0,
                0.2,
                14.0,
                server_url=server.url,
                config=VizierConfig(max_split_depth=1, http=HttpConfig(max_attempts=1)),
            )
    assert exc.value.reason == "FAIL_VIZIER_TRUNCATED"


def test_bright_stars_refuse_a_non_finite_magnitude() -> None:
    with pytest.raises(ValueError, match="mag_max"):
        query_bright_stars(210.0, 54.0, 0.2, float("nan"), server_url="http://127.0.0.1:9")


def generic_table(n: int, seed: int) -> pd.DataFrame:
    ra, dec = disc(n, 300.0, -20.0, 0.2, seed)
    rng = np.random.default_rng(seed)
    seq = np.arange(n, dtype=np.int64) + 1
    return pd.DataFrame({"Seq": seq, "RAdeg": ra, "DEdeg": dec, "Vmag": rng.uniform(8, 16, n)})


def test_any_named_table_gets_default_columns_and_detected_positions() -> None:
    table = generic_table(400, seed=4)
    name = "J/A+A/600/A1/table2"
    stats = ConeStats()
    with VizierStandIn({name: (table, "RAdeg", "DEdeg")}, ids={name: "Seq"}) as server:
        got = query_cone(
            name, 300.0, -20.0, 0.15, row_limit=60, server_url=server.url, http=client(Recorder()), stats=stats
        )
    args = server.seen[0].extra["args"]
    assert args["-out"] == "*" and args["-out.add"] == "_RAJ2000,_DEJ2000"
    want = within(table, 300.0, -20.0, 0.15, "RAdeg", "DEdeg")
    assert len(want) > 60 and stats.truncated_answers >= 1  # split, and still complete
    assert sorted(got["Seq"]) == sorted(want["Seq"]) and got["Seq"].is_unique
    assert list(got["Seq"]) == sorted(got["Seq"])  # the id was found by its UCD
    assert {"RAdeg", "DEdeg", "Vmag", "_RAJ2000", "_DEJ2000"} <= set(got.columns)
    assert got["RAdeg"].dtype == np.float64


def test_named_table_without_id_is_deduplicated_on_its_rows() -> None:
    table = generic_table(300, seed=6).drop(columns="Seq")
    with VizierStandIn({"J/X/1/t": (table, "RAdeg", "DEdeg")}) as server:
        got = query_cone("J/X/1/t", 300.0, -20.0, 0.15, row_limit=50, server_url=server.url, http=client(Recorder()))
    want = within(table, 300.0, -20.0, 0.15, "RAdeg", "DEdeg")
    assert len(server.seen) > 1  # split into overlapping sub-cones
    assert len(got) == len(want)
    assert np.allclose(np.sort(got["RAdeg"].to_numpy()), np.sort(want["RAdeg"].to_numpy()), rtol=0, atol=1e-12)


def test_named_table_whose_answer_has_no_position_fails() -> None:
    table = generic_table(100, seed=7)
    with VizierStandIn({"J/X/2/t": (table, "RAdeg", "DEdeg")}) as server:
        with pytest.raises(SourceError) as exc:
            query_cone(
                "J/X/2/t", 300.0, -20.0, 0.1, columns=["Seq", "Vmag"], server_url=server.url, http=client(Recorder())
            )
    assert exc.value.reason == "FAIL_VIZIER_COLUMNS" and "ra_column" in str(exc.value)


def candidates_around(field: pd.DataFrame, n_near: int, n_far: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    stars = field.sample(n_near, random_state=seed)
    ra = list(stars["RAJ2000"] + rng.uniform(-1.5, 1.5, n_near) / 3600.0)
    dec = list(stars["DEJ2000"] + rng.uniform(-1.5, 1.5, n_near) / 3600.0)
    while len(ra) < n_near + n_far:
        a, d = 120.0 + rng.uniform(-0.2, 0.2), 15.0 + rng.uniform(-0.2, 0.2)
        if sep_deg(a, d, field["RAJ2000"].to_numpy(), field["DEJ2000"].to_numpy()).min() * 3600 > 30:
            ra.append(a)
            dec.append(d)
    ra.append(ra[0] + 2.0 / 3600.0)  # two candidates 2" apart share a star
    dec.append(dec[0])
    return np.array(ra), np.array(dec)


def expected_pairs(field: pd.DataFrame, ra: np.ndarray, dec: np.ndarray, r_arcsec: float) -> set[tuple[int, str]]:
    pairs = set()
    for i, (a, d) in enumerate(zip(ra, dec, strict=True)):
        near = within(field, a, d, r_arcsec / 3600.0, "RAJ2000", "DEJ2000")
        pairs |= {(i, s) for s in near["USNO-B1.0"]}
    return pairs


def test_many_small_cones_in_list_queries() -> None:
    field = usno_like(3000, 120.0, 15.0, 0.25, seed=8)
    ra, dec = candidates_around(field, 20, 9, seed=8)
    with VizierStandIn({"I/284/out": (field, "RAJ2000", "DEJ2000")}) as server:
        got = query_positions(
            "I/284/out",
            ra,
            dec,
            5.0,
            server_url=server.url,
            http=client(Recorder()),
            config=VizierConfig(positions_per_request=8),
        )
    assert len(server.seen) == 4  # 30 positions, 8 per request
    first = server.seen[0].extra["args"]
    assert len(first["-c"].split("\n")) == 8 and first["-c.rs"] == "5.0" and "_q" in first["-out.add"]
    assert set(zip(got["pos_index"], got["USNO-B1.0"], strict=True)) == expected_pairs(field, ra, dec, 5.0)
    assert {0, len(ra) - 1} <= set(got["pos_index"])  # the shared star is paired with both
    assert set(got["pos_index"]).isdisjoint(range(20, 29))  # far candidates: no row
    assert got["pos_index"].dtype == np.int64 and got["sep_arcsec"].dtype == np.float64
    assert (got["sep_arcsec"] <= 5.0).all() and "_q" not in got.columns
    row = got.iloc[0]
    star = field.loc[field["USNO-B1.0"] == row["USNO-B1.0"]].iloc[0]
    truth = sep_deg(ra[row["pos_index"]], dec[row["pos_index"]], star["RAJ2000"], star["DEJ2000"]) * 3600
    assert float(truth) == pytest.approx(row["sep_arcsec"], abs=1e-6)


def test_many_small_cones_halve_full_answers_down_to_split_cones() -> None:
    # Large radius on a dense field and a server cap of 40 rows: list answers
    # overflow and are halved; a single position over the cap becomes a split cone.
    field = usno_like(4000, 120.0, 15.0, 0.25, seed=9)
    ra, dec = candidates_around(field, 6, 0, seed=9)
    stats = ConeStats()
    with VizierStandIn({"I/284/out": (field, "RAJ2000", "DEJ2000")}, hard_cap=40) as server:
        got = query_positions(
            "I/284/out",
            ra,
            dec,
            120.0,
            server_url=server.url,
            http=client(Recorder()),
            stats=stats,
            config=VizierConfig(positions_per_request=10),
        )
    assert set(zip(got["pos_index"], got["USNO-B1.0"], strict=True)) == expected_pairs(field, ra, dec, 120.0)
    assert stats.truncated_answers >= 3 and stats.max_depth >= 1
    assert any(len(r.extra["centres"]) == 1 for r in server.seen)


def test_many_small_cones_with_a_constraint_and_no_match() -> None:
    field = usno_like(500, 120.0, 15.0, 0.2, seed=10)
    ra, dec = candidates_around(field, 5, 2, seed=10)
    with VizierStandIn({"I/284/out": (field, "RAJ2000", "DEJ2000")}) as server:
        got = query_positions(
            "I/284/out", ra, dec, 3.0, column_filters={"R1mag": "<0"}, server_url=server.url, http=client(Recorder())
        )
    assert got.empty and {"pos_index", "sep_arcsec", "USNO-B1.0", "RAJ2000"} <= set(got.columns)
    assert server.seen[0].extra["constraints"] == {"R1mag": "<0"}


@pytest.mark.parametrize(
    ("ra", "dec", "radius", "match"),
    [
        ([1.0, 2.0, 3.0], [0.0, 10.0, 95.0], 5.0, "position 2: dec=95"),
        ([1.0, float("nan")], [0.0, 1.0], 5.0, "position 1: ra=nan"),
        ([1.0], [0.0], 0.0, "radius_arcsec=0"),
        ([1.0, 2.0], [0.0], 5.0, "same length"),
    ],
)
def test_many_small_cones_bad_input_is_named(ra: list[float], dec: list[float], radius: float, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        query_positions("I/284/out", ra, dec, radius, server_url="http://127.0.0.1:9")


@pytest.mark.parametrize(
    ("ra", "dec", "radius", "match"),
    [
        (10.0, 91.0, 0.1, "dec=91"),
        (10.0, -90.5, 0.1, "dec=-90.5"),
        (10.0, 0.0, 0.0, "radius 0"),
        (10.0, 0.0, -1.0, "radius -1"),
        (float("inf"), 0.0, 0.1, "ra=inf"),
    ],
)
def test_vizier_cone_bad_input_is_named(ra: float, dec: float, radius: float, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        query_cone("I/284/out", ra, dec, radius, server_url="http://127.0.0.1:9")


# =========================================================================== SkyBoT


def asteroids() -> pd.DataFrame:
    """Objects near (150, +0.1) at JD_1953: a fast mover, unnumbered ones, a comet known to 150" only."""
    return pd.DataFrame(
        {
            "Num": [433, None, 1566, 29, None, None],
            "Name": ["Eros", "1953 EA", "Icarus", "Amphitrite", "C/1953 X1", "1953 EB"],
            "ra": [150.0010, 149.9950, 150.0200, 150.0300, 149.9900, 149.9950],
            "dec": [0.1005, 0.0850, 0.0800, 0.1200, 0.1100, -0.0020],
            "Class": ["NEA>Amor", "MB>Inner", "NEA>Apollo", "MB>Middle", "Comet", "MB>Outer"],
            "Mv": [11.2, 17.9, 15.0, 9.8, 16.5, 18.2],
            "ErrPos": [0.02, 35.0, 0.3, 0.01, 150.0, 1.0],
            "dRAcosDec": [30.0, 2.0, 900.0, 20.0, 5.0, 3.0],
            "dDEC": [-10.0, 1.0, -300.0, 4.0, 0.0, 0.5],
        }
    )


@pytest.fixture
def skybot_server():
    with SkybotStandIn(asteroids(), JD_1953) as server:
        yield server


def test_skybot_votable_answer_and_request(skybot_server: SkybotStandIn) -> None:
    got = query_skybot(150.0, 0.1, 0.05, JD_1953, base_url=skybot_server.base_url, http=client(Recorder()))
    (req,) = skybot_server.seen
    assert req.path == "/webservices/skybot/api/conesearch.php" and req.method == "GET"
    args = req.extra["args"]
    assert float(args["-ep"]) == JD_1953 and float(args["-ra"]) == 150.0 and float(args["-dec"]) == 0.1
    assert float(args["-rd"]) == 0.05 and args["-loc"] == "675" and args["-mime"] == "votable"
    assert args["-objFilter"] == "111" and args["-refsys"] == "EQJ2000" and float(args["-filter"]) == 120.0
    assert args["-output"] == "basic" and args["-from"] == "vasco"
    assert list(got.columns) == list(SKYBOT_COLUMNS)
    # The comet's position is known to 150": over the 120" filter.
    assert list(got["Name"]) == ["Eros", "1953 EA", "Icarus", "Amphitrite"]
    assert got["ra"].dtype == np.float64 and got["dec"].dtype == np.float64
    assert got["Num"].dtype == "Int64" and got["Num"].isna().tolist() == [False, True, False, False]
    assert int(got.loc[got["Name"] == "Eros", "Num"].iloc[0]) == 433
    eros = got.loc[got["Name"] == "Eros"].iloc[0]
    assert eros["ra"] == pytest.approx(150.0010, abs=1e-12) and eros["dec"] == pytest.approx(0.1005, abs=1e-12)
    assert eros["ErrPos"] == pytest.approx(0.02) and eros["Class"] == "NEA>Amor" and eros["Mv"] == pytest.approx(11.2)
    assert eros["dRAcosDec"] == pytest.approx(30.0) and (got["epoch_jd"] == JD_1953).all()
    assert (got["sep_arcsec"] >= 0).all()


def test_skybot_positions_follow_the_epoch(skybot_server: SkybotStandIn) -> None:
    later = JD_1953 + 2.0 / 24.0  # Icarus moves 900"/h in RA: 0.5 deg in 2 h, out of the field
    got = query_skybot(150.0, 0.1, 0.05, later, base_url=skybot_server.base_url, http=client(Recorder()))
    assert "Icarus" not in set(got["Name"]) and "Eros" in set(got["Name"])
    eros = got.loc[got["Name"] == "Eros"].iloc[0]
    dec = 0.1005 - 10.0 * 2 / 3600.0
    assert eros["dec"] == pytest.approx(dec, abs=1e-9)
    assert eros["ra"] == pytest.approx(150.0010 + 30.0 * 2 / 3600.0 / np.cos(np.radians(dec)), abs=1e-9)


def test_skybot_sexagesimal_positions_when_no_decimal_ones() -> None:
    with SkybotStandIn(asteroids(), JD_1953, hidden_positions=False) as server:
        got = query_skybot(150.0, 0.0, 0.01, JD_1953, base_url=server.base_url, http=client(Recorder()))
    one = got.loc[got["Name"] == "1953 EB"].iloc[0]  # Dec -0.002: written "-00 00 07.200"
    assert one["dec"] == pytest.approx(-0.0020, abs=0.002 / 3600) and one["dec"] < 0
    assert one["ra"] == pytest.approx(149.9950, abs=0.002 / 3600)


@pytest.mark.parametrize(
    ("no_object", "mime"),
    [("empty", "votable"), ("empty", "text"), ("legacy", "votable"), ("legacy", "text"), ("table", "votable")],
)
def test_skybot_no_object_is_an_empty_answer_not_a_failure(no_object: str, mime: str) -> None:
    # The current service's empty body (Content-Length: 0), the older INFO / "# Flag: 0"
    # answers and a 0-row VOTable all mean "no object in the field".
    with SkybotStandIn(asteroids(), JD_1953, no_object=no_object) as server:
        got = query_skybot(
            10.0,
            -40.0,
            0.05,
            JD_1953,
            base_url=server.base_url,
            http=client(Recorder()),
            config=SkybotConfig(mime=mime),
        )  # type: ignore[arg-type]
        # The same server still lists the objects of a field that has some.
        some = query_skybot(
            150.0, 0.1, 0.05, JD_1953, base_url=server.base_url, http=client(Recorder()), config=SkybotConfig(mime=mime)
        )  # type: ignore[arg-type]
    assert got.empty and list(got.columns) == list(SKYBOT_COLUMNS)
    assert got["ra"].dtype == np.float64
    assert server.seen[0].extra["n_found"] == 0
    assert len(some) == 4


@pytest.mark.parametrize(
    ("action", "reason"),
    [
        (("pass",), None),  # Content-Length: 0
        (("chunked",), None),  # a chunked body with its closing chunk
        (("unframed",), "FAIL_SKYBOT_EMPTY"),  # no length, no chunks: a dropped connection looks the same
        (("chunked_cut",), "FAIL_SKYBOT_TRUNCATED"),  # the closing chunk never came
    ],
)
def test_skybot_empty_body_is_no_object_only_when_complete(action: tuple[Any, ...], reason: str | None) -> None:
    with SkybotStandIn(asteroids(), JD_1953, no_object="empty") as server:
        server.queue(action)
        call = dict(base_url=server.base_url, http=client(Recorder(), max_attempts=1))
        if reason is None:
            got = query_skybot(10.0, -40.0, 0.05, JD_1953, **call)  # type: ignore[arg-type]
            assert got.empty and list(got.columns) == list(SKYBOT_COLUMNS)
            return
        with pytest.raises(SourceError) as exc:
            query_skybot(10.0, -40.0, 0.05, JD_1953, **call)  # type: ignore[arg-type]
    assert exc.value.reason == reason


@pytest.mark.parametrize("action", [("chunked",), ("unframed",), ("chunked_cut",)])
def test_skybot_framing_of_a_full_answer(action: tuple[Any, ...]) -> None:
    # A list of objects read to its end is the same list however it was framed; one cut
    # short (chunked, no closing chunk) is a failure, never fewer objects.
    with SkybotStandIn(asteroids(), JD_1953) as server:
        want = query_skybot(150.0, 0.1, 0.05, JD_1953, base_url=server.base_url, http=client(Recorder()))
        server.queue(action)
        call = dict(base_url=server.base_url, http=client(Recorder(), max_attempts=1))
        if action[0] == "chunked_cut":
            with pytest.raises(SourceError) as exc:
                query_skybot(150.0, 0.1, 0.05, JD_1953, **call)  # type: ignore[arg-type]
            assert exc.value.reason in ("FAIL_SKYBOT_TRUNCATED", "FAIL_SKYBOT_BAD_VOTABLE")
            return
        got = query_skybot(150.0, 0.1, 0.05, JD_1953, **call)  # type: ignore[arg-type]
    assert list(got["Name"]) == list(want["Name"]) and len(got) == 4


def test_skybot_calls_at_most_two_at_once() -> None:
    # The service limits simultaneous queries: 6 threads, slow answers, never more than 2 in flight.
    import concurrent.futures

    from vasco.sources.skybot import SKYBOT_MAX_CONCURRENCY

    with SkybotStandIn(asteroids(), JD_1953) as server:
        server.queue(*[("slow", 0.3)] * 6)
        with concurrent.futures.ThreadPoolExecutor(6) as pool:
            futures = [
                pool.submit(query_skybot, 150.0, 0.1, 0.05, JD_1953, base_url=server.base_url, http=client(Recorder()))
                for _ in range(6)
            ]
            got = [f.result() for f in futures]
    assert SKYBOT_MAX_CONCURRENCY == 2
    assert server.max_active == 2 and all(len(g) == 4 for g in got) and len(server.seen) == 6


def test_skybot_reads_imcce_recorded_answer(skybot_server: SkybotStandIn) -> None:
    # The answer of the real service as astroquery ships it for its own tests.
    import astroquery.imcce.tests as recorded

    body = (Path(recorded.__file__).parent / "data" / "skybot_query.vot").read_bytes()
    skybot_server.queue(("raw", body, "text/xml"))
    got = query_skybot(81.2833, 4.49278, 0.2, 2460677.5, base_url=skybot_server.base_url, http=client(Recorder()))
    assert len(got) == 4 and got["Name"].iloc[0] == "G!kun||'homdima" and int(got["Num"].iloc[0]) == 229762
    assert got["Num"].isna().tolist() == [False, False, True, True]
    assert got["ra"].iloc[0] == pytest.approx(81.303190599627357, abs=1e-12)
    assert got["dec"].iloc[3] == pytest.approx(4.5092830524710497, abs=1e-12)
    assert got["ErrPos"].iloc[3] == pytest.approx(0.148, abs=1e-6) and got["Class"].iloc[3] == "Mars-Crosser"


@pytest.mark.parametrize("mime", ["votable", "text"])
def test_skybot_service_error_is_a_failure(skybot_server: SkybotStandIn, mime: str) -> None:
    # SkyBoT reports its own failures as QUERY_STATUS=ERROR (scripted here, as a
    # VOTable whichever -mime was asked): never to be read as "no object".
    skybot_server.queue(("error", "Epoch out of the range of the SkyBoT database"))
    with pytest.raises(SourceError) as exc:
        query_skybot(
            150.0,
            0.1,
            0.05,
            JD_1953,
            base_url=skybot_server.base_url,
            http=client(Recorder()),
            config=SkybotConfig(mime=mime),
        )  # type: ignore[arg-type]
    assert exc.value.reason == "FAIL_SKYBOT_ERROR" and "range" in str(exc.value)


def test_skybot_text_flag_error_is_a_failure() -> None:
    body = b"# Flag: -1\n# Ticket: 1\n# Error: the epoch is not valid\n"
    with SkybotStandIn(asteroids(), JD_1953) as server:
        server.queue(("raw", body, "text/plain"))
        with pytest.raises(SourceError) as exc:
            query_skybot(
                150.0,
                0.1,
                0.05,
                JD_1953,
                base_url=server.base_url,
                http=client(Recorder()),
                config=SkybotConfig(mime="text"),
            )
    assert exc.value.reason == "FAIL_SKYBOT_ERROR" and "epoch is not valid" in str(exc.value)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"radius_deg": 0.0}, "radius 0"),
        ({"radius_deg": -0.1}, "radius -0.1"),
        ({"radius_deg": 11.0}, "radius 11"),
        ({"dec": 91.0}, "dec=91"),
        ({"epoch_jd": None}, "epoch_jd is missing"),
        ({"epoch_jd": float("nan")}, "epoch_jd=nan is missing"),
        ({"epoch_jd": 2400000.5}, "outside SkyBoT's range"),
        ({"observer": "6 75"}, "observer='6 75'"),
    ],
)
def test_skybot_bad_input_is_named(kwargs: dict[str, Any], match: str) -> None:
    call: dict[str, Any] = dict(ra=150.0, dec=0.1, radius_deg=0.05, epoch_jd=JD_1953, base_url="http://127.0.0.1:9")
    call.update(kwargs)
    with pytest.raises(ValueError, match=match):
        query_skybot(**call)


def test_skybot_url_and_observer_from_settings(skybot_server: SkybotStandIn, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SKYBOT_URL_ENV, skybot_server.base_url)
    got = query_skybot(150.0, 0.1, 0.05, JD_1953, observer=500, http=client(Recorder()))
    assert len(got) == 4 and skybot_server.seen[0].extra["args"]["-loc"] == "500"
    assert SourcesConfig().skybot.base_url == "https://ssp.imcce.fr/webservices/skybot/api/conesearch.php"


# =========================================================================== SuperCOSMOS


def ssa_like(n: int, ra0: float, dec0: float, radius_deg: float, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ra, dec = disc(n, ra0, dec0, radius_deg, seed)
    r1 = rng.uniform(12.0, 21.0, n)
    r1[rng.uniform(0, 1, n) < 0.2] = np.nan  # not on the POSS-I plate
    mu = rng.normal(0, 10, n)
    mu[rng.uniform(0, 1, n) < 0.1] = np.nan
    return pd.DataFrame(
        {
            "objID": 100_000_000_000 + np.arange(n, dtype=np.int64) * 37,
            "ra": ra,
            "dec": dec,
            "epoch": rng.uniform(1953.0, 1995.0, n),
            "sigRA": np.full(n, 0.3 / 3600),
            "sigDec": np.full(n, 0.3 / 3600),
            "muAcosD": mu,
            "muD": rng.normal(0, 10, n),
            "sCorMagB": rng.uniform(13.0, 22.0, n),
            "sCorMagR1": r1,
            "sCorMagR2": rng.uniform(12.0, 21.0, n),
            "sCorMagI": rng.uniform(11.0, 19.0, n),
            "classMagR1": r1 + 0.1,
            "meanClass": rng.integers(1, 3, n),
            "objIDR1": np.where(np.isnan(r1), 0, 200_000_000_000 + np.arange(n)),
            "Nplates": rng.integers(1, 5, n),
        }
    )


@pytest.fixture(scope="module")
def ssa_table() -> pd.DataFrame:
    return ssa_like(1500, 0.05, 20.0, 0.3, seed=21)


def test_supercosmos_cone_two_step_answer(ssa_table: pd.DataFrame) -> None:
    with SupercosmosStandIn(ssa_table) as server:
        # Centre at RA 0.05: the cone straddles RA 0/360.
        got = query_supercosmos(0.05, 20.0, 0.2, base_url=server.base_url, http=client(Recorder()))
    post, get = server.seen
    assert (post.method, post.path, get.method) == ("POST", "/ssa/SSASQL", "GET") and get.path.endswith(".csv")
    fields = post.extra["fields"]
    assert (fields["action"], fields["server"], fields["format"], fields["compress"]) == (
        "freeform",
        "amachine",
        "CSV",
        "NONE",
    )
    assert fields["emailAddress"] == ""
    assert server.queries[0]["top"] == SupercosmosConfig().row_limit + 1
    want = within(ssa_table, 0.05, 20.0, 0.2, "ra", "dec")
    assert (want["ra"] > 359).any() and (want["ra"] < 1).any()
    assert list(got["objID"]) == sorted(want["objID"])
    assert got["objID"].dtype == np.int64 and got["ra"].dtype == np.float64 and got["dec"].dtype == np.float64
    merged = got.merge(want, on="objID", suffixes=("", "_want"))
    assert np.array_equal(merged["ra"], merged["ra_want"]) and np.array_equal(merged["dec"], merged["dec_want"])
    # Served as the SSA's -99.999995 / -0.99999995e9 defaults, back as NaN.
    assert merged["sCorMagR1"].isna().equals(merged["sCorMagR1_want"].isna()) and merged["sCorMagR1"].isna().any()
    assert np.allclose(merged["sCorMagR1"].dropna(), merged["sCorMagR1_want"].dropna())
    assert merged["muAcosD"].isna().equals(merged["muAcosD_want"].isna())
    assert got["objIDR1"].dtype == np.int64 and got["meanClass"].dtype == np.int64


def test_supercosmos_over_the_row_limit_is_split_until_complete(ssa_table: pd.DataFrame) -> None:
    stats = ConeStats()
    with SupercosmosStandIn(ssa_table) as server:
        got = query_supercosmos(
            0.05,
            20.0,
            0.25,
            ["objID", "ra", "dec", "sCorMagR1"],
            base_url=server.base_url,
            config=SupercosmosConfig(row_limit=150),
            http=client(Recorder()),
            stats=stats,
        )
    want = within(ssa_table, 0.05, 20.0, 0.25, "ra", "dec")
    assert len(want) > 150
    assert list(got["objID"]) == sorted(want["objID"]) and got["objID"].is_unique
    assert list(got.columns) == ["objID", "ra", "dec", "sCorMagR1"]
    assert stats.truncated_answers >= 1 and stats.max_depth >= 1
    assert {q["top"] for q in server.queries} == {151}
    assert any(q["n_hits"] > 151 for q in server.queries)


def test_supercosmos_split_that_cannot_finish_fails_loudly(ssa_table: pd.DataFrame) -> None:
    with SupercosmosStandIn(ssa_table) as server:
        with pytest.raises(SourceError) as exc:
            query_supercosmos(
                0.05,
                20.0,
                0.25,
                base_url=server.base_url,
                http=client(Recorder()),
                config=SupercosmosConfig(row_limit=10, max_split_depth=1),
            )
    assert exc.value.reason == "FAIL_SUPERCOSMOS_TRUNCATED"


@pytest.mark.parametrize("zero_rows", ["file", "message"])
def test_supercosmos_empty_cone_is_empty(ssa_table: pd.DataFrame, zero_rows: str) -> None:
    # "Query returned 0 result rows", with a header-only file or without a link.
    with SupercosmosStandIn(ssa_table, zero_rows=zero_rows) as server:
        got = query_supercosmos(90.0, -10.0, 0.01, base_url=server.base_url, http=client(Recorder()))
    assert got.empty and "sCorMagR1" in got.columns and got["objID"].dtype == np.int64
    assert len(server.seen) == (2 if zero_rows == "file" else 1)


@pytest.mark.parametrize(("zero_rows", "counts"), [("vague", True), ("message", False)])
def test_supercosmos_zero_rows_only_from_an_explicit_count(
    ssa_table: pd.DataFrame, zero_rows: str, counts: bool
) -> None:
    # A page that words "nothing found" loosely, or has neither a link nor a count, is
    # unreadable: the SuperCOSMOS veto removes a candidate when nothing is found.
    with SupercosmosStandIn(ssa_table, zero_rows=zero_rows, counts=counts) as server:
        with pytest.raises(SourceError) as exc:
            query_supercosmos(90.0, -10.0, 0.01, base_url=server.base_url, http=client(Recorder()))
    assert exc.value.reason == "FAIL_SUPERCOSMOS_UNREADABLE" and len(server.seen) == 1


def test_supercosmos_results_file_without_a_count_is_read(ssa_table: pd.DataFrame) -> None:
    # A well-formed results file gives the rows when the page states no count.
    with SupercosmosStandIn(ssa_table) as server:
        want = query_supercosmos(0.05, 20.0, 0.1, base_url=server.base_url, http=client(Recorder()))
    with SupercosmosStandIn(ssa_table, counts=False) as server:
        got = query_supercosmos(0.05, 20.0, 0.1, base_url=server.base_url, http=client(Recorder()))
    assert len(got) > 0 and got.equals(want)


@pytest.mark.parametrize(
    ("actions", "reason", "requests"),
    [
        ([("sql_error", "Invalid column name 'sCorMagR9'.")], "FAIL_SUPERCOSMOS_SQL_ERROR", 1),
        ([("busy",)], "FAIL_SUPERCOSMOS_UNREADABLE", 1),
        ([("miscount", 3)], "FAIL_SUPERCOSMOS_COUNT_MISMATCH", 2),
        ([("miscount", 0)], "FAIL_SUPERCOSMOS_COUNT_MISMATCH", 2),
        ([("pass",), ("html",)], "FAIL_SUPERCOSMOS_HTML", 2),
        ([("pass",), ("short",)], "FAIL_SUPERCOSMOS_TRUNCATED", 2),
        ([("pass",), ("empty",)], "FAIL_SUPERCOSMOS_EMPTY", 2),
    ],
)
def test_supercosmos_bad_answers_are_named(
    ssa_table: pd.DataFrame, actions: list[tuple[Any, ...]], reason: str, requests: int
) -> None:
    with SupercosmosStandIn(ssa_table) as server:
        server.queue(*actions)
        with pytest.raises(SourceError) as exc:
            query_supercosmos(0.05, 20.0, 0.1, base_url=server.base_url, http=client(Recorder()))
    assert exc.value.reason == reason
    assert len(server.seen) == requests  # content failures are not retried here


def test_supercosmos_file_cut_by_the_archive_row_cap_is_truncated(ssa_table: pd.DataFrame) -> None:
    # The page's two counts differ when the archive's file cap cut the file.
    with SupercosmosStandIn(ssa_table, file_cap=20) as server:
        with pytest.raises(SourceError) as exc:
            query_supercosmos(0.05, 20.0, 0.1, base_url=server.base_url, http=client(Recorder()))
    assert exc.value.reason == "FAIL_SUPERCOSMOS_TRUNCATED" and len(server.seen) == 1


def test_supercosmos_r1_measurement() -> None:
    from vasco.sources.supercosmos import has_r1_measurement

    t = pd.DataFrame({"objIDR1": [0, 5, 7], "sCorMagR1": [18.0, np.nan, 19.0]})
    assert has_r1_measurement(t).tolist() == [False, True, True]  # objIDR1 decides when there
    assert has_r1_measurement(t.drop(columns="objIDR1")).tolist() == [True, False, True]
    assert has_r1_measurement(pd.DataFrame({"sCorMagR1": [-99.999995]})).tolist() == [False]
    with pytest.raises(ValueError, match="no R1"):
        has_r1_measurement(pd.DataFrame({"objID": [1], "ra": [0.0], "dec": [0.0]}))
    # The empty list of a tile with no candidate left (written without the SSA's columns).
    assert has_r1_measurement(pd.DataFrame({"source_id": [], "ra": [], "dec": []})).size == 0


def test_supercosmos_unknown_column_is_the_archive_sql_error(ssa_table: pd.DataFrame) -> None:
    with SupercosmosStandIn(ssa_table) as server:
        with pytest.raises(SourceError) as exc:
            query_supercosmos(0.05, 20.0, 0.1, ["sCorMagR9"], base_url=server.base_url, http=client(Recorder()))
    assert exc.value.reason == "FAIL_SUPERCOSMOS_SQL_ERROR" and "sCorMagR9" in str(exc.value)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"radius_deg": 0.0}, "radius 0"),
        ({"radius_deg": -2.0}, "radius -2"),
        ({"dec": -91.0}, "dec=-91"),
        ({"columns": ["objID; DROP TABLE Source"]}, "not a plain SQL identifier"),
        ({"config": SupercosmosConfig(row_limit=1_000_000)}, "row_limit 1000000"),
    ],
)
def test_supercosmos_bad_input_is_named(kwargs: dict[str, Any], match: str) -> None:
    call: dict[str, Any] = dict(ra=0.05, dec=20.0, radius_deg=0.1, base_url="http://127.0.0.1:9")
    call.update(kwargs)
    with pytest.raises(ValueError, match=match):
        query_supercosmos(**call)


def test_supercosmos_url_from_environment(ssa_table: pd.DataFrame, monkeypatch: pytest.MonkeyPatch) -> None:
    with SupercosmosStandIn(ssa_table) as server:
        monkeypatch.setenv(SUPERCOSMOS_URL_ENV, server.base_url)
        got = query_supercosmos(0.05, 20.0, 0.05, http=client(Recorder()))
    assert len(got) > 0 and len(server.seen) == 2
    assert SourcesConfig().supercosmos.base_url == "http://ssa.roe.ac.uk:8080/ssa/SSASQL"


# =========================================================================== HTTP faults, every service


@dataclass
class Service:
    """One veto client and its stand-in, for the shared fault tests."""

    name: str
    make: Callable[[], StandInServer]
    call: Callable[[StandInServer, HttpClient], pd.DataFrame]
    html: str
    short: str


def _vizier_server() -> StandInServer:
    return VizierStandIn({"I/284/out": (usno_like(300, 120.0, 15.0, 0.1, seed=1), "RAJ2000", "DEJ2000")})


SERVICES = [
    Service(
        "VIZIER",
        _vizier_server,
        lambda s, h: query_bright_stars(120.0, 15.0, 0.1, 16.0, server_url=s.url, http=h),
        "FAIL_VIZIER_HTML",
        "FAIL_VIZIER_BAD_VOTABLE",
    ),
    Service(
        "SKYBOT",
        lambda: SkybotStandIn(asteroids(), JD_1953),
        lambda s, h: query_skybot(
            150.0, 0.1, 0.05, JD_1953, base_url=s.url + "/webservices/skybot/api/conesearch.php", http=h
        ),
        "FAIL_SKYBOT_HTML",
        "FAIL_SKYBOT_BAD_VOTABLE",
    ),
    Service(
        "SUPERCOSMOS",
        lambda: SupercosmosStandIn(ssa_like(300, 0.05, 20.0, 0.1, seed=2)),
        lambda s, h: query_supercosmos(0.05, 20.0, 0.1, base_url=s.url + "/ssa/SSASQL", http=h),
        "FAIL_SUPERCOSMOS_UNREADABLE",  # the form always answers HTML: an error page has no link and no count
        "FAIL_SUPERCOSMOS_UNREADABLE",
    ),
]


@pytest.fixture(params=SERVICES, ids=lambda s: s.name)
def service(request: pytest.FixtureRequest) -> Service:
    return request.param


def test_5xx_is_retried_with_jittered_backoff(service: Service) -> None:
    sleep = Recorder()
    with service.make() as server:
        server.queue(("status", 500), ("status", 503))
        got = service.call(server, client(sleep))
    assert len(got) > 0
    assert len(sleep.delays) == 2
    assert 0.0 <= sleep.delays[0] <= 1.0 and 0.0 <= sleep.delays[1] <= 2.0


def test_5xx_exhausted_names_the_last_status(service: Service) -> None:
    with service.make() as server:
        server.queue(*[("status", 503)] * 3)
        with pytest.raises(SourceError) as exc:
            service.call(server, client(Recorder(), max_attempts=3))
    assert exc.value.reason == f"FAIL_{service.name}_HTTP_503" and len(server.seen) == 3


def test_429_honours_retry_after(service: Service) -> None:
    sleep = Recorder()
    with service.make() as server:
        server.queue(("status", 429, {"Retry-After": "7"}))
        got = service.call(server, client(sleep))
        assert len(got) > 0
        server.queue(("status", 429, {"Retry-After": "3600"}))
        with pytest.raises(SourceError) as exc:
            service.call(server, client(sleep))
    assert sleep.delays == [7.0]
    assert exc.value.reason == f"FAIL_{service.name}_HTTP_429"


def test_html_instead_of_data(service: Service) -> None:
    with service.make() as server:
        server.queue(("html",))
        with pytest.raises(SourceError) as exc:
            service.call(server, client(Recorder()))
    assert exc.value.reason == service.html


def test_body_cut_short(service: Service) -> None:
    sleep = Recorder()
    with service.make() as server:
        server.queue(("short",))  # half the body, with a matching Content-Length
        with pytest.raises(SourceError) as exc:
            service.call(server, client(sleep))
        assert exc.value.reason == service.short
        server.queue(("cut",), ("cut",))  # Content-Length promised, connection closed mid-body
        with pytest.raises(SourceError) as exc:
            service.call(server, client(sleep, max_attempts=2))
    assert exc.value.reason == f"FAIL_{service.name}_TRUNCATED"
    assert len(sleep.delays) == 1  # the broken transfer was retried once


def test_empty_body(service: Service) -> None:
    # A complete 200 with no body (Content-Length: 0): SkyBoT's "no object" (the current
    # service's answer); for VizieR and the SSA form it is no answer at all.
    with service.make() as server:
        server.queue(("empty",))
        if service.name == "SKYBOT":
            got = service.call(server, client(Recorder()))
            assert got.empty and list(got.columns) == list(SKYBOT_COLUMNS)
            return
        with pytest.raises(SourceError) as exc:
            service.call(server, client(Recorder()))
    want = "FAIL_SUPERCOSMOS_UNREADABLE" if service.name == "SUPERCOSMOS" else f"FAIL_{service.name}_EMPTY"
    assert exc.value.reason == want


def test_timeout_then_retry_then_give_up(service: Service) -> None:
    sleep = Recorder()
    with service.make() as server:
        server.queue(("slow", 5.0))
        t0 = time.monotonic()
        got = service.call(server, client(sleep, read_timeout_s=0.3))
        assert len(got) > 0 and len(sleep.delays) == 1 and time.monotonic() - t0 < 3.0
        server.queue(("slow", 5.0), ("slow", 5.0))
        t0 = time.monotonic()
        with pytest.raises(SourceError) as exc:
            service.call(server, client(sleep, read_timeout_s=0.3, max_attempts=2))
    assert exc.value.reason == f"FAIL_{service.name}_TIMEOUT"
    assert time.monotonic() - t0 < 3.0


# =========================================================================== service limits


@pytest.mark.parametrize(("setting", "want"), [(1, 1), (2, 2), (8, 2), (16, 2)])
def test_skybot_survey_limit_is_at_most_two_whatever_the_setting(setting: int, want: int) -> None:
    from tasks.tile_tasks import service_limits
    from vasco.config import VascoConfig

    cfg = VascoConfig.model_validate({"sky": "dss", "catalogs": {"service_concurrency": setting}})
    limits = service_limits(cfg)
    assert limits["skybot"] == want and limits["vizier"] == setting and limits["dss"] == setting
    # No SkyBoT limit where SkyBoT is not asked: the synthetic sky, or the stage off.
    assert "skybot" not in service_limits(VascoConfig())
    off = VascoConfig.model_validate(
        {"sky": "dss", "vetoes": {"asteroids": {"enabled": False}}, "catalogs": {"service_concurrency": setting}}
    )
    assert "skybot" not in service_limits(off)

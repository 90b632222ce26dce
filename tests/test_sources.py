"""The archive clients (vasco.sources) against loopback stand-ins of DSS, VizieR and XMatch.

No test reaches the internet: every server is a ``ThreadingHTTPServer`` on
127.0.0.1 (tests/servers/).  Backoff is checked through an injected ``sleep``
that records the delays instead of waiting.
"""

from __future__ import annotations

import pickle
import socket
import threading
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from servers import DssStandIn, VizierStandIn, XMatchStandIn
from servers.clients import Recorder, client

from vasco.matching.catalogs import REF_COLUMNS
from vasco.matching.crossmatch import angular_separation_arcsec
from vasco.sources.config import HttpConfig, SourcesConfig, VizierConfig, XMatchConfig
from vasco.sources.dss import DSS_URL_ENV, fetch_dss_tile, header_path_for
from vasco.sources.healpix import ang2pix_nest, max_pixrad_deg, pix2ang_nest
from vasco.sources.http import SourceError, parse_retry_after
from vasco.sources.local import LocalCatalogError, hats_partitions, partitions_in_cone, read_local_cone
from vasco.sources.vizier import GAIA_EDR3, VIZIER_URL_ENV, ConeStats, cover_disc, query_cone
from vasco.sources.xmatch import available_tables, check_tables, xmatch_detections

# Centres of the real cutouts (CRVAL of their explicit WCS, at the image centre).
M101_CENTRE = (210.80254413455, 54.347395233845)
SERC_CENTRE = (85.27497, -2.458265)


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


@pytest.fixture
def m101_server(m101_path: Path):
    with DssStandIn(m101_path) as server:
        yield server


# =========================================================================== HTTP layer


def test_parse_retry_after_seconds_and_http_date() -> None:
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("7", now) == 7.0
    assert parse_retry_after(format_datetime(now + timedelta(seconds=90), usegmt=True), now) == pytest.approx(90.0)
    assert parse_retry_after(format_datetime(now - timedelta(seconds=90), usegmt=True), now) == 0.0
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after(None, now) is None


def test_source_error_pickles_with_its_reason() -> None:
    err = pickle.loads(pickle.dumps(SourceError("FAIL_DSS_HTML", "an HTML page")))
    assert err.reason == "FAIL_DSS_HTML" and "an HTML page" in str(err)


def test_config_defaults_are_valid_and_frozen() -> None:
    cfg = SourcesConfig()
    assert cfg.dss.base_url == "https://archive.stsci.edu/cgi-bin/dss_search"
    assert cfg.xmatch.chunk_rows == 50_000
    with pytest.raises(ValueError, match="backoff_max_s"):
        HttpConfig(backoff_base_s=10, backoff_max_s=1)


# =========================================================================== DSS


def test_dss_success_m101_transactional(m101_server: DssStandIn, m101_path: Path, tmp_path: Path) -> None:
    sleep = Recorder()
    dest = tmp_path / "raw" / "image.fits"
    out = fetch_dss_tile(*M101_CENTRE, 15.0, dest, m101_server.base_url, http=client(sleep))
    assert out == dest
    assert dest.read_bytes() == m101_path.read_bytes()
    header_text = header_path_for(dest).read_text()
    assert header_path_for(dest) == tmp_path / "raw" / "image.header.txt"
    assert "PLTLABEL= 'E1409" in header_text and header_text.rstrip().endswith("END")
    assert leftovers(dest.parent) == ["image.fits", "image.header.txt"]
    (req,) = m101_server.seen
    assert req.query == {
        "v": ["poss1_red"],
        "r": ["210.802544"],
        "d": ["54.347395"],
        "e": ["J2000"],
        "h": ["15"],
        "w": ["15"],
        "f": ["fits"],
    }
    assert req.headers["User-Agent"].startswith("vasco/")
    assert sleep.delays == []


def test_dss_url_from_environment(m101_server: DssStandIn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DSS_URL_ENV, m101_server.base_url)
    fetch_dss_tile(*M101_CENTRE, 15.0, tmp_path / "a.fits", http=client(Recorder()))
    assert len(m101_server.seen) == 1


def test_dss_429_honours_retry_after_then_succeeds(m101_server: DssStandIn, tmp_path: Path) -> None:
    sleep = Recorder()
    date = format_datetime(datetime.now(UTC) + timedelta(seconds=12), usegmt=True)
    m101_server.queue(("status", 429, {"Retry-After": "7"}), ("status", 429, {"Retry-After": date}))
    fetch_dss_tile(*M101_CENTRE, 15.0, tmp_path / "t.fits", m101_server.base_url, http=client(sleep))
    assert [r.extra["action"] for r in m101_server.seen] == ["status", "status", "ok"]
    assert sleep.delays[0] == 7.0
    assert 9.0 <= sleep.delays[1] <= 12.0  # an HTTP-date, counted from now
    assert leftovers(tmp_path) == ["t.fits", "t.header.txt"]


def test_dss_retry_after_beyond_cap_fails_at_once(m101_server: DssStandIn, tmp_path: Path) -> None:
    sleep = Recorder()
    m101_server.queue(("status", 429, {"Retry-After": "3600"}))
    with pytest.raises(SourceError) as exc:
        fetch_dss_tile(*M101_CENTRE, 15.0, tmp_path / "t.fits", m101_server.base_url, http=client(sleep))
    assert exc.value.reason == "FAIL_DSS_HTTP_429"
    assert sleep.delays == [] and len(m101_server.seen) == 1
    assert leftovers(tmp_path) == []


def test_dss_5xx_backoff_with_full_jitter_then_success(m101_server: DssStandIn, tmp_path: Path) -> None:
    sleep = Recorder()
    m101_server.queue(*(("status", code) for code in (500, 502, 503, 504)))
    fetch_dss_tile(*M101_CENTRE, 15.0, tmp_path / "t.fits", m101_server.base_url, http=client(sleep))
    assert len(m101_server.seen) == 5
    assert len(sleep.delays) == 4
    for k, delay in enumerate(sleep.delays, start=1):
        assert 0.0 <= delay <= min(8.0, 1.0 * 2 ** (k - 1))
    assert len(set(sleep.delays)) == 4  # jittered, not a fixed ladder


def test_dss_5xx_exhausted_reports_last_status(m101_server: DssStandIn, tmp_path: Path) -> None:
    m101_server.queue(*[("status", 503)] * 3)
    with pytest.raises(SourceError) as exc:
        fetch_dss_tile(
            *M101_CENTRE, 15.0, tmp_path / "t.fits", m101_server.base_url, http=client(Recorder(), max_attempts=3)
        )
    assert exc.value.reason == "FAIL_DSS_HTTP_503"
    assert len(m101_server.seen) == 3 and leftovers(tmp_path) == []


def test_dss_404_is_not_retried(m101_server: DssStandIn, tmp_path: Path) -> None:
    sleep = Recorder()
    m101_server.queue(("status", 404))
    with pytest.raises(SourceError) as exc:
        fetch_dss_tile(*M101_CENTRE, 15.0, tmp_path / "t.fits", m101_server.base_url, http=client(sleep))
    assert exc.value.reason == "FAIL_DSS_HTTP_404"
    assert len(m101_server.seen) == 1 and sleep.delays == []
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize(
    ("action", "reason"),
    [
        ("html", "FAIL_DSS_HTML"),
        ("truncated", "FAIL_DSS_TRUNCATED"),
        ("short_data", "FAIL_DSS_TRUNCATED"),
        ("empty", "FAIL_DSS_EMPTY"),
        ("text", "FAIL_DSS_NOT_FITS"),
    ],
)
def test_dss_bad_content_fails_and_leaves_nothing(
    m101_server: DssStandIn, tmp_path: Path, action: str, reason: str
) -> None:
    m101_server.queue((action,))
    dest = tmp_path / "raw" / "image.fits"
    with pytest.raises(SourceError) as exc:
        fetch_dss_tile(*M101_CENTRE, 15.0, dest, m101_server.base_url, http=client(Recorder()))
    assert exc.value.reason == reason
    assert len(m101_server.seen) == 1  # content failures are the caller's to retry
    assert leftovers(dest.parent) == []


def test_dss_html_error_names_the_page(m101_server: DssStandIn, tmp_path: Path) -> None:
    m101_server.queue(("html",))
    with pytest.raises(SourceError, match="DSS Search Error"):
        fetch_dss_tile(*M101_CENTRE, 15.0, tmp_path / "t.fits", m101_server.base_url, http=client(Recorder()))


def test_dss_connection_cut_mid_body_is_retried(m101_server: DssStandIn, m101_path: Path, tmp_path: Path) -> None:
    sleep = Recorder()
    m101_server.queue(("cut",))
    fetch_dss_tile(*M101_CENTRE, 15.0, tmp_path / "t.fits", m101_server.base_url, http=client(sleep))
    assert (tmp_path / "t.fits").read_bytes() == m101_path.read_bytes()
    assert len(sleep.delays) == 1

    m101_server.queue(("cut",), ("cut",))
    with pytest.raises(SourceError) as exc:
        fetch_dss_tile(
            *M101_CENTRE, 15.0, tmp_path / "u.fits", m101_server.base_url, http=client(sleep, max_attempts=2)
        )
    assert exc.value.reason == "FAIL_DSS_TRUNCATED"
    assert leftovers(tmp_path) == ["t.fits", "t.header.txt"]


def test_dss_slow_answer_times_out_then_retries(m101_server: DssStandIn, tmp_path: Path) -> None:
    sleep = Recorder()
    m101_server.queue(("slow", 5.0))
    t0 = time.monotonic()
    fetch_dss_tile(
        *M101_CENTRE, 15.0, tmp_path / "t.fits", m101_server.base_url, http=client(sleep, read_timeout_s=0.3)
    )
    assert len(sleep.delays) == 1 and time.monotonic() - t0 < 3.0

    m101_server.queue(("slow", 5.0), ("slow", 5.0))
    t0 = time.monotonic()
    with pytest.raises(SourceError) as exc:
        fetch_dss_tile(
            *M101_CENTRE,
            15.0,
            tmp_path / "u.fits",
            m101_server.base_url,
            http=client(sleep, read_timeout_s=0.3, max_attempts=2),
        )
    assert exc.value.reason == "FAIL_DSS_TIMEOUT"
    assert time.monotonic() - t0 < 3.0
    assert leftovers(tmp_path) == ["t.fits", "t.header.txt"]


def test_dss_gzip_answer_is_decompressed(m101_server: DssStandIn, m101_path: Path, tmp_path: Path) -> None:
    m101_server.queue(("gzip",))
    fetch_dss_tile(*M101_CENTRE, 15.0, tmp_path / "t.fits", m101_server.base_url, http=client(Recorder()))
    assert (tmp_path / "t.fits").read_bytes() == m101_path.read_bytes()
    assert leftovers(tmp_path) == ["t.fits", "t.header.txt"]


def test_dss_too_big_is_aborted(m101_server: DssStandIn, tmp_path: Path) -> None:
    with pytest.raises(SourceError) as exc:
        fetch_dss_tile(
            *M101_CENTRE, 15.0, tmp_path / "t.fits", m101_server.base_url, http=client(Recorder(), max_bytes=100_000)
        )
    assert exc.value.reason == "FAIL_DSS_TOO_BIG"
    m101_server.queue(("gzip",))  # small on the wire, too big once inflated
    with pytest.raises(SourceError) as exc:
        fetch_dss_tile(
            *M101_CENTRE, 15.0, tmp_path / "t.fits", m101_server.base_url, http=client(Recorder(), max_bytes=300_000)
        )
    assert exc.value.reason == "FAIL_DSS_TOO_BIG"
    assert leftovers(tmp_path) == []


def test_dss_serc_plate_is_rejected_and_leaves_nothing(serc_path: Path, tmp_path: Path) -> None:
    with DssStandIn(serc_path) as server:
        dest = tmp_path / "raw" / "image.fits"
        with pytest.raises(SourceError) as exc:
            fetch_dss_tile(*SERC_CENTRE, 15.0, dest, server.base_url, http=client(Recorder()))
    assert exc.value.reason == "REJECT_NON_POSS"
    assert "SERC-ER" in str(exc.value)
    assert leftovers(dest.parent) == []


def test_dss_cutout_elsewhere_on_the_sky_is_refused(m101_server: DssStandIn, tmp_path: Path) -> None:
    with pytest.raises(SourceError) as exc:
        fetch_dss_tile(150.0, 20.0, 15.0, tmp_path / "t.fits", m101_server.base_url, http=client(Recorder()))
    assert exc.value.reason == "FAIL_DSS_WRONG_FIELD"
    assert leftovers(tmp_path) == []


def test_dss_connection_refused(tmp_path: Path) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sleep = Recorder()
    with pytest.raises(SourceError) as exc:
        fetch_dss_tile(
            *M101_CENTRE, 15.0, tmp_path / "t.fits", f"http://127.0.0.1:{port}/x", http=client(sleep, max_attempts=2)
        )
    assert exc.value.reason == "FAIL_DSS_CONNECTION"
    assert len(sleep.delays) == 1 and leftovers(tmp_path) == []


def test_dss_server_counts_simultaneous_requests(m101_path: Path, tmp_path: Path) -> None:
    n = 3
    errors: list[BaseException] = []
    barrier = threading.Barrier(n)

    def work(i: int) -> None:
        try:
            barrier.wait(timeout=5)
            fetch_dss_tile(*M101_CENTRE, 15.0, tmp_path / f"t{i}.fits", server.base_url, http=client(Recorder()))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    with DssStandIn(m101_path, delay=0.4) as server:
        threads = [threading.Thread(target=work, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=20)
    assert errors == []
    assert len(server.seen) == n
    assert 2 <= server.max_active <= n
    assert leftovers(tmp_path) == sorted([f"t{i}.fits" for i in range(n)] + [f"t{i}.header.txt" for i in range(n)])


# =========================================================================== VizieR


def gaia_like(n: int, ra0: float, dec0: float, radius_deg: float, seed: int) -> pd.DataFrame:
    """Uniform points in a disc, with Gaia EDR3 VizieR column names."""
    rng = np.random.default_rng(seed)
    r = radius_deg * np.sqrt(rng.uniform(0, 1, n))
    t = rng.uniform(0, 2 * np.pi, n)
    dec = dec0 + r * np.cos(t)
    ra = ra0 + r * np.sin(t) / np.cos(np.radians(dec))
    return pd.DataFrame(
        {
            "RA_ICRS": ra,
            "DE_ICRS": dec,
            "pmRA": rng.normal(0, 5, n),
            "pmDE": rng.normal(0, 5, n),
            "Plx": rng.uniform(0, 3, n),
            "Gmag": rng.uniform(12, 21, n).astype(np.float32),
            "Source": 4_000_000_000_000_000_000 + np.arange(n, dtype=np.int64) * 7919,
            "Epoch": np.full(n, 2016.0),
        }
    )


def in_cone(table: pd.DataFrame, ra: float, dec: float, r: float, ra_col: str, dec_col: str) -> pd.DataFrame:
    sep = angular_separation_arcsec(ra, dec, table[ra_col], table[dec_col]) / 3600.0
    return table.loc[sep <= r]


@pytest.fixture(scope="module")
def gaia_table() -> pd.DataFrame:
    return gaia_like(900, 150.0, 20.0, 0.4, seed=3)


def test_vizier_cone_returns_the_table(gaia_table: pd.DataFrame) -> None:
    stats = ConeStats()
    with VizierStandIn({"I/350/gaiaedr3": (gaia_table, "RA_ICRS", "DE_ICRS")}) as server:
        got = query_cone(
            "I/350/gaiaedr3",
            150.0,
            20.0,
            0.25,
            row_limit=5000,
            server_url=server.url,
            http=client(Recorder()),
            stats=stats,
        )
    want = in_cone(gaia_table, 150.0, 20.0, 0.25, "RA_ICRS", "DE_ICRS")
    assert 200 < len(want) < 900
    assert list(got.columns) == list(GAIA_EDR3.columns)
    assert got["RA_ICRS"].dtype == np.float64 and got["DE_ICRS"].dtype == np.float64
    assert sorted(got["Source"]) == sorted(want["Source"])
    merged = got.merge(want, on="Source", suffixes=("", "_want"))
    assert np.array_equal(merged["RA_ICRS"], merged["RA_ICRS_want"])  # float64 survives the VOTable
    assert stats.requests == 1 and stats.truncated_answers == 0
    (req,) = server.seen
    args = req.extra["args"]
    assert req.path == "/viz-bin/votable"
    assert args["-source"] == "I/350/gaiaedr3"
    assert args["-out.max"] == "5000"
    assert args["-c"] == "150.00000000+20.00000000"
    assert args["-c.rd"] == "0.25"
    assert args["-out"].split(",") == list(GAIA_EDR3.columns)


def test_vizier_truncated_answer_is_split_until_complete(gaia_table: pd.DataFrame) -> None:
    stats = ConeStats()
    with VizierStandIn({"I/350/gaiaedr3": (gaia_table, "RA_ICRS", "DE_ICRS")}) as server:
        got = query_cone(
            "I/350/gaiaedr3",
            150.0,
            20.0,
            0.3,
            row_limit=120,
            server_url=server.url,
            http=client(Recorder()),
            stats=stats,
        )
    want = in_cone(gaia_table, 150.0, 20.0, 0.3, "RA_ICRS", "DE_ICRS")
    assert len(want) > 120
    assert sorted(got["Source"]) == sorted(want["Source"])
    assert got["Source"].is_unique
    assert stats.truncated_answers >= 1 and stats.max_depth >= 1
    assert any(r.extra.get("overflow") for r in server.seen)


def test_vizier_overflow_info_below_row_limit_is_detected(gaia_table: pd.DataFrame) -> None:
    # The server stops at its own cap (80 rows) under the client's row_limit:
    # only VizieR's QUERY_STATUS=OVERFLOW INFO tells the answer is incomplete.
    stats = ConeStats()
    with VizierStandIn({"I/350/gaiaedr3": (gaia_table, "RA_ICRS", "DE_ICRS")}, hard_cap=80) as server:
        got = query_cone(
            "I/350/gaiaedr3",
            150.0,
            20.0,
            0.2,
            row_limit=1000,
            server_url=server.url,
            http=client(Recorder()),
            stats=stats,
        )
    want = in_cone(gaia_table, 150.0, 20.0, 0.2, "RA_ICRS", "DE_ICRS")
    assert len(want) > 80
    assert sorted(got["Source"]) == sorted(want["Source"])
    assert stats.truncated_answers >= 1


def test_vizier_split_that_cannot_finish_fails_loudly(gaia_table: pd.DataFrame) -> None:
    with VizierStandIn({"I/350/gaiaedr3": (gaia_table, "RA_ICRS", "DE_ICRS")}, hard_cap=5) as server:
        with pytest.raises(SourceError) as exc:
            query_cone(
                "I/350/gaiaedr3",
                150.0,
                20.0,
                0.3,
                row_limit=1000,
                server_url=server.url,
                config=VizierConfig(max_split_depth=1, http=HttpConfig(max_attempts=1)),
            )
    assert exc.value.reason == "FAIL_VIZIER_TRUNCATED"


def test_vizier_empty_cone_and_retry_on_503(gaia_table: pd.DataFrame) -> None:
    sleep = Recorder()
    with VizierStandIn({"I/350/gaiaedr3": (gaia_table, "RA_ICRS", "DE_ICRS")}) as server:
        server.queue(("status", 503, {"Retry-After": "1"}))
        got = query_cone("I/350/gaiaedr3", 10.0, -10.0, 0.1, server_url=server.url, http=client(sleep))
    assert got.empty and list(got.columns) == list(GAIA_EDR3.columns)
    assert got["RA_ICRS"].dtype == np.float64
    assert sleep.delays == [1.0]


def test_vizier_server_url_from_environment(gaia_table: pd.DataFrame, monkeypatch: pytest.MonkeyPatch) -> None:
    ps1 = gaia_table.rename(columns={"RA_ICRS": "RAJ2000", "DE_ICRS": "DEJ2000", "Source": "objID", "Gmag": "rmag"})
    with VizierStandIn({"II/389/ps1_dr2": (ps1, "RAJ2000", "DEJ2000")}) as server:
        monkeypatch.setenv(VIZIER_URL_ENV, server.url)
        got = query_cone(
            "II/389/ps1_dr2", 150.0, 20.0, 0.1, columns=["RAJ2000", "DEJ2000", "objID", "rmag"], http=client(Recorder())
        )
    assert sorted(got["objID"]) == sorted(in_cone(ps1, 150.0, 20.0, 0.1, "RAJ2000", "DEJ2000")["objID"])


@pytest.mark.parametrize("centre", [(150.0, 20.0), (0.01, 89.99), (359.99, -90.0), (45.0, 0.0)])
def test_cover_disc_covers_the_cone(centre: tuple[float, float]) -> None:
    ra0, dec0 = centre
    r = 0.5
    pts = gaia_like(4000, ra0, dec0, r, seed=11) if abs(dec0) < 80 else None
    if pts is None:  # near a pole: sample on the sphere around the centre
        rng = np.random.default_rng(5)
        ra = rng.uniform(0, 360, 200_000)
        dec = np.degrees(np.arcsin(rng.uniform(np.sin(np.radians(88.0)), 1, 200_000))) * np.sign(dec0)
        pts = pd.DataFrame({"RA_ICRS": ra, "DE_ICRS": dec})
    pts = in_cone(pts, ra0, dec0, r, "RA_ICRS", "DE_ICRS")
    assert len(pts) > 1000
    covered = np.zeros(len(pts), dtype=bool)
    for sra, sdec, sr in cover_disc(ra0, dec0, r):
        covered |= angular_separation_arcsec(sra, sdec, pts["RA_ICRS"], pts["DE_ICRS"]) <= sr * 3600.0
    assert covered.all()


# =========================================================================== XMatch


def detections_for(gaia: pd.DataFrame, n_match: int, n_far: int, seed: int, text_ids: bool) -> tuple[pd.DataFrame, set]:
    rng = np.random.default_rng(seed)
    stars = gaia.sample(n_match, random_state=seed)
    near_ra = stars["RA_ICRS"].to_numpy() + rng.uniform(-0.5, 0.5, n_match) / 3600.0
    near_dec = stars["DE_ICRS"].to_numpy() + rng.uniform(-0.5, 0.5, n_match) / 3600.0
    far_ra, far_dec = [], []
    while len(far_ra) < n_far:
        ra, dec = 150.0 + rng.uniform(-0.3, 0.3), 20.0 + rng.uniform(-0.3, 0.3)
        if angular_separation_arcsec(ra, dec, gaia["RA_ICRS"], gaia["DE_ICRS"]).min() > 20.0:
            far_ra.append(ra)
            far_dec.append(dec)
    numbers = np.arange(n_match + n_far) * 3 + 1
    ids = [f"t150+20:{i:05d}" for i in numbers] if text_ids else list(numbers)
    det = pd.DataFrame(
        {
            "our_id": ids,
            "ra": np.concatenate([near_ra, far_ra]),
            "dec": np.concatenate([near_dec, far_dec]),
            "mag": np.linspace(15, 20, n_match + n_far),
        }
    )
    det = det.sample(frac=1.0, random_state=seed).reset_index(drop=True)  # matched and not, interleaved
    unmatched = set(ids[n_match:])
    return det, unmatched


@pytest.mark.parametrize("text_ids", [False, True])
def test_xmatch_in_two_chunks_with_anti_join(gaia_table: pd.DataFrame, text_ids: bool) -> None:
    det, want_unmatched = detections_for(gaia_table, 100, 50, seed=4, text_ids=text_ids)
    with XMatchStandIn({"vizier:I/350/gaiaedr3": (gaia_table, "RA_ICRS", "DE_ICRS")}) as server:
        res = xmatch_detections(det, "I/350/gaiaedr3", 5.0, chunk_rows=80, url=server.sync_url, http=client(Recorder()))
    assert res.jobs == 2
    assert [j["n_upload"] for j in server.jobs] == [80, 70]
    fields = server.jobs[0]["fields"]
    assert fields["cat2"] == "vizier:I/350/gaiaedr3"
    assert float(fields["distMaxArcsec"]) == 5.0
    assert fields["RESPONSEFORMAT"] == "csv"
    assert (fields["colRA1"], fields["colDec1"]) == ("our_ra", "our_dec")
    assert fields["area"] == "cone"
    assert server.max_jobs_running == 1
    assert set(res.unmatched["our_id"]) == want_unmatched
    assert list(res.unmatched.columns) == list(det.columns)
    assert set(res.matches["our_id"]) == set(det["our_id"]) - want_unmatched
    assert set(res.matches["our_id"]).isdisjoint(res.unmatched["our_id"])
    assert res.matches["angDist"].dtype == np.float64 and (res.matches["angDist"] <= 5.0).all()
    assert list(res.matches.columns[:3]) == ["our_id", "catalog_id", "angDist"]
    assert (res.matches["catalog_id"] == res.matches["Source"]).all()
    # each match is the pair the server computed: check a separation independently
    row = res.matches.iloc[0]
    star = gaia_table.loc[gaia_table["Source"] == row["catalog_id"]].iloc[0]
    ours = det.loc[det["our_id"] == row["our_id"]].iloc[0]
    sep = angular_separation_arcsec(ours["ra"], ours["dec"], star["RA_ICRS"], star["DE_ICRS"])
    assert float(sep) == pytest.approx(row["angDist"], abs=1e-4)


def test_xmatch_jobs_never_run_in_parallel(gaia_table: pd.DataFrame) -> None:
    det, _ = detections_for(gaia_table, 20, 5, seed=9, text_ids=False)
    results: list = []
    errors: list[BaseException] = []
    with XMatchStandIn({"vizier:I/350/gaiaedr3": (gaia_table, "RA_ICRS", "DE_ICRS")}, job_delay=0.2) as server:

        def work() -> None:
            try:
                res = xmatch_detections(det, chunk_rows=13, url=server.sync_url, http=client(Recorder()))
                results.append(res)
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=work) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
    assert errors == [] and len(results) == 2
    assert server.max_jobs_running == 1  # the stand-in answers 403 to a parallel job, as CDS does


def test_xmatch_unknown_catalogue_and_ban(gaia_table: pd.DataFrame) -> None:
    det, _ = detections_for(gaia_table, 5, 1, seed=2, text_ids=False)
    with XMatchStandIn({"vizier:I/350/gaiaedr3": (gaia_table, "RA_ICRS", "DE_ICRS")}) as server:
        with pytest.raises(SourceError) as exc:
            xmatch_detections(det, "II/999/nothing", url=server.sync_url, http=client(Recorder()))
        assert exc.value.reason == "FAIL_XMATCH_UNKNOWN_CATALOG"
        # The table list is remembered from the first call (XMatchConfig.table_list_max_age_s): the job is banned.
        server.queue(("status", 403))
        sleep = Recorder()
        with pytest.raises(SourceError) as exc:
            xmatch_detections(det, url=server.sync_url, http=client(sleep))
    assert exc.value.reason == "FAIL_XMATCH_HTTP_403" and sleep.delays == []


def test_xmatch_table_list_as_astroquery_asks_it(gaia_table: pd.DataFrame) -> None:
    extra = ("II/349/ps1", "II/246/out", "II/311/wise")
    with XMatchStandIn({"vizier:I/350/gaiaedr3": (gaia_table, "RA_ICRS", "DE_ICRS")}, extra_names=extra) as server:
        names = available_tables(server.sync_url, http=client(Recorder()))
        seen = server.seen[-1]
    assert names == ["simbad", "I/350/gaiaedr3", *extra]
    assert seen.method == "GET" and seen.path.endswith("/xmatch/api/v1/sync/tables")
    assert seen.query == {"action": ["getVizieRTableNames"], "RESPONSEFORMAT": ["txt"]}


def test_check_tables_accepts_known_and_names_close_ones(gaia_table: pd.DataFrame) -> None:
    extra = ("II/349/ps1", "II/349/ps1c", "II/246/out")
    with XMatchStandIn({"vizier:I/350/gaiaedr3": (gaia_table, "RA_ICRS", "DE_ICRS")}, extra_names=extra) as server:
        got = check_tables(
            server.sync_url, {"gaia": "vizier:I/350/gaiaedr3", "ps1": "II/349/ps1"}, http=client(Recorder())
        )
        assert "II/349/ps1" in got
        with pytest.raises(ValueError) as exc:
            check_tables(
                server.sync_url, {"catalogs.xmatch_tables.ps1": "vizier:II/389/ps1_dr2"}, http=client(Recorder())
            )
        with pytest.raises(ValueError) as exc2:
            check_tables(server.sync_url, {"ps1": "vizier:II/349/ps2"}, http=client(Recorder()))
        with pytest.raises(ValueError, match="no close name"):
            check_tables(server.sync_url, {"gaia": "J/XYZ/1/t"}, http=client(Recorder()))
        assert server.table_list_requests == 4 and server.jobs == []  # one list per check, no job
    msg = str(exc.value)
    assert "catalogs.xmatch_tables.ps1" in msg and "'vizier:II/389/ps1_dr2'" in msg
    assert server.sync_url in msg and "(5 tables)" in msg and "close names: vizier:II/349/ps1" in msg
    assert "close names: vizier:II/349/ps1, vizier:II/349/ps1c" in str(exc2.value)


def test_check_tables_service_down_is_a_source_error() -> None:
    with XMatchStandIn({}) as server:
        server.queue(("status", 404))
        with pytest.raises(SourceError) as exc:
            check_tables(server.sync_url, {"gaia": "I/350/gaiaedr3"}, http=client(Recorder()))
    assert exc.value.reason.startswith("FAIL_XMATCH_")


def test_xmatch_table_list_asked_once_per_process_within_its_age(gaia_table: pd.DataFrame) -> None:
    det, _ = detections_for(gaia_table, 5, 1, seed=5, text_ids=False)
    with XMatchStandIn({"vizier:I/350/gaiaedr3": (gaia_table, "RA_ICRS", "DE_ICRS")}) as server:
        for _ in range(3):
            xmatch_detections(det, url=server.sync_url, http=client(Recorder()))
        assert server.table_list_requests == 1 and len(server.jobs) == 3
        fresh = XMatchConfig(table_list_max_age_s=0)
        xmatch_detections(det, url=server.sync_url, config=fresh, http=client(Recorder()))
        assert server.table_list_requests == 2
        check_tables(server.sync_url, {"gaia": "I/350/gaiaedr3"}, http=client(Recorder()))  # always asks
        assert server.table_list_requests == 3


def test_xmatch_rejects_bad_detections() -> None:
    with pytest.raises(ValueError, match="duplicated our_id"):
        xmatch_detections(pd.DataFrame({"our_id": [1, 1], "ra": [1.0, 2.0], "dec": [0.0, 0.0]}))
    with pytest.raises(ValueError, match="180"):
        xmatch_detections(pd.DataFrame({"our_id": [1], "ra": [1.0], "dec": [0.0]}), radius_arcsec=200)
    assert XMatchConfig().chunk_rows == 50_000


# =========================================================================== local files


def gaia_archive_like(n: int, seed: int) -> pd.DataFrame:
    """Points on the whole sphere with Gaia archive column names."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "source_id": np.arange(n, dtype=np.int64) + 10**15,
            "ra": rng.uniform(0, 360, n),
            "dec": np.degrees(np.arcsin(rng.uniform(-1, 1, n))),
            "pmra": rng.normal(0, 5, n),
            "pmdec": rng.normal(0, 5, n),
            "ref_epoch": np.full(n, 2016.0),
            "phot_g_mean_mag": rng.uniform(12, 21, n),
        }
    )


def test_local_csv_and_parquet_cones(tmp_path: Path, gaia_table: pd.DataFrame) -> None:
    archive = pd.concat(
        [
            gaia_archive_like(2000, 1),
            gaia_table.rename(
                columns={
                    "Source": "source_id",
                    "RA_ICRS": "ra",
                    "DE_ICRS": "dec",
                    "pmRA": "pmra",
                    "pmDE": "pmdec",
                    "Epoch": "ref_epoch",
                    "Gmag": "phot_g_mean_mag",
                }
            ).drop(columns="Plx"),
        ],
        ignore_index=True,
    )
    csv = tmp_path / "gaia.csv"
    archive.to_csv(csv, index=False)
    got = read_local_cone(csv, 150.0, 20.0, 0.25)
    want = in_cone(archive, 150.0, 20.0, 0.25, "ra", "dec")
    assert list(got.columns) == list(REF_COLUMNS)
    assert sorted(got["source_id"]) == sorted(want["source_id"])
    assert got["ra"].dtype == np.float64

    vizier_names = gaia_table.copy()
    pq = tmp_path / "gaia_vizier.parquet"
    vizier_names.to_parquet(pq, index=False)
    got = read_local_cone(pq, 150.0, 20.0, 0.25)
    assert sorted(got["source_id"]) == sorted(in_cone(gaia_table, 150.0, 20.0, 0.25, "RA_ICRS", "DE_ICRS")["Source"])
    assert got["epoch"].eq(2016.0).all() and got["mag"].notna().all()


def test_local_missing_column_names_file_and_column(tmp_path: Path) -> None:
    bad = tmp_path / "no_dec.csv"
    pd.DataFrame({"ra": [1.0], "source_id": [1]}).to_csv(bad, index=False)
    with pytest.raises(LocalCatalogError) as exc:
        read_local_cone(bad, 1.0, 0.0, 0.1)
    assert str(bad) in str(exc.value) and "declination" in str(exc.value) and "DE_ICRS" in str(exc.value)
    with pytest.raises(FileNotFoundError):
        read_local_cone(tmp_path / "absent.parquet", 1.0, 0.0, 0.1)


def write_hats(root: Path, table: pd.DataFrame, order: int) -> dict[int, Path]:
    pix = ang2pix_nest(order, table["ra"], table["dec"])
    paths = {}
    for p in np.unique(pix):
        d = root / "dataset" / f"Norder={order}" / f"Dir={(p // 10000) * 10000}"
        d.mkdir(parents=True, exist_ok=True)
        path = d / f"Npix={p}.parquet"
        table.loc[pix == p].to_parquet(path, index=False)
        paths[int(p)] = path
    (root / "properties").write_text("dataset_type=object\n")
    return paths


def test_local_healpix_folder_reads_only_overlapping_partitions(tmp_path: Path) -> None:
    table = gaia_archive_like(20_000, 8)
    root = tmp_path / "gaia_hats"
    paths = write_hats(root, table, order=2)
    assert len(paths) == 192
    ra, dec, r = 150.0, 20.0, 3.0
    chosen = partitions_in_cone(hats_partitions(root), ra, dec, r)
    assert 0 < len(chosen) < 15
    # Spoil every partition the cone cannot touch: reading one would raise.
    chosen_pix = {p.pixel for p in chosen}
    for p, path in paths.items():
        if p not in chosen_pix:
            path.write_bytes(b"not parquet")
    got = read_local_cone(root, ra, dec, r)
    want = in_cone(table, ra, dec, r, "ra", "dec")
    assert len(want) > 10
    assert sorted(got["source_id"]) == sorted(want["source_id"])
    # A cone straddling RA 0 and one at the pole use the same rule.
    write_hats(tmp_path / "coarse", table, order=1)
    for c_ra, c_dec in ((0.5, -10.0), (200.0, 89.0)):
        got = read_local_cone(tmp_path / "coarse", c_ra, c_dec, 4.0)
        assert sorted(got["source_id"]) == sorted(in_cone(table, c_ra, c_dec, 4.0, "ra", "dec")["source_id"])


def test_healpix_against_reference_values() -> None:
    # Reference values from the HEALPix C++ library (via astropy-healpix 2.0.1).
    ra = [225.034368, 322.996968, 279.246848, 81.074588, 108.059863, 314.47924]
    dec = [-81.677645, 39.975265, 36.451268, -3.676907, -23.199578, -26.304959]
    ref = {
        0: [10, 3, 3, 5, 5, 11],
        3: [640, 218, 232, 356, 325, 755],
        10: [10499021, 3576392, 3811243, 5840481, 5325150, 12373523],
        29: [
            2885949099634426965,
            983071212446427459,
            1047626569743628916,
            1605419233245033538,
            1463766360537724104,
            3401208317942621724,
        ],
    }
    for order, pix in ref.items():
        assert ang2pix_nest(order, ra, dec).tolist() == pix
    for order, pix, c_ra, c_dec in (
        (0, 5, 90.0, 0.0),
        (3, 100, 123.75, 35.68533471265205),
        (10, 1234567, 127.001953125, 24.501278135207535),
    ):
        got_ra, got_dec = pix2ang_nest(order, pix)
        assert float(got_ra) == pytest.approx(c_ra, abs=1e-9) and float(got_dec) == pytest.approx(c_dec, abs=1e-9)
    assert max_pixrad_deg(0) == pytest.approx(48.189685104, rel=1e-9)
    # Round trip: every pixel centre falls in its own pixel.
    pix = np.arange(12 * 4**4)
    assert np.array_equal(ang2pix_nest(4, *pix2ang_nest(4, pix)), pix)

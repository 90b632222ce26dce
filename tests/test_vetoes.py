"""The paper's later vetoes (vasco.filters.vetoes) on hand-built cases."""

import numpy as np
import pandas as pd
import pytest

from vasco.astrometry.platefit import from_tangent_plane
from vasco.filters.config import VetoesConfig
from vasco.filters.registry import VETO_ORDER, enabled_stage_names
from vasco.filters.vetoes import bright_star_veto, counterpart_veto, hpm_veto, presence_veto, spike_rule


def _ref(xi, eta, mags=None, ids=None, ra0=150.0, dec0=20.0, **extra):
    ra, dec = from_tangent_plane(np.asarray(xi, float), np.asarray(eta, float), ra0, dec0)
    n = len(ra)
    return pd.DataFrame(
        {
            "source_id": ids if ids is not None else [f"s{i}" for i in range(n)],
            "ra": ra,
            "dec": dec,
            "pmra": extra.get("pmra", np.zeros(n)),
            "pmdec": extra.get("pmdec", np.zeros(n)),
            "epoch": 2000.0,
            "mag": mags if mags is not None else np.full(n, 15.0),
        }
    )


def test_spike_rule_at_its_boundaries():
    # m <= 12.4 anywhere within the radius; else m < -0.09 d + 15.3.
    assert spike_rule([12.4, 12.41], [89.0, 89.0]).tolist() == [True, False]
    # At d = 20": limit 13.5.
    assert spike_rule([13.49, 13.5, 13.51], [20.0, 20.0, 20.0]).tolist() == [True, False, False]
    assert spike_rule([np.nan], [1.0]).tolist() == [False]


def test_every_bright_star_within_the_radius_is_tested_not_only_the_nearest():
    cand = _ref([0.0], [0.0])
    # The nearest star (10") is faint (15.0: limit 14.4 -> passes); a farther one (50", 10.0) rejects.
    stars = _ref([10.0, 50.0, 95.0], [0.0, 0.0, 0.0], mags=[15.0, 10.0, 5.0], ids=["near", "far", "out"])
    res = bright_star_veto(cand["ra"], cand["dec"], stars)
    assert res["vetoed"].tolist() == [True] and res.loc[0, "star_id"] == "far"
    assert res.loc[0, "star_dist_arcsec"] == pytest.approx(50.0, abs=1e-6) and res.loc[0, "n_stars"] == 2
    # Just outside the line: d = 30" -> limit 12.6; a 12.7 star does not reject, a 12.5 one does.
    for mag, expect in ((12.7, False), (12.5, True)):
        r = bright_star_veto(cand["ra"], cand["dec"], _ref([30.0], [0.0], mags=[mag]))
        assert r["vetoed"].tolist() == [expect]
    # Beyond the radius nothing counts, even a 5th-magnitude star.
    r = bright_star_veto(cand["ra"], cand["dec"], _ref([95.0], [0.0], mags=[5.0]))
    assert r["vetoed"].tolist() == [False] and r.loc[0, "n_stars"] == 0


def test_a_dense_field_is_not_truncated():
    rng = np.random.default_rng(1)
    n = 50_000
    stars = _ref(rng.uniform(-900, 900, n), rng.uniform(-900, 900, n), mags=rng.uniform(14.5, 16.0, n))
    cands = _ref([0.0, 300.0], [0.0, -200.0])
    stars = pd.concat([stars, _ref([0.0], [-80.0], mags=[12.0])], ignore_index=True)
    res = bright_star_veto(cands["ra"], cands["dec"], stars)
    assert res["vetoed"].tolist()[0] and res["n_stars"].min() > 100


def test_counterpart_presence_and_hpm_vetoes():
    cands = _ref([0.0, 100.0, 200.0], [0.0, 0.0, 0.0])
    other = _ref([3.0, 106.0], [0.0, 0.0])
    assert counterpart_veto(cands["ra"], cands["dec"], other, 5.0)["vetoed"].tolist() == [True, False, False]
    # Per-row radii (asteroids: 3x the ephemeris error).
    assert counterpart_veto(cands["ra"], cands["dec"], other, np.array([5.0, 7.0]))["vetoed"].tolist() == [
        True,
        True,
        False,
    ]
    assert presence_veto(cands["ra"], cands["dec"], other, 5.0)["vetoed"].tolist() == [False, True, True]
    gaia = _ref(
        [30.0, 130.0, 240.0],
        [0.0, 0.0, 0.0],
        mags=[16.0, 16.0, 21.0],
        pmra=np.array([np.nan, 5.0, np.nan]),
        pmdec=np.array([np.nan, 1.0, np.nan]),
    )
    # Only a Gaia source without proper motion, bright enough, counts.
    assert hpm_veto(cands["ra"], cands["dec"], gaia)["vetoed"].tolist() == [True, False, False]
    assert counterpart_veto(cands["ra"].iloc[:0], cands["dec"].iloc[:0], other, 5.0).empty


def test_veto_config_order_and_switches():
    assert enabled_stage_names(VetoesConfig()) == list(VETO_ORDER)
    cfg = VetoesConfig.model_validate({"asteroids": {"enabled": False}, "hpm": {"enabled": False}})
    assert enabled_stage_names(cfg) == ["not_bright_star", "no_archive", "not_variable", "in_supercosmos"]
    with pytest.raises(ValueError, match="catalog"):
        VetoesConfig.model_validate({"spikes": {"catalog": "tycho"}})


def test_hpm_veto_ignores_gaia_sources_the_plate_sees_where_gaia_puts_them():
    cands = _ref([0.0], [0.0])
    gaia = _ref(
        [30.0, -40.0],
        [0.0, 0.0],
        mags=[16.0, 16.0],
        pmra=np.array([np.nan, np.nan]),
        pmdec=np.array([np.nan, np.nan]),
        ids=["galaxy", "moved"],
    )
    plate = _ref([30.5, 0.0], [0.0, 0.0])  # a detection at the first Gaia source, and the candidate itself
    res = hpm_veto(cands["ra"], cands["dec"], gaia, plate_ra=plate["ra"], plate_dec=plate["dec"])
    assert res["vetoed"].tolist() == [True] and res.loc[0, "match_id"] == "moved"
    only_galaxy = gaia.iloc[:1]
    res = hpm_veto(cands["ra"], cands["dec"], only_galaxy, plate_ra=plate["ra"], plate_dec=plate["dec"])
    assert res["vetoed"].tolist() == [False]
    assert hpm_veto(cands["ra"], cands["dec"], only_galaxy)["vetoed"].tolist() == [True]


def test_supercosmos_veto_statuses():
    from vasco.filters.vetoes import SCOS_STATUSES, supercosmos_veto

    # Dec -17.4 / -17.6 straddle the SSA's POSS-I E limit (-17.5).
    ra = np.array([10.0, 20.0, 30.0, 40.0])
    dec = np.array([-17.4, -17.4, -17.6, -17.6])
    ref = pd.DataFrame({"source_id": [1, 2], "ra": [10.0 + 2.0 / 3600, 40.0], "dec": [-17.4, -17.6]})
    res = supercosmos_veto(ra, dec, ref, 5.0, dec_min=-17.5)
    assert res["status"].tolist() == ["pass", "fail", "not_applicable", "not_applicable"]
    assert res["vetoed"].tolist() == [False, True, False, False]
    assert set(res["status"]) <= set(SCOS_STATUSES) and res["match_id"].tolist()[0] == "1"
    empty = supercosmos_veto(ra, dec, ref.iloc[:0], 5.0, dec_min=-17.5)
    assert empty["status"].tolist() == ["fail", "fail", "not_applicable", "not_applicable"]

"""What is on the synthetic sky: stars (with kinematics) and galaxies.

Everything is drawn from a ``numpy.random.Generator`` handed in by the caller,
so a tile is a deterministic function of its seed and position.

Positions are drawn uniformly in the gnomonic (tangent) plane of the tile
centre over a square that covers the tile plus a margin.  Over a tile of
< 2 deg the tangent-plane area element differs from the spherical one by
< 1e-4, so this is uniform on the sphere to that precision.  Coordinates are
float64 throughout.

Star counts
-----------
A phenomenological model of Gaia-G differential counts (per deg^2 per mag)::

    log10 dN/dG(G; b=30, l=180) = tabulated (`_REF_G`, `_REF_LOGN`)
    dN/dG(G; l, b) = dN/dG(G; 30, 180) * (sin 30 / sin(|b| + 1.5))^p(G)
                     * (1 + 0.35 cos l) / 0.65 * (1 + bulge(l, b))

with p(G) rising from 0.9 (bright, nearby disk) to 1.45 (faint: the disk seen
to larger distance at low latitude), and within 10 deg of the plane a dust
term that flattens the faint end (up to ~4 mag of effective extinction at
G = 21 on the plane), as the real counts do.  The total density is capped
(``max_star_density``) so that a tile renders in a few seconds.

Calibration: with the M67 cluster (see :data:`CLUSTERS`) the synthetic M67
tile gives ~1,400 SExtractor detections at 5 sigma (real: 1,353); a
cluster-free field at b = +32 gives ~780; fields at b = +3 (l = 30-50) give
~7,000-7,700, where the detections are confusion-limited (SExtractor's
background RMS rises to ~370-460 ADU from unresolved stars).

Kinematics: each star gets an absolute magnitude (dwarf/giant mix), hence a
distance and parallax, and a tangential velocity (thin disk ~35 km/s, a halo
fraction at ~200 km/s for faint stars), hence a proper motion (mostly a few
mas/yr, larger for nearer stars).  A fraction ``hpm_fraction`` are high proper
motion stars with total PM 100-1000 mas/yr (log-uniform).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from vasco.astrometry.tangent import sky_to_tangent, tangent_to_sky

__all__ = [
    "galactic_lb",
    "star_counts_per_deg2",
    "galaxy_counts_per_deg2",
    "tangent_to_sky",
    "sky_to_tangent",
    "draw_stars",
    "draw_galaxies",
    "propagate",
    "Population",
    "StarCluster",
    "CLUSTERS",
    "draw_cluster_members",
]

# Reference differential counts at (l, b) = (180, +30): log10 stars/deg^2/mag in G
_REF_G = np.array([4.0, 6.0, 8.0, 10.0, 12.0, 14.0, 16.0, 17.0, 18.0, 19.0, 20.0, 21.0, 22.0])
_REF_LOGN = np.array([-2.0, -1.05, -0.2, 0.6, 1.25, 1.92, 2.6, 2.92, 3.22, 3.45, 3.6, 3.7, 3.76])

_MAS = 1.0 / 3.6e6  # deg per mas


def galactic_lb(ra: float, dec: float) -> tuple[float, float]:
    """Galactic (l, b) in degrees of an ICRS position (IAU rotation matrix)."""
    # ICRS -> Galactic rotation (Hipparcos definition)
    R = np.array(
        [
            [-0.0548755604162154, -0.8734370902348850, -0.4838350155487132],
            [+0.4941094278755837, -0.4448296299600112, +0.7469822444972189],
            [-0.8676661490190047, -0.1980763734312015, +0.4559837761750669],
        ]
    )
    a, d = np.radians(ra), np.radians(dec)
    v = np.array([np.cos(d) * np.cos(a), np.cos(d) * np.sin(a), np.sin(d)])
    g = R @ v
    lon = np.degrees(np.arctan2(g[1], g[0])) % 360.0
    lat = np.degrees(np.arcsin(np.clip(g[2], -1, 1)))
    return float(lon), float(lat)


def star_counts_per_deg2(g_edges: np.ndarray, l_deg: float, b_deg: float) -> np.ndarray:
    """Expected number of stars per deg^2 in each G bin (len(g_edges) - 1)."""
    g_edges = np.asarray(g_edges, dtype=np.float64)
    gc = 0.5 * (g_edges[1:] + g_edges[:-1])
    dg = np.diff(g_edges)
    logn = np.interp(gc, _REF_G, _REF_LOGN)
    p = np.clip(0.9 + 0.1 * (gc - 14.0), 0.9, 1.45)
    sinb = np.sin(np.radians(min(abs(b_deg) + 1.5, 90.0)))
    lat = (np.sin(np.radians(30.0)) / sinb) ** p
    lrad = np.radians(l_deg)
    lon = (1.0 + 0.35 * np.cos(lrad)) / 0.65
    lw = ((l_deg + 180.0) % 360.0) - 180.0
    bulge = 8.0 * np.exp(-0.5 * ((lw / 12.0) ** 2 + (b_deg / 7.0) ** 2))
    # dust in the plane: the faint (distant) end of the counts flattens within ~10 deg of the plane
    a_eff = 2.2 * np.clip(1.0 - abs(b_deg) / 10.0, 0.0, 1.0) * np.clip((gc - 17.5) / 2.5, 0.0, 1.8)
    ext = 10 ** (-0.4 * a_eff)
    return 10**logn * dg * lat * lon * (1.0 + bulge) * ext


def galaxy_counts_per_deg2(r_edges: np.ndarray, b_deg: float) -> np.ndarray:
    """Galaxies per deg^2 per R bin: log10 dN/dR = 2.65 + 0.45 (R - 20), dimmed by extinction."""
    r_edges = np.asarray(r_edges, dtype=np.float64)
    rc = 0.5 * (r_edges[1:] + r_edges[:-1])
    n = 10 ** (2.65 + 0.45 * (rc - 20.0)) * np.diff(r_edges)
    a_r = min(0.06 / max(np.sin(np.radians(abs(b_deg))), 1e-3), 8.0)  # crude csc-law extinction
    return n * 10 ** (-0.45 * a_r)


def propagate(
    ra: np.ndarray, dec: np.ndarray, pmra: np.ndarray, pmdec: np.ndarray, dt_yr: float | np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Move positions by proper motion (mas/yr, pmra includes cos dec) over dt years.

    Rigorous on the sphere for a straight-line (great-circle) motion, which is
    exact enough for < 1' displacements; parallax is ignored (< 0.1" here).
    """
    ra = np.asarray(ra, dtype=np.float64)
    dec = np.asarray(dec, dtype=np.float64)
    pmra = np.nan_to_num(np.asarray(pmra, dtype=np.float64))
    pmdec = np.nan_to_num(np.asarray(pmdec, dtype=np.float64))
    xi = pmra * dt_yr * _MAS
    eta = pmdec * dt_yr * _MAS
    out_ra = np.empty_like(ra)
    out_dec = np.empty_like(dec)
    # per-source tangent plane about its own position
    x = np.radians(xi)
    y = np.radians(eta)
    a0, d0 = np.radians(ra), np.radians(dec)
    den = np.cos(d0) - y * np.sin(d0)
    out_ra[:] = np.degrees(a0 + np.arctan2(x, den)) % 360.0
    out_dec[:] = np.degrees(np.arctan2(np.sin(d0) + y * np.cos(d0), np.hypot(x, den)))
    return out_ra, out_dec


@dataclass(frozen=True)
class StarCluster:
    """A rich star cluster added to the field population where it lies.

    Members follow a Plummer profile (``r_half_arcmin``) around (ra, dec),
    share the cluster's proper motion (with a small internal dispersion) and
    parallax, and have G uniform in ``g_range`` (the main sequence of an old,
    mass-segregated cluster that has lost its low-mass members) plus a few
    giants and blue stragglers brighter than the turn-off.
    """

    name: str
    ra: float
    dec: float
    r_half_arcmin: float
    n_members: int
    g_range: tuple[float, float]
    g_turnoff: float
    pmra: float
    pmdec: float
    parallax: float


#: Clusters the synthetic sky knows about.  M67 (NGC 2682) is here because the
#: real calibration tile of FIELD_NOTES.md is centred on it: its ~1,000
#: members brighter than G ~ 18.5 are about half of that tile's 1,353
#: detections.  Parameters are approximate literature values (Gaia-era
#: membership studies): centre, PM (-11.0, -2.9) mas/yr, parallax 1.13 mas.
CLUSTERS: tuple[StarCluster, ...] = (
    StarCluster("M67", 132.846, 11.814, 9.0, 900, (12.6, 18.5), 12.6, -10.97, -2.94, 1.13),
)


def draw_cluster_members(
    rng: np.random.Generator, ra0: float, dec0: float, half_xi: float, half_eta: float, hpm_fraction: float = 0.0
) -> pd.DataFrame:
    """Members of the known clusters that fall in the tangent-plane rectangle (same columns as draw_stars)."""
    frames = []
    for c in CLUSTERS:
        cxi, ceta = sky_to_tangent(c.ra, c.dec, ra0, dec0)
        reach = 10.0 * c.r_half_arcmin / 60.0  # members beyond ~10 r_half are negligible
        if abs(cxi) > half_xi + reach or abs(ceta) > half_eta + reach:
            continue
        n = int(c.n_members)
        bright = rng.random(n) < 0.06
        g = np.where(bright, rng.uniform(9.5, c.g_turnoff, n), rng.uniform(c.g_range[0], c.g_range[1], n))
        a = c.r_half_arcmin / 1.305  # Plummer scale for the half-number radius
        u = rng.uniform(1e-6, 0.999, n)
        r = a / np.sqrt(u ** (-2.0 / 3.0) - 1.0) / 60.0  # deg
        th = rng.uniform(0.0, 2 * np.pi, n)
        mra, mdec = tangent_to_sky(r * np.cos(th), r * np.sin(th), c.ra, c.dec)
        xi, eta = sky_to_tangent(mra, mdec, ra0, dec0)
        m = (np.abs(xi) < half_xi) & (np.abs(eta) < half_eta)
        k = int(m.sum())
        g = g[m]
        g_r = np.where(bright[m], rng.uniform(0.5, 0.8, k), rng.normal(0.4, 0.06, k) + 0.04 * (g - 13.0))
        rmag = g - g_r
        frames.append(
            pd.DataFrame(
                {
                    "ra": mra[m],
                    "dec": mdec[m],
                    "pmra": c.pmra + rng.normal(0.0, 0.15, k),
                    "pmdec": c.pmdec + rng.normal(0.0, 0.15, k),
                    "parallax": c.parallax + rng.normal(0.0, 0.02, k),
                    "gmag": g,
                    "rmag": rmag,
                    "ps1_r": rmag + 0.18 + 0.12 * (g_r - 0.33) + rng.normal(0.0, 0.03, k),
                    "hpm": np.zeros(k, dtype=bool),
                }
            )
        )
    if not frames:
        return pd.DataFrame(
            {c: pd.Series(dtype=t) for c, t in (("ra", float), ("dec", float), ("pmra", float), ("pmdec", float),
                                                ("parallax", float), ("gmag", float), ("rmag", float),
                                                ("ps1_r", float), ("hpm", bool))}
        )
    return pd.concat(frames, ignore_index=True)


@dataclass
class Population:
    stars: pd.DataFrame
    galaxies: pd.DataFrame
    density_scale: float  # < 1 when the star density was capped


def _sample_positions(rng, n, ra0, dec0, half_xi, half_eta):
    xi = rng.uniform(-half_xi, half_xi, n)
    eta = rng.uniform(-half_eta, half_eta, n)
    return tangent_to_sky(xi, eta, ra0, dec0)


def draw_stars(
    rng: np.random.Generator,
    ra0: float,
    dec0: float,
    half_xi: float,
    half_eta: float,
    hpm_fraction: float,
    g_min: float = 4.0,
    g_max: float = 22.0,
    max_star_density: float = 2.4e5,
) -> tuple[pd.DataFrame, float]:
    """Stars over the tangent-plane rectangle |xi| < half_xi, |eta| < half_eta (deg).

    Returns a DataFrame (ra, dec at epoch 2016.0; pmra, pmdec (mas/yr), parallax
    (mas), gmag, rmag (photographic R), ps1_r, hpm) and the density scale
    applied by the cap.
    """
    l_deg, b_deg = galactic_lb(ra0, dec0)
    area = (2 * half_xi) * (2 * half_eta)
    edges = np.arange(g_min, g_max + 1e-9, 0.05)
    lam = star_counts_per_deg2(edges, l_deg, b_deg) * area
    total = lam.sum()
    scale = 1.0
    if total > max_star_density * area:
        scale = max_star_density * area / total
        lam = lam * scale
    counts = rng.poisson(lam)
    n = int(counts.sum())
    g = np.repeat(edges[:-1], counts) + rng.uniform(0.0, 0.05, n)
    ra, dec = _sample_positions(rng, n, ra0, dec0, half_xi, half_eta)

    # colours: G - R(photographic) ~ 0.35 +- 0.15, a red (M-dwarf) tail for faint stars
    red = rng.random(n) < np.clip(0.05 + 0.04 * (g - 14.0), 0.05, 0.35)
    g_r = np.where(red, rng.uniform(0.6, 1.1, n), rng.normal(0.33, 0.13, n))
    g_r = np.clip(g_r, -0.15, 1.3)
    rmag = g - g_r
    # Pan-STARRS r (AB) relative to photographic R: r - R ~ 0.2 +- colour term
    ps1_r = rmag + 0.18 + 0.12 * (g_r - 0.33) + rng.normal(0.0, 0.03, n)

    # kinematics: absolute magnitude -> distance -> parallax and PM
    giant = rng.random(n) < np.clip(0.35 - 0.03 * (g - 10.0), 0.03, 0.35)
    m_abs = np.where(giant, rng.normal(0.8, 0.8, n), rng.uniform(3.0, 10.5, n))
    m_abs = np.where(red & ~giant, rng.uniform(8.0, 11.5, n), m_abs)
    dist_pc = 10 ** ((g - m_abs + 5.0) / 5.0)
    dist_pc = np.clip(dist_pc, 5.0, 60_000.0)
    halo = rng.random(n) < np.clip(0.02 + 0.04 * (g - 15.0) * abs(np.sin(np.radians(b_deg))), 0.02, 0.3)
    vt = np.where(halo, rng.lognormal(np.log(180.0), 0.35, n), rng.lognormal(np.log(32.0), 0.5, n))
    pm_tot = vt / (4.74 * dist_pc) * 1e3  # mas/yr
    pm_tot = np.minimum(pm_tot, 95.0)
    parallax = 1e3 / dist_pc
    hpm = rng.random(n) < hpm_fraction
    nh = int(hpm.sum())
    pm_h = np.exp(rng.uniform(np.log(100.0), np.log(1000.0), nh))
    pm_tot[hpm] = pm_h
    # nearby: v_t ~ 40-150 km/s -> parallax consistent with the large PM
    parallax[hpm] = pm_h / (4.74 * rng.uniform(40.0, 150.0, nh))
    phi = rng.uniform(0.0, 2 * np.pi, n)
    pmra = pm_tot * np.cos(phi)
    pmdec = pm_tot * np.sin(phi)
    df = pd.DataFrame(
        {
            "ra": ra.astype(np.float64),
            "dec": dec.astype(np.float64),
            "pmra": pmra,
            "pmdec": pmdec,
            "parallax": parallax,
            "gmag": g,
            "rmag": rmag,
            "ps1_r": ps1_r,
            "hpm": hpm,
        }
    )
    return df, scale


def draw_galaxies(
    rng: np.random.Generator,
    ra0: float,
    dec0: float,
    half_xi: float,
    half_eta: float,
    r_min: float = 12.0,
    r_max: float = 22.5,
) -> pd.DataFrame:
    """Galaxies: total R, PS1 PSF-like r, exponential or de Vaucouleurs profile, size, shape."""
    _, b_deg = galactic_lb(ra0, dec0)
    area = (2 * half_xi) * (2 * half_eta)
    edges = np.arange(r_min, r_max + 1e-9, 0.05)
    counts = rng.poisson(galaxy_counts_per_deg2(edges, b_deg) * area)
    n = int(counts.sum())
    rmag = np.repeat(edges[:-1], counts) + rng.uniform(0.0, 0.05, n)
    ra, dec = _sample_positions(rng, n, ra0, dec0, half_xi, half_eta)
    dev = rng.random(n) < np.clip(0.35 - 0.05 * (rmag - 16.0), 0.12, 0.35)
    sersic_n = np.where(dev, 4.0, 1.0)
    # half-light radius: ~3.5" at R=17, shrinking ~0.15 dex per mag, 0.22 dex scatter
    log_re = np.log10(3.5) - 0.15 * (rmag - 17.0) + rng.normal(0.0, 0.22, n)
    r_eff = np.clip(10**log_re, 0.4, 60.0)
    q = np.where(dev, rng.uniform(0.55, 1.0, n), rng.uniform(0.2, 1.0, n))
    pa = rng.uniform(0.0, np.pi, n)
    # PSF magnitude misses the extended light (1" seeing)
    ps1_r_psf = rmag + 0.2 + 1.25 * np.log10(1.0 + (r_eff / 0.8) ** 2)
    # Gaia keeps compact, bright galaxies only (and not all of them)
    gmag = rmag + 0.45 + 0.8 * np.log10(1.0 + (r_eff / 1.0) ** 2)
    in_gaia = (r_eff < 1.5) & (gmag < 20.7) & (rng.random(n) < 0.6)
    return pd.DataFrame(
        {
            "ra": ra,
            "dec": dec,
            "rmag": rmag,
            "ps1_r": ps1_r_psf,
            "gmag": gmag,
            "r_eff": r_eff,
            "axis_ratio": q,
            "pa": pa,
            "sersic_n": sersic_n,
            "in_gaia": in_gaia,
        }
    )

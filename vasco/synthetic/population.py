"""What is on the synthetic sky: stars (with kinematics) and galaxies.

The counts models below are evaluated per sky cell by
:mod:`vasco.synthetic.sky` (at the cell centre); the property functions turn
magnitudes drawn there into colours, kinematics and shapes.  Everything is
drawn from a ``numpy.random.Generator`` handed in by the caller, and every
draw has the full length of its input whatever the configuration (so e.g. a
different ``hpm_fraction`` changes which stars move fast, not the others'
colours).  Coordinates are float64 throughout.

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
mas/yr, larger for nearer stars).  A fraction ``hpm_fraction`` of the stars
with G <= ``hpm_gmax`` (19: bright enough to be measured on the plate) are
high proper motion stars with total PM 100-1000 mas/yr (log-uniform): they
have moved > 5.7" between any POSS-I epoch (1949-1958) and 2016.
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
    "star_properties",
    "galaxy_properties",
    "propagate",
    "StarCluster",
    "CLUSTERS",
    "cluster_members",
    "STAR_COLUMNS",
    "GALAXY_COLUMNS",
]

#: Columns of a star table (positions at epoch 2016.0).
STAR_COLUMNS: tuple[str, ...] = ("ra", "dec", "pmra", "pmdec", "parallax", "gmag", "rmag", "ps1_r", "g_r", "hpm")
#: Columns of a galaxy table.
GALAXY_COLUMNS: tuple[str, ...] = (
    "ra",
    "dec",
    "rmag",
    "ps1_r",
    "gmag",
    "r_eff",
    "axis_ratio",
    "pa",
    "sersic_n",
    "in_gaia",
)

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


def star_properties(
    rng: np.random.Generator, g: np.ndarray, b_deg: float, hpm_fraction: float, hpm_gmax: float = 19.0
) -> dict[str, np.ndarray]:
    """Colours and kinematics of stars of Gaia magnitude ``g`` at galactic latitude ``b_deg``.

    Returns a dict with ``pmra``, ``pmdec`` (mas/yr, pmra includes cos dec),
    ``parallax`` (mas), ``rmag`` (photographic R), ``ps1_r``, ``g_r`` and
    ``hpm`` (bool).  Every draw has the full length of ``g``.
    """
    g = np.asarray(g, dtype=np.float64)
    n = g.size
    # colours: G - R(photographic) ~ 0.35 +- 0.15, a red (M-dwarf) tail for faint stars
    red = rng.random(n) < np.clip(0.05 + 0.04 * (g - 14.0), 0.05, 0.35)
    gr_red = rng.uniform(0.6, 1.1, n)
    gr_blue = rng.normal(0.33, 0.13, n)
    g_r = np.clip(np.where(red, gr_red, gr_blue), -0.15, 1.3)
    rmag = g - g_r
    # Pan-STARRS r (AB) relative to photographic R: r - R ~ 0.2 +- colour term
    ps1_r = rmag + 0.18 + 0.12 * (g_r - 0.33) + rng.normal(0.0, 0.03, n)
    # kinematics: absolute magnitude -> distance -> parallax and PM
    giant = rng.random(n) < np.clip(0.35 - 0.03 * (g - 10.0), 0.03, 0.35)
    m_giant = rng.normal(0.8, 0.8, n)
    m_dwarf = rng.uniform(3.0, 10.5, n)
    m_red = rng.uniform(8.0, 11.5, n)
    m_abs = np.where(giant, m_giant, m_dwarf)
    m_abs = np.where(red & ~giant, m_red, m_abs)
    dist_pc = np.clip(10 ** ((g - m_abs + 5.0) / 5.0), 5.0, 60_000.0)
    halo = rng.random(n) < np.clip(0.02 + 0.04 * (g - 15.0) * abs(np.sin(np.radians(b_deg))), 0.02, 0.3)
    vt_halo = rng.lognormal(np.log(180.0), 0.35, n)
    vt_disk = rng.lognormal(np.log(32.0), 0.5, n)
    vt = np.where(halo, vt_halo, vt_disk)
    pm_tot = np.minimum(vt / (4.74 * dist_pc) * 1e3, 95.0)  # mas/yr
    parallax = 1e3 / dist_pc
    hpm = (rng.random(n) < hpm_fraction) & (g <= hpm_gmax)
    pm_h = np.exp(rng.uniform(np.log(100.0), np.log(1000.0), n))
    vt_h = rng.uniform(40.0, 150.0, n)  # nearby: parallax consistent with the large PM
    pm_tot = np.where(hpm, pm_h, pm_tot)
    parallax = np.where(hpm, pm_h / (4.74 * vt_h), parallax)
    phi = rng.uniform(0.0, 2 * np.pi, n)
    return {
        "pmra": pm_tot * np.cos(phi),
        "pmdec": pm_tot * np.sin(phi),
        "parallax": parallax,
        "rmag": rmag,
        "ps1_r": ps1_r,
        "g_r": g_r,
        "hpm": hpm,
    }


def galaxy_properties(rng: np.random.Generator, rmag: np.ndarray) -> dict[str, np.ndarray]:
    """Profile (exponential or de Vaucouleurs), size, shape, PS1 PSF-like r and Gaia G of galaxies of total R."""
    rmag = np.asarray(rmag, dtype=np.float64)
    n = rmag.size
    dev = rng.random(n) < np.clip(0.35 - 0.05 * (rmag - 16.0), 0.12, 0.35)
    sersic_n = np.where(dev, 4.0, 1.0)
    # half-light radius: ~3.5" at R=17, shrinking ~0.15 dex per mag, 0.22 dex scatter
    log_re = np.log10(3.5) - 0.15 * (rmag - 17.0) + rng.normal(0.0, 0.22, n)
    r_eff = np.clip(10**log_re, 0.4, 60.0)
    q_dev = rng.uniform(0.55, 1.0, n)
    q_exp = rng.uniform(0.2, 1.0, n)
    q = np.where(dev, q_dev, q_exp)
    pa = rng.uniform(0.0, np.pi, n)
    # PSF magnitude misses the extended light (1" seeing)
    ps1_r_psf = rmag + 0.2 + 1.25 * np.log10(1.0 + (r_eff / 0.8) ** 2)
    # Gaia keeps compact, bright galaxies only (and not all of them)
    gmag = rmag + 0.45 + 0.8 * np.log10(1.0 + (r_eff / 1.0) ** 2)
    in_gaia = (r_eff < 1.5) & (gmag < 20.7) & (rng.random(n) < 0.6)
    return {
        "ps1_r": ps1_r_psf,
        "gmag": gmag,
        "r_eff": r_eff,
        "axis_ratio": q,
        "pa": pa,
        "sersic_n": sersic_n,
        "in_gaia": in_gaia,
    }


def cluster_members(rng: np.random.Generator, c: StarCluster) -> pd.DataFrame:
    """All members of a cluster (columns :data:`STAR_COLUMNS`), positions at 2016.0.

    The caller seeds ``rng`` per cluster, so a member is the same object in
    every tile that contains it.
    """
    n = int(c.n_members)
    bright = rng.random(n) < 0.06
    g_bright = rng.uniform(9.5, c.g_turnoff, n)
    g_ms = rng.uniform(c.g_range[0], c.g_range[1], n)
    g = np.where(bright, g_bright, g_ms)
    a = c.r_half_arcmin / 1.305  # Plummer scale for the half-number radius
    u = rng.uniform(1e-6, 0.999, n)
    r = a / np.sqrt(u ** (-2.0 / 3.0) - 1.0) / 60.0  # deg
    th = rng.uniform(0.0, 2 * np.pi, n)
    mra, mdec = tangent_to_sky(r * np.cos(th), r * np.sin(th), c.ra, c.dec)
    gr_giant = rng.uniform(0.5, 0.8, n)
    gr_ms = rng.normal(0.4, 0.06, n) + 0.04 * (g - 13.0)
    g_r = np.where(bright, gr_giant, gr_ms)
    rmag = g - g_r
    return pd.DataFrame(
        {
            "ra": mra.astype(np.float64),
            "dec": mdec.astype(np.float64),
            "pmra": c.pmra + rng.normal(0.0, 0.15, n),
            "pmdec": c.pmdec + rng.normal(0.0, 0.15, n),
            "parallax": c.parallax + rng.normal(0.0, 0.02, n),
            "gmag": g,
            "rmag": rmag,
            "ps1_r": rmag + 0.18 + 0.12 * (g_r - 0.33) + rng.normal(0.0, 0.03, n),
            "g_r": g_r,
            "hpm": np.zeros(n, dtype=bool),
        }
    )

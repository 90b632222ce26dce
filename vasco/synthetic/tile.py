"""One synthetic POSS-I E tile: image, header, modern catalogues and truth.

:func:`make_synthetic_tile` is a deterministic function of
``(ra, dec, size_arcmin, seed, cfg)``: the same inputs give a byte-identical
image and identical tables.  The random streams are derived with
``numpy.random.SeedSequence([seed, round(ra*1e6), round((dec+90)*1e6),
round(size*1e3), tag])`` and split into independent children for the sky
population, the plate rendering, the catalogue errors and the transients, so
changing e.g. ``cfg.n_transients`` does not change the stars.

The sky (see :mod:`vasco.synthetic.population`) holds field stars whose
density follows galactic latitude and longitude, galaxies, and the members of
known rich clusters (M67, the calibration field) where they lie.

Geometry is a real POSS-I E plate: the covering plate of the shipped table
(:func:`vasco.plates.table.covering_plate` order), its cutout header as the
STScI service writes it (:func:`vasco.plates.cutout.cutout_header`), and its
plate polynomial (:class:`vasco.plates.model.PlateSolution`) maps every
object's position *at the plate epoch* (propagated back from Gaia's 2016.0
with its proper motion) to pixels.

Imperfect header astrometry (``cfg.distortion_arcsec``,
``cfg.tan_offset_arcsec``, both 0 by default; see
:mod:`vasco.synthetic.distortion`): objects can be rendered displaced by a
smooth seeded field from where the header polynomial puts them, so that the
rendered plate's real astrometry is the polynomial plus that field (the
header keeps the plain polynomial; header card ``SYNDIST``), and the explicit
TAN ``CRVAL`` can be moved away from the polynomial (``SYNTANOF`` arcsec at
``SYNTANPA`` deg east of north).  The truth's ``x``/``y`` are always where an
object was rendered, its ``ra``/``dec`` the true position at the plate epoch.

Truth
-----
One row per rendered object (``obj_id``, ``cls``, ``x``, ``y`` 1-based pixels,
``ra``/``dec`` at the plate epoch, ``mag`` = photographic R, ``gmag``,
``in_gaia``, ``in_ps1``, ``pm_total`` in mas/yr) plus, for bright stars, one
``halo`` row (``extent_px`` = radius within which the star adds more than one
sky sigma) and four ``spike`` rows (``angle_deg`` 0/90/180/270 along the
plate axes, ``extent_px`` = length), each with ``parent_id`` = the star's
``obj_id`` (-1 for a bright star just off the tile).  Defects (``defect``,
``dust``, ``scratch``) have ``extent_px`` = FWHM (spots, dust) or length
(scratches, with ``angle_deg``); galaxies the half-light radius.
``extent_arcsec`` is ``extent_px`` in arcsec.  Catalogued objects carry their
Gaia ``source_id`` / PS1 ``ps1_objid`` (-1 otherwise).

Injected transients
-------------------
``cfg.n_transients`` point sources rendered exactly like stars (same PSF and
photographic response), R uniform in ``[transient_mag_min,
transient_mag_max]``, in neither catalogue, at least
``transient_clearance_arcsec`` from every rendered object and every Gaia /
PS1 position (including sources too faint to see on the plate), outside the
halo (+ clearance) of every bright star, off spikes and scratches, and at
least 10 px from the tile edge.  In crowded fields fewer may fit: the truth
table has as many ``transient`` rows as were placed.

For each transient:

``snr_model``
    The SNR_WIN SExtractor would measure without noise: the transient is
    rendered alone on the local sky (noise-free), background-subtracted, and
    ``SNR = sum(w p) / (sigma sqrt(sum w^2))`` with a Gaussian window ``w`` of
    ``sigma_w = d50 / 2.355`` (d50 = half-light diameter, SExtractor's
    window; = FWHM for a Gaussian) and ``sigma`` the local background RMS
    (the larger of the grain noise and the clipped RMS of the rendered image
    in the transient's 64-px mesh, as SExtractor measures it; GAIN = 0, so
    background noise only).
``recoverable``
    ``snr_model > 30`` AND point-like: the noise-free peak stays below the
    saturation knee, the peak density beyond which stars are photographically
    grown (their FWHM_IMAGE exceeds twice that of faint stars, which the
    paper's FWHM MAD clip removes; see
    :func:`vasco.synthetic.render.growth_knee_density`).  With the default
    transient magnitudes (R >= 16) the knee is rarely reached, so in practice
    the SNR condition decides.  The survey's completeness is
    recovered / recoverable with this definition.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
from astropy.io import fits
from scipy.spatial import cKDTree

from vasco.config import SyntheticConfig
from vasco.plates.cutout import cutout_header, cutout_shape_px
from vasco.plates.model import PlateSolution
from vasco.plates.table import PlateRecord, covering_plates
from vasco.synthetic import population as pop
from vasco.synthetic import render as rnd
from vasco.synthetic.distortion import DistortionField, TileAstrometry, offset_position

__all__ = ["SyntheticTile", "make_synthetic_tile", "GAIA_EPOCH", "TRUTH_COLUMNS"]

GAIA_EPOCH = 2016.0
_SEED_TAG = 0x7A5C0  # namespaces the synthetic-sky streams
_EDGE_PX = 10.0
_BRIGHT_R = 12.5  # stars brighter than this get halo/spike truth rows
_SPIKE_R = 13.0  # stars brighter than this get rendered spikes
_MARGIN_ARCSEC = 90.0  # faint objects are drawn this far outside the tile
_BRIGHT_MARGIN_ARCSEC = 300.0  # bright stars (G < 13) this far: their halos reach in

TRUTH_COLUMNS = (
    "obj_id",
    "cls",
    "x",
    "y",
    "ra",
    "dec",
    "mag",
    "gmag",
    "in_gaia",
    "in_ps1",
    "pm_total",
    "snr_model",
    "recoverable",
    "extent_px",
    "extent_arcsec",
    "angle_deg",
    "parent_id",
    "source_id",
    "ps1_objid",
)


@dataclass
class SyntheticTile:
    """A synthetic DSS1 POSS-I E cutout and everything known about it."""

    image: np.ndarray  # int16 (ny, nx)
    header: fits.Header
    gaia: pd.DataFrame
    ps1: pd.DataFrame
    truth: pd.DataFrame
    plate: PlateRecord
    info: dict = field(default_factory=dict)  # sky level, noise, density cap...


def _rng_streams(seed: int, ra: float, dec: float, size_arcmin: float, n: int) -> list[np.random.Generator]:
    entropy = [
        int(seed),
        int(round((ra % 360.0) * 1e6)),
        int(round((dec + 90.0) * 1e6)),
        int(round(size_arcmin * 1e3)),
        _SEED_TAG,
    ]
    if min(entropy) < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    return [np.random.default_rng(s) for s in np.random.SeedSequence(entropy).spawn(n)]


def _choose_plate(ra: float, dec: float, size_arcmin: float) -> tuple[PlateRecord, fits.Header]:
    """The nearest-centre plate whose scan holds the whole cutout, and the cutout header."""
    plates = covering_plates(ra, dec, margin_px=0.0)
    if not plates:
        raise LookupError(f"no POSS-I E plate covers RA={ra:.6f} Dec={dec:+.6f}")
    errors = []
    for plate in plates:
        try:
            hdr = cutout_header(plate, ra, dec, cutout_shape_px(plate, size_arcmin))
        except ValueError as exc:
            errors.append(str(exc))
            continue
        return plate, hdr
    raise LookupError(
        f"no POSS-I E plate holds a whole {size_arcmin}' cutout at RA={ra:.6f} Dec={dec:+.6f}: " + "; ".join(errors)
    )


def _position_ids(ra: np.ndarray, dec: np.ndarray, salt: int) -> np.ndarray:
    """int64 identifiers derived from position (unique to 1e-6 deg) and a per-catalogue salt."""
    rq = np.round(np.asarray(ra) % 360.0 * 1e6).astype(np.int64)  # < 2^29
    dq = np.round((np.asarray(dec) + 90.0) * 1e6).astype(np.int64)  # < 2^28
    return (np.int64(salt) << np.int64(58)) | (rq << np.int64(28)) | dq


def make_synthetic_tile(
    ra: float,
    dec: float,
    size_arcmin: float,
    seed: int,
    cfg: SyntheticConfig,
    params: rnd.RenderParams | None = None,
) -> SyntheticTile:
    """Render one synthetic POSS-I E tile centred on (ra, dec).

    Parameters
    ----------
    ra, dec : float
        Tile centre (deg, ICRS).
    size_arcmin : float
        Tile width and height.
    seed : int
        Survey seed (>= 0).
    cfg : SyntheticConfig
        Population and catalogue settings.
    params : RenderParams, optional
        Plate-rendering model (defaults: calibrated on real DSS1 red tiles).

    Returns
    -------
    SyntheticTile
        ``image`` (int16), ``header`` (the cutout header + ``SYNTHET`` = T,
        ``SYNSEED``, and ``SYNDIST``/``SYNTANOF``/``SYNTANPA`` when the header
        astrometry is made imperfect), ``gaia`` and ``ps1`` (catalogue DataFrames), ``truth``
        (see the module docstring) and ``plate``.
    """
    params = params or rnd.RenderParams()
    ra = float(ra) % 360.0
    dec = float(dec)
    size_arcmin = float(size_arcmin)
    if not (size_arcmin > 0):
        raise ValueError(f"size_arcmin must be positive, got {size_arcmin}")
    # a fifth stream (header astrometry errors) leaves the first four unchanged
    rng_pop, rng_ren, rng_cat, rng_tr, rng_ast = _rng_streams(seed, ra, dec, size_arcmin, 5)

    plate, header = _choose_plate(ra, dec, size_arcmin)
    sol = PlateSolution.from_header(header)
    nx, ny = int(header["NAXIS1"]), int(header["NAXIS2"])
    pixscale = float(plate.pixel_scale_arcsec)
    epoch = float(plate.epoch)
    dt_plate = epoch - GAIA_EPOCH

    # ---- imperfect header astrometry (both drawn always, used only when asked for)
    tan_pa = float(rng_ast.uniform(0.0, 360.0))
    dfield = DistortionField.draw(rng_ast, cfg.distortion_arcsec, nx, ny, sol_pixscale(sol, nx, ny))
    true_ast = TileAstrometry(sol, dfield)  # the rendered plate's real astrometry

    # ---- footprint in the tangent plane of the tile centre
    ex = np.array([0.5, nx + 0.5, nx + 0.5, 0.5, 0.5 * (nx + 1), 0.5 * (nx + 1), 0.5, nx + 0.5])
    ey = np.array([0.5, 0.5, ny + 0.5, ny + 0.5, 0.5, ny + 0.5, 0.5 * (ny + 1), 0.5 * (ny + 1)])
    cra, cdec = sol.pix_to_sky(ex, ey)
    cxi, ceta = pop.sky_to_tangent(cra, cdec, ra, dec)
    half_xi = float(np.max(np.abs(cxi)))
    half_eta = float(np.max(np.abs(ceta)))

    # ---- population: bright stars over a wide margin, the rest over a narrow one
    m_b = _BRIGHT_MARGIN_ARCSEC / 3600.0
    m_f = _MARGIN_ARCSEC / 3600.0
    bright, _ = pop.draw_stars(
        rng_pop, ra, dec, half_xi + m_b, half_eta + m_b, cfg.hpm_fraction, g_min=4.0, g_max=13.0,
        max_star_density=math.inf,
    )
    faint, density_scale = pop.draw_stars(
        rng_pop, ra, dec, half_xi + m_f, half_eta + m_f, cfg.hpm_fraction, g_min=13.0, g_max=22.0,
        max_star_density=cfg.max_star_density_per_deg2,
    )
    members = pop.draw_cluster_members(rng_pop, ra, dec, half_xi + m_f, half_eta + m_f)
    stars = pd.concat([bright, faint, members], ignore_index=True)
    gals = pop.draw_galaxies(rng_pop, ra, dec, half_xi + m_f, half_eta + m_f)

    # positions at the plate epoch -> pixels
    s_ra_p, s_dec_p = pop.propagate(stars.ra, stars.dec, stars.pmra, stars.pmdec, dt_plate)
    sx, sy = true_ast.sky_to_pix(s_ra_p, s_dec_p)
    gx, gy = true_ast.sky_to_pix(gals.ra.to_numpy(), gals.dec.to_numpy())
    sx, sy, gx, gy = (np.asarray(a, dtype=np.float64) for a in (sx, sy, gx, gy))

    # ---- plate state: sky, plateau, PSF field
    plate_xc = 0.5 * (plate.naxis1 + 1) - float(header["CNPIX1"])
    plate_yc = 0.5 * (plate.naxis2 + 1) - float(header["CNPIX2"])
    plate_rmax = 0.5 * math.hypot(plate.naxis1, plate.naxis2)
    ctx = rnd.make_context(rng_ren, params, nx, ny, pixscale, plate_xc, plate_yc, plate_rmax)
    sky = rnd.sky_exposure_map(rng_ren, ctx, params)
    d_sky = float(ctx.curve.density(ctx.sky_exposure))
    e1 = float(ctx.curve.exposure(d_sky + ctx.noise_sigma) - ctx.sky_exposure)
    s_flux = rnd.mag_to_flux(stars.rmag.to_numpy(), params)
    halo_r = rnd.point_source_radius(ctx, s_flux, e1) - 1.0
    t0 = params.spike_t0_arcsec / pixscale
    spike_len = np.where(
        stars.rmag.to_numpy() < _SPIKE_R, rnd.spike_length_px(ctx, s_flux, params.spike_weight, t0), 0.0
    )

    # ---- defects (pixel space)
    defects = rnd.draw_defects(
        rng_ren, nx, ny, pixscale, cfg.n_defects_per_deg2, ctx.noise_sigma,
        dust_per_deg2=cfg.n_dust_per_deg2, scratches_per_deg2=cfg.n_scratches_per_deg2,
    )

    # ---- modern catalogues
    gaia, s_in_gaia, g_in_gaia = _gaia_catalogue(rng_cat, stars, gals, sx, sy, halo_r, cfg)
    ps1, s_in_ps1, g_in_ps1 = _ps1_catalogue(rng_cat, stars, gals, cfg)

    # ---- transients
    tr = _place_transients(
        rng_tr, cfg, true_ast, nx, ny, pixscale, ra, dec, stars, sx, sy, gals, gx, gy, gaia, ps1,
        halo_r, spike_len, defects,
    )
    t_flux = rnd.mag_to_flux(tr["mag"], params)

    # ---- render
    inside = lambda x, y, pad: (x > -pad) & (x < nx + pad) & (y > -pad) & (y < ny + pad)  # noqa: E731
    keep_s = inside(sx, sy, np.maximum(halo_r, spike_len) + 5.0)
    keep_g = inside(gx, gy, 60.0)
    px = np.concatenate([sx[keep_s], tr["x"]])
    py = np.concatenate([sy[keep_s], tr["y"]])
    pmag = np.concatenate([stars.rmag.to_numpy()[keep_s], tr["mag"]])
    rendered = rnd.render_plate(
        rng_ren, params, ctx, sky, px, py, pmag,
        gx[keep_g], gy[keep_g], gals.rmag.to_numpy()[keep_g], gals.r_eff.to_numpy()[keep_g],
        gals.axis_ratio.to_numpy()[keep_g], gals.pa.to_numpy()[keep_g], gals.sersic_n.to_numpy()[keep_g],
        defects,
    )

    # ---- transients: predicted SNR_WIN and recoverability
    rms_map = rnd.background_rms_map(rendered.image)
    snr, peak = _transient_snr(ctx, params, sky, tr["x"], tr["y"], t_flux, rms_map)
    knee = rnd.growth_knee_density(ctx, params)
    recoverable = (snr > 30.0) & (peak < knee)

    truth = _truth_table(
        true_ast, nx, ny, stars, s_ra_p, s_dec_p, sx, sy, s_in_gaia, s_in_ps1, halo_r, spike_len,
        gals, gx, gy, g_in_gaia, g_in_ps1, tr, snr, recoverable, defects,
    )

    hdr = header.copy()
    hdr["SYNTHET"] = (True, "VASCO synthetic sky (not a real scan)")
    hdr["SYNSEED"] = (int(seed), "VASCO synthetic sky seed")
    hdr["SYNSKY"] = (round(d_sky, 1), "Synthetic: mean sky density (ADU)")
    hdr["SYNNOISE"] = (round(ctx.noise_sigma, 1), "Synthetic: grain noise sigma on the sky (ADU)")
    hdr["SYNSAT"] = (round(ctx.curve.d_sat, 1), "Synthetic: plateau density (ADU)")
    hdr["DATAMIN"] = (int(rendered.image.min()), "Minimum data value")
    hdr["DATAMAX"] = (int(rendered.image.max()), "Maximum data value")
    if cfg.tan_offset_arcsec > 0:
        c1, c2 = offset_position(float(hdr["CRVAL1"]), float(hdr["CRVAL2"]), tan_pa, cfg.tan_offset_arcsec)
        hdr["CRVAL1"], hdr["CRVAL2"] = c1, c2
        hdr["SYNTANOF"] = (float(cfg.tan_offset_arcsec), "Synthetic: TAN offset from polynomial (arcsec)")
        hdr["SYNTANPA"] = (round(tan_pa, 6), "Synthetic: PA of that offset (deg E of N)")
    if cfg.distortion_arcsec > 0:
        hdr["SYNDIST"] = (float(cfg.distortion_arcsec), "Synthetic: RMS distortion (arcsec)")

    info = {
        "sky_density": d_sky,
        "noise_sigma": ctx.noise_sigma,
        "d_sat": ctx.curve.d_sat,
        "knee_density": knee,
        "density_scale": float(density_scale),
        "n_stars_drawn": int(len(stars)),
        "n_stars_rendered": int(keep_s.sum()),
        "pixscale": pixscale,
        "epoch": epoch,
        "distortion_arcsec": float(cfg.distortion_arcsec),
        "distortion_field": asdict(dfield),  # DistortionField(**this) rebuilds it
        "tan_offset_arcsec": float(cfg.tan_offset_arcsec),
        "tan_offset_pa_deg": tan_pa if cfg.tan_offset_arcsec > 0 else None,
    }
    return SyntheticTile(image=rendered.image, header=hdr, gaia=gaia, ps1=ps1, truth=truth, plate=plate, info=info)


# ---------------------------------------------------------------------------
# Catalogues
# ---------------------------------------------------------------------------


def _gaia_catalogue(rng, stars, gals, sx, sy, halo_r, cfg):
    """Gaia-like list at epoch 2016.0 (G <= gaia_gmax), with PM, parallax and small errors.

    Incompleteness near bright stars: within the halo radius of a star with
    R < 12.5, faint stars (G > 16) are dropped with a probability rising
    toward the bright star.  High-proper-motion stars are never dropped:
    Gaia's completeness for them is high (they are bright in absolute terms
    and Gaia's scanning law resolves them), and the pipeline's HPM veto
    depends on them being there.
    """
    g = stars.gmag.to_numpy()
    n = len(stars)
    sel = g <= cfg.gaia_gmax
    # incompleteness around bright stars
    bright = np.flatnonzero(stars.rmag.to_numpy() < _BRIGHT_R)
    drop = np.zeros(n, dtype=bool)
    if bright.size and n:
        tree = cKDTree(np.c_[sx, sy])
        u = rng.random(n)
        for b in bright:
            rad = max(float(halo_r[b]), 3.0)
            for j in tree.query_ball_point([sx[b], sy[b]], rad):
                if j == b or g[j] <= 16.0:
                    continue
                d = math.hypot(sx[j] - sx[b], sy[j] - sy[b])
                p_drop = 0.8 * (1.0 - d / rad) + 0.2
                if u[j] < p_drop:
                    drop[j] = True
    drop &= ~stars.hpm.to_numpy()
    sel &= ~drop
    # position errors ~0.1 mas (bright) to ~1 mas (G=21), PM and parallax errors alike
    sig = np.clip(0.1 * 10 ** (0.2 * (g - 15.0)), 0.05, 1.2)
    ra_err = rng.normal(0.0, 1.0, n) * sig
    de_err = rng.normal(0.0, 1.0, n) * sig
    pm_err = rng.normal(0.0, 1.0, (3, n)) * sig * 0.6  # ~0.6 mas/yr at G=20
    two_param = rng.random(n) < np.clip((g - 19.5) * 0.2, 0.0, 0.3)
    two_param &= ~stars.hpm.to_numpy()
    cosd = np.cos(np.radians(stars.dec.to_numpy()))
    gra = stars.ra.to_numpy() + ra_err / 3.6e6 / cosd
    gde = stars.dec.to_numpy() + de_err / 3.6e6
    pmra = np.where(two_param, np.nan, stars.pmra.to_numpy() + pm_err[0])
    pmdec = np.where(two_param, np.nan, stars.pmdec.to_numpy() + pm_err[1])
    plx = np.where(two_param, np.nan, stars.parallax.to_numpy() + pm_err[2])
    gmag_obs = g + rng.normal(0.0, 1.0, n) * np.clip(0.002 * 10 ** (0.2 * (g - 15.0)), 0.0003, 0.03)
    s_df = pd.DataFrame(
        {
            "source_id": _position_ids(stars.ra.to_numpy(), stars.dec.to_numpy(), 1),
            "ra": gra,
            "dec": gde,
            "pmra": pmra,
            "pmdec": pmdec,
            "parallax": plx,
            "phot_g_mean_mag": gmag_obs,
            "ref_epoch": GAIA_EPOCH,
        }
    )[sel]
    # compact, bright galaxies: two-parameter solutions (no PM / parallax)
    gsel = gals.in_gaia.to_numpy() & (gals.gmag.to_numpy() <= cfg.gaia_gmax)
    ng = int(gsel.sum())
    g_df = pd.DataFrame(
        {
            "source_id": _position_ids(gals.ra.to_numpy()[gsel], gals.dec.to_numpy()[gsel], 2),
            "ra": gals.ra.to_numpy()[gsel] + rng.normal(0.0, 2.0, ng) / 3.6e6,
            "dec": gals.dec.to_numpy()[gsel] + rng.normal(0.0, 2.0, ng) / 3.6e6,
            "pmra": np.nan,
            "pmdec": np.nan,
            "parallax": np.nan,
            "phot_g_mean_mag": gals.gmag.to_numpy()[gsel],
            "ref_epoch": GAIA_EPOCH,
        }
    )
    out = pd.concat([s_df, g_df], ignore_index=True)
    out = out.astype(
        {
            "source_id": np.int64,
            "ra": np.float64,
            "dec": np.float64,
            "pmra": np.float64,
            "pmdec": np.float64,
            "parallax": np.float64,
            "phot_g_mean_mag": np.float64,
            "ref_epoch": np.float64,
        }
    )
    return out.sort_values("source_id", kind="stable").reset_index(drop=True), sel, gsel


def _ps1_catalogue(rng, stars, gals, cfg):
    """PS1-like list (r <= ps1_rmax) at each source's epochMean (~2012), no proper motions.

    Positions are the 2016 positions moved back by proper motion to
    ``epochMean`` plus ~10-50 mas errors; nothing south of Dec -30 (PS1's
    coverage).
    """
    n = len(stars)
    r = stars.ps1_r.to_numpy()
    ep = rng.uniform(2010.6, 2013.6, n)
    s_ra, s_dec = pop.propagate(stars.ra, stars.dec, stars.pmra, stars.pmdec, ep - GAIA_EPOCH)
    sig = np.clip(10.0 * 10 ** (0.2 * (r - 18.0)), 8.0, 60.0)  # mas
    cosd = np.cos(np.radians(s_dec))
    s_ra = s_ra + rng.normal(0.0, 1.0, n) * sig / 3.6e6 / cosd
    s_dec = s_dec + rng.normal(0.0, 1.0, n) * sig / 3.6e6
    sel = (r <= cfg.ps1_rmax) & (s_dec >= -30.0)
    ng = len(gals)
    gr = gals.ps1_r.to_numpy()
    gep = rng.uniform(2010.6, 2013.6, ng)
    gsig = np.clip(20.0 * 10 ** (0.2 * (gr - 18.0)), 15.0, 100.0)
    g_ra = gals.ra.to_numpy() + rng.normal(0.0, 1.0, ng) * gsig / 3.6e6 / np.cos(np.radians(gals.dec.to_numpy()))
    g_dec = gals.dec.to_numpy() + rng.normal(0.0, 1.0, ng) * gsig / 3.6e6
    gsel = (gr <= cfg.ps1_rmax) & (g_dec >= -30.0)
    df = pd.concat(
        [
            pd.DataFrame(
                {
                    "objID": _position_ids(stars.ra.to_numpy()[sel], stars.dec.to_numpy()[sel], 3),
                    "raMean": s_ra[sel],
                    "decMean": s_dec[sel],
                    "rMeanPSFMag": r[sel],
                    "epochMean": ep[sel],
                }
            ),
            pd.DataFrame(
                {
                    "objID": _position_ids(gals.ra.to_numpy()[gsel], gals.dec.to_numpy()[gsel], 4),
                    "raMean": g_ra[gsel],
                    "decMean": g_dec[gsel],
                    "rMeanPSFMag": gr[gsel],
                    "epochMean": gep[gsel],
                }
            ),
        ],
        ignore_index=True,
    )
    df = df.astype(
        {"objID": np.int64, "raMean": np.float64, "decMean": np.float64, "rMeanPSFMag": np.float64, "epochMean": np.float64}
    )
    return df.sort_values("objID", kind="stable").reset_index(drop=True), sel, gsel


# ---------------------------------------------------------------------------
# Transients
# ---------------------------------------------------------------------------


def _place_transients(
    rng, cfg, ast, nx, ny, pixscale, ra0, dec0, stars, sx, sy, gals, gx, gy, gaia, ps1, halo_r, spike_len, defects
) -> dict:
    """Positions (pixels) and R magnitudes of the injected transients.

    Candidates are drawn uniformly >= 10 px inside the tile and rejected when
    closer than the clearance to any rendered object or catalogue position,
    inside a bright star's halo (+ clearance), or near a spike or scratch.
    """
    empty = {"x": np.zeros(0), "y": np.zeros(0), "mag": np.zeros(0)}
    n_want = int(cfg.n_transients)
    if n_want <= 0:
        return empty
    clear_px = cfg.transient_clearance_arcsec / pixscale
    # (a) point-like things, all with the clearance radius
    px_list = [sx, gx]
    py_list = [sy, gy]
    for cat, rc, dc in ((gaia, "ra", "dec"), (ps1, "raMean", "decMean")):
        if len(cat):
            cx, cy = ast.sky_to_pix(cat[rc].to_numpy(), cat[dc].to_numpy())
            px_list.append(np.asarray(cx, dtype=np.float64))
            py_list.append(np.asarray(cy, dtype=np.float64))
    ax = np.concatenate(px_list)
    ay = np.concatenate(py_list)
    ok = np.isfinite(ax) & np.isfinite(ay)
    ok &= (ax > -clear_px) & (ax < nx + clear_px) & (ay > -clear_px) & (ay < ny + clear_px)
    tree = cKDTree(np.c_[ax[ok], ay[ok]]) if ok.any() else None
    # (b) extended things with their own radius: bright-star halos, large galaxies, dust and spots
    bx, by, br = [], [], []
    big = stars.rmag.to_numpy() < 16.0
    bx.append(sx[big])
    by.append(sy[big])
    br.append(np.maximum(halo_r[big], 0.0) + clear_px)
    reff = 2.0 * gals.r_eff.to_numpy() / pixscale
    gbig = reff > 1.0
    bx.append(gx[gbig])
    by.append(gy[gbig])
    br.append(reff[gbig] + clear_px)
    for d in defects:
        if d["cls"] in ("defect", "dust"):
            bx.append(np.array([d["x"]]))
            by.append(np.array([d["y"]]))
            br.append(np.array([clear_px + d["fwhm_px"]]))
    bx, by, br = np.concatenate(bx), np.concatenate(by), np.concatenate(br)
    keep = (bx > -br) & (bx < nx + br) & (by > -br) & (by < ny + br)
    bx, by, br = bx[keep], by[keep], br[keep]
    # (c) segments: spikes reaching beyond their star's halo, scratches
    seg = []
    for i in np.flatnonzero(spike_len > np.maximum(halo_r, 0.0)):
        L = spike_len[i]
        seg.append((sx[i] - L, sy[i], sx[i] + L, sy[i], clear_px + 2.0))
        seg.append((sx[i], sy[i] - L, sx[i], sy[i] + L, clear_px + 2.0))
    for d in defects:
        if d["cls"] == "scratch":
            th = math.radians(d["angle_deg"])
            hx, hy = 0.5 * d["extent_px"] * math.cos(th), 0.5 * d["extent_px"] * math.sin(th)
            seg.append((d["x"] - hx, d["y"] - hy, d["x"] + hx, d["y"] + hy, clear_px + 3.0))
    seg_a = np.asarray(seg, dtype=np.float64).reshape(-1, 5)

    placed_x: list[float] = []
    placed_y: list[float] = []
    batch = max(500, 25 * n_want)
    for _ in range(40):
        cx = rng.uniform(_EDGE_PX + 0.5, nx + 0.5 - _EDGE_PX, batch)
        cy = rng.uniform(_EDGE_PX + 0.5, ny + 0.5 - _EDGE_PX, batch)
        good = np.ones(batch, dtype=bool)
        if tree is not None:
            d, _ = tree.query(np.c_[cx, cy], k=1)
            good &= d >= clear_px
        if bx.size:
            ctree = cKDTree(np.c_[cx, cy])
            hit = ctree.query_ball_point(np.c_[bx, by], r=br)
            bad = np.fromiter((j for h in hit for j in h), dtype=np.int64)
            good[bad] = False
        if seg_a.size:
            x0, y0, x1, y1, rr = (seg_a[:, k][None, :] for k in range(5))
            vx, vy = x1 - x0, y1 - y0
            L2 = np.maximum(vx * vx + vy * vy, 1e-12)
            t = np.clip(((cx[:, None] - x0) * vx + (cy[:, None] - y0) * vy) / L2, 0.0, 1.0)
            dseg = np.hypot(cx[:, None] - (x0 + t * vx), cy[:, None] - (y0 + t * vy))
            good &= ~np.any(dseg < rr, axis=1)
        for i in np.flatnonzero(good):
            if len(placed_x) >= n_want:
                break
            if placed_x and np.min(np.hypot(np.asarray(placed_x) - cx[i], np.asarray(placed_y) - cy[i])) < clear_px:
                continue
            placed_x.append(float(cx[i]))
            placed_y.append(float(cy[i]))
        if len(placed_x) >= n_want:
            break
    n = len(placed_x)
    mags = rng.uniform(cfg.transient_mag_min, cfg.transient_mag_max, n_want)[:n]
    return {"x": np.asarray(placed_x, dtype=np.float64), "y": np.asarray(placed_y, dtype=np.float64), "mag": mags}


def _transient_snr(ctx, params, sky, x, y, flux, rms_map, mesh: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Noise-free SNR_WIN prediction and peak density (sky included) of isolated transients.

    The noise is the larger of the grain noise on the local sky and the
    clipped background RMS of the rendered image in the transient's 64-px
    mesh (what SExtractor uses; it includes confusion noise in dense fields).
    """
    snr = np.zeros(len(x))
    peak = np.zeros(len(x))
    for i in range(len(x)):
        xi, yi = float(x[i]), float(y[i])
        ix = min(max(int(round(xi - 1.0)), 0), ctx.nx - 1)
        iy = min(max(int(round(yi - 1.0)), 0), ctx.ny - 1)
        e_sky = float(sky[iy, ix])
        stamp, sx, sy = rnd.isolated_star(ctx, float(flux[i]), xi, yi, e_sky)
        d_sky = float(ctx.curve.density(e_sky))
        sigma = float(params.noise.amplitude(np.array([d_sky]), d_sky, ctx.curve)[0])
        sigma = max(sigma, float(rms_map[min(iy // mesh, rms_map.shape[0] - 1), min(ix // mesh, rms_map.shape[1] - 1)]))
        snr[i], _ = rnd.window_snr(stamp, sx, sy, sigma)
        peak[i] = d_sky + float(stamp.max())
    return snr, peak


# ---------------------------------------------------------------------------
# Truth
# ---------------------------------------------------------------------------


def _truth_table(
    ast, nx, ny, stars, s_ra_p, s_dec_p, sx, sy, s_in_gaia, s_in_ps1, halo_r, spike_len,
    gals, gx, gy, g_in_gaia, g_in_ps1, tr, snr, recoverable, defects,
) -> pd.DataFrame:
    sol = ast.sol
    on = lambda x, y: (x >= 0.5) & (x <= nx + 0.5) & (y >= 0.5) & (y <= ny + 0.5)  # noqa: E731
    parts = []
    pm_tot = np.hypot(stars.pmra.to_numpy(), stars.pmdec.to_numpy())
    s_on = on(sx, sy)
    star_ids = np.full(len(stars), -1, dtype=np.int64)
    n_on = int(s_on.sum())
    star_ids[s_on] = np.arange(n_on)
    parts.append(
        pd.DataFrame(
            {
                "cls": np.where(stars.hpm.to_numpy(), "hpm_star", "star")[s_on],
                "x": sx[s_on],
                "y": sy[s_on],
                "ra": s_ra_p[s_on],
                "dec": s_dec_p[s_on],
                "mag": stars.rmag.to_numpy()[s_on],
                "gmag": stars.gmag.to_numpy()[s_on],
                "in_gaia": s_in_gaia[s_on],
                "in_ps1": s_in_ps1[s_on],
                "pm_total": pm_tot[s_on],
                "source_id": np.where(
                    s_in_gaia, _position_ids(stars.ra.to_numpy(), stars.dec.to_numpy(), 1), -1
                )[s_on],
                "ps1_objid": np.where(
                    s_in_ps1, _position_ids(stars.ra.to_numpy(), stars.dec.to_numpy(), 3), -1
                )[s_on],
            }
        )
    )
    g_on = on(gx, gy)
    parts.append(
        pd.DataFrame(
            {
                "cls": "galaxy",
                "x": gx[g_on],
                "y": gy[g_on],
                "ra": gals.ra.to_numpy()[g_on],
                "dec": gals.dec.to_numpy()[g_on],
                "mag": gals.rmag.to_numpy()[g_on],
                "gmag": gals.gmag.to_numpy()[g_on],
                "in_gaia": g_in_gaia[g_on],
                "in_ps1": g_in_ps1[g_on],
                "pm_total": 0.0,
                "extent_px": (gals.r_eff.to_numpy() / sol_pixscale(sol, nx, ny))[g_on],
                "angle_deg": np.degrees(gals.pa.to_numpy())[g_on],
                "source_id": np.where(g_in_gaia, _position_ids(gals.ra.to_numpy(), gals.dec.to_numpy(), 2), -1)[g_on],
                "ps1_objid": np.where(g_in_ps1, _position_ids(gals.ra.to_numpy(), gals.dec.to_numpy(), 4), -1)[g_on],
            }
        )
    )
    if len(tr["x"]):
        t_ra, t_dec = ast.pix_to_sky(tr["x"], tr["y"])
        parts.append(
            pd.DataFrame(
                {
                    "cls": "transient",
                    "x": tr["x"],
                    "y": tr["y"],
                    "ra": np.atleast_1d(t_ra),
                    "dec": np.atleast_1d(t_dec),
                    "mag": tr["mag"],
                    "in_gaia": False,
                    "in_ps1": False,
                    "pm_total": 0.0,
                    "snr_model": snr,
                    "recoverable": recoverable,
                }
            )
        )
    if defects:
        dx = np.array([d["x"] for d in defects])
        dy = np.array([d["y"] for d in defects])
        d_ra, d_dec = ast.pix_to_sky(dx, dy)
        parts.append(
            pd.DataFrame(
                {
                    "cls": [d["cls"] for d in defects],
                    "x": dx,
                    "y": dy,
                    "ra": np.atleast_1d(d_ra),
                    "dec": np.atleast_1d(d_dec),
                    "extent_px": [d["extent_px"] for d in defects],
                    "angle_deg": [d["angle_deg"] for d in defects],
                    "in_gaia": False,
                    "in_ps1": False,
                }
            )
        )
    # halos and spikes of bright stars on the tile or near enough to reach it
    reach = np.maximum(halo_r, spike_len)
    near = (sx > 0.5 - reach) & (sx < nx + 0.5 + reach) & (sy > 0.5 - reach) & (sy < ny + 0.5 + reach)
    b = np.flatnonzero((stars.rmag.to_numpy() < _BRIGHT_R) & near)
    if b.size:
        parts.append(
            pd.DataFrame(
                {
                    "cls": "halo",
                    "x": sx[b],
                    "y": sy[b],
                    "ra": s_ra_p[b],
                    "dec": s_dec_p[b],
                    "mag": stars.rmag.to_numpy()[b],
                    "gmag": stars.gmag.to_numpy()[b],
                    "extent_px": halo_r[b],
                    "parent_id": star_ids[b],
                    "in_gaia": False,
                    "in_ps1": False,
                }
            )
        )
        sp = b[spike_len[b] > 2.0]
        if sp.size:
            rep = np.repeat(sp, 4)
            parts.append(
                pd.DataFrame(
                    {
                        "cls": "spike",
                        "x": sx[rep],
                        "y": sy[rep],
                        "ra": s_ra_p[rep],
                        "dec": s_dec_p[rep],
                        "mag": stars.rmag.to_numpy()[rep],
                        "gmag": stars.gmag.to_numpy()[rep],
                        "extent_px": spike_len[rep],
                        "angle_deg": np.tile([0.0, 90.0, 180.0, 270.0], sp.size),
                        "parent_id": star_ids[rep],
                        "in_gaia": False,
                        "in_ps1": False,
                    }
                )
            )
    defaults = {
        "gmag": np.nan,
        "mag": np.nan,
        "pm_total": np.nan,
        "snr_model": np.nan,
        "recoverable": False,
        "extent_px": np.nan,
        "angle_deg": np.nan,
        "parent_id": -1,
        "source_id": -1,
        "ps1_objid": -1,
    }
    for part in parts:  # fill per part so int64 ids never pass through float64
        for col, val in defaults.items():
            if col not in part:
                part[col] = val
        for col in ("parent_id", "source_id", "ps1_objid"):
            part[col] = part[col].astype(np.int64)
    truth = pd.concat(parts, ignore_index=True)
    truth.insert(0, "obj_id", np.arange(len(truth), dtype=np.int64))
    truth["extent_arcsec"] = truth["extent_px"] * sol_pixscale(sol, nx, ny)
    truth = truth.astype(
        {
            "obj_id": np.int64,
            "cls": object,
            "x": np.float64,
            "y": np.float64,
            "ra": np.float64,
            "dec": np.float64,
            "mag": np.float64,
            "gmag": np.float64,
            "in_gaia": bool,
            "in_ps1": bool,
            "pm_total": np.float64,
            "snr_model": np.float64,
            "recoverable": bool,
            "extent_px": np.float64,
            "extent_arcsec": np.float64,
            "angle_deg": np.float64,
            "parent_id": np.int64,
            "source_id": np.int64,
            "ps1_objid": np.int64,
        }
    )
    return truth[list(TRUTH_COLUMNS)]


def sol_pixscale(sol: PlateSolution, nx: int, ny: int) -> float:
    """Mean pixel scale (arcsec/px) of the tile, from the plate solution's Jacobian at its centre."""
    j = sol.jacobian_arcsec_per_px(0.5 * (nx + 1), 0.5 * (ny + 1))
    return float(np.sqrt(abs(np.linalg.det(j))))

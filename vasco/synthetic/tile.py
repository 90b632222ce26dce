"""One synthetic POSS-I E tile: image, header, catalogue answers and truth.

:func:`make_synthetic_tile` is a deterministic function of
``(ra, dec, size_arcmin, seed, cfg)``: the same inputs give a byte-identical
image and identical tables.

A global sky
------------
The sky is a function of ``(seed, sky position)`` only
(:mod:`vasco.synthetic.sky`): stars, galaxies, cluster members, injected
transients, IR sources and variables are drawn per HEALPix cell from the
cell's own stream, and a tile gathers the cells touching its footprint (plus
margins) and keeps what lies inside.  Two tiles that overlap show the same
objects in the overlap, with the same ``obj_id``, positions, magnitudes and
motions, and the same catalogue rows (every catalogue error and membership
is a per-object random number).  What belongs to the *plate* is drawn per
plate: emulsion spots, dust and scratches in full-plate pixel blocks
(:func:`vasco.synthetic.render.draw_plate_defects`), and the asteroids
(at the plate's epoch): two cutouts of the same plate share them, cutouts of
different plates differ.  What belongs to the *scan of this cutout* is drawn
per tile from ``numpy.random.SeedSequence([seed, round(ra*1e6),
round((dec+90)*1e6), round(size*1e3), tag])``: the sky level and its
gradients, the plateau, the PSF field, the grain noise, and the imperfect
header astrometry.

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

Plate dates.  The sky is rendered at the plate's true date, the plate
table's; asteroids where they are at mid-exposure (``DATE-OBS`` + half of
``EXPOSURE``), which is the epoch of the synthetic SkyBoT answer.
``cfg.header_date_offset_days`` (region -> days) writes a header
``DATE-OBS`` off by that much on the chosen plates (card ``SYNDATOF``), as
old cutout headers can be a day off, without moving anything in the sky.

Catalogue answers
-----------------
``gaia``, ``ps1`` and the lists of the later vetoes, ``usnob``, ``allwise``,
``vsx``, ``skybot`` and ``scos``, under the real services' column names
(:mod:`vasco.synthetic.archives`).

Truth
-----
One row per rendered object (``obj_id`` the global object id, ``cls``,
``x``, ``y`` 1-based pixels, ``ra``/``dec`` at the plate epoch, ``mag`` =
photographic R, ``gmag``, ``in_gaia``, ``in_ps1``, ``pm_total`` in mas/yr)
plus, for bright stars, one ``halo`` row (``extent_px`` = radius within
which the star adds more than one sky sigma) and four ``spike`` rows
(``angle_deg`` 0/90/180/270 along the plate axes, ``extent_px`` = length),
each with ``parent_id`` = the star's ``obj_id`` (-1 for a bright star just
off the tile).  Defects (``defect``, ``dust``, ``scratch``) have
``extent_px`` = FWHM (spots, dust) or length (scratches, with
``angle_deg``); galaxies the half-light radius.  ``extent_arcsec`` is
``extent_px`` in arcsec.  Catalogued objects carry their Gaia ``source_id``
/ PS1 ``ps1_objid`` (-1 otherwise).  ``gaia_no_pm`` marks the
high-proper-motion stars Gaia lists without a proper motion; ``in_usnob``,
``in_allwise``, ``in_vsx``, ``in_skybot`` and ``in_scos`` say which of the
other lists hold the object.

Classes: ``star``, ``hpm_star`` (PM 100-1000 mas/yr, G <= 19), ``galaxy``,
the injected point sources ``transient`` (in no list but SuperCOSMOS),
``asteroid`` (SkyBoT), ``ir_source`` (AllWISE), ``variable`` (VSX), the
plate's ``defect``, ``dust``, ``scratch`` (in no list, not even
SuperCOSMOS), and ``halo``/``spike``.

Injected transients
-------------------
Point sources rendered exactly like stars (same PSF and photographic
response), R uniform in ``[transient_mag_min, transient_mag_max]``, in
neither catalogue, at least ``transient_clearance_arcsec`` from every star
(along its track from 1949 to 2016), galaxy and Gaia / PS1 position
(including sources too faint to see on the plate), outside the halo (+
clearance) of every bright star and off its spikes (:mod:`vasco.synthetic.sky`
gives the rule, which is catalogue-level: a transient exists in every tile
that covers it).  The sky density is ``transients_per_deg2`` (default
``4 * n_transients``: ``n_transients`` per 0.25 deg^2, i.e. per 30' tile,
Poisson).  The other injected classes follow the same rules.

For each injected point source:

``snr_model``
    The SNR_WIN SExtractor would measure without noise: the source is
    rendered alone on the local sky (noise-free), background-subtracted, and
    ``SNR = sum(w p) / (sigma sqrt(sum w^2))`` with a Gaussian window ``w`` of
    ``sigma_w = d50 / 2.355`` (d50 = half-light diameter, SExtractor's
    window; = FWHM for a Gaussian) and ``sigma`` the local background RMS
    (the larger of the grain noise and the clipped RMS of the rendered image
    in the source's 64-px mesh, as SExtractor measures it; GAIN = 0, so
    background noise only).  Per tile: it depends on this scan.
``recoverable``
    ``snr_model > 30`` AND point-like (the noise-free peak stays below the
    saturation knee, beyond which stars are photographically grown: their
    FWHM_IMAGE exceeds twice that of faint stars, which the paper's FWHM MAD
    clip removes; see :func:`vasco.synthetic.render.growth_knee_density`)
    AND at least 10 px inside the tile (SExtractor flags sources it
    truncates).  With the default transient magnitudes (R >= 16) the knee is
    rarely reached, so in practice SNR and position decide.  The survey's
    completeness is recovered / recoverable with this definition.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
from astropy.io import fits

from vasco.config import SyntheticConfig
from vasco.plates.cutout import cutout_header, cutout_shape_px
from vasco.plates.header import julian_date
from vasco.plates.model import PlateSolution
from vasco.plates.table import PlateRecord, covering_plates
from vasco.synthetic import archives as arc
from vasco.synthetic import population as pop
from vasco.synthetic import render as rnd
from vasco.synthetic import sky
from vasco.synthetic.cells import HALO_BASE, KIND, SKY_ORDER, SPIKE_BASE, TileRegion, make_obj_ids, obj_kind
from vasco.synthetic.distortion import DistortionField, TileAstrometry, offset_position

__all__ = ["SyntheticTile", "make_synthetic_tile", "GAIA_EPOCH", "TRUTH_COLUMNS", "LIST_NAMES", "plate_code"]

GAIA_EPOCH = arc.GAIA_EPOCH
_SEED_TAG = 0x7A5C0  # namespaces the per-tile streams
_EDGE_PX = 10.0  # injected sources closer than this to the tile edge are not recoverable
_BRIGHT_R = 12.5  # stars brighter than this get halo/spike truth rows
_SPIKE_R = 13.0  # stars brighter than this get rendered spikes
_RENDER_MARGIN_ARCSEC = 90.0  # faint objects rendered this far outside the tile
#: The lists of the later vetoes (``SyntheticTile`` attributes).
LIST_NAMES: tuple[str, ...] = ("usnob", "allwise", "vsx", "skybot", "scos")

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
    "gaia_no_pm",
    "in_usnob",
    "in_allwise",
    "in_vsx",
    "in_skybot",
    "in_scos",
)
_TRUTH_DTYPES: dict[str, object] = {
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
    "gaia_no_pm": bool,
    "in_usnob": bool,
    "in_allwise": bool,
    "in_vsx": bool,
    "in_skybot": bool,
    "in_scos": bool,
}
_TRUTH_DEFAULTS: dict[str, object] = {
    "mag": np.nan,
    "gmag": np.nan,
    "in_gaia": False,
    "in_ps1": False,
    "pm_total": np.nan,
    "snr_model": np.nan,
    "recoverable": False,
    "extent_px": np.nan,
    "angle_deg": np.nan,
    "parent_id": -1,
    "source_id": -1,
    "ps1_objid": -1,
    "gaia_no_pm": False,
    "in_usnob": False,
    "in_allwise": False,
    "in_vsx": False,
    "in_skybot": False,
    "in_scos": False,
}


def _empty_lists() -> dict[str, pd.DataFrame]:
    return {name: arc.empty_list(name) for name in LIST_NAMES}


@dataclass
class SyntheticTile:
    """A synthetic DSS1 POSS-I E cutout and everything known about it.

    ``usnob``, ``allwise``, ``vsx``, ``skybot`` and ``scos`` are the answers
    the later vetoes read (USNO-B1.0, AllWISE, VSX, SkyBoT at the plate
    epoch, SuperCOSMOS), with the real services' column names
    (:mod:`vasco.synthetic.archives`).
    """

    image: np.ndarray  # int16 (ny, nx)
    header: fits.Header
    gaia: pd.DataFrame
    ps1: pd.DataFrame
    truth: pd.DataFrame
    plate: PlateRecord
    info: dict = field(default_factory=dict)  # sky level, noise, density cap...
    usnob: pd.DataFrame = field(default_factory=lambda: arc.empty_list("usnob"))
    allwise: pd.DataFrame = field(default_factory=lambda: arc.empty_list("allwise"))
    vsx: pd.DataFrame = field(default_factory=lambda: arc.empty_list("vsx"))
    skybot: pd.DataFrame = field(default_factory=lambda: arc.empty_list("skybot"))
    scos: pd.DataFrame = field(default_factory=lambda: arc.empty_list("scos"))


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


def _exposure_min(plate: PlateRecord) -> float:
    """The plate's exposure in minutes (full-plate ``EXPOSURE``; 0 when missing)."""
    try:
        value = float(plate.header().get("EXPOSURE", 0.0))
    except (TypeError, ValueError):
        return 0.0
    return value if np.isfinite(value) and value > 0 else 0.0


def header_date(date_obs: str, offset_days: float) -> str:
    """``date_obs`` (ISO) shifted by ``offset_days``, as the ISO ``DATE-OBS`` of a cutout header."""
    from astropy.time import Time, TimeDelta

    t = Time(date_obs, format="isot", scale="tt") + TimeDelta(float(offset_days), format="jd")
    return str(t.strftime("%Y-%m-%dT%H:%M:%S"))


def plate_code(plate: PlateRecord) -> int:
    """A small integer (< 1024) naming a plate in seeds and ids: the number of its region ``XEnnn``."""
    reg = plate.region.strip().upper()
    if reg.startswith("XE") and reg[2:].isdigit() and int(reg[2:]) < 1024:
        return int(reg[2:])
    return zlib.crc32(reg.encode("ascii", "replace")) & 0x3FF


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
        Survey seed (>= 0): the whole sky is a function of it.
    cfg : SyntheticConfig
        Population and catalogue settings.
    params : RenderParams, optional
        Plate-rendering model (defaults: calibrated on real DSS1 red tiles).

    Returns
    -------
    SyntheticTile
        ``image`` (int16), ``header`` (the cutout header + ``SYNTHET`` = T,
        ``SYNSEED``, and ``SYNDIST``/``SYNTANOF``/``SYNTANPA`` when the header
        astrometry is made imperfect), ``gaia`` and ``ps1`` (catalogue
        DataFrames), ``truth`` (see the module docstring), ``plate``,
        ``info``, and the lists ``usnob``, ``allwise``, ``vsx``, ``skybot``,
        ``scos``.
    """
    params = params or rnd.RenderParams()
    ra = float(ra) % 360.0
    dec = float(dec)
    size_arcmin = float(size_arcmin)
    if not (size_arcmin > 0):
        raise ValueError(f"size_arcmin must be positive, got {size_arcmin}")
    if int(seed) < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    seed = int(seed)
    # per-tile streams: [1] the scan (sky, plateau, PSF field, grain), [4] header astrometry errors
    streams = _rng_streams(seed, ra, dec, size_arcmin, 5)
    rng_ren, rng_ast = streams[1], streams[4]

    plate, header = _choose_plate(ra, dec, size_arcmin)
    sol = PlateSolution.from_header(header)
    nx, ny = int(header["NAXIS1"]), int(header["NAXIS2"])
    pixscale = float(plate.pixel_scale_arcsec)
    epoch = float(plate.epoch)
    dt_plate = epoch - GAIA_EPOCH
    pcode = plate_code(plate)

    # ---- imperfect header astrometry (both drawn always, used only when asked for)
    tan_pa = float(rng_ast.uniform(0.0, 360.0))
    dfield = DistortionField.draw(rng_ast, cfg.distortion_arcsec, nx, ny, sol_pixscale(sol, nx, ny))
    true_ast = TileAstrometry(sol, dfield)  # the rendered plate's real astrometry

    # ---- footprint in the tangent plane of the tile centre
    ex = np.array([0.5, nx + 0.5, nx + 0.5, 0.5, 0.5 * (nx + 1), 0.5 * (nx + 1), 0.5, nx + 0.5])
    ey = np.array([0.5, 0.5, ny + 0.5, ny + 0.5, 0.5, ny + 0.5, 0.5 * (ny + 1), 0.5 * (ny + 1)])
    cra, cdec = sol.pix_to_sky(ex, ey)
    cxi, ceta = pop.sky_to_tangent(cra, cdec, ra, dec)
    region = TileRegion(ra, dec, float(np.max(np.abs(cxi))), float(np.max(np.abs(ceta))))

    # ---- the global sky around the tile
    ref = sky.reference_extents(params)
    stars = sky.gather_stars(seed, cfg, region)
    gals = sky.gather_galaxies(seed, region)
    inj = sky.gather_injected(seed, cfg, region, pcode, stars, gals, ref)

    # positions at the plate epoch -> pixels
    s_ra_p, s_dec_p = pop.propagate(stars.ra, stars.dec, stars.pmra, stars.pmdec, dt_plate)
    sx, sy = (np.asarray(a, dtype=np.float64) for a in true_ast.sky_to_pix(s_ra_p, s_dec_p))
    gx, gy = (np.asarray(a, dtype=np.float64) for a in true_ast.sky_to_pix(gals.ra.to_numpy(), gals.dec.to_numpy()))
    if len(inj):
        ix, iy = (
            np.atleast_1d(np.asarray(a, dtype=np.float64))
            for a in true_ast.sky_to_pix(inj.ra.to_numpy(), inj.dec.to_numpy())
        )
    else:
        ix, iy = np.zeros(0), np.zeros(0)

    # ---- this scan: sky, plateau, PSF field
    plate_xc = 0.5 * (plate.naxis1 + 1) - float(header["CNPIX1"])
    plate_yc = 0.5 * (plate.naxis2 + 1) - float(header["CNPIX2"])
    plate_rmax = 0.5 * math.hypot(plate.naxis1, plate.naxis2)
    ctx = rnd.make_context(rng_ren, params, nx, ny, pixscale, plate_xc, plate_yc, plate_rmax)
    sky_map = rnd.sky_exposure_map(rng_ren, ctx, params)
    d_sky = float(ctx.curve.density(ctx.sky_exposure))
    e1 = float(ctx.curve.exposure(d_sky + ctx.noise_sigma) - ctx.sky_exposure)
    s_flux = rnd.mag_to_flux(stars.rmag.to_numpy(), params)
    halo_r = rnd.point_source_radius(ctx, s_flux, e1) - 1.0
    t0 = params.spike_t0_arcsec / pixscale
    spike_len = np.where(
        stars.rmag.to_numpy() < _SPIKE_R, rnd.spike_length_px(ctx, s_flux, params.spike_weight, t0), 0.0
    )

    # ---- the plate's defects (full-plate blocks)
    defects = rnd.draw_plate_defects(
        seed,
        pcode,
        plate.naxis1,
        plate.naxis2,
        float(header["CNPIX1"]),
        float(header["CNPIX2"]),
        nx,
        ny,
        pixscale,
        cfg.n_defects_per_deg2,
        ctx.noise_sigma,
        dust_per_deg2=cfg.n_dust_per_deg2,
        scratches_per_deg2=cfg.n_scratches_per_deg2,
    )

    # ---- catalogue answers
    s_list = region.contains(stars.ra.to_numpy(), stars.dec.to_numpy(), arc.LIST_MARGIN_ARCSEC["gaia"])
    g_list = region.contains(gals.ra.to_numpy(), gals.dec.to_numpy(), arc.LIST_MARGIN_ARCSEC["gaia"])
    dropped = sky.gaia_dropped(seed, stars, ref, s_list)
    s_in_gaia = (stars.gmag.to_numpy() <= cfg.gaia_gmax) & ~dropped
    g_in_gaia = gals.in_gaia.to_numpy() & (gals.gmag.to_numpy() <= cfg.gaia_gmax)
    gaia, s_no_pm = arc.gaia_rows(seed, cfg, stars, s_in_gaia & s_list, gals, g_in_gaia & g_list)
    ps1, s_in_ps1, g_in_ps1 = arc.ps1_rows(seed, cfg, stars, s_list, gals, g_list)
    usnob, s_in_usnob = arc.usnob_list(seed, stars, region)
    allwise, s_in_wise = arc.allwise_list(seed, stars, s_list, inj)
    vsx, s_in_vsx = arc.vsx_list(seed, cfg, stars, s_list, inj)
    # Asteroids are rendered where they are at mid-exposure (where a trail is centred): SkyBoT's answer
    # is for that instant of the true date, the plate table's.
    epoch_mid = epoch + _exposure_min(plate) / 2.0 / (365.25 * 1440.0)
    skybot = arc.skybot_list(seed, inj, epoch_mid)
    oid = stars.obj_id.to_numpy()
    goid = gals.obj_id.to_numpy()
    scos = arc.scos_list(
        seed,
        cfg,
        [
            (oid[s_list], s_ra_p[s_list], s_dec_p[s_list], stars.rmag.to_numpy()[s_list], 1.0),
            (goid[g_list], gals.ra.to_numpy()[g_list], gals.dec.to_numpy()[g_list], gals.rmag.to_numpy()[g_list], 1.5),
            (inj.obj_id.to_numpy(), inj.ra.to_numpy(), inj.dec.to_numpy(), inj.mag.to_numpy(), 1.0),
        ],
    )
    s_in_scos = arc.scos_detected(seed, cfg, oid, stars.rmag.to_numpy())
    g_in_scos = arc.scos_detected(seed, cfg, goid, gals.rmag.to_numpy())
    i_in_scos = arc.scos_detected(seed, cfg, inj.obj_id.to_numpy(), inj.mag.to_numpy())

    # ---- render
    inside = lambda x, y, pad: (x > -pad) & (x < nx + pad) & (y > -pad) & (y < ny + pad)  # noqa: E731
    keep_s = inside(sx, sy, np.maximum(halo_r, spike_len) + 5.0)
    keep_g = inside(gx, gy, 60.0)
    i_mag = inj.mag.to_numpy()
    px = np.concatenate([sx[keep_s], ix])
    py = np.concatenate([sy[keep_s], iy])
    pmag = np.concatenate([stars.rmag.to_numpy()[keep_s], i_mag])
    rendered = rnd.render_plate(
        rng_ren,
        params,
        ctx,
        sky_map,
        px,
        py,
        pmag,
        gx[keep_g],
        gy[keep_g],
        gals.rmag.to_numpy()[keep_g],
        gals.r_eff.to_numpy()[keep_g],
        gals.axis_ratio.to_numpy()[keep_g],
        gals.pa.to_numpy()[keep_g],
        gals.sersic_n.to_numpy()[keep_g],
        defects,
    )

    # ---- injected point sources on the tile: predicted SNR_WIN and recoverability
    i_on = (ix >= 0.5) & (ix <= nx + 0.5) & (iy >= 0.5) & (iy <= ny + 0.5)
    rms_map = rnd.background_rms_map(rendered.image)
    snr = np.full(len(inj), np.nan)
    peak = np.full(len(inj), np.nan)
    on_idx = np.flatnonzero(i_on)
    snr[on_idx], peak[on_idx] = _point_snr(
        ctx, params, sky_map, ix[on_idx], iy[on_idx], rnd.mag_to_flux(i_mag[on_idx], params), rms_map
    )
    knee = rnd.growth_knee_density(ctx, params)
    inner = (ix >= 0.5 + _EDGE_PX) & (ix <= nx + 0.5 - _EDGE_PX) & (iy >= 0.5 + _EDGE_PX) & (iy <= ny + 0.5 - _EDGE_PX)
    recoverable = i_on & inner & (snr > 30.0) & (peak < knee)

    truth = _truth_table(
        true_ast,
        nx,
        ny,
        pcode,
        stars,
        s_ra_p,
        s_dec_p,
        sx,
        sy,
        halo_r,
        spike_len,
        {
            "gaia": s_in_gaia,
            "ps1": s_in_ps1,
            "no_pm": s_no_pm,
            "usnob": s_in_usnob,
            "allwise": s_in_wise,
            "vsx": s_in_vsx,
            "scos": s_in_scos,
        },
        gals,
        gx,
        gy,
        {"gaia": g_in_gaia, "ps1": g_in_ps1, "scos": g_in_scos},
        inj,
        ix,
        iy,
        i_on,
        snr,
        recoverable,
        i_in_scos,
        defects,
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
    offset_days = cfg.header_date_offset_days.get(plate.region)
    if offset_days:
        # An old cutout's header a day off: the header lies, the sky (asteroids) is at the true date.
        hdr["DATE-OBS"] = header_date(plate.date_obs, float(offset_days))
        hdr["SYNDATOF"] = (float(offset_days), "Synthetic: DATE-OBS - true date (days)")

    l_c, b_c = pop.galactic_lb(ra, dec)
    info = {
        "sky_density": d_sky,
        "noise_sigma": ctx.noise_sigma,
        "d_sat": ctx.curve.d_sat,
        "knee_density": knee,
        "density_scale": sky.density_scale(l_c, b_c, cfg.max_star_density_per_deg2),
        "n_stars_drawn": int(len(stars)),
        "n_stars_rendered": int(keep_s.sum()),
        "pixscale": pixscale,
        "epoch": epoch,
        "epoch_jd": julian_date(epoch),
        "epoch_mid": epoch_mid,
        "header_date_offset_days": float(offset_days or 0.0),
        "plate_code": pcode,
        "sky_order": SKY_ORDER,
        "injected_density_per_deg2": sky.injected_density_per_deg2(cfg),
        "distortion_arcsec": float(cfg.distortion_arcsec),
        "distortion_field": asdict(dfield),  # DistortionField(**this) rebuilds it
        "tan_offset_arcsec": float(cfg.tan_offset_arcsec),
        "tan_offset_pa_deg": tan_pa if cfg.tan_offset_arcsec > 0 else None,
    }
    return SyntheticTile(
        image=rendered.image,
        header=hdr,
        gaia=gaia,
        ps1=ps1,
        truth=truth,
        plate=plate,
        info=info,
        usnob=usnob,
        allwise=allwise,
        vsx=vsx,
        skybot=skybot,
        scos=scos,
    )


# ---------------------------------------------------------------------------
# Injected point sources: predicted SNR
# ---------------------------------------------------------------------------


def _point_snr(ctx, params, sky_map, x, y, flux, rms_map, mesh: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Noise-free SNR_WIN prediction and peak density (sky included) of isolated point sources.

    The noise is the larger of the grain noise on the local sky and the
    clipped background RMS of the rendered image in the source's 64-px
    mesh (what SExtractor uses; it includes confusion noise in dense fields).
    """
    snr = np.zeros(len(x))
    peak = np.zeros(len(x))
    for i in range(len(x)):
        xi, yi = float(x[i]), float(y[i])
        jx = min(max(int(round(xi - 1.0)), 0), ctx.nx - 1)
        jy = min(max(int(round(yi - 1.0)), 0), ctx.ny - 1)
        e_sky = float(sky_map[jy, jx])
        stamp, sx, sy = rnd.isolated_star(ctx, float(flux[i]), xi, yi, e_sky)
        d_sky = float(ctx.curve.density(e_sky))
        sigma = float(params.noise.amplitude(np.array([d_sky]), d_sky, ctx.curve)[0])
        sigma = max(sigma, float(rms_map[min(jy // mesh, rms_map.shape[0] - 1), min(jx // mesh, rms_map.shape[1] - 1)]))
        snr[i], _ = rnd.window_snr(stamp, sx, sy, sigma)
        peak[i] = d_sky + float(stamp.max())
    return snr, peak


# ---------------------------------------------------------------------------
# Truth
# ---------------------------------------------------------------------------


def _derived_ids(star_ids: np.ndarray, base: int | np.ndarray) -> np.ndarray:
    """Ids of rows derived from stars (halos, spikes): the star's id with kind ``base + star kind``."""
    ids = np.asarray(star_ids, dtype=np.int64)
    rest = ids & np.int64((1 << 56) - 1)
    return ((np.asarray(base, dtype=np.int64) + obj_kind(ids)) << np.int64(56)) | rest


def _truth_table(
    ast,
    nx,
    ny,
    pcode,
    stars,
    s_ra_p,
    s_dec_p,
    sx,
    sy,
    halo_r,
    spike_len,
    s_flags,
    gals,
    gx,
    gy,
    g_flags,
    inj,
    ix,
    iy,
    i_on,
    snr,
    recoverable,
    i_in_scos,
    defects,
) -> pd.DataFrame:
    sol = ast.sol
    on = lambda x, y: (x >= 0.5) & (x <= nx + 0.5) & (y >= 0.5) & (y <= ny + 0.5)  # noqa: E731
    parts = []
    oid = stars.obj_id.to_numpy()
    pm_tot = np.hypot(stars.pmra.to_numpy(), stars.pmdec.to_numpy())
    s_on = on(sx, sy)
    s_gaia, s_ps1 = s_flags["gaia"], s_flags["ps1"]
    parts.append(
        pd.DataFrame(
            {
                "obj_id": oid[s_on],
                "cls": np.where(stars.hpm.to_numpy(), "hpm_star", "star")[s_on],
                "x": sx[s_on],
                "y": sy[s_on],
                "ra": s_ra_p[s_on],
                "dec": s_dec_p[s_on],
                "mag": stars.rmag.to_numpy()[s_on],
                "gmag": stars.gmag.to_numpy()[s_on],
                "in_gaia": s_gaia[s_on],
                "in_ps1": s_ps1[s_on],
                "pm_total": pm_tot[s_on],
                "source_id": np.where(s_gaia, arc.position_ids(stars.ra.to_numpy(), stars.dec.to_numpy(), 1), -1)[s_on],
                "ps1_objid": np.where(s_ps1, arc.position_ids(stars.ra.to_numpy(), stars.dec.to_numpy(), 3), -1)[s_on],
                "gaia_no_pm": (s_flags["no_pm"] & s_gaia)[s_on],
                "in_usnob": s_flags["usnob"][s_on],
                "in_allwise": s_flags["allwise"][s_on],
                "in_vsx": s_flags["vsx"][s_on],
                "in_scos": s_flags["scos"][s_on],
            }
        )
    )
    g_on = on(gx, gy)
    g_gaia, g_ps1 = g_flags["gaia"], g_flags["ps1"]
    parts.append(
        pd.DataFrame(
            {
                "obj_id": gals.obj_id.to_numpy()[g_on],
                "cls": "galaxy",
                "x": gx[g_on],
                "y": gy[g_on],
                "ra": gals.ra.to_numpy()[g_on],
                "dec": gals.dec.to_numpy()[g_on],
                "mag": gals.rmag.to_numpy()[g_on],
                "gmag": gals.gmag.to_numpy()[g_on],
                "in_gaia": g_gaia[g_on],
                "in_ps1": g_ps1[g_on],
                "pm_total": 0.0,
                "extent_px": (gals.r_eff.to_numpy() / sol_pixscale(sol, nx, ny))[g_on],
                "angle_deg": np.degrees(gals.pa.to_numpy())[g_on],
                "source_id": np.where(g_gaia, arc.position_ids(gals.ra.to_numpy(), gals.dec.to_numpy(), 2), -1)[g_on],
                "ps1_objid": np.where(g_ps1, arc.position_ids(gals.ra.to_numpy(), gals.dec.to_numpy(), 4), -1)[g_on],
                "in_scos": g_flags["scos"][g_on],
            }
        )
    )
    if i_on.any():
        cls = inj.cls.to_numpy()[i_on]
        parts.append(
            pd.DataFrame(
                {
                    "obj_id": inj.obj_id.to_numpy()[i_on],
                    "cls": cls,
                    "x": ix[i_on],
                    "y": iy[i_on],
                    "ra": inj.ra.to_numpy()[i_on],
                    "dec": inj.dec.to_numpy()[i_on],
                    "mag": inj.mag.to_numpy()[i_on],
                    "pm_total": 0.0,
                    "snr_model": snr[i_on],
                    "recoverable": recoverable[i_on],
                    "in_allwise": cls == "ir_source",
                    "in_vsx": cls == "variable",
                    "in_skybot": cls == "asteroid",
                    "in_scos": i_in_scos[i_on],
                }
            )
        )
    if defects:
        dx = np.array([d["x"] for d in defects])
        dy = np.array([d["y"] for d in defects])
        d_ra, d_dec = ast.pix_to_sky(dx, dy)
        d_kind = np.array([KIND[d["cls"]] for d in defects], dtype=np.int64)
        d_cell = np.array([(pcode << 12) | d["block"] for d in defects], dtype=np.int64)
        d_ids = np.int64(0) | make_obj_ids(1, d_cell, np.array([d["index"] for d in defects]))
        d_ids = (d_ids & np.int64((1 << 56) - 1)) | (d_kind << np.int64(56))
        parts.append(
            pd.DataFrame(
                {
                    "obj_id": d_ids,
                    "cls": [d["cls"] for d in defects],
                    "x": dx,
                    "y": dy,
                    "ra": np.atleast_1d(d_ra),
                    "dec": np.atleast_1d(d_dec),
                    "extent_px": [d["extent_px"] for d in defects],
                    "angle_deg": [d["angle_deg"] for d in defects],
                }
            )
        )
    # halos and spikes of bright stars on the tile or near enough to reach it
    reach = np.maximum(halo_r, spike_len)
    near = (sx > 0.5 - reach) & (sx < nx + 0.5 + reach) & (sy > 0.5 - reach) & (sy < ny + 0.5 + reach)
    b = np.flatnonzero((stars.rmag.to_numpy() < _BRIGHT_R) & near)
    if b.size:
        parent = np.where(s_on[b], oid[b], -1)
        parts.append(
            pd.DataFrame(
                {
                    "obj_id": _derived_ids(oid[b], HALO_BASE),
                    "cls": "halo",
                    "x": sx[b],
                    "y": sy[b],
                    "ra": s_ra_p[b],
                    "dec": s_dec_p[b],
                    "mag": stars.rmag.to_numpy()[b],
                    "gmag": stars.gmag.to_numpy()[b],
                    "extent_px": halo_r[b],
                    "parent_id": parent,
                }
            )
        )
        sp = np.flatnonzero(spike_len[b] > 2.0)
        if sp.size:
            rep = np.repeat(b[sp], 4)
            k = np.tile(np.arange(4), sp.size)
            parts.append(
                pd.DataFrame(
                    {
                        "obj_id": _derived_ids(oid[rep], SPIKE_BASE + 8 * k),
                        "cls": "spike",
                        "x": sx[rep],
                        "y": sy[rep],
                        "ra": s_ra_p[rep],
                        "dec": s_dec_p[rep],
                        "mag": stars.rmag.to_numpy()[rep],
                        "gmag": stars.gmag.to_numpy()[rep],
                        "extent_px": spike_len[rep],
                        "angle_deg": 90.0 * k,
                        "parent_id": np.repeat(parent[sp], 4),
                    }
                )
            )
    for part in parts:  # fill per part so int64 ids never pass through float64
        for col, val in _TRUTH_DEFAULTS.items():
            if col not in part:
                part[col] = val
        for col in ("parent_id", "source_id", "ps1_objid", "obj_id"):
            part[col] = part[col].astype(np.int64)
    truth = pd.concat(parts, ignore_index=True)
    truth["extent_arcsec"] = truth["extent_px"] * sol_pixscale(sol, nx, ny)
    truth = truth.astype(_TRUTH_DTYPES)
    return truth[list(TRUTH_COLUMNS)]


def sol_pixscale(sol: PlateSolution, nx: int, ny: int) -> float:
    """Mean pixel scale (arcsec/px) of the tile, from the plate solution's Jacobian at its centre."""
    j = sol.jacobian_arcsec_per_px(0.5 * (nx + 1), 0.5 * (ny + 1))
    return float(np.sqrt(abs(np.linalg.det(j))))

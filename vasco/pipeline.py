"""The per-tile steps, as plain functions on a tile folder.

Each step reads the files named by its input manifests, writes its outputs
atomically inside the tile folder, and records them (:mod:`vasco.records`),
so it is idempotent: with the same inputs, parameters and code it returns the
recorded outputs without running again.  Steps take and return small
manifests (``{"path": ..., "sha256": ...}``), never big arrays, which is what
the Prefect tasks in ``tasks/`` pass around.

Tile folder layout::

    tiles/<tile_id>/
        raw/image.fits           the POSS-I cutout
        catalogs/gaia.parquet    reference catalogues as served
        catalogs/ps1.parquet
        truth.parquet            synthetic sky only
        work/                    pass1.psf (the PSF model), pass2.ldac, measured/positioned/matched/selected/spread
                                 tables, astrometry.json and the fit's residual pairs
        qc/astrometry.png        astrometric residuals before and after the fit
        steps/<step>.json        step records
        detections.parquet       every detection, with cut and counterpart columns
        candidates.parquet       detections that pass the cuts and have no counterpart
        tile.json                status, reason, plate, funnel, config hash
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd
from astropy.io import fits

from vasco.astrometry.positions import pixel_to_sky
from vasco.config import VascoConfig
from vasco.extraction import sextractor
from vasco.filters.cuts import SPREAD_CUT, apply_quality_cuts, spread_model_cut
from vasco.io import atomic_path, file_sha256, read_json, write_json_atomic, write_parquet_atomic
from vasco.matching.catalogs import find_counterparts, normalize_catalog
from vasco.plates.frame import plate_frame
from vasco.plates.header import check_poss1e, read_fits_header
from vasco.codehash import code_fingerprint
from vasco.records import Output, load_record, save_record, step_key

_T = TypeVar("_T")

__all__ = [
    "StepError",
    "acquire_synthetic",
    "acquire_dss",
    "acquire_file",
    "acquire_catalogs",
    "xmatch_catalogs",
    "image_centre",
    "check_plate",
    "plate_epoch_mid",
    "build_psf",
    "extract_pass2",
    "measure_positions",
    "fit_astrometry",
    "plot_astrometry",
    "match_catalogs",
    "select_candidates",
    "fit_psf_model",
    "apply_vetoes",
    "acquire_veto_lists",
    "synthetic_skybot",
    "veto_list_names",
    "veto_list_sources",
    "ARCHIVE_TABLES",
    "veto_reference",
    "read_header",
]

GAIA_EPOCH = 2016.0
PS1_EPOCH = 2012.0


class StepError(RuntimeError):
    """A step failure with a short reason token for tile.json (e.g. ``FAIL_PSFEX``)."""

    def __init__(self, reason: str, message: str):
        super().__init__(f"{reason}: {message}")
        self.reason = reason


def _run_step(
    tile_dir: Path,
    step: str,
    inputs: Mapping[str, Output],
    params: Mapping[str, Any],
    code: Callable[..., Any],
    body: Callable[[], tuple[dict[str, Path], dict[str, Any]]],
) -> dict[str, Any]:
    """Run ``body`` unless a record of the step with the same key is on disk.

    The key covers the inputs' hashes, ``params`` and the code fingerprint of
    the step function ``code`` (:func:`vasco.codehash.code_fingerprint`: the
    modules its work depends on, shipped tool configuration, tool versions).
    """
    fingerprint = code_fingerprint(code)
    key = step_key(step, {k: v["sha256"] for k, v in inputs.items()}, params, fingerprint.digest)
    done = load_record(tile_dir, step, key)
    if done is not None:
        return done
    t0 = time.perf_counter()
    outputs, info = body()
    return save_record(tile_dir, step, key, outputs, info, elapsed_s=time.perf_counter() - t0,
                       code=fingerprint.summary())


def read_header(path: Path) -> fits.Header:
    """Primary header of a cutout, as a step error with a reason when unreadable."""
    try:
        return read_fits_header(Path(path))
    except (OSError, ValueError, IndexError) as exc:
        raise StepError("FAIL_BAD_IMAGE", f"{Path(path).name}: unreadable FITS header ({exc})") from exc


# --------------------------------------------------------------------------- acquire


def acquire_synthetic(tile_dir: Path, ra: float, dec: float, cfg: VascoConfig) -> dict[str, Any]:
    """Render the synthetic tile and its catalogues into the tile folder."""
    from vasco.synthetic.tile import make_synthetic_tile

    tile_dir = Path(tile_dir)
    params = {
        "ra": ra,
        "dec": dec,
        "size_arcmin": cfg.survey.size_arcmin,
        "seed": cfg.survey.seed,
        "synthetic": cfg.synthetic.model_dump(mode="json"),
    }

    def body() -> tuple[dict[str, Path], dict[str, Any]]:
        try:
            tile = make_synthetic_tile(ra, dec, cfg.survey.size_arcmin, cfg.survey.seed, cfg.synthetic)
        except LookupError as exc:
            # A few holes in DSS1's POSS-I E coverage (e.g. above Dec ~ +88).
            raise StepError("REJECT_NO_PLATE", str(exc)) from exc
        image = tile_dir / "raw" / "image.fits"
        with atomic_path(image, suffix=".fits") as tmp:
            fits.PrimaryHDU(data=tile.image, header=tile.header).writeto(tmp, overwrite=True)
        outs = {
            "image": image,
            "gaia": write_parquet_atomic(tile_dir / "catalogs" / "gaia.parquet", tile.gaia),
            "ps1": write_parquet_atomic(tile_dir / "catalogs" / "ps1.parquet", tile.ps1),
            "truth": write_parquet_atomic(tile_dir / "truth.parquet", tile.truth),
        }
        info = {"n_gaia": len(tile.gaia), "n_ps1": len(tile.ps1), "n_truth": len(tile.truth)}
        # The lists of the later vetoes, as the synthetic services would answer.
        for name in sorted(set(SYNTHETIC_VETO_LISTS.values())):
            extra = getattr(tile, name, None)
            if isinstance(extra, pd.DataFrame):
                outs[name] = write_parquet_atomic(tile_dir / "catalogs" / f"{name}.parquet", extra)
                info[f"n_{name}"] = len(extra)
        return outs, info

    return _run_step(tile_dir, "acquire", {}, params, acquire_synthetic, body)


def acquire_dss(tile_dir: Path, ra: float, dec: float, cfg: VascoConfig) -> dict[str, Any]:
    """Download the POSS-I red cutout from the STScI DSS service (checked, atomic)."""
    from vasco.sources.dss import fetch_dss_tile
    from vasco.sources.http import SourceError

    tile_dir = Path(tile_dir)
    params = {"ra": ra, "dec": dec, "size_arcmin": cfg.survey.size_arcmin}

    def body() -> tuple[dict[str, Path], dict[str, Any]]:
        from vasco.sources.dss import dss_base_url
        from vasco.sources.provenance import query_entry, utc_now

        dest = tile_dir / "raw" / "image.fits"
        asked = utc_now()
        try:
            fetch_dss_tile(ra, dec, cfg.survey.size_arcmin, dest, config=cfg.sources.dss)
        except SourceError as exc:
            raise StepError(exc.reason, str(exc)) from exc
        query = query_entry("dss", dss_base_url(None, cfg.sources.dss), [cfg.sources.dss.survey], asked, None)
        return {"image": dest}, {"source": "dss", "queries": [query]}

    return _run_step(tile_dir, "acquire", {}, params, acquire_dss, body)


def acquire_file(tile_dir: Path, fits_path: Path) -> dict[str, Any]:
    """Copy a user's FITS cutout into the tile folder (atomically)."""
    tile_dir = Path(tile_dir)
    src = Path(fits_path)
    if not src.is_file():
        raise StepError("FAIL_BAD_IMAGE", f"{src}: no such file")
    digest = file_sha256(src)

    def body() -> tuple[dict[str, Path], dict[str, Any]]:
        dest = tile_dir / "raw" / "image.fits"
        with atomic_path(dest, suffix=".fits") as tmp:
            shutil.copyfile(src, tmp)
        return {"image": dest}, {"source": str(src)}

    return _run_step(tile_dir, "acquire", {"file": {"sha256": digest}}, {}, acquire_file, body)


def image_centre(image: Output, solution: str = "plate") -> tuple[float, float]:
    """Sky position of the centre pixel of a cutout."""
    header = read_header(Path(image["path"]))
    x = (float(header["NAXIS1"]) + 1.0) / 2.0
    y = (float(header["NAXIS2"]) + 1.0) / 2.0
    try:
        ra, dec = pixel_to_sky(header, np.array([x]), np.array([y]), solution)
    except (ValueError, KeyError) as exc:
        if solution == "plate":
            return image_centre(image, "tan")
        raise StepError("FAIL_NO_ASTROMETRY", f"{Path(image['path']).name}: {exc}") from exc
    return float(ra[0]), float(dec[0])


def acquire_catalogs(tile_dir: Path, ra: float, dec: float, cfg: VascoConfig) -> dict[str, Any]:
    """Reference catalogues in a cone around the tile, from VizieR or local files.

    The cone is the tile's half-diagonal plus ``catalogs.cone_margin_arcmin``.
    A catalogue that does not cover the tile (PS1 below Dec -30) is not asked.
    """
    tile_dir = Path(tile_dir)
    source = cfg.catalogs.resolved(cfg.sky)
    radius = (cfg.survey.size_arcmin / 2.0 * np.sqrt(2.0) + cfg.catalogs.cone_margin_arcmin) / 60.0
    params = {
        "ra": ra, "dec": dec, "radius_deg": radius, "source": source,
        "catalogs": list(cfg.matching.catalogs), "local": dict(cfg.catalogs.local),
    }

    def body() -> tuple[dict[str, Path], dict[str, Any]]:
        from vasco.sources.http import SourceError
        from vasco.sources.local import LocalCatalogError, read_local_cone
        from vasco.sources.provenance import query_entry, utc_now
        from vasco.sources.vizier import GAIA_EDR3, PS1_DR2, ConeStats, query_cone, vizier_base_url

        outs: dict[str, Path] = {}
        info: dict[str, Any] = {"source": source, "radius_deg": radius, "queries": []}
        for name in cfg.matching.catalogs:
            applies, why = _catalog_applies(name, dec, cfg)
            if not applies:
                info[f"{name}_skipped"] = why
                continue
            asked = utc_now()
            try:
                if source == "local":
                    table = read_local_cone(Path(cfg.catalogs.local[name]), ra, dec, radius)
                    query = query_entry("local", str(cfg.catalogs.local[name]), [name], asked, len(table))
                else:
                    spec = GAIA_EDR3 if name == "gaia" else PS1_DR2
                    stats = ConeStats()
                    table = query_cone(
                        spec.name, ra, dec, radius, row_limit=cfg.catalogs.vizier_row_limit,
                        config=cfg.sources.vizier, stats=stats,
                    )
                    query = query_entry("vizier", vizier_base_url(None, cfg.sources.vizier), [spec.name], asked,
                                        len(table), requests=stats.requests)
            except SourceError as exc:
                # No answer is not "no counterpart": the tile fails, it never yields candidates.
                raise StepError(exc.reason, str(exc)) from exc
            except LocalCatalogError as exc:
                raise StepError("FAIL_LOCAL_CATALOG", str(exc)) from exc
            outs[name] = write_parquet_atomic(tile_dir / "catalogs" / f"{name}.parquet", table)
            info[f"n_{name}"] = len(table)
            info["queries"].append(query)
        return outs, info

    return _run_step(tile_dir, "catalogs", {}, params, acquire_catalogs, body)


def xmatch_catalogs(tile_dir: Path, measured: Output, tile_dec: float, cfg: VascoConfig) -> dict[str, Any]:
    """Catalogue rows near the tile's detections, through CDS XMatch.

    Every detection is uploaded (in chunks, one job at a time) and every
    catalogue source within ``catalogs.xmatch_radius_arcsec`` comes back; the
    rows are stored like a cone answer, so :func:`match_catalogs` moves them
    to the plate epoch and applies the counterpart radius itself.
    """
    tile_dir = Path(tile_dir)
    params = {
        "catalogs": list(cfg.matching.catalogs),
        "radius": cfg.catalogs.xmatch_radius_arcsec,
        "tile_dec": tile_dec,
        "tables": {name: cfg.catalogs.xmatch_tables[name] for name in cfg.matching.catalogs},
    }

    def body() -> tuple[dict[str, Path], dict[str, Any]]:
        from vasco.sources.http import SourceError
        from vasco.sources.provenance import query_entry, utc_now
        from vasco.sources.xmatch import xmatch_detections

        det = pd.read_parquet(measured["path"], columns=["NUMBER", "ra", "dec"])
        upload = pd.DataFrame({"our_id": det["NUMBER"].to_numpy(np.int64), "ra": det["ra"], "dec": det["dec"]})
        outs: dict[str, Path] = {}
        info: dict[str, Any] = {"source": "xmatch", "queries": []}
        for name in cfg.matching.catalogs:
            applies, why = _catalog_applies(name, tile_dec, cfg)
            if not applies:
                info[f"{name}_skipped"] = why
                continue
            asked = utc_now()
            try:
                res = xmatch_detections(
                    upload, cfg.catalogs.xmatch_tables[name], cfg.catalogs.xmatch_radius_arcsec,
                    config=cfg.sources.xmatch,
                )
            except SourceError as exc:
                raise StepError(exc.reason, str(exc)) from exc
            rows = res.matches.drop(columns=[c for c in ("our_id", "angDist", "our_ra", "our_dec")
                                             if c in res.matches.columns])
            rows = rows.drop_duplicates("catalog_id").sort_values("catalog_id").reset_index(drop=True)
            outs[name] = write_parquet_atomic(tile_dir / "catalogs" / f"{name}.parquet", rows)
            info[f"n_{name}"] = len(rows)
            info[f"jobs_{name}"] = res.jobs
            info["queries"].append(query_entry("xmatch", res.url, [res.catalog], asked, len(res.matches),
                                               requests=res.jobs))
        return outs, info

    return _run_step(tile_dir, "catalogs", {"measured": measured}, params, xmatch_catalogs, body)


# --------------------------------------------------------------------------- check


def check_plate(
    tile_dir: Path,
    image: Output,
    cfg: VascoConfig | None = None,
    verdicts: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """Check the cutout is POSS-I E; record the plate, both its dates, the one used, and its epochs.

    A rejection is a result, not an error: ``info['ok']`` is False and
    ``info['reason']`` holds the token (e.g. ``REJECT_NON_POSS``).  An
    accepted plate gets the keys of :meth:`vasco.plates.header.PlateDates.as_dict`
    (``date_obs_header``, ``date_obs_table``, ``date_obs`` and ``date_rule``
    by ``plates.date_source``, ``date_conflict_hours``, ``exposure_min``,
    ``epoch`` and ``epoch_mid``).  The later steps take the plate epoch
    (proper motions, SkyBoT) from ``epoch_mid``.  ``verdicts`` (region ->
    entry of ``epochs.json``) is used with ``plates.date_source = 'epochs'``.
    """
    from vasco.plates.header import plate_dates

    tile_dir = Path(tile_dir)
    pc = (cfg or VascoConfig()).plates
    use = {k: dict(v) for k, v in sorted((verdicts or {}).items())} if pc.date_source == "epochs" else None
    params = {"date_source": pc.date_source, "conflict_hours": pc.conflict_hours, "verdicts": use}

    def body() -> tuple[dict[str, Path], dict[str, Any]]:
        header = read_header(Path(image["path"]))
        res = check_poss1e(header)
        plate: dict[str, Any] = {"ok": res.ok, "reason": res.reason, "region": res.region, "label": res.label,
                                 "date_obs": res.date_obs, "epoch": res.epoch}
        if res.ok:
            try:
                dates = plate_dates(header, res.region, pc.date_source,
                                    (use or {}).get(str(res.region)), pc.conflict_hours)
            except ValueError as exc:
                raise StepError("FAIL_BAD_IMAGE", f"{Path(image['path']).name}: {exc}") from exc
            plate.update(dates.as_dict())
        path = write_json_atomic(tile_dir / "work" / "plate.json", plate)
        return {"plate": path}, plate

    return _run_step(tile_dir, "check_plate", {"image": image}, params, check_plate, body)


def plate_epoch_mid(plate: Output) -> float:
    """The mid-exposure epoch (decimal Julian year) of a tile's ``plate.json`` (its ``epoch`` if older)."""
    rec = read_json(Path(plate["path"]))
    value = rec.get("epoch_mid")
    return float(value if value is not None else rec["epoch"])


# --------------------------------------------------------------------------- extraction


def _tool_step(fn: Callable[[], _T]) -> _T:
    try:
        return fn()
    except sextractor.ToolError as exc:
        raise StepError(exc.reason, exc.message) from exc


def build_psf(tile_dir: Path, image: Output, cfg: VascoConfig) -> dict[str, Any]:
    """SExtractor pass 1 then PSFEx: the tile's PSF model, ``work/pass1.psf``.

    Pass 1's catalogue (detections with their VIGNET cut-outs, PSFEx's only
    input and by far the tile's biggest intermediate file) is written to a
    private temporary folder and removed once PSFEx has read it.  The step
    info has the PSF star count, pass 1's detection count and each tool's
    time (``pass1_s``, ``psfex_s``).
    """
    tile_dir = Path(tile_dir)
    out = tile_dir / "work" / "pass1.psf"

    def body() -> tuple[dict[str, Path], dict[str, Any]]:
        out.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".pass1.", dir=out.parent) as tdir:
            t0 = time.perf_counter()
            cat = _tool_step(lambda: sextractor.run_pass1(Path(image["path"]), Path(tdir) / "pass1.ldac",
                                                          cfg.extraction))
            t1 = time.perf_counter()
            path = _tool_step(lambda: sextractor.run_psfex(cat, out, cfg.extraction))
            t2 = time.perf_counter()
            n_pass1 = sextractor.ldac_rows(cat)
        info = {"psf_stars": sextractor.psf_star_count(path), "pass1_detections": n_pass1,
                "pass1_s": round(t1 - t0, 4), "psfex_s": round(t2 - t1, 4)}
        return {"psf": path}, info

    return _run_step(tile_dir, "psf", {"image": image}, cfg.extraction.model_dump(mode="json"), build_psf, body)


def extract_pass2(tile_dir: Path, image: Output, psf: Output, cfg: VascoConfig) -> dict[str, Any]:
    """SExtractor pass 2, the measurements the cuts use, into ``work/pass2.ldac``.

    With ``extraction.psf_fit_scope = 'needed'`` (the default) it leaves out
    the PSF-model columns (SPREAD_MODEL, MAG_PSF ...) and does not depend on
    the PSF model: :func:`fit_psf_model` measures them later for the
    detections that reach the SPREAD_MODEL cut.  With ``'all'`` it measures
    them for every detection.  Both give the same values, cut decisions and
    candidates.
    """

    tile_dir = Path(tile_dir)
    scope = cfg.extraction.psf_fit_scope
    inputs: dict[str, Output] = {"image": image}
    if scope == "all":
        inputs["psf"] = psf

    def body() -> tuple[dict[str, Path], dict[str, Any]]:
        out = tile_dir / "work" / "pass2.ldac"
        psf_path = Path(psf["path"]) if scope == "all" else None
        path = _tool_step(lambda: sextractor.run_pass2(Path(image["path"]), psf_path, out, cfg.extraction))
        return {"catalog": path}, {"psf_fit_scope": scope}

    return _run_step(tile_dir, "pass2", inputs, cfg.extraction.model_dump(mode="json"), extract_pass2, body)


# --------------------------------------------------------------------------- astrometry


def measure_positions(tile_dir: Path, pass2: Output, image: Output, cfg: VascoConfig) -> dict[str, Any]:
    """Header sky positions (float64) from the pass-2 windowed centroids, and the plate frame.

    Evaluates every solution the header carries (:mod:`vasco.astrometry.solve`)
    into ``ra_plate``/``dec_plate`` and ``ra_tan``/``dec_tan`` (NaN when the
    header lacks one), ``tile_edge_dist_px`` (to the nearest cutout edge), and sets ``ra``/``dec`` to the configured solution (for
    ``auto``, the plate polynomial when present) until :func:`fit_astrometry`
    replaces them.  Adds the plate frame (:func:`vasco.plates.frame.plate_frame`:
    plate id, full-plate pixel, distances to the plate edge and centre).  The
    step info holds the solutions found and their offset at the tile centre.
    """
    from vasco.astrometry.solve import SOLUTIONS, header_positions, two_solution_offset_arcsec

    tile_dir = Path(tile_dir)

    def body() -> tuple[dict[str, Path], dict[str, Any]]:
        table = sextractor.read_ldac(Path(pass2["path"]))
        header = read_header(Path(image["path"]))
        x = table["XWIN_IMAGE"].to_numpy(np.float64, copy=True)
        y = table["YWIN_IMAGE"].to_numpy(np.float64, copy=True)
        bad = ~np.isfinite(x) | ~np.isfinite(y)
        x[bad] = table["X_IMAGE"].to_numpy(np.float64)[bad]
        y[bad] = table["Y_IMAGE"].to_numpy(np.float64)[bad]
        try:
            positions = header_positions(header, x, y)
        except ValueError as exc:
            raise StepError("FAIL_NO_ASTROMETRY", f"{Path(image['path']).name}: {exc}") from exc
        wanted = cfg.astrometry.solution
        if wanted != "auto" and wanted not in positions:
            raise StepError(
                "FAIL_NO_ASTROMETRY",
                f"{Path(image['path']).name}: astrometry.solution {wanted!r} is not in the header "
                f"(it has: {', '.join(positions)})",
            )
        start = wanted if wanted != "auto" else next(s for s in SOLUTIONS if s in positions)
        ra, dec = positions[start]
        table.insert(0, "ra", ra.astype(np.float64))
        table.insert(1, "dec", dec.astype(np.float64))
        for name in SOLUTIONS:
            nan = np.full(len(table), np.nan)
            table[f"ra_{name}"], table[f"dec_{name}"] = positions.get(name, (nan, nan))
        for col, values in plate_frame(header, x, y).items():
            table[col] = values.to_numpy() if col != "plate_id" else values.array
        nx, ny = float(header["NAXIS1"]), float(header["NAXIS2"])
        table["tile_edge_dist_px"] = np.minimum.reduce([x - 0.5, nx + 0.5 - x, y - 0.5, ny + 0.5 - y])
        table["astrometry_solution"] = start
        path = write_parquet_atomic(tile_dir / "work" / "measured.parquet", table)
        info = {
            "n": len(table),
            "solutions": list(positions),
            "two_solution_offset_arcsec": two_solution_offset_arcsec(header),
        }
        return {"table": path}, info

    return _run_step(
        tile_dir,
        "measure",
        {"pass2": pass2, "image": image},
        {"solution": cfg.astrometry.solution},
        measure_positions,
        body,
    )


def fit_astrometry(
    tile_dir: Path,
    measured: Output,
    catalogs: Mapping[str, Output],
    plate: Output,
    ra0: float,
    dec0: float,
    cfg: VascoConfig,
) -> dict[str, Any]:
    """Choose the header solution and tie the positions to the reference catalogue.

    Writes ``work/positioned.parquet``: the measured table with ``ra``/``dec``
    replaced by the corrected float64 positions, ``ra_header``/``dec_header``
    keeping those of the header solution used, ``astrometry_solution``, and
    each detection's 1-sigma position uncertainty ``pos_err_arcsec`` with its
    parts ``pos_err_centroid_arcsec`` and ``pos_err_fit_arcsec``
    (:func:`vasco.astrometry.trust.position_errors`);
    ``work/astrometry.json`` (the ``astrometry`` block of tile.json and the
    fit's coefficients) and ``work/astrometry_pairs.parquet`` (residual vectors
    of the fit stars, before and after).  Without a reference catalogue, or
    with ``astrometry.refit`` off, positions stay those of the header.
    """
    from vasco.astrometry.solve import SOLUTIONS, fit_star_mask, reference_at_epoch, solve_tile

    tile_dir = Path(tile_dir)
    acfg = cfg.astrometry
    inputs: dict[str, Output] = {"measured": measured, "plate": plate}
    if acfg.reference in catalogs:
        inputs["reference"] = catalogs[acfg.reference]

    def body() -> tuple[dict[str, Path], dict[str, Any]]:
        table = pd.read_parquet(measured["path"])
        epoch = plate_epoch_mid(plate)
        positions = {
            s: (table[f"ra_{s}"].to_numpy(np.float64), table[f"dec_{s}"].to_numpy(np.float64))
            for s in SOLUTIONS
            if f"ra_{s}" in table.columns and np.isfinite(table[f"ra_{s}"].to_numpy(np.float64)).any()
        }
        ref_ra = ref_dec = None
        if "reference" in inputs:
            raw = pd.read_parquet(inputs["reference"]["path"])
            ref = normalize_catalog(raw, acfg.reference, GAIA_EPOCH if acfg.reference == "gaia" else PS1_EPOCH)
            ref_ra, ref_dec = reference_at_epoch(ref, epoch, require_pm=acfg.fit_require_pm)
        x = table["XWIN_IMAGE"].to_numpy(np.float64)
        y = table["YWIN_IMAGE"].to_numpy(np.float64)
        try:
            sol = solve_tile(positions, x, y, fit_star_mask(table, acfg), ref_ra, ref_dec, ra0, dec0, acfg)
        except ValueError as exc:
            raise StepError("FAIL_NO_ASTROMETRY", str(exc)) from exc
        hra, hdec = positions[sol.solution]
        table["ra"] = sol.ra
        table["dec"] = sol.dec
        table["ra_header"] = hra
        table["dec_header"] = hdec
        table["astrometry_solution"] = sol.solution
        summary = sol.summary()
        try:
            summary.update(_position_errors(table, x, y, sol, ra0, dec0))
        except ValueError as exc:
            raise StepError("FAIL_PASS2", str(exc)) from exc
        summary["reference"] = acfg.reference if ref_ra is not None else None
        summary["plate_epoch"] = epoch
        record = {"summary": summary, "fit": sol.fit.to_dict() if sol.fit is not None else None}
        outs = {
            "table": write_parquet_atomic(tile_dir / "work" / "positioned.parquet", table),
            "pairs": write_parquet_atomic(tile_dir / "work" / "astrometry_pairs.parquet", sol.pairs),
            "astrometry": write_json_atomic(tile_dir / "work" / "astrometry.json", record),
        }
        return outs, {"astrometry": summary}

    # The trust thresholds are applied after the counterpart match (select_candidates), not here.
    params = {**acfg.model_dump(mode="json", exclude={"trust"}), "ra0": ra0, "dec0": dec0}
    return _run_step(tile_dir, "astrometry", inputs, params, fit_astrometry, body)


def _position_errors(table: pd.DataFrame, x: np.ndarray, y: np.ndarray, sol: Any, ra0: float,
                     dec0: float) -> dict[str, Any]:
    """Add the per-detection position uncertainty columns to ``table``; return the tile's figures.

    See :func:`vasco.astrometry.trust.position_errors`: the windowed centroid
    error (ERRAWIN/ERRBWIN_IMAGE) at the tile's pixel scale, in quadrature
    with the fit's residual scatter.
    """
    from vasco.astrometry.trust import fit_scatter_arcsec, pixel_scale_arcsec, position_errors

    missing = [c for c in ("ERRAWIN_IMAGE", "ERRBWIN_IMAGE") if c not in table.columns]
    if missing:
        raise ValueError(f"measured table lacks column(s) {missing} (pass 2's windowed centroid errors)")
    scale = pixel_scale_arcsec(x, y, sol.ra, sol.dec, ra0, dec0)
    scatter = fit_scatter_arcsec(sol.pairs)
    errs = position_errors(table["ERRAWIN_IMAGE"].to_numpy(np.float64), table["ERRBWIN_IMAGE"].to_numpy(np.float64),
                           scale, scatter)
    for col, values in errs.items():
        table[col] = values
    return {"pixel_scale_arcsec": scale if np.isfinite(scale) else None, "fit_scatter_arcsec": scatter}


def plot_astrometry(tile_dir: Path, pairs: Output, astrometry: Output, tile_id: str) -> dict[str, Any]:
    """The tile's astrometric residual plot, ``qc/astrometry.png`` (vectors and histogram)."""
    from vasco.qc.astrometry_plot import plot_residuals

    tile_dir = Path(tile_dir)

    def body() -> tuple[dict[str, Path], dict[str, Any]]:
        table = pd.read_parquet(pairs["path"])
        summary = read_json(Path(astrometry["path"]))["summary"]
        path = plot_residuals(table, summary, tile_dir / "qc" / "astrometry.png", title=tile_id)
        return {"plot": path}, {}

    return _run_step(
        tile_dir, "qc_astrometry", {"pairs": pairs, "astrometry": astrometry}, {"tile_id": tile_id},
        plot_astrometry, body,
    )


# --------------------------------------------------------------------------- matching


def _catalog_applies(name: str, dec: float, cfg: VascoConfig) -> tuple[bool, str | None]:
    if name == "ps1" and dec < cfg.matching.ps1_dec_min:
        return False, f"PS1 does not cover Dec {dec:.3f} < {cfg.matching.ps1_dec_min}"
    return True, None


def match_catalogs(
    tile_dir: Path,
    measured: Output,
    catalogs: Mapping[str, Output],
    plate: Output,
    tile_dec: float,
    cfg: VascoConfig,
) -> dict[str, Any]:
    """Counterparts in each reference catalogue, moved to the plate epoch.

    For each catalogue ``c`` adds ``c_id``, ``c_sep_arcsec`` and ``c_mag``;
    then ``counterpart_sep_arcsec`` / ``counterpart_catalog`` (the nearest over
    all catalogues).  A catalogue that does not cover the tile (PS1 below
    Dec -30) is skipped and the reason recorded in the step info.
    """
    tile_dir = Path(tile_dir)
    inputs: dict[str, Output] = {"measured": measured, "plate": plate}
    inputs.update({f"cat_{k}": v for k, v in catalogs.items()})

    def body() -> tuple[dict[str, Path], dict[str, Any]]:
        table = pd.read_parquet(measured["path"])
        epoch = plate_epoch_mid(plate)
        used, skipped = [], {}
        best_sep = np.full(len(table), np.nan)
        best_cat = np.full(len(table), "", dtype=object)
        for name in cfg.matching.catalogs:
            applies, why = _catalog_applies(name, tile_dec, cfg)
            if not applies:
                # Same columns on every tile, empty here, so tile tables merge.
                skipped[name] = why
                table[f"{name}_id"] = pd.array([pd.NA] * len(table), dtype="Int64")
                table[f"{name}_sep_arcsec"] = np.nan
                table[f"{name}_mag"] = np.nan
                continue
            if name not in catalogs:
                raise StepError("FAIL_CATALOG_MISSING", f"catalogue {name!r} was not acquired for this tile")
            raw = pd.read_parquet(catalogs[name]["path"])
            ref = normalize_catalog(raw, name, GAIA_EPOCH if name == "gaia" else PS1_EPOCH)
            res = find_counterparts(
                table["ra"].to_numpy(), table["dec"].to_numpy(), ref, epoch, cfg.matching.radius_arcsec
            )
            table[f"{name}_id"] = res["id"].to_numpy()
            table[f"{name}_sep_arcsec"] = res["sep_arcsec"].to_numpy()
            table[f"{name}_mag"] = res["mag"].to_numpy()
            closer = np.isfinite(res["sep_arcsec"].to_numpy()) & ~(res["sep_arcsec"].to_numpy() >= best_sep)
            best_sep = np.where(closer, res["sep_arcsec"].to_numpy(), best_sep)
            best_cat = np.where(closer, name, best_cat)
            used.append(name)
        table["counterpart_sep_arcsec"] = best_sep
        table["counterpart_catalog"] = pd.array(best_cat, dtype="string")
        path = write_parquet_atomic(tile_dir / "work" / "matched.parquet", table)
        return {"table": path}, {"catalogs_used": used, "catalogs_skipped": skipped}

    params = {**cfg.matching.model_dump(mode="json"), "tile_dec": tile_dec}
    return _run_step(tile_dir, "match", inputs, params, match_catalogs, body)


# --------------------------------------------------------------------------- selection


def select_candidates(
    tile_dir: Path, matched: Output, match_info: Mapping[str, Any], cfg: VascoConfig, *, astrometry: Output
) -> dict[str, Any]:
    """Quality cuts, then the counterpart vetoes (Gaia, PS1); and whether the tile's astrometry can be trusted.

    Writes ``work/selected.parquet``: every detection with its ``cut_*``
    columns, ``passes_cuts``, ``no_<catalogue>`` and ``no_counterpart``
    (passes the cuts and has no counterpart in any catalogue used).  The
    funnel is ordered: ``detections``, the quality cuts of
    :data:`vasco.filters.cuts.CUT_ORDER`, then ``no_<catalogue>`` for each
    catalogue used, in order.  :func:`fit_psf_model` (the SPREAD_MODEL cut)
    and the later vetoes (:func:`apply_vetoes`) take it from there.

    ``astrometry`` is ``work/astrometry.json`` of :func:`fit_astrometry`.
    With the counterparts known, the tile's trust is decided
    (:func:`vasco.astrometry.trust.assess_trust`, thresholds
    ``astrometry.trust``) and every detection gets ``astrometry_trusted``
    and ``astrometry_trust_reason`` (reason tokens joined by ``;``, "" when
    trusted); the step info's ``astrometry_trust`` holds the decision.
    """
    from vasco.astrometry.trust import assess_trust, match_fraction, match_test_stars

    tile_dir = Path(tile_dir)
    used = list(match_info.get("catalogs_used", []))
    tcfg = cfg.astrometry.trust
    ref = cfg.astrometry.reference

    def body() -> tuple[dict[str, Path], dict[str, Any]]:
        table = pd.read_parquet(matched["path"])
        table, funnel = apply_quality_cuts(table, cfg.cuts)
        summary = read_json(Path(astrometry["path"]))["summary"]
        if f"{ref}_sep_arcsec" in table.columns:
            counts = match_fraction(table[f"{ref}_sep_arcsec"].to_numpy(np.float64), match_test_stars(table, tcfg))
        else:
            counts = (0, 0, None)  # the reference catalogue was not matched on this tile
        trust = assess_trust(summary, counts, tcfg, match_catalog=ref)
        table["astrometry_trusted"] = np.full(len(table), trust.trusted, dtype=bool)
        table["astrometry_trust_reason"] = pd.array([trust.reason] * len(table), dtype="string")
        alive = table["passes_cuts"].to_numpy().copy()
        for name in used:
            no_cp = ~np.isfinite(table[f"{name}_sep_arcsec"].to_numpy(np.float64))
            table[f"no_{name}"] = no_cp
            alive &= no_cp
            funnel[f"no_{name}"] = int(alive.sum())
        table["no_counterpart"] = alive
        sel = write_parquet_atomic(tile_dir / "work" / "selected.parquet", table)
        return {"selected": sel}, {"funnel": dict(funnel), "astrometry_trust": trust.to_dict()}

    return _run_step(
        tile_dir,
        "select",
        {"matched": matched, "astrometry": astrometry},
        {**cfg.cuts.model_dump(mode="json"), "used": used, "trust": tcfg.model_dump(mode="json"), "reference": ref},
        select_candidates,
        body,
    )


def fit_psf_model(tile_dir: Path, selected: Output, image: Output, psf: Output, cfg: VascoConfig) -> dict[str, Any]:
    """The SPREAD_MODEL cut, on the detections alive after the counterpart tests.

    With ``extraction.psf_fit_scope = 'needed'`` the PSF-model columns
    (SPREAD_MODEL, SPREADERR_MODEL, MAG_PSF, MAGERR_PSF) are measured here,
    in one SExtractor ASSOC run (:func:`vasco.extraction.sextractor.run_psf_fit`),
    for those detections only (``psf_measured``; NaN for the others).  With
    ``'all'`` pass 2 already measured every detection.

    Writes ``work/spread.parquet``: the selected table with the PSF-model
    columns, ``psf_measured``, ``cut_spread_model`` (nullable: missing for
    the detections that never reached the cut) and ``survives_psf`` (alive
    after this stage: where the later vetoes start).  The funnel gets the
    ``spread_model`` stage.
    """
    tile_dir = Path(tile_dir)
    scope = cfg.extraction.psf_fit_scope
    inputs: dict[str, Output] = {"selected": selected}
    if scope == "needed":
        inputs.update(image=image, psf=psf)
    params = {**cfg.extraction.model_dump(mode="json"), "spread_model_min": cfg.cuts.spread_model_min}

    def body() -> tuple[dict[str, Path], dict[str, Any]]:
        table = pd.read_parquet(selected["path"])
        reached = table["no_counterpart"].to_numpy(bool)
        if scope == "needed":
            listed = table.loc[reached, ["NUMBER", "X_IMAGE", "Y_IMAGE"]]
            got = _tool_step(lambda: sextractor.run_psf_fit(
                Path(image["path"]), Path(psf["path"]), listed, tile_dir / "work", cfg.extraction))
            for col in sextractor.PSF_COLUMNS:
                values = np.full(len(table), np.nan, dtype=np.float32)
                values[reached] = got[col].to_numpy(np.float32)
                table[col] = values
            table["psf_measured"] = reached
        else:
            missing = [c for c in sextractor.PSF_COLUMNS if c not in table.columns]
            if missing:
                raise StepError("FAIL_PASS2", f"pass 2 with psf_fit_scope 'all' lacks column(s) {missing}")
            table["psf_measured"] = True
        # The same column order either way: the PSF-model columns, then psf_measured, at the end.
        table = table[[c for c in table.columns if c not in sextractor.PSF_COLUMNS and c != "psf_measured"]
                      + [*sextractor.PSF_COLUMNS, "psf_measured"]]
        try:
            table[f"cut_{SPREAD_CUT}"] = spread_model_cut(table["SPREAD_MODEL"].to_numpy(np.float64), reached, cfg.cuts)
        except ValueError as exc:
            raise StepError("FAIL_PSF_FIT", str(exc)) from exc
        alive = reached & table[f"cut_{SPREAD_CUT}"].fillna(False).to_numpy(bool)
        table["survives_psf"] = alive
        path = write_parquet_atomic(tile_dir / "work" / "spread.parquet", table)
        info = {"funnel": {SPREAD_CUT: int(alive.sum())}, "psf_fit_scope": scope, "psf_measured": int(reached.sum())}
        return {"table": path}, info

    return _run_step(tile_dir, "psf_fit", inputs, params, fit_psf_model, body)


# --------------------------------------------------------------------------- later vetoes

#: Veto list name -> how the rows are put into the reference schema.
VETO_LISTS_SYNTHETIC = ("usnob", "allwise", "vsx", "skybot", "scos")


def veto_reference(raw: pd.DataFrame, name: str) -> pd.DataFrame:
    """A veto list (as served, or as the synthetic sky writes it) in the reference schema."""
    raw = raw.copy()
    if name in ("usnob", "bright") and {"R1mag", "R2mag"} & set(raw.columns):
        r1 = raw["R1mag"].to_numpy(np.float64) if "R1mag" in raw else np.full(len(raw), np.nan)
        r2 = raw["R2mag"].to_numpy(np.float64) if "R2mag" in raw else np.full(len(raw), np.nan)
        # The brighter of the two R epochs: a star is not let off by its fainter measurement.
        with np.errstate(invalid="ignore"):
            raw["Rmag_best"] = np.fmin(r1, r2)
        raw = raw.drop(columns=[c for c in ("R1mag", "R2mag", "pmRA", "pmDE") if c in raw.columns])
    return normalize_catalog(raw, name, 2000.0)


def veto_list_names(cfg: VascoConfig) -> list[str]:
    """The reference lists the enabled vetoes read (``bright``, ``archive_<name>``, ``skybot``, ``vsx``, ``scos``)."""
    vc = cfg.vetoes
    names: list[str] = []
    if vc.spikes.enabled and vc.spikes.catalog == "usnob":
        names.append("bright")
    if vc.archives.enabled:
        names += [f"archive_{a}" for a in vc.archives.tables]
    if vc.asteroids.enabled:
        names.append("skybot")
    if vc.variables.enabled:
        names.append("vsx")
    if vc.supercosmos.enabled:
        names.append("scos")
    return names


def veto_list_sources(cfg: VascoConfig, synthetic_tile: bool) -> dict[str, str]:
    """Where each veto list comes from: 'synthetic', 'local' or 'service'.

    A stage's ``source`` 'auto' follows the reference catalogues: the
    synthetic sky's own list for a synthetic tile, the user's files when
    ``catalogs.source`` is 'local' (a list without a file is then skipped),
    and the service otherwise.  A list is read from the file named in
    ``catalogs.local`` when its source is 'local'.
    """
    vc = cfg.vetoes
    catalogs_local = cfg.catalogs.resolved(cfg.sky) == "local"
    stage_source = {"bright": vc.spikes.source, "skybot": vc.asteroids.source, "vsx": vc.variables.source,
                    "scos": vc.supercosmos.source}
    out: dict[str, str] = {}
    for name in veto_list_names(cfg):
        src = stage_source.get(name, vc.archives.source)
        if src == "auto":
            src = "synthetic" if synthetic_tile else ("local" if catalogs_local else "service")
        out[name] = src
    return out


#: Synthetic sky list (SyntheticTile attribute / acquire output) behind each veto list name.
SYNTHETIC_VETO_LISTS = {"bright": "usnob", "archive_allwise": "allwise", "skybot": "skybot", "vsx": "vsx",
                        "scos": "scos"}


#: Short archive names of ``vetoes.archives.tables`` -> VizieR table.
ARCHIVE_TABLES = {"allwise": "II/328/allwise", "catwise": "II/365/catwise", "2mass": "II/246/out"}


def _epoch_jd(epoch: float) -> float:
    """Julian date of a Julian-year epoch."""
    return 2451545.0 + (float(epoch) - 2000.0) * 365.25


def synthetic_skybot(tile_dir: Path, skybot: Output, plate: Output) -> dict[str, Any]:
    """The synthetic SkyBoT asked at the tile's plate epoch (mid-exposure of the date the tile uses).

    The synthetic sky writes its SkyBoT list at the plate's true date;
    asked at another date (a header a day off, ``plates.date_source``), the
    synthetic service answers with the asteroids where they are then
    (:func:`vasco.synthetic.archives.skybot_at`), as the real one would, so
    a wrong date misses them on the synthetic sky too.  Writes
    ``catalogs/skybot_at_epoch.parquet``.
    """
    from vasco.synthetic.archives import julian_date, skybot_at

    tile_dir = Path(tile_dir)

    def body() -> tuple[dict[str, Path], dict[str, Any]]:
        epoch_jd = julian_date(plate_epoch_mid(plate))
        table = skybot_at(pd.read_parquet(skybot["path"]), epoch_jd)
        path = write_parquet_atomic(tile_dir / "catalogs" / "skybot_at_epoch.parquet", table)
        return {"skybot": path}, {"epoch_jd": epoch_jd, "n_skybot": len(table)}

    return _run_step(tile_dir, "skybot_epoch", {"skybot": skybot, "plate": plate}, {}, synthetic_skybot, body)


def acquire_veto_lists(
    tile_dir: Path,
    selected: Output,
    plate: Output,
    ra: float,
    dec: float,
    cfg: VascoConfig,
) -> dict[str, Any]:
    """Reference lists of the later vetoes from local files or from the services.

    ``local`` lists are the rows of the file named in ``catalogs.local`` (by
    list name: ``usnob``, ``allwise``, ``catwise``, ``2mass``, ``vsx``,
    ``skybot``, ``scos``) within the tile's cone plus the spike radius.
    ``service`` lists are asked only around the detections still alive
    after the Gaia/PS1 veto and the SPREAD_MODEL cut (``survives_psf`` of
    :func:`fit_psf_model`'s table): the bright USNO-B1.0 stars of the tile's cone
    (R <= the rule's intercept, both R epochs, never truncated), SkyBoT for the
    tile's cone at the plate epoch, and small cones (the stage's radius) per
    candidate for the archives, VSX and SuperCOSMOS.  A list with no file is
    not written (its stage is then recorded as skipped); a service failure
    fails the tile with the service's reason token: no answer is never taken
    for "nothing there".  (The synthetic sky writes its own lists.)
    """
    from vasco.sources.http import SourceError
    from vasco.sources.local import LocalCatalogError, read_local_cone

    tile_dir = Path(tile_dir)
    vc = cfg.vetoes
    radius = (cfg.survey.size_arcmin / 2.0 * np.sqrt(2.0)) / 60.0 + vc.spikes.radius_arcsec / 3600.0
    sources = veto_list_sources(cfg, synthetic_tile=False)
    local = {n: cfg.catalogs.local[n.removeprefix("archive_").replace("bright", "usnob")]
             for n, src in sources.items()
             if src == "local" and n.removeprefix("archive_").replace("bright", "usnob") in cfg.catalogs.local}
    service = [n for n, src in sources.items() if src == "service"]
    params = {"ra": ra, "dec": dec, "radius_deg": radius, "files": local, "service": service,
              "vetoes": vc.model_dump(mode="json")}

    def body() -> tuple[dict[str, Path], dict[str, Any]]:
        from vasco.sources.provenance import query_entry, utc_now

        outs: dict[str, Path] = {}
        info: dict[str, Any] = {"local": sorted(local), "service": service, "queries": []}
        for name, path in local.items():
            asked = utc_now()
            try:
                table = read_local_cone(Path(path), ra, dec, radius)
            except LocalCatalogError as exc:
                raise StepError("FAIL_LOCAL_CATALOG", str(exc)) from exc
            outs[name] = write_parquet_atomic(tile_dir / "catalogs" / f"veto_{name}.parquet", table)
            info[f"n_{name}"] = len(table)
            info["queries"].append(query_entry("local", str(path), [name], asked, len(table)))
        if service:
            sel = pd.read_parquet(selected["path"], columns=["ra", "dec", "survives_psf"])
            alive = sel.loc[sel["survives_psf"].to_numpy(bool)]
            epoch = plate_epoch_mid(plate)
            try:
                for name in service:
                    asked = utc_now()
                    table = _service_list(name, alive, ra, dec, radius, epoch, cfg)
                    outs[name] = write_parquet_atomic(tile_dir / "catalogs" / f"veto_{name}.parquet", table)
                    info[f"n_{name}"] = len(table)
                    svc, url, tables = _service_list_origin(name, cfg)
                    info["queries"].append(query_entry(svc, url, tables, asked, len(table)))
            except SourceError as exc:
                raise StepError(exc.reason, str(exc)) from exc
        return outs, info

    return _run_step(tile_dir, "veto_lists", {"selected": selected, "plate": plate}, params, acquire_veto_lists, body)


def _service_list_origin(name: str, cfg: VascoConfig) -> tuple[str, str, list[str]]:
    """(service, base URL, tables) a veto list is asked of (see :func:`_service_list`)."""
    if name == "skybot":
        from vasco.sources.skybot import skybot_url

        return "skybot", skybot_url(None, cfg.sources.skybot), ["skybot"]
    if name == "scos":
        from vasco.sources.supercosmos import supercosmos_url

        return "supercosmos", supercosmos_url(None, cfg.sources.supercosmos), ["Source"]
    from vasco.sources.vizier import USNO_B1, vizier_base_url

    table = {"bright": USNO_B1.name, "vsx": "B/vsx/vsx"}.get(name)
    if table is None:
        table = ARCHIVE_TABLES.get(name.removeprefix("archive_"), name.removeprefix("archive_"))
    return "vizier", vizier_base_url(None, cfg.sources.vizier), [table]


def _service_list(
    name: str, alive: pd.DataFrame, ra: float, dec: float, radius: float, epoch: float, cfg: VascoConfig
) -> pd.DataFrame:
    """One veto list from its service (see :func:`acquire_veto_lists`)."""
    from vasco.sources.skybot import query_skybot
    from vasco.sources.supercosmos import query_supercosmos
    from vasco.sources.vizier import query_bright_stars, query_positions

    vc = cfg.vetoes
    cra = alive["ra"].to_numpy(np.float64)
    cdec = alive["dec"].to_numpy(np.float64)
    if name == "bright":
        # The rule can only reject with m < intercept (at d = 0) or m <= mag_always.
        mag_max = max(vc.spikes.intercept, vc.spikes.mag_always)
        return query_bright_stars(ra, dec, radius, mag_max, config=cfg.sources.vizier)
    if name == "skybot":
        return query_skybot(ra, dec, radius, _epoch_jd(epoch), vc.asteroids.observer, config=cfg.sources.skybot)
    if not len(alive):
        return pd.DataFrame({"source_id": pd.Series(dtype="string"), "ra": pd.Series(dtype=np.float64),
                             "dec": pd.Series(dtype=np.float64)})
    if name == "scos":
        parts = [query_supercosmos(float(a), float(d), vc.supercosmos.radius_arcsec / 3600.0,
                                   ["objID", "ra", "dec", "sCorMagR1", "objIDR1"], config=cfg.sources.supercosmos)
                 for a, d in zip(cra, cdec)]
        table = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
        return table.drop_duplicates("objID").reset_index(drop=True) if "objID" in table else table
    if name == "vsx":
        return query_positions("B/vsx/vsx", cra, cdec, vc.variables.radius_arcsec, config=cfg.sources.vizier)
    table_name = name.removeprefix("archive_")
    table_name = ARCHIVE_TABLES.get(table_name, table_name)
    return query_positions(table_name, cra, cdec, vc.archives.radius_arcsec, config=cfg.sources.vizier)


def apply_vetoes(
    tile_dir: Path,
    selected: Output,
    lists: Mapping[str, Output],
    cfg: VascoConfig,
) -> dict[str, Any]:
    """The paper's later vetoes on the tile's candidates; write detections and candidates.

    ``selected`` is the table of :func:`fit_psf_model`.  Stages run in
    :data:`vasco.filters.config.VETO_ORDER` on the detections still alive
    (``survives_psf``): ``not_bright_star`` (list ``bright``), ``no_archive`` (lists
    ``archive_<name>``), ``not_asteroid`` (``skybot``), ``not_variable``
    (``vsx``), ``in_supercosmos`` (``scos``: rows measured on the R1 plate
    only; ``scos_status`` pass / fail / not_applicable, the last, south of
    the SSA's POSS-I E plates, removing nothing), ``not_hpm`` (``gaia``).  A stage
    whose list is missing is recorded as skipped (in the step info and
    tile.json), never as "nothing found".  Each stage adds
    ``veto_<stage>`` (True: rejected by it) and what it matched to the
    candidates; ``is_candidate`` is the final flag.
    """
    from vasco.filters.vetoes import bright_star_veto, counterpart_veto, hpm_veto, supercosmos_veto

    tile_dir = Path(tile_dir)
    vc = cfg.vetoes

    def body() -> tuple[dict[str, Path], dict[str, Any]]:
        table = pd.read_parquet(selected["path"])
        alive = table["survives_psf"].to_numpy(bool).copy()
        funnel: dict[str, int] = {}
        skipped: dict[str, str] = {}
        n = len(table)

        def load(name: str) -> pd.DataFrame | None:
            if name not in lists:
                return None
            raw = pd.read_parquet(lists[name]["path"])
            if name == "gaia":
                return normalize_catalog(raw, "gaia", GAIA_EPOCH)
            return veto_reference(raw, name.removeprefix("archive_"))

        def mark(stage: str, res: pd.DataFrame, idx: np.ndarray, extra: dict[str, str]) -> None:
            col = np.zeros(n, dtype=bool)
            col[idx] = res["vetoed"].to_numpy(bool)
            table[f"veto_{stage}"] = col
            for src, dst in extra.items():
                # Rows the stage did not test get NaN / <NA>.
                table[dst] = pd.Series(res[src].array, index=table.index[idx]).reindex(table.index)

        for stage in vc.enabled_stages():
            idx = np.flatnonzero(alive)
            ra = table["ra"].to_numpy(np.float64)[idx]
            dec = table["dec"].to_numpy(np.float64)[idx]
            res: pd.DataFrame | None = None
            if stage == "not_bright_star":
                name = "bright" if vc.spikes.catalog == "usnob" else vc.spikes.catalog
                ref = load(name)
                if ref is not None:
                    s = vc.spikes
                    res = bright_star_veto(ra, dec, ref, radius_arcsec=s.radius_arcsec, mag_always=s.mag_always,
                                           slope=s.slope, intercept=s.intercept)
                    mark(stage, res, idx, {"star_id": "bright_star_id", "star_mag": "bright_star_mag",
                                           "star_dist_arcsec": "bright_star_dist_arcsec"})
            elif stage == "no_archive":
                found = [a for a in vc.archives.tables if f"archive_{a}" in lists]
                if found:
                    hit = np.zeros(idx.size, dtype=bool)
                    for a in found:
                        r = counterpart_veto(ra, dec, load(f"archive_{a}"), vc.archives.radius_arcsec)  # type: ignore[arg-type]
                        col = a.replace("/", "_")
                        mark(f"archive_{col}", r, idx, {"match_sep_arcsec": f"{col}_sep_arcsec"})
                        hit |= r["vetoed"].to_numpy(bool)
                    res = pd.DataFrame({"vetoed": hit})
                    mark(stage, res, idx, {})
                    missing = [a for a in vc.archives.tables if a not in found]
                    if missing:
                        skipped["archives"] = f"no list for {missing}"
            elif stage == "not_asteroid":
                if "skybot" in lists:
                    raw = pd.read_parquet(lists["skybot"]["path"])
                    raw = raw.loc[np.isfinite(raw["ra"].to_numpy(np.float64))
                                  & np.isfinite(raw["dec"].to_numpy(np.float64))].reset_index(drop=True)
                    ref = veto_reference(raw, "skybot")
                    # Each asteroid's own radius: the stage's, or 3x its ephemeris uncertainty.
                    err = raw["ErrPos"].to_numpy(np.float64) if "ErrPos" in raw else np.zeros(len(raw))
                    radius = np.maximum(vc.asteroids.radius_arcsec, 3.0 * np.nan_to_num(err))
                    res = counterpart_veto(ra, dec, ref, radius)
                    mark(stage, res, idx, {"match_id": "asteroid_name", "match_sep_arcsec": "asteroid_sep_arcsec"})
            elif stage == "not_variable":
                ref = load("vsx")
                if ref is not None:
                    res = counterpart_veto(ra, dec, ref, vc.variables.radius_arcsec)
                    mark(stage, res, idx, {"match_id": "vsx_name", "match_sep_arcsec": "vsx_sep_arcsec"})
            elif stage == "in_supercosmos":
                if "scos" in lists:
                    # Only a detection on the same POSS-I E plate (R1) counts; none south of -17.5.
                    from vasco.sources.supercosmos import POSS_I_E_DEC_MIN, has_r1_measurement

                    raw = pd.read_parquet(lists["scos"]["path"])
                    try:
                        r1 = has_r1_measurement(raw)
                    except ValueError as exc:
                        raise StepError("FAIL_SUPERCOSMOS_COLUMNS", f"{lists['scos']['path']}: {exc}") from exc
                    ref = veto_reference(raw.loc[r1].reset_index(drop=True), "scos")
                    res = supercosmos_veto(ra, dec, ref, vc.supercosmos.radius_arcsec, POSS_I_E_DEC_MIN)
                    mark(stage, res, idx, {"match_sep_arcsec": "scos_sep_arcsec", "status": "scos_status"})
            elif stage == "not_hpm":
                ref = load("gaia")
                if ref is not None:
                    res = hpm_veto(ra, dec, ref, radius_arcsec=vc.hpm.radius_arcsec, gmag_max=vc.hpm.gmag_max,
                                   plate_ra=table["ra"].to_numpy(np.float64),
                                   plate_dec=table["dec"].to_numpy(np.float64),
                                   plate_radius_arcsec=cfg.matching.radius_arcsec)
                    mark(stage, res, idx, {"match_id": "hpm_gaia_id", "match_sep_arcsec": "hpm_sep_arcsec"})
            if res is None:
                skipped[stage] = skipped.get(stage, "no reference list for this tile")
                continue
            alive[idx[res["vetoed"].to_numpy(bool)]] = False
            funnel[stage] = int(alive.sum())
        table["is_candidate"] = alive
        det = write_parquet_atomic(tile_dir / "detections.parquet", table)
        cand = write_parquet_atomic(tile_dir / "candidates.parquet", table.loc[alive].reset_index(drop=True))
        return {"detections": det, "candidates": cand}, {"funnel": funnel, "skipped": skipped}

    return _run_step(
        tile_dir, "vetoes", {"selected": selected, **{f"list_{k}": v for k, v in lists.items()}},
        vc.model_dump(mode="json"), apply_vetoes, body,
    )


def ordered_funnel(*infos: Mapping[str, Any]) -> "OrderedDict[str, int]":
    """The funnel of ``select_candidates`` (and ``apply_vetoes``) results, in step order."""
    return OrderedDict((k, int(v)) for info in infos for k, v in info["funnel"].items())

"""Prefect tasks: thin wrappers of the per-tile steps of :mod:`vasco.steps`.

What lives here is orchestration only: retries, cache keys and result
storage.  Each task passes small manifests (paths and content hashes).
A task has its step's name (function and Prefect task name), and variants
of a step (``acquire_synthetic`` / ``acquire_dss`` / ``acquire_file``,
``catalogs`` / ``catalogs_xmatch``) share its step record.

Caching.  A task's cache key hashes the task's own source, the library
step's code fingerprint (:func:`vasco.codehash.code_fingerprint`: the
``vasco`` modules the step depends on, shipped tool configuration files and
tool versions), its parameters (input manifests with their SHA-256, the
configuration) and the key of the step record the library wrote
(:mod:`vasco.records`).  The key is only offered when that record exists
and its outputs are intact on disk, so a cache hit never hands back a
manifest whose files have gone; without a valid record the task runs, and
the library step itself returns at once if its outputs are already there.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import CacheKeyFnPolicy
from prefect.concurrency.sync import concurrency
from prefect.context import TaskRunContext

from vasco.codehash import code_fingerprint
from vasco.config import VascoConfig
from vasco.filters.registry import list_sources
from vasco.io import read_json
from vasco.outputs import TileRecord, write_tile_record
from vasco.records import load_record, record_path, source_hash
from vasco.steps import acquire
from vasco.steps import astrometry as astrometry_step
from vasco.steps import catalogs as catalogs_step
from vasco.steps import check_plate as check_plate_step
from vasco.steps import match as match_step
from vasco.steps import measure as measure_step
from vasco.steps import pass2 as pass2_step
from vasco.steps import psf as psf_step
from vasco.steps import select as select_step
from vasco.steps import skybot_epoch as skybot_epoch_step
from vasco.steps import spread_model as spread_model_step
from vasco.steps import veto_lists as veto_lists_step
from vasco.steps import vetoes as vetoes_step

__all__ = [
    "acquire_synthetic",
    "acquire_dss",
    "acquire_file",
    "catalogs",
    "catalogs_xmatch",
    "ensure_service_limits",
    "service_limits",
    "check_plate",
    "psf",
    "pass2",
    "measure",
    "astrometry",
    "match",
    "select",
    "spread_model",
    "veto_lists",
    "skybot_epoch",
    "vetoes",
    "record_tile",
    "cache_settings",
]

#: Reason tokens that no retry can change.
_NO_RETRY_PREFIXES = ("REJECT_", "FAIL_TOOL_MISSING", "FAIL_NO_ASTROMETRY", "FAIL_CATALOG_MISSING")


def _jsonable(value: Any) -> Any:
    if isinstance(value, VascoConfig):
        return value.model_dump(mode="json")
    if isinstance(value, Path):
        return str(value)
    return value


def _step_cache(step: str, lib_fn: Callable[..., Any]) -> CacheKeyFnPolicy:
    def key_fn(ctx: TaskRunContext, params: dict[str, Any]) -> str | None:
        tile_dir = Path(params["tile_dir"])
        try:
            rec = read_json(record_path(tile_dir, step))
        except (OSError, ValueError):
            return None
        if not isinstance(rec, dict) or load_record(tile_dir, step, str(rec.get("key"))) is None:
            return None
        blob = json.dumps(
            {
                "task": source_hash(ctx.task.fn),
                "lib": code_fingerprint(lib_fn).digest,
                "record": rec["key"],
                "params": {k: _jsonable(v) for k, v in params.items()},
            },
            sort_keys=True,
            default=str,
        )
        return f"vasco-{step}-" + hashlib.sha256(blob.encode()).hexdigest()

    return CacheKeyFnPolicy(cache_key_fn=key_fn)


def _retry_unless_final(task: Any, task_run: Any, state: Any) -> bool:
    """Retry only failures a retry can help (not rejections or missing tools)."""
    try:
        exc = state.result(raise_on_failure=False)
    except Exception:  # noqa: BLE001 - any unreadable state: allow the retry
        return True
    reason = getattr(exc, "reason", "")
    return not str(reason).startswith(_NO_RETRY_PREFIXES)


_COMMON: dict[str, Any] = dict(persist_result=True, retry_condition_fn=_retry_unless_final)
#: Steps that ask a web service: two more tries, 10 s then 60 s apart (+-50%).
_SERVICE_RETRIES: dict[str, Any] = dict(retries=2, retry_delay_seconds=[10, 60], retry_jitter_factor=0.5)


@task(
    name="acquire_synthetic",
    retries=2,
    retry_delay_seconds=[2, 10],
    cache_policy=_step_cache("acquire", acquire.acquire_synthetic),
    **_COMMON,
)
def acquire_synthetic(tile_dir: Path, ra: float, dec: float, cfg: VascoConfig) -> dict[str, Any]:
    """Render the synthetic tile and its catalogues (step ``acquire``)."""
    return acquire.acquire_synthetic(tile_dir, ra, dec, cfg)


@task(
    name="acquire_dss",
    **_SERVICE_RETRIES,
    cache_policy=_step_cache("acquire", acquire.acquire_dss),
    **_COMMON,
)
def acquire_dss(tile_dir: Path, ra: float, dec: float, cfg: VascoConfig) -> dict[str, Any]:
    """Download the cutout from STScI, at most ``catalogs.service_concurrency`` at once (step ``acquire``)."""
    with concurrency(service_limit("dss"), occupy=1, strict=True):
        return acquire.acquire_dss(tile_dir, ra, dec, cfg)


@task(name="acquire_file", cache_policy=_step_cache("acquire", acquire.acquire_file), **_COMMON)
def acquire_file(tile_dir: Path, fits_path: Path) -> dict[str, Any]:
    """Copy a user's FITS cutout into the tile folder (step ``acquire``)."""
    return acquire.acquire_file(tile_dir, fits_path)


@task(
    name="catalogs",
    **_SERVICE_RETRIES,
    cache_policy=_step_cache("catalogs", catalogs_step.catalogs),
    **_COMMON,
)
def catalogs(tile_dir: Path, ra: float, dec: float, cfg: VascoConfig) -> dict[str, Any]:
    """Cone queries (VizieR, politely limited) or local catalogue files."""
    with _politely("vizier" if cfg.catalogs.resolved(cfg.sky) == "vizier" else None):
        return catalogs_step.catalogs(tile_dir, ra, dec, cfg)


@task(
    name="catalogs_xmatch",
    retries=2,
    retry_delay_seconds=[30, 120],
    retry_jitter_factor=0.5,
    cache_policy=_step_cache("catalogs", catalogs_step.catalogs_xmatch),
    **_COMMON,
)
def catalogs_xmatch(tile_dir: Path, measured: dict[str, str], tile_dec: float, cfg: VascoConfig) -> dict[str, Any]:
    """CDS XMatch jobs, one at a time across the whole survey (CDS bans parallel jobs; step ``catalogs``)."""
    with concurrency(service_limit("xmatch"), occupy=1, strict=True):
        return catalogs_step.catalogs_xmatch(tile_dir, measured, tile_dec, cfg)


@task(name="check_plate", cache_policy=_step_cache("check_plate", check_plate_step.check_plate), **_COMMON)
def check_plate(
    tile_dir: Path,
    image: dict[str, str],
    cfg: VascoConfig | None = None,
    verdicts: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Is the cutout POSS-I E? Which plate, which of its dates, which epoch?"""
    return check_plate_step.check_plate(tile_dir, image, cfg, verdicts)


@task(name="psf", retries=1, retry_delay_seconds=2, cache_policy=_step_cache("psf", psf_step.psf), **_COMMON)
def psf(tile_dir: Path, image: dict[str, str], cfg: VascoConfig) -> dict[str, Any]:
    """SExtractor pass 1 and PSFEx: the tile's PSF model (pass 1's catalogue is not kept)."""
    return psf_step.psf(tile_dir, image, cfg)


@task(name="pass2", retries=1, retry_delay_seconds=2, cache_policy=_step_cache("pass2", pass2_step.pass2), **_COMMON)
def pass2(tile_dir: Path, image: dict[str, str], psf: dict[str, str], cfg: VascoConfig) -> dict[str, Any]:
    """SExtractor pass 2."""
    return pass2_step.pass2(tile_dir, image, psf, cfg)


@task(name="measure", cache_policy=_step_cache("measure", measure_step.measure), **_COMMON)
def measure(tile_dir: Path, pass2: dict[str, str], image: dict[str, str], cfg: VascoConfig) -> dict[str, Any]:
    """Header sky positions and the plate frame."""
    return measure_step.measure(tile_dir, pass2, image, cfg)


@task(name="astrometry", cache_policy=_step_cache("astrometry", astrometry_step.astrometry), **_COMMON)
def astrometry(
    tile_dir: Path,
    measured: dict[str, str],
    catalogs: dict[str, dict[str, str]],
    plate: dict[str, str],
    ra0: float,
    dec0: float,
    cfg: VascoConfig,
) -> dict[str, Any]:
    """Choose the header solution and fit the Gaia-tied correction."""
    return astrometry_step.astrometry(tile_dir, measured, catalogs, plate, ra0, dec0, cfg)


@task(name="match", cache_policy=_step_cache("match", match_step.match), **_COMMON)
def match(
    tile_dir: Path,
    measured: dict[str, str],
    catalogs: dict[str, dict[str, str]],
    plate: dict[str, str],
    tile_dec: float,
    cfg: VascoConfig,
) -> dict[str, Any]:
    """Counterparts in each reference catalogue."""
    return match_step.match(tile_dir, measured, catalogs, plate, tile_dec, cfg)


@task(name="select", cache_policy=_step_cache("select", select_step.select), **_COMMON)
def select(
    tile_dir: Path, matched: dict[str, str], match_info: dict[str, Any], cfg: VascoConfig, astrometry: dict[str, str]
) -> dict[str, Any]:
    """Quality cuts, the Gaia/PS1 counterpart tests, and the tile's astrometric trust."""
    return select_step.select(tile_dir, matched, match_info, cfg, astrometry=astrometry)


@task(
    name="spread_model",
    retries=1,
    retry_delay_seconds=2,
    cache_policy=_step_cache("spread_model", spread_model_step.spread_model),
    **_COMMON,
)
def spread_model(
    tile_dir: Path, selected: dict[str, str], image: dict[str, str], psf: dict[str, str], cfg: VascoConfig
) -> dict[str, Any]:
    """The SPREAD_MODEL cut; the PSF fit (SExtractor ASSOC run) for the detections that reach it."""
    return spread_model_step.spread_model(tile_dir, selected, image, psf, cfg)


@task(
    name="veto_lists",
    **_SERVICE_RETRIES,
    cache_policy=_step_cache("veto_lists", veto_lists_step.veto_lists),
    **_COMMON,
)
def veto_lists(
    tile_dir: Path, selected: dict[str, str], plate: dict[str, str], ra: float, dec: float, cfg: VascoConfig
) -> dict[str, Any]:
    """Reference lists of the later vetoes (local files, or services around the candidates),
    at most ``catalogs.service_concurrency`` tiles asking the services at once, and at most
    :data:`vasco.sources.skybot.SKYBOT_MAX_CONCURRENCY` of them when SkyBoT is asked."""
    with (
        _politely("vizier" if _vetoes_ask_services(cfg) else None),
        _politely("skybot" if _skybot_asked(cfg) else None),
    ):
        return veto_lists_step.veto_lists(tile_dir, selected, plate, ra, dec, cfg)


@task(name="skybot_epoch", cache_policy=_step_cache("skybot_epoch", skybot_epoch_step.skybot_epoch), **_COMMON)
def skybot_epoch(tile_dir: Path, skybot: dict[str, str], plate: dict[str, str]) -> dict[str, Any]:
    """The synthetic SkyBoT list at the tile's plate epoch."""
    return skybot_epoch_step.skybot_epoch(tile_dir, skybot, plate)


@task(name="vetoes", cache_policy=_step_cache("vetoes", vetoes_step.vetoes), **_COMMON)
def vetoes(
    tile_dir: Path, selected: dict[str, str], lists: dict[str, dict[str, str]], cfg: VascoConfig
) -> dict[str, Any]:
    """The later vetoes (the registry's stages); detections and candidates."""
    return vetoes_step.vetoes(tile_dir, selected, lists, cfg)


@task(name="record-tile", persist_result=False)
def record_tile(tile_dir: Path, record: TileRecord) -> dict[str, Any]:
    """Write tile.json (atomically); return what was written."""
    return write_tile_record(tile_dir, record)


def _politely(service: str | None) -> Any:
    """Hold one slot of the service's strict global concurrency limit (nothing for no service)."""
    if service is None:
        return contextlib.nullcontext()
    return concurrency(service_limit(service), occupy=1, strict=True)


def _vetoes_ask_services(cfg: VascoConfig) -> bool:
    """Do the later vetoes of a (non-synthetic) tile ask services? (VizieR, SkyBoT, SuperCOSMOS)"""
    return cfg.sky != "synthetic" and "service" in list_sources(cfg, synthetic_tile=False).values()


def _skybot_asked(cfg: VascoConfig) -> bool:
    """Does a (non-synthetic) tile ask the SkyBoT service?"""
    return cfg.sky != "synthetic" and list_sources(cfg, synthetic_tile=False).get("skybot") == "service"


def service_limit(service: str) -> str:
    """Name of the Prefect global concurrency limit of a service."""
    return f"vasco-{service}"


def service_limits(cfg: VascoConfig) -> dict[str, int]:
    """The strict global concurrency limit of each service a run calls (service -> slots).

    ``catalogs.service_concurrency`` for each, except XMatch (one job at a
    time) and SkyBoT (at most :data:`vasco.sources.skybot.SKYBOT_MAX_CONCURRENCY`,
    the service's own limit, whatever the setting).
    """
    from vasco.sources.skybot import SKYBOT_MAX_CONCURRENCY

    services = []
    if cfg.sky == "dss":
        services.append("dss")
    source = cfg.catalogs.resolved(cfg.sky)
    if source in ("vizier", "xmatch"):
        services.append(source)
    if _vetoes_ask_services(cfg) and "vizier" not in services:
        services.append("vizier")
    limits = {s: (1 if s == "xmatch" else cfg.catalogs.service_concurrency) for s in services}
    if _skybot_asked(cfg):
        limits["skybot"] = min(SKYBOT_MAX_CONCURRENCY, cfg.catalogs.service_concurrency)
    return limits


def ensure_service_limits(cfg: VascoConfig) -> None:
    """Create (or update) the strict global concurrency limits of the services a run calls."""
    from prefect.client.orchestration import get_client

    limits = service_limits(cfg)
    if not limits:
        return
    with get_client(sync_client=True) as client:
        for service, limit in limits.items():
            client.upsert_global_concurrency_limit_by_name(service_limit(service), limit)


def cache_settings(out_dir: Path) -> dict[str, Any]:
    """Task options that keep Prefect's cached results inside the survey tree."""
    return {"result_storage": Path(out_dir).resolve() / ".vasco-cache" / "results"}

"""How a survey runs its tiles: in this process, or as flow runs of the tile deployment.

Both keep a bounded window of tiles in flight (never more futures or flow
runs held than that, however many tiles the survey has) and call
``on_done(tile_id)`` as each tile finishes, so the survey can report
progress.

``local``
    Each tile is the tile flow run as a subflow in a thread of the survey's
    process (SExtractor and PSFEx are separate processes, so two threads
    keep two cores busy).
``deployment``
    Each tile is a flow run of the tile deployment (``vasco-tile/tile`` by
    default), picked up by whichever worker of its pool is free: tiles
    spread over the machines of a work pool.  Runs are created with an
    idempotency key (survey run id + tile id), so a retried survey run does
    not start a tile twice.
"""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Callable, Sequence
from typing import Any

from prefect import get_run_logger, task
from prefect.client.schemas.objects import FlowRun
from prefect.context import get_run_context
from prefect.futures import PrefectConcurrentFuture
from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

from flows.tile import tile_flow
from vasco.config import VascoConfig
from vasco.sky.sampling import TilePosition

__all__ = ["run_local", "run_deployments"]


@task(name="run-tile")
def run_tile_subflow(ra: float, dec: float, out: str, cfg: VascoConfig, dry_run: bool = False) -> dict[str, Any]:
    """Run the tile flow as a subflow (one thread of the survey's pool).

    The subflow sends no heartbeats of its own: the survey's flow run, in the
    same process, already does (Prefect's heartbeat thread otherwise costs
    each subflow up to a second on exit, which is most of a dry-run tile).
    """
    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        return tile_flow(out=out, ra=ra, dec=dec, config=cfg, dry_run=dry_run)


def run_local(
    positions: Sequence[TilePosition],
    out: str,
    cfg: VascoConfig,
    in_flight: int,
    on_done: Callable[[str], None],
    dry_run: bool = False,
) -> None:
    """Run the tiles as subflows in this process, ``in_flight`` at a time.

    Completion is read from the futures themselves (not from the server's
    view of the task runs, which arrives through events a moment later).
    """
    pending = list(reversed(positions))
    running: dict[concurrent.futures.Future, tuple[str, Any]] = {}
    while pending or running:
        while pending and len(running) < in_flight:
            p = pending.pop()
            fut = run_tile_subflow.submit(p.ra, p.dec, out, cfg, dry_run)
            if not isinstance(fut, PrefectConcurrentFuture):  # the flow's ThreadPoolTaskRunner makes these
                raise TypeError(f"tile task submitted as {type(fut).__name__}, not a thread-pool future")
            running[fut.wrapped_future] = (p.tile_id, fut)
        done, _ = concurrent.futures.wait(list(running), return_when=concurrent.futures.FIRST_COMPLETED)
        for cf in done:
            tid, fut = running.pop(cf)
            fut.wait()
            on_done(tid)


def run_deployments(
    positions: Sequence[TilePosition],
    out: str,
    cfg: VascoConfig,
    in_flight: int,
    on_done: Callable[[str], None],
    deployment: str,
    poll_s: float = 2.0,
    dry_run: bool = False,
    run_key: str | None = None,
) -> None:
    """Run the tiles as flow runs of ``deployment``, at most ``in_flight`` at once.

    Each run's idempotency key is ``run_key`` (default: this flow run's id)
    and the tile id, so a retried survey run does not start a tile twice.
    Raises RuntimeError naming the deployment when it does not exist.
    """
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment
    from prefect.exceptions import ObjectNotFound

    logger = get_run_logger()
    ctx = get_run_context()
    parent = run_key or str(getattr(getattr(ctx, "flow_run", None), "id", "local"))
    pending = list(reversed(positions))
    running: dict[Any, str] = {}
    with get_client(sync_client=True) as client:
        try:
            client.read_deployment_by_name(deployment)
        except ObjectNotFound as exc:
            raise RuntimeError(
                f"tile deployment {deployment!r} not found on the Prefect server "
                f"(deploy it with `prefect deploy --all`)"
            ) from exc
        while pending or running:
            while pending and len(running) < in_flight:
                p = pending.pop()
                run = run_deployment(
                    name=deployment,
                    parameters={
                        "out": out,
                        "ra": p.ra,
                        "dec": p.dec,
                        "config": cfg.model_dump(mode="json"),
                        "dry_run": dry_run,
                    },
                    timeout=0,
                    idempotency_key=f"{parent}-{p.tile_id}",
                    flow_run_name=f"tile-{p.tile_id}",
                )
                if not isinstance(run, FlowRun):  # called synchronously; Prefect types it as maybe a coroutine
                    raise TypeError(f"run_deployment returned {type(run).__name__}, not a FlowRun")
                running[run.id] = p.tile_id
            finished = []
            for run_id, tid in running.items():
                state = client.read_flow_run(run_id).state
                if state is not None and state.is_final():
                    if not state.is_completed():
                        logger.warning("tile %s: flow run %s ended %s", tid, run_id, state.type.value)
                    finished.append(run_id)
                    on_done(tid)
            for run_id in finished:
                del running[run_id]
            if not finished:
                time.sleep(poll_s)

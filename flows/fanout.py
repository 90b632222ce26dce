"""How a survey runs its tiles: in this process, or as flow runs of the tile deployment.

Both keep a bounded window of tiles in flight (never more futures or flow
runs held than that, however many tiles the survey has) and call
``on_done(tile_id)`` as each tile finishes, so the survey can report
progress.

``local``
    Each tile is the tile flow run as a subflow in a thread of the survey's
    process (SExtractor and PSFEx are separate processes, so two threads
    keep two cores busy).  With ``survey.workers`` above one and
    ``survey.tile_processes`` set the subflows run in worker
    processes of the batch instead (:class:`TileProcessPool`), so the Python
    work of two tiles (and Prefect's bookkeeping of each) runs on two cores
    rather than taking turns on one interpreter lock.
``deployment``
    Each tile is a flow run of the tile deployment (``vasco-tile/tile`` by
    default), picked up by whichever worker of its pool is free: tiles
    spread over the machines of a work pool.  Runs are created with an
    idempotency key (survey run id + tile id), so a retried survey run does
    not start a tile twice.
"""

from __future__ import annotations

import concurrent.futures
import functools
import os
import queue
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from typing import Any

from prefect import get_run_logger, task
from prefect.client.schemas.objects import FlowRun
from prefect.context import FlowRunContext, get_run_context
from prefect.futures import PrefectFuture
from prefect.settings import PREFECT_API_URL, PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
from prefect.task_runners import ProcessPoolTaskRunner

from flows.tile import tile_flow
from vasco.config import VascoConfig
from vasco.sky.sampling import TilePosition

__all__ = [
    "TileProcessPool",
    "run_local",
    "run_deployments",
    "register_tile_callback",
    "tile_callback",
    "forget_tile_callback",
]

#: The survey's ``on_done(tile_id)`` callbacks, by key.  A batch subflow is given the key, not the
#: callable: a process-pool task runner pickles the flow run's parameters (and the flow's function,
#: with the globals it uses) for its workers, and the callback holds the progress bar's lock.
_TILE_CALLBACKS: dict[str, Callable[[str], None]] = {}


def register_tile_callback(key: str, on_done: Callable[[str], None]) -> None:
    """Register the callback a batch subflow given ``key`` calls as each tile finishes."""
    _TILE_CALLBACKS[key] = on_done


def tile_callback(key: str) -> Callable[[str], None]:
    """The callback registered under ``key`` (KeyError when there is none)."""
    return _TILE_CALLBACKS[key]


def forget_tile_callback(key: str) -> None:
    """Drop the callback registered under ``key`` (nothing when there is none)."""
    _TILE_CALLBACKS.pop(key, None)


class TileProcessPool(ProcessPoolTaskRunner):
    """Prefect's process-pool task runner whose workers set up their run context once.

    Prefect's own runner rebuilds the run context in the worker for every
    task it is given (its settings model, a new API client with its TLS
    context, a copy of the flow's task runner): about 0.2 s of CPU each time,
    most of a dry-run tile.  Here a worker process builds it for the first
    task of a flow run and keeps it (with one API client) for the next ones
    of that flow run; the tasks, their task runs, the tile subflows and their
    events are Prefect's as before (events and logs go through the parent
    process, as with Prefect's runner).
    """

    def _resolve_futures_and_submit(  # the same call as Prefect's, with a different worker function
        self,
        task: Any,
        task_run_id: Any,
        parameters: dict[str, Any],
        wait_for: Any,
        dependencies: Any,
        context: dict[str, Any],
        env: dict[str, str],
    ) -> concurrent.futures.Future[bytes]:
        from prefect.futures import wait
        from prefect.utilities.callables import cloudpickle_wrapped_call
        from prefect.utilities.engine import resolve_inputs_sync

        states = None
        if wait_for:
            futures = list(wait_for)
            wait(futures)
            states = [f.state for f in futures]
        call = cloudpickle_wrapped_call(
            _run_in_warm_worker,
            env=env,
            context=context,
            task=task,
            task_run_id=task_run_id,
            parameters=resolve_inputs_sync(parameters, return_data=True, max_depth=-1),
            wait_for=states,
            return_type="state",
            dependencies=dependencies,
        )
        if self._executor is None:
            raise RuntimeError("tile process pool is not started")
        return self._executor.submit(call)


#: In a worker process of :class:`TileProcessPool`: the flow run whose context is set up, and its exit stack.
_WARM: dict[str, Any] = {"flow_run": None, "stack": None}


def _run_in_warm_worker(*, env: dict[str, str], context: dict[str, Any], **kwargs: Any) -> Any:
    """Run one task in a worker process, in the run context kept from the previous task of its flow run."""
    from prefect.context import SyncClientContext, hydrated_context
    from prefect.engine import handle_engine_signals
    from prefect.events.worker import EventsWorker
    from prefect.task_engine import run_task_sync

    flow_run = (context.get("flow_run_context") or {}).get("flow_run")
    key = str(getattr(flow_run, "id", None))
    if _WARM["flow_run"] != key:
        if _WARM["stack"] is not None:
            _WARM["stack"].close()
        os.environ.update(env)
        stack = ExitStack()
        stack.enter_context(hydrated_context(context))
        stack.enter_context(SyncClientContext.get_or_create())  # one API client for the tasks that follow
        _WARM.update(flow_run=key, stack=stack)
    with handle_engine_signals(kwargs.get("task_run_id")):
        result = run_task_sync(**kwargs)
    # The task's events reach the parent process before its future resolves.
    EventsWorker.instance().wait_until_empty()
    return result


@task(name="run-tile")
def run_tile_subflow(ra: float, dec: float, out: str, cfg: VascoConfig, dry_run: bool = False) -> dict[str, Any]:
    """Run the tile flow as a subflow (one thread, or worker process, of the batch's pool).

    The subflow sends no heartbeats of its own: :func:`run_local` submits this
    task with heartbeats off (the survey's flow run already sends them;
    Prefect's heartbeat thread otherwise costs each subflow up to a second on
    exit, which is most of a dry-run tile).
    """
    return tile_flow(out=out, ra=ra, dec=dec, config=cfg, dry_run=dry_run)


def _put_tile_id(finished: queue.SimpleQueue[str], tile_id: str, _future: object) -> None:
    finished.put(tile_id)


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
    finished: queue.SimpleQueue[str] = queue.SimpleQueue()
    running: dict[str, PrefectFuture[Any]] = {}
    # Settings are read once per submit (the runner copies the context), not once per tile: a
    # temporary_settings per tile rebuilt Prefect's settings model each time (~70 ms of CPU a tile).
    updates: dict[Any, Any] = {PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}
    ctx = FlowRunContext.get()
    if ctx is not None and ctx.client is not None:
        # The server this run talks to, named: a worker process of a TileProcessPool would
        # otherwise start a temporary server of its own when the run has one.
        updates[PREFECT_API_URL] = str(ctx.client.api_url).rstrip("/")
    with temporary_settings(updates=updates):
        while pending or running:
            while pending and len(running) < in_flight:
                p = pending.pop()
                fut = run_tile_subflow.submit(p.ra, p.dec, out, cfg, dry_run)
                running[p.tile_id] = fut
                fut.add_done_callback(functools.partial(_put_tile_id, finished, p.tile_id))
            tid = finished.get()
            try:
                running.pop(tid).wait()
            except Exception as exc:  # noqa: BLE001 - one failing tile never stops a survey
                # E.g. a worker process's state that does not unpickle here (an httpx error does not).
                get_run_logger().warning("tile %s: its task ended with %s: %s", tid, type(exc).__name__, exc)
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

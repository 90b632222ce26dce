"""Local fan-out: tile subflows in worker processes give what threads give (dry run: no pixels)."""

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterKey,
    FlowFilter,
    FlowFilterName,
    FlowRunFilter,
    FlowRunFilterParentFlowRunId,
)

from vasco.config import VascoConfig
from vasco.io import read_json

#: tile.json fields that say who ran the tile and when, not what it is.
_RUN_FIELDS = {"run_by", "timings", "created_utc", "finished_utc", "provenance"}


def _survey(tmp_path, name, processes):
    from flows.survey import survey_flow

    cfg = VascoConfig.model_validate({"survey": {"tiles_per_subflow": 2, "tile_processes": processes}})
    cfg_file = tmp_path / f"{name}.json"
    cfg.write(cfg_file)
    out = tmp_path / name
    summary = survey_flow(out=str(out), tiles=3, seed=7, workers=2, dry_run=True, config_file=str(cfg_file))
    records = {p.parent.name: read_json(p) for p in sorted((out / "tiles").glob("*/tile.json"))}
    return summary, records


def test_process_fanout_matches_threads_and_keeps_subflows(tmp_path, harness):
    s_threads, r_threads = _survey(tmp_path, "threads", False)
    s_procs, r_procs = _survey(tmp_path, "procs", True)
    assert s_procs["tiles"] == s_threads["tiles"] and s_procs["tiles"]["processed"] == 3
    assert sorted(r_procs) == sorted(r_threads) and len(r_procs) == 3
    for tid, rec in r_procs.items():
        assert {k: v for k, v in rec.items() if k not in _RUN_FIELDS} == {
            k: v for k, v in r_threads[tid].items() if k not in _RUN_FIELDS
        }
    with get_client(sync_client=True) as client:
        surveys = client.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=["vasco-survey"])))
        (procs_run,) = [r for r in surveys if r.parameters.get("out", "").endswith("procs")]
        batches = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[procs_run.id]))
        )
        assert sorted(b.name for b in batches) == ["tiles-1-2-of-3", "tiles-3-3-of-3"]
        tiles = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[b.id for b in batches]))
        )
        # Each tile is a completed subflow of its batch, run from the batch's 'run-tile' task.
        assert len(tiles) == 3 and all(t.state.is_completed() for t in tiles)
        for t in tiles:
            parent = client.read_task_run(t.parent_task_run_id)
            assert parent.flow_run_id in {b.id for b in batches}
        key = ArtifactFilterKey(any_=["vasco-survey-progress"])
        arts = client.read_artifacts(artifact_filter=ArtifactFilter(key=key))
        assert arts and all(float(a.data) == 100.0 for a in arts)


def test_tile_callbacks_are_found_by_key_and_forgotten():
    from flows.fanout import forget_tile_callback, register_tile_callback, tile_callback

    seen = []
    register_tile_callback("k1", seen.append)
    tile_callback("k1")("t1")
    assert seen == ["t1"]
    forget_tile_callback("k1")
    try:
        tile_callback("k1")
    except KeyError:
        pass
    else:
        raise AssertionError("a forgotten callback is still found")


class _DoneFuture:
    """A finished tile future."""

    def add_done_callback(self, fn):
        fn(self)

    def wait(self):
        return None


class _BrokenFuture(_DoneFuture):
    """A tile future whose outcome cannot be read (as a worker's state that does not unpickle)."""

    def wait(self):
        raise TypeError("state does not unpickle")


class _HalfBrokenTask:
    """Stands in for the run-tile task: every other tile's future is unreadable."""

    def __init__(self):
        self.submitted = []

    def submit(self, ra, dec, out, cfg, dry_run):
        self.submitted.append((ra, dec))
        return _BrokenFuture() if len(self.submitted) % 2 else _DoneFuture()


def test_an_unreadable_tile_outcome_does_not_stop_the_batch(monkeypatch, harness):
    from prefect import flow

    import flows.fanout as fanout
    from vasco.sky.sampling import sample_positions

    fake = _HalfBrokenTask()
    monkeypatch.setattr(fanout, "run_tile_subflow", fake)
    positions = sample_positions(5, 3)
    done = []

    @flow
    def batch():
        fanout.run_local(positions, "/nonexistent", VascoConfig(), 2, done.append)

    batch()
    assert sorted(done) == sorted(p.tile_id for p in positions) and len(fake.submitted) == 5

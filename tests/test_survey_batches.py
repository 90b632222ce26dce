"""The survey runs its tiles a batch of subflows at a time (dry run: no pixels)."""

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey, FlowFilter, FlowFilterName

from vasco.config import VascoConfig
from vasco.io import read_json


def _runs_of(client, flow_name):
    return client.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=[flow_name])))


def test_tiles_run_in_batch_subflows(tmp_path, harness):
    from flows.survey import survey_flow

    cfg = VascoConfig.model_validate({"survey": {"tiles_per_subflow": 2}})
    cfg_file = tmp_path / "cfg.json"
    cfg.write(cfg_file)
    out = tmp_path / "dry"
    summary = survey_flow(out=str(out), tiles=5, seed=4, workers=2, dry_run=True, config_file=str(cfg_file))
    assert summary["tiles"]["processed"] == 5
    assert read_json(out / "config.json")["survey"]["tiles_per_subflow"] == 2
    with get_client(sync_client=True) as client:
        (survey_run,) = _runs_of(client, "vasco-survey")
        batches = _runs_of(client, "vasco-survey-batch")
        tiles = _runs_of(client, "vasco-tile")
        # 5 tiles, 2 per batch: 3 batch subflows, each a child of the survey run.
        assert sorted(b.name for b in batches) == ["tiles-1-2-of-5", "tiles-3-4-of-5", "tiles-5-5-of-5"]
        assert all(b.state.is_completed() for b in batches) and len(tiles) == 5
        parents = {client.read_task_run(b.parent_task_run_id).flow_run_id for b in batches}
        assert parents == {survey_run.id}
        arts = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["vasco-survey-funnel", "vasco-survey-progress"]))
        )
        by_key = {a.key: a for a in arts}
        assert float(by_key["vasco-survey-progress"].data) == 100.0
        funnel = by_key["vasco-survey-funnel"].data
        assert "## Funnel per tile" in funnel and funnel.count("| ok |") == 5

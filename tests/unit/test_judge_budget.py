"""A JudgeServer's budget shared by every run at every moment: the pure grant arithmetic, the Job a
grant shapes, and the worker that keeps to it."""

from __future__ import annotations

from proctor.reconcile.budget import (
    CONCURRENCY_ENV,
    GRANT_ANNOTATION,
    Grant,
    grant,
    grant_of,
    held,
    runs_budget,
    with_grant,
)


def judge_job(name: str, granted: Grant | None, finished: bool = False) -> dict:
    job = {
        "metadata": {"name": name, "annotations": {}},
        "spec": {"parallelism": 4, "completions": 4, "template": {"spec": {"containers": [{"env": []}]}}},
    }
    if granted is not None:
        job = with_grant(job, granted)
    if finished:
        job["status"] = {"conditions": [{"type": "Complete", "status": "True"}]}
    return job


def test_a_run_planned_alone_cannot_keep_the_budget_the_next_run_needs():
    budget = runs_budget(max_concurrency=8, ready_replicas=1)
    assert budget == 7  # one request stays free for the operator's own checks of the judge
    first = grant("qwen", budget, in_use=0, per_worker=4, pods=2)
    assert (first.per_worker, first.pods, first.total) == (3, 2, 6)
    in_use = held("qwen", [judge_job("a-judge", first)])
    second = grant("qwen", budget, in_use, per_worker=4, pods=2)
    assert in_use == 6 and (second.pods, second.total) == (1, 1)  # what is free, on fewer pods
    third = grant("qwen", budget, held("qwen", [judge_job("a", first), judge_job("b", second)]), 4, 2)
    assert third is None  # nothing free: the Job waits
    # a finished Job's grant is free again; another server's grants never count
    assert held("qwen", [judge_job("a", first, finished=True), judge_job("b", second)]) == 1
    assert held("other", [judge_job("a", first)]) == 0


def test_grants_made_but_not_yet_in_the_index_count_once():
    made = Grant("qwen", 2, 2)
    assert held("qwen", [], {"a-judge": made}) == 4
    assert held("qwen", [judge_job("a-judge", made)], {"a-judge": made}) == 4
    assert held("qwen", [judge_job("a-judge", made, finished=True)], {"a-judge": made}) == 0


def test_the_job_carries_its_grant_and_never_runs_more_pods_than_granted():
    job = judge_job("a-judge", Grant("qwen", 3, 2))
    assert grant_of(job) == Grant("qwen", 3, 2)
    assert GRANT_ANNOTATION in job["metadata"]["annotations"]
    assert job["spec"]["parallelism"] == 2
    assert {"name": CONCURRENCY_ENV, "value": "3"} in job["spec"]["template"]["spec"]["containers"][0]["env"]
    assert grant_of({"metadata": {"annotations": {GRANT_ANNOTATION: "{bad"}}}) is None


def test_a_granted_jobs_parallelism_is_never_patched_above_its_grant():
    from proctor.plan import plan_run
    from proctor.reconcile.evalrun import desired_children
    from proctor_jobs.benchmarks import get_benchmark
    from tests.unit.test_k8s_builders import ctx

    spec = {
        "benchmark": {"format": "artifactsbench", "source": {"inline": [{"index": 0}]}},
        "judge": {"serverRef": {"name": "qwen"}},
        "parallelism": 4,
    }
    items = [{"id": f"t{i}", "index": i, "question": "q", "checklist": [], "answer": "a"} for i in range(40)]
    sharded = {**spec, "sharding": {"shardSize": 5}}
    plan, _ = plan_run(get_benchmark("artifactsbench"), sharded, items, "runs/x")
    context = ctx(spec=spec)
    create, _ = desired_children(plan, context, [], {})
    judge = next(j for j in create if j["metadata"]["labels"]["proctor.dev/stage"] == "judge")
    observed = {j["metadata"]["name"]: j for j in create}
    observed[judge["metadata"]["name"]] = with_grant(judge, Grant("qwen", 1, 2))
    _, patches = desired_children(plan, context, [], observed)
    assert judge["metadata"]["name"] not in [name for name, _ in patches]  # stays at its 2 granted pods


def test_the_worker_keeps_to_its_grant(monkeypatch):
    from proctor_jobs.judge.artifactsbench import ArtifactsBenchJudge
    from proctor_jobs.judge.base import GRANTED_CONCURRENCY_ENV

    assert GRANTED_CONCURRENCY_ENV == CONCURRENCY_ENV
    config = {"benchmark": "artifactsbench", "configured": True, "url": "http://j/v1", "concurrency": 8}
    monkeypatch.setenv(CONCURRENCY_ENV, "3")
    assert ArtifactsBenchJudge(config).config.concurrency == 3
    monkeypatch.setenv(CONCURRENCY_ENV, "30")  # a grant never raises what the run asked for
    assert ArtifactsBenchJudge(config).config.concurrency == 8

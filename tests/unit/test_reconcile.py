"""Reconciliation decisions, from observed state to desired state and status, without a cluster."""

from __future__ import annotations

from proctor.plan import Plan, StagePlan
from proctor.reconcile.conditions import Blocker, set_condition
from proctor.reconcile.evalrun import (
    desired_children,
    environment_failure,
    input_blockers,
    job_state,
    judge_concurrency,
    progress_text,
    run_phase,
    spec_in_force,
    stage_progress,
)
from proctor.reconcile.judgeserver import (
    CheckResult,
    crashed_containers,
    judge_phase,
    log_excerpt,
    pod_problems,
    with_crash_log,
)
from tests.unit.test_k8s_builders import ctx


def plan(*stages: StagePlan) -> Plan:
    return Plan(
        run_prefix="runs/team/my-run/uid-1",
        benchmark="humanevalv",
        shard_size=10,
        total_items=25,
        stages=list(stages),
    )


def stage(name: str, shards: int = 3, skip: str | None = None, per_item: bool = False) -> StagePlan:
    return StagePlan(name, "oracle", shards, 25, None, {}, "h", per_item_jobs=per_item, skip_reason=skip)


SPEC = {
    "benchmark": {"artifactRef": {"name": "tasks"}},
    "answers": {"artifactRef": {"name": "answers"}},
    "judge": {"serverRef": {"name": "judge"}},
}


def test_inputs_block_with_named_reasons():
    ready = {"status": {"phase": "Ready", "sha256": "x"}}
    assert (
        input_blockers(
            SPEC, {"tasks": ready, "answers": ready}, {"judge": {"status": {"phase": "Ready"}}}, True
        )
        == []
    )
    blockers = input_blockers(
        SPEC, {"tasks": {"status": {"phase": "Invalid", "message": "record 3: field 'qid'"}}}, {}, True
    )
    reasons = [b.reason for b in blockers]
    assert reasons == ["ArtifactInvalid", "ArtifactNotFound", "JudgeNotFound"]
    assert "record 3: field 'qid'" in blockers[0].message
    loading = input_blockers(
        SPEC,
        {"tasks": ready, "answers": ready},
        {"judge": {"status": {"phase": "Loading", "message": "pulling weights"}}},
        True,
    )
    assert [(b.reason, "pulling weights" in b.message) for b in loading] == [("JudgeNotReady", True)]
    assert input_blockers(SPEC, {"tasks": ready, "answers": ready}, {}, needs_judge=False) == []


def test_desired_children_creates_missing_jobs_and_nothing_else():
    p = plan(stage("render", 3), stage("judge", 3, skip="no judge"))
    create, _ = desired_children(p, ctx(), [], {})
    assert [j["metadata"]["name"] for j in create] == ["my-run-render"]
    observed = {
        "my-run-render": {"spec": {"suspend": False, "parallelism": 3, "completions": 3}, "status": {}}
    }
    assert desired_children(p, ctx(), [], observed) == ([], [])


def test_desired_children_suspends_resumes_and_rescales():
    p = plan(stage("oracle", 3))
    running = {"my-run-oracle": {"spec": {"suspend": False, "parallelism": 3}, "status": {}}}
    assert desired_children(p, ctx(suspend=True), [], running)[1] == [
        ("my-run-oracle", {"spec": {"suspend": True}})
    ]
    suspended = {"my-run-oracle": {"spec": {"suspend": True, "parallelism": 3}, "status": {}}}
    assert desired_children(p, ctx(), [], suspended)[1] == [("my-run-oracle", {"spec": {"suspend": False}})]
    # With a Kueue queue the operator never unsuspends: Kueue admits the Job.
    assert desired_children(p, ctx(queueName="q"), [], suspended)[1] == []
    assert desired_children(p, ctx(parallelism=1), [], running)[1] == [
        ("my-run-oracle", {"spec": {"parallelism": 1}})
    ]
    done = {
        "my-run-oracle": {
            "spec": {"suspend": False, "parallelism": 3},
            "status": {"conditions": [{"type": "Complete", "status": "True"}]},
        }
    }
    assert desired_children(p, ctx(suspend=True), [], done)[1] == []


def test_per_item_stages_get_one_job_per_item():
    p = plan(stage("oracle", 2, per_item=True))
    items = [{"id": "a", "job": {"image": "x"}}, {"id": "b", "job": {}}]
    create, _ = desired_children(p, ctx(), items, {})
    assert [j["metadata"]["name"] for j in create] == ["my-run-oracle-0", "my-run-oracle-1"]


def names(jobs: list[dict]) -> list[str]:
    return [j["metadata"]["name"] for j in jobs]


DONE = {"status": {"conditions": [{"type": "Complete", "status": "True"}]}}
FAILED = {"status": {"conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}]}}
RUNNING = {"spec": {"suspend": False, "parallelism": 1, "completions": 1}, "status": {}}


def test_per_item_jobs_are_created_no_more_than_parallelism_unfinished_at_a_time():
    p = plan(stage("oracle", 5, per_item=True))
    items = [{"id": str(i), "job": {}} for i in range(5)]
    create, _ = desired_children(p, ctx(parallelism=2), items, {})
    assert names(create) == ["my-run-oracle-0", "my-run-oracle-1"]
    # Both still running: nothing more.
    two = {"my-run-oracle-0": RUNNING, "my-run-oracle-1": RUNNING}
    assert desired_children(p, ctx(parallelism=2), items, two)[0] == []
    # One finished (either way): one more, the next in order.
    for ended in (DONE, FAILED):
        assert names(
            desired_children(p, ctx(parallelism=2), items, {**two, "my-run-oracle-0": ended})[0]
        ) == ["my-run-oracle-2"]
    # A Job running out of order (created before an operator restart, say) counts too.
    later = {"my-run-oracle-0": DONE, "my-run-oracle-3": RUNNING}
    assert names(desired_children(p, ctx(parallelism=2), items, later)[0]) == ["my-run-oracle-1"]
    # parallelism raised on a running run: the new room is used at once.
    assert names(desired_children(p, ctx(parallelism=4), items, two)[0]) == [
        "my-run-oracle-2",
        "my-run-oracle-3",
    ]
    everything_done = {f"my-run-oracle-{i}": DONE for i in range(5)}
    assert desired_children(p, ctx(parallelism=2), items, everything_done) == ([], [])


def test_an_indexed_stage_is_not_gated_by_a_per_item_stages_jobs():
    p = plan(stage("generate", 1), stage("oracle", 3, per_item=True))
    items = [{"id": str(i), "job": {}} for i in range(3)]
    busy = {f"my-run-oracle-{i}": RUNNING for i in range(1)}
    assert names(desired_children(p, ctx(parallelism=1), items, busy)[0]) == ["my-run-generate"]


def test_a_spec_edit_the_crd_let_through_leaves_a_planned_run_as_planned():
    """A CRD installed without the immutability rule (Helm never upgrades CRDs) lets an edit of a
    planned run through; the run keeps the spec it was planned with but for suspend and parallelism."""
    planned = {**SPEC, "parallelism": 4, "images": {"default": "worker:1"}}
    edited = {**planned, "images": {"default": "evil:2"}, "parallelism": 8, "suspend": True}
    spec, refused = spec_in_force(planned, edited)
    assert spec == {**planned, "parallelism": 8, "suspend": True}
    assert [r.split(" ")[0] for r in refused] == ["spec.images"]
    assert spec_in_force(planned, {**planned, "parallelism": 1}) == ({**planned, "parallelism": 1}, [])


def test_job_state():
    assert job_state({"status": {"conditions": [{"type": "Complete", "status": "True"}]}}) == ("Complete", "")
    failed = {
        "status": {
            "conditions": [
                {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded", "message": "too many"}
            ]
        }
    }
    assert job_state(failed) == ("Failed", "BackoffLimitExceeded: too many")
    assert job_state({"spec": {"suspend": True}}) == ("Suspended", "")
    assert job_state({}) == ("Running", "")


def test_stage_progress_and_text():
    p = plan(stage("oracle", 3), stage("judge", 3, skip="no judge"))
    progress = {"oracle": [{"ok": 8, "failed": 1, "skipped": 1}, {"ok": 5}]}
    stages = stage_progress(p, progress, {"oracle": {0}})
    assert (stages[0].succeeded, stages[0].failed, stages[0].skipped, stages[0].shards_done) == (13, 1, 1, 1)
    assert (stages[1].skipped, stages[1].shards) == (25, 0)
    assert progress_text(stages) == "15/25"
    # items the node could not evaluate (env_error) count as done-but-failed, so progress completes
    stages = stage_progress(p, {"oracle": [{"ok": 20, "env_error": 5}]}, {"oracle": {0, 1, 2}})
    assert (stages[0].succeeded, stages[0].failed) == (20, 5) and progress_text(stages) == "25/25"


def test_run_phase_precedence():
    assert run_phase(False, [], True, {}, True)[0] == "Succeeded"
    assert run_phase(False, [], True, {"j": ("Failed", "DeadlineExceeded")}, False)[:2] == (
        "Failed",
        "JobFailed",
    )
    assert run_phase(True, [], True, {}, False)[0] == "Suspended"
    assert run_phase(False, [Blocker("JudgeNotFound", "m")], False, {}, False)[:2] == (
        "Pending",
        "JudgeNotFound",
    )
    assert run_phase(False, [], False, {}, False)[:2] == ("Pending", "Planning")
    assert run_phase(False, [], True, {"j": ("Running", "")}, False)[0] == "Running"


def test_a_run_whose_jobs_wait_for_kueue_is_queued_not_running():
    held = {"my-run-render": ("Suspended", ""), "my-run-judge": ("Suspended", "")}
    phase, reason, message = run_phase(False, [], True, held, False, queue="team-a")
    assert (phase, reason) == ("Queued", "Queued") and "Kueue" in message and "team-a" in message
    # Created suspended, not yet seen by the watch: queued too (no Running -> Queued flap).
    assert run_phase(False, [], True, {}, False, queue="team-a")[0] == "Queued"
    # One stage done, the next waiting for admission: nothing runs, still queued.
    assert (
        run_phase(False, [], True, {**held, "my-run-render": ("Complete", "")}, False, queue="q")[0]
        == "Queued"
    )
    # Kueue admitted one (unsuspended it): the run is running.
    assert (
        run_phase(False, [], True, {**held, "my-run-judge": ("Running", "")}, False, queue="q")[0]
        == "Running"
    )
    # Without a queue a suspended Job is not "queued", and spec.suspend wins over the queue.
    assert run_phase(False, [], True, held, False)[0] == "Running"
    assert run_phase(True, [], True, held, False, queue="q")[0] == "Suspended"
    # A failed Job or a finished run is not hidden behind the queue.
    assert (
        run_phase(False, [], True, {**held, "x": ("Failed", "DeadlineExceeded")}, False, queue="q")[0]
        == "Failed"
    )
    assert run_phase(False, [], True, held, True, queue="q")[0] == "Succeeded"
    assert run_phase(False, [], False, {}, False, queue="q")[0] == "Pending"


def test_a_run_whose_node_could_not_evaluate_items_fails_and_names_why():
    """A worker pod below the run's minIsolation records every item `env_error` with the reason; the
    run must not end Succeeded on the items that were left (its scores would cover none of them)."""
    p = plan(stage("oracle", 2))
    reason = "isolation_below_minimum: the sandbox could only set up tier 'none', the run requires 'userns'"
    progress = {"oracle": [{"ok": 0, "env_error": 12, "env_reason": reason}, {"ok": 3}]}
    stages = stage_progress(p, progress, {"oracle": {0, 1}})
    why = environment_failure(stages)
    assert why and "12 item(s)" in why and reason in why and "stage oracle" in why
    phase, condition, message = run_phase(False, [], True, {"j": ("Complete", "")}, True, why)
    assert (phase, condition) == ("Failed", "EnvironmentFailure") and reason in message
    # nothing of the kind: the same finished run succeeds
    clean = stage_progress(p, {"oracle": [{"ok": 12}, {"ok": 3}]}, {"oracle": {0, 1}})
    assert environment_failure(clean) is None
    assert run_phase(False, [], True, {}, True, environment_failure(clean))[0] == "Succeeded"


def test_judge_concurrency_splits_the_budget():
    assert judge_concurrency(64, 2, runs_sharing=2, parallelism=4) == 16
    assert judge_concurrency(4, 1, runs_sharing=10, parallelism=10) == 1


def test_pod_problems_are_the_reasons_pods_give():
    pods = [
        {
            "metadata": {"name": "a"},
            "status": {
                "conditions": [
                    {
                        "type": "PodScheduled",
                        "status": "False",
                        "reason": "Unschedulable",
                        "message": "0/1 nodes have GPUs",
                    }
                ]
            },
        },
        {
            "metadata": {"name": "b"},
            "status": {
                "containerStatuses": [
                    {
                        "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off"}},
                        "lastState": {"terminated": {"reason": "OOMKilled"}},
                    }
                ]
            },
        },
        {
            "metadata": {"name": "c"},
            "status": {"containerStatuses": [{"state": {"waiting": {"reason": "ImagePullBackOff"}}}]},
        },
    ]
    assert [p.reason for p in pod_problems(pods)] == [
        "OOMKilled",
        "CrashLoopBackOff",
        "ImagePullBackOff",
        "Unschedulable",
    ]


VLLM_BAD_FLAG_LOG = (
    "INFO 12-03 21:00:01 [__init__.py:216] Automatically detected platform cuda.\n"
    "\x1b[1;36m(APIServer pid=1)\x1b[0;0m usage: vllm serve [model_tag] [options]\n"
    "\n"
    "vllm: error: unrecognized arguments: --swap-space-typo 50\n"
)


def test_a_crash_looping_judges_problem_carries_the_end_of_its_log():
    pods = [
        {
            "metadata": {"name": "judge-0"},
            "status": {
                "containerStatuses": [
                    {
                        "name": "vllm",
                        "restartCount": 3,
                        "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s"}},
                        "lastState": {"terminated": {"reason": "Error", "exitCode": 2}},
                    }
                ]
            },
        },
        {"metadata": {"name": "judge-1"}, "status": {"containerStatuses": [{"name": "vllm", "state": {}}]}},
    ]
    assert crashed_containers(pods) == [("judge-0", "vllm", 3)]
    excerpt = log_excerpt(VLLM_BAD_FLAG_LOG)
    # Colour codes and blank lines gone; vLLM's own error last.
    assert excerpt.splitlines()[-1] == "vllm: error: unrecognized arguments: --swap-space-typo 50"
    assert "\x1b" not in excerpt and "\n\n" not in excerpt
    [problem] = with_crash_log(pod_problems(pods), "judge-0", excerpt)
    assert problem.reason == "CrashLoopBackOff"
    assert problem.message.startswith("pod judge-0: back-off 40s; last log lines of pod judge-0:\n")
    assert problem.message.endswith("unrecognized arguments: --swap-space-typo 50")
    # Phase and message as the condition and the Event carry them.
    phase, reason, message = judge_phase("vllm", 1, 0, [problem], None, False)
    assert (phase, reason) == ("Failed", "CrashLoopBackOff") and "--swap-space-typo" in message
    # Nothing read: the problem is left as the pods said it.
    assert with_crash_log(pod_problems(pods), "judge-0", "") == pod_problems(pods)


def test_a_log_excerpt_is_bounded_and_keeps_the_end():
    log = "".join(f"line {i}\n" for i in range(100))
    assert log_excerpt(log, lines=3) == "line 97\nline 98\nline 99"
    long = log_excerpt("x" * 5000 + "\nthe error", lines=20, max_chars=100)
    assert len(long) == 100 and long.startswith("…") and long.endswith("the error")
    assert log_excerpt("") == "" and log_excerpt("\r\n  \r\n") == ""


def test_a_crash_log_is_read_once_per_crash_and_a_failed_read_is_no_log():
    import asyncio

    from proctor.controllers import judgeserver as controller

    calls = []

    class FakeCluster:
        async def pod_log(self, namespace, name, container, *, previous, tail_lines, limit_bytes):
            calls.append((namespace, name, container, previous, tail_lines, limit_bytes))
            if name == "gone":
                raise RuntimeError("previous terminated container not found")
            return VLLM_BAD_FLAG_LOG

    class FakeRuntime:
        cluster = FakeCluster()

    controller._CRASH_LOGS.clear()
    first = asyncio.run(controller.crash_log(FakeRuntime(), "team", "judge-0", "vllm", 3))
    again = asyncio.run(controller.crash_log(FakeRuntime(), "team", "judge-0", "vllm", 3))
    assert first == again and first.endswith("--swap-space-typo 50")
    assert calls == [("team", "judge-0", "vllm", True, 20, 16384)]  # the previous run, a bounded tail
    asyncio.run(controller.crash_log(FakeRuntime(), "team", "judge-0", "vllm", 4))  # a new crash: read again
    assert len(calls) == 2
    assert asyncio.run(controller.crash_log(FakeRuntime(), "team", "gone", "vllm", 1)) == ""
    controller._CRASH_LOGS.clear()


def test_judge_phase():
    ok, bad = CheckResult(True, "served"), CheckResult(False, "connection refused")
    assert judge_phase("vllm", 1, 0, [], None, False)[0] == "Loading"
    assert judge_phase("vllm", 1, 0, [Blocker("Unschedulable", "no GPU")], None, False)[:2] == (
        "Pending",
        "Unschedulable",
    )
    assert judge_phase("vllm", 1, 0, [Blocker("OOMKilled", "oom")], None, False)[:2] == (
        "Failed",
        "OOMKilled",
    )
    assert judge_phase("vllm", 1, 1, [], ok, False)[0] == "Ready"
    assert judge_phase("vllm", 2, 1, [], ok, True)[:2] == ("Degraded", "ReplicasNotReady")
    assert judge_phase("vllm", 1, 1, [], bad, True)[0] == "Degraded"
    assert judge_phase("external", None, 1, [], bad, False)[0] == "Failed"
    assert judge_phase("external", None, 1, [], None, False)[0] == "Pending"


def test_conditions_keep_transition_time_until_status_flips():
    first = set_condition([], "Ready", False, "Waiting", "m1")
    again = set_condition(first, "Ready", False, "Waiting", "m2")
    assert again[0]["lastTransitionTime"] == first[0]["lastTransitionTime"] and again[0]["message"] == "m2"
    flipped = set_condition(first, "Ready", True, "Done")
    assert flipped[0]["status"] == "True"


def test_many_active_runs_share_one_rate_of_progress_patches():
    from proctor.reconcile.evalrun import progress_interval

    assert progress_interval(10, active_runs=1, patches_per_second=1) == 10  # a few runs: the base
    assert progress_interval(10, active_runs=20, patches_per_second=1) == 20  # twenty: 1 patch/s in all
    assert progress_interval(10, active_runs=200, patches_per_second=4) == 50


def test_status_is_sent_at_once_for_a_phase_change_and_at_most_every_interval_for_progress_alone():
    from proctor.reconcile.evalrun import status_to_send, terminal_status

    old = {"phase": "Running", "progress": "1/10", "conditions": []}
    assert not status_to_send(old, dict(old), since_last_s=100, interval_s=10)  # unchanged: never
    moved = {**old, "progress": "2/10"}
    assert not status_to_send(old, moved, since_last_s=3, interval_s=10)
    assert status_to_send(old, moved, since_last_s=11, interval_s=10)
    # a running run's cost moves with its progress: throttled the same way, never a patch per item
    costlier = {**old, "cost": {"final": False, "stages": [], "total": {"calls": 3}}}
    assert not status_to_send(old, costlier, since_last_s=3, interval_s=10)
    assert status_to_send(old, {**moved, "phase": "Succeeded"}, since_last_s=0, interval_s=10)
    failed = terminal_status(old, "Failed", "InvalidSpec", "bad", 3)
    assert failed["phase"] == "Failed" and failed["observedGeneration"] == 3
    assert failed["conditions"][0]["reason"] == "InvalidSpec" and failed["conditions"][0]["status"] == "False"

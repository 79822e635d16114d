"""EvalRun reconciliation as pure functions: observed state in, desired state and status out.

The controller (proctor.controllers.evalrun) gathers what it observes — the run, its inputs'
readiness, the plan, the Jobs, the per-shard progress from the store — and these functions decide
what should exist and what the status says. Nothing here touches the network, so every decision is
unit-tested without a cluster.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from proctor.api.immutability import MUTABLE, forbidden_changes
from proctor.k8s.jobs import WorkerContext, build_item_job, build_stage_job
from proctor.k8s.names import (
    ITEM_INDEX_LABEL,
    STAGE_LABEL,
    dns_label,
    item_job_name,
    owner_reference,
    run_labels,
    stage_job_name,
)
from proctor.plan import Plan
from proctor.reconcile.budget import grant_of
from proctor.reconcile.conditions import Blocker, get_condition, same_conditions, set_condition
from proctor_jobs.judge.panel import PRIMARY_STAGE, JudgeEntry, judge_entries

TERMINAL = ("Succeeded", "Failed")


#: source kinds the operator never fetches itself: an ingest Job does, for an Artifact
FETCHED_SOURCES = ("s3", "http")
#: the Artifact type of each input role (human ratings are checked as strictly as a benchmark)
ROLE_TYPES = {"benchmark": "benchmark", "answers": "answers", "humanRatings": "benchmark"}


def source_artifacts(
    spec: dict[str, Any], namespace: str, name: str, uid: str
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(the spec with each S3/HTTP source given in place replaced by a reference to an Artifact, those
    Artifacts). The run owns them, so they go with it; an ingest Job fetches each, as for any Artifact,
    and the same evalrun.yaml works in the cluster and in `proctor run`."""
    spec = dict(spec)
    children = []
    for role, type_ in ROLE_TYPES.items():
        ref = spec.get(role) or {}
        source = ref.get("source") or {}
        if not any(source.get(kind) for kind in FETCHED_SOURCES):
            continue
        child = dns_label(name, role.lower(), "source")
        children.append(
            {
                "apiVersion": "proctor.dev/v1alpha1",
                "kind": "Artifact",
                "metadata": {
                    "name": child,
                    "namespace": namespace,
                    "labels": run_labels(name, uid),
                    "ownerReferences": [owner_reference("proctor.dev/v1alpha1", "EvalRun", name, uid)],
                },
                "spec": {"type": type_, "format": ref.get("format") or "jsonl", "source": source},
            }
        )
        kept = {k: v for k, v in ref.items() if k not in ("source", "format")}
        spec[role] = {**kept, "artifactRef": {"name": child}}
    return spec, children


def input_blockers(
    spec: dict[str, Any],
    artifacts: dict[str, dict[str, Any]],
    judges: dict[str, dict[str, Any]],
    needs_judge: bool,
) -> list[Blocker]:
    """Why a run cannot start yet (empty when it can). `artifacts` and `judges` map names to objects."""
    blockers = []
    for role in ("benchmark", "answers", "humanRatings"):
        ref = (spec.get(role) or {}).get("artifactRef")
        if not ref:
            continue
        artifact = artifacts.get(ref["name"])
        if artifact is None:
            blockers.append(
                Blocker("ArtifactNotFound", f"spec.{role}: Artifact {ref['name']!r} does not exist")
            )
            continue
        status = artifact.get("status") or {}
        phase = status.get("phase", "Pending")
        if phase == "Invalid":
            detail = status.get("message") or "invalid"
            blockers.append(
                Blocker("ArtifactInvalid", f"spec.{role}: Artifact {ref['name']!r} is invalid: {detail}")
            )
        elif phase != "Ready" or not status.get("sha256"):
            blockers.append(Blocker("ArtifactNotReady", f"spec.{role}: Artifact {ref['name']!r} is {phase}"))
    if needs_judge:
        for entry in judge_entries(spec):
            blocker = _judge_blocker(entry, judges)
            if blocker is not None:
                blockers.append(blocker)
    return blockers


def spec_in_force(planned: dict[str, Any], spec: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """(the spec a planned run goes on with, the edits refused). The CRD refuses edits of a planned
    run's spec but suspend and parallelism (api/immutability.py); a CRD installed without that rule
    (Helm never upgrades CRDs) lets them through, and then the run keeps the spec it was planned with
    rather than half-applying an edit to the Jobs it creates later."""
    refused = forbidden_changes({"spec": planned, "status": {"runPrefix": "planned"}}, {"spec": spec})
    if not refused:
        return spec, []
    return {**planned, **{k: spec[k] for k in MUTABLE if k in spec}}, refused


def _judge_blocker(entry: JudgeEntry, judges: dict[str, dict[str, Any]]) -> Blocker | None:
    """Why one of the run's judges cannot judge yet (its JudgeServer missing or not Ready)."""
    ref = entry.server_ref
    if not ref:
        return None
    field = (
        "spec.judge.serverRef"
        if entry.stage == PRIMARY_STAGE
        else f"additionalJudges[{entry.name}].serverRef"
    )
    judge = judges.get(ref)
    if judge is None:
        return Blocker("JudgeNotFound", f"{field}: JudgeServer {ref!r} does not exist")
    status = judge.get("status") or {}
    if status.get("phase") == "Ready":
        return None
    detail = status.get("message") or status.get("phase", "Pending")
    # The judge's own reason (e.g. CalibrationFailed), so the run says why it waits.
    why = (get_condition(status.get("conditions"), "Ready") or {}).get("reason")
    shown = f" ({why})" if why else ""
    named = "" if entry.stage == PRIMARY_STAGE else f" (judge {entry.name!r})"
    return Blocker("JudgeNotReady", f"JudgeServer {ref!r}{named} is not ready{shown}: {detail}")


def judge_statuses(panel: dict[str, Any] | None, first: str) -> list[dict[str, Any]]:
    """status.judges of a run with several judges: each one's headline and its agreement with the first."""
    if not panel:
        return []
    pairs = {(row["a"], row["b"]): row for row in panel.get("agreement") or []}
    out = []
    for name, judge in (panel.get("judges") or {}).items():
        row: dict[str, Any] = {"name": name, "stage": judge["stage"]}
        if judge.get("score") is not None:
            row["score"] = judge["score"]
        pair = pairs.get((first, name)) or pairs.get((name, first))
        if pair is not None and name != first:
            for stat, key in (("pearson", "pearson"), ("spearman", "spearman"), ("kendall_tau_b", "kendall")):
                if pair.get(stat) is not None:
                    row[key] = pair[stat]
        out.append(row)
    return out


def judge_concurrency(max_concurrency: int, ready_replicas: int, runs_sharing: int, parallelism: int) -> int:
    """Requests in flight per worker so that all runs together stay within the judge's budget."""
    budget = max(1, max_concurrency) * max(1, ready_replicas)
    workers = max(1, runs_sharing) * max(1, parallelism)
    return max(1, budget // workers)


def job_names(plan: Plan, run_name: str, items: list[dict[str, Any]] | None = None) -> list[str]:
    names = []
    for stage in plan.active_stages:
        if stage.per_item_jobs:
            names += [item_job_name(run_name, stage.name, i) for i in range(stage.shards)]
        else:
            names.append(stage_job_name(run_name, stage.name))
    return names


def desired_jobs(plan: Plan, ctx: WorkerContext, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every Job the run needs: one Indexed Job per stage, or one Job per item for heavy stages."""
    jobs = []
    for stage in plan.active_stages:
        if stage.per_item_jobs:
            jobs += [build_item_job(ctx, stage.name, stage.kind, i, item) for i, item in enumerate(items)]
        else:
            jobs.append(build_stage_job(ctx, stage.name, stage.kind, stage.shards))
    return jobs


def desired_children(plan: Plan, ctx: WorkerContext, items: list[dict[str, Any]], observed: dict[str, Any]):
    """Jobs to create and Jobs to patch (suspend / parallelism), given the observed Jobs by name.

    `parallelism` bounds the work of each stage at once: an Indexed Job runs that many pods; a stage
    with one Job per item (ArtEvalBench) has at most that many of its Jobs unfinished, and the next
    ones are created as earlier ones finish (a finished Job wakes the run)."""
    create, patch = [], []
    want_suspend = ctx.suspended
    parallelism = int(ctx.spec.get("parallelism", 4))
    wanted = desired_jobs(plan, ctx, items)
    unfinished: dict[str, int] = {}  # per-item stage -> its Jobs that exist and have not finished
    for job in wanted:
        seen = observed.get(job["metadata"]["name"])
        stage = _per_item_stage(job)
        if stage is not None and seen is not None and job_state(seen)[0] not in ("Complete", "Failed"):
            unfinished[stage] = unfinished.get(stage, 0) + 1
    for job in wanted:
        name = job["metadata"]["name"]
        seen = observed.get(name)
        if seen is None:
            stage = _per_item_stage(job)
            if stage is not None:
                if unfinished.get(stage, 0) >= parallelism:
                    continue  # created when one of the stage's Jobs finishes
                unfinished[stage] = unfinished.get(stage, 0) + 1
            create.append(job)
            continue
        if job_state(seen)[0] in ("Complete", "Failed"):
            continue
        changes: dict[str, Any] = {}
        # With a Kueue queue, Kueue owns unsuspension; Proctor only ever suspends on request.
        queued = bool(ctx.spec.get("queueName"))
        observed_suspend = bool((seen.get("spec") or {}).get("suspend"))
        if observed_suspend != want_suspend and (not queued or ctx.spec.get("suspend")):
            changes["suspend"] = want_suspend
        want_parallelism = min(parallelism, int(job["spec"]["completions"]))
        granted = grant_of(seen)
        if granted is not None:  # a judge Job's pods x requests stay within its grant
            want_parallelism = min(want_parallelism, granted.pods)
        if int((seen.get("spec") or {}).get("parallelism", want_parallelism)) != want_parallelism:
            changes["parallelism"] = want_parallelism
        if changes:
            patch.append((name, {"spec": changes}))
    return create, patch


def _per_item_stage(job: dict[str, Any]) -> str | None:
    """The stage of a one-Job-per-item Job (build_item_job labels its item index), else None."""
    labels = job["metadata"].get("labels") or {}
    return labels.get(STAGE_LABEL) if ITEM_INDEX_LABEL in labels else None


def job_state(job: dict[str, Any]) -> tuple[str, str]:
    """(state, reason) of a Job: Complete, Failed, Suspended or Running."""
    status = job.get("status") or {}
    for condition in status.get("conditions") or []:
        if condition.get("status") != "True":
            continue
        if condition.get("type") == "Complete":
            return "Complete", ""
        if condition.get("type") == "Failed":
            return "Failed", f"{condition.get('reason', 'Failed')}: {condition.get('message', '')}".strip(
                ": "
            )
    if (job.get("spec") or {}).get("suspend"):
        return "Suspended", ""
    return "Running", ""


@dataclass
class StageProgress:
    name: str
    total: int
    succeeded: int = 0
    failed: int = 0
    skipped: int = 0
    shards: int = 0
    shards_done: int = 0
    env_errors: int = 0  # items the workers' node could not evaluate (also counted in `failed`)
    env_reason: str = ""

    @property
    def done(self) -> int:
        return self.succeeded + self.failed + self.skipped

    def to_status(self, job: str | None) -> dict[str, Any]:
        return {
            "name": self.name,
            "total": self.total,
            "succeeded": self.succeeded,
            "failed": self.failed,
            "skipped": self.skipped,
            "shards": self.shards,
            "shardsDone": self.shards_done,
            **({"job": job} if job else {}),
        }


def stage_progress(
    plan: Plan, progress: dict[str, list[dict[str, Any]]], finished: dict[str, set[int]]
) -> list[StageProgress]:
    """Sum the per-shard progress records; a skipped stage counts all its items as skipped."""
    out = []
    for stage in plan.stages:
        p = StageProgress(stage.name, stage.items, shards=stage.shards if stage.runs else 0)
        if not stage.runs:
            p.skipped = stage.items
            out.append(p)
            continue
        for record in progress.get(stage.name, []):
            p.succeeded += int(record.get("ok", 0))
            # env_error (the node lacked an extra, pdflatex...) is not the answer's fault, but the item is
            # not scored either: counted with the failures so progress reaches its total
            env_errors = int(record.get("env_error", 0))
            p.failed += int(record.get("failed", 0)) + env_errors
            p.env_errors += env_errors
            if env_errors and not p.env_reason:
                p.env_reason = str(record.get("env_reason") or "")
            p.skipped += int(record.get("skipped", 0))
        p.shards_done = len(finished.get(stage.name, set()))
        out.append(p)
    return out


def progress_text(stages: list[StageProgress]) -> str:
    """`done/total` over the stages that run, as `kubectl get evalruns` shows it."""
    active = [s for s in stages if s.shards]
    done = sum(min(s.done, s.total) for s in active)
    total = sum(s.total for s in active)
    return f"{done}/{total}"


def environment_failure(stages: list[StageProgress]) -> str | None:
    """Why items could not be evaluated where the workers ran (none of them is scored), or None."""
    broken = [s for s in stages if s.env_errors]
    if not broken:
        return None
    count = sum(s.env_errors for s in broken)
    first = broken[0]
    why = first.env_reason or "see the item records"
    return (
        f"{count} item(s) could not be evaluated where the workers ran (stage {first.name}): {why}. "
        "They are not scored and not counted against their answers; fix the environment and run again."
    )


def run_phase(
    suspended: bool,
    blockers: list[Blocker],
    planned: bool,
    job_states: dict[str, tuple[str, str]],
    all_finished: bool,
    environment: str | None = None,
    queue: str | None = None,
) -> tuple[str, str, str]:
    """(phase, reason, message) from what was observed; `environment` is `environment_failure(...)`,
    `queue` the run's Kueue queue (spec.queueName)."""
    if all_finished and environment:
        # Every shard ended, but some items were never evaluated: the scores would silently cover fewer
        # items than the run asked for.
        return "Failed", "EnvironmentFailure", environment
    if all_finished:
        return "Succeeded", "AllShardsFinished", "every shard of every stage has its records"
    failed = {name: reason for name, (state, reason) in job_states.items() if state == "Failed"}
    if failed:
        name, reason = sorted(failed.items())[0]
        return "Failed", "JobFailed", f"Job {name} failed: {reason}"
    if suspended:
        return "Suspended", "Suspended", "spec.suspend is true"
    if blockers:
        return "Pending", blockers[0].reason, "; ".join(b.message for b in blockers)
    if not planned:
        return "Pending", "Planning", "planning shards"
    if queue:
        # Kueue admits a Job by unsuspending it: while no unfinished Job is admitted, nothing runs.
        # No Job seen yet counts too: with a queue they are created suspended.
        unfinished = [state for state, _ in job_states.values() if state != "Complete"]
        waiting = unfinished.count("Suspended")
        if waiting == len(unfinished) and (waiting or not job_states):
            return "Queued", "Queued", f"waiting for Kueue to admit {waiting or 'the'} Job(s) (queue {queue})"
    return "Running", "JobsRunning", "stage Jobs are running"


def aggregate_request(
    plan: Plan, spec: dict[str, Any], run: dict[str, str], phase: str, reason: str, message: str
) -> dict[str, Any]:
    """What a finished run's aggregate Job is asked to write. Its id names one outcome of one plan
    (the phase, the reason and the stages as planned, not the message's wording), so the same
    finish asks once, and a run finished again with a judge added asks anew."""
    identity = {
        "phase": phase,
        "reason": reason,
        "stages": [[s.name, s.config_hash, s.shards] for s in plan.active_stages],
    }
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]
    return {"id": digest, "run": run, "phase": phase, "reason": reason, "message": message, "spec": spec}


def jobs_to_stop(job_states: dict[str, tuple[str, str]]) -> list[str]:
    """A Failed run's Jobs that still hold pods (running, or waiting for an upstream shard that will
    never come): suspended, which ends their pods and keeps their records and status."""
    return sorted(name for name, (state, _) in job_states.items() if state == "Running")


def same_status(old: dict[str, Any], new: dict[str, Any]) -> bool:
    """Equal but for condition timestamps (and kopf's own field, should one exist)."""
    a = {k: v for k, v in old.items() if k not in ("conditions", "kopf")}
    b = {k: v for k, v in new.items() if k not in ("conditions", "kopf")}
    return a == b and same_conditions(old.get("conditions") or [], new.get("conditions") or [])


def progress_only(old: dict[str, Any], new: dict[str, Any]) -> bool:
    """Only progress moved (counts, per-stage figures): no phase, condition or result changed."""
    moving = ("progress", "stages", "cost", "kopf", "conditions")
    same = all(old.get(k) == new.get(k) for k in set(old) | set(new) if k not in moving)
    return same and same_conditions(old.get("conditions") or [], new.get("conditions") or [])


def progress_interval(base_s: float, active_runs: int, patches_per_second: float) -> float:
    """Seconds between one run's progress-only status patches: `base_s`, or longer when many runs are
    active, so that together they send at most `patches_per_second` (Prometheus metrics, computed at
    scrape time, stay live either way)."""
    return max(base_s, active_runs / patches_per_second)


def status_to_send(old: dict[str, Any], new: dict[str, Any], since_last_s: float, interval_s: float) -> bool:
    """Whether to patch `new`: never when unchanged; progress alone at most every `interval_s`, which
    keeps API requests per run small; phase changes, conditions and results at once."""
    if same_status(old, new):
        return False
    return not (since_last_s < interval_s and progress_only(old, new))


def terminal_status(
    status: dict[str, Any], phase: str, reason: str, message: str, generation
) -> dict[str, Any]:
    conditions = set_condition(status.get("conditions") or [], "Ready", False, reason, message, generation)
    return {
        **status,
        "phase": phase,
        "message": message,
        "conditions": conditions,
        "observedGeneration": generation,
    }

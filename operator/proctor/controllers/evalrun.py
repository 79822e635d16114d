"""The EvalRun controller: level-based, run on a timer, safe to kill at any point.

Each pass recomputes everything from observed state — the run, its inputs (kopf indexes), the plan
and per-shard progress (the store), its Jobs (kopf index) — so a missed event or an operator restart
cannot strand a run. Every write is idempotent: the plan is written once per run UID (and reused if
present), Job names are deterministic (a second create is AlreadyExists), results are recomputed from
records. The status is patched only when it changed.
"""

from __future__ import annotations

import asyncio
import copy
import datetime as dt
import json
import logging
import time
from typing import Any

from proctor.api import EvalRun
from proctor.api.common import Source
from proctor.cluster import NotFound
from proctor.controllers.services import RunCache, Services
from proctor.cost import live_cost, status_cost
from proctor.inputs import InputError, fetch_source, human_table, load_bundle, store_bundle, validate_bundle
from proctor.k8s.jobs import AGGREGATE_COMPONENT, WorkerContext, build_aggregate_job
from proctor.k8s.names import COMPONENT_LABEL, STAGE_LABEL, label_value, stage_job_name
from proctor.k8s.netpol import build_network_policy
from proctor.metrics import RunMetrics, sum_shard_metrics
from proctor.plan import Plan, plan_run, read_plan, write_plan
from proctor.plan.planner import added_stages, extend_plan, write_stage_manifests
from proctor.reconcile import evalrun as logic
from proctor.reconcile.budget import grant, held, runs_budget, waiting_message, with_grant
from proctor.reconcile.children import Observed, stale_children
from proctor.reconcile.conditions import Blocker, get_condition, problem_condition, set_condition
from proctor.reconcile.stores import resolve_store
from proctor.reconcile.tenancy import TenancyPolicy, tenancy_blockers
from proctor_jobs.benchmarks import get_benchmark
from proctor_jobs.judge.panel import entry_for_stage, is_judge_stage, judge_entries
from proctor_jobs.layout import RunLayout
from proctor_jobs.scoring.judges import flat_scores
from proctor_jobs.store import KeyNotFound, Store

log = logging.getLogger("proctor.evalrun")


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def reconcile(
    rt: Services,
    cache: RunCache,
    body: dict[str, Any],
    artifacts: dict[str, dict[str, Any]],
    judges: dict[str, dict[str, Any]],
    jobs: dict[str, dict[str, Any]],
    runs: dict[str, dict[str, Any]],
    post_event,
    children: Observed | None = None,
    namespace_jobs: list[dict[str, Any]] | None = None,
) -> dict[str, Any] | None:
    """One pass over one EvalRun. Returns the status to patch, or None when nothing changed.

    Everything observed comes in as arguments (kopf's indexes, in the daemon): the namespace's
    Artifacts, JudgeServers and EvalRuns by name, this run's Jobs by name, its other children (the
    NetworkPolicy) by (kind, name), and every Job of the namespace (the judge grants other runs hold)."""
    meta, status = body["metadata"], dict(body.get("status") or {})
    namespace, name, uid = meta["namespace"], meta["name"], meta["uid"]
    aggregate_jobs = {n: j for n, j in jobs.items() if _is_aggregate(j)}
    jobs = {n: j for n, j in jobs.items() if n not in aggregate_jobs}  # the stages' Jobs
    generation = meta.get("generation")
    pass_started = time.monotonic()
    try:
        run = EvalRun.model_validate({**body, "status": None})
    except Exception as exc:  # the CRD schema should stop this; an old object may still slip through
        return logic.terminal_status(status, "Failed", "InvalidSpec", str(exc)[:1000], generation)
    spec = run.spec.dump()
    if status.get("phase") in logic.TERMINAL and status.get("observedGeneration") == generation:
        _publish(rt, uid, namespace, name, status, cache)
        return None

    refused_here = _tenancy_blockers(rt, namespace, spec, _benchmark_format(spec, artifacts))
    # S3 and HTTP sources given in place are fetched by an ingest Job, for an Artifact the run owns
    # (not for a run the admin's gates refuse: nothing is created for it).
    spec, fetched = logic.source_artifacts(spec, namespace, name, uid)
    for child in fetched if not refused_here else []:
        if child["metadata"]["name"] not in artifacts:
            await rt.cluster.create(child)
    benchmark_format = _benchmark_format(spec, artifacts)
    needs_judge = any(entry.server_ref for entry in judge_entries(spec))
    blockers = refused_here + logic.input_blockers(spec, artifacts, judges, needs_judge)
    try:
        store = await rt.store_for(namespace, spec.get("storage"))
    except Exception as exc:  # a missing credentials Secret, an unreachable endpoint: say so and wait
        rt.state.error("EvalRun", "StoreUnavailable")  # counted too: dashboards show misconfigured runs
        message = f"spec.storage: the store cannot be opened: {type(exc).__name__}: {exc}"
        conditions = set_condition(
            status.get("conditions") or [], "StoreReady", False, "StoreUnavailable", message, generation
        )
        new = {
            **status,
            "phase": "Pending",
            "message": message,
            "conditions": conditions,
            "observedGeneration": generation,
        }
        return None if logic.same_status(status, new) else new
    run_prefix = status.get("runPrefix") or RunLayout.for_run(namespace, name, uid).prefix

    plan = cache.plan
    just_planned = False
    if plan is None and status.get("runPrefix"):  # planned before (this operator may have restarted)
        plan = await asyncio.to_thread(read_plan, store, run_prefix)
    if plan is None and not blockers:
        blockers += await _worker_secret_blockers(rt, namespace, spec.get("storage"))
    if plan is None and not blockers:
        try:
            async with rt.planning:  # planning holds a run's records in memory: a few at a time
                plan, cache.unwritten = await _make_plan(
                    rt, namespace, spec, benchmark_format, artifacts, judges, runs, store, run_prefix
                )
            just_planned = True
        except (InputError, ValueError) as exc:
            blockers.append(Blocker("InputInvalid", str(exc)))
    if plan is not None and not just_planned and not blockers and not cache.judges_checked:
        try:
            extended = await _add_judges(
                rt, namespace, spec, benchmark_format, artifacts, judges, runs, store, plan
            )
        except (InputError, ValueError) as exc:
            blockers.append(Blocker("InputInvalid", str(exc)))
        else:
            plan = extended
        cache.judges_checked = True
    cache.plan = plan
    refused: list[str] = []
    if plan is not None:
        cache.planned_spec = cache.planned_spec or spec
        spec, refused = logic.spec_in_force(cache.planned_spec, spec)

    new = dict(status)
    new.update(observedGeneration=generation, benchmark=benchmark_format)
    if plan is not None:
        # runPrefix marks the run planned: from then on the CRD refuses spec edits but suspend and
        # parallelism (api/immutability.py); before, a wrong input can still be fixed.
        new["runPrefix"] = run_prefix
    if status.get("startTime") is None:
        new["startTime"] = _now()
    conditions = set_condition(
        status.get("conditions") or [],
        "InputsReady",
        not blockers,
        blockers[0].reason if blockers else "InputsReady",
        "; ".join(b.message for b in blockers) or "benchmark, answers and judge are ready",
        generation,
    )
    follows = "the run follows its spec"
    conditions = problem_condition(
        conditions, "SpecApplied", refused, "SpecFrozen", "SpecApplied", follows, generation
    )
    stages: list[logic.StageProgress] = []
    all_finished = False
    job_states: dict[str, tuple[str, str]] = {}
    shard_metrics: dict[str, dict[str, Any]] = {}
    if plan is not None:
        ctx = _worker_context(rt, namespace, name, uid, spec, plan)
        if rt.config.network_policy:
            # Before any Job, so no pod of the run starts unconfined; re-applied when deleted or stale.
            for child in stale_children([_network_policy(ctx, spec, judges)], children or {}):
                await rt.cluster.apply(child)
        items = await _items_for_item_jobs(cache, store, plan)
        create, patches = logic.desired_children(plan, ctx, items, jobs)
        ready = get_condition(status.get("conditions"), "Ready") or {}
        if cache.finishing or ready.get("reason") == "Aggregating":
            # The run is over: a Failed run's suspended Jobs stay suspended while it is aggregated.
            create, patches = [], []
        create, budget_waits = await _grant_judge_jobs(
            rt, namespace, spec, plan, judges, create, namespace_jobs or list(jobs.values())
        )
        conditions = problem_condition(
            conditions,
            "JudgeBudget",
            budget_waits,
            "WaitingForJudgeBudget",
            "Granted",
            "every judge Job holds its share of its judge server's budget",
            generation,
        )
        for job in create:
            if await rt.cluster.create(job):
                log.info(
                    "created Job %s/%s (%.2f s into the pass)",
                    namespace,
                    job["metadata"]["name"],
                    time.monotonic() - pass_started,
                )
        for job_name, patch in patches:
            await rt.cluster.patch("Job", namespace, job_name, patch)
        if cache.unwritten is not None:
            # The Jobs exist before their manifests: workers wait for them, and the Jobs start
            # sooner. Re-planning after a crash here gives the same plan (inputs are content-addressed).
            manifests, plan_items = cache.unwritten
            await asyncio.to_thread(write_plan, store, plan, manifests, plan_items)
            cache.unwritten = None
        if just_planned:  # nothing can have run yet: spare the store a round of reads
            progress, finished, shard_metrics = {}, {}, {}
        else:
            progress, finished, shard_metrics = await asyncio.to_thread(_read_progress, store, plan, cache)
        stages = logic.stage_progress(plan, progress, finished)
        if shard_metrics:
            live = live_cost({s.name: s.items for s in plan.active_stages}, shard_metrics)
            new["cost"] = status_cost(live, final=False)
        all_finished = all(len(finished.get(s.name, ())) == s.shards for s in plan.active_stages)
        job_states = {n: logic.job_state(j) for n, j in jobs.items()}
        conditions = set_condition(
            conditions, "Planned", True, "Planned", f"{plan.total_items} items", generation
        )

    suspended = bool(spec.get("suspend"))
    environment = logic.environment_failure(stages)
    conditions = set_condition(
        conditions,
        "EnvironmentReady",
        environment is None,
        "EnvironmentFailure" if environment else "EnvironmentReady",
        environment or "every item so far was evaluated where the workers ran",
        generation,
    )
    phase, reason, message = logic.run_phase(
        suspended, blockers, plan is not None, job_states, all_finished, environment, spec.get("queueName")
    )
    if phase == "Failed" and plan is not None and status.get("phase") != "Failed":
        # What failed stops the rest: no Job goes on holding its requests (or polling for an upstream
        # shard) for a run that is over, and what did finish is aggregated and reported, as locally.
        for job_name in logic.jobs_to_stop(job_states):
            await rt.cluster.patch("Job", namespace, job_name, {"spec": {"suspend": True}})
    if phase in ("Succeeded", "Failed") and plan is not None and status.get("phase") != phase:
        # The summary and reports are made by the run's aggregate Job, in a worker pod (they read what
        # answers' code wrote and hold the images it made); this pass reads the summary once it is done.
        who = {"name": name, "namespace": namespace}
        request = logic.aggregate_request(plan, spec, who, phase, reason, message)
        summary = None
        try:
            summary = await asyncio.to_thread(_aggregated_summary, store, plan, request["id"])
        except Exception as exc:  # the store is unreachable: the next pass reads it again
            log.warning("%s/%s: cannot read the aggregate's outcome: %s", namespace, name, exc)
        if summary is None:
            cache.finishing = True
            job = build_aggregate_job(ctx, request["id"])
            observed = aggregate_jobs.get(job["metadata"]["name"])
            if observed is None:
                await asyncio.to_thread(store.put_json, plan.layout.aggregate_request, request)
                await rt.cluster.create(job)
            if observed is not None and logic.job_state(observed)[0] == "Failed":
                rt.state.error("EvalRun", "AggregationFailed")
                phase, reason = "Failed", "AggregationFailed"
                message = (
                    f"{message}; no summary or report: the aggregate Job {job['metadata']['name']} failed "
                    f"({logic.job_state(observed)[1]}), see its pod's log"
                    if message
                    else f"the aggregate Job {job['metadata']['name']} failed: see its pod's log"
                )
            else:
                final = phase
                phase, reason = "Running", "Aggregating"
                message = f"the run is {final}: its aggregate Job writes the summary and reports"
        else:
            results = _results_status(store, plan, summary, f"{name}-results", spec)
            if phase != "Succeeded":
                # Scores of a failed run cover fewer items than it asked for: they stay in its summary
                # and reports, beside the reason, never in status as if they were the run's.
                partial = ("scores", "score", "scoreName", "judges")
                results = {k: v for k, v in results.items() if k not in partial}
            new.update(results)
            new["cost"] = status_cost(summary["cost"], final=True)
            if phase == "Succeeded" and not cache.results_artifact:  # partial results are no Artifact
                await rt.cluster.create(_results_artifact(namespace, name, uid, store, plan))
                cache.results_artifact = True
    conditions = set_condition(conditions, "Ready", phase == "Succeeded", reason, message, generation)
    new.update(
        phase=phase,
        message=message,
        conditions=conditions,
        stages=[s.to_status(_job_for(plan, s.name, name)) for s in stages],
        progress=logic.progress_text(stages) if stages else status.get("progress"),
    )
    if phase in logic.TERMINAL and not status.get("completionTime"):
        new["completionTime"] = _now()
    elif phase not in logic.TERMINAL:
        new.pop("completionTime", None)  # working again (a judge added to a finished run)
    if phase != status.get("phase"):
        post_event("Warning" if phase == "Failed" else "Normal", phase, message)
    rt.state.update_run(
        uid,
        RunMetrics(
            namespace,
            name,
            benchmark_format or "",
            phase,
            stages,
            shard_metrics,
            {k: v for k, v in (new.get("scores") or {}).items() if isinstance(v, int | float)},
            _judge_names(spec),
        ),
    )
    since = time.monotonic() - cache.last_status_patch
    active = sum(1 for r in runs.values() if (r.get("status") or {}).get("phase") not in logic.TERMINAL)
    interval = logic.progress_interval(
        rt.config.status_interval_seconds, active, rt.config.status_patches_per_second
    )
    if not logic.status_to_send(status, new, since, interval):
        return None
    cache.last_status_patch = time.monotonic()
    return new


def _publish(rt: Services, uid, namespace, name, status, cache) -> None:
    stages = [
        logic.StageProgress(
            s["name"],
            s.get("total", 0),
            s.get("succeeded", 0),
            s.get("failed", 0),
            s.get("skipped", 0),
            s.get("shards", 0),
            s.get("shardsDone", 0),
        )
        for s in status.get("stages") or []
    ]
    scores = {k: v for k, v in (status.get("scores") or {}).items() if isinstance(v, int | float)}
    benchmark = cache.plan.benchmark if cache and cache.plan else (status.get("benchmark") or "")
    previous = rt.state.runs.get(uid)
    measured = previous.shard_metrics if previous else {}  # what the workers measured, kept at the end
    # After a restart the stage -> judge names come from the status (status.judges).
    judges = {j["stage"]: j["name"] for j in status.get("judges") or [] if j.get("stage") and j.get("name")}
    rt.state.update_run(
        uid, RunMetrics(namespace, name, benchmark, status["phase"], stages, measured, scores, judges)
    )


def publish_finished(rt: Services, body: dict[str, Any]) -> None:
    """A finished run's metrics (after a restart no daemon runs for it), once."""
    meta, status = body["metadata"], body.get("status") or {}
    if status.get("phase") in logic.TERMINAL and meta["uid"] not in rt.state.runs:
        _publish(rt, meta["uid"], meta["namespace"], meta["name"], status, None)


def _benchmark_format(spec: dict[str, Any], artifacts: dict[str, dict[str, Any]]) -> str | None:
    bench = spec["benchmark"]
    if bench.get("format"):
        return bench["format"]
    artifact = artifacts.get((bench.get("artifactRef") or {}).get("name", ""))
    return ((artifact or {}).get("spec") or {}).get("format")


async def _make_plan(
    rt, namespace, spec, benchmark_format, artifacts, judges, runs, store: Store, run_prefix
):
    """The plan, and (manifests, items) still to be written to the store."""
    bench_bundle = await _input_bundle(rt, namespace, spec["benchmark"], "benchmark", artifacts, store)
    answers_bundle = (
        await _input_bundle(rt, namespace, spec["answers"], "answers", artifacts, store)
        if spec.get("answers")
        else None
    )
    ratings = spec.get("humanRatings")
    human_bundle = None
    if ratings:
        ref = {"artifactRef": ratings["artifactRef"]} if ratings.get("artifactRef") else {}
        ref = ref or {"source": ratings["source"], "format": "jsonl"}
        human_bundle = await _input_bundle(rt, namespace, ref, "humanRatings", artifacts, store)
        human_table(human_bundle.records, ratings, "spec.humanRatings")  # refused now, not at the end
    spec = _resolve_judge(copy.deepcopy(spec), judges, runs)
    adapter = get_benchmark(bench_bundle.format)

    def build():
        items, warnings = adapter.work_items(
            bench_bundle.records, answers_bundle.records if answers_bundle else None, spec
        )
        inputs = {
            "benchmark": bench_bundle.sha256,
            **({"answers": answers_bundle.sha256} if answers_bundle else {}),
            **({"humanRatings": human_bundle.sha256} if human_bundle else {}),
        }
        plan, manifests = plan_run(adapter, spec, items, run_prefix, inputs, warnings)
        return plan, (manifests, items)

    return await asyncio.to_thread(build)


async def _input_bundle(rt: Services, namespace, ref, role, artifacts, store: Store):
    if ref.get("artifactRef"):
        artifact = artifacts[ref["artifactRef"]["name"]]
        sha = artifact["status"]["sha256"]
        art_store = await rt.store_for(namespace, None)
        # Single flight: runs planned at the same moment on the same inputs share one read of them.
        loading = rt.bundles.get(sha)
        if loading is None:
            loading = asyncio.ensure_future(asyncio.to_thread(load_bundle, art_store, sha))
            if len(rt.bundles) >= 8:  # a few recent bundles: enough for concurrent runs on shared inputs
                rt.bundles.pop(next(iter(rt.bundles)))
            rt.bundles[sha] = loading
        try:
            bundle = await asyncio.shield(loading)
        except Exception:
            rt.bundles.pop(sha, None)
            raise
        if art_store is not store:
            await asyncio.to_thread(store_bundle, store, bundle)
        return bundle
    # An inline / ConfigMap source given in the EvalRun itself: ingest it here.
    source = Source.model_validate(ref["source"])
    config_maps = {}
    if source.config_map is not None:
        cm = source.config_map
        config_maps[(cm.name, cm.key)] = await rt.cluster.config_map_value(namespace, cm.name, cm.key)

    def ingest():
        records = fetch_source(
            source,
            f"spec.{role}.source",
            lambda n, k: config_maps[(n, k)],
            allow_files=False,
            allow_network=False,
        )
        bundle = validate_bundle(role, ref["format"], records, f"spec.{role}")
        store_bundle(store, bundle)
        return bundle

    return await asyncio.to_thread(ingest)


async def _worker_secret_blockers(rt: Services, namespace: str, storage) -> list[Blocker]:
    """The store Secret the run's pods read (and the operator does not: it uses its own credentials)
    must exist in the run's namespace before any Job is made, or every pod would wait on it
    (CreateContainerConfigError) while the run said Running. Checked until the run is planned."""
    settings = resolve_store(rt.config, namespace, storage)
    if not settings.secret or settings.operator_secret:
        return []  # no Secret, or one the operator read already to open the run's store
    try:
        await rt.cluster.secret_data(namespace, settings.secret)
    except NotFound:
        message = (
            f"Secret {namespace}/{settings.secret}, which the run's pods read their store credentials "
            "from (the operator's store.credentialsSecret), does not exist in this namespace: create it "
            "there (the chart does with store.credentials.copyToWatchedNamespaces) or give the "
            "namespace a store of its own (store.namespaces); the run starts once it exists"
        )
        return [Blocker("StoreSecretMissing", message)]
    except Exception as exc:  # the API is briefly unavailable: the pods will say, if it is really gone
        log.warning("cannot check Secret %s/%s: %s", namespace, settings.secret, exc)
    return []


def _tenancy_blockers(rt: Services, namespace: str, spec, benchmark_format: str | None) -> list[Blocker]:
    """What the operator's tenancy settings refuse in this run (the admin's gates), first of all."""
    kinds: list[str] = []
    if benchmark_format:
        try:
            kinds = [s.kind for s in get_benchmark(benchmark_format).stages(spec)]
        except Exception:  # an unknown format or a bad spec: the input checks say so
            kinds = []
    config = rt.config
    return tenancy_blockers(spec, namespace, kinds, TenancyPolicy.from_config(config))


async def _grant_judge_jobs(
    rt: Services,
    namespace: str,
    spec: dict[str, Any],
    plan: Plan,
    judges: dict[str, dict[str, Any]],
    create: list[dict[str, Any]],
    namespace_jobs: list[dict[str, Any]],
) -> tuple[list[dict[str, Any]], list[str]]:
    """The Jobs to create, each judge Job of a JudgeServer with its grant (`reconcile/budget.py`), and
    why any judge Job waits. Under one lock: two runs never take the same free requests."""
    out, waits = [], []
    indexed = {j["metadata"]["name"] for j in namespace_jobs}
    async with rt.judge_grant_lock:
        for job in create:
            stage = (job["metadata"].get("labels") or {}).get(STAGE_LABEL, "")
            entry = entry_for_stage(spec, stage) if is_judge_stage(stage) else None
            server = judges.get(entry.server_ref) if entry is not None and entry.server_ref else None
            if server is None:
                out.append(job)
                continue
            ref = server["metadata"]["name"]
            pending = rt.judge_grants.setdefault((namespace, ref), {})
            for name in indexed & set(pending):
                del pending[name]  # the index shows it now
            budget = runs_budget(
                int((server.get("spec") or {}).get("maxConcurrency", 32)),
                int((server.get("status") or {}).get("readyReplicas") or 1),
            )
            in_use = held(ref, namespace_jobs, pending)
            wanted = int(plan.stage(stage).config.get("concurrency") or 1)
            granted = grant(ref, budget, in_use, wanted, int(job["spec"].get("parallelism", 1)))
            if granted is None:
                waits.append(waiting_message(ref, budget, in_use))
                continue
            pending[job["metadata"]["name"]] = granted
            out.append(with_grant(job, granted))
    return out, waits


def _judge_names(spec: dict[str, Any]) -> dict[str, str]:
    """Judge stage -> judge name, for the `judge` label of the metrics."""
    return {entry.stage: entry.name for entry in judge_entries(spec)}


def _uses(run: dict[str, Any], ref: str) -> bool:
    return any(entry.server_ref == ref for entry in judge_entries(run.get("spec") or {}))


def _resolve_judge(spec: dict[str, Any], judges, runs) -> dict[str, Any]:
    """Put each judge's JudgeServer endpoint, model and this run's share of its concurrency into the spec."""
    spec["judge"] = _resolve_one(spec.get("judge") or {}, spec, judges, runs)
    if spec.get("additionalJudges"):
        spec["additionalJudges"] = [_resolve_one(j, spec, judges, runs) for j in spec["additionalJudges"]]
    return spec


def _resolve_one(judge: dict[str, Any], spec: dict[str, Any], judges, runs) -> dict[str, Any]:
    ref = (judge.get("serverRef") or {}).get("name")
    if not ref or ref not in judges:
        return judge
    server = judges[ref]
    server_status = server.get("status") or {}
    judge["url"] = server_status.get("endpoint")
    judge["model"] = judge.get("model") or server_status.get("model")
    # The judge's budget is split between the unfinished runs that use it (this one included).
    sharing = 1 + sum(
        1
        for other in runs.values()
        if _uses(other, ref)
        and (other.get("status") or {}).get("phase") in ("Queued", "Running", "Suspended")
    )
    budget = logic.judge_concurrency(
        int((server.get("spec") or {}).get("maxConcurrency", 32)),
        int(server_status.get("readyReplicas") or 1),
        sharing,
        int(spec.get("parallelism", 4)),
    )
    judge["concurrency"] = min(budget, int(judge.get("concurrency") or budget))
    return judge


async def _add_judges(
    rt, namespace, spec, benchmark_format, artifacts, judges, runs, store, plan: Plan
) -> Plan:
    """A judge added to a run already planned (or finished): plan again and add only the new judges'
    stages, so the renders and the other judges' records and Jobs stay as they are."""
    if not any(s.kind == "judge" for s in plan.stages):
        return plan  # a benchmark without a judge stage
    have = {s.name for s in plan.stages}
    if all(e.stage in have for e in judge_entries(spec) if e.configured):
        return plan
    async with rt.planning:
        wanted, (manifests, _items) = await _make_plan(
            rt, namespace, spec, benchmark_format, artifacts, judges, runs, store, plan.run_prefix
        )
    extended, new_manifests = extend_plan(plan, wanted, manifests)
    await asyncio.to_thread(write_stage_manifests, store, extended, new_manifests)
    log.info("added stage(s) %s to %s/%s", ", ".join(added_stages(plan, wanted)), namespace, plan.run_prefix)
    return extended


def _worker_context(rt: Services, namespace, name, uid, spec, plan: Plan) -> WorkerContext:
    url, env, secret = rt.store_settings(spec.get("storage"), namespace=namespace)
    judge_key = (spec.get("judge") or {}).get("apiKeySecretRef") or spec.get("apiKeySecretRef")
    # Each additional judge's Job gets its own key (or the run's), never another judge's.
    stage_keys = {
        entry.stage: dict(entry.options.get("apiKeySecretRef") or spec.get("apiKeySecretRef") or {})
        for entry in judge_entries(spec)[1:]
    }
    return WorkerContext(
        namespace=namespace,
        run_name=name,
        run_uid=uid,
        spec=spec,
        run_prefix=plan.run_prefix,
        store_url=url,
        config=rt.config,
        store_env=env,
        credentials_secret=secret,
        judge_api_key=dict(judge_key) if judge_key else None,
        stage_api_keys={stage: key for stage, key in stage_keys.items() if key},
    )


def _network_policy(ctx: WorkerContext, spec, judges) -> dict[str, Any]:
    servers: list[tuple[str, int]] = []
    external = False
    for entry in judge_entries(spec):
        server_spec = (judges.get(entry.server_ref or "") or {}).get("spec") or {}
        if server_spec.get("vllm"):
            servers.append((entry.server_ref or "", int(server_spec["vllm"].get("port", 8000))))
        elif server_spec.get("external") or entry.options.get("url"):
            external = True
    return build_network_policy(ctx, external_judge=external, judge_servers=servers)


async def _items_for_item_jobs(cache, store: Store, plan: Plan) -> list[dict[str, Any]]:
    if not any(s.per_item_jobs for s in plan.active_stages):
        return []
    if cache.items is None:
        if cache.unwritten is not None:
            cache.items = cache.unwritten[1]
        else:
            cache.items = await asyncio.to_thread(store.get_jsonl, plan.layout.items)
    return cache.items


def _read_progress(store: Store, plan: Plan, cache):
    """Per-shard progress records and which shards are finished (a results file exists).

    Finished shards' final progress is cached, so a long run costs one LIST per stage plus one GET per
    unfinished shard per pass.
    """
    layout = plan.layout
    progress: dict[str, list[dict[str, Any]]] = {}
    finished: dict[str, set[int]] = {}
    metrics: dict[str, dict[str, Any]] = {}
    for stage in plan.active_stages:
        done = {
            int(key.rsplit("/", 1)[1].split(".")[0]) for key in store.list(layout.results_prefix(stage.name))
        }
        finished[stage.name] = done
        records = []
        for index in range(stage.shards):
            cached = cache.finished_progress.get((stage.name, index))
            if cached is not None:
                records.append(cached)
                continue
            try:
                record = store.get_json(layout.progress(stage.name, index))
            except KeyNotFound:
                continue
            if index in done and record.get("done"):
                cache.finished_progress[(stage.name, index)] = record
            elif index in done:
                # Its results file exists but its final progress (written just after) is not read
                # yet: finished at the next pass, so a run never ends with the counts read before.
                done.discard(index)
            records.append(record)
        progress[stage.name] = records
        metrics[stage.name] = sum_shard_metrics([r.get("metrics") or {} for r in records])
    return progress, finished, metrics


def _is_aggregate(job: dict[str, Any]) -> bool:
    return (job.get("metadata") or {}).get("labels", {}).get(COMPONENT_LABEL) == AGGREGATE_COMPONENT


#: the most of a summary the operator reads (it is small: scores, counts, costs; items live elsewhere)
MAX_SUMMARY_BYTES = 4 * 1024 * 1024


def _aggregated_summary(store: Store, plan: Plan, request_id: str) -> dict[str, Any] | None:
    """The summary the aggregate Job wrote for this request, or None while it has not."""
    done = store.get_json_or(plan.layout.aggregate_done)
    if not done or done.get("id") != request_id:
        return None
    with store.open_read(plan.layout.summary) as stream:
        data = stream.read(MAX_SUMMARY_BYTES + 1)
    if len(data) > MAX_SUMMARY_BYTES:
        raise ValueError(f"{plan.layout.summary} is larger than {MAX_SUMMARY_BYTES} bytes")
    return json.loads(data)


def _results_status(
    store: Store, plan: Plan, summary: dict[str, Any], artifact: str, spec: dict[str, Any] | None = None
) -> dict[str, Any]:
    scores = {k: v for k, v in (summary.get("scores") or {}).items() if isinstance(v, int | float)}
    headline = summary.get("headline")
    layout = plan.layout
    panel = summary.get("judges")
    if panel:
        scores.update(flat_scores(panel))  # `<judge>/<score>` beside the run's own
    first = judge_entries(spec or {})[0].name
    return {
        "scores": scores,
        "judges": logic.judge_statuses(panel, first),
        "scoreName": headline,
        "score": scores.get(headline) if headline else None,
        "results": {
            "summary": store.uri(layout.summary),
            "report": store.uri(layout.report_md),
            "reportHtml": store.uri(layout.report_html) if store.exists(layout.report_html) else None,
            "records": store.uri(f"{plan.run_prefix}/records.jsonl"),
            "artifact": artifact,
        },
    }


def _results_artifact(namespace, name, uid, store: Store, plan: Plan) -> dict[str, Any]:
    return {
        "apiVersion": "proctor.dev/v1alpha1",
        "kind": "Artifact",
        "metadata": {
            "name": f"{name}-results"[:253],
            "namespace": namespace,
            "labels": {"proctor.dev/run": label_value(name)},
            "ownerReferences": [
                {
                    "apiVersion": "proctor.dev/v1alpha1",
                    "kind": "EvalRun",
                    "name": name,
                    "uid": uid,
                    "controller": True,
                }
            ],
        },
        "spec": {
            "type": "results",
            "format": "jsonl",
            "description": f"records of EvalRun {namespace}/{name}",
            "source": {"s3": {"uri": store.uri(f"{plan.run_prefix}/records.jsonl")}},
        },
    }


def _job_for(plan: Plan | None, stage: str, run_name: str) -> str | None:
    if plan is None:
        return None
    stage_plan = plan.stage(stage)
    if not stage_plan.runs:
        return None
    return None if stage_plan.per_item_jobs else stage_job_name(run_name, stage)


async def delete_data(rt: Services, body: dict[str, Any]) -> None:
    """spec.storage.deleteDataWithRun: remove the run's data from the store with the EvalRun."""
    meta, status = body["metadata"], body.get("status") or {}
    prefix = status.get("runPrefix") or RunLayout.for_run(meta["namespace"], meta["name"], meta["uid"]).prefix
    store = await rt.store_for(meta["namespace"], (body.get("spec") or {}).get("storage"))
    removed = await asyncio.to_thread(store.delete_prefix, prefix + "/")
    log.info("deleted %d objects of %s/%s from the store", removed, meta["namespace"], meta["name"])

"""Local mode: the cluster's plan and worker code, run in a local process pool.

`proctor run evalrun.yaml` validates the manifests, resolves the inputs (Artifacts and ConfigMaps in
the same directory, local files, S3, HTTP), plans shards exactly as the operator does, and runs
`proctor_jobs.worker.run_shard` for each shard in a pool of processes. The run's store prefix is
derived from the spec and inputs, so running the same command again resumes: finished items are
reused, not recomputed. Worker processes die with the parent (PDEATHSIG), so a killed run leaves no
orphans behind.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import multiprocessing
import os
import signal
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from proctor.api import Artifact, EvalRun
from proctor.api.evalrun import InputRef
from proctor.inputs import Bundle, InputError, fetch_source, human_table, store_bundle, validate_bundle
from proctor.manifests import Document, ManifestError, is_proctor, load_documents, validate
from proctor.plan import Plan, plan_run, run_uid, write_plan
from proctor.results import all_shards_finished, collect_records, environment_errors, write_results
from proctor_jobs.benchmarks import get_benchmark
from proctor_jobs.layout import RunLayout
from proctor_jobs.store import Store, open_store
from proctor_jobs.worker import ShardOutcome, run_shard, shard_finished


@dataclass
class LocalRun:
    evalrun: EvalRun
    spec: dict[str, Any]
    plan: Plan
    store: Store
    manifests_dir: Path


@dataclass
class RunResult:
    name: str
    phase: str
    run_prefix: str
    store_url: str
    summary: dict[str, Any]
    total: int
    processed: int
    reused: int
    failed: int
    errors: list[str] = field(default_factory=list)
    #: per active stage: items worked by this invocation, items whose record was reused, failed items
    stages: dict[str, dict[str, int]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "run": self.name,
            "phase": self.phase,
            "store": self.store_url,
            "run_prefix": self.run_prefix,
            "counts": {
                "total": self.total,
                "processed": self.processed,
                "reused": self.reused,
                "failed": self.failed,
            },
            "stages": self.stages,
            "headline": self.summary.get("headline"),
            "scores": self.summary.get("scores", {}),
            **({"judges": self.summary["judges"]} if self.summary.get("judges") else {}),
        }


def load_run_manifests(path: Path, name: str | None = None) -> tuple[EvalRun, list[Document]]:
    """Validate every Proctor object in the file; pick the EvalRun to run.

    Only the file is read: the Artifacts and ConfigMaps it names but does not hold are looked up
    next to it when needed (`LocalResolver`), and an unrelated or broken neighbour never matters."""
    path = Path(path)
    docs = load_documents(path)
    for doc in docs:
        if is_proctor(doc):
            validate(doc)  # every object in the file must be valid, not only the EvalRun
    runs = [d for d in docs if d.kind == "EvalRun"]
    if name:
        runs = [d for d in runs if d.name == name]
    if not runs:
        raise ManifestError(f"{path}: no EvalRun{f' named {name!r}' if name else ''} found")
    if len(runs) > 1:
        names = ", ".join(d.name for d in runs)
        raise ManifestError(f"{path}: several EvalRuns ({names}); choose one with --name")
    return validate(runs[0]), docs


class LocalResolver:
    """Resolves an EvalRun's inputs from its own file, then from the manifests next to it.

    A neighbour is looked at only when the file lacks an object it names: YAML files (never the data
    next to it), parsed only if their text mentions that kind and name; one that does not parse (a
    broken draft) is skipped, and named in the error only if the object is found nowhere."""

    def __init__(self, context: list[Document], base_dir: Path, manifest: Path | None = None) -> None:
        self.context = context
        self.base_dir = base_dir
        self.manifest = Path(manifest).resolve() if manifest is not None else None
        self.skipped: list[str] = []

    def _find(self, kind: str, name: str) -> Document | None:
        found = next((d for d in self.context if d.kind == kind and d.name == name), None)
        if found is not None or self.manifest is None:
            return found
        for file in sorted(self.base_dir.iterdir()):
            # YAML only: a .json neighbour is far more often data (a predictions file) than a manifest
            if file.suffix not in (".yaml", ".yml") or file.resolve() == self.manifest or not file.is_file():
                continue
            raw = file.read_bytes()
            if kind.encode() not in raw or name.encode() not in raw:
                continue
            try:
                docs = load_documents(file)
            except ManifestError as exc:
                self.skipped.append(str(exc).splitlines()[0])
                continue
            found = next((d for d in docs if d.kind == kind and d.name == name), None)
            if found is not None:
                self.context.append(found)
                return found
        return None

    def not_found(self, what: str) -> InputError:
        where = f"{self.manifest} or next to it" if self.manifest else str(self.base_dir)
        skipped = "".join(f"\n  (skipped {s})" for s in self.skipped)
        return InputError(f"{what} not found in {where}{skipped}")

    def config_map(self, name: str, key: str) -> str | bytes:
        doc = self._find("ConfigMap", name)
        if doc is None:
            raise self.not_found(f"ConfigMap {name!r}")
        data = doc.body.get("data") or {}
        if key in data:
            return str(data[key])
        binary = doc.body.get("binaryData") or {}
        if key in binary:
            import base64

            return base64.b64decode(binary[key])
        raise InputError(f"{doc.label}: no key {key!r} (has {', '.join([*data, *binary]) or 'none'})")

    def bundle(self, ref: InputRef, role: str, label: str) -> Bundle:
        if ref.artifact_ref is not None:
            doc = self._find("Artifact", ref.artifact_ref.name)
            if doc is None:
                raise self.not_found(f"{label}.artifactRef: Artifact {ref.artifact_ref.name!r}")
            artifact: Artifact = validate(doc)
            source, format_, type_ = artifact.spec.source, artifact.spec.format, artifact.spec.type
            where = doc.label
        else:
            source, format_, type_, where = ref.source, ref.format, role, f"{label}.source"
        if source.file is not None:
            where = f"{source.file.path} ({where})"
        elif source.config_map is not None:  # its lines are the key's, not the manifest file's
            where = f"{where} (ConfigMap {source.config_map.name}, key {source.config_map.key})"
        records = fetch_source(source, where, self.config_map, self.base_dir)
        return validate_bundle(type_, format_, records, where)


@dataclass
class Resolved:
    """An EvalRun with its inputs read and checked, and its items: everything before any store write."""

    evalrun: EvalRun
    spec: dict[str, Any]
    base_dir: Path
    bundles: dict[str, Bundle]
    items: list[dict[str, Any]]
    warnings: list[str]

    @property
    def benchmark(self) -> str:
        return self.bundles["benchmark"].format

    @property
    def inputs(self) -> dict[str, str]:
        return {role: bundle.sha256 for role, bundle in self.bundles.items()}


def resolve(manifest: Path, name: str | None = None, overrides: dict[str, Any] | None = None) -> Resolved:
    """Validate the manifest, read and check its inputs, make the items; no store, no work.

    `proctor run` and `proctor validate` both go through here, so validate refuses what run refuses."""
    evalrun, context = load_run_manifests(manifest, name)
    if overrides:
        evalrun = EvalRun.model_validate(_merge(evalrun.dump(), {"spec": overrides}))
    spec = evalrun.spec.dump()
    base_dir = Path(manifest).parent if Path(manifest).is_file() else Path(manifest)
    resolver = LocalResolver(context, base_dir, manifest if Path(manifest).is_file() else None)
    bundles = {"benchmark": resolver.bundle(evalrun.spec.benchmark, "benchmark", "spec.benchmark")}
    if evalrun.spec.answers:
        bundles["answers"] = resolver.bundle(evalrun.spec.answers, "answers", "spec.answers")
    if evalrun.spec.human_ratings:
        ratings = evalrun.spec.human_ratings
        ref = InputRef(artifact_ref=ratings.artifact_ref, source=ratings.source, format="jsonl")
        bundles["humanRatings"] = resolver.bundle(ref, "results", "spec.humanRatings")
        human_table(bundles["humanRatings"].records, spec["humanRatings"], "spec.humanRatings")
    adapter = get_benchmark(bundles["benchmark"].format)
    answers = bundles.get("answers")
    try:
        items, warnings = adapter.work_items(
            bundles["benchmark"].records, answers.records if answers else None, spec
        )
    except ValueError as exc:
        raise InputError(f"{manifest}: {exc}") from None
    warnings = [*(answers.warnings if answers else []), *warnings]
    return Resolved(evalrun, spec, base_dir, bundles, items, warnings)


def prepare(
    manifest: Path,
    store_url: str,
    name: str | None = None,
    fresh: bool = False,
    overrides: dict[str, Any] | None = None,
    resolved: Resolved | None = None,
) -> LocalRun:
    """Validate, resolve and plan; raises ManifestError / InputError before any work is done."""
    resolved = resolved or resolve(manifest, name, overrides)
    evalrun, spec = resolved.evalrun, resolved.spec
    store = open_store(store_url)
    for bundle in resolved.bundles.values():
        store_bundle(store, bundle)
    adapter = get_benchmark(resolved.bundles["benchmark"].format)
    meta = evalrun.metadata
    layout = RunLayout.for_run(meta.namespace, meta.name, run_uid(spec, resolved.inputs))
    if fresh:
        store.delete_prefix(layout.prefix + "/")
    plan, manifests = plan_run(
        adapter, spec, resolved.items, layout.prefix, resolved.inputs, resolved.warnings
    )
    write_plan(store, plan, manifests, resolved.items)
    return LocalRun(evalrun, spec, plan, store, resolved.base_dir)


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        out[key] = (
            _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
        )
    return out


def _init_worker() -> None:
    # Die with the parent: a SIGKILLed `proctor run` must not leave workers (or their sandboxes) running.
    from proctor_jobs.oracle import linux

    linux.set_parent_death_signal()
    # Ctrl-C reaches the whole process group: the parent alone decides (it kills the workers at once),
    # so workers neither print tracebacks nor finish their shards first.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _shard_task(store_url: str, run_prefix: str, stage: str, index: int) -> ShardOutcome:
    store = open_store(store_url)
    return run_shard(store, run_prefix, stage, index, worker=f"local-{os.getpid()}")


ProgressCallback = Callable[[str, dict[str, int]], None]


def execute(
    run: LocalRun, workers: int, on_progress: ProgressCallback | None = None, poll_s: float = 0.5
) -> RunResult:
    """Run every unfinished shard; stage k+1 of a shard starts once stage k of that shard is done."""
    plan, store = run.plan, run.store
    stages = plan.active_stages
    pending = [(0, i) for i in range(stages[0].shards)] if stages else []
    outcomes: list[ShardOutcome] = []
    errors: list[str] = []
    context = multiprocessing.get_context("spawn")  # the parent has threads (progress display)
    _start_quiet_resource_tracker()
    pool = cf.ProcessPoolExecutor(max_workers=max(1, workers), mp_context=context, initializer=_init_worker)
    try:
        _run_shards(pool, run, stages, pending, outcomes, errors, on_progress, poll_s)
    except BaseException:  # Ctrl-C above all: stop within a moment, not after the running shards
        _kill_workers(pool)  # every record written so far stays: the next run resumes from there
        raise
    pool.shutdown(wait=True)
    if on_progress:
        _report_progress(store, plan, on_progress)
    return _result(run, outcomes, errors)


def _start_quiet_resource_tracker() -> None:
    """Start multiprocessing's resource tracker with its stderr on /dev/null. A run stopped by Ctrl-C
    exits at once (`proctor.cli.run`), without the pool's clean-up: the tracker then removes the pool's
    semaphores itself, as it should, but would also print a warning about each over the one line the
    user is promised."""
    from multiprocessing import resource_tracker

    stderr = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        resource_tracker.ensure_running()
    finally:
        os.dup2(stderr, 2)
        os.close(stderr)
        os.close(devnull)


def _kill_workers(pool: cf.ProcessPoolExecutor) -> None:
    """Stop now: SIGKILL the workers and every process they started, and drop the queue.

    The sandboxes and browsers also die with their worker (parent-death signals), but a child still
    starting when its worker is killed has not asked for that yet: it would live on, holding the
    terminal's output open and the machine's CPU."""
    processes = list((getattr(pool, "_processes", None) or {}).values())
    tree = [pid for process in processes if process.pid for pid in descendants(process.pid)]
    for process in processes:
        with contextlib.suppress(Exception):
            process.kill()
    for pid in tree:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        with contextlib.suppress(Exception):
            process.join(1.0)


def descendants(pid: int) -> list[int]:
    """Every process below `pid` now (children first), read from /proc; empty where /proc says nothing."""
    found: list[int] = []
    queue = [pid]
    while queue:
        parent = queue.pop(0)
        try:
            tasks = os.listdir(f"/proc/{parent}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                with open(f"/proc/{parent}/task/{task}/children") as handle:
                    children = [int(c) for c in handle.read().split()]
            except (OSError, ValueError):
                continue
            for child in children:
                if child not in found:
                    found.append(child)
                    queue.append(child)
    return found


def _run_shards(pool, run, stages, pending, outcomes, errors, on_progress, poll_s) -> None:
    """Submit each shard's first stage, then the stages that read a stage as it finishes."""
    plan, store = run.plan, run.store
    futures: dict[cf.Future, tuple[int, int]] = {}

    def submit(stage_pos: int, index: int) -> None:
        stage = stages[stage_pos]
        futures[pool.submit(_shard_task, store.url, plan.run_prefix, stage.name, index)] = (
            stage_pos,
            index,
        )

    for stage_pos, index in pending:
        submit(stage_pos, index)
    last_poll = 0.0
    while futures:
        done, _ = cf.wait(list(futures), timeout=poll_s, return_when=cf.FIRST_COMPLETED)
        for future in done:
            stage_pos, index = futures.pop(future)
            try:
                outcomes.append(future.result())
            except Exception as exc:  # the shard itself failed (store error, worker crash)
                errors.append(f"{stages[stage_pos].name}[{index}]: {type(exc).__name__}: {exc}")
                continue
            # Every stage reading this one's records may start on the shard (several judges at once).
            for after, stage in enumerate(stages):
                if stage.upstream == stages[stage_pos].name:
                    submit(after, index)
        if on_progress and time.monotonic() - last_poll >= poll_s:
            last_poll = time.monotonic()
            _report_progress(store, plan, on_progress)


def _result(run: LocalRun, outcomes: list[ShardOutcome], errors: list[str]) -> RunResult:
    plan, store = run.plan, run.store
    finished = all_shards_finished(store, plan)
    env = environment_errors(collect_records(store, plan))
    if env:
        reasons = Counter(env.values())
        first, count = reasons.most_common(1)[0]
        errors.append(
            f"{len(env)} item(s) could not be evaluated on this machine ({count}: {first}); they are not "
            "scored. Install what is missing (`proctor doctor`) and run again: they are redone."
        )
    phase = "Succeeded" if finished and not errors else "Failed"
    meta = run.evalrun.metadata
    about = {"name": meta.name, "namespace": meta.namespace}
    if phase == "Failed":  # the reports say why, as a run in the cluster's do
        about |= {
            "reason": "ShardsFailed" if not env else "EnvironmentFailure",
            "message": "; ".join(errors) or "not every shard finished",
        }
    summary, records = write_results(store, plan, run.spec, about, phase)
    processed_ids: set[str] = set()
    for outcome in outcomes:
        processed_ids.update(outcome.processed_ids)
    failed_ids = {
        i
        for stage_records in records.values()
        for i, r in stage_records.items()
        if r.status in ("failed", "env_error")
    }
    per_stage = {
        stage.name: {
            "processed": sum(o.processed for o in outcomes if o.stage == stage.name),
            "reused": sum(o.reused for o in outcomes if o.stage == stage.name),
            "failed": sum(r.status in ("failed", "env_error") for r in records.get(stage.name, {}).values()),
        }
        for stage in plan.active_stages
    }
    total = plan.total_items
    return RunResult(
        stages=per_stage,
        name=meta.name,
        phase=phase,
        run_prefix=plan.run_prefix,
        store_url=store.url,
        summary=summary,
        total=total,
        processed=len(processed_ids),
        reused=total - len(processed_ids),
        failed=len(failed_ids),
        errors=errors,
    )


def _report_progress(store: Store, plan: Plan, on_progress: ProgressCallback) -> None:
    layout = plan.layout
    for stage in plan.active_stages:
        totals = {"total": stage.items, "ok": 0, "failed": 0, "skipped": 0, "env_error": 0, "note": ""}
        for index in range(stage.shards):
            progress = store.get_json_or(layout.progress(stage.name, index)) or {}
            if not progress and shard_finished(store, layout, stage.name, index):
                continue
            for key in ("ok", "failed", "skipped", "env_error"):
                totals[key] += int(progress.get(key, 0))
            if progress.get("note") and not progress.get("done") and not totals["note"]:
                totals["note"] = progress["note"]
        on_progress(stage.name, totals)

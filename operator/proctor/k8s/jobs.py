"""Worker Jobs: one Indexed Job per stage, or one Job per item for heavy heterogeneous items.

Worker pods are hardened as every Proctor pod is (`k8s/pods.py`: non-root, read-only root, no
service-account token, all capabilities dropped, the admin's seccomp profile and runtime class). Evictions
and other disruptions do not count against a shard's retries (`podFailurePolicy`), and a replacement
pod starts only after the old one is gone (`podReplacementPolicy: Failed`), so two pods never work
the same shard at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from proctor.config import OperatorConfig
from proctor.k8s.names import (
    COMPONENT_LABEL,
    ITEM_INDEX_LABEL,
    MANAGED_BY,
    QUEUE_LABEL,
    STAGE_LABEL,
    dns_label,
    item_job_name,
    owner_reference,
    run_labels,
    stage_job_name,
)
from proctor.k8s.pods import hardened_pod

WORKSPACE = "/workspace"


@dataclass
class WorkerContext:
    """Everything about a run that shapes its worker pods."""

    namespace: str
    run_name: str
    run_uid: str
    spec: dict[str, Any]  # EvalRun.spec, camelCase
    run_prefix: str
    store_url: str
    config: OperatorConfig
    store_env: dict[str, str] = field(default_factory=dict)
    credentials_secret: str | None = None
    judge_api_key: dict[str, str] | None = None  # {"name": secret, "key": key}
    #: an additional judge's stage -> its own key (stages not named here get `judge_api_key`)
    stage_api_keys: dict[str, dict[str, str]] = field(default_factory=dict)

    def api_key_for(self, stage: str) -> dict[str, str] | None:
        return self.stage_api_keys.get(stage) or self.judge_api_key

    @property
    def owner(self) -> dict[str, Any]:
        return owner_reference("proctor.dev/v1alpha1", "EvalRun", self.run_name, self.run_uid)

    @property
    def suspended(self) -> bool:
        # Kueue admits a Job by unsuspending it; without Kueue, spec.suspend drives it directly.
        return bool(self.spec.get("suspend")) or bool(self.spec.get("queueName"))


#: The only stage kinds that talk to a model and so get the judge's API key; pods that run or render
#: answers never hold it (docs/security.md).
MODEL_STAGES = frozenset({"judge", "generate"})


def _env(ctx: WorkerContext, model_key: bool = False, stage: str = "") -> list[dict[str, Any]]:
    env = [{"name": "PROCTOR_RUN", "value": f"{ctx.namespace}/{ctx.run_name}"}]
    env += [{"name": k, "value": v} for k, v in sorted(ctx.store_env.items())]
    key = ctx.api_key_for(stage)
    if key and model_key:
        env.append({"name": "PROCTOR_JUDGE_API_KEY", "valueFrom": {"secretKeyRef": {**key}}})
    env += [{"name": k, "value": str(v)} for k, v in sorted((ctx.spec.get("env") or {}).items())]
    return env


def _resources(ctx: WorkerContext) -> dict[str, Any]:
    requested = {k: v for k, v in (ctx.spec.get("resources") or {}).items() if v}
    return requested or {k: dict(v) for k, v in ctx.config.default_resources.items()}


def _pod_template(
    ctx: WorkerContext,
    labels: dict[str, str],
    image: str,
    args: list[str],
    *,
    privileged: bool = False,
    resources: dict[str, Any] | None = None,
    volumes: list[dict] | None = None,
    mounts: list[dict] | None = None,
    env: list[dict] | None = None,
    node_selector: dict[str, str] | None = None,
    tolerations: list[dict] | None = None,
    model_key: bool = False,
    stage: str = "",
    command: list[str] | None = None,
) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": "worker",
        "image": image,
        "command": list(command or ctx.config.worker_command),
        "args": args,
        "env": _env(ctx, model_key, stage) + (env or []),
        "resources": resources if resources is not None else _resources(ctx),
        "volumeMounts": list(mounts or []),
    }
    if ctx.credentials_secret:
        container["envFrom"] = [{"secretRef": {"name": ctx.credentials_secret}}]
    spec = hardened_pod(
        ctx.config,
        container,
        privileged=privileged,
        runtime_class=ctx.spec.get("runtimeClassName"),
        node_selector=node_selector,
        tolerations=tolerations,
        volumes=volumes,
    )
    if ctx.spec.get("serviceAccountName"):
        spec["serviceAccountName"] = ctx.spec["serviceAccountName"]
    if ctx.spec.get("imagePullSecrets"):
        spec["imagePullSecrets"] = [dict(s) for s in ctx.spec["imagePullSecrets"]]
    return {"metadata": {"labels": labels}, "spec": spec}


def _failure_policy() -> dict[str, Any]:
    # A pod evicted or preempted did nothing wrong: retry the shard without spending its budget.
    return {
        "rules": [{"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]}]
    }


def _job(ctx: WorkerContext, name: str, labels: dict[str, str], job_spec: dict[str, Any]) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "name": name,
        "namespace": ctx.namespace,
        "labels": dict(labels),
        "ownerReferences": [ctx.owner],
    }
    if ctx.spec.get("queueName"):
        metadata["labels"][QUEUE_LABEL] = ctx.spec["queueName"]
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": metadata, "spec": job_spec}


def _worker_args(ctx: WorkerContext, stage: str, index: int | None = None) -> list[str]:
    wait = int((ctx.spec.get("timeouts") or {}).get("waitUpstreamSeconds", 86400))
    args = ["--store", ctx.store_url, "--run", ctx.run_prefix, "--stage", stage, "--wait-upstream", str(wait)]
    if index is not None:
        args += ["--index", str(index)]
    return args


def build_stage_job(ctx: WorkerContext, stage: str, kind: str, shards: int) -> dict[str, Any]:
    """One Indexed Job for a stage: `completions` = shards, each pod works shard JOB_COMPLETION_INDEX."""
    labels = {**run_labels(ctx.run_name, ctx.run_uid), STAGE_LABEL: stage, COMPONENT_LABEL: "worker"}
    retries = ctx.spec.get("retries") or {}
    image = ctx.config.image_for(kind, ctx.spec.get("images"))
    job_spec: dict[str, Any] = {
        "completionMode": "Indexed",
        "completions": shards,
        "parallelism": min(int(ctx.spec.get("parallelism", 4)), shards),
        "backoffLimitPerIndex": int(retries.get("backoffLimitPerIndex", 2)),
        "podFailurePolicy": _failure_policy(),
        "podReplacementPolicy": "Failed",
        "suspend": ctx.suspended,
        "template": _pod_template(
            ctx, labels, image, _worker_args(ctx, stage), model_key=kind in MODEL_STAGES, stage=stage
        ),
    }
    if retries.get("maxFailedIndexes") is not None:
        job_spec["maxFailedIndexes"] = int(retries["maxFailedIndexes"])
    deadline = (ctx.spec.get("timeouts") or {}).get("stageSeconds")
    if deadline:
        job_spec["activeDeadlineSeconds"] = int(deadline)
    return _job(ctx, stage_job_name(ctx.run_name, stage), labels, job_spec)


#: the component label of a run's aggregate Job (not a stage: the run's phase does not count it)
AGGREGATE_COMPONENT = "aggregate"
#: an aggregate Job that has not finished in this long has failed (its pod could not even start)
AGGREGATE_DEADLINE_SECONDS = 900


def aggregate_job_name(run_name: str, request_id: str) -> str:
    return dns_label(run_name, "aggregate", request_id[:8])


def build_aggregate_job(ctx: WorkerContext, request_id: str) -> dict[str, Any]:
    """The Job that writes a finished run's summary, reports and records (`proctor aggregate`): the
    records it reads were written by answers' code and the reports hold their images, so this runs in
    a worker pod, confined like the stages, never in the operator. One per request: a run that is
    finished again (a judge added) gets a new one."""
    labels = {**run_labels(ctx.run_name, ctx.run_uid), COMPONENT_LABEL: AGGREGATE_COMPONENT}
    job_spec: dict[str, Any] = {
        "completions": 1,
        "parallelism": 1,
        "backoffLimit": 2,
        "activeDeadlineSeconds": AGGREGATE_DEADLINE_SECONDS,
        "podFailurePolicy": _failure_policy(),
        "template": _pod_template(
            ctx,
            labels,
            ctx.config.image_for("default"),  # Proctor's own image, not one the run names
            ["--store", ctx.store_url, "--run", ctx.run_prefix],
            command=list(ctx.config.aggregate_command),
        ),
    }
    job = _job(ctx, aggregate_job_name(ctx.run_name, request_id), labels, job_spec)
    job["metadata"]["labels"].pop(QUEUE_LABEL, None)  # the run was admitted; its report need not queue
    return job


def build_item_job(
    ctx: WorkerContext, stage: str, kind: str, index: int, item: dict[str, Any]
) -> dict[str, Any]:
    """One Job for one heavy item (ArtEvalBench): its own image, GPU, deadline and workspace."""
    labels = {
        **run_labels(ctx.run_name, ctx.run_uid),
        STAGE_LABEL: stage,
        COMPONENT_LABEL: "worker",
        ITEM_INDEX_LABEL: str(index),
    }
    wants = item.get("job") or {}
    image = wants.get("image") or ctx.config.image_for(kind, ctx.spec.get("images"))
    privileged = bool(wants.get("privileged")) and bool((ctx.spec.get("oracle") or {}).get("privileged"))
    resources = _resources(ctx)
    node_selector: dict[str, str] = {}
    tolerations: list[dict] = []
    if wants.get("gpu"):
        gpu = ctx.config.gpu_resource
        resources = {
            "requests": {**resources.get("requests", {}), gpu: "1"},
            "limits": {**resources.get("limits", {}), gpu: "1"},
        }
        node_selector = dict(ctx.config.gpu_node_selector)
        tolerations = [dict(t) for t in ctx.config.gpu_tolerations]
    workspace = wants.get("workspace") or "emptyDir"
    volume = (
        {"name": "workspace", "emptyDir": {}}
        if workspace == "emptyDir"
        else {"name": "workspace", "persistentVolumeClaim": {"claimName": workspace}}
    )
    template = _pod_template(
        ctx,
        labels,
        image,
        _worker_args(ctx, stage, index),
        privileged=privileged,
        resources=resources,
        volumes=[volume],
        mounts=[{"name": "workspace", "mountPath": WORKSPACE}],
        env=[{"name": "PROCTOR_WORKSPACE", "value": WORKSPACE}],
        node_selector=node_selector,
        tolerations=tolerations,
    )
    job_spec: dict[str, Any] = {
        "completions": 1,
        "parallelism": 1,
        "backoffLimit": int((ctx.spec.get("retries") or {}).get("backoffLimitPerIndex", 2)),
        "podFailurePolicy": _failure_policy(),
        "podReplacementPolicy": "Failed",
        "suspend": ctx.suspended,
        "template": template,
    }
    if wants.get("timeout_seconds"):
        job_spec["activeDeadlineSeconds"] = int(wants["timeout_seconds"])
    return _job(ctx, item_job_name(ctx.run_name, stage, index), labels, job_spec)


SELFTEST_CASES = "/cases"


def selftest_command(worker_command: list[str]) -> list[str]:
    """The worker's own interpreter running the hostile suite: `proctor-worker` becomes
    `python -m proctor_jobs.selftest` from the same image, `X -m proctor_jobs.worker` becomes
    `X -m proctor_jobs.selftest`."""
    if len(worker_command) >= 3 and worker_command[-2:] == ["-m", "proctor_jobs.worker"]:
        return [*worker_command[:-1], "proctor_jobs.selftest"]
    return ["python", "-m", "proctor_jobs.selftest"]


def build_selftest_job(
    config: OperatorConfig, namespace: str, name: str, cases_configmap: str, args: list[str]
) -> dict[str, Any]:
    """`proctor selftest --cluster`: the hostile suite in a pod hardened exactly as an oracle worker's
    (image, security context, seccomp profile, runtime class, node selector, tolerations from the same
    config), with the cases from a ConfigMap and no store credentials or judge key at all."""
    ctx = WorkerContext(namespace, name, "", {}, "", "", config)
    labels = {**MANAGED_BY, COMPONENT_LABEL: "selftest"}
    template = _pod_template(
        ctx,
        labels,
        config.image_for("oracle"),
        ["--cases", SELFTEST_CASES, "--json", *args],
        volumes=[{"name": "cases", "configMap": {"name": cases_configmap}}],
        mounts=[{"name": "cases", "mountPath": SELFTEST_CASES, "readOnly": True}],
    )
    template["spec"]["containers"][0]["command"] = selftest_command(list(config.worker_command))
    job_spec = {"backoffLimit": 0, "ttlSecondsAfterFinished": 3600, "template": template}
    metadata = {"name": name, "namespace": namespace, "labels": dict(labels)}
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": metadata, "spec": job_spec}

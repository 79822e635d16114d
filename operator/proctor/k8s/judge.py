"""A vLLM judge: Deployment, Service and NetworkPolicy built from a JudgeServer spec.

vLLM's OpenAI-compatible server (`vllm serve`): the model, served name, tensor parallelism, context
length, images per prompt, dtype, GPU memory utilisation and extra arguments come from the spec.
Probes: a startup probe on `/health` with a long budget (loading a 72B model takes many minutes),
readiness on `/v1/models`. `/dev/shm` is a memory volume because tensor-parallel workers exchange
tensors through it. Replicas are left out when the spec leaves them unset, so an autoscaler owns them.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from proctor.config import OperatorConfig
from proctor.k8s.names import (
    COMPONENT_LABEL,
    JUDGE_LABEL,
    MANAGED_BY,
    dns_label,
    label_value,
    owner_reference,
    with_spec_hash,
)
from proctor.k8s.pods import hardened_pod

MODEL_CACHE = "/models"


def judge_selector(name: str) -> dict[str, str]:
    """The labels that pick a judge's vLLM pods (a JudgeServer name may be longer than a label)."""
    return {JUDGE_LABEL: label_value(name), COMPONENT_LABEL: "judge"}


def judge_labels(name: str) -> dict[str, str]:
    return {**MANAGED_BY, **judge_selector(name)}


#: the operator's pods (the chart's selector labels): they run the judge's functional check
OPERATOR_POD = {"app.kubernetes.io/name": "proctor", "app.kubernetes.io/component": "operator"}


def service_name(name: str) -> str:
    return dns_label(name, "judge")


def vllm_args(vllm: dict[str, Any]) -> list[str]:
    """The arguments of `vllm serve` for a JudgeServer's `spec.vllm`: the model first, positional (vLLM
    refuses `--model` with `vllm serve`), then the flags. tests/integration/test_vllm_contract.py parses
    them with the real vLLM's own parser for every vLLM version the docs list."""
    model = vllm["model"]
    if vllm.get("modelCachePvc") and not model.startswith(("/", "hf://", "s3://")) and "/" not in model:
        model = f"{MODEL_CACHE}/{model}"
    args = [
        model,
        "--served-model-name",
        vllm.get("servedModelName") or vllm["model"],
        "--host",
        "0.0.0.0",
        "--port",
        str(vllm.get("port", 8000)),
        "--tensor-parallel-size",
        str(vllm.get("tensorParallelSize", 1)),
        "--dtype",
        vllm.get("dtype", "auto"),
        "--gpu-memory-utilization",
        str(vllm.get("gpuMemoryUtilization", 0.9)),
        "--limit-mm-per-prompt",
        json.dumps({"image": int(vllm.get("imagesPerPrompt", 8))}),
    ]
    if vllm.get("maxModelLen"):
        args += ["--max-model-len", str(vllm["maxModelLen"])]
    return args + list(vllm.get("extraArgs") or [])


def build_deployment(namespace: str, name: str, uid: str, spec: dict[str, Any]) -> dict[str, Any]:
    vllm = spec["vllm"]
    labels = judge_labels(name)
    port = int(vllm.get("port", 8000))
    gpus = int(vllm.get("gpus", 1))
    gpu_resource = vllm.get("gpuResource", "nvidia.com/gpu")
    resources: dict[str, Any] = {"requests": dict(vllm.get("resources") or {}), "limits": {}}
    if gpus:
        resources["requests"][gpu_resource] = str(gpus)
        resources["limits"][gpu_resource] = str(gpus)
    env = [{"name": "VLLM_NO_USAGE_STATS", "value": "1"}, {"name": "HF_HOME", "value": f"{MODEL_CACHE}/hf"}]
    if vllm.get("hfTokenSecretRef"):
        env.append({"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": dict(vllm["hfTokenSecretRef"])}})
    volumes: list[dict[str, Any]] = [
        {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": str(vllm.get("shmSize", "16Gi"))}}
    ]
    mounts = [{"name": "dshm", "mountPath": "/dev/shm"}]
    if vllm.get("modelCachePvc"):
        volumes.append({"name": "models", "persistentVolumeClaim": {"claimName": vllm["modelCachePvc"]}})
        mounts.append({"name": "models", "mountPath": MODEL_CACHE})
    else:
        volumes.append({"name": "models", "emptyDir": {}})
        mounts.append({"name": "models", "mountPath": MODEL_CACHE})
    container = {
        "name": "vllm",
        "image": vllm.get("image"),
        "command": ["vllm", "serve"],
        "args": vllm_args(vllm),
        "ports": [{"name": "http", "containerPort": port}],
        "env": env,
        "resources": resources,
        "volumeMounts": mounts,
        "startupProbe": {
            "httpGet": {"path": "/health", "port": port},
            "periodSeconds": 10,
            "failureThreshold": 180,  # up to 30 minutes to download and load the weights
        },
        "readinessProbe": {
            "httpGet": {"path": "/v1/models", "port": port},
            "periodSeconds": 10,
            "failureThreshold": 3,
        },
        "livenessProbe": {
            "httpGet": {"path": "/health", "port": port},
            "periodSeconds": 20,
            "failureThreshold": 6,
        },
    }
    pod_spec: dict[str, Any] = {"containers": [container], "volumes": volumes}
    if vllm.get("nodeSelector"):
        pod_spec["nodeSelector"] = dict(vllm["nodeSelector"])
    if vllm.get("tolerations"):
        pod_spec["tolerations"] = [dict(t) for t in vllm["tolerations"]]
    if vllm.get("runtimeClassName"):
        pod_spec["runtimeClassName"] = vllm["runtimeClassName"]
    deployment_spec: dict[str, Any] = {
        "selector": {"matchLabels": judge_selector(name)},
        "strategy": {"type": "Recreate"},  # GPUs rarely fit two generations of a big model at once
        "template": {"metadata": {"labels": labels}, "spec": pod_spec},
    }
    if vllm.get("replicas") is not None:
        deployment_spec["replicas"] = int(vllm["replicas"])
    return with_spec_hash(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": service_name(name),
                "namespace": namespace,
                "labels": labels,
                "ownerReferences": [owner_reference("proctor.dev/v1alpha1", "JudgeServer", name, uid)],
            },
            "spec": deployment_spec,
        }
    )


def _child_metadata(namespace: str, name: str, uid: str) -> dict[str, Any]:
    """The Service's and the NetworkPolicy's metadata: the judge's name, labels and owner."""
    return {
        "name": service_name(name),
        "namespace": namespace,
        "labels": judge_labels(name),
        "ownerReferences": [owner_reference("proctor.dev/v1alpha1", "JudgeServer", name, uid)],
    }


def build_service(namespace: str, name: str, uid: str, spec: dict[str, Any]) -> dict[str, Any]:
    port = int(spec["vllm"].get("port", 8000))
    return with_spec_hash(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": _child_metadata(namespace, name, uid),
            "spec": {
                "selector": judge_selector(name),
                "ports": [{"name": "http", "port": port, "targetPort": port}],
            },
        }
    )


def build_judge_network_policy(namespace: str, name: str, uid: str, spec: dict[str, Any]) -> dict[str, Any]:
    """Who may call a vLLM judge: Proctor's worker pods in its namespace (the judge and generate stages),
    its calibration Job and the operator (its functional check), on the serving port only; any other
    pod in the cluster is refused. (Answers' code in render and oracle pods runs without a network of
    its own: the hermetic browser, the sandbox's empty network namespace.) Egress stays open: vLLM may
    download its weights."""
    port = int(spec["vllm"].get("port", 8000))
    return with_spec_hash(
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": _child_metadata(namespace, name, uid),
            "spec": {
                "podSelector": {"matchLabels": judge_selector(name)},
                "policyTypes": ["Ingress"],
                "ingress": [
                    {
                        "from": [
                            {"podSelector": {"matchLabels": {**MANAGED_BY, COMPONENT_LABEL: "worker"}}},
                            {"podSelector": {"matchLabels": {**MANAGED_BY, COMPONENT_LABEL: CALIBRATION}}},
                            {"namespaceSelector": {}, "podSelector": {"matchLabels": dict(OPERATOR_POD)}},
                        ],
                        "ports": [{"protocol": "TCP", "port": port}],
                    }
                ],
            },
        }
    )


def judge_children(namespace: str, name: str, uid: str, spec: dict[str, Any]) -> list[dict[str, Any]]:
    """Everything a vLLM JudgeServer owns, in the order it is applied (the policy before the pods)."""
    return [
        build_judge_network_policy(namespace, name, uid, spec),
        build_service(namespace, name, uid, spec),
        build_deployment(namespace, name, uid, spec),
    ]


def in_cluster_endpoint(namespace: str, name: str, spec: dict[str, Any]) -> str:
    port = int(spec["vllm"].get("port", 8000))
    return f"http://{service_name(name)}.{namespace}.svc:{port}/v1"


# --- calibration -------------------------------------------------------------------------------------

CALIBRATION = "calibration"
#: a calibration asks a handful of items with bounded timeouts (proctor_jobs.judge.calibration)
CALIBRATION_DEADLINE_SECONDS = 900
#: a finished calibration Job is kept this long: its verdict is in the JudgeServer's status by then
CALIBRATION_TTL_SECONDS = 3600
TERMINATION_LOG = "/dev/termination-log"


def calibration_fingerprint(endpoint: str, model: str, choice: str) -> str:
    """What a passed calibration vouches for: a new endpoint, model or calibration set needs a new one."""
    return hashlib.sha256(json.dumps([endpoint, model, choice]).encode()).hexdigest()[:10]


def calibration_job_name(name: str, fingerprint: str, attempt: int) -> str:
    return dns_label(name, "calibrate", fingerprint[:8], str(attempt))


def build_calibration_job(
    namespace: str,
    name: str,
    uid: str,
    *,
    endpoint: str,
    model: str,
    choice: str,
    attempt: int,
    api_key: dict[str, str] | None,
    config: OperatorConfig,
) -> dict[str, Any]:
    """The Job that asks a JudgeServer the calibration items (`proctor judge check`) and leaves its
    verdict as the pod's termination message. It runs the judge client and the benchmarks' judge
    stages (openai, Pillow), so it runs in Proctor's worker image, hardened like a worker pod — never
    in the operator, whose image holds only the control plane. Its only input is the calibration set
    Proctor ships; the external judge's API key comes from the JudgeServer's own Secret."""
    fingerprint = calibration_fingerprint(endpoint, model, choice)
    labels = {**MANAGED_BY, JUDGE_LABEL: label_value(name), COMPONENT_LABEL: CALIBRATION}
    env = []
    if api_key:
        env.append({"name": "PROCTOR_JUDGE_API_KEY", "valueFrom": {"secretKeyRef": dict(api_key)}})
    container = {
        "name": "calibrate",
        "image": config.image_for("default"),
        "command": list(config.calibrate_command),
        "args": [
            "--judge-url",
            endpoint,
            "--model",
            model,
            "--benchmark",
            choice,
            "--result-file",
            TERMINATION_LOG,
        ],
        "env": env,
        "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}},
        "terminationMessagePath": TERMINATION_LOG,
        "terminationMessagePolicy": "File",
    }
    pod = hardened_pod(config, container)
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": calibration_job_name(name, fingerprint, attempt),
            "namespace": namespace,
            "labels": labels,
            "ownerReferences": [owner_reference("proctor.dev/v1alpha1", "JudgeServer", name, uid)],
        },
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": CALIBRATION_DEADLINE_SECONDS,
            "ttlSecondsAfterFinished": CALIBRATION_TTL_SECONDS,
            "template": {"metadata": {"labels": labels}, "spec": pod},
        },
    }

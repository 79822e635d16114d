"""The operator's own configuration: where the store is, which images workers use, how pods run.

Every setting comes from a `PROCTOR_*` environment variable (the Helm chart sets them) or the
matching `proctor operator` flag. Pure data: no I/O beyond reading the environment.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from typing import Any

from proctor import __version__

DEFAULT_IMAGE = f"ghcr.io/proctor-dev/proctor-worker:{__version__}"


def _env_json(name: str, default: Any) -> Any:
    raw = os.environ.get(name)
    return json.loads(raw) if raw else default


def _env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    return default if raw is None else raw.strip().lower() in ("1", "true", "yes", "on")


@dataclass
class OperatorConfig:
    #: namespaces to watch; empty means the whole cluster
    namespaces: list[str] = field(default_factory=list)
    #: the default store for runs and artifacts (s3://bucket/prefix); EvalRun.spec.storage overrides
    store_url: str = "s3://proctor/proctor"
    store_endpoint: str | None = None
    store_region: str | None = None
    store_addressing: str = "auto"
    #: a Secret (in each run's namespace) with AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY for worker pods
    store_credentials_secret: str | None = None
    #: worker images per stage kind ("default" for the rest)
    images: dict[str, str] = field(default_factory=lambda: {"default": DEFAULT_IMAGE})
    image_pull_policy: str = "IfNotPresent"
    #: how a worker pod starts the shard loop (the image's entry point)
    worker_command: list[str] = field(default_factory=lambda: ["proctor-worker"])
    #: how an ingest Job validates and stores a large Artifact source
    ingest_command: list[str] = field(default_factory=lambda: ["proctor", "ingest"])
    runtime_class_name: str | None = None
    node_selector: dict[str, str] = field(default_factory=dict)
    tolerations: list[dict[str, Any]] = field(default_factory=list)
    run_as_user: int = 10001
    #: the seccomp profile of worker pods. RuntimeDefault forbids the user namespaces the sandbox's
    #: `userns` tier needs; a Localhost profile that allows them is shipped with the chart
    #: (docs/security.md)
    worker_seccomp_profile: dict[str, Any] = field(default_factory=lambda: {"type": "RuntimeDefault"})
    #: how a per-item Job asking for a GPU (ArtEvalBench `gpu: true`) is placed
    gpu_resource: str = "nvidia.com/gpu"
    gpu_node_selector: dict[str, str] = field(default_factory=dict)
    gpu_tolerations: list[dict[str, Any]] = field(
        default_factory=lambda: [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    )
    network_policy: bool = True
    #: CIDRs worker pods may reach for the store (the S3 endpoint); DNS is always allowed
    store_egress_cidrs: list[str] = field(default_factory=list)
    #: seconds between reconciliations of an active run (progress, Jobs, status)
    resync_seconds: float = 3.0
    #: seconds between reconciliations of each JudgeServer
    judge_resync_seconds: float = 5.0
    #: a run's status is patched at once on a phase change, and at most this often for progress alone
    status_interval_seconds: float = 10.0
    #: leader election: a Lease in this namespace (empty: no election, a single replica is assumed)
    leader_election_namespace: str = ""
    #: seconds between functional checks of a Ready judge (a failure makes it Degraded)
    judge_recheck_seconds: float = 60.0
    #: how long a finished run's metric series stay before they are dropped
    metrics_retention_seconds: float = 600.0
    #: judge requests in flight per worker when the JudgeServer's budget cannot be split further
    min_judge_concurrency: int = 1
    default_resources: dict[str, dict[str, str]] = field(
        default_factory=lambda: {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"memory": "4Gi"}}
    )

    @classmethod
    def from_env(cls) -> OperatorConfig:
        base = cls()
        namespaces = os.environ.get("PROCTOR_NAMESPACES", "")
        return cls(
            namespaces=[n.strip() for n in namespaces.split(",") if n.strip()],
            store_url=os.environ.get("PROCTOR_STORE", base.store_url),
            store_endpoint=os.environ.get("PROCTOR_S3_ENDPOINT") or os.environ.get("AWS_ENDPOINT_URL"),
            store_region=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION"),
            store_addressing=os.environ.get("PROCTOR_S3_ADDRESSING", base.store_addressing),
            store_credentials_secret=os.environ.get("PROCTOR_STORE_CREDENTIALS_SECRET") or None,
            images={**base.images, **_env_json("PROCTOR_WORKER_IMAGES", {})},
            image_pull_policy=os.environ.get("PROCTOR_IMAGE_PULL_POLICY", base.image_pull_policy),
            worker_command=_env_json("PROCTOR_WORKER_COMMAND", base.worker_command),
            ingest_command=_env_json("PROCTOR_INGEST_COMMAND", base.ingest_command),
            runtime_class_name=os.environ.get("PROCTOR_RUNTIME_CLASS") or None,
            node_selector=_env_json("PROCTOR_WORKER_NODE_SELECTOR", {}),
            tolerations=_env_json("PROCTOR_WORKER_TOLERATIONS", []),
            run_as_user=int(os.environ.get("PROCTOR_WORKER_RUN_AS_USER", base.run_as_user)),
            worker_seccomp_profile=_env_json("PROCTOR_WORKER_SECCOMP_PROFILE", base.worker_seccomp_profile),
            gpu_resource=os.environ.get("PROCTOR_GPU_RESOURCE", base.gpu_resource),
            gpu_node_selector=_env_json("PROCTOR_GPU_NODE_SELECTOR", {}),
            gpu_tolerations=_env_json("PROCTOR_GPU_TOLERATIONS", base.gpu_tolerations),
            network_policy=_env_bool("PROCTOR_NETWORK_POLICY", base.network_policy),
            store_egress_cidrs=_env_json("PROCTOR_STORE_EGRESS_CIDRS", []),
            resync_seconds=float(os.environ.get("PROCTOR_RESYNC_SECONDS", base.resync_seconds)),
            judge_recheck_seconds=float(
                os.environ.get("PROCTOR_JUDGE_RECHECK_SECONDS", base.judge_recheck_seconds)
            ),
            judge_resync_seconds=float(
                os.environ.get("PROCTOR_JUDGE_RESYNC_SECONDS", base.judge_resync_seconds)
            ),
            status_interval_seconds=float(
                os.environ.get("PROCTOR_STATUS_INTERVAL_SECONDS", base.status_interval_seconds)
            ),
            leader_election_namespace=os.environ.get(
                "PROCTOR_LEADER_ELECTION_NAMESPACE", base.leader_election_namespace
            ),
            metrics_retention_seconds=float(
                os.environ.get("PROCTOR_METRICS_RETENTION_SECONDS", base.metrics_retention_seconds)
            ),
            default_resources=_env_json("PROCTOR_WORKER_RESOURCES", base.default_resources),
        )

    def image_for(self, kind: str, overrides: dict[str, str | None] | None = None) -> str:
        overrides = overrides or {}
        return (
            overrides.get(kind)
            or overrides.get("default")
            or self.images.get(kind)
            or self.images.get("default")
            or DEFAULT_IMAGE
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

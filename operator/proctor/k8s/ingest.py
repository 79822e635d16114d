"""The ingest Job: `proctor ingest` fetches an Artifact's S3 or HTTP source in a pod — streamed,
size-capped, hashed while it streams, with the namespace's store credentials — and leaves its outcome
in the store for the operator to read. A tenant's URL is never fetched in the operator's process."""

from __future__ import annotations

import json
from typing import Any

from proctor.config import OperatorConfig
from proctor.k8s.names import MANAGED_BY, dns_label, label_value, owner_reference
from proctor.k8s.netpol import ingest_pod_labels
from proctor.k8s.pods import hardened_pod


def ingest_result_key(namespace: str, name: str, uid: str, generation: int | None) -> str:
    return f"ingest/{namespace}/{name}/{uid}-{generation or 0}.json"


def build_ingest_job(
    config: OperatorConfig,
    body: dict[str, Any],
    store_url: str,
    env: dict[str, str],
    secret: str | None,
) -> dict[str, Any]:
    meta, spec = body["metadata"], body["spec"]
    result = ingest_result_key(meta["namespace"], meta["name"], meta["uid"], meta.get("generation"))
    args = [
        "--source",
        json.dumps(spec["source"]),
        "--format",
        spec["format"],
        "--type",
        spec["type"],
        "--store",
        store_url,
        "--result",
        result,
        "--label",
        f"Artifact {meta['namespace']}/{meta['name']}",
        "--max-bytes",
        str(config.ingest_max_bytes),
    ]
    container: dict[str, Any] = {
        "name": "ingest",
        "image": config.image_for("default"),
        "command": list(config.ingest_command),
        "args": args,
        "env": [{"name": k, "value": v} for k, v in sorted(env.items())],
        "resources": {
            "requests": {"cpu": "100m", "memory": "256Mi"},
            "limits": {"memory": config.ingest_memory},
        },
    }
    if secret:
        container["envFrom"] = [{"secretRef": {"name": secret}}]
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": dns_label(meta["name"], "ingest", str(meta.get("generation") or 0)),
            "namespace": meta["namespace"],
            "labels": {
                **MANAGED_BY,
                "proctor.dev/artifact": label_value(meta["name"]),
                "proctor.dev/component": "ingest",
            },
            "ownerReferences": [
                owner_reference("proctor.dev/v1alpha1", "Artifact", meta["name"], meta["uid"])
            ],
        },
        "spec": {
            "backoffLimit": 3,
            "ttlSecondsAfterFinished": 3600,
            "template": {
                "metadata": {"labels": ingest_pod_labels(meta["name"])},
                "spec": hardened_pod(config, container),
            },
        },
    }

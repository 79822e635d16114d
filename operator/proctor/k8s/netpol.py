"""A default-deny egress NetworkPolicy per run: worker pods may reach DNS, the store and the judge."""

from __future__ import annotations

from typing import Any

from proctor.k8s.jobs import WorkerContext
from proctor.k8s.judge import judge_selector
from proctor.k8s.names import (
    COMPONENT_LABEL,
    MANAGED_BY,
    RUN_UID_LABEL,
    dns_label,
    label_value,
    owner_reference,
    run_labels,
    with_spec_hash,
)

#: set on an ingest Job's pods: which Artifact they fetch for (the ingest policy selects by it)
INGEST_ARTIFACT_LABEL = "proctor.dev/artifact"


def ingest_pod_labels(artifact: str) -> dict[str, str]:
    return {COMPONENT_LABEL: "ingest", INGEST_ARTIFACT_LABEL: label_value(artifact)}


def build_network_policy(
    ctx: WorkerContext,
    judge_server: str | None = None,
    judge_port: int | None = None,
    external_judge: bool = False,
    judge_servers: list[tuple[str, int | None]] | None = None,
) -> dict[str, Any]:
    """`judge_servers`: (JudgeServer, port) of every vLLM judge of a run with several judges."""
    egress: list[dict[str, Any]] = [
        {
            "to": [{"namespaceSelector": {}, "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
            "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
        }
    ]
    if ctx.config.store_egress_cidrs:
        egress.append({"to": [{"ipBlock": {"cidr": c}} for c in ctx.config.store_egress_cidrs]})
    servers = ([(judge_server, judge_port)] if judge_server else []) + list(judge_servers or [])
    for server, port in dict.fromkeys(servers):
        rule: dict[str, Any] = {"to": [{"podSelector": {"matchLabels": judge_selector(server)}}]}
        if port:
            rule["ports"] = [{"protocol": "TCP", "port": port}]
        egress.append(rule)
    if external_judge:
        # A hosted judge has no stable address; HTTPS anywhere is the narrowest rule that works.
        egress.append({"ports": [{"protocol": "TCP", "port": 443}]})
    return with_spec_hash(
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {
                "name": dns_label(ctx.run_name, "workers"),
                "namespace": ctx.namespace,
                "labels": run_labels(ctx.run_name, ctx.run_uid),
                "ownerReferences": [ctx.owner],
            },
            "spec": {
                "podSelector": {"matchLabels": {RUN_UID_LABEL: ctx.run_uid, COMPONENT_LABEL: "worker"}},
                "policyTypes": ["Ingress", "Egress"],
                "ingress": [],
                "egress": egress,
            },
        }
    )


#: addresses an ingest pod must never reach, whatever URL it is given: link-local (cloud metadata
#: services at 169.254.169.254), loopback, and the private ranges clusters and their nodes live in
INGEST_BLOCKED_CIDRS = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16", "127.0.0.0/8")


def build_ingest_network_policy(
    namespace: str, owner: dict[str, Any], store_cidrs: list[str] | tuple[str, ...] = ()
) -> dict[str, Any]:
    """The ingest pods of one Artifact fetch a URL a tenant wrote: they may reach DNS, the store and
    public addresses, never the cluster's own (the API server, the judge, other tenants' pods, the
    metadata service) — a source URL cannot be used to probe the inside (SSRF). No ingress at all."""
    egress: list[dict[str, Any]] = [
        {
            "to": [{"namespaceSelector": {}, "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
            "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
        },
        {"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": list(INGEST_BLOCKED_CIDRS)}}]},
    ]
    if store_cidrs:  # an in-cluster store (MinIO) lives in a private range: allowed by name
        egress.append({"to": [{"ipBlock": {"cidr": c}} for c in store_cidrs]})
    name = owner["name"]
    return with_spec_hash(
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {
                "name": dns_label(name, "ingest"),
                "namespace": namespace,
                "labels": {**MANAGED_BY, COMPONENT_LABEL: "ingest"},
                "ownerReferences": [owner_reference(owner["apiVersion"], owner["kind"], name, owner["uid"])],
            },
            "spec": {
                "podSelector": {"matchLabels": ingest_pod_labels(name)},
                "policyTypes": ["Ingress", "Egress"],
                "ingress": [],
                "egress": egress,
            },
        }
    )

"""A default-deny egress NetworkPolicy per run: worker pods may reach DNS, the store and the judge."""

from __future__ import annotations

from typing import Any

from proctor.k8s.jobs import WorkerContext
from proctor.k8s.names import COMPONENT_LABEL, JUDGE_LABEL, RUN_UID_LABEL, dns_label, run_labels


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
        rule: dict[str, Any] = {
            "to": [{"podSelector": {"matchLabels": {JUDGE_LABEL: server, COMPONENT_LABEL: "judge"}}}]
        }
        if port:
            rule["ports"] = [{"protocol": "TCP", "port": port}]
        egress.append(rule)
    if external_judge:
        # A hosted judge has no stable address; HTTPS anywhere is the narrowest rule that works.
        egress.append({"ports": [{"protocol": "TCP", "port": 443}]})
    return {
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

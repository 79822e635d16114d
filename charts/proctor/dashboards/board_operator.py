"""Proctor / Operator: version, reconcile errors, API requests, judges, and queue wait under Kueue."""

from __future__ import annotations

from grafana_foundation_sdk.models import dashboard as dm
from panels import (
    RATE,
    Row,
    Slot,
    dashboard,
    datasource_variable,
    graph,
    note,
    quantiles,
    queries,
    query,
    query_variable,
    single,
)


def overview() -> Row:
    return Row(
        "Operator",
        [
            Slot(
                single(
                    "Version",
                    "proctor_build_info of the running operator (the leader and any standby replica).",
                    [query("proctor_build_info", "{{version}} (Python {{python}})", instant=True)],
                ),
                6,
                4,
            ),
            Slot(
                single(
                    "Runs by phase",
                    "Runs the operator knows of, by phase.",
                    queries(("sum by (phase) (proctor_runs)", "{{phase}}")),
                ),
                6,
                4,
            ),
            Slot(
                single(
                    "JudgeServers not ready",
                    "JudgeServers whose functional check does not pass.",
                    queries(("count(proctor_judgeserver_ready == 0) or vector(0)", "not ready")),
                    steps=(("green", None), ("red", 1)),
                ),
                6,
                4,
            ),
            Slot(
                single(
                    "API requests per processed item (1 h)",
                    "Kubernetes API requests the operator made per item its runs finished, over the last "
                    "hour (the design target is under 0.05).",
                    queries(
                        (
                            "sum(increase(proctor_api_requests_total[1h])) / "
                            "(sum(increase(proctor_items_processed_total[1h])) > 0)",
                            "requests/item",
                        )
                    ),
                    decimals=3,
                ),
                6,
                4,
            ),
            Slot(
                graph(
                    "Reconcile errors by kind and reason",
                    "Failed reconciliations (retried at the next pass); the reason is the error's type.",
                    queries(
                        (
                            f"sum by (kind, reason) (increase(proctor_reconcile_errors_total{RATE}))",
                            "{{kind}} {{reason}}",
                        )
                    ),
                ),
                12,
                8,
            ),
            Slot(
                graph(
                    "API requests by verb and resource",
                    "Requests per second from the operator's client (watches are long-lived and not "
                    "counted).",
                    queries(
                        (
                            f"sum by (verb, resource) (rate(proctor_api_requests_total{RATE}))",
                            "{{verb}} {{resource}}",
                        )
                    ),
                    unit="reqps",
                ),
                12,
                8,
            ),
        ],
    )


def kueue() -> Row:
    return Row(
        "Queue wait (Kueue)",
        [
            Slot(
                note(
                    "How queue wait is measured",
                    "With `spec.queueName` every stage Job is created suspended with Kueue's queue label; "
                    "Kueue makes one Workload per Job and admits it by unsuspending the Job. Queue wait "
                    "is Kueue's own `kueue_admission_wait_time_seconds` histogram (Workload creation to "
                    "admission, per ClusterQueue) — scrape Kueue's controller metrics for these panels. "
                    "Proctor's side: a run none of whose unfinished Jobs is admitted yet has phase "
                    'Queued (`proctor_run_phase{phase="Queued"}`).',
                ),
                24,
                3,
            ),
            Slot(
                graph(
                    "Admission wait p50 / p95",
                    "Time from a stage Job's Workload being created to Kueue admitting it, per ClusterQueue.",
                    queries(
                        *quantiles(
                            "kueue_admission_wait_time_seconds",
                            "cluster_queue",
                            (0.5, 0.95),
                            "{{cluster_queue}}",
                            'cluster_queue=~"$cluster_queue"',
                        )
                    ),
                    unit="s",
                ),
                12,
                8,
            ),
            Slot(
                graph(
                    "Pending workloads",
                    "Workloads waiting in each ClusterQueue (active: can be admitted when quota frees; "
                    "inadmissible: cannot be as things stand).",
                    queries(
                        (
                            "sum by (cluster_queue, status) "
                            '(kueue_pending_workloads{cluster_queue=~"$cluster_queue"})',
                            "{{cluster_queue}} {{status}}",
                        )
                    ),
                ),
                12,
                8,
            ),
        ],
    )


def build() -> dm.Dashboard:
    return dashboard(
        "proctor-operator",
        "Proctor / Operator",
        "The operator's health: version, reconcile errors, API requests, judges, and queue wait under Kueue.",
        [overview(), kueue()],
        [
            datasource_variable(),
            query_variable(
                "cluster_queue", "ClusterQueue", "label_values(kueue_pending_workloads, cluster_queue)"
            ),
        ],
    )

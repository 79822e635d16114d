"""Build the chart's Grafana dashboards (runs.json, judge.json, operator.json) from one description.

    python charts/proctor/dashboards/build.py           # rewrite the JSON files
    python charts/proctor/dashboards/build.py --check   # exit 1 when a file differs (tests run this)

Why generated: three dashboards share variables, data source wiring and panel conventions, and every
query must stay checkable (tests/e2e/test_dashboards.py runs each one against Prometheus after an
end-to-end run; tests/unit/test_chart_dashboards.py type-checks the JSON against @grafana/schema).
Hand-edited JSON drifts; this file is the single source. The JSON is what Grafana imports.

Template variables used in queries: $namespace, $run, $judgeserver, $model, $cluster_queue (all
multi-value regexes) and Grafana's $__rate_interval.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DS = {"type": "prometheus", "uid": "${datasource}"}
SCHEMA_VERSION = 39  # Grafana 10.4 / 11
RUN = 'namespace=~"$namespace", run=~"$run"'
JUDGE = 'namespace=~"$namespace", judgeserver=~"$judgeserver"'
MODEL = 'model_name=~"$model"'


class Board:
    """Panels laid out left to right, top to bottom, on Grafana's 24-column grid."""

    def __init__(self) -> None:
        self.panels: list[dict[str, Any]] = []
        self.x = self.y = self.row_height = 0

    def _place(self, w: int, h: int) -> dict[str, int]:
        if self.x + w > 24:
            self.x, self.y = 0, self.y + self.row_height
            self.row_height = 0
        pos = {"h": h, "w": w, "x": self.x, "y": self.y}
        self.x += w
        self.row_height = max(self.row_height, h)
        return pos

    def row(self, title: str) -> None:
        if self.x:
            self.x, self.y = 0, self.y + self.row_height
        self.panels.append(
            {
                "type": "row",
                "id": len(self.panels) + 1,
                "title": title,
                "collapsed": False,
                "gridPos": {"h": 1, "w": 24, "x": 0, "y": self.y},
                "panels": [],
            }
        )
        self.y += 1
        self.row_height = 0

    def add(self, panel: dict[str, Any], w: int, h: int) -> None:
        panel["id"] = len(self.panels) + 1
        panel["gridPos"] = self._place(w, h)
        self.panels.append(panel)


def target(expr: str, legend: str = "", ref: str = "A", instant: bool = False, table: bool = False):
    t: dict[str, Any] = {
        "datasource": DS,
        "refId": ref,
        "expr": expr,
        "legendFormat": legend or "__auto",
        "range": not instant,
        "instant": instant,
        "editorMode": "code",
    }
    if table:
        t["format"] = "table"
    return t


def targets(*specs: tuple) -> list[dict[str, Any]]:
    """(expr, legend) pairs; refIds A, B, C, ..."""
    return [target(expr, legend, chr(ord("A") + i)) for i, (expr, legend) in enumerate(specs)]


def field_config(unit: str = "short", decimals: int | None = None, max_: float | None = None, **custom):
    defaults: dict[str, Any] = {
        "unit": unit,
        "color": {"mode": "palette-classic"},
        "thresholds": {"mode": "absolute", "steps": [{"color": "green", "value": None}]},
        "mappings": [],
    }
    if decimals is not None:
        defaults["decimals"] = decimals
    if max_ is not None:
        defaults["min"], defaults["max"] = 0, max_
    if custom:
        defaults["custom"] = custom
    return {"defaults": defaults, "overrides": []}


def timeseries(title: str, description: str, tgts, unit: str = "short", stack: bool = False, **kw):
    custom = {
        "drawStyle": "line",
        "lineWidth": 1,
        "fillOpacity": 10,
        "showPoints": "never",
        "spanNulls": False,
        "stacking": {"mode": "normal" if stack else "none", "group": "A"},
    }
    return {
        "type": "timeseries",
        "title": title,
        "description": description,
        "datasource": DS,
        "targets": tgts,
        "fieldConfig": field_config(unit, **kw, **custom),
        "options": {
            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True, "calcs": []},
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
    }


def stat(title: str, description: str, tgts, unit: str = "short", mappings=None, thresholds=None, **kw):
    panel = {
        "type": "stat",
        "title": title,
        "description": description,
        "datasource": DS,
        "targets": tgts,
        "fieldConfig": field_config(unit, **kw),
        "options": {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": "value",
            "graphMode": "none",
            "justifyMode": "auto",
            "textMode": "auto",
            "orientation": "auto",
            "wideLayout": True,
            "showPercentChange": False,
        },
    }
    if mappings:
        panel["fieldConfig"]["defaults"]["mappings"] = mappings
    if thresholds:
        panel["fieldConfig"]["defaults"]["thresholds"] = {"mode": "absolute", "steps": thresholds}
        panel["fieldConfig"]["defaults"]["color"] = {"mode": "thresholds"}
    return panel


def bargauge(title: str, description: str, tgts, unit: str = "percentunit", max_: float = 1.0):
    return {
        "type": "bargauge",
        "title": title,
        "description": description,
        "datasource": DS,
        "targets": tgts,
        "fieldConfig": field_config(unit, max_=max_),
        "options": {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "orientation": "horizontal",
            "displayMode": "gradient",
            "showUnfilled": True,
            "minVizHeight": 16,
            "minVizWidth": 8,
            "valueMode": "color",
            "namePlacement": "auto",
            "sizing": "auto",
        },
    }


def table(title: str, description: str, tgts, hide: tuple[str, ...] = ("Time",), unit: str = "short"):
    return {
        "type": "table",
        "title": title,
        "description": description,
        "datasource": DS,
        "targets": tgts,
        "fieldConfig": field_config(unit),
        "options": {"showHeader": True, "cellHeight": "sm"},
        "transformations": [
            {"id": "organize", "options": {"excludeByName": {name: True for name in hide}}},
        ],
    }


def text(title: str, content: str):
    return {"type": "text", "title": title, "options": {"mode": "markdown", "content": content}}


def variable_datasource() -> dict[str, Any]:
    return {
        "type": "datasource",
        "name": "datasource",
        "label": "Data source",
        "query": "prometheus",
        "hide": 0,
        "refresh": 1,
        "regex": "",
        "options": [],
        "skipUrlSync": False,
    }


def variable_query(name: str, label: str, query: str) -> dict[str, Any]:
    return {
        "type": "query",
        "name": name,
        "label": label,
        "datasource": DS,
        "query": query,
        "refresh": 2,  # on time range change: runs come and go
        "includeAll": True,
        "multi": True,
        "allValue": ".*",
        "current": {"text": "All", "value": "$__all"},
        "options": [],
        "sort": 1,
        "hide": 0,
        "regex": "",
        "skipUrlSync": False,
    }


def dashboard(uid: str, title: str, description: str, board: Board, variables: list[dict]) -> dict:
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["proctor"],
        "editable": True,
        "graphTooltip": 1,
        "refresh": "30s",
        "schemaVersion": SCHEMA_VERSION,
        "time": {"from": "now-6h", "to": "now"},
        "timezone": "browser",
        "fiscalYearStartMonth": 0,
        "liveNow": False,
        "links": [
            {
                "title": "Proctor dashboards",
                "type": "dashboards",
                "tags": ["proctor"],
                "asDropdown": True,
                "includeVars": True,
                "keepTime": True,
                "icon": "external link",
                "targetBlank": False,
                "tooltip": "",
                "url": "",
            }
        ],
        "annotations": {"list": []},
        "templating": {"list": variables},
        "panels": board.panels,
    }


RUN_VARIABLES = [
    variable_datasource(),
    variable_query("namespace", "Namespace", "label_values(proctor_run_phase, namespace)"),
    variable_query("run", "Run", 'label_values(proctor_run_phase{namespace=~"$namespace"}, run)'),
]


def runs() -> dict[str, Any]:
    b = Board()
    b.row("Overview")
    b.add(
        stat(
            "Runs by phase",
            "Runs the operator knows of, by phase (all namespaces). Finished runs stay for the "
            "operator's metrics retention (default 10 minutes) after they finish.",
            targets(("sum by (phase) (proctor_runs)", "{{phase}}")),
        ),
        8,
        4,
    )
    b.add(
        bargauge(
            "Progress",
            "Share of each run's items that are finished (succeeded, failed or skipped), all stages.",
            targets(
                (
                    f'sum by (namespace, run) (proctor_run_items{{{RUN}, state!="pending"}})'
                    f" / sum by (namespace, run) (proctor_run_items{{{RUN}}})",
                    "{{namespace}}/{{run}}",
                )
            ),
        ),
        8,
        8,
    )
    b.add(
        bargauge(
            "ETA",
            "Time left at the last 10 minutes' pace: items still pending in any stage divided by items "
            "finished per second. Empty while nothing has finished yet.",
            targets(
                (
                    f'sum by (namespace, run) (proctor_run_items{{{RUN}, state="pending"}}) / '
                    f"(sum by (namespace, run) (rate(proctor_items_processed_total{{{RUN}}}[10m])) > 0)",
                    "{{namespace}}/{{run}}",
                )
            ),
            unit="s",
            max_=86400,
        ),
        8,
        8,
    )
    b.add(
        stat(
            "Active runs",
            "Runs in phase Running.",
            targets((f'sum(proctor_run_phase{{{RUN}, phase="Running"}})', "running")),
        ),
        8,
        4,
    )

    b.row("Progress")
    b.add(
        timeseries(
            "Items by stage and state",
            "proctor_run_items: pending, succeeded, failed and skipped items of each stage.",
            targets(
                (
                    f"sum by (run, stage, state) (proctor_run_items{{{RUN}}})",
                    "{{run}} {{stage}} {{state}}",
                )
            ),
        ),
        12,
        8,
    )
    b.add(
        timeseries(
            "Throughput",
            "Items finished per second, by stage (any outcome).",
            targets(
                (
                    f"sum by (run, stage) (rate(proctor_items_processed_total{{{RUN}}}[$__rate_interval]))",
                    "{{run}} {{stage}}",
                )
            ),
            unit="ops",
        ),
        12,
        8,
    )
    b.add(
        timeseries(
            "Item duration p50 / p95",
            "Time one item takes in a stage, as measured by the workers.",
            targets(
                (
                    "histogram_quantile(0.5, sum by (le, stage) "
                    f"(rate(proctor_item_duration_seconds_bucket{{{RUN}}}[$__rate_interval])))",
                    "p50 {{stage}}",
                ),
                (
                    "histogram_quantile(0.95, sum by (le, stage) "
                    f"(rate(proctor_item_duration_seconds_bucket{{{RUN}}}[$__rate_interval])))",
                    "p95 {{stage}}",
                ),
            ),
            unit="s",
        ),
        12,
        8,
    )
    b.add(
        timeseries(
            "Shards done",
            "Share of each stage's shards (Job indexes) that are complete.",
            targets(
                (
                    f'sum by (run, stage) (proctor_run_shards{{{RUN}, state="done"}}) / '
                    f'sum by (run, stage) (proctor_run_shards{{{RUN}, state="total"}})',
                    "{{run}} {{stage}}",
                )
            ),
            unit="percentunit",
            max_=1,
        ),
        12,
        8,
    )

    b.row("Failures")
    b.add(
        timeseries(
            "Failed items per minute",
            "Items a stage could not evaluate (status `failed`), by stage. The reason of each failure is "
            "in the run's records and in report.md / report.html (Failure reasons).",
            targets(
                (
                    f'sum by (run, stage) (rate(proctor_items_processed_total{{{RUN}, state="failed"}}'
                    "[$__rate_interval])) * 60",
                    "{{run}} {{stage}}",
                )
            ),
        ),
        8,
        8,
    )
    b.add(
        bargauge(
            "Failed share by stage",
            "Failed items over finished items, per stage.",
            targets(
                (
                    f'sum by (run, stage) (proctor_run_items{{{RUN}, state="failed"}}) / '
                    f'(sum by (run, stage) (proctor_run_items{{{RUN}, state!="pending"}}) > 0)',
                    "{{run}} {{stage}}",
                )
            ),
        ),
        8,
        8,
    )
    b.add(
        timeseries(
            "Reconcile errors by reason",
            "Errors the operator met while reconciling (each is retried); the reason is the error's "
            "type. `kubectl describe evalrun` shows the message.",
            targets(
                (
                    "sum by (kind, reason) (increase(proctor_reconcile_errors_total[$__rate_interval]))",
                    "{{kind}} {{reason}}",
                )
            ),
        ),
        8,
        8,
    )

    b.row("Scores")
    b.add(
        table(
            "Scores of finished runs",
            "proctor_run_score: the benchmark's headline and per-category numbers once a run succeeded.",
            [target(f"proctor_run_score{{{RUN}}}", "", "A", instant=True, table=True)],
            hide=("Time", "__name__", "job", "instance", "endpoint", "pod", "service", "container"),
        ),
        24,
        10,
    )
    return dashboard(
        "proctor-runs",
        "Proctor / Runs",
        "EvalRuns: progress per stage, throughput, ETA, failures and scores.",
        b,
        RUN_VARIABLES,
    )


def judge() -> dict[str, Any]:
    b = Board()
    b.row("JudgeServers")
    b.add(
        stat(
            "Ready",
            "1 when the JudgeServer serves: its pods are ready, /v1/models lists the model and a "
            "one-image chat completion succeeded.",
            targets((f"proctor_judgeserver_ready{{{JUDGE}}}", "{{namespace}}/{{judgeserver}}")),
            mappings=[
                {
                    "type": "value",
                    "options": {
                        "0": {"text": "not ready", "color": "red", "index": 0},
                        "1": {"text": "ready", "color": "green", "index": 1},
                    },
                }
            ],
            thresholds=[{"color": "red", "value": None}, {"color": "green", "value": 1}],
        ),
        8,
        6,
    )
    b.add(
        timeseries(
            "Phase",
            "The JudgeServer's phase (Pending, Loading, Ready, Degraded, Failed) over time.",
            targets((f"proctor_judgeserver_phase{{{JUDGE}}} == 1", "{{judgeserver}} {{phase}}")),
        ),
        16,
        6,
    )
    b.row("Requests from workers")
    b.add(
        timeseries(
            "Request rate by outcome",
            "Judge calls per second made by the runs' workers: ok, unparseable, http_error, timeout, "
            "connection_error, endpoint_down, rejected.",
            targets(
                (
                    f"sum by (outcome) (rate(proctor_judge_requests_total{{{RUN}}}[$__rate_interval]))",
                    "{{outcome}}",
                )
            ),
            unit="reqps",
            stack=True,
        ),
        8,
        8,
    )
    b.add(
        timeseries(
            "Error ratio",
            "Share of judge calls whose outcome is not ok.",
            targets(
                (
                    f'sum(rate(proctor_judge_requests_total{{{RUN}, outcome!="ok"}}[$__rate_interval])) / '
                    f"sum(rate(proctor_judge_requests_total{{{RUN}}}[$__rate_interval]))",
                    "errors",
                )
            ),
            unit="percentunit",
            max_=1,
        ),
        8,
        8,
    )
    b.add(
        timeseries(
            "Latency p50 / p95 / p99",
            "Judge call latency seen by the workers (queueing at the judge included).",
            targets(
                *(
                    (
                        f"histogram_quantile({q}, sum by (le) "
                        f"(rate(proctor_judge_request_duration_seconds_bucket{{{RUN}}}[$__rate_interval])))",
                        f"p{round(q * 100)}",
                    )
                    for q in (0.5, 0.95, 0.99)
                )
            ),
            unit="s",
        ),
        8,
        8,
    )
    b.row("vLLM (the judge's own metrics)")
    b.add(
        text(
            "About these panels",
            "vLLM's own series (`vllm:*`) from the judge pods, labelled by served `model_name`. Scrape "
            "them with the chart's `metrics.judgePodMonitor` (a PodMonitor for pods labelled "
            "`proctor.dev/component: judge`) or your own scrape config. An external judge has none.",
        ),
        24,
        3,
    )
    b.add(
        timeseries(
            "Running and waiting requests",
            "Requests vLLM is working on, and requests queued inside vLLM.",
            targets(
                (f"sum by (model_name) (vllm:num_requests_running{{{MODEL}}})", "running {{model_name}}"),
                (f"sum by (model_name) (vllm:num_requests_waiting{{{MODEL}}})", "waiting {{model_name}}"),
            ),
        ),
        8,
        8,
    )
    b.add(
        timeseries(
            "KV-cache usage",
            "Fraction of the KV cache in use (vllm:kv_cache_usage_perc; vllm:gpu_cache_usage_perc in "
            "vLLM before 0.10). Near 1, requests wait or are preempted.",
            targets(
                (
                    '(max by (model_name) ({__name__=~"vllm:kv_cache_usage_perc|vllm:gpu_cache_usage_perc",'
                    f" {MODEL}}}))",
                    "{{model_name}}",
                )
            ),
            unit="percentunit",
            max_=1,
        ),
        8,
        8,
    )
    b.add(
        timeseries(
            "Time to first token p50 / p95 / p99",
            "From a request's arrival at vLLM to its first generated token (prefill of the prompt and "
            "its images included).",
            targets(
                *(
                    (
                        f"histogram_quantile({q}, sum by (le, model_name) "
                        f"(rate(vllm:time_to_first_token_seconds_bucket{{{MODEL}}}[$__rate_interval])))",
                        f"p{round(q * 100)} {{{{model_name}}}}",
                    )
                    for q in (0.5, 0.95, 0.99)
                )
            ),
            unit="s",
        ),
        8,
        8,
    )
    b.add(
        timeseries(
            "Tokens per second",
            "Prompt and generated tokens processed per second.",
            targets(
                (
                    f"sum by (model_name) (rate(vllm:prompt_tokens_total{{{MODEL}}}[$__rate_interval]))",
                    "prompt {{model_name}}",
                ),
                (
                    f"sum by (model_name) (rate(vllm:generation_tokens_total{{{MODEL}}}[$__rate_interval]))",
                    "generated {{model_name}}",
                ),
            ),
        ),
        12,
        8,
    )
    b.add(
        timeseries(
            "End-to-end request latency p95",
            "vLLM's own view of a request's whole life, to compare with the workers' latency above.",
            targets(
                (
                    "histogram_quantile(0.95, sum by (le, model_name) "
                    f"(rate(vllm:e2e_request_latency_seconds_bucket{{{MODEL}}}[$__rate_interval])))",
                    "p95 {{model_name}}",
                )
            ),
            unit="s",
        ),
        12,
        8,
    )
    variables = [
        *RUN_VARIABLES,
        variable_query(
            "judgeserver",
            "JudgeServer",
            'label_values(proctor_judgeserver_ready{namespace=~"$namespace"}, judgeserver)',
        ),
        variable_query("model", "vLLM model", "label_values(vllm:num_requests_running, model_name)"),
    ]
    return dashboard(
        "proctor-judge",
        "Proctor / Judge",
        "JudgeServers: readiness, request rate, latency and errors seen by the workers, and vLLM's own "
        "queue, KV cache and time to first token.",
        b,
        variables,
    )


def operator() -> dict[str, Any]:
    b = Board()
    b.row("Operator")
    b.add(
        stat(
            "Version",
            "proctor_build_info of the running operator (the leader and any standby replica).",
            [target("proctor_build_info", "{{version}} (Python {{python}})", instant=True)],
        ),
        6,
        4,
    )
    b.add(
        stat(
            "Runs by phase",
            "Runs the operator knows of, by phase.",
            targets(("sum by (phase) (proctor_runs)", "{{phase}}")),
        ),
        6,
        4,
    )
    b.add(
        stat(
            "JudgeServers not ready",
            "JudgeServers whose functional check does not pass.",
            targets(("count(proctor_judgeserver_ready == 0) or vector(0)", "not ready")),
            thresholds=[{"color": "green", "value": None}, {"color": "red", "value": 1}],
        ),
        6,
        4,
    )
    b.add(
        stat(
            "API requests per processed item (1 h)",
            "Kubernetes API requests the operator made per item its runs finished, over the last hour "
            "(the design target is under 0.05).",
            targets(
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
    )
    b.add(
        timeseries(
            "Reconcile errors by kind and reason",
            "Failed reconciliations (retried at the next pass); the reason is the error's type.",
            targets(
                (
                    "sum by (kind, reason) (increase(proctor_reconcile_errors_total[$__rate_interval]))",
                    "{{kind}} {{reason}}",
                )
            ),
        ),
        12,
        8,
    )
    b.add(
        timeseries(
            "API requests by verb and resource",
            "Requests per second from the operator's client (watches are long-lived and not counted).",
            targets(
                (
                    "sum by (verb, resource) (rate(proctor_api_requests_total[$__rate_interval]))",
                    "{{verb}} {{resource}}",
                )
            ),
            unit="reqps",
        ),
        12,
        8,
    )
    b.row("Queue wait (Kueue)")
    b.add(
        text(
            "How queue wait is measured",
            "With `spec.queueName` every stage Job is created suspended with Kueue's queue label; Kueue "
            "makes one Workload per Job and admits it by unsuspending the Job. Queue wait is Kueue's own "
            "`kueue_admission_wait_time_seconds` histogram (Workload creation to admission, per "
            "ClusterQueue) — scrape Kueue's controller metrics for these panels. Proctor's side: a run "
            "none of whose unfinished Jobs is admitted yet has phase Queued "
            '(`proctor_run_phase{phase="Queued"}`).',
        ),
        24,
        3,
    )
    b.add(
        timeseries(
            "Admission wait p50 / p95",
            "Time from a stage Job's Workload being created to Kueue admitting it, per ClusterQueue.",
            targets(
                *(
                    (
                        f"histogram_quantile({q}, sum by (le, cluster_queue) "
                        "(rate(kueue_admission_wait_time_seconds_bucket"
                        '{cluster_queue=~"$cluster_queue"}[$__rate_interval])))',
                        f"p{round(q * 100)} {{{{cluster_queue}}}}",
                    )
                    for q in (0.5, 0.95)
                )
            ),
            unit="s",
        ),
        12,
        8,
    )
    b.add(
        timeseries(
            "Pending workloads",
            "Workloads waiting in each ClusterQueue (active: can be admitted when quota frees; "
            "inadmissible: cannot be as things stand).",
            targets(
                (
                    "sum by (cluster_queue, status) "
                    '(kueue_pending_workloads{cluster_queue=~"$cluster_queue"})',
                    "{{cluster_queue}} {{status}}",
                )
            ),
        ),
        12,
        8,
    )
    variables = [
        variable_datasource(),
        variable_query(
            "cluster_queue", "ClusterQueue", "label_values(kueue_pending_workloads, cluster_queue)"
        ),
    ]
    return dashboard(
        "proctor-operator",
        "Proctor / Operator",
        "The operator's health: version, reconcile errors, API requests, judges, and queue wait under Kueue.",
        b,
        variables,
    )


DASHBOARDS = {"runs.json": runs, "judge.json": judge, "operator.json": operator}


def render() -> dict[str, str]:
    return {name: json.dumps(build(), indent=2) + "\n" for name, build in DASHBOARDS.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a dashboard file is stale")
    args = parser.parse_args(argv)
    stale = []
    for name, text_ in render().items():
        path = HERE / name
        if args.check:
            if not path.is_file() or path.read_text() != text_:
                stale.append(name)
        else:
            path.write_text(text_)
            print(f"wrote {path}")
    if stale:
        print(f"stale dashboards: {', '.join(stale)}; run python {Path(__file__).name}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

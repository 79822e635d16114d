"""Proctor / Judge: JudgeServers, the workers' judge calls, each judge of a run side by side, and vLLM."""

from __future__ import annotations

import board_runs
from grafana_foundation_sdk.models import dashboard as dm
from panels import (
    JUDGESERVER,
    MODEL,
    RATE,
    RUN,
    Row,
    Slot,
    dashboard,
    graph,
    grid,
    mapping,
    note,
    quantiles,
    queries,
    query,
    query_variable,
    single,
)


def variables() -> list:
    return [
        *board_runs.variables(),
        query_variable(
            "judgeserver",
            "JudgeServer",
            'label_values(proctor_judgeserver_ready{namespace=~"$namespace"}, judgeserver)',
        ),
        query_variable("model", "vLLM model", "label_values(vllm:num_requests_running, model_name)"),
    ]


def judgeservers() -> Row:
    return Row(
        "JudgeServers",
        [
            Slot(
                single(
                    "Ready",
                    "1 when the JudgeServer serves: its pods are ready, /v1/models lists the model and a "
                    "one-image chat completion succeeded.",
                    queries((f"proctor_judgeserver_ready{{{JUDGESERVER}}}", "{{namespace}}/{{judgeserver}}")),
                    mappings=[mapping({"0": ("not ready", "red"), "1": ("ready", "green")})],
                    steps=(("red", None), ("green", 1)),
                ),
                8,
                6,
            ),
            Slot(
                graph(
                    "Phase",
                    "The JudgeServer's phase (Pending, Loading, Ready, Degraded, Failed) over time.",
                    queries(
                        (f"proctor_judgeserver_phase{{{JUDGESERVER}}} == 1", "{{judgeserver}} {{phase}}")
                    ),
                ),
                16,
                6,
            ),
        ],
    )


def requests() -> Row:
    return Row(
        "Requests from workers",
        [
            Slot(
                graph(
                    "Request rate by outcome",
                    "Judge calls per second made by the runs' workers: ok, unparseable, http_error, "
                    "timeout, connection_error, endpoint_down, rejected.",
                    queries(
                        (
                            f"sum by (outcome) (rate(proctor_judge_requests_total{{{RUN}}}{RATE}))",
                            "{{outcome}}",
                        )
                    ),
                    unit="reqps",
                    stack=True,
                ),
                8,
                8,
            ),
            Slot(
                graph(
                    "Error ratio",
                    "Share of judge calls whose outcome is not ok.",
                    queries(
                        (
                            f'sum(rate(proctor_judge_requests_total{{{RUN}, outcome!="ok"}}{RATE})) / '
                            f"sum(rate(proctor_judge_requests_total{{{RUN}}}{RATE}))",
                            "errors",
                        )
                    ),
                    unit="percentunit",
                    max_=1,
                ),
                8,
                8,
            ),
            Slot(
                graph(
                    "Latency p50 / p95 / p99",
                    "Judge call latency seen by the workers (queueing at the judge included).",
                    queries(
                        *quantiles("proctor_judge_request_duration_seconds", "", (0.5, 0.95, 0.99), "", RUN)
                    ),
                    unit="s",
                ),
                8,
                8,
            ),
        ],
    )


JUDGE_COST: list[tuple[str, str]] = [
    ("calls", f"sum by (judge) (proctor_judge_requests_total{{{RUN}}})"),
    ("retried", f"sum by (judge) (proctor_judge_retried_calls_total{{{RUN}}})"),
    ("failed calls", f'sum by (judge) (proctor_judge_requests_total{{{RUN}, outcome!="ok"}})'),
    ("prompt tokens", f'sum by (judge) (proctor_judge_tokens_total{{{RUN}, kind="prompt"}})'),
    ("completion tokens", f'sum by (judge) (proctor_judge_tokens_total{{{RUN}, kind="completion"}})'),
    ("images", f"sum by (judge) (proctor_judge_images_total{{{RUN}}})"),
    ("judge seconds", f"sum by (judge) (proctor_judge_request_duration_seconds_sum{{{RUN}}})"),
]


def per_judge() -> Row:
    """A run judged by several judges: the same figures side by side, grouped by the `judge` label.
    Before runs carry that label every panel shows one series (its judge empty)."""
    return Row(
        "Per judge",
        [
            Slot(
                grid(
                    "Scores by judge",
                    "proctor_run_score of finished runs, one row per run, judge and metric: the judges "
                    "of one run side by side (an aggregate over judges, when the run asks for one, is "
                    "its own row).",
                    [
                        query(
                            f"max by (namespace, run, judge, metric) (proctor_run_score{{{RUN}}})",
                            "",
                            "A",
                            instant=True,
                            as_table=True,
                        )
                    ],
                    rename={"Value": "score"},
                ),
                12,
                8,
            ),
            Slot(
                grid(
                    "Cost by judge",
                    "Each judge's calls (retried: beyond each item's first; failed: any outcome but ok), "
                    "tokens, images and seconds so far, summed over the selected runs.",
                    [
                        query(expr, "", chr(ord("A") + i), instant=True, as_table=True)
                        for i, (_, expr) in enumerate(JUDGE_COST)
                    ],
                    rename={f"Value #{chr(ord('A') + i)}": name for i, (name, _) in enumerate(JUDGE_COST)},
                    merge=True,
                ),
                12,
                8,
            ),
            Slot(
                graph(
                    "Request rate by judge",
                    "Judge calls per second, per judge.",
                    queries(
                        (f"sum by (judge) (rate(proctor_judge_requests_total{{{RUN}}}{RATE}))", "{{judge}}")
                    ),
                    unit="reqps",
                ),
                8,
                8,
            ),
            Slot(
                graph(
                    "Error ratio by judge",
                    "Share of each judge's calls whose outcome is not ok.",
                    queries(
                        (
                            "sum by (judge) "
                            f'(rate(proctor_judge_requests_total{{{RUN}, outcome!="ok"}}{RATE})) / '
                            f"sum by (judge) (rate(proctor_judge_requests_total{{{RUN}}}{RATE}))",
                            "{{judge}}",
                        )
                    ),
                    unit="percentunit",
                    max_=1,
                ),
                8,
                8,
            ),
            Slot(
                graph(
                    "Latency p95 by judge",
                    "Judge call latency seen by the workers, per judge.",
                    queries(
                        *quantiles(
                            "proctor_judge_request_duration_seconds", "judge", (0.95,), "{{judge}}", RUN
                        )
                    ),
                    unit="s",
                ),
                8,
                8,
            ),
        ],
    )


def vllm() -> Row:
    return Row(
        "vLLM (the judge's own metrics)",
        [
            Slot(
                note(
                    "About these panels",
                    "vLLM's own series (`vllm:*`) from the judge pods, labelled by served `model_name`. "
                    "Scrape them with the chart's `metrics.judgePodMonitor` (a PodMonitor for pods "
                    "labelled `proctor.dev/component: judge`) or your own scrape config. An external "
                    "judge has none.",
                ),
                24,
                3,
            ),
            Slot(
                graph(
                    "Running and waiting requests",
                    "Requests vLLM is working on, and requests queued inside vLLM.",
                    queries(
                        (
                            f"sum by (model_name) (vllm:num_requests_running{{{MODEL}}})",
                            "running {{model_name}}",
                        ),
                        (
                            f"sum by (model_name) (vllm:num_requests_waiting{{{MODEL}}})",
                            "waiting {{model_name}}",
                        ),
                    ),
                ),
                8,
                8,
            ),
            Slot(
                graph(
                    "KV-cache usage",
                    "Fraction of the KV cache in use (vllm:kv_cache_usage_perc; vllm:gpu_cache_usage_perc "
                    "in vLLM before 0.10). Near 1, requests wait or are preempted.",
                    queries(
                        (
                            "(max by (model_name) "
                            f'({{__name__=~"vllm:kv_cache_usage_perc|vllm:gpu_cache_usage_perc", {MODEL}}}))',
                            "{{model_name}}",
                        )
                    ),
                    unit="percentunit",
                    max_=1,
                ),
                8,
                8,
            ),
            Slot(
                graph(
                    "Time to first token p50 / p95 / p99",
                    "From a request's arrival at vLLM to its first generated token (prefill of the prompt "
                    "and its images included).",
                    queries(
                        *quantiles(
                            "vllm:time_to_first_token_seconds",
                            "model_name",
                            (0.5, 0.95, 0.99),
                            "{{model_name}}",
                            MODEL,
                        )
                    ),
                    unit="s",
                ),
                8,
                8,
            ),
            Slot(
                graph(
                    "Tokens per second",
                    "Prompt and generated tokens processed per second.",
                    queries(
                        (
                            f"sum by (model_name) (rate(vllm:prompt_tokens_total{{{MODEL}}}{RATE}))",
                            "prompt {{model_name}}",
                        ),
                        (
                            f"sum by (model_name) (rate(vllm:generation_tokens_total{{{MODEL}}}{RATE}))",
                            "generated {{model_name}}",
                        ),
                    ),
                ),
                12,
                8,
            ),
            Slot(
                graph(
                    "End-to-end request latency p95",
                    "vLLM's own view of a request's whole life, to compare with the workers' latency above.",
                    queries(
                        *quantiles(
                            "vllm:e2e_request_latency_seconds", "model_name", (0.95,), "{{model_name}}", MODEL
                        )
                    ),
                    unit="s",
                ),
                12,
                8,
            ),
        ],
    )


def build() -> dm.Dashboard:
    return dashboard(
        "proctor-judge",
        "Proctor / Judge",
        "JudgeServers: readiness, request rate, latency and errors seen by the workers, each judge of a "
        "run side by side, and vLLM's own queue, KV cache and time to first token.",
        [judgeservers(), requests(), per_judge(), vllm()],
        variables(),
    )

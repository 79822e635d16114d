"""Proctor / Runs: progress per stage, throughput, ETA, failures, what each run cost, and scores."""

from __future__ import annotations

from grafana_foundation_sdk.models import dashboard as dm
from panels import (
    RATE,
    RUN,
    Row,
    Slot,
    bars,
    dashboard,
    datasource_variable,
    graph,
    grid,
    queries,
    query,
    query_variable,
    single,
)

# Labels a scrape adds to every series: not worth a table column.
SCRAPE_LABELS = ("Time", "__name__", "job", "instance", "endpoint", "pod", "service", "container")


def variables() -> list:
    return [
        datasource_variable(),
        query_variable("namespace", "Namespace", "label_values(proctor_run_phase, namespace)"),
        query_variable("run", "Run", 'label_values(proctor_run_phase{namespace=~"$namespace"}, run)'),
    ]


def overview() -> Row:
    by_run = "{{namespace}}/{{run}}"
    return Row(
        "Overview",
        [
            Slot(
                single(
                    "Runs by phase",
                    "Runs the operator knows of, by phase (all namespaces). Finished runs stay for the "
                    "operator's metrics retention (default 10 minutes) after they finish.",
                    queries(("sum by (phase) (proctor_runs)", "{{phase}}")),
                ),
                4,
                8,
            ),
            Slot(
                single(
                    "Active runs",
                    "Runs in phase Running.",
                    queries((f'sum(proctor_run_phase{{{RUN}, phase="Running"}})', "running")),
                ),
                4,
                8,
            ),
            Slot(
                bars(
                    "Progress",
                    "Share of each run's items that are finished (succeeded, failed or skipped), all stages.",
                    queries(
                        (
                            f'sum by (namespace, run) (proctor_run_items{{{RUN}, state!="pending"}})'
                            f" / sum by (namespace, run) (proctor_run_items{{{RUN}}})",
                            by_run,
                        )
                    ),
                ),
                8,
                8,
            ),
            Slot(
                bars(
                    "ETA",
                    "Time left at the last 10 minutes' pace: items still pending in any stage divided by "
                    "items finished per second. Empty while nothing has finished yet.",
                    queries(
                        (
                            f'sum by (namespace, run) (proctor_run_items{{{RUN}, state="pending"}}) / '
                            "(sum by (namespace, run) "
                            f"(rate(proctor_items_processed_total{{{RUN}}}[10m])) > 0)",
                            by_run,
                        )
                    ),
                    unit="s",
                    max_=86400,
                ),
                8,
                8,
            ),
        ],
    )


def progress() -> Row:
    return Row(
        "Progress",
        [
            Slot(
                graph(
                    "Items by stage and state",
                    "proctor_run_items: pending, succeeded, failed and skipped items of each stage.",
                    queries(
                        (
                            f"sum by (run, stage, state) (proctor_run_items{{{RUN}}})",
                            "{{run}} {{stage}} {{state}}",
                        )
                    ),
                ),
                12,
                8,
            ),
            Slot(
                graph(
                    "Throughput",
                    "Items finished per second, by stage (any outcome).",
                    queries(
                        (
                            f"sum by (run, stage) (rate(proctor_items_processed_total{{{RUN}}}{RATE}))",
                            "{{run}} {{stage}}",
                        )
                    ),
                    unit="ops",
                ),
                12,
                8,
            ),
            Slot(
                graph(
                    "Item duration p50 / p95",
                    "Time one item takes in a stage, as measured by the workers.",
                    queries(
                        *(
                            (
                                f"histogram_quantile({q}, sum by (le, stage) "
                                f"(rate(proctor_item_duration_seconds_bucket{{{RUN}}}{RATE})))",
                                f"p{round(q * 100)} {{{{stage}}}}",
                            )
                            for q in (0.5, 0.95)
                        )
                    ),
                    unit="s",
                ),
                12,
                8,
            ),
            Slot(
                graph(
                    "Shards done",
                    "Share of each stage's shards (Job indexes) that are complete.",
                    queries(
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
            ),
        ],
    )


def failures() -> Row:
    return Row(
        "Failures",
        [
            Slot(
                graph(
                    "Failed items per minute",
                    "Items a stage could not evaluate (status `failed`), by stage. The reason of each "
                    "failure is in the run's records and in report.md / report.html (Failure reasons).",
                    queries(
                        (
                            "sum by (run, stage) "
                            f'(rate(proctor_items_processed_total{{{RUN}, state="failed"}}{RATE})) * 60',
                            "{{run}} {{stage}}",
                        )
                    ),
                ),
                8,
                8,
            ),
            Slot(
                bars(
                    "Failed share by stage",
                    "Failed items over finished items, per stage.",
                    queries(
                        (
                            f'sum by (run, stage) (proctor_run_items{{{RUN}, state="failed"}}) / '
                            f'(sum by (run, stage) (proctor_run_items{{{RUN}, state!="pending"}}) > 0)',
                            "{{run}} {{stage}}",
                        )
                    ),
                ),
                8,
                8,
            ),
            Slot(
                graph(
                    "Reconcile errors by reason",
                    "Errors the operator met while reconciling (each is retried); the reason is the "
                    "error's type. `kubectl describe evalrun` shows the message.",
                    queries(
                        (
                            f"sum by (kind, reason) (increase(proctor_reconcile_errors_total{RATE}))",
                            "{{kind}} {{reason}}",
                        )
                    ),
                ),
                8,
                8,
            ),
        ],
    )


# What a run cost so far: the counters are the run's totals (the operator sums them over the run's
# shards from the workers' progress records), so their current value is the cost to date.
def _per_run(metric: str, matchers: str = "") -> str:
    return f"sum by (namespace, run) ({metric}{{{RUN}{matchers}}})"


COST_COLUMNS: list[tuple[str, str]] = [
    ("judge calls", _per_run("proctor_judge_requests_total")),
    ("charged", _per_run("proctor_judge_requests_total", ', outcome!="endpoint_down"')),
    ("retried", _per_run("proctor_judge_retried_calls_total")),
    ("failed calls", _per_run("proctor_judge_requests_total", ', outcome!="ok"')),
    ("prompt tokens", _per_run("proctor_judge_tokens_total", ', kind="prompt"')),
    ("completion tokens", _per_run("proctor_judge_tokens_total", ', kind="completion"')),
    ("images", _per_run("proctor_judge_images_total")),
    ("judge seconds", _per_run("proctor_judge_request_duration_seconds_sum")),
    ("item seconds", _per_run("proctor_item_duration_seconds_sum")),
]


def cost() -> Row:
    refs = [chr(ord("A") + i) for i in range(len(COST_COLUMNS))]
    return Row(
        "Cost",
        [
            Slot(
                grid(
                    "Cost per run",
                    "What each run has cost so far, one row per run (summary.json's `cost` has it per "
                    "stage): "
                    "judge calls (charged: all but those made while the endpoint was down, which are "
                    "waited out; retried: calls beyond each item's first; failed: any outcome but ok), "
                    "the tokens the judge's API reported in `usage`, the images of the judged items, the "
                    "seconds spent waiting for the judge, and the workers' seconds on items, all stages.",
                    [
                        query(expr, "", ref, instant=True, as_table=True)
                        for ref, (_, expr) in zip(refs, COST_COLUMNS, strict=True)
                    ],
                    hide=SCRAPE_LABELS,
                    rename={f"Value #{ref}": name for ref, (name, _) in zip(refs, COST_COLUMNS, strict=True)},
                    merge=True,
                ),
                24,
                7,
            ),
            Slot(
                graph(
                    "Judge calls per minute",
                    "Charged calls (all but those made while the endpoint was down, which are waited "
                    "out), retried calls (beyond each item's first) and failed calls (any outcome but "
                    "ok), per run.",
                    queries(
                        (
                            "sum by (run) (rate(proctor_judge_requests_total"
                            f'{{{RUN}, outcome!="endpoint_down"}}{RATE})) * 60',
                            "charged {{run}}",
                        ),
                        (
                            f"sum by (run) (rate(proctor_judge_retried_calls_total{{{RUN}}}{RATE})) * 60",
                            "retried {{run}}",
                        ),
                        (
                            "sum by (run) "
                            f'(rate(proctor_judge_requests_total{{{RUN}, outcome!="ok"}}{RATE})) * 60',
                            "failed {{run}}",
                        ),
                    ),
                ),
                12,
                8,
            ),
            Slot(
                graph(
                    "Judge tokens per second",
                    "Prompt and completion tokens per second, as the judge's API reported them (`usage`; "
                    "a server that reports none adds nothing here).",
                    queries(
                        (
                            f"sum by (run, kind) (rate(proctor_judge_tokens_total{{{RUN}}}{RATE}))",
                            "{{kind}} {{run}}",
                        )
                    ),
                ),
                12,
                8,
            ),
            Slot(
                bars(
                    "Judge seconds by stage",
                    "Seconds the workers waited for the judge, summed per run and stage, to date.",
                    queries(
                        (
                            f"sum by (run, stage) (proctor_judge_request_duration_seconds_sum{{{RUN}}})",
                            "{{run}} {{stage}}",
                        )
                    ),
                    unit="s",
                    max_=None,
                ),
                12,
                8,
            ),
            Slot(
                bars(
                    "Item seconds by stage",
                    "The workers' seconds on items, summed per run and stage (the stage's compute before "
                    "parallelism), to date.",
                    queries(
                        (
                            f"sum by (run, stage) (proctor_item_duration_seconds_sum{{{RUN}}})",
                            "{{run}} {{stage}}",
                        )
                    ),
                    unit="s",
                    max_=None,
                ),
                12,
                8,
            ),
        ],
    )


def scores() -> Row:
    return Row(
        "Scores",
        [
            Slot(
                grid(
                    "Scores of finished runs",
                    "proctor_run_score: the benchmark's headline and per-category numbers once a run "
                    "succeeded.",
                    [query(f"proctor_run_score{{{RUN}}}", "", "A", instant=True, as_table=True)],
                    hide=SCRAPE_LABELS,
                ),
                24,
                10,
            )
        ],
    )


def build() -> dm.Dashboard:
    return dashboard(
        "proctor-runs",
        "Proctor / Runs",
        "EvalRuns: progress per stage, throughput, ETA, failures, cost and scores.",
        [overview(), progress(), failures(), cost(), scores()],
        variables(),
    )

"""Every PromQL expression in the chart's Grafana dashboards, against the test Prometheus after real runs.

The Helm-installed operator (tests/e2e/helm_release.py) runs the HumanEval-V example, a judged
ArtifactsBench run and a misconfigured run while Prometheus scrapes it. Then, for each query of each
panel and each template variable, with the variables substituted: Prometheus' `/api/v1/query` accepts
it (it parses and evaluates), and every `proctor_*` series it selects exists with the labels it filters
on. vLLM's `vllm:*` and Kueue's `kueue_*` series cannot exist here (no GPU, no Kueue): their queries are
checked to parse and evaluate only.

The JSON itself is checked against Grafana's published schema in tests/unit/test_chart_dashboards.py.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e
pytest_plugins = ["tests.e2e.helm_release"]
JUDGED_RUN = "helm-judged"  # tests/e2e/helm_release.py (imported, it would escape assertion rewriting)

DASHBOARDS = Path(__file__).resolve().parents[2] / "charts" / "proctor" / "dashboards"
FOREIGN = ("vllm:", "kueue_")  # series of other programs: parse only
SELECTOR = re.compile(r"\b(proctor_[a-z_]+)(\{[^}]*\})?")
LABEL_VALUES = re.compile(r"^label_values\((.+),\s*([a-z_]+)\)$")


def substitute(expr: str, namespace: str) -> str:
    """Grafana's variables as a user with every run selected would send them."""
    values = {
        "$__rate_interval": "5m",  # covers the whole (short) test run
        "$namespace": namespace,
        "$run": ".*",
        "$judgeserver": ".*",
        "$model": ".*",
        "$cluster_queue": ".*",
    }
    for name, value in values.items():
        expr = expr.replace(name, value)
    assert "$" not in expr, f"a variable the check does not know: {expr}"
    return expr


def queries() -> list[tuple[str, str, str]]:
    """(dashboard, where, expression) for every panel query and every query variable."""
    found = []
    for path in sorted(DASHBOARDS.glob("*.json")):
        board = json.loads(path.read_text())
        panels = board["panels"] + [p for row in board["panels"] for p in row.get("panels", [])]
        for panel in panels:
            for target in panel.get("targets") or []:
                found.append((path.name, f"panel {panel['title']!r} {target['refId']}", target["expr"]))
        for variable in board["templating"]["list"]:
            if variable["type"] == "query":
                found.append((path.name, f"variable ${variable['name']}", variable["query"]))
    return found


def instant(prometheus_url: str, expr: str) -> tuple[list | None, str | None]:
    """(result, None) when Prometheus accepts the query; (None, its error) when it refuses it."""
    url = f"{prometheus_url}/api/v1/query?{urllib.parse.urlencode({'query': expr})}"
    try:
        with urllib.request.urlopen(url, timeout=15) as response:
            body = json.loads(response.read())
    except urllib.error.HTTPError as err:
        body = json.loads(err.read() or b"{}")
    if body.get("status") != "success":
        return None, f"{body.get('errorType')}: {body.get('error')}"
    return body["data"]["result"], None


def as_promql(expr: str) -> tuple[str, str | None]:
    """A query variable `label_values(selector, label)` is Grafana's, not PromQL: ask for the label."""
    match = LABEL_VALUES.match(expr.strip())
    if match:
        return f"count by ({match.group(2)}) ({match.group(1)})", match.group(2)
    return expr, None


def problems_of(prometheus_url: str, namespace: str, exprs) -> list[str]:
    problems = []
    for board, where, raw in exprs:
        expr, label = as_promql(substitute(raw, namespace))
        result, error = instant(prometheus_url, expr)
        if error:
            problems.append(f"{board} {where}: Prometheus refuses {expr!r}: {error}")
            continue
        if expr.lstrip("( ").startswith(FOREIGN) or any(f"({p}" in expr for p in FOREIGN):
            continue  # vLLM / Kueue: parsed and evaluated; their series cannot exist here
        for metric, matchers in SELECTOR.findall(expr):
            selector = metric + (matchers or "")
            series, error = instant(prometheus_url, selector)
            if error or not series:
                problems.append(f"{board} {where}: no series {selector} ({error or 'empty'})")
        if label and not any(label in r["metric"] for r in result):
            problems.append(f"{board} {where}: {raw} gives no value of {label}")
    return problems


def test_every_dashboard_query_parses_and_the_proctor_series_it_needs_exist(helm_runs, prometheus):
    found = queries()
    assert len(found) >= 30, "the dashboards lost their queries?"
    assert any(expr.startswith(("vllm:", "sum by (model_name) (vllm:")) for _, _, expr in found)
    problems = problems_of(prometheus.url, helm_runs.release.watch, found)
    assert not problems, "\n".join(problems)


def test_dashboard_queries_show_the_runs_as_they_happened(helm_runs, prometheus):
    """Not only present: the panels' numbers are the runs' numbers."""
    ns = helm_runs.release.watch
    by_title = {
        where.split("'")[1]: expr
        for board, where, expr in queries()
        if where.startswith("panel") and board in ("runs.json", "judge.json")
    }

    def rows(title: str) -> list[dict]:
        result, error = instant(prometheus.url, substitute(by_title[title], ns))
        assert error is None, error
        return result

    scores = {
        (r["metric"]["run"], r["metric"]["metric"]): float(r["value"][1])
        for r in rows("Scores of finished runs")
    }
    assert scores.get(("humanevalv-example", "pass@1")) == 50.0, scores
    assert scores[("helm-judged", "AVG")] == 55.0  # the judge double's 70 and 40; the third unjudgeable
    progress = {r["metric"]["run"]: float(r["value"][1]) for r in rows("Progress")}
    assert progress["humanevalv-example"] == 1.0 and progress["helm-judged"] == 1.0
    items = {
        (r["metric"]["run"], r["metric"]["stage"], r["metric"]["state"]): float(r["value"][1])
        for r in rows("Items by stage and state")
    }
    assert items[("humanevalv-example", "oracle", "succeeded")] == 72
    assert items[("helm-judged", "judge", "succeeded")] == 2
    assert items[("helm-judged", "judge", "failed")] == 1
    outcomes = {r["metric"]["outcome"] for r in rows("Request rate by outcome")}
    assert {"ok", "unparseable"} <= outcomes
    ready = {r["metric"]["judgeserver"]: float(r["value"][1]) for r in rows("Ready")}
    assert ready["helm-judge"] == 1.0


def test_cost_panels_count_the_judged_runs_calls(helm_runs, prometheus):
    """The judged run's three items cost five calls: two scored at once, the third unparseable three
    times (two retries), text only (no image); nothing else in the namespace called the judge."""
    ns = helm_runs.release.watch
    targets = {
        (where.split("'")[1], where.rsplit(" ", 1)[1]): expr
        for _, where, expr in queries()
        if where.startswith("panel")
    }

    def values(title: str, ref: str, key: str) -> dict[str, float]:
        result, error = instant(prometheus.url, substitute(targets[(title, ref)], ns))
        assert error is None, error
        return {r["metric"].get(key, ""): float(r["value"][1]) for r in result}

    names = ("calls", "charged", "retried", "failed", "prompt", "completion", "images", "judge_s", "item_s")
    cost = {
        name: values("Cost per run", ref, "run").get(JUDGED_RUN)
        for ref, name in zip("ABCDEFGHI", names, strict=True)
    }
    assert (cost["calls"], cost["charged"], cost["retried"], cost["failed"]) == (5, 5, 2, 3), cost
    assert cost["images"] == 0 and cost["prompt"] > 0 and cost["completion"] > 0, cost
    assert cost["judge_s"] > 0 and cost["item_s"] >= cost["judge_s"], cost
    assert set(values("Judge seconds by stage", "A", "stage")) == {"judge"}
    # Per judge: one judge here, so its row holds the whole namespace's calls.
    assert sum(values("Cost by judge", "A", "judge").values()) == 5


def test_the_check_reports_a_query_prometheus_refuses_or_a_series_that_does_not_exist(helm_runs, prometheus):
    broken = [
        ("x.json", "panel 'typo'", 'sum(proctor_run_itemz{namespace=~"$namespace"})'),
        ("x.json", "panel 'syntax'", "sum by (stage (proctor_run_items)"),
        ("x.json", "panel 'label'", 'sum(proctor_run_items{namespace=~"$namespace", stag="oracle"})'),
    ]
    problems = problems_of(prometheus.url, helm_runs.release.watch, broken)
    assert len(problems) == 3, problems
    assert "no series proctor_run_itemz" in problems[0]
    assert "refuses" in problems[1] and "bad_data" in problems[1]
    assert "no series proctor_run_items" in problems[2]

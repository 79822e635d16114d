"""`proctor compare` and `proctor report` on real HumanEval-V runs (the README's example, n = 6 and n = 1)."""

from __future__ import annotations

import json

import pytest

from tests.integration.test_local_humanevalv import EXAMPLE, last_json, proctor

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    store = tmp_path_factory.mktemp("compare") / "store"
    found = {}
    for name in ("evalrun.yaml", "evalrun-n1.yaml"):
        result = last_json(proctor("run", str(EXAMPLE / name), "--store", str(store), "--json"))
        found[name] = (str(store / result["run_prefix"]), result["scores"])
    return found


def test_compare_speaks_the_summary_s_percent_in_one_row(runs):
    run, scores = runs["evalrun.yaml"]
    done = proctor("compare", run, run, "--json", "--bootstrap", "200")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["unit"] == "%" and result["measure"] == "pass@1"
    assert [row["category"] for row in result["rows"]] == ["(all)"]  # not "(all)" and "all"
    assert result["rows"][0]["mean_a"] == pytest.approx(scores["pass@1"]) == 50.0
    table = proctor("compare", run, run, "--bootstrap", "200")
    assert table.returncode == 0 and "pass@1 (%)" in table.stdout and "│ 50 │ 50 │" in table.stdout
    # and what each run cost, from its summary (no model calls in HumanEval-V: its items' own time)
    spent = result["cost"]["a"]["item_seconds"]
    assert spent > 0 and result["cost"]["b"] == result["cost"]["a"] and result["cost"]["a"]["calls"] == 0
    assert f"cost: item seconds A {spent:g}, B {spent:g}" in table.stdout


def test_runs_over_different_items_are_refused_unless_forced(runs):
    (n6, _), (n1, _) = runs["evalrun.yaml"], runs["evalrun-n1.yaml"]
    refused = proctor("compare", n6, n1)
    assert refused.returncode == 3 and refused.stdout == ""
    assert "not comparable" in refused.stderr and "60 only in A" in refused.stderr
    assert "--force" in refused.stderr
    forced = proctor("compare", n6, n1, "--force", "--json", "--bootstrap", "200")
    assert forced.returncode == 0 and "warning (--force): different items" in forced.stderr
    assert json.loads(forced.stdout)["paired"] == 12


def test_the_report_lists_every_failed_sample_with_its_reason(runs, tmp_path):
    run, _ = runs["evalrun.yaml"]
    done = proctor("report", run, "-o", str(tmp_path / "r.html"), "--markdown", str(tmp_path / "r.md"))
    assert done.returncode == 0, done.stderr
    page = (tmp_path / "r.html").read_text()
    assert "No failed" not in page and "Failures (36 of 72 items)" in page
    assert page.count('data-outcome="failed"') == 36 and page.count('class="item') == 72
    assert "timeout: killed after 2.0 s wall clock" in page
    md = (tmp_path / "r.md").read_text()
    failed_rows = [line for line in md.splitlines() if line.startswith("| hv") and "| failed |" in line]
    assert "## Failures (36 of 72 items)" in md and len(failed_rows) == 36

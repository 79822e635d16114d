"""`proctor report` and `proctor compare` on judged runs in a filesystem store."""

from __future__ import annotations

import json

import pytest

from proctor.cli import main
from proctor.results import write_results
from proctor_jobs.store.fs import FilesystemStore
from tests.integration.test_judge_run import ITEMS, judged_fake, plan, run_stage  # noqa: F401 - fixture

# Scores per task index: run B beats run A by 10 on Game Development tasks (i % 3 == 0) only.
A = lambda i: 40 + i  # noqa: E731
B = lambda i: 40 + i + (10 if i % 3 == 0 else 0)  # noqa: E731


@pytest.fixture
def two_runs(tmp_path, judged_fake, judge_double):  # noqa: F811
    double = judge_double()
    store = FilesystemStore(tmp_path / "store")
    prefixes = {}
    for name, score in (("run-a", A), ("run-b", B)):
        the_plan, spec = plan(store, judged_fake, double.url, name=name, score=score)
        run_stage(store, the_plan, "render")
        run_stage(store, the_plan, "judge")
        write_results(store, the_plan, spec, {"name": name, "namespace": "default"}, "Succeeded")
        prefixes[name] = the_plan.run_prefix
    return store, prefixes


def test_compare_reports_per_category_deltas_with_intervals(two_runs, capsys):
    store, prefixes = two_runs
    run_a, run_b = (f"{store.root}/{prefixes[n]}" for n in ("run-a", "run-b"))
    assert main(["compare", run_a, run_b, "--json", "--bootstrap", "500"]) == 0
    result = json.loads(capsys.readouterr().out)
    rows = {row["category"]: row for row in result["rows"]}
    assert result["paired"] == ITEMS and result["only_a"] == result["only_b"] == 0
    # The test benchmark is not "artifactsbench", so categories are the raw `class` values.
    game = rows["Game Development-Puzzle"]
    assert game["n"] == 8 and game["delta"] == pytest.approx(10.0) and game["ci_low"] == pytest.approx(10.0)
    assert rows["Web Applications-Other"]["delta"] == pytest.approx(0.0)
    overall = rows["(all)"]
    assert overall["n"] == ITEMS and overall["delta"] == pytest.approx(10.0 * 8 / ITEMS)
    assert overall["ci_low"] < overall["delta"] < overall["ci_high"]


def test_compare_by_name_in_a_store_prints_a_table(two_runs, capsys):
    store, _ = two_runs
    assert main(["compare", "run-a", "run-b", "--store", str(store.root), "--bootstrap", "100"]) == 0
    out = capsys.readouterr().out
    assert "Game Development-Puzzle" in out and "+10" in out and "paired 24 items" in out


def test_compare_refuses_unknown_runs(two_runs, capsys):
    store, _ = two_runs
    assert main(["compare", "run-a", "nope", "--store", str(store.root)]) == 2
    assert "no run of default/nope" in capsys.readouterr().err


def test_report_rewrites_both_reports_and_copies_them_out(two_runs, tmp_path, capsys):
    store, prefixes = two_runs
    layout_prefix = prefixes["run-a"]
    store.delete(f"{layout_prefix}/report.html")
    out = tmp_path / "copy.html"
    assert (
        main(
            ["report", f"{store.root}/{layout_prefix}", "-o", str(out), "--markdown", str(tmp_path / "r.md")]
        )
        == 0
    )
    assert store.exists(f"{layout_prefix}/report.html")
    page = out.read_text()
    assert "run-a" in page and "data:image/jpeg;base64," in page
    assert (tmp_path / "r.md").read_text().startswith("# run-a")


def test_report_reaggregates_when_asked(two_runs, capsys):
    store, prefixes = two_runs
    summary_key = f"{prefixes['run-b']}/summary.json"
    stale = store.get_json(summary_key)
    stale["scores"] = {"AVG": -1.0}
    store.put_json(summary_key, stale)
    assert main(["report", "run-b", "--store", str(store.root)]) == 0
    assert store.get_json(summary_key)["scores"] == {"AVG": -1.0}  # report alone keeps the summary
    assert main(["report", "run-b", "--store", str(store.root), "--reaggregate"]) == 0
    assert store.get_json(summary_key)["scores"]["AVG"] > 0

"""Reports show every item with its score, group and outcome, failures apart from notes, whole reasons;
`compare` speaks the runs' units, gives one row per group and refuses runs that are not comparable."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from proctor.commands.compare import comparability, compare, scoring_profile
from proctor.report_html import THUMB_WIDTH, export_html, render_html
from proctor.report_items import item_rows, reason_counts
from proctor.results import render_markdown
from proctor_jobs.records import ok, skipped
from proctor_jobs.scoring.items import summary_units
from proctor_jobs.store.fs import FilesystemStore
from tests.report_runs import (
    LONG_REASON,
    NOTES,
    RENDER_FAILED,
    UNJUDGEABLE,
    artifactsbench_run,
    humanevalv_run,
)


def cards(page: str) -> list[str]:
    return re.findall(r'<div class="item[^"]*" id="item-([^"]+)"', page)


# --- which items failed, and why; what is only a note --------------------------------------------


def test_failed_samples_of_a_pass_fail_benchmark_are_failures_with_their_reason(tmp_path):
    _, _, items, records = humanevalv_run(FilesystemStore(tmp_path))
    rows = item_rows("humanevalv", items, records, ["oracle"])
    failed = [r for r in rows if r["outcome"] == "failed"]
    assert len(failed) == 36 and sum(r["outcome"] == "passed" for r in rows) == 36
    assert failed[0]["failures"] == ["oracle: AssertionError: solution(0, 1) should be 1"]
    assert all(r["notes"] == [] for r in rows)


def test_stage_failures_are_failures_and_remarks_are_notes(tmp_path):
    _, _, items, records = artifactsbench_run(FilesystemStore(tmp_path))
    rows = {r["id"]: r for r in item_rows("artifactsbench", items, records, ["render", "judge"])}
    assert {i for i, r in rows.items() if r["outcome"] == "failed"} == RENDER_FAILED | {UNJUDGEABLE}
    assert rows["item-07"]["failures"] == [f"render: {LONG_REASON}"]  # whole, never cut
    assert rows["item-07"]["score"] is not None  # judged on text only: the score stays
    assert rows[UNJUDGEABLE]["failures"] == ["judge: unjudgeable: no score in the reply"]
    for item_id, note in NOTES.items():
        assert rows[item_id]["outcome"] == "scored" and rows[item_id]["failures"] == []
        assert rows[item_id]["notes"] == [f"render: {note}"]
    # The judge's reason explains the score: it is neither a failure nor a note.
    assert rows["item-00"]["notes"] == [] and rows["item-00"]["explanation"].startswith("verdict for item-00")
    assert reason_counts(list(rows.values()), "notes") == sorted(
        [(f"render: {n}", 1) for n in NOTES.values()]
    )


def test_a_render_that_failed_the_answer_and_a_skipped_stage():
    items = [{"id": "a", "source_dataset": "chartqa"}, {"id": "b", "source_dataset": "chartqa"}]
    records = {
        "render": {
            "a": ok("a", "render", reason="compile error", data={"failure": "latex_compile_failed"}),
            "b": ok("b", "render", data={}),
        },
        "judge": {
            "a": ok("a", "judge", score=0.0, reason="render failed: latex_compile_failed", data={}),
            "b": skipped("b", "judge", "no judge configured"),
        },
    }
    rows = {r["id"]: r for r in item_rows("vision2code", items, records, ["render", "judge"])}
    assert rows["a"]["outcome"] == "failed" and rows["a"]["failures"] == ["render: compile error"]
    assert rows["b"]["outcome"] == "not scored" and rows["b"]["notes"] == [
        "judge: skipped: no judge configured"
    ]


# --- report.html -------------------------------------------------------------------------------------


def test_every_item_is_on_the_page_with_score_category_outcome_and_reason(tmp_path):
    store = FilesystemStore(tmp_path / "store")
    plan, summary, items, records = artifactsbench_run(store)
    page = render_html(summary, items, records, plan, store)
    assert cards(page) == [item["id"] for item in items]  # all 42, in item order (not 5 best + 5 worst)
    assert 'data-outcome="failed"' in page[page.index('id="item-item-07"') - 40 :][:200]
    assert 'data-category="Data Science"' in page and "Game Development" in page
    assert LONG_REASON in page  # the whole reason
    # Failures and notes are separate sections; a note is not listed as a failure.
    failures = page[page.index('id="failures"') : page.index('id="notes"')]
    notes = page[page.index('id="notes"') : page.index('id="items"')]
    assert "Failures (4 of 42 items)" in failures and "unjudgeable" in failures
    assert "navigation(s) away contained" in notes and "navigation(s)" not in failures
    assert '<select id="cat"' in page and 'id="failed-only"' in page and 'id="q"' in page


def test_thumbnails_are_small_and_link_to_the_full_size_image_in_the_store(tmp_path):
    import base64
    import io

    from PIL import Image

    store = FilesystemStore(tmp_path / "store")
    plan, summary, items, records = artifactsbench_run(store, n=6)
    page = render_html(summary, items, records, plan, store)
    links = re.findall(r'<a class="full" href="([^"]+)"[^>]*><img src="data:image/jpeg;base64,([^"]+)"', page)
    assert len(links) == 3 * 6
    report_dir = (store.root / plan.layout.report_html).parent
    for href, thumb in links:
        full = (report_dir / href).resolve()
        assert full.is_file() and Image.open(full).size == (1280, 720)
        assert Image.open(io.BytesIO(base64.b64decode(thumb))).width <= THUMB_WIDTH


def test_a_copy_written_elsewhere_brings_its_full_size_images(tmp_path):
    store = FilesystemStore(tmp_path / "store")
    plan, summary, items, records = artifactsbench_run(store, n=3)
    out = tmp_path / "out" / "report.html"
    folder = export_html(store, plan, summary, items, records, out)
    hrefs = re.findall(r'<a class="full" href="([^"]+)"', out.read_text())
    assert len(hrefs) == 9 and all(h.startswith("report_files/") for h in hrefs)
    assert all((out.parent / h).is_file() for h in hrefs) and folder == out.parent / "report_files"


def test_the_humanevalv_page_lists_the_failed_samples_with_their_reason(tmp_path):
    store = FilesystemStore(tmp_path)
    plan, summary, items, records = humanevalv_run(store)
    page = render_html(summary, items, records, plan, store)
    assert "No failed" not in page and "Failures (36 of 72 items)" in page
    assert len(cards(page)) == 72 and page.count('data-outcome="failed"') == 36
    assert "oracle: AssertionError: solution(11, 5) should be 56" in page


# --- report.md ------------------------------------------------------------------------------------


def test_markdown_keeps_reasons_whole_and_failures_apart_from_notes(tmp_path):
    store = FilesystemStore(tmp_path)
    plan, summary, items, records = artifactsbench_run(store)
    summary = {**summary, "finished_at": "now", "stages": []}
    md = render_markdown(summary, items, records, plan)
    assert LONG_REASON in md
    failures = md[md.index("## Failures") : md.index("## Notes")]
    notes = md[md.index("## Notes") : md.index("## Items")]
    assert "navigation(s) away contained" in notes and "navigation(s)" not in failures
    for item in items:
        assert f"| {item['id']} |" in md
    line = next(row for row in md.splitlines() if row.startswith("| item-07 |"))
    assert "| failed |" in line and LONG_REASON in line


# --- compare ----------------------------------------------------------------------------------------


def scores(benchmark, items, records, stages):
    from proctor_jobs.scoring.items import item_scores

    return {row["id"]: row for row in item_scores(benchmark, items, records, stages)}


def test_compare_speaks_percent_for_humanevalv_with_one_row(tmp_path):
    store = FilesystemStore(tmp_path)
    _, _, items, rec_a = humanevalv_run(store)
    _, _, _, rec_b = humanevalv_run(store, passes=lambda t, s: s % 2 == 0 or t < 3)
    factor, unit, label = summary_units("humanevalv")
    assert (factor, unit, label) == (100.0, "%", "pass@1")
    result = compare(
        scores("humanevalv", items, rec_a, ["oracle"]),
        scores("humanevalv", items, rec_b, ["oracle"]),
        200,
        1,
        factor,
    )
    assert [row["category"] for row in result["rows"]] == ["(all)"]  # no duplicate "all" row
    overall = result["rows"][0]
    assert overall["mean_a"] == pytest.approx(50.0) and overall["mean_b"] == pytest.approx(62.5)
    assert overall["delta"] == pytest.approx(12.5)


def test_compare_gives_one_row_per_group(tmp_path):
    store = FilesystemStore(tmp_path)
    _, _, items, rec_a = artifactsbench_run(store)
    _, _, _, rec_b = artifactsbench_run(store, score=lambda i: (i * 37) % 101 + (10 if i % 6 == 0 else 0))
    result = compare(
        scores("artifactsbench", items, rec_a, ["render", "judge"]),
        scores("artifactsbench", items, rec_b, ["render", "judge"]),
        200,
        1,
    )
    groups = [row["category"] for row in result["rows"]]
    assert groups == [
        "(all)",
        *sorted(
            {
                "Game Development",
                "Web Applications",
                "SVG Generation",
                "Data Science",
                "Simulation & Modeling",
                "Management Systems",
            }
        ),
    ]
    game = next(r for r in result["rows"] if r["category"] == "Game Development")
    assert game["delta"] == pytest.approx(10.0)


def test_runs_are_comparable_only_on_the_same_benchmark_tasks_and_scoring_profile(tmp_path):
    store = FilesystemStore(tmp_path)
    plan, _, items, _ = artifactsbench_run(store)
    ids = {item["id"] for item in items}
    assert comparability(plan, plan, ids, ids) == ([], [])

    # How a run goes (concurrency, the judge's URL) is not how it scores.
    busier = replace(
        plan,
        stages=[
            replace(plan.stages[0], config={**plan.stages[0].config, "concurrency": 32}),
            replace(plan.stages[1], config={**plan.stages[1].config, "url": "http://other/v1"}),
        ],
    )
    assert comparability(plan, busier, ids, ids) == ([], [])

    hv_plan = humanevalv_run(store)[0]
    hard, _ = comparability(plan, hv_plan, ids, ids)
    assert hard == ["different benchmarks: A is artifactsbench, B is humanevalv"]

    _, soft = comparability(plan, plan, ids, ids - {"item-01"})
    assert soft == ["different items: 1 only in A (item-01), 0 only in B; 41 in both"]

    other_judge = replace(plan, stages=[plan.stages[0], replace(plan.stages[1], config={"model": "judge-y"})])
    _, soft = comparability(plan, other_judge, ids, ids)
    assert soft == ["different scoring profile: judge.model is 'judge-x' in A, 'judge-y' in B"]
    assert scoring_profile(plan) == {"render": {"profile": "fixed"}, "judge": {"model": "judge-x"}}

    other_data = replace(plan, inputs={"benchmark": "c" * 64})
    assert comparability(plan, other_data, ids, ids)[1][0].startswith("different task data")

    render_only = replace(plan, stages=[plan.stages[0], replace(plan.stages[1], skip_reason="no judge")])
    assert comparability(plan, render_only, ids, ids)[1] == [
        "different scoring profile: stage judge runs only in A"
    ]


def test_report_html_needs_nothing_from_the_network(tmp_path):
    store = FilesystemStore(tmp_path)
    plan, summary, items, records = artifactsbench_run(store, n=4)
    page = render_html(summary, items, records, plan, store)
    assert not re.search(r"""(src|href)=["'](https?:)?//""", page)


def test_compare_refuses_runs_with_nothing_scored_in_both(tmp_path, monkeypatch, capsys):
    from types import SimpleNamespace

    import proctor.commands._runs as runs
    import proctor.commands.compare as cmd
    from proctor.cli import main

    store = FilesystemStore(tmp_path)
    plan = artifactsbench_run(store, n=2)[0]
    refs = {name: SimpleNamespace(plan=plan, label=name) for name in ("a", "b")}
    monkeypatch.setattr(runs, "locate_run", lambda run, store=None: refs[run])
    unscored = {f"item-0{i}": {"id": f"item-0{i}", "category": "Other", "score": None} for i in range(2)}
    monkeypatch.setattr(cmd, "scores_of", lambda ref: unscored)
    assert main(["compare", "a", "b"]) == 3
    err = capsys.readouterr()
    assert "not comparable: no item is scored in both" in err.err and "nan" not in err.out


def test_a_large_run_keeps_one_thumbnail_per_item_and_links_the_rest(tmp_path, monkeypatch):
    import proctor.report_html as report_html

    store = FilesystemStore(tmp_path)
    plan, summary, items, records = artifactsbench_run(store, n=6)
    monkeypatch.setattr(report_html, "MANY_ITEMS", 5)
    page = render_html(summary, items, records, plan, store)
    assert page.count("<img ") == 6 and page.count('class="full"') == 6 * 3
    assert len(cards(page)) == 6


def test_the_page_shows_what_the_run_cost_and_the_estimate_beside_the_actual(tmp_path):
    from proctor.cost import run_cost

    store = FilesystemStore(tmp_path / "store")
    plan, summary, items, records = artifactsbench_run(store, n=4)
    measured = {"render": {"sums": {"store_bytes_written": 123456, "worker_cpu_seconds": 7.25}}, "judge": {}}
    summary["cost"] = run_cost(["render", "judge"], records, measured)
    side = {"estimate": 4, "actual": 5}
    summary["estimate"] = {
        "beside_actual": {
            "judge": dict.fromkeys(
                ("calls", "prompt_tokens", "completion_tokens", "images", "prompt_tokens_per_call"), side
            )
        }
    }
    page = render_html(summary, items, records, plan, store)
    cost = page[page.index("<h2>Cost</h2>") :]
    assert "123456" in cost and "7.2" in cost and "bytes written" in cost
    assert "4 → 5" in cost  # the estimate made before the run, then what it was

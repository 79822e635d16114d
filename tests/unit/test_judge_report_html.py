"""report.html pieces: the histogram counts right, untrusted text stays text, and nothing is fetched."""

from __future__ import annotations

import re

from proctor import report_html
from proctor.plan import Plan, StagePlan
from proctor.report_html import histogram_svg, render_html
from proctor_jobs.records import ok
from proctor_jobs.store.fs import FilesystemStore


def bar_counts(svg: str) -> list[int]:
    return [int(n) for n in re.findall(r"<title>[^<]*: (\d+)</title>", svg)]


def test_histogram_bins_include_both_ends():
    svg = histogram_svg([0, 9.9, 10, 55, 100, 100], 0, 100)
    assert bar_counts(svg) == [2, 1, 0, 0, 0, 1, 0, 0, 0, 2]


def test_pass_fail_scores_get_two_labelled_bars():
    svg = histogram_svg([0, 1, 1, 0, 1], 0.0, 1.0)
    assert bar_counts(svg) == [2, 3] and "1 (pass)" in svg


def test_no_scores_no_plot():
    assert "<svg" not in histogram_svg([], 0, 100)


def test_hostile_text_from_answers_and_judges_is_escaped(tmp_path):
    store = FilesystemStore(tmp_path)
    evil = '<script>alert("x")</script><img src="http://evil.example/p.png">'
    plan = Plan(
        run_prefix="runs/default/r/u",
        benchmark="artifactsbench",
        shard_size=10,
        total_items=1,
        stages=[StagePlan("judge", "judge", 1, 1, None, {}, "h")],
    )
    items = [{"id": evil, "class": evil + "-x", "question": "q", "answer": evil}]
    judge = ok(evil, "judge", score=50.0, reason=evil, data={"judge_reason": evil, "reply": evil})
    summary = {
        "run": {"name": evil},
        "phase": "Succeeded",
        "items": 1,
        "scores": {"AVG": 50.0},
        "headline": "AVG",
        "stages": [],
        "breakdowns": {"by_domain": {evil: {"n": 1}}},
    }
    page = render_html(summary, items, {"judge": {evil: judge}}, plan, store)
    # The page's one script is its own filter, allowed by hash; no other script can run.
    assert page.count("<script") == 1 and f"<script>{report_html._SCRIPT}</script>" in page
    assert f"script-src 'sha256-{report_html._SCRIPT_HASH}'" in page and "default-src 'none'" in page
    assert "alert(" not in page.replace("alert(&quot;", "")
    assert "http://evil.example" not in page.replace("http://evil.example/p.png&quot;", "")
    assert not re.search(r"""<img[^>]+src=["']http""", page)
    assert "&lt;script&gt;" in page

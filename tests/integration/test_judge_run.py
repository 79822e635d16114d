"""A whole judged run through the real planner and worker: robust to a killed judge, resumable, reported.

The judge is the test double in its own process (so it can be SIGKILLed); the benchmark is an
ArtifactsBench-shaped adapter with a fake render stage (tests/integration/judge_fakebench.py) and
the real ArtifactsBench judge stage, scoring and reports.
"""

from __future__ import annotations

import json
import re
import threading
import time

import pytest

from proctor.plan import plan_run, write_plan
from proctor.results import write_results
from proctor_jobs.benchmarks import get_benchmark
from proctor_jobs.judge.limits import forget_endpoints
from proctor_jobs.layout import RunLayout
from proctor_jobs.store.fs import FilesystemStore
from proctor_jobs.worker import load_shard_records, run_shard

ITEMS = 24
SHARDS = 3


@pytest.fixture
def judged_fake(monkeypatch):
    import proctor_jobs.benchmarks as registry
    from tests.integration.judge_fakebench import JudgedFakeBench

    monkeypatch.setitem(registry._ADAPTERS, "judged-fake", JudgedFakeBench)
    forget_endpoints()
    yield get_benchmark("judged-fake")
    forget_endpoints()


def plan(store, bench, url, name="judged", score=lambda i: (i * 7) % 101, **judge):
    tasks = [
        {
            "index": i,
            "question": f"Make page {i}",
            "checklist": [{"id": 0, "title": "t", "maxScore": 10}],
            "class": ["Game Development-Puzzle", "Web Applications-Other", "SVG Generation-SVG Icons"][i % 3],
            "difficulty": ["easy", "medium", "hard"][i % 3],
        }
        for i in range(ITEMS)
    ]
    answers = [
        {"index": i, "answer": f"<html><body>page {i} [[score:{score(i)}]]</body></html>"}
        for i in range(ITEMS)
    ]
    answers[5]["answer"] = "Sorry, no-html here [[score:12]]"
    spec = {
        "judge": {"url": url, "backoffSeconds": 0.05, "concurrency": 4, **judge},
        "sharding": {"shardSize": ITEMS // SHARDS},
    }
    items, _ = bench.work_items(tasks, answers, spec)
    the_plan, manifests = plan_run(bench, spec, items, RunLayout.for_run("default", name, "u1").prefix)
    write_plan(store, the_plan, manifests, items)
    return the_plan, spec


def run_stage(store, the_plan, stage):
    return [run_shard(store, the_plan.run_prefix, stage, i) for i in range(SHARDS)]


def judge_records(store, the_plan):
    out = {}
    for i in range(SHARDS):
        out.update(load_shard_records(store, the_plan.layout, "judge", i))
    return out


def test_killing_the_judge_mid_run_loses_nothing_and_rerunning_judges_nothing(
    tmp_path, judged_fake, judge_double_process
):
    double = judge_double_process(latency_s=0.15, capacity=2)
    store = FilesystemStore(tmp_path / "store")
    the_plan, _ = plan(store, judged_fake, double.url)
    run_stage(store, the_plan, "render")

    outcome: dict = {}
    worker = threading.Thread(target=lambda: outcome.update(result=run_stage(store, the_plan, "judge")))
    worker.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        stats = double.stats()
        if stats["outcomes"].get("ok", 0) >= 6 and stats["in_flight"] > 0:
            break  # killed with requests in flight, after some items are judged
        time.sleep(0.02)
    else:
        pytest.fail("the judge never had requests in flight")
    double.kill()
    time.sleep(2.0)  # longer than the whole retry budget of an item would last
    double.start()  # same port
    worker.join(120)
    assert not worker.is_alive()

    records = judge_records(store, the_plan)
    assert len(records) == ITEMS
    assert {r.status for r in records.values()} == {"ok"}
    for index in range(ITEMS):
        rec = records[f"task-{index}"]
        assert rec.score == (12.0 if index == 5 else float((index * 7) % 101))
        assert rec.data["charged_calls"] == 1  # the outage cost no item any of its budget
    assert any(
        any(
            call["outcome"] == "endpoint_down"
            for call in json.loads(store.get_bytes(r.evidence["judge_calls"]))
        )
        for r in records.values()
    ), "some item must have waited the outage out"

    # Re-running the stage judges nothing: every item is already recorded.
    log_before = len(double.log())
    again = run_stage(store, the_plan, "judge")
    assert sum(o.processed for o in again) == 0 and sum(o.reused for o in again) == ITEMS
    assert len(double.log()) == log_before


def test_a_judged_run_gives_the_leaderboard_exports_and_an_html_report(tmp_path, judged_fake, judge_double):
    double = judge_double()
    store = FilesystemStore(tmp_path / "store")
    the_plan, spec = plan(store, judged_fake, double.url)
    run_stage(store, the_plan, "render")
    run_stage(store, the_plan, "judge")
    summary, _ = write_results(store, the_plan, spec, {"name": "judged", "namespace": "default"}, "Succeeded")

    scores = [(i * 7) % 101 if i != 5 else 12 for i in range(ITEMS)]
    assert summary["headline"] == "AVG"
    assert summary["scores"]["AVG"] == pytest.approx(sum(scores) / ITEMS, abs=1e-4)
    assert {"GAME", "WEB", "SVG"} <= set(summary["scores"])
    assert summary["counts"]["text_only"] == 1
    export = store.get_text(the_plan.layout.export("artifactsbench_qvl.jsonl")).splitlines()
    assert len(export) == ITEMS and json.loads(export[0])["qvl_ans"] == "0"

    page = store.get_text(the_plan.layout.report_html)
    assert "<svg" in page and "Score distribution" in page
    assert page.count('src="data:image/jpeg;base64,') == 3 * (ITEMS - 1)  # every item, one text-only
    assert "judged on text only" in page
    assert "test-double verdict" in page  # the judge's reason beside the screenshots
    assert page.lower().count("<script") == 1  # the page's own filter, allowed by hash in its CSP
    assert not re.search(r"""(src|href)=["']https?://""", page)  # self-contained


def test_without_a_judge_the_stage_is_skipped_with_a_notice(tmp_path, judged_fake):
    bench = judged_fake
    items, _ = bench.work_items(
        [{"index": 0, "question": "q", "checklist": [], "class": "Other-X"}],
        [{"index": 0, "answer": "<html></html>"}],
        {},
    )
    the_plan, _ = plan_run(bench, {}, items, "runs/default/nojudge/u1")
    assert [s.name for s in the_plan.active_stages] == ["render"]
    assert "no judge configured" in the_plan.notices[0]


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def open_in_chromium(path) -> dict:
    """What a browser shows of a page: images decoded, and what sits beside each item's images."""
    import os

    if not os.path.exists(CHROMIUM):
        if os.environ.get("PROCTOR_REQUIRE_ENV") == "1":
            pytest.fail(f"{CHROMIUM} is missing (tests/setup.d/50-judge.sh installs it)")
        pytest.skip(f"{CHROMIUM} is missing (tests/setup.d/50-judge.sh installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            requests: list[str] = []
            page.on("request", lambda r: requests.append(r.url))
            page.goto(path.as_uri())
            page.wait_for_load_state("load")
            return page.evaluate(
                """() => ({
                    images: [...document.images].map(i => ({ok: i.complete && i.naturalWidth > 0,
                                                            width: i.getBoundingClientRect().width})),
                    items: [...document.querySelectorAll('.item')].map(div => {
                        const shots = div.querySelector('.shots').getBoundingClientRect();
                        const why = div.querySelector('.why').getBoundingClientRect();
                        return {images: div.querySelectorAll('img').length,
                                reason: div.querySelector('.why pre').innerText,
                                besides: why.left >= shots.right - 1 && why.top < shots.bottom};
                    }),
                    svg: document.querySelectorAll('svg rect').length,
                })"""
            ) | {"requests": requests}
        finally:
            browser.close()


def test_report_opens_in_chromium_with_screenshots_beside_reasons(tmp_path, judged_fake, judge_double):
    double = judge_double()
    store = FilesystemStore(tmp_path / "store")
    the_plan, spec = plan(store, judged_fake, double.url)
    run_stage(store, the_plan, "render")
    run_stage(store, the_plan, "judge")
    write_results(store, the_plan, spec, {"name": "judged", "namespace": "default"}, "Succeeded")
    path = tmp_path / "report.html"
    store.get_file(the_plan.layout.report_html, path)

    shown = open_in_chromium(path)
    assert shown["images"] and all(i["ok"] and i["width"] > 50 for i in shown["images"])
    with_images = [i for i in shown["items"] if i["images"]]
    assert len(shown["items"]) == ITEMS and len(with_images) == ITEMS - 1  # one judged on text only
    for item in with_images:
        assert item["images"] == 3 and item["besides"]
        assert "test-double verdict" in item["reason"]
    assert shown["svg"] >= 10  # the histogram's bars
    assert all(url.startswith(("file:", "data:")) for url in shown["requests"])

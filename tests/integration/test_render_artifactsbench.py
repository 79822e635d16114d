"""The ArtifactsBench render stage end to end: records, evidence, the render cache, the example run."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from proctor_jobs.benchmarks import get_benchmark
from proctor_jobs.store.fs import FilesystemStore
from proctor_jobs.worker import load_shard_records, run_shard

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
FIXTURE_TASKS = REPO / "tests/fixtures/artifactsbench/tasks.jsonl"


@pytest.fixture(autouse=True)
def needs_chromium():
    if not Path("/usr/bin/chromium").exists():
        if os.environ.get("PROCTOR_REQUIRE_ENV") == "1":
            pytest.fail("Chromium missing (tests/setup.d/20-render.sh installs it)")
        pytest.skip("Chromium missing")


def plan_and_write(store, prefix: str, answers: list[dict], spec: dict):
    from proctor.plan import plan_run, write_plan

    bench = get_benchmark("artifactsbench")
    tasks = bench.parse_tasks([json.loads(line) for line in FIXTURE_TASKS.read_text().splitlines()])
    wanted = {a["index"] for a in answers}
    tasks = [t for t in tasks if t["index"] in wanted]
    items, _ = bench.work_items(tasks, bench.parse_answers(answers), spec)
    plan, manifests = plan_run(bench, spec, items, prefix)
    write_plan(store, plan, manifests, items)
    return plan


ANSWERS = [
    {
        "index": 1720,
        "answer": "```html\n<!DOCTYPE html><html><body><canvas id=c width=300 height=200></canvas>"
        "<script src='https://cdnjs.cloudflare.com/ajax/libs/matter-js/0.19.0/matter.min.js'>"
        "</script><script>const g=document.getElementById('c').getContext('2d');"
        "g.fillStyle='orange';g.fillRect(10,10,100,80+Matter.Common.random(0,1));</script>"
        "</body></html>\n```",
    },
    {
        "index": 57,
        "answer": "```svg\n<svg xmlns='http://www.w3.org/2000/svg' width='300' height='120'>"
        "<rect width='300' height='120' fill='#85bb65'/><text x='150' y='70' "
        "text-anchor='middle' font-size='40'>$100</text></svg>\n```",
    },
    {"index": 230, "answer": "Run `npm i tailwindcss` and add the Vite plugin."},
]


def test_render_records_hold_the_evidence_and_a_second_run_renders_nothing(tmp_path, monkeypatch):
    store = FilesystemStore(tmp_path / "store")
    spec = {"render": {"deadlineSeconds": 20}}
    plan = plan_and_write(store, "runs/t/first/u1", ANSWERS, spec)
    outcome = run_shard(store, plan.run_prefix, "render", 0)
    assert outcome.counts == {"ok": 3, "failed": 0, "skipped": 0, "env_error": 0}
    records = load_shard_records(store, plan.layout, "render", 0)

    page = records["1720"]
    assert page.data["extraction"]["kind"] == "html" and not page.data["cached"]
    assert len(page.data["screenshots"]) == 3 and page.data["screenshots"] == [
        page.evidence[f"screenshot_{i}"] for i in range(3)
    ]
    assert store.get_bytes(page.evidence["screenshot_0"]).startswith(b"\x89PNG")
    assert "matter.min.js" not in store.get_text(page.evidence["html"]) or "<script" in store.get_text(
        page.evidence["html"]
    )
    log = store.get_json(page.evidence["console"])
    assert {"console", "page_errors", "blocked_requests", "timings", "libraries_served"} <= set(log)
    assert page.data["libraries"] == ["matter-js@0.19.0/build/matter.min.js"]
    assert {"load_s", "network_idle_s", "screenshots_s", "total_s"} <= set(page.data["timings"])
    assert page.data["cache_key"] and page.evidence["html"].startswith(
        f"cache/render/{page.data['cache_key']}/"
    )
    assert records["57"].data["extraction"]["kind"] == "svg"
    nothing = records["230"]
    assert nothing.status == "ok" and nothing.data["extraction"]["kind"] == "none"
    assert nothing.data["screenshots"] == [] and nothing.reason.startswith("nothing to render")

    # The same run again: every item is already recorded, nothing is worked.
    again = run_shard(store, plan.run_prefix, "render", 0)
    assert (again.processed, again.reused) == (0, 3)

    # Another run (another model, same answers): everything comes from the render cache and no
    # browser is ever started.
    from proctor_jobs.render.farm import BrowserFarm

    async def no_browser(self):
        raise AssertionError("a browser was started for a cached page")

    monkeypatch.setattr(BrowserFarm, "_ensure_browser", no_browser)
    plan2 = plan_and_write(store, "runs/t/second/u2", ANSWERS, spec)
    second = run_shard(store, plan2.run_prefix, "render", 0)
    assert second.counts["ok"] == 3
    for item_id, rec in load_shard_records(store, plan2.layout, "render", 0).items():
        if rec.data["extraction"]["kind"] != "none":
            assert rec.data["cached"], item_id
            assert rec.evidence == records[item_id].evidence


def test_the_faithful_profile_records_what_the_original_would_show(tmp_path):
    store = FilesystemStore(tmp_path / "store")
    answers = [{"index": 885, "answer": "```jsx\nexport default function App() { return <h1>Hi</h1>; }\n```"}]
    faithful = plan_and_write(store, "runs/t/f/u", answers, {"render": {"profile": "faithful"}})
    run_shard(store, faithful.run_prefix, "render", 0)
    rec = load_shard_records(store, faithful.layout, "render", 0)["885"]
    assert rec.data["extraction"] == {
        "kind": "none",
        "profile": "faithful",
        "corrections": [],
        "reason": "no <html>…</html> or <svg>…</svg> in the answer (case-sensitive)",
    }
    fixed = plan_and_write(
        store, "runs/t/x/u", answers, {"render": {"profile": "fixed", "deadlineSeconds": 20}}
    )
    run_shard(store, fixed.run_prefix, "render", 0)
    rec = load_shard_records(store, fixed.layout, "render", 0)["885"]
    assert rec.status == "ok" and rec.data["extraction"]["kind"] == "react" and not rec.data["blank"]
    assert rec.data["page_errors"] == 0 and len(rec.data["screenshots"]) == 3


# The example run's render records (every item, every hostile answer within its deadline) are checked
# on the run tests/integration/test_judge_example.py makes: one run of the example for both.

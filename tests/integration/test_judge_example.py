"""The issue's "Done when", through the CLI on the real ArtifactsBench example and a real browser:
`proctor run examples/artifactsbench/evalrun.yaml --judge-url <test double>` gives the leaderboard and
a report.html with screenshots beside the judge's reasons; killing the judge mid-run and restarting
it loses no item; running again judges nothing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.integration.test_judge_run import open_in_chromium

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples/artifactsbench/evalrun.yaml"

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def needs_the_example_and_chromium():
    missing = [str(p) for p in (EXAMPLE, Path("/usr/bin/chromium")) if not p.exists()]
    if missing:
        message = f"missing {', '.join(missing)} (tests/setup.d installs Chromium)"
        if os.environ.get("PROCTOR_REQUIRE_ENV") == "1":
            pytest.fail(message)
        pytest.skip(message)


def proctor_run(url: str, store: Path, timeout: float = 600) -> tuple[subprocess.Popen, list]:
    argv = [
        sys.executable,
        "-m",
        "proctor",
        "run",
        str(EXAMPLE),
        "--judge-url",
        url,
        "--store",
        str(store),
        "--json",
        "--quiet",
        "--workers",
        "2",
    ]
    return subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "judge"


def finish(proc: subprocess.Popen, timeout: float = 600) -> dict:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err[-3000:]
    return json.loads(out.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def example_run(tmp_path_factory):
    """The example run once, with its judge killed mid-run and restarted: the judge's and the render
    stage's tests read the same run (it is the suite's longest local run)."""
    from tests.doubles.judge_server import JudgeDoubleProcess

    double = JudgeDoubleProcess(0, latency_s=0.3, capacity=2).start()
    try:
        store = tmp_path_factory.mktemp("artifactsbench-example") / "store"
        proc = proctor_run(double.url, store)
        deadline = time.monotonic() + 400
        while time.monotonic() < deadline and proc.poll() is None:
            stats = double.stats()
            if stats["outcomes"].get("ok", 0) >= 5 and stats["in_flight"] > 0:
                break  # kill it with requests in flight
            time.sleep(0.05)
        assert proc.poll() is None, "the run ended before the judge could be killed"
        double.kill()
        time.sleep(3.0)
        double.start()  # same port, so the same run
        yield double, store, finish(proc)
    finally:
        double.kill()


def test_example_run_survives_a_killed_judge_and_reports(example_run):
    double, store, result = example_run
    items = result["counts"]["total"]
    assert result["phase"] == "Succeeded" and items >= 30
    # The same numbers a run without a judge outage gives (the double's scores are a function of the
    # answers); the end-to-end test checks the cluster against the same file.
    golden = json.loads((FIXTURES / "artifactsbench_example_double_scores.json").read_text())["scores"]
    assert result["scores"] == pytest.approx(golden)
    assert result["headline"] == "AVG" and {"AVG", "GAME", "SVG", "WEB"} <= set(result["scores"])
    run_dir = store / result["run_prefix"]
    summary = json.loads((run_dir / "summary.json").read_text())
    judge = next(s for s in summary["stages"] if s["name"] == "judge")
    assert judge["succeeded"] == items and judge["failed"] == 0, judge
    assert summary["counts"]["judged"] == items
    # What the judging cost, from the records: every item called it, the outage's retries counted apart,
    # tokens from the API's usage (the double counts each screenshot by its size: >= 1198 for 1280x720).
    cost = summary["cost"]["stages"]["judge"]["model"]
    assert cost["items"] == items and cost["calls"] >= items and cost["usage_missing"] == 0
    assert cost["retried_calls"] == cost["calls"] - items
    assert cost["images"] > 0 and cost["prompt_tokens"] >= 1198 * cost["images"]
    assert summary["cost"]["stages"]["render"]["worker"]["bytes_written"] > 0
    # The estimate made before the run (templates + render size, nothing rendered) is within 20% of
    # the tokens the judge counted; every item was judged once (the outage's retries carry no tokens).
    side = summary["estimate"]["beside_actual"]["judge"]
    assert side["calls"]["estimate"] == side["calls"]["once_rendered"] == items
    for key in ("prompt_tokens", "prompt_tokens_per_call", "images"):
        for made in ("estimate", "once_rendered"):
            assert abs(side[key]["actual"] / side[key][made] - 1) <= 0.2, (key, made, side[key])
    # Once the renders were known, the screenshots each item sends are exact.
    assert side["images"]["once_rendered"] == side["images"]["actual"]
    assert summary["cost"]["total"]["calls"] == cost["calls"]
    assert "## Cost" in (run_dir / "report.md").read_text()

    # Again: everything is reused; the judge sees only the preflight's one tiny text request.
    seen = len(double.log())
    again = finish(proctor_run(double.url, store))
    assert again["counts"]["processed"] == 0 and again["counts"]["reused"] == items
    assert [entry["images"] for entry in double.log()[seen:]] == [0]

    shown = open_in_chromium(run_dir / "report.html")
    assert shown["images"] and all(image["ok"] for image in shown["images"])
    judged_with_screens = [i for i in shown["items"] if i["images"]]
    assert judged_with_screens and all(
        i["besides"] and "test-double verdict" in i["reason"] for i in judged_with_screens
    )
    assert all(url.startswith(("file:", "data:")) for url in shown["requests"])


def test_vision2code_example_gives_the_leaderboard_and_original_exports(tmp_path, judge_double_process):
    example = REPO / "examples/vision2code/evalrun.yaml"
    if not example.exists():
        pytest.skip(f"missing {example}")
    double = judge_double_process()
    store = tmp_path / "store"
    argv = [
        sys.executable,
        "-m",
        "proctor",
        "run",
        str(example),
        "--judge-url",
        double.url,
        "--store",
        str(store),
        "--json",
        "--quiet",
        "--workers",
        "2",
    ]
    result = finish(
        subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    )
    assert result["headline"] == "benchmark_score_0_to_5"
    scores = result["scores"]
    assert 0.0 <= scores["benchmark_score_0_to_5"] <= 5.0 and "render_success_rate" in scores
    exports = store / result["run_prefix"] / "exports"
    evaluation = json.loads((exports / "benchmark_eval__openai_judge_double.json").read_text())
    rows = {row["question_folder"]: row for row in evaluation["rows"]}
    real = rows["ChartQA_test_000509_2ac3907c97d2"]  # the published sample, judged by the double
    assert real["rubric_dataset"] == "ChartQA" and real["rating_final_0_to_5"] is not None
    failed_renders = [r for r in evaluation["rows"] if not r["render_success"]]
    assert failed_renders and all(r["rating_final_0_to_5"] == 0.0 for r in failed_renders)
    # Rated by the double: rater requests carried the reference then the candidate image.
    # (The first request is the preflight's: one token, no image.)
    preflight, *rated = double.log()
    assert preflight["images"] == 0 and all(entry["images"] == 2 for entry in rated)
    assert len(rated) == len(evaluation["rows"]) - len(failed_renders)
    # Before the run every item is assumed to reach the judge (a failed render is rated 0 without a
    # call, which is unknowable before rendering): its calls bound the actual. Once the renders are
    # known (the judge's bill before it is paid) the calls are exact and the tokens within 20%.
    summary = json.loads((exports.parent / "summary.json").read_text())
    side = summary["estimate"]["beside_actual"]["judge"]
    assert side["calls"]["estimate"] == len(evaluation["rows"]) >= side["calls"]["actual"] == len(rated)
    assert side["calls"]["once_rendered"] == side["calls"]["actual"]
    assert side["images"]["once_rendered"] == side["images"]["actual"]
    for key in ("prompt_tokens", "prompt_tokens_per_call"):
        assert abs(side[key]["actual"] / side[key]["once_rendered"] - 1) <= 0.2, (key, side[key])
    per_call = side["prompt_tokens_per_call"]
    assert abs(per_call["actual"] / per_call["estimate"] - 1) <= 0.2, per_call


HOSTILE_IDS = {
    "1510": "endless loop",
    "61": "alert loop",
    "1600": "window.open spam",
    "1047": "200 MB DOM",
    "1716": "outside requests",
    "325": "navigation away",
    "1337": "meta refresh",
}


def test_the_example_run_records_every_item_and_every_hostile_answer_within_its_deadline(example_run):
    """The render stage's "Done when" on the same run: every item recorded with its evidence, every
    hostile answer ended within its deadline (`deadlineSeconds: 30` in the example)."""
    from proctor.plan import read_plan
    from proctor_jobs.store.fs import FilesystemStore
    from proctor_jobs.worker import load_shard_records

    _, store_dir, result = example_run
    store = FilesystemStore(store_dir)
    plan = read_plan(store, result["run_prefix"])
    deadline = float(plan.stage("render").config["deadline_s"])
    records = {}
    for index in range(plan.stage("render").shards):
        records.update(load_shard_records(store, plan.layout, "render", index))
    assert len(records) == 42
    for item_id, rec in records.items():
        assert rec.status in ("ok", "failed"), item_id
        kind = rec.data["extraction"]["kind"]
        if kind == "none":
            assert store.exists(rec.evidence["console"]), item_id
            continue
        assert store.exists(rec.evidence["html"]) and store.exists(rec.evidence["console"]), item_id
        assert isinstance(rec.data["blocked_requests"], list) and rec.data["timings"].get("total_s"), item_id
        if rec.status == "ok":
            # 3 screenshots; fewer only when the page ran out of time, and then the record says so
            shots = len(rec.data["screenshots"])
            assert shots == 3 or (1 <= shots < 3 and "deadline" in rec.reason), (item_id, shots, rec.reason)
        else:
            assert rec.reason and rec.data["extraction"]["kind"] == "html", item_id  # the judge reads it
    for item_id, what in HOSTILE_IDS.items():
        rec = records[item_id]
        assert rec.duration_s < deadline + 20, f"{what} took {rec.duration_s} s"
    assert records["1716"].status == "ok" and len(records["1716"].data["blocked_requests"]) >= 4
    assert records["325"].data["navigations_blocked"] >= 1 and records["1337"].data["reloads_blocked"] >= 1
    assert records["1600"].data["popups"] >= 100
    for item_id in ("1510", "61"):
        assert records[item_id].status == "failed" and "deadline" in records[item_id].reason
    # The 200 MB DOM is ended by whichever limit it meets first: the deadline, or on a loaded machine
    # the renderer's memory cap (seen in CI at 35 s, past the 30 s deadline but within its grace).
    bomb = records["1047"]
    assert bomb.status == "failed" and ("deadline" in bomb.reason or "renderer process died" in bomb.reason)
    report = store.get_text(plan.layout.report_md)
    for item_id in records:
        assert f"| {item_id} |" in report

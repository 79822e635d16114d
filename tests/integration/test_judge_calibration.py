"""Judge calibration against the judge test double: its modes (blind, bias, noise, usage), `proctor judge
check` passing a seeing judge and failing a blind one, and the verdict the calibration Job leaves for the
operator (a blind judge held back, a seeing one passed)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from proctor.reconcile.judgeserver import calibration_verdict
from proctor_jobs.judge.calibration import calibrate, load_set
from proctor_jobs.judge.limits import forget_endpoints

REPO = Path(__file__).resolve().parents[2]
ALL_ITEMS = [f"{b}/{i.id}" for b in ("artifactsbench", "vision2code") for i in load_set(b)]


@pytest.fixture(autouse=True)
def fresh_endpoints():
    forget_endpoints()
    yield
    forget_endpoints()


def scores(outcomes) -> dict[str, float | None]:
    return {o.name: o.score for o in outcomes}


def test_a_seeing_judge_passes_and_a_blind_one_fails_on_the_items_that_need_eyes(judge_double):
    seeing = asyncio.run(calibrate(judge_double().url))
    assert [o.name for o in seeing] == ALL_ITEMS
    assert all(o.passed for o in seeing), [o.to_dict() for o in seeing if not o.passed]
    assert scores(seeing)["artifactsbench/calendar-blank-screenshot"] <= 10  # it saw the empty page

    double = judge_double(blind=True)
    blind = asyncio.run(calibrate(double.url))
    by_name = {o.name: o for o in blind}
    for name in ALL_ITEMS:
        if name != "vision2code/bar-blank":  # the benchmark's own blank-image cap scores that one
            assert not by_name[name].passed, name
    assert {o.score for o in blind if o.benchmark == "artifactsbench"} == {50.0}
    assert by_name["vision2code/bar-exact"].score == 2.5
    # The calibration asked what a run asks: the benchmark prompts, with the images.
    assert [r["images"] for r in double.requests] == [1, 1, 1, 1, 2, 2, 2]
    assert all('"Overall Score"' in r["text"] for r in double.requests[:4])
    assert all("category_scores" in r["text"] for r in double.requests[4:])


def test_bias_shifts_noise_scatters_and_both_are_fixed_per_request(judge_double):
    plain = scores(asyncio.run(calibrate(judge_double().url)))
    biased = scores(asyncio.run(calibrate(judge_double(bias=0.2).url)))
    assert biased["artifactsbench/calculator"] == min(100, plain["artifactsbench/calculator"] + 20)
    assert (
        biased["artifactsbench/calendar-blank-screenshot"]
        == plain["artifactsbench/calendar-blank-screenshot"] + 20
    )
    lowered = scores(asyncio.run(calibrate(judge_double(bias=-0.2).url, benchmarks=("vision2code",))))
    assert lowered["vision2code/bar-exact"] == pytest.approx(4.0)

    noisy = judge_double(noise=0.1, seed=3)
    first = scores(asyncio.run(calibrate(noisy.url)))
    again = scores(asyncio.run(calibrate(noisy.url)))
    assert first == again  # the same request gets the same score
    assert first != plain  # but not the plain one
    other = scores(asyncio.run(calibrate(judge_double(noise=0.1, seed=4).url)))
    assert other != first  # another judge (seed) has other opinions
    assert all(0 <= s <= 100 for s in first.values())


def test_usage_reporting_can_be_switched_off(judge_double):
    reported = asyncio.run(calibrate(judge_double().url, benchmarks=("artifactsbench",)))
    assert all(o.usage.get("total_tokens", 0) > 0 for o in reported)
    silent = asyncio.run(calibrate(judge_double(usage=False).url, benchmarks=("artifactsbench",)))
    assert all(o.usage == {} for o in silent) and all(o.passed for o in silent)


def judge_check(url: str, *args: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO / "jobs"), str(REPO / "operator"), str(REPO)]),
    }
    return subprocess.run(
        [sys.executable, "-m", "proctor", "judge", "check", "--judge-url", url, *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_judge_check_passes_a_seeing_judge_and_fails_a_blind_one_naming_the_items(judge_double_process):
    good = judge_check(judge_double_process().url)
    assert good.returncode == 0, good.stdout + good.stderr
    lines = good.stdout.splitlines()
    assert lines[0].split()[:4] == ["item", "expected", "score", "result"]
    for name in ALL_ITEMS:
        [row] = [line for line in lines if line.startswith(name + " ")]
        assert " pass " in row
    assert lines[-1] == f"calibration passed: {len(ALL_ITEMS)} of {len(ALL_ITEMS)} items inside their bands"

    blind = judge_double_process(blind="true")
    bad = judge_check(blind.url, "--benchmark", "artifactsbench", "--model", "judge-double")
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "calibration failed on 4 of 4 items" in bad.stdout
    for item in load_set("artifactsbench"):
        [row] = [line for line in bad.stdout.splitlines() if line.startswith(f"artifactsbench/{item.id} ")]
        assert " 50 " in row and " FAIL " in row
    assert "vision2code" not in bad.stdout

    as_json = judge_check(blind.url, "--benchmark", "vision2code", "--json")
    assert as_json.returncode == 1
    rows = {r["item"]: r for r in json.loads(as_json.stdout)}
    assert rows["vision2code/bar-exact"]["passed"] is False and rows["vision2code/bar-exact"]["score"] == 2.5


def test_judge_check_against_a_model_the_server_does_not_serve_fails(judge_double):
    out = judge_check(judge_double().url, "--benchmark", "vision2code", "--model", "not-served")
    assert out.returncode == 1
    assert "does not exist" in out.stdout and "FAIL" in out.stdout


def verdict_of(url: str, tmp_path: Path, *args: str):
    """Run the calibration Job's command (`proctor judge check --result-file`, as the Job runs it) and
    read its termination message the way the operator does."""
    result = tmp_path / "termination-log"
    result.unlink(missing_ok=True)
    out = judge_check(url, "--model", "judge-double", "--result-file", str(result), *args)
    message = result.read_text()
    assert len(message.encode()) <= 4096  # a Kubernetes termination message's limit
    return calibration_verdict(message, "Complete" if out.returncode == 0 else "Failed"), out


def test_the_calibration_jobs_verdict_holds_a_blind_judge_back_and_lets_a_seeing_one_pass(
    judge_double, tmp_path
):
    blind = judge_double(blind=True)
    verdict, out = verdict_of(blind.url, tmp_path)
    assert out.returncode == 1 and not verdict["passed"]
    assert verdict["message"].startswith("calibration failed on 6 of 7 items: ")
    assert "artifactsbench/calculator scored 50, expected 55-100" in verdict["message"]
    assert '("Test-double rating without looking at the images.")' in verdict["message"]
    assert "test-double verdict without looking at the screen" in verdict["message"]
    assert verdict["items"] == 7 and "vision2code/chartqa-exact" in verdict["failed"]

    seeing = judge_double()
    verdict, out = verdict_of(seeing.url, tmp_path)
    assert out.returncode == 0 and verdict["passed"], verdict
    assert verdict["message"] == "calibration passed: 7 of 7 items inside their bands"
    assert verdict["failed"] == []

"""Judge calibration: the shipped sets, band checking, the table and summary, and the operator's
pure readiness decisions (which set a JudgeServer must pass, its phase while calibrating or failed,
and a waiting run's message)."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from proctor.reconcile.evalrun import input_blockers
from proctor.reconcile.judgeserver import CheckResult, calibration_choice, judge_phase
from proctor_jobs.judge.calibration import (
    BENCHMARKS,
    Outcome,
    image_bytes,
    in_band,
    load_set,
    resolve_benchmarks,
    summary,
    table,
)


@pytest.mark.parametrize(
    ("score", "band", "inside"),
    [
        (55.0, (55, 100), True),  # the band is closed at both ends
        (100.0, (55, 100), True),
        (54.9, (55, 100), False),
        (100.1, (55, 100), False),
        (0.0, (0, 30), True),
        (None, (0, 100), False),  # no score is never inside
        (4.0, (4.0, 5.0), True),
        (3.99, (4.0, 5.0), False),
    ],
)
def test_in_band(score, band, inside):
    assert in_band(score, band) is inside


def outcomes() -> list[Outcome]:
    return [
        Outcome("artifactsbench", "calculator", (55, 100), 90.0, said="A clean, working calculator."),
        Outcome("artifactsbench", "calendar-blank-screenshot", (0, 49), 50.0, said="Looks fine " * 20),
        Outcome(
            "vision2code", "bar-exact", (4.0, 5.0), None, error="unrated: judge failed 2 calls: HTTP 500"
        ),
    ]


def test_an_outcome_passes_only_inside_its_band_and_without_error():
    good, outside, broken = outcomes()
    assert good.passed and not outside.passed and not broken.passed
    assert not Outcome("vision2code", "x", (0, 5), 3.0, error="boom").passed


def test_the_table_shows_item_band_score_result_and_what_the_judge_said():
    text = table(outcomes(), said_chars=30)
    lines = text.splitlines()
    assert lines[0].split() == ["item", "expected", "score", "result", "the", "judge", "said"]
    assert set(lines[1].replace(" ", "")) == {"-"}
    calc, blank, bar = lines[2:]
    assert calc.split()[:4] == ["artifactsbench/calculator", "55-100", "90", "pass"]
    assert "A clean, working calculator." in calc
    assert blank.split()[:4] == ["artifactsbench/calendar-blank-screenshot", "0-49", "50", "FAIL"]
    said = blank.split("FAIL", 1)[1].strip()
    assert said.endswith("…") and len(said) == 30  # truncated
    assert bar.split()[:4] == ["vision2code/bar-exact", "4-5", "-", "FAIL"]
    assert "unrated: judge failed" in bar  # an error is shown in place of words
    # the columns line up: every row's result starts where the header's does
    column = lines[0].index("result")
    assert all(line[column : column + 4] in ("pass", "FAIL") for line in lines[2:])


def test_the_summary_names_every_failed_item_with_its_score_band_and_words():
    text = summary(outcomes())
    assert text.startswith("calibration failed on 2 of 3 items: ")
    assert "artifactsbench/calendar-blank-screenshot scored 50, expected 0-49" in text
    assert "vision2code/bar-exact unrated: judge failed 2 calls: HTTP 500, expected 4-5" in text
    assert "artifactsbench/calculator" not in text
    passing = summary(outcomes()[:1])
    assert passing == "calibration passed: 1 of 1 items inside their bands"


@pytest.mark.parametrize("benchmark", BENCHMARKS)
def test_the_shipped_sets_are_small_well_formed_and_their_images_decode(benchmark):
    items = load_set(benchmark)
    assert 3 <= len(items) <= 4
    scale = 100 if benchmark == "artifactsbench" else 5
    for item in items:
        low, high = item.band
        assert 0 <= low < high <= scale, item.id
        names = item.record.get("screenshots") or [item.record.get("reference"), item.record.get("candidate")]
        for name in names:
            data = image_bytes(name)
            assert len(data) < 64 * 1024, name  # the set stays small
            assert Image.open(io.BytesIO(data)).size[0] > 0
    # Each set has items a judge must score high and items it must score low, and the middle of the
    # scale (what a judge that ignores the images tends to answer) fails at least one of each.
    middle = scale / 2
    assert any(item.band[0] > middle for item in items)
    assert any(item.band[1] < middle for item in items)


def test_the_blank_screenshot_probe_differs_from_its_twin_only_in_the_image():
    items = {i.id: i.record for i in load_set("artifactsbench")}
    probe, twin = items["calendar-blank-screenshot"], items["calendar"]
    assert probe["task"] == twin["task"] and probe["answer"] == twin["answer"]
    assert probe["screenshots"] != twin["screenshots"]
    blank = Image.open(io.BytesIO(image_bytes(probe["screenshots"][0]))).convert("RGB")
    assert all(low == high for low, high in blank.getextrema())


def test_resolve_benchmarks():
    assert resolve_benchmarks(None) == BENCHMARKS == resolve_benchmarks("all")
    assert resolve_benchmarks("vision2code") == ("vision2code",)
    with pytest.raises(ValueError, match="unknown calibration benchmark"):
        resolve_benchmarks("humanevalv")
    with pytest.raises(ValueError, match="no calibration set"):
        load_set("humanevalv")


VLLM = {"vllm": {"model": "m"}}
EXTERNAL = {"external": {"baseUrl": "http://x/v1", "model": "m"}}


@pytest.mark.parametrize(
    ("spec", "choice"),
    [
        (VLLM, "all"),  # on by default for a vLLM judge
        (EXTERNAL, None),  # off by default for an external one
        ({**VLLM, "healthCheck": False}, None),
        ({**VLLM, "calibration": {"enabled": False}}, None),
        ({**EXTERNAL, "calibration": {"enabled": True}}, "all"),
        ({**EXTERNAL, "calibration": {"enabled": True, "benchmark": "vision2code"}}, "vision2code"),
        ({**VLLM, "calibration": {"benchmark": "artifactsbench"}}, "artifactsbench"),
    ],
)
def test_which_calibration_a_judge_must_pass(spec, choice):
    assert calibration_choice(spec) == choice


def test_a_calibrating_judge_waits_and_a_failed_one_is_not_ready_with_the_reason():
    calibrating = CheckResult(False, "calibrating: asking the judge 7 items", True, "Calibrating")
    assert judge_phase("external", None, 1, [], calibrating, False)[:2] == ("Pending", "Calibrating")
    assert judge_phase("vllm", 1, 1, [], calibrating, False)[:2] == ("Loading", "Calibrating")
    failed = CheckResult(
        False, "calibration failed on 1 of 7 items: vision2code/bar-exact ...", True, "CalibrationFailed"
    )
    for kind, was_ready in (("external", False), ("vllm", True)):
        phase, reason, message = judge_phase(kind, 1, 1, [], failed, was_ready)
        assert (phase, reason) == ("Failed", "CalibrationFailed")
        assert "vision2code/bar-exact" in message
    # an ordinary failed check keeps its reason
    assert judge_phase("external", None, 1, [], CheckResult(False, "down"), False)[1] == "CheckFailed"


def test_a_run_waiting_on_a_judge_says_the_judges_reason():
    judge = {
        "status": {
            "phase": "Failed",
            "message": "calibration failed on 1 of 7 items: vision2code/bar-exact scored 2.5, expected 4-5",
            "conditions": [{"type": "Ready", "status": "False", "reason": "CalibrationFailed"}],
        }
    }
    spec = {"judge": {"serverRef": {"name": "j"}}}
    [blocker] = input_blockers(spec, {}, {"j": judge}, True)
    assert blocker.reason == "JudgeNotReady"
    assert blocker.message.startswith("JudgeServer 'j' is not ready (CalibrationFailed): calibration failed")
    assert "vision2code/bar-exact scored 2.5" in blocker.message


# --- the calibration Job and the operator's reading of it --------------------------------------------


def _config():
    from proctor.config import OperatorConfig

    return OperatorConfig()


def test_the_calibration_job_is_a_hardened_worker_pod_holding_only_the_judges_own_key():
    from proctor.k8s.judge import build_calibration_job

    config = _config()
    job = build_calibration_job(
        "team",
        "judge",
        "uid-1",
        endpoint="https://api.example/v1",
        model="m",
        choice="all",
        attempt=2,
        api_key={"name": "judge-key", "key": "token"},
        config=config,
    )
    assert job["metadata"]["name"].startswith("judge-calibrate-") and job["metadata"]["name"].endswith("-2")
    assert job["metadata"]["ownerReferences"][0]["kind"] == "JudgeServer"
    assert job["metadata"]["labels"]["proctor.dev/component"] == "calibration"
    assert job["spec"]["backoffLimit"] == 0 and job["spec"]["ttlSecondsAfterFinished"] > 0
    pod = job["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert pod["automountServiceAccountToken"] is False and pod["securityContext"]["runAsNonRoot"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert container["image"] == config.image_for("default")  # Proctor's worker image, not the operator's
    assert container["command"] == ["proctor", "judge", "check"]
    assert (
        container["args"][container["args"].index("--result-file") + 1] == container["terminationMessagePath"]
    )
    keys = [e for e in container["env"] if "valueFrom" in e]
    assert keys == [
        {
            "name": "PROCTOR_JUDGE_API_KEY",
            "valueFrom": {"secretKeyRef": {"name": "judge-key", "key": "token"}},
        }
    ]
    assert "envFrom" not in container  # no store credentials: it writes nowhere


def test_a_vllm_judge_lets_its_calibration_job_in():
    from proctor.k8s.judge import build_judge_network_policy

    policy = build_judge_network_policy("team", "judge", "uid", {"vllm": {"model": "m"}})
    allowed = [peer["podSelector"]["matchLabels"] for peer in policy["spec"]["ingress"][0]["from"]]
    assert any(labels.get("proctor.dev/component") == "calibration" for labels in allowed)


def test_which_attempt_is_current_and_which_verdict_stands():
    from proctor.reconcile.judgeserver import current_calibration

    passed = {"fingerprint": "f", "attempt": 3, "state": "Passed", "time": "2026-01-01T00:00:00Z"}
    failed = {**passed, "state": "Failed"}
    at = 1767225600.0  # 2026-01-01T00:00:00Z
    assert current_calibration(None, "f", at, 60) == (1, None)
    assert current_calibration(passed, "f", at + 10**6, 60) == (3, passed)  # holds for its fingerprint
    assert current_calibration(passed, "g", at, 60) == (1, None)  # a new endpoint, model or set: ask again
    assert current_calibration(failed, "f", at + 59, 60) == (3, failed)
    assert current_calibration(failed, "f", at + 60, 60) == (4, None)  # retried by a new Job
    assert current_calibration({**passed, "state": "Running"}, "f", at, 60) == (3, None)


@pytest.mark.parametrize(
    ("message", "outcome", "passed", "says"),
    [
        (
            '{"passed": true, "items": 7, "failed": [], "message": "calibration passed"}',
            "Complete",
            True,
            "passed",
        ),
        (
            '{"passed": false, "items": 7, "failed": ["a/b"], "message": "failed on 1"}',
            "Failed",
            False,
            "on 1",
        ),
        # The Job failed (killed, out of time) although its verdict says passed: not calibrated.
        (
            '{"passed": true, "items": 7, "failed": [], "message": "calibration passed"}',
            "Failed",
            False,
            "passed",
        ),
        (None, "Failed", False, "failed before it gave a verdict"),
        ("Traceback (most recent call last)", "Failed", False, "failed before it gave a verdict"),
        ("[1, 2]", "Complete", False, "ended without a verdict"),
    ],
)
def test_the_verdict_is_read_from_the_termination_message(message, outcome, passed, says):
    from proctor.reconcile.judgeserver import calibration_verdict

    verdict = calibration_verdict(message, outcome)
    assert verdict["passed"] is passed and says in verdict["message"]


def test_a_verdict_fits_a_termination_message_however_many_items_failed():
    import json

    from proctor_jobs.judge.calibration import verdict

    outcomes = [Outcome("artifactsbench", f"item-{i}", (55, 100), 10.0, said="x" * 500) for i in range(200)]
    text = verdict(outcomes)
    assert len(text.encode()) <= 4096
    value = json.loads(text)
    assert value["passed"] is False and value["items"] == 200 and value["failed"]
    assert json.loads(verdict(None, "the calibration could not run: refused"))["passed"] is False


def test_the_gate_creates_one_job_then_reads_its_verdict_into_the_status():
    import asyncio

    from proctor.controllers.calibration import calibration_gate
    from proctor.k8s.judge import calibration_fingerprint, calibration_job_name

    created, listed = [], []

    class FakeCluster:
        async def create(self, body):
            created.append(body)
            return True

        async def list_pods(self, namespace, selector):
            listed.append(selector)
            message = '{"passed": false, "items": 7, "failed": ["a/b"], "message": "failed on 1 of 7"}'
            state = {"terminated": {"exitCode": 1, "message": message}}
            return [{"status": {"containerStatuses": [{"name": "calibrate", "state": state}]}}]

    class Runtime:
        cluster = FakeCluster()
        config = _config()

    body = {
        "metadata": {"namespace": "team", "name": "judge", "uid": "u"},
        "spec": {"external": {"baseUrl": "http://j/v1", "model": "m"}, "calibration": {"enabled": True}},
        "status": {},
    }
    check = CheckResult(True, "served", True)
    down = CheckResult(False, "cannot reach", False)
    verdict, status = asyncio.run(calibration_gate(Runtime(), body, "http://j/v1", "m", down, {}))
    assert verdict is down and status["state"] == "Waiting" and not created  # no Job for a judge that is down

    verdict, status = asyncio.run(calibration_gate(Runtime(), body, "http://j/v1", "m", check, {}))
    name = calibration_job_name("judge", calibration_fingerprint("http://j/v1", "m", "all"), 1)
    assert [job["metadata"]["name"] for job in created] == [name]
    assert verdict.reason == "Calibrating" and status["state"] == "Running" and status["job"] == name
    running = {name: {"metadata": {"name": name}, "status": {}}}
    stored = {k: v for k, v in status.items() if v is not None}  # as a merge patch leaves it
    _, still = asyncio.run(
        calibration_gate(
            Runtime(), {**body, "status": {"calibration": stored}}, "http://j/v1", "m", check, running
        )
    )
    assert still == stored  # unchanged while the Job runs: the JudgeServer's status is not patched
    assert len(created) == 1 and not listed  # the Job exists: not created again

    failed = {
        name: {"metadata": {"name": name}, "status": {"conditions": [{"type": "Failed", "status": "True"}]}}
    }
    verdict, status = asyncio.run(
        calibration_gate(
            Runtime(), {**body, "status": {"calibration": status}}, "http://j/v1", "m", check, failed
        )
    )
    assert listed == [f"job-name={name}"]
    assert verdict.reason == "CalibrationFailed" and verdict.message == "failed on 1 of 7"
    assert status["state"] == "Failed" and status["failedItems"] == ["a/b"] and status["attempt"] == 1
    # The verdict stands (no new Job) until the retry is due.
    again, kept = asyncio.run(
        calibration_gate(
            Runtime(), {**body, "status": {"calibration": status}}, "http://j/v1", "m", check, {}
        )
    )
    assert kept == status and again.reason == "CalibrationFailed" and len(created) == 1
    # A judge that goes down while an attempt runs keeps that attempt (not back to the first).
    second = {**status, "state": "Running", "attempt": 2, "job": "judge-calibrate-x-2"}
    _, held = asyncio.run(
        calibration_gate(Runtime(), {**body, "status": {"calibration": second}}, "http://j/v1", "m", down, {})
    )
    assert held == second


def test_judge_check_leaves_a_verdict_when_the_calibration_cannot_run(monkeypatch, tmp_path):
    import argparse
    import json

    import proctor_jobs.judge.calibration as calibration
    from proctor.commands.judge import run_check
    from proctor.reconcile.judgeserver import calibration_verdict

    async def cannot(*_args, **_kwargs):
        raise RuntimeError("the judge lists no models")

    monkeypatch.setattr(calibration, "calibrate", cannot)
    result = tmp_path / "termination-log"
    args = argparse.Namespace(
        judge_url="http://judge/v1", model=None, benchmark="all", json=False, result_file=result
    )
    assert run_check(args) == 2
    assert json.loads(result.read_text())["passed"] is False
    verdict = calibration_verdict(result.read_text(), "Failed")  # what the operator reads of it
    assert not verdict["passed"]
    assert verdict["message"] == "the calibration could not run: the judge lists no models"

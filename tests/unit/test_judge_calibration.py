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

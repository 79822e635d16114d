"""JudgeServer readiness as pure functions: the pods' reasons and the functional check decide the phase.

Ready means *served*: pods ready is not enough; the operator's own check (the model is listed and a
one-image chat completion returns) must succeed, and, when calibration is on, the judge's scores for
the calibration items must fall in their bands (reason `Calibrating` while it runs,
`CalibrationFailed` with the items and what the judge said when not). Conditions carry what the pods
say, so `kubectl describe judgeserver` explains a stuck judge.
"""

from __future__ import annotations

import calendar
import json
import re
import time
from dataclasses import dataclass, replace
from typing import Any

from proctor.reconcile.conditions import Blocker

FATAL_WAITING = (
    "ImagePullBackOff",
    "ErrImagePull",
    "InvalidImageName",
    "CrashLoopBackOff",
    "CreateContainerConfigError",
)


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    message: str
    model_listed: bool = False
    reason: str = "CheckFailed"  # why not ok: CheckFailed | Calibrating | CalibrationFailed


def calibration_choice(spec: dict[str, Any]) -> str | None:
    """Which calibration set a JudgeServer must pass (`all`, `artifactsbench`, `vision2code`), or None.

    `spec.calibration.enabled` decides; unset, calibration is on for a vLLM judge whose functional
    check is on, and off for an external one (a hosted API bills every call)."""
    calibration = spec.get("calibration") or {}
    enabled = calibration.get("enabled")
    if enabled is None:
        enabled = bool(spec.get("vllm")) and spec.get("healthCheck", True) is not False
    return (calibration.get("benchmark") or "all") if enabled else None


# --- calibration, asked by a Job (proctor.k8s.judge.build_calibration_job) ------------------------------

#: the most of a calibration Job's message copied into the status
CALIBRATION_MESSAGE_CHARS = 2000


def current_calibration(
    previous: dict[str, Any] | None, fingerprint: str, now: float, retry_seconds: float
) -> tuple[int, dict[str, Any] | None]:
    """The calibration attempt that is current, and its verdict when it has one (the status to keep).

    The JudgeServer's `status.calibration` is the record: a passed calibration holds for as long as its
    fingerprint (endpoint, model, set) is the judge's, a failed one until `retry_seconds` after it ended,
    then the next attempt (a new Job) asks again. A status of another fingerprint counts for nothing."""
    if not previous or previous.get("fingerprint") != fingerprint:
        return 1, None
    attempt = int(previous.get("attempt") or 1)
    state = previous.get("state")
    if state == "Passed":
        return attempt, previous
    if state == "Failed":
        if now - parse_time(previous.get("time")) >= retry_seconds:
            return attempt + 1, None
        return attempt, previous
    return attempt, None  # Waiting or Running: the attempt's Job says how it went


def parse_time(text: str | None) -> float:
    """An RFC 3339 UTC timestamp as the status writes it, in epoch seconds (0 when unreadable)."""
    try:
        return float(calendar.timegm(time.strptime(text or "", "%Y-%m-%dT%H:%M:%SZ")))
    except ValueError:
        return 0.0


def termination_message(pods: list[dict[str, Any]], container: str) -> str | None:
    """What `container` left as its termination message, in the first of `pods` that has one."""
    for pod in pods:
        for state in (pod.get("status") or {}).get("containerStatuses") or []:
            if state.get("name") == container:
                message = ((state.get("state") or {}).get("terminated") or {}).get("message")
                if message:
                    return message
    return None


def calibration_verdict(message: str | None, outcome: str) -> dict[str, Any]:
    """A finished calibration Job's verdict (`passed`, `items`, `failed`, `message`) from its pod's
    termination message. Passed only when the Job completed *and* its verdict says so; a Job that
    failed without a readable verdict (killed, out of time, its pod gone) did not calibrate the judge."""
    try:
        value = json.loads(message or "")
        if not isinstance(value, dict):
            raise ValueError("not an object")
    except ValueError:
        why = "ended without a verdict" if outcome == "Complete" else "failed before it gave a verdict"
        return {"passed": False, "items": 0, "failed": [], "message": f"the calibration Job {why}"}
    failed = value.get("failed") if isinstance(value.get("failed"), list) else []
    return {
        "passed": value.get("passed") is True and outcome == "Complete",
        "items": int(value["items"]) if isinstance(value.get("items"), int) else 0,
        "failed": [str(name)[:200] for name in failed[:50]],
        "message": str(value.get("message") or "")[:CALIBRATION_MESSAGE_CHARS],
    }


def pod_problems(pods: list[dict[str, Any]]) -> list[Blocker]:
    """The reasons pods give for not serving: Unschedulable, ImagePullBackOff, OOMKilled, CrashLoopBackOff."""
    problems: dict[str, Blocker] = {}
    for pod in pods:
        name = (pod.get("metadata") or {}).get("name", "?")
        status = pod.get("status") or {}
        for condition in status.get("conditions") or []:
            if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
                reason = condition.get("reason") or "Unschedulable"
                problems.setdefault(
                    reason, Blocker(reason, f"pod {name}: {condition.get('message', reason)}")
                )
        for container in status.get("containerStatuses") or []:
            waiting = (container.get("state") or {}).get("waiting") or {}
            if waiting.get("reason") in FATAL_WAITING:
                reason = waiting["reason"]
                problems.setdefault(
                    reason, Blocker(reason, f"pod {name}: {waiting.get('message') or reason}")
                )
            last = (container.get("lastState") or {}).get("terminated") or {}
            current = (container.get("state") or {}).get("terminated") or {}
            for terminated in (last, current):
                if terminated.get("reason") == "OOMKilled":
                    problems.setdefault(
                        "OOMKilled",
                        Blocker("OOMKilled", f"pod {name}: the judge ran out of memory (OOMKilled)"),
                    )
    order = ["OOMKilled", "CrashLoopBackOff", "ImagePullBackOff", "ErrImagePull", "Unschedulable"]
    return sorted(problems.values(), key=lambda b: order.index(b.reason) if b.reason in order else len(order))


# A crash-looping judge's condition carries the end of its log (vLLM's own error: an unknown flag, a
# model that does not exist, too little GPU memory). Read through the API with a bounded tail.
LOG_TAIL_LINES = 20
LOG_LIMIT_BYTES = 16 * 1024
LOG_EXCERPT_CHARS = 1500
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")


def crashed_containers(pods: list[dict[str, Any]]) -> list[tuple[str, str, int]]:
    """(pod, container, restart count) of each container waiting in CrashLoopBackOff, the ones to read
    the previous run's log of."""
    found = []
    for pod in pods:
        name = (pod.get("metadata") or {}).get("name", "?")
        for container in (pod.get("status") or {}).get("containerStatuses") or []:
            waiting = (container.get("state") or {}).get("waiting") or {}
            if waiting.get("reason") == "CrashLoopBackOff":
                found.append((name, container.get("name", ""), int(container.get("restartCount") or 0)))
    return found


def log_excerpt(text: str, lines: int = LOG_TAIL_LINES, max_chars: int = LOG_EXCERPT_CHARS) -> str:
    """The last `lines` non-blank lines of a log, colour codes and trailing spaces removed, and at most
    `max_chars` of them (the end is kept: the error is last)."""
    kept = [line.rstrip() for line in _ANSI.sub("", text).replace("\r\n", "\n").split("\n") if line.strip()]
    excerpt = "\n".join(kept[-lines:]) if lines > 0 else ""
    if len(excerpt) > max_chars:
        excerpt = "…" + excerpt[len(excerpt) - max_chars + 1 :]
    return excerpt


def with_crash_log(problems: list[Blocker], pod: str, excerpt: str) -> list[Blocker]:
    """The CrashLoopBackOff problem with the crashed pod's last log lines appended to its message."""
    if not excerpt:
        return problems
    return [
        replace(p, message=f"{p.message}; last log lines of pod {pod}:\n{excerpt}")
        if p.reason == "CrashLoopBackOff"
        else p
        for p in problems
    ]


def judge_phase(
    kind: str,
    desired_replicas: int | None,
    ready_replicas: int,
    problems: list[Blocker],
    check: CheckResult | None,
    was_ready: bool,
) -> tuple[str, str, str]:
    """(phase, reason, message) of a JudgeServer."""
    if kind == "vllm" and ready_replicas == 0:
        if problems:
            first = problems[0]
            phase = "Pending" if first.reason == "Unschedulable" else "Failed"
            return phase, first.reason, first.message
        return "Loading", "PodsNotReady", "waiting for the judge pods to load the model and become ready"
    if check is None:
        return (
            ("Loading" if kind == "vllm" else "Pending"),
            "Checking",
            "waiting for the first functional check",
        )
    if not check.ok:
        if check.reason == "Calibrating":
            return ("Loading" if kind == "vllm" else "Pending"), "Calibrating", check.message
        if check.reason == "CalibrationFailed":
            return "Failed", "CalibrationFailed", check.message
        if was_ready:
            return "Degraded", "CheckFailed", check.message
        return ("Loading" if kind == "vllm" else "Failed"), "CheckFailed", check.message
    if kind == "vllm" and desired_replicas and ready_replicas < desired_replicas:
        return "Degraded", "ReplicasNotReady", f"{ready_replicas}/{desired_replicas} replicas ready"
    return "Ready", "Served", check.message

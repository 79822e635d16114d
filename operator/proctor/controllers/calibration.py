"""A JudgeServer's calibration, run in the background as part of its readiness.

Once the functional check passes, a JudgeServer whose calibration is on (`spec.calibration`, see
`proctor.reconcile.judgeserver.calibration_choice`) is asked the shipped calibration items
(`proctor_jobs.judge.calibration`) through the benchmarks' own judge stages. The calibration runs as a
task beside the reconcile loop, which never waits for it: until it ends the judge is not Ready
(reason `Calibrating`); when an item falls outside its band it stays not Ready with reason
`CalibrationFailed` and a message naming the items and what the judge said, and the calibration is
tried again after `judge_recheck_seconds`. A passed calibration holds until the JudgeServer's
endpoint, model or calibration settings change (or it is re-created).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, replace
from typing import Any

from proctor.reconcile.judgeserver import CheckResult, calibration_choice

log = logging.getLogger("proctor.judgeserver")

MESSAGE_SAID_CHARS = 50


@dataclass
class _Calibration:
    fingerprint: tuple[str, str, str]
    task: asyncio.Task | None = None
    outcomes: list[Any] | None = None
    error: str | None = None
    finished_at: float | None = None  # monotonic
    finished_time: str = ""  # the same moment, for the status


# (namespace, JudgeServer, uid) -> its latest calibration.
_CALIBRATIONS: dict[tuple[str, str, str], _Calibration] = {}


async def _run(url: str, model: str, choice: str, api_key: str | None):
    from proctor_jobs.judge.calibration import calibrate, resolve_benchmarks

    return await calibrate(url, model, resolve_benchmarks(choice), api_key=api_key)


def _start(entry: _Calibration, url: str, model: str, choice: str, api_key: str | None) -> None:
    def done(task: asyncio.Task) -> None:
        entry.finished_at = time.monotonic()
        entry.finished_time = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        if task.cancelled():
            entry.outcomes, entry.error = None, "the calibration was cancelled"
        elif task.exception() is not None:
            exc = task.exception()
            entry.outcomes, entry.error = None, f"the calibration could not run: {type(exc).__name__}: {exc}"
            log.warning("calibrating the judge at %s failed: %s", url, exc)
        else:
            entry.outcomes, entry.error = task.result(), None

    entry.task = asyncio.get_running_loop().create_task(_run(url, model, choice, api_key))
    entry.task.add_done_callback(done)


def calibration_gate(
    key: tuple[str, str, str],
    spec: dict[str, Any],
    endpoint: str,
    model: str,
    api_key: str | None,
    check: CheckResult | None,
    retry_seconds: float,
) -> tuple[CheckResult | None, dict[str, Any] | None]:
    """The functional check's result with the calibration's verdict folded in, and the JudgeServer's
    `status.calibration` (None when calibration is off). Starts or restarts the calibration task when
    due; never waits for it."""
    choice = calibration_choice(spec)
    if choice is None:
        forget(key)
        return check, None
    from proctor_jobs.judge.calibration import resolve_benchmarks, summary

    fingerprint = (endpoint, model, choice)
    entry = _CALIBRATIONS.get(key)
    if entry is None or entry.fingerprint != fingerprint:
        if entry is not None and entry.task is not None and not entry.task.done():
            entry.task.cancel()
        entry = _CALIBRATIONS[key] = _Calibration(fingerprint)
    if check is None or not check.ok:  # calibrate a judge that serves, not one that is down
        return check, {"benchmark": choice, "state": "Waiting"}
    running = entry.task is not None and not entry.task.done()
    finished = entry.finished_at is not None and not running
    passed = finished and entry.error is None and all(o.passed for o in entry.outcomes or [])
    if entry.task is None or (
        finished and not passed and time.monotonic() - entry.finished_at >= retry_seconds
    ):
        _start(entry, endpoint, model, choice, api_key)  # the first time, or again after a failure
    if entry.finished_at is None:
        from proctor_jobs.judge.calibration import load_set

        items = sum(len(load_set(b)) for b in resolve_benchmarks(choice))
        message = f"calibrating: asking the judge {items} calibration items ({choice})"
        return replace(check, ok=False, message=message, reason="Calibrating"), {
            "benchmark": choice,
            "state": "Running",
        }
    if entry.error is not None:
        text = entry.error
        failed: list[str] = []
        outcomes: list[Any] = []
    else:
        outcomes = entry.outcomes or []
        text = summary(outcomes, said_chars=MESSAGE_SAID_CHARS)
        failed = [o.name for o in outcomes if not o.passed]
    status = {
        "benchmark": choice,
        "state": "Passed" if passed else "Failed",
        "items": len(outcomes),
        "failedItems": failed,
        "message": text,
        "time": entry.finished_time,
    }
    if passed:
        return replace(check, message=f"{check.message}; {text}"), status
    return replace(check, ok=False, message=text, reason="CalibrationFailed"), status


def forget(key: tuple[str, str, str]) -> None:
    """Drop a JudgeServer's calibration (deleted, or calibration switched off)."""
    entry = _CALIBRATIONS.pop(key, None)
    if entry is not None and entry.task is not None and not entry.task.done():
        entry.task.cancel()

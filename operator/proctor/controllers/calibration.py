"""A JudgeServer's calibration, asked by a Job and folded into its readiness.

Once the functional check passes, a JudgeServer whose calibration is on (`spec.calibration`, see
`proctor.reconcile.judgeserver.calibration_choice`) gets a calibration Job
(`proctor.k8s.judge.build_calibration_job`): a worker pod that asks the judge the shipped calibration
items through the benchmarks' own judge stages and leaves its verdict as its termination message. The
judge client, the prompts and the images stay out of the operator's process and image. Until the Job
ends the judge is not Ready (reason `Calibrating`); when an item falls outside its band it stays not
Ready with reason `CalibrationFailed` and a message naming the items and what the judge said, and a new
Job asks again `judge_recheck_seconds` later. The verdict is kept in `status.calibration` with the
fingerprint it vouches for (endpoint, model, set): a passed calibration holds across operator restarts
until one of those changes, and the finished Job itself is removed by its TTL.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from typing import Any

from proctor.controllers.services import Services
from proctor.k8s.judge import build_calibration_job, calibration_fingerprint, calibration_job_name
from proctor.reconcile.evalrun import job_state
from proctor.reconcile.judgeserver import (
    CheckResult,
    calibration_choice,
    calibration_verdict,
    current_calibration,
    termination_message,
)

log = logging.getLogger("proctor.judgeserver")

STATUS_FIELDS = (
    *("benchmark", "state", "items", "failedItems", "message", "time"),
    *("fingerprint", "attempt", "job"),
)


def _status(previous: dict[str, Any] | None, **fields: Any) -> dict[str, Any]:
    """`status.calibration` with these fields. The status is merge-patched, so a field `previous` has
    and this state has not (an earlier attempt's message) is removed by a None; fields neither has are
    left out, so an unchanged state compares equal to the status as stored (no patch)."""
    previous = previous or {}
    return {
        key: fields.get(key)
        for key in STATUS_FIELDS
        if fields.get(key) is not None or previous.get(key) is not None
    }


async def calibration_gate(
    rt: Services,
    body: dict[str, Any],
    endpoint: str,
    model: str,
    check: CheckResult | None,
    jobs: dict[str, dict[str, Any]],
) -> tuple[CheckResult | None, dict[str, Any] | None]:
    """The functional check's result with the calibration's verdict folded in, and the JudgeServer's
    `status.calibration` (None when calibration is off). `jobs`: the JudgeServer's calibration Jobs as
    the watch sees them, by name. Creates the current attempt's Job when due; never waits for it."""
    meta, spec = body["metadata"], body["spec"]
    namespace, name, uid = meta["namespace"], meta["name"], meta["uid"]
    previous = (body.get("status") or {}).get("calibration")
    choice = calibration_choice(spec)
    if choice is None:
        return check, None
    fingerprint = calibration_fingerprint(endpoint, model, choice)
    retry = rt.config.judge_recheck_seconds
    attempt, verdict = current_calibration(previous, fingerprint, time.time(), retry)
    if check is None or not check.ok:
        # Calibrate a judge that serves, not one that is down; a verdict already given, or an attempt
        # under way, stands (its attempt number with it).
        if previous and previous.get("fingerprint") == fingerprint:
            return check, previous
        return check, _status(previous, benchmark=choice, state="Waiting", fingerprint=fingerprint)
    if verdict is None:
        job_name = calibration_job_name(name, fingerprint, attempt)
        job = jobs.get(job_name)
        outcome = job_state(job)[0] if job else "Running"
        if outcome not in ("Complete", "Failed"):
            if job is None:
                external = spec.get("external") or {}
                await rt.cluster.create(
                    build_calibration_job(
                        namespace,
                        name,
                        uid,
                        endpoint=endpoint,
                        model=model,
                        choice=choice,
                        attempt=attempt,
                        api_key=external.get("apiKeySecretRef"),
                        config=rt.config,
                    )
                )
            from proctor_jobs.judge.calibration import item_count

            items = item_count(choice)
            message = f"calibrating: job {job_name} asks the judge {items} calibration items ({choice})"
            running = _status(
                previous,
                benchmark=choice,
                state="Running",
                fingerprint=fingerprint,
                attempt=attempt,
                job=job_name,
            )
            return replace(check, ok=False, message=message, reason="Calibrating"), running
        pods = await rt.cluster.list_pods(namespace, f"job-name={job_name}")
        said = calibration_verdict(termination_message(pods, "calibrate"), outcome)
        if not said["passed"]:
            log.warning("calibration of judge %s/%s failed: %s", namespace, name, said["message"])
        verdict = _status(
            previous,
            benchmark=choice,
            state="Passed" if said["passed"] else "Failed",
            items=said["items"],
            failedItems=said["failed"],
            message=said["message"],
            time=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            fingerprint=fingerprint,
            attempt=attempt,
            job=job_name,
        )
    if verdict["state"] == "Passed":
        return replace(check, message=f"{check.message}; {verdict.get('message')}"), verdict
    return replace(check, ok=False, message=verdict.get("message") or "", reason="CalibrationFailed"), verdict

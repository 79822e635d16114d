"""The JudgeServer controller: deploy vLLM (or trust an external endpoint), then prove it serves.

Ready requires the functional check: the model is listed by `/v1/models` and one tiny chat
completion with one image returns. Checked every few seconds until Ready, then every minute (a
failing check on a Ready judge makes it Degraded). Replicas are only written when the spec sets
them, so an autoscaler can own them.
"""

from __future__ import annotations

import base64
import logging
import time
from typing import Any

from proctor.controllers.calibration import calibration_gate
from proctor.controllers.services import JudgeCache, Services
from proctor.k8s.judge import in_cluster_endpoint, judge_children, judge_selector, service_name
from proctor.reconcile.children import Observed, stale_children
from proctor.reconcile.conditions import same_conditions, set_condition
from proctor.reconcile.judgeserver import (
    LOG_LIMIT_BYTES,
    LOG_TAIL_LINES,
    CheckResult,
    crashed_containers,
    judge_phase,
    log_excerpt,
    pod_problems,
    with_crash_log,
)

log = logging.getLogger("proctor.judgeserver")

# An 8x8 grey PNG: the smallest image every multimodal server accepts.
PROBE_IMAGE = base64.b64encode(
    bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000008000000080802000000"
        "4b6d29dc0000001249444154789c636868f80f8750c10a00a1cf3fc1e4"
        "3f29c70000000049454e44ae426082"
    )
).decode()
CHECK_EVERY_NOT_READY_S = 5.0


async def functional_check(
    endpoint: str, model: str, api_key: str | None, timeout: float = 30.0
) -> CheckResult:
    """`/v1/models` lists the model, and a one-image chat completion returns some text."""
    import aiohttp

    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    base = endpoint.rstrip("/")
    try:
        async with aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=timeout), headers=headers
        ) as session:
            async with session.get(f"{base}/models") as response:
                if response.status != 200:
                    return CheckResult(False, f"GET /models answered {response.status}")
                listed = [m.get("id") for m in (await _bounded_json(response)).get("data", [])]
            if model not in listed:
                return CheckResult(
                    False, f"model {model!r} is not served (served: {', '.join(map(str, listed))})"
                )
            payload = {
                "model": model,
                "max_tokens": 8,
                "temperature": 0,
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "text", "text": "Reply with the word OK."},
                            {
                                "type": "image_url",
                                "image_url": {"url": f"data:image/png;base64,{PROBE_IMAGE}"},
                            },
                        ],
                    }
                ],
            }
            async with session.post(f"{base}/chat/completions", json=payload) as response:
                if response.status != 200:
                    # The status only: what an endpoint answers is not copied into an object other
                    # users of the namespace read (the server's log has it).
                    return CheckResult(
                        False,
                        f"a one-image chat completion answered HTTP {response.status}"
                        f"{_hint(response.status)}",
                        True,
                    )
                reply = await _bounded_json(response)
                if not reply.get("choices"):
                    return CheckResult(False, "a one-image chat completion returned no choices", True)
        return CheckResult(True, f"model {model!r} answered a one-image chat completion", True)
    except Exception as exc:  # connection refused, timeout, bad JSON: all mean "not serving"
        return CheckResult(False, f"cannot reach {base}: {type(exc).__name__}: {exc}")


#: the most of an endpoint's reply the check reads (a model list, a tiny completion)
MAX_REPLY_BYTES = 1 << 20


async def _bounded_json(response) -> dict[str, Any]:
    """A reply's JSON object, read up to MAX_REPLY_BYTES: an endpoint cannot exhaust the operator."""
    import json

    chunks, size = [], 0
    async for chunk in response.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > MAX_REPLY_BYTES:
            raise ValueError(f"reply larger than {MAX_REPLY_BYTES} bytes")
        chunks.append(chunk)
    value = json.loads(b"".join(chunks))
    if not isinstance(value, dict):
        raise ValueError("reply is not a JSON object")
    return value


def _hint(status: int) -> str:
    return {
        400: " (a text-only model, or images per prompt limited below 1?)",
        401: " (the API key is missing or wrong)",
        403: " (the API key may not use this model)",
        404: " (no chat completions at this URL)",
        429: " (rate limited)",
    }.get(status, "")


# (namespace, pod, container, restart count) -> excerpt: one log read per crash, not per reconcile.
_CRASH_LOGS: dict[tuple[str, str, str, int], str] = {}


async def crash_log(rt: Services, namespace: str, pod: str, container: str, restarts: int) -> str:
    """The last lines the crashed run of a judge container logged ("" when the log cannot be read)."""
    key = (namespace, pod, container, restarts)
    if key not in _CRASH_LOGS:
        try:
            text = await rt.cluster.pod_log(
                namespace,
                pod,
                container,
                previous=True,
                tail_lines=LOG_TAIL_LINES,
                limit_bytes=LOG_LIMIT_BYTES,
            )
        except Exception as exc:  # no previous run yet, log rotated, RBAC: the condition says the rest
            log.debug("cannot read the log of %s/%s: %s", namespace, pod, exc)
            text = ""
        if len(_CRASH_LOGS) >= 256:
            _CRASH_LOGS.clear()
        _CRASH_LOGS[key] = log_excerpt(text or "")
    return _CRASH_LOGS[key]


def served_model(spec: dict[str, Any]) -> str:
    if spec.get("vllm"):
        return spec["vllm"].get("servedModelName") or spec["vllm"]["model"]
    return spec["external"]["model"]


async def reconcile(
    rt: Services,
    body: dict[str, Any],
    post_event,
    cache: JudgeCache,
    children: Observed,
    calibration_jobs: dict[str, dict[str, Any]],
) -> dict[str, Any] | None:
    """One pass over one JudgeServer; `children`: its Deployment, Service and NetworkPolicy as the
    watch sees them, by (kind, name); `calibration_jobs`: its calibration Jobs, by name; `cache`: what
    its daemon remembers (the last check)."""
    meta, spec, status = body["metadata"], body["spec"], dict(body.get("status") or {})
    namespace, name, uid = meta["namespace"], meta["name"], meta["uid"]
    generation = meta.get("generation")
    kind = "vllm" if spec.get("vllm") else "external"
    model = served_model(spec)
    problems, ready_replicas, desired = [], 0, None
    if kind == "vllm":
        endpoint = in_cluster_endpoint(namespace, name, spec)
        # Converge: a child deleted by hand comes back, one applied from an older spec is re-applied
        # (server-side apply: a field the spec no longer sets leaves the object).
        for child in stale_children(judge_children(namespace, name, uid, spec), children):
            await rt.cluster.apply(child)
        deployment = children.get(("Deployment", service_name(name)))
        if deployment:
            ready_replicas = int((deployment.get("status") or {}).get("readyReplicas") or 0)
            desired = (deployment.get("spec") or {}).get("replicas")
        pods = await rt.cluster.list_pods(
            namespace, ",".join(f"{k}={v}" for k, v in judge_selector(name).items())
        )
        problems = pod_problems(pods)
        crashed = crashed_containers(pods)
        if crashed:
            excerpt = await crash_log(rt, namespace, *crashed[0])
            problems = with_crash_log(problems, crashed[0][0], excerpt)
            # An Event with the server's own words, once per different excerpt (not once per restart).
            if excerpt and cache.crash_event != excerpt:
                cache.crash_event = excerpt
                post_event("Warning", "ServerCrashed", f"pod {crashed[0][0]}: last log lines:\n{excerpt}")
        api_key = None
    else:
        endpoint = spec["external"]["baseUrl"]
        ready_replicas = 1
        ref = spec["external"].get("apiKeySecretRef")
        api_key = await rt.cluster.secret_value(namespace, ref["name"], ref["key"]) if ref else None

    was_ready = status.get("phase") in ("Ready", "Degraded")
    last_at, last = cache.check_at, cache.check
    ready = status.get("phase") == "Ready"
    interval = (
        rt.config.judge_recheck_seconds
        if ready
        else min(CHECK_EVERY_NOT_READY_S, rt.config.judge_recheck_seconds)
    )
    check = last
    if spec.get("healthCheck", True) is False:
        check = CheckResult(True, "functional check disabled (spec.healthCheck: false)")
    elif ready_replicas > 0 and (last is None or time.monotonic() - last_at >= interval):
        check = await functional_check(endpoint, model, api_key)
        cache.check_at, cache.check = time.monotonic(), check
    # Calibration (when on) runs in the background once the check passes, and can hold Ready back.
    verdict, calibration = await calibration_gate(rt, body, endpoint, model, check, calibration_jobs)
    phase, reason, message = judge_phase(kind, desired, ready_replicas, problems, verdict, was_ready)
    conditions = set_condition(
        status.get("conditions") or [], "Ready", phase == "Ready", reason, message, generation
    )
    conditions = set_condition(
        conditions,
        "PodsHealthy",
        not problems,
        problems[0].reason if problems else "NoProblems",
        "; ".join(p.message for p in problems) or "no pod reports a problem",
        generation,
    )
    new = {
        **status,
        "phase": phase,
        "endpoint": endpoint,
        "model": model,
        "readyReplicas": ready_replicas if kind == "vllm" else (1 if phase == "Ready" else 0),
        "message": message,
        "conditions": conditions,
        "observedGeneration": generation,
    }
    if calibration is not None:
        new["calibration"] = calibration
    elif status.get("calibration") is not None:
        new["calibration"] = None  # switched off: the merge patch removes it
    if check is not None and cache.check is check and cache.check_at > last_at:
        new["lastCheckTime"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    if phase != status.get("phase"):
        post_event("Warning" if phase in ("Failed", "Degraded") else "Normal", phase, message)
    rt.state.judges[(namespace, name)] = phase
    unchanged = {k: v for k, v in status.items() if k not in ("conditions", "lastCheckTime")} == {
        k: v for k, v in new.items() if k not in ("conditions", "lastCheckTime")
    } and same_conditions(status.get("conditions") or [], conditions)
    return None if unchanged else new

"""What a run cost, from its records: per stage, the items' own time and, where a model was called, the
calls (charged, retried, failed), tokens, images and seconds of the judge.

Pure: records in, a plain dict out (`summary.json` `cost`, the reports, `proctor compare`). Token counts
come from the API's `usage`; a record whose server reported none is counted in `usage_missing`, and the
tokens the judge stage counted on its side for it (`usage_estimated`, with the judge's tokenizer or at
4 characters a token) are summed apart — never added to the reported counts — so a total is never
silently low and never silently guessed.

What the workers measured about themselves (CPU seconds, wall time, bytes written to the store) is not
in the records: it comes from the shards' progress records (`measured`, per stage, summed over shards
by `proctor.metrics.sum_shard_metrics`). `status_cost` is the compact form the EvalRun's status shows.
"""

from __future__ import annotations

from typing import Any

from proctor_jobs.records import ItemRecord

#: record outcomes that mean the model gave no usable answer for the item
_FAILED_OUTCOMES = frozenset({"exhausted", "rejected", "unreachable", "unparseable"})


#: the sums a worker keeps about itself in its progress record's metrics
WORKER_SUMS = {
    "worker_cpu_seconds": "cpu_seconds",
    "worker_wall_seconds": "wall_seconds",
    "store_bytes_written": "bytes_written",
}


def worker_cost(measured: dict[str, Any] | None) -> dict[str, Any]:
    sums = (measured or {}).get("sums") or {}
    out: dict[str, Any] = {
        key: round(float(sums.get(name, 0.0)), 3)
        for name, key in WORKER_SUMS.items()
        if name != "store_bytes_written"
    }
    out["bytes_written"] = int(sums.get("store_bytes_written", 0))
    return out


def stage_cost(records: list[ItemRecord], measured: dict[str, Any] | None = None) -> dict[str, Any]:
    """The cost of one stage's records (and what its workers measured, when given)."""
    cost: dict[str, Any] = {
        "items": len(records),
        "item_seconds": round(sum(r.duration_s for r in records), 3),
    }
    if measured is not None:
        cost["worker"] = worker_cost(measured)
    called = [r for r in records if isinstance(r.data.get("calls"), int)]
    if not called:
        return cost
    calls = sum(r.data["calls"] for r in called)
    charged = sum(int(r.data.get("charged_calls") or 0) for r in called)
    usage_missing = 0
    prompt = completion = 0
    estimated = {"prompt_tokens": 0, "completion_tokens": 0, "items": 0}
    methods: set[str] = set()
    for record in called:
        usage = record.data.get("usage") or {}
        if record.data["calls"] and not usage:
            usage_missing += 1
        prompt += int(usage.get("prompt_tokens") or 0)
        completion += int(usage.get("completion_tokens") or 0)
        guess = record.data.get("usage_estimated")
        if guess:
            estimated["prompt_tokens"] += int(guess.get("prompt_tokens") or 0)
            estimated["completion_tokens"] += int(guess.get("completion_tokens") or 0)
            estimated["items"] += 1
            methods.add(str(guess.get("method")))
    cost["model"] = {
        "items": len(called),
        "calls": calls,
        "charged_calls": charged,
        # every call beyond an item's first: retries after errors, timeouts, 429s and unparseable replies
        "retried_calls": calls - sum(1 for r in called if r.data["calls"]),
        "failed_items": sum(1 for r in called if r.data.get("outcome") in _FAILED_OUTCOMES),
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "usage_missing": usage_missing,
        "images": sum(int(r.data.get("screenshots_sent") or r.data.get("images_sent") or 0) for r in called),
        "image_pixels": sum(int(r.data.get("image_pixels") or 0) for r in called),
        "answered_calls": sum(int(r.data.get("answered_calls") or 0) for r in called),
        "seconds": round(sum(float(r.data.get("latency_s") or 0) for r in called), 3),
    }
    if estimated["items"]:
        cost["model"]["usage_estimated"] = {**estimated, "method": "+".join(sorted(methods))}
    return cost


#: stage kinds whose items' time is time in the browser / in the sandbox
_KIND_SECONDS = {"render": "render_seconds", "oracle": "sandbox_seconds"}


def run_cost(
    stage_names: list[str],
    records: dict[str, dict[str, ItemRecord]],
    measured: dict[str, dict[str, Any]] | None = None,
    kinds: dict[str, str] | None = None,
) -> dict[str, Any]:
    """`{"stages": {name: stage_cost}, "total": {...}}` over the stages that ran; `measured` is the
    workers' summed metrics per stage, `kinds` each stage's kind (render, judge, oracle, ...)."""
    stages = {
        name: stage_cost(
            list(records.get(name, {}).values()), (measured.get(name) or {}) if measured is not None else None
        )
        for name in stage_names
    }
    models = [s["model"] for s in stages.values() if "model" in s]
    total: dict[str, Any] = {"item_seconds": round(sum(s["item_seconds"] for s in stages.values()), 3)}
    for key in ("calls", "charged_calls", "retried_calls", "prompt_tokens", "completion_tokens", "images"):
        total[key] = sum(m[key] for m in models)
    total["image_pixels"] = sum(m.get("image_pixels", 0) for m in models)
    total["model_seconds"] = round(sum(m["seconds"] for m in models), 3)
    total["usage_missing"] = sum(m["usage_missing"] for m in models)
    total["estimated_tokens"] = sum(
        m["usage_estimated"]["prompt_tokens"] + m["usage_estimated"]["completion_tokens"]
        for m in models
        if "usage_estimated" in m
    )
    for kind_key in _KIND_SECONDS.values():
        total[kind_key] = 0.0
    for name, stage in stages.items():
        key = _KIND_SECONDS.get((kinds or {}).get(name, name))
        if key:
            total[key] = round(total[key] + stage["item_seconds"], 3)
    if measured is not None:
        workers = [s["worker"] for s in stages.values()]
        total["cpu_seconds"] = round(sum(w["cpu_seconds"] for w in workers), 3)
        total["wall_seconds"] = round(sum(w["wall_seconds"] for w in workers), 3)
        total["bytes_written"] = sum(w["bytes_written"] for w in workers)
    return {"stages": stages, "total": total}


def status_cost(cost: dict[str, Any], final: bool) -> dict[str, Any]:
    """The EvalRun's `status.cost`: per stage and in total, calls, tokens (reported; estimated apart),
    images, judge seconds, worker CPU and wall seconds, bytes written. From the records' cost when
    the run is aggregated (`final`), else from `live_cost`."""
    rows = []
    for name, stage in (cost.get("stages") or {}).items():
        model = stage.get("model") or {}
        worker = stage.get("worker") or {}
        estimated = model.get("usage_estimated") or {}
        rows.append(
            {
                "name": name,
                "items": int(stage.get("items", 0)),
                "calls": int(model.get("calls", 0)),
                "promptTokens": int(model.get("prompt_tokens", 0)),
                "completionTokens": int(model.get("completion_tokens", 0)),
                "estimatedTokens": int(estimated.get("prompt_tokens", 0))
                + int(estimated.get("completion_tokens", 0)),
                "images": int(model.get("images", 0)),
                "judgeSeconds": round(float(model.get("seconds", 0.0)), 1),
                "cpuSeconds": round(float(worker.get("cpu_seconds", 0.0)), 1),
                "wallSeconds": round(float(worker.get("wall_seconds", 0.0)), 1),
                "bytesWritten": int(worker.get("bytes_written", 0)),
            }
        )
    total: dict[str, Any] = {}
    for key in ("calls", "promptTokens", "completionTokens", "estimatedTokens", "images", "bytesWritten"):
        total[key] = sum(r[key] for r in rows)
    for key in ("judgeSeconds", "cpuSeconds", "wallSeconds"):
        total[key] = round(sum(r[key] for r in rows), 1)
    return {"final": final, "stages": rows, "total": total}


def live_cost(stage_items: dict[str, int], measured: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """A running run's cost in `run_cost`'s shape, from the workers' progress metrics alone (summed
    over shards): judge requests, tokens and images as counted by the judge stages, worker figures."""
    stages: dict[str, dict[str, Any]] = {}
    for name, items in stage_items.items():
        metrics = measured.get(name) or {}
        counters = metrics.get("counters") or {}
        entry: dict[str, Any] = {"items": items, "worker": worker_cost(metrics)}
        calls = sum((counters.get("judge_requests") or {}).values())
        if calls:
            tokens = counters.get("judge_tokens") or {}
            estimated = counters.get("judge_tokens_estimated") or {}
            entry["model"] = {
                "calls": int(calls),
                "prompt_tokens": int(tokens.get("prompt", 0)),
                "completion_tokens": int(tokens.get("completion", 0)),
                "images": int(sum((counters.get("judge_images") or {}).values())),
                "seconds": float((metrics.get("sums") or {}).get("judge_request_seconds", 0.0)),
                **(
                    {
                        "usage_estimated": {
                            "prompt_tokens": int(estimated.get("prompt", 0)),
                            "completion_tokens": int(estimated.get("completion", 0)),
                        }
                    }
                    if estimated
                    else {}
                ),
            }
        stages[name] = entry
    return {"stages": stages}


def cost_lines(cost: dict[str, Any]) -> list[str]:
    """report.md's Cost section."""
    lines = [
        "| stage | items | item seconds | model calls (charged / retried) | tokens in / out | images "
        "| model seconds |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, stage in cost.get("stages", {}).items():
        model = stage.get("model")
        if model:
            calls = f"{model['calls']} ({model['charged_calls']} / {model['retried_calls']})"
            tokens = f"{model['prompt_tokens']} / {model['completion_tokens']}"
            if model["usage_missing"]:
                tokens += f" ({model['usage_missing']} items without usage"
                guess = model.get("usage_estimated")
                if guess:
                    tokens += (
                        f"; estimated {guess['prompt_tokens']} / {guess['completion_tokens']} "
                        f"by {guess['method']}"
                    )
                tokens += ")"
            cells = [calls, tokens, str(model["images"]), f"{model['seconds']:.1f}"]
        else:
            cells = ["—", "—", "—", "—"]
        head = [name, str(stage["items"]), f"{stage['item_seconds']:.1f}"]
        lines.append("| " + " | ".join([*head, *cells]) + " |")
    workers = {name: stage["worker"] for name, stage in cost.get("stages", {}).items() if "worker" in stage}
    if workers:
        lines += [
            "",
            "| stage | worker CPU seconds | worker wall seconds | bytes written to the store |",
            "|---|---|---|---|",
        ]
        for name, worker in workers.items():
            lines.append(
                f"| {name} | {worker['cpu_seconds']:.1f} | {worker['wall_seconds']:.1f} | "
                f"{worker['bytes_written']:,} |"
            )
    return lines

"""What a run cost, from its records: per stage, the items' own time and, where a model was called, the
calls (charged, retried, failed), tokens, images and seconds of the judge.

Pure: records in, a plain dict out (`summary.json` `cost`, the reports, `proctor compare`). Token counts
come from the API's `usage`; a record whose server reported none is counted in `usage_missing` instead of
being guessed at, so a total is never silently low.
"""

from __future__ import annotations

from typing import Any

from proctor_jobs.records import ItemRecord

#: record outcomes that mean the model gave no usable answer for the item
_FAILED_OUTCOMES = frozenset({"exhausted", "rejected", "unreachable", "unparseable"})


def stage_cost(records: list[ItemRecord]) -> dict[str, Any]:
    """The cost of one stage's records."""
    cost: dict[str, Any] = {
        "items": len(records),
        "item_seconds": round(sum(r.duration_s for r in records), 3),
    }
    called = [r for r in records if isinstance(r.data.get("calls"), int)]
    if not called:
        return cost
    calls = sum(r.data["calls"] for r in called)
    charged = sum(int(r.data.get("charged_calls") or 0) for r in called)
    usage_missing = 0
    prompt = completion = 0
    for record in called:
        usage = record.data.get("usage") or {}
        if record.data["calls"] and not usage:
            usage_missing += 1
        prompt += int(usage.get("prompt_tokens") or 0)
        completion += int(usage.get("completion_tokens") or 0)
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
        "seconds": round(sum(float(r.data.get("latency_s") or 0) for r in called), 3),
    }
    return cost


def run_cost(stage_names: list[str], records: dict[str, dict[str, ItemRecord]]) -> dict[str, Any]:
    """`{"stages": {name: stage_cost}, "total": {...}}` over the stages that ran."""
    stages = {name: stage_cost(list(records.get(name, {}).values())) for name in stage_names}
    models = [s["model"] for s in stages.values() if "model" in s]
    total: dict[str, Any] = {"item_seconds": round(sum(s["item_seconds"] for s in stages.values()), 3)}
    for key in ("calls", "charged_calls", "retried_calls", "prompt_tokens", "completion_tokens", "images"):
        total[key] = sum(m[key] for m in models)
    total["model_seconds"] = round(sum(m["seconds"] for m in models), 3)
    total["usage_missing"] = sum(m["usage_missing"] for m in models)
    return {"stages": stages, "total": total}


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
                tokens += f" ({model['usage_missing']} items without usage)"
            cells = [calls, tokens, str(model["images"]), f"{model['seconds']:.1f}"]
        else:
            cells = ["—", "—", "—", "—"]
        head = [name, str(stage["items"]), f"{stage['item_seconds']:.1f}"]
        lines.append("| " + " | ".join([*head, *cells]) + " |")
    return lines

"""What a run will cost, before any work: items x expected calls x tokens per call, per stage.

Pure: the plan and the items in, a plain dict out. Judge stages are estimated from the prompt
templates filled with each item and the image sizes the render stage will produce
(`proctor_jobs.judge.estimate`, which says what it assumes); other stages are listed with their
items only — render and oracle stages call no model, and a candidate-generation stage
(`spec.candidate`) is not estimated yet (its replies are the answers themselves).
`proctor run --estimate` prints it; `summary.json` keeps it (`estimate`) beside the actual cost, and
report.md and report.html show both.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from proctor.plan import Plan, StagePlan
from proctor_jobs.records import ItemRecord

_SUMMED = ("calls", "prompt_tokens", "completion_tokens", "images", "image_pixels")
_SHOWN = ("calls", "prompt_tokens", "completion_tokens", "images", "prompt_tokens_per_call")


def run_estimate(
    plan: Plan, items: list[dict[str, Any]], records: Mapping[str, Mapping[str, ItemRecord]] | None = None
) -> dict[str, Any]:
    """Before any work; or, with the run's records (stage -> item id -> record), once its renders
    are known: the judge's bill before it is paid (which items reach the judge, how many screenshots
    each sends)."""
    from proctor_jobs.judge.estimate import judge_estimate

    stages: dict[str, dict[str, Any]] = {}
    for stage in plan.stages:
        entry: dict[str, Any] = {"items": stage.items}
        if stage.kind == "judge":
            render = _render_stage(plan, stage.upstream)
            rendered = None
            if records is not None and render is not None:
                rendered = records.get(render.name) or {}
            config = render.config if render is not None else None
            entry.update(judge_estimate(plan.benchmark, stage.config, items, config, rendered))
        if stage.skip_reason:
            entry["skipped"] = stage.skip_reason
        stages[stage.name] = entry
    # A skipped judge stage is counted too: what judging would cost is what an estimate is asked for.
    counted = [s for s in stages.values() if "calls" in s]
    total = {key: sum(s[key] for s in counted) for key in _SUMMED}
    return {"stages": stages, "total": total}


def _render_stage(plan: Plan, upstream: str | None) -> StagePlan | None:
    """The render stage a judge stage reads from: its upstream, else the run's render stage (several
    judges side by side all read the one render stage)."""
    stages = [plan.stage(upstream)] if upstream else []
    stages += [s for s in plan.stages if s.kind == "render"]
    return next((s for s in stages if s.kind == "render"), None)


def beside_actual(
    estimate: dict[str, Any], cost: dict[str, Any], once_rendered: dict[str, Any] | None = None
) -> dict[str, dict[str, Any]]:
    """Per stage with model calls: the estimate, the estimate once renders were known (when given) and
    the actual of calls, prompt and completion tokens, images, and prompt tokens per call (tokens the
    server reported, plus those estimated where it did not, which the cost keeps apart)."""
    out: dict[str, dict[str, Any]] = {}
    for name, guess in (estimate.get("stages") or {}).items():
        model = ((cost.get("stages") or {}).get(name) or {}).get("model")
        if "calls" not in guess or model is None:
            continue
        rendered = ((once_rendered or {}).get("stages") or {}).get(name)
        estimated = model.get("usage_estimated") or {}
        prompt = model["prompt_tokens"] + int(estimated.get("prompt_tokens") or 0)
        completion = model["completion_tokens"] + int(estimated.get("completion_tokens") or 0)
        answered = max(1, int(model.get("answered_calls") or model["calls"]))
        actual = {
            "calls": model["calls"],
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "images": model["images"],
            "prompt_tokens_per_call": round(prompt / answered),
        }
        out[name] = {
            key: {
                "estimate": guess[key],
                **({"once_rendered": rendered[key]} if rendered else {}),
                "actual": value,
            }
            for key, value in actual.items()
        }
    return out


def estimate_lines(estimate: dict[str, Any], actual: dict[str, dict[str, Any]] | None = None) -> list[str]:
    """A Markdown table of the estimate, with the estimate once renders were known and the actual
    beside it when the run has finished (`before → once rendered → actual`)."""
    lines = [
        "| stage | items | calls | prompt tokens | completion tokens | images | prompt tokens per call |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, stage in estimate.get("stages", {}).items():
        if "calls" not in stage:
            lines.append(f"| {name} | {stage['items']} | — | — | — | — | — |")
            continue
        seen = (actual or {}).get(name) or {}
        figures = [(seen.get(k) or {"estimate": stage[k]}).values() for k in _SHOWN]
        cells = [" → ".join(f"{v:,}" for v in values) for values in figures]
        label = name + (" (skipped in this run)" if stage.get("skipped") else "")
        lines.append(f"| {label} | {stage['items']} | " + " | ".join(cells) + " |")
    total = estimate.get("total") or {}
    lines.append(
        f"| **total** | | {total.get('calls', 0):,} | {total.get('prompt_tokens', 0):,} | "
        f"{total.get('completion_tokens', 0):,} | {total.get('images', 0):,} | |"
    )
    return lines

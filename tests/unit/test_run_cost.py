"""A run's cost from its records: calls, retries, failures, tokens and images per stage, never guessed."""

from __future__ import annotations

from proctor.cost import cost_lines, run_cost
from proctor_jobs.records import ItemRecord


def judged(item: str, calls: int, charged: int, usage: dict | None, outcome: str = "ok", images: int = 3):
    data = {
        "calls": calls,
        "charged_calls": charged,
        "usage": usage or {},
        "latency_s": 1.5 * calls,
        "outcome": outcome,
        "screenshots_sent": images,
    }
    status = "ok" if outcome == "ok" else "failed"
    return ItemRecord(id=item, stage="judge", status=status, data=data, duration_s=2.0 * calls)


def test_calls_retries_tokens_and_images_are_summed_per_stage_and_in_total():
    records = {
        "render": {
            f"r{i}": ItemRecord(id=f"r{i}", stage="render", status="ok", duration_s=4.0) for i in range(3)
        },
        "judge": {
            "a": judged("a", 1, 1, {"prompt_tokens": 900, "completion_tokens": 100}),
            "b": judged("b", 3, 2, {"prompt_tokens": 2700, "completion_tokens": 250}),  # two retries
            "c": judged("c", 2, 2, None, outcome="exhausted"),  # a server that reports no usage
        },
    }
    cost = run_cost(["render", "judge"], records)
    assert cost["stages"]["render"] == {"items": 3, "item_seconds": 12.0}
    model = cost["stages"]["judge"]["model"]
    assert (model["calls"], model["charged_calls"], model["retried_calls"]) == (6, 5, 3)
    assert (model["prompt_tokens"], model["completion_tokens"]) == (3600, 350)
    assert model["usage_missing"] == 1 and model["failed_items"] == 1
    assert model["images"] == 9 and model["seconds"] == 9.0
    assert cost["total"]["calls"] == 6 and cost["total"]["item_seconds"] == 24.0
    table = "\n".join(cost_lines(cost))
    assert "| judge | 3 | 12.0 | 6 (5 / 3) | 3600 / 350 (1 items without usage) | 9 | 9.0 |" in table
    assert "| render | 3 | 12.0 | — | — | — | — |" in table


def test_a_stage_without_model_calls_has_no_model_block_and_totals_are_zero():
    cost = run_cost(["oracle"], {"oracle": {"x": ItemRecord(id="x", stage="oracle", status="ok")}})
    assert "model" not in cost["stages"]["oracle"]
    assert cost["total"]["calls"] == 0 and cost["total"]["prompt_tokens"] == 0

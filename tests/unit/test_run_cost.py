"""A run's cost from its records: calls, retries, failures, tokens and images per stage, never guessed."""

from __future__ import annotations

from proctor.api.evalrun import RunCost
from proctor.cost import cost_lines, live_cost, run_cost, status_cost
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


def test_estimated_tokens_stay_apart_and_worker_figures_reach_the_status():
    unreported = judged("d", 1, 1, None)
    unreported.data["usage_estimated"] = {"prompt_tokens": 500, "completion_tokens": 40, "method": "chars"}
    records = {
        "judge": {"a": judged("a", 1, 1, {"prompt_tokens": 900, "completion_tokens": 100}), "d": unreported}
    }
    measured = {
        "judge": {
            "sums": {"worker_cpu_seconds": 3.25, "worker_wall_seconds": 9.5, "store_bytes_written": 4096}
        }
    }
    cost = run_cost(["judge"], records, measured, {"judge": "judge"})
    model = cost["stages"]["judge"]["model"]
    assert (model["prompt_tokens"], model["completion_tokens"]) == (900, 100)  # reported only
    assert model["usage_estimated"] == {
        "prompt_tokens": 500,
        "completion_tokens": 40,
        "items": 1,
        "method": "chars",
    }
    assert cost["total"]["estimated_tokens"] == 540 and cost["total"]["bytes_written"] == 4096
    status = status_cost(cost, final=True)
    (row,) = status["stages"]
    assert (row["promptTokens"], row["estimatedTokens"], row["cpuSeconds"], row["bytesWritten"]) == (
        900,
        540,
        3.2,
        4096,
    )
    assert status["final"] and status["total"]["wallSeconds"] == 9.5
    # Exactly the CRD's fields: anything else the API server would prune from the status silently.
    assert RunCost.model_validate(status).dump() == status
    assert "estimated 500 / 40 by chars" in "\n".join(cost_lines(cost))
    # a stage whose workers reported nothing yet (no progress record) costs zero, not a crash
    early = run_cost(["render", "judge"], records, measured, {"render": "render", "judge": "judge"})
    assert early["stages"]["render"]["worker"] == {
        "cpu_seconds": 0.0,
        "wall_seconds": 0.0,
        "bytes_written": 0,
    }
    assert early["total"]["cpu_seconds"] == 3.25


def test_a_running_run_s_cost_comes_from_the_workers_progress_metrics():
    measured = {
        "render": {"sums": {"worker_cpu_seconds": 12.0, "store_bytes_written": 10_000}},
        "judge": {
            "counters": {
                "judge_requests": {"ok": 4, "http_error": 1},
                "judge_tokens": {"prompt": 4000, "completion": 200},
                "judge_images": {"sent": 12},
            },
            "sums": {"judge_request_seconds": 6.0, "worker_wall_seconds": 3.0},
        },
    }
    status = status_cost(live_cost({"render": 5, "judge": 5}, measured), final=False)
    render, judge = status["stages"]
    assert render["calls"] == 0 and render["cpuSeconds"] == 12.0 and render["bytesWritten"] == 10_000
    assert (judge["calls"], judge["promptTokens"], judge["images"], judge["judgeSeconds"]) == (
        5,
        4000,
        12,
        6.0,
    )
    assert status["total"]["calls"] == 5 and not status["final"]

"""The estimate before a run: items x calls x tokens per call, from the prompt templates and the render
size, without rendering or calling anything."""

from __future__ import annotations

from proctor.estimate import beside_actual, estimate_lines, run_estimate
from proctor.plan import plan_run
from proctor_jobs.benchmarks import get_benchmark
from proctor_jobs.judge.usage import image_tokens

PAGE = "```html\n<html><body><h1>Hi</h1></body></html>\n```"


def ab_items(answers):
    return [
        {
            "id": f"t{i}",
            "index": i,
            "question": "Build a page",
            "checklist": ["works"],
            "class": "Web",
            "answer": a,
        }
        for i, a in enumerate(answers)
    ]


def estimate(items, spec):
    spec = {"judge": {"url": "http://judge/v1"}, **spec}
    plan, _ = plan_run(get_benchmark("artifactsbench"), spec, items, "runs/x/y/z")
    return run_estimate(plan, items)


def test_each_renderable_answer_costs_its_screenshots_at_the_render_size_and_text_only_ones_none():
    items = ab_items([PAGE, PAGE, "I cannot do that."])  # the last has nothing to render
    small = estimate(items, {"render": {"screenshots": 3, "viewport": {"width": 1280, "height": 720}}})
    judge = small["stages"]["judge"]
    assert judge["calls"] == 3 and judge["images"] == 6 and small["stages"]["render"] == {"items": 3}
    large = estimate(items, {"render": {"screenshots": 3, "viewport": {"width": 2560, "height": 1440}}})
    extra = large["stages"]["judge"]["prompt_tokens"] - judge["prompt_tokens"]
    assert extra == 6 * (image_tokens(2560, 1440) - image_tokens(1280, 720))
    fewer = estimate(items, {"judge": {"url": "http://judge/v1", "screenshots": 1}})["stages"]["judge"]
    assert fewer["images"] == 2


def test_a_skipped_judge_is_still_estimated_and_the_actual_goes_beside_it():
    items = ab_items([PAGE] * 4)
    plan, _ = plan_run(get_benchmark("artifactsbench"), {}, items, "runs/x/y/z")  # no judge configured
    guess = run_estimate(plan, items)
    assert guess["stages"]["judge"]["skipped"] and guess["total"]["calls"] == 4
    per_call = guess["stages"]["judge"]["prompt_tokens_per_call"]
    cost = {
        "stages": {
            "judge": {
                "model": {
                    "calls": 5,
                    "answered_calls": 4,
                    "prompt_tokens": 4 * per_call,
                    "completion_tokens": 100,
                    "images": 12,
                    "usage_estimated": {"prompt_tokens": 0, "completion_tokens": 0},
                }
            }
        }
    }
    side = beside_actual(guess, cost)["judge"]
    assert side["calls"] == {"estimate": 4, "actual": 5}
    assert side["prompt_tokens_per_call"] == {
        "estimate": per_call,
        "actual": per_call,
    }  # retries carry no tokens
    assert "4 → 5" in "\n".join(estimate_lines(guess, {"judge": side}))


def test_proctor_run_estimate_prints_the_cost_and_does_no_work(tmp_path, capsys):
    import json
    from pathlib import Path

    from proctor.cli import main

    example = Path(__file__).resolve().parents[2] / "examples/vision2code/evalrun.yaml"
    store = tmp_path / "store"
    assert main(["run", str(example), "--estimate", "--json", "--store", str(store)]) == 0
    out = capsys.readouterr().out
    estimate = json.loads(out.strip().splitlines()[-1])
    judge = estimate["stages"]["judge"]
    assert judge["calls"] == 15 and judge["images"] == 30 and judge["skipped"]  # no judge given
    assert estimate["total"]["prompt_tokens"] == judge["prompt_tokens"] > 0
    assert not store.exists()  # nothing planned into a store, nothing rendered


def test_once_rendered_only_items_that_reach_the_judge_are_counted_with_the_screenshots_they_send():
    from proctor_jobs.records import ok

    items = ab_items([PAGE, PAGE, PAGE])
    spec = {"judge": {"url": "http://judge/v1"}, "render": {"screenshots": 3}}
    plan, _ = plan_run(get_benchmark("artifactsbench"), spec, items, "runs/x/y/z")
    render = {
        "t0": ok("t0", "render", data={"extraction": {"kind": "html"}, "screenshots": ["a", "b", "c"]}),
        # a page that hung after one screenshot
        "t1": ok("t1", "render", data={"extraction": {"kind": "html"}, "screenshots": ["a"]}),
        # t2 has no render record: judged on its text alone
    }
    before = run_estimate(plan, items)["stages"]["judge"]
    known = run_estimate(plan, items, {"render": render})["stages"]["judge"]
    assert before["images"] == 9 and before["renders"] == "assumed"
    assert known["calls"] == 3 and known["images"] == 4 and known["renders"] == "known"


def test_once_rendered_a_vision2code_sample_whose_render_failed_costs_no_call():
    from proctor_jobs.records import ok

    items = [
        {"id": f"s{i}", "sample_id": f"s{i}", "source_dataset": "ChartQA", "reference_size": [400, 300]}
        for i in range(3)
    ]
    the_spec = {"judge": {"url": "http://judge/v1"}}
    plan, _ = plan_run(get_benchmark("vision2code"), the_spec, items, "runs/x/y/z")
    render = {
        "s0": ok("s0", "render", data={}, evidence={"image": "k0"}),
        "s1": ok("s1", "render", data={"failure": "syntax_or_truncation"}),
        "s2": ok("s2", "render", data={}),  # no image drawn
    }
    known = run_estimate(plan, items, {"render": render})["stages"]["judge"]
    before = run_estimate(plan, items)["stages"]["judge"]
    assert before["calls"] == 3 and known["calls"] == 1 and known["images"] == 2
    assert known["prompt_tokens_per_call"] == before["prompt_tokens_per_call"]
    model = {"calls": 1, "prompt_tokens": 900, "completion_tokens": 50, "images": 2}
    cost = {"stages": {"judge": {"model": model}}}
    side = beside_actual(run_estimate(plan, items), cost, run_estimate(plan, items, {"render": render}))
    assert side["judge"]["calls"] == {"estimate": 3, "once_rendered": 1, "actual": 1}
    lines = "\n".join(estimate_lines(run_estimate(plan, items), side))
    assert "3 → 1 → 1" in lines

"""Several judges on one run, the pure parts: the spec's rules, the plan (a stage per judge, resume
exact), the scores per judge, the aggregate and the agreement, the Jobs' keys, the run's status."""

from __future__ import annotations

import math

import pytest
from pydantic import ValidationError

from proctor.api import EvalRun
from proctor.inputs import InputError, human_table
from proctor.k8s import build_network_policy, build_stage_job
from proctor.plan import plan_run, run_uid
from proctor.plan.planner import added_stages, extend_plan
from proctor.reconcile.evalrun import input_blockers, judge_statuses
from proctor_jobs.benchmarks import get_benchmark
from proctor_jobs.records import failed, ok
from proctor_jobs.scoring.judges import aggregate_records, flat_scores, panel_summary
from tests.unit.test_k8s_builders import ctx

BENCH = {"format": "artifactsbench", "source": {"inline": [{"index": 0}]}}


def spec(**extra) -> dict:
    return {"benchmark": BENCH, "judge": {"url": "http://a/v1"}, **extra}


def evalrun(**extra) -> EvalRun:
    body = {"apiVersion": "proctor.dev/v1alpha1", "kind": "EvalRun", "metadata": {"name": "r"}}
    return EvalRun.model_validate({**body, "spec": spec(**extra)})


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            {"additionalJudges": [{"name": "b", "url": "u"}, {"name": "b", "url": "v"}]},
            "additionalJudges[1].name",
        ),
        ({"additionalJudges": [{"name": "judge", "url": "u"}]}, "is already the name of spec.judge.name"),
        ({"additionalJudges": [{"name": "aggregate", "url": "u"}]}, "cannot be named `aggregate`"),
        ({"additionalJudges": [{"name": "b"}]}, "exactly one of url, serverRef"),
        ({"additionalJudges": [{"name": "B_1", "url": "u"}]}, "name"),
        ({"judgeAggregate": "mean"}, "judgeAggregate needs additionalJudges"),
    ],
)
def test_the_spec_refuses_an_ambiguous_panel_naming_the_field(extra, message):
    with pytest.raises(ValidationError, match=re_escape(message)):
        evalrun(**extra)


def re_escape(text: str) -> str:
    import re

    return re.escape(text)


def test_additional_judges_need_a_first_judge():
    body = {"apiVersion": "proctor.dev/v1alpha1", "kind": "EvalRun", "metadata": {"name": "r"}}
    with pytest.raises(ValidationError, match=r"additionalJudges needs spec\.judge"):
        EvalRun.model_validate(
            {**body, "spec": {"benchmark": BENCH, "additionalJudges": [{"name": "b", "url": "u"}]}}
        )


def items(n: int = 6) -> list[dict]:
    return [{"id": f"t{i}", "class": "Game Development-Puzzle"} for i in range(n)]


def test_each_judge_has_a_stage_reading_the_renders_and_the_first_keeps_its_records():
    bench = get_benchmark("artifactsbench")
    one, _ = plan_run(bench, spec(), items(), "runs/x")
    extra = [{"name": "b", "url": "http://b/v1", "concurrency": 2}, {"name": "c", "url": "http://c/v1"}]
    two, manifests = plan_run(bench, spec(additionalJudges=extra), items(), "runs/x")
    assert [(s.name, s.upstream) for s in two.stages] == [
        ("render", None),
        ("judge", "render"),
        ("judge-b", "render"),
        ("judge-c", "render"),
    ]
    # Adding judges changes neither the renders' nor the first judge's configuration: both are reused.
    assert [s.config_hash for s in one.stages] == [s.config_hash for s in two.stages[:2]]
    b = next(m for m in manifests if m.stage == "judge-b")
    assert (b.config["url"], b.config["concurrency"], b.upstream) == ("http://b/v1", 2, "render")
    # A judge's own change re-judges that judge only.
    changed, _ = plan_run(
        bench, spec(additionalJudges=[{**extra[0], "concurrency": 3}, extra[1]]), items(), "x"
    )
    assert [s.config_hash for s in changed.stages] != [s.config_hash for s in two.stages]
    unchanged = [0, 1, 3]  # render, judge, judge-c
    assert [changed.stages[i].config_hash for i in unchanged] == [
        two.stages[i].config_hash for i in unchanged
    ]


def test_a_local_run_keeps_its_identity_when_judges_or_ratings_are_added():
    inputs = {"benchmark": "sha-a"}
    base = run_uid(spec(), inputs)
    panel = spec(additionalJudges=[{"name": "b", "url": "u"}], judgeAggregate="mean")
    panel["judge"]["name"] = "first"
    assert run_uid(panel, {**inputs, "humanRatings": "sha-h"}) == base
    assert run_uid(spec(judge={"url": "http://other/v1"}), inputs) != base  # the first judge is the run's


def test_extending_a_plan_adds_only_the_new_judges_stage():
    bench = get_benchmark("artifactsbench")
    old, _ = plan_run(bench, spec(), items(), "runs/x")
    wanted, manifests = plan_run(bench, spec(additionalJudges=[{"name": "b", "url": "u"}]), items(), "runs/x")
    old.stages[1].config_hash = "kept"  # e.g. planned with another share of a JudgeServer's budget
    assert added_stages(old, wanted) == ["judge-b"]
    plan, new = extend_plan(old, wanted, manifests)
    assert [(s.name, s.config_hash) for s in plan.stages][:2] == [(s.name, s.config_hash) for s in old.stages]
    assert [s.name for s in plan.stages] == ["render", "judge", "judge-b"]
    assert {m.stage for m in new} == {"judge-b"} and len(new) == plan.stage("judge-b").shards
    assert added_stages(plan, wanted) == []


def rec(item: str, stage: str, score: float | None):
    return ok(item, stage, score=score) if score is not None else failed(item, stage, "unjudgeable")


def records(first: list, second: list) -> dict:
    return {
        "render": {f"t{i}": ok(f"t{i}", "render") for i in range(len(first))},
        "judge": {f"t{i}": rec(f"t{i}", "judge", s) for i, s in enumerate(first)},
        "judge-b": {f"t{i}": rec(f"t{i}", "judge-b", s) for i, s in enumerate(second)},
    }


def test_each_judge_is_scored_as_if_alone_and_the_aggregate_is_the_per_item_median():
    bench = get_benchmark("artifactsbench")
    first, second = [10, 20, 30, 40, 50, None], [20, 30, 40, 50, 60, 70]
    the_spec = spec(additionalJudges=[{"name": "b", "url": "u"}], judgeAggregate="median")
    panel = panel_summary(bench, items(), records(first, second), the_spec, iterations=200)
    assert panel["judges"]["judge"]["scores"]["AVG"] == 30.0  # the unjudgeable item is left out
    assert panel["judges"]["b"]["scores"]["AVG"] == 45.0
    synthetic = aggregate_records(
        "artifactsbench", items(), records(first, second), _entries(the_spec), "median"
    )
    assert [synthetic[f"t{i}"].score for i in range(6)] == [
        15,
        25,
        35,
        45,
        55,
        70,
    ]  # t5: the one judge that scored
    assert panel["aggregate"]["scores"]["AVG"] == pytest.approx(sum([15, 25, 35, 45, 55, 70]) / 6, abs=1e-3)
    [pair] = panel["agreement"]
    assert pair["n"] == 5 and pair["pearson"] == 1.0 and pair["kendall_tau_b"] == 1.0
    assert flat_scores(panel)["b/AVG"] == 45.0 and "aggregate/AVG" in flat_scores(panel)


def test_the_aggregate_also_reduces_vision2code_raw_ratings():
    bench = get_benchmark("vision2code")
    rows = [{"id": "a", "source_dataset": "ChartQA"}]
    raw = {"judge": 4.0, "judge-b": 2.0}
    data = {
        "render": {"a": ok("a", "render")},
        **{
            stage: {"a": ok("a", stage, score=v - 1, data={"raw_score_0_to_5": v})}
            for stage, v in raw.items()
        },
    }
    the_spec = spec(additionalJudges=[{"name": "b", "url": "u"}], judgeAggregate="mean")
    [record] = aggregate_records("vision2code", rows, data, _entries(the_spec), "mean").values()
    assert (record.score, record.data["raw_score_0_to_5"]) == (2.0, 3.0)
    panel = panel_summary(bench, rows, data, the_spec, iterations=0)
    assert panel["aggregate"]["scores"]["mean_raw_score_0_to_5"] == 3.0


def _entries(the_spec):
    from proctor_jobs.judge.panel import judge_entries

    return judge_entries(the_spec)


def test_agreement_has_intervals_overall_and_per_group_and_is_seeded():
    bench = get_benchmark("artifactsbench")
    rows = [
        {"id": f"t{i}", "class": ("Game Development-x" if i % 2 else "SVG Generation-y")} for i in range(12)
    ]
    first = [float(i * 7 % 13) for i in range(12)]
    second = [v + (3 if i % 3 == 0 else -2) for i, v in enumerate(first)]
    data = records(first, second)
    the_spec = spec(additionalJudges=[{"name": "b", "url": "u"}])
    [pair] = panel_summary(bench, rows, data, the_spec, iterations=300)["agreement"]
    for stat in ("pearson", "spearman", "kendall_tau_b"):
        low, high = pair[f"{stat}_ci"]
        assert low <= pair[stat] <= high < 1.0 or pair[stat] == 1.0
    assert set(pair["by_group"]) == {"Game Development", "SVG Generation"}
    assert all(group["n"] == 6 for group in pair["by_group"].values())
    assert panel_summary(bench, rows, data, the_spec, iterations=300)["agreement"] == [pair]


def test_a_run_with_one_judge_has_no_panel_but_human_ratings_give_one():
    bench = get_benchmark("artifactsbench")
    data = records([10, 20, 30, 40, 50, 60], [0] * 6)
    assert panel_summary(bench, items(), data, spec(), iterations=0) is None
    human = {f"t{i}": float(6 - i) for i in range(6)}
    panel = panel_summary(bench, items(), data, spec(), human=human, iterations=0)
    [row] = panel["human"]
    assert (row["judge"], row["n"], row["spearman"]) == ("judge", 6, -1.0)
    assert row["pearson_ci"] == [None, None]  # no resamples asked: no interval, not a made-up one
    assert not math.isnan(row["pearson"])


def test_human_ratings_errors_name_the_record_and_field():
    ref = {"idField": "id", "ratingField": "rating"}
    assert human_table([{"id": "a", "rating": 3}], ref, "x") == {"a": 3.0}
    with pytest.raises(InputError, match=r"x: record 2: field 'rating': expected a number, not 'good'"):
        human_table([{"id": "a", "rating": 3}, {"id": "b", "rating": "good"}], ref, "x")
    with pytest.raises(InputError, match=r"record 2: field 'id': duplicate item 'a' \(record 1 has it too\)"):
        human_table([{"id": "a", "rating": 3}, {"id": "a", "rating": 2}], ref, "x")


def test_each_judge_stage_job_carries_its_own_key_and_render_jobs_none():
    context = ctx()
    context.stage_api_keys = {"judge-b": {"name": "b-key", "key": "token"}}

    def key(stage: str, kind: str):
        env = build_stage_job(context, stage, kind, 1)["spec"]["template"]["spec"]["containers"][0]["env"]
        found = [e["valueFrom"]["secretKeyRef"]["name"] for e in env if e["name"] == "PROCTOR_JUDGE_API_KEY"]
        return found[0] if found else None

    assert (key("judge", "judge"), key("judge-b", "judge"), key("render", "render")) == (
        "judge",
        "b-key",
        None,
    )


def test_the_network_policy_opens_every_judge_server():
    policy = build_network_policy(ctx(), judge_servers=[("qwen", 8000), ("llava", 9000)])
    label = "proctor.dev/judgeserver"
    rules = [r for r in policy["spec"]["egress"] if label in str(r)]
    servers = [(r["to"][0]["podSelector"]["matchLabels"][label], r["ports"][0]["port"]) for r in rules]
    assert servers == [("qwen", 8000), ("llava", 9000)]


def test_a_run_waits_for_every_judge_server_and_names_which():
    the_spec = spec(
        judge={"serverRef": {"name": "a"}}, additionalJudges=[{"name": "b", "serverRef": {"name": "s-b"}}]
    )
    ready = {"status": {"phase": "Ready"}}
    [blocker] = input_blockers(the_spec, {}, {"a": ready}, True)
    assert blocker.reason == "JudgeNotFound" and "additionalJudges[b].serverRef" in blocker.message
    loading = {"status": {"phase": "Loading", "message": "weights"}}
    [blocker] = input_blockers(the_spec, {}, {"a": ready, "s-b": loading}, True)
    assert blocker.reason == "JudgeNotReady" and "(judge 'b')" in blocker.message
    assert input_blockers(the_spec, {}, {"a": ready, "s-b": ready}, True) == []


def test_status_judges_give_each_judges_score_and_agreement_with_the_first():
    panel = {
        "judges": {"bias": {"stage": "judge", "score": 3.5}, "noise": {"stage": "judge-noise", "score": 2.9}},
        "agreement": [{"a": "bias", "b": "noise", "pearson": 0.8, "spearman": 0.7, "kendall_tau_b": 0.6}],
    }
    assert judge_statuses(panel, "bias") == [
        {"name": "bias", "stage": "judge", "score": 3.5},
        {
            "name": "noise",
            "stage": "judge-noise",
            "score": 2.9,
            "pearson": 0.8,
            "spearman": 0.7,
            "kendall": 0.6,
        },
    ]
    assert judge_statuses(None, "bias") == []


def test_a_run_waits_for_its_human_ratings_artifact():
    the_spec = spec(humanRatings={"artifactRef": {"name": "ratings"}})
    [blocker] = input_blockers(the_spec, {}, {}, False)
    assert blocker.reason == "ArtifactNotFound" and blocker.message.startswith("spec.humanRatings:")
    ready = {"status": {"phase": "Ready", "sha256": "abc"}}
    assert input_blockers(the_spec, {"ratings": ready}, {}, False) == []


def test_each_judge_gets_the_original_output_files_of_its_own_verdicts():
    import json

    def verdicts(stage, scores):
        return {
            f"t{i}": ok(f"t{i}", stage, score=s, data={"score_text": str(s), "reply": f"{stage} says {s}"})
            for i, s in enumerate(scores)
        }

    bench = get_benchmark("artifactsbench")
    the_spec = spec(additionalJudges=[{"name": "b", "url": "u"}])
    judged = {
        "render": {f"t{i}": ok(f"t{i}", "render") for i in range(3)},
        "judge": verdicts("judge", [10, 20, 30]),
        "judge-b": verdicts("judge-b", [40, 50, 60]),
    }
    exports = bench.exports(items(3), judged, the_spec)
    [first] = [name for name in exports if "/" not in name]
    assert sorted(exports) == sorted([first, f"judges/b/{first}"])

    def verdicts_in(name):
        rows = [json.loads(line) for line in exports[name].decode().splitlines()]
        return [sorted(v for k, v in row.items() if k.endswith(("_ans", "_reason"))) for row in rows]

    assert verdicts_in(first)[0] == ["10", "judge says 10"]
    assert verdicts_in(f"judges/b/{first}")[2] == ["60", "judge-b says 60"]
    # a judge with no records yet (added to a finished run, not yet run) has no files yet
    assert list(bench.exports(items(3), {**judged, "judge-b": {}}, the_spec)) == [first]

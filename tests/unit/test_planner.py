"""Planning: identical sharding across stages, candidate generation, run identity."""

import pytest

from proctor.plan import plan_run, run_uid
from proctor_jobs.benchmarks import get_benchmark


def test_items_are_partitioned_into_shards_of_shard_size(fake_benchmark):
    items = [{"id": str(i)} for i in range(10)]
    plan, manifests = plan_run(get_benchmark("fake"), {"sharding": {"shardSize": 4}}, items, "runs/x")
    assert [s.shards for s in plan.stages] == [3, 3]
    first = [m for m in manifests if m.stage == "first"]
    assert [m.item_ids for m in first] == [["0", "1", "2", "3"], ["4", "5", "6", "7"], ["8", "9"]]
    second = [m for m in manifests if m.stage == "second"]
    assert [m.item_ids for m in second] == [m.item_ids for m in first]
    assert {m.upstream for m in second} == {"first"}


def test_candidate_adds_a_generate_stage_whose_answers_feed_every_later_stage(fake_benchmark):
    spec = {"candidate": {"model": "m", "samples": 1}}
    plan, manifests = plan_run(get_benchmark("fake"), spec, [{"id": "a"}], "runs/x")
    assert [s.name for s in plan.stages] == ["generate", "first", "second"]
    later = [m for m in manifests if m.stage != "generate"]
    assert {m.answers_from for m in later} == {"generate"}
    assert next(m for m in manifests if m.stage == "generate").config["candidate"]["model"] == "m"


def test_duplicate_item_ids_are_refused(fake_benchmark):
    with pytest.raises(ValueError, match="duplicate item id 'a'"):
        plan_run(get_benchmark("fake"), {}, [{"id": "a"}, {"id": "a"}], "runs/x")


def test_planning_is_deterministic(fake_benchmark):
    items = [{"id": str(i)} for i in range(7)]
    one = plan_run(get_benchmark("fake"), {}, items, "runs/x")
    two = plan_run(get_benchmark("fake"), {}, items, "runs/x")
    assert one[0].to_dict() == two[0].to_dict()
    assert [m.to_dict() for m in one[1]] == [m.to_dict() for m in two[1]]


def test_run_uid_changes_with_spec_or_inputs():
    base = run_uid({"a": 1}, {"benchmark": "x"})
    assert base == run_uid({"a": 1}, {"benchmark": "x"})
    assert base != run_uid({"a": 2}, {"benchmark": "x"})
    assert base != run_uid({"a": 1}, {"benchmark": "y"})

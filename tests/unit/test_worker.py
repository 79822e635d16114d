"""The shard loop: one record per item, failures recorded, finished items never redone."""

from __future__ import annotations

from proctor.plan import plan_run, write_plan
from proctor_jobs.benchmarks import get_benchmark
from proctor_jobs.layout import RunLayout
from proctor_jobs.worker import load_shard_records, main, run_shard

PREFIX = "runs/default/t/uid1"


def _plan(store, items, spec=None):
    bench = get_benchmark("fake")
    spec = {"sharding": {"shardSize": 3}, **(spec or {})}
    plan, manifests = plan_run(bench, spec, items, PREFIX)
    write_plan(store, plan, manifests, items)
    return plan


def test_each_item_gets_one_record_and_failures_are_records(fs_store, fake_benchmark):
    items = [{"id": "a"}, {"id": "b", "do": "raise"}, {"id": "c", "do": "hang"}]
    _plan(fs_store, items)
    outcome = run_shard(fs_store, PREFIX, "first", 0)
    records = load_shard_records(fs_store, RunLayout(PREFIX), "first", 0)
    assert set(records) == {"a", "b", "c"}
    assert records["a"].status == "ok"
    assert records["b"].status == "failed" and "boom on b" in records["b"].reason
    assert records["c"].status == "failed" and "deadline" in records["c"].reason
    assert outcome.counts == {"ok": 1, "failed": 2, "skipped": 0, "env_error": 0}
    assert fs_store.exists(RunLayout(PREFIX).results("first", 0))


def test_rerun_skips_recorded_items(fs_store, fake_benchmark):
    _plan(fs_store, [{"id": "a"}, {"id": "b"}])
    run_shard(fs_store, PREFIX, "first", 0)
    fake_benchmark.calls.clear()
    again = run_shard(fs_store, PREFIX, "first", 0)
    assert fake_benchmark.calls == []
    assert (again.processed, again.reused) == (0, 2)


def test_a_killed_shard_resumes_with_the_unfinished_items_only(fs_store, fake_benchmark):
    _plan(fs_store, [{"id": "a"}, {"id": "b"}, {"id": "c"}])
    run_shard(fs_store, PREFIX, "first", 0)
    layout = RunLayout(PREFIX)
    # Simulate a crash after two items: drop the compacted file and one item record.
    fs_store.delete(layout.results("first", 0))
    fs_store.delete(layout.item_record("first", 0, "c"))
    fake_benchmark.calls.clear()
    outcome = run_shard(fs_store, PREFIX, "first", 0)
    assert fake_benchmark.calls == [("first", "c")]
    assert outcome.processed == 1 and outcome.reused == 2


def test_records_from_another_configuration_are_redone(fs_store, fake_benchmark):
    _plan(fs_store, [{"id": "a"}], spec={"knob": 1})
    run_shard(fs_store, PREFIX, "first", 0)
    _plan(fs_store, [{"id": "a"}], spec={"knob": 2})
    fake_benchmark.calls.clear()
    run_shard(fs_store, PREFIX, "first", 0)
    assert fake_benchmark.calls == [("first", "a")]


def test_downstream_stage_reads_upstream_records_and_skips_failed_items(fs_store, fake_benchmark):
    _plan(fs_store, [{"id": "a", "value": 2}, {"id": "b", "do": "raise"}])
    run_shard(fs_store, PREFIX, "first", 0)
    run_shard(fs_store, PREFIX, "second", 0)
    records = load_shard_records(fs_store, RunLayout(PREFIX), "second", 0)
    assert records["a"].status == "ok" and records["a"].score == 2 + 2  # its own value + the upstream score
    assert records["b"].status == "skipped" and "upstream first failed" in records["b"].reason


def test_progress_record_is_written(fs_store, fake_benchmark):
    _plan(fs_store, [{"id": "a"}, {"id": "b", "do": "raise"}])
    run_shard(fs_store, PREFIX, "first", 0)
    progress = fs_store.get_json(RunLayout(PREFIX).progress("first", 0))
    assert progress["done"] is True
    assert (progress["total"], progress["ok"], progress["failed"]) == (2, 1, 1)


def test_cli_reads_the_index_from_job_completion_index(fs_store, fake_benchmark, monkeypatch, capsys):
    _plan(fs_store, [{"id": f"i{n}"} for n in range(5)])
    monkeypatch.setenv("JOB_COMPLETION_INDEX", "1")
    assert main(["--store", str(fs_store.root), "--run", PREFIX, "--stage", "first"]) == 0
    assert '"index": 1' in capsys.readouterr().out
    assert set(load_shard_records(fs_store, RunLayout(PREFIX), "first", 1)) == {"i3", "i4"}


def test_cli_fails_loudly_on_a_missing_manifest(fs_store, fake_benchmark):
    assert main(["--store", str(fs_store.root), "--run", PREFIX, "--stage", "first", "--index", "0"]) == 3


def test_a_resumed_run_counts_processed_and_reused_per_stage(fs_store, fake_benchmark, tmp_path):
    from types import SimpleNamespace

    from proctor.local import LocalRun, _result

    plan = _plan(fs_store, [{"id": "a"}, {"id": "b"}, {"id": "c"}])
    run_shard(fs_store, PREFIX, "first", 0)  # the first invocation, killed before the second stage
    outcomes = [run_shard(fs_store, PREFIX, "first", 0), run_shard(fs_store, PREFIX, "second", 0)]
    meta = SimpleNamespace(name="t", namespace="default")
    local = LocalRun(SimpleNamespace(metadata=meta), {}, plan, fs_store, tmp_path)
    result = _result(local, outcomes, [])
    assert result.stages == {
        "first": {"processed": 0, "reused": 3, "failed": 0},
        "second": {"processed": 3, "reused": 0, "failed": 0},
    }
    assert result.to_json()["stages"] == result.stages


def test_a_stalled_stage_says_why_in_its_progress_while_no_item_finishes(fs_store, fake_benchmark):
    """Progress is written on a clock too, with what the stage waits on; the note goes once it is over."""
    import threading
    import time

    _plan(fs_store, [{"id": "a", "do": "stall"}])
    key = RunLayout(PREFIX).progress("first", 0)
    worker = threading.Thread(target=run_shard, args=(fs_store, PREFIX, "first", 0))
    worker.start()
    notes = set()
    while worker.is_alive():
        notes.add((fs_store.get_json_or(key) or {}).get("note"))
        time.sleep(0.05)
    worker.join()
    assert "retrying: judge HTTP 429 (next call in 1 s)" in notes
    assert fs_store.get_json(key)["note"] is None


def test_the_progress_record_names_why_items_could_not_be_evaluated(fs_store, fake_benchmark):
    """The operator reads shard progress, not item records: an `env_error` must arrive there with its
    reason, so the run can fail saying what the node lacks (reconcile.environment_failure)."""
    _plan(fs_store, [{"id": "a"}, {"id": "b", "do": "needs_extra", "value": 0}])
    run_shard(fs_store, PREFIX, "first", 0)
    progress = fs_store.get_json(RunLayout(PREFIX).progress("first", 0))
    assert progress["env_error"] == 1 and progress["ok"] == 1
    assert "missing Python module" in progress["env_reason"]


def test_a_shard_reports_its_cpu_wall_time_and_every_byte_it_wrote(fs_store, fake_benchmark):
    _plan(fs_store, [{"id": "a"}, {"id": "b"}])
    layout = RunLayout(PREFIX)
    run_shard(fs_store, PREFIX, "first", 0)
    sums = fs_store.get_json(layout.progress("first", 0))["metrics"]["sums"]
    written = [layout.item_record("first", 0, i) for i in ("a", "b")] + [layout.results("first", 0)]
    at_least = sum((fs_store.root / key).stat().st_size for key in written)
    # records and the compacted file, plus the progress records written along the way
    assert at_least < sums["store_bytes_written"] < at_least + 4096
    assert sums["worker_wall_seconds"] > 0 and sums["worker_cpu_seconds"] >= 0
    # A second attempt on the shard adds to what the first cost (metrics are cumulative per shard).
    run_shard(fs_store, PREFIX, "first", 0)
    again = fs_store.get_json(layout.progress("first", 0))["metrics"]["sums"]
    assert again["store_bytes_written"] > sums["store_bytes_written"]
    assert again["worker_wall_seconds"] >= sums["worker_wall_seconds"]


def test_counting_the_bytes_keeps_the_store_s_root_visible_to_the_sandbox(fs_store):
    from proctor_jobs.store.counting import CountingStore

    counted = CountingStore(fs_store)
    assert counted.root == fs_store.root  # stages hide it from untrusted programs by this attribute
    counted.put_json("x.json", {"a": 1})
    assert counted.bytes_written == len(fs_store.get_bytes("x.json"))

"""The shard loop: the same function processes a shard in a Job pod and in local mode.

    proctor-worker --store s3://bucket/proctor --run runs/ns/name/uid --stage oracle   # index from
                                                                                        # JOB_COMPLETION_INDEX

Guarantees, whatever happens to the process:
- an item already recorded (under the same stage configuration) is never worked again;
- one item's failure — bad answer, crash, hang — is a record with a reason, never a lost shard;
- progress is written to the store while the shard runs, so the control plane can report it.

The exit status is non-zero only when the shard itself could not be processed (store unreachable,
manifest missing), which is what Job retries are for.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import logging
import os
import re
import shutil
import socket
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from proctor_jobs.benchmarks import StageContext, get_benchmark
from proctor_jobs.benchmarks.base import UNREADABLE, ShardMetrics
from proctor_jobs.layout import RunLayout
from proctor_jobs.manifest import ShardManifest
from proctor_jobs.records import FINAL_STATUSES, ItemRecord, env_error, environment_reason, failed, skipped
from proctor_jobs.store import KeyNotFound, Store, open_store
from proctor_jobs.store.counting import CountingStore

log = logging.getLogger("proctor.worker")


@dataclass
class ShardOutcome:
    stage: str
    index: int
    total: int
    processed: int = 0  # items worked by this invocation
    reused: int = 0  # items whose record already existed
    counts: dict[str, int] = field(
        default_factory=lambda: {"ok": 0, "failed": 0, "skipped": 0, "env_error": 0}
    )
    processed_ids: list[str] = field(default_factory=list)
    env_reason: str | None = None  # the first `env_error` reason: why this node could not evaluate items


def load_shard_records(store: Store, layout: RunLayout, stage: str, index: int) -> dict[str, ItemRecord]:
    """Every record of a shard: the compacted file when the shard finished, else the item records."""
    records: dict[str, ItemRecord] = {}
    with contextlib.suppress(KeyNotFound):
        for row in store.get_jsonl(layout.results(stage, index)):
            records[row["id"]] = ItemRecord.from_dict(row)
    for key in store.list(layout.item_records_prefix(stage, index)):
        with contextlib.suppress(KeyNotFound, ValueError):
            row = store.get_json(key)
            records[row["id"]] = ItemRecord.from_dict(row)
    return records


def shard_finished(store: Store, layout: RunLayout, stage: str, index: int) -> bool:
    return store.exists(layout.results(stage, index))


def run_shard(
    store: Store,
    run_prefix: str,
    stage: str,
    index: int,
    *,
    worker: str | None = None,
    progress_every_s: float = 1.0,
    wait_upstream_s: float = 0.0,
    on_record: Callable[[ItemRecord], None] | None = None,
) -> ShardOutcome:
    """Process one shard of one stage to completion. Safe to call again after any interruption."""
    layout = RunLayout(run_prefix)
    store = CountingStore(store)  # bytes written by this shard, for its cost
    manifest = ShardManifest.from_dict(
        _wait_for_manifest(store, layout.shard_manifest(stage, index), wait_upstream_s)
    )
    worker = worker or os.environ.get("HOSTNAME") or socket.gethostname()
    outcome = ShardOutcome(stage=stage, index=index, total=len(manifest.items))

    existing = {
        item_id: rec
        for item_id, rec in load_shard_records(store, layout, stage, index).items()
        if rec.config_hash == manifest.config_hash and rec.status in FINAL_STATUSES
    }
    pending = [item for item in manifest.items if item["id"] not in existing]
    outcome.reused = outcome.total - len(pending)
    for rec in existing.values():
        outcome.counts[rec.status] = outcome.counts.get(rec.status, 0) + 1

    upstream: dict[str, ItemRecord] = {}
    if manifest.upstream and pending:
        upstream = _wait_for_upstream(store, layout, manifest, wait_upstream_s)

    metrics = ShardMetrics()
    progress = _ProgressWriter(store, layout, manifest, outcome, worker, progress_every_s, metrics)
    progress.write(force=True)
    if pending and manifest.answers_from:
        pending = attach_generated_answers(store, layout, manifest, pending, wait_upstream_s)
    if pending:
        processor = stage_processor(manifest)
        sweep_stale_scratch()
        with tempfile.TemporaryDirectory(prefix=f"proctor-{stage}-{index}-pid{os.getpid()}-") as scratch:
            ctx = StageContext(
                store, layout, manifest, Path(scratch), worker=worker, log=log, metrics=metrics
            )
            lock = threading.Lock()  # records arrive from executor threads

            def record(rec: ItemRecord) -> None:
                rec.config_hash = manifest.config_hash
                rec.worker = worker
                store.put_json(layout.item_record(stage, index, rec.id), rec.to_dict())
                with lock:
                    _account(rec)

            def _account(rec: ItemRecord) -> None:
                existing[rec.id] = rec
                metrics.observe("item_duration_seconds", rec.duration_s)
                outcome.processed += 1
                outcome.processed_ids.append(rec.id)
                outcome.counts[rec.status] = outcome.counts.get(rec.status, 0) + 1
                if rec.status == "env_error" and outcome.env_reason is None:
                    outcome.env_reason = rec.reason
                progress.write()
                if on_record:
                    on_record(rec)

            progress.notes = ctx.notes
            # Progress is also written on a clock, not only when an item finishes: a stage stalled on
            # its judge must still show why.
            stop = threading.Event()
            ticker = threading.Thread(target=progress.tick, args=(stop,), daemon=True)
            ticker.start()
            try:
                asyncio.run(_process_items(processor, pending, upstream, ctx, record))
            finally:
                stop.set()
                ticker.join()

    # Compact: one file per finished shard, in manifest order. Item records stay as the audit trail.
    rows = [existing[item["id"]].to_dict() for item in manifest.items if item["id"] in existing]
    if len(rows) == outcome.total:
        store.put_jsonl(layout.results(stage, index), rows)
    progress.write(force=True, done=len(rows) == outcome.total)
    return outcome


_SCRATCH = re.compile(r"^proctor-.+-pid(\d+)-")


def sweep_stale_scratch(root: Path | None = None) -> list[Path]:
    """Remove shard scratch folders whose worker is gone (a `kill -9` skips the cleanup).

    A scratch folder names its worker's pid (`proctor-oracle-0-pid4242-…`); one whose process no
    longer exists and that belongs to this user is removed. A live worker's folder is never touched."""
    removed = []
    for path in Path(root or tempfile.gettempdir()).glob("proctor-*-pid*-*"):
        match = _SCRATCH.match(path.name)
        if not match or not path.is_dir() or _alive(int(match.group(1))):
            continue
        with contextlib.suppress(OSError):
            if path.lstat().st_uid != os.getuid():
                continue
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


async def _process_items(processor, pending, upstream, ctx: StageContext, record) -> None:
    semaphore = asyncio.Semaphore(max(1, processor.concurrency))
    loop = asyncio.get_running_loop()

    async def one(item: dict[str, Any]) -> None:
        async with semaphore:
            rec = await _process_one(processor, item, upstream.get(item["id"]), ctx)
            # Store writes block; keep them off the event loop so concurrent items keep moving.
            await loop.run_in_executor(None, record, rec)

    try:
        try:
            await processor.start(ctx)
            await processor.prepare(pending, upstream, ctx)
        except Exception as exc:
            reason = environment_reason(exc)
            if reason is None:
                raise
            # The stage cannot run here at all: every item says why; none counts against its answer.
            for item in pending:
                await loop.run_in_executor(None, record, env_error(item["id"], ctx.manifest.stage, reason))
            return
        await asyncio.gather(*(one(item) for item in pending))
    finally:
        await processor.stop()


async def _process_one(processor, item, up: ItemRecord | None, ctx: StageContext) -> ItemRecord:
    stage = ctx.manifest.stage
    if item.get(UNREADABLE):  # its answer was not UTF-8: fail it alone, with the file, line and byte
        return failed(item["id"], stage, f"unreadable answer: {item[UNREADABLE]}")
    if ctx.manifest.upstream:
        if up is None:
            return skipped(item["id"], stage, f"no record from upstream stage {ctx.manifest.upstream!r}")
        if up.status != "ok" and not processor.accepts_failed_upstream:
            return skipped(item["id"], stage, f"upstream {up.stage} {up.status}: {up.reason}")
    started = time.monotonic()
    try:
        coro = processor.process(item, up, ctx)
        deadline = processor.item_deadline_s
        rec = await (asyncio.wait_for(coro, deadline) if deadline else coro)
    except TimeoutError:
        rec = failed(item["id"], stage, f"worker deadline of {processor.item_deadline_s:g} s exceeded")
    except Exception as exc:  # one item's failure must not cost the shard
        reason = environment_reason(exc)
        if reason is not None:  # the machine, not the answer: recorded apart, redone on rerun
            rec = env_error(item["id"], stage, reason)
        else:
            ctx.log.warning("item %s failed in %s: %s", item["id"], stage, traceback.format_exc())
            rec = failed(item["id"], stage, f"{type(exc).__name__}: {exc}")
    rec.duration_s = round(time.monotonic() - started, 3)
    return rec


def stage_processor(manifest: ShardManifest):
    """The processor for a shard: the candidate-generation stage is the same for every benchmark."""
    if manifest.stage == "generate":
        from proctor_jobs.generate import GenerateProcessor

        return GenerateProcessor(manifest.config)
    return get_benchmark(manifest.benchmark).processor(manifest.stage, manifest.config)


def attach_generated_answers(store, layout, manifest: ShardManifest, items, wait_s: float) -> list[dict]:
    """Copy each item's generated answer (from the generate stage's records) into its payload."""
    source = ShardManifest(**{**manifest.to_dict(), "upstream": manifest.answers_from})
    generated = _wait_for_upstream(store, layout, source, wait_s)
    out = []
    for item in items:
        rec = generated.get(item["id"])
        answer = rec.data.get("answer") if rec is not None and rec.status == "ok" else None
        out.append({**item, manifest.answer_field or "answer": answer or "", "generated": answer is not None})
    return out


def _wait_for_manifest(store, key: str, wait_s: float) -> dict:
    """The shard manifest; in a cluster the Job may start a moment before the operator has written it."""
    deadline = time.monotonic() + min(wait_s, 600.0)
    while True:
        try:
            return store.get_json(key)
        except KeyNotFound:
            if time.monotonic() >= deadline:
                raise
            time.sleep(1.0)


def _wait_for_upstream(
    store, layout: RunLayout, manifest: ShardManifest, wait_s: float
) -> dict[str, ItemRecord]:
    """Upstream records for this shard, waiting (in a cluster) until the upstream shard is done."""
    deadline = time.monotonic() + wait_s
    while not shard_finished(store, layout, manifest.upstream, manifest.index):
        if time.monotonic() >= deadline:
            break
        time.sleep(2.0)
    return load_shard_records(store, layout, manifest.upstream, manifest.index)


_COST_SUMS = ("worker_cpu_seconds", "worker_wall_seconds", "store_bytes_written")


def _cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


class _ProgressWriter:
    def __init__(self, store, layout, manifest, outcome: ShardOutcome, worker: str, every_s: float, metrics):
        self.store, self.layout, self.manifest, self.outcome = store, layout, manifest, outcome
        self.worker, self.every_s, self.last, self.metrics = worker, every_s, 0.0, metrics
        # Keep what earlier attempts of this shard measured: metrics are cumulative per shard.
        previous = (store.get_json_or(layout.progress(outcome.stage, outcome.index)) or {}).get(
            "metrics"
        ) or {}
        for name, series in previous.get("counters", {}).items():
            for label, value in series.items():
                metrics.inc(name, label, value)
        for name, buckets in previous.get("histograms", {}).items():
            merged = metrics.histograms.setdefault(name, {})
            for bucket, count in buckets.items():
                merged[bucket] = merged.get(bucket, 0.0) + count
        for name, total in previous.get("sums", {}).items():
            metrics.sums[name] = metrics.sums.get(name, 0.0) + total
        # What this attempt costs, added to what earlier attempts cost: the process's CPU time (its
        # threads and the children it has reaped: browsers, sandboxes), its wall time, bytes written.
        self.base = {name: metrics.sums.get(name, 0.0) for name in _COST_SUMS}
        self.cpu0, self.wall0 = _cpu_seconds(), time.monotonic()
        self.bytes0 = getattr(store, "bytes_written", 0)

    notes: dict[str, str] = {}

    def _account(self) -> None:
        sums = self.metrics.sums
        sums["worker_cpu_seconds"] = round(self.base["worker_cpu_seconds"] + _cpu_seconds() - self.cpu0, 3)
        sums["worker_wall_seconds"] = round(
            self.base["worker_wall_seconds"] + time.monotonic() - self.wall0, 3
        )
        written = getattr(self.store, "bytes_written", 0) - self.bytes0
        sums["store_bytes_written"] = self.base["store_bytes_written"] + written

    def tick(self, stop: threading.Event) -> None:
        while not stop.wait(max(1.0, self.every_s)):
            with contextlib.suppress(Exception):  # a store hiccup must not end the ticker
                self.write()

    def write(self, force: bool = False, done: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last < self.every_s:
            return
        self.last = now
        self._account()
        o = self.outcome
        self.store.put_json(
            self.layout.progress(o.stage, o.index),
            {
                "stage": o.stage,
                "index": o.index,
                "total": o.total,
                "ok": o.counts.get("ok", 0),
                "failed": o.counts.get("failed", 0),
                "skipped": o.counts.get("skipped", 0),
                "env_error": o.counts.get("env_error", 0),
                "env_reason": o.env_reason,
                "processed": o.processed,
                "reused": o.reused,
                "done": done,
                "note": "; ".join(self.notes.values()) if self.notes else None,
                "worker": self.worker,
                "metrics": self.metrics.snapshot(),
                "updated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            },
        )


def build_parser(
    prog: str = "proctor-worker",
    description: str = "Process one shard of one stage of a Proctor run (inside a Job, or by hand).",
) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument(
        "--store", default=os.environ.get("PROCTOR_STORE"), help="store URL (env PROCTOR_STORE)"
    )
    parser.add_argument("--run", default=os.environ.get("PROCTOR_RUN_PREFIX"), help="run prefix in the store")
    parser.add_argument("--stage", default=os.environ.get("PROCTOR_STAGE"), help="stage name")
    parser.add_argument(
        "--index",
        type=int,
        default=None,
        help="shard index (default: JOB_COMPLETION_INDEX, set by an Indexed Job)",
    )
    parser.add_argument(
        "--wait-upstream",
        type=float,
        default=float(os.environ.get("PROCTOR_WAIT_UPSTREAM", "0")),
        help="seconds to wait for the upstream stage's shard to finish (env PROCTOR_WAIT_UPSTREAM)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    index = args.index if args.index is not None else os.environ.get("JOB_COMPLETION_INDEX")
    missing = [n for n, v in (("--store", args.store), ("--run", args.run), ("--stage", args.stage)) if not v]
    if index is None:
        missing.append("--index (or JOB_COMPLETION_INDEX)")
    if missing:
        parser.error("missing " + ", ".join(missing))
    store = open_store(args.store)
    try:
        outcome = run_shard(store, args.run, args.stage, int(index), wait_upstream_s=args.wait_upstream)
    except KeyNotFound as exc:
        log.error("cannot process shard: %s", exc)
        return 3
    except Exception:
        log.error("shard failed:\n%s", traceback.format_exc())
        return 1
    print(
        json.dumps(
            {
                "stage": outcome.stage,
                "index": outcome.index,
                "total": outcome.total,
                "processed": outcome.processed,
                "reused": outcome.reused,
                "counts": outcome.counts,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

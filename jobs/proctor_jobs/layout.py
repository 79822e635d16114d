"""Where everything lives in the store. Every key Proctor writes is built here, nowhere else.

artifacts/<sha256>/records.jsonl, manifest.json      validated input bundles
runs/<namespace>/<run>/<uid>/plan.json               the shard plan
runs/.../<stage>/shards/<i>.json                     shard manifest
runs/.../<stage>/items/<i>/<item>.json               one record per item, written as it finishes
runs/.../<stage>/results/<i>.jsonl                   the shard's records, once the shard is done
runs/.../<stage>/progress/<i>.json                   counts, updated while the shard runs
runs/.../<stage>/evidence/<item>/<name>              screenshots, logs, programs
runs/.../summary.json, report.md, report.html
cache/render/<key>/                                  render evidence shared between runs
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

_SAFE = re.compile(r"[^A-Za-z0-9._-]")


def safe_name(item_id: str) -> str:
    """A key segment for an item id: readable when the id is clean, unique always."""
    cleaned = _SAFE.sub("_", item_id)[:80]
    if cleaned == item_id and cleaned not in (".", ".."):
        return cleaned
    return f"{cleaned}-{hashlib.sha1(item_id.encode()).hexdigest()[:10]}"


def artifact_prefix(sha256: str) -> str:
    return f"artifacts/{sha256}"


def render_cache_prefix(key: str) -> str:
    return f"cache/render/{key}"


@dataclass(frozen=True)
class RunLayout:
    prefix: str  # runs/<namespace>/<run>/<uid>

    @classmethod
    def for_run(cls, namespace: str, name: str, uid: str) -> RunLayout:
        return cls(f"runs/{namespace}/{name}/{uid}")

    @property
    def plan(self) -> str:
        return f"{self.prefix}/plan.json"

    @property
    def items(self) -> str:
        """Every work item of the run (what aggregation needs beyond the records)."""
        return f"{self.prefix}/items.jsonl"

    @property
    def summary(self) -> str:
        return f"{self.prefix}/summary.json"

    @property
    def aggregate_request(self) -> str:
        """What the operator asks of a run's aggregate Job (phase, reason, spec): in the cluster the
        summary and reports are made there, not in the operator's process."""
        return f"{self.prefix}/aggregate/request.json"

    @property
    def aggregate_done(self) -> str:
        """Written by the aggregate Job after the summary: the id of the request it answered."""
        return f"{self.prefix}/aggregate/done.json"

    @property
    def report_md(self) -> str:
        return f"{self.prefix}/report.md"

    @property
    def report_html(self) -> str:
        return f"{self.prefix}/report.html"

    def shard_manifest(self, stage: str, index: int) -> str:
        return f"{self.prefix}/{stage}/shards/{index}.json"

    def results(self, stage: str, index: int) -> str:
        return f"{self.prefix}/{stage}/results/{index}.jsonl"

    def results_prefix(self, stage: str) -> str:
        return f"{self.prefix}/{stage}/results/"

    def item_record(self, stage: str, index: int, item_id: str) -> str:
        return f"{self.prefix}/{stage}/items/{index}/{safe_name(item_id)}.json"

    def item_records_prefix(self, stage: str, index: int) -> str:
        return f"{self.prefix}/{stage}/items/{index}/"

    def progress(self, stage: str, index: int) -> str:
        return f"{self.prefix}/{stage}/progress/{index}.json"

    def progress_prefix(self, stage: str) -> str:
        return f"{self.prefix}/{stage}/progress/"

    def evidence(self, stage: str, item_id: str, name: str) -> str:
        return f"{self.prefix}/{stage}/evidence/{safe_name(item_id)}/{name}"

    def export(self, name: str) -> str:
        return f"{self.prefix}/exports/{name}"

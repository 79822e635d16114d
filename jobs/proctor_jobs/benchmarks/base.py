"""The adapter contract: what a benchmark tells Proctor about itself.

A benchmark adapter knows its input formats (tasks and answers), the stages an item goes through,
how to process one item in each stage (a `StageProcessor`), and how to turn the records into the
benchmark's published numbers. Everything else — sharding, retries, skipping finished items,
progress, storage — is the worker's and the control plane's job and the same for every benchmark.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from proctor_jobs.layout import RunLayout
from proctor_jobs.manifest import ShardManifest
from proctor_jobs.records import ItemRecord
from proctor_jobs.store.base import Store


class Records(list):
    """Records plus where each one came from (`lines[i]` is record i's place, e.g. "line 3").

    Readers of JSON Lines fill `lines` with 1-based line numbers, so errors point at the line an
    editor shows; without it a record is named by its 1-based position ("record 3")."""

    def __init__(self, records=(), lines: list[str] | None = None) -> None:
        super().__init__(records)
        self.lines = lines
        #: index -> why that record could not be read as UTF-8 (naming line and byte offset)
        self.unreadable: dict[int, str] = {}


def position(record: int | str, lines: list[str] | None = None) -> str:
    """A record's place for users: "line N" when known (1-based), else "record N" (1-based)."""
    if isinstance(record, str):
        return f"record {record!r}"
    if lines is not None and 0 <= record < len(lines):
        return lines[record]
    return f"record {record + 1}"


@dataclass
class Problem:
    """One problem with one record: `record` is its 0-based index, `first` that of an earlier
    record it clashes with (a duplicate id)."""

    record: int | str
    field: str
    message: str
    who: str | None = None
    first: int | None = None

    def describe(self, lines: list[str] | None = None) -> str:
        who = f" ({self.who})" if self.who else ""
        clash = f" ({position(self.first, lines)} has it too)" if self.first is not None else ""
        return f"{position(self.record, lines)}{who}: field {self.field!r}: {self.message}{clash}"


class FormatError(ValueError):
    """A record does not match its format. Names the record and the field, as users need to fix it.

    `record` is the 0-based index in the list given to the adapter; the message says "line N" (1-based,
    from the list's `lines`) or "record N" (1-based). A duplicate names both records (`first`)."""

    def __init__(
        self,
        record: int | str,
        field: str,
        message: str,
        source: str = "",
        *,
        first: int | None = None,
        who: str | None = None,
        more: list[Problem] | tuple[Problem, ...] = (),
        lines: list[str] | None = None,
    ) -> None:
        self.record, self.field, self.message, self.source = record, field, message, source
        self.problems = [Problem(record, field, message, who, first), *more]
        super().__init__(self.describe(lines))

    def describe(self, lines: list[str] | None = None) -> str:
        where = f"{self.source}: " if self.source else ""
        first, rest = self.problems[0], self.problems[1:]
        text = where + first.describe(lines)
        if rest:
            text += f"; {len(rest)} more problem(s):\n" + "\n".join(f"  {p.describe(lines)}" for p in rest)
        return text


#: the key a raw answer record (and its items) carry when it was not readable as UTF-8: the reason
UNREADABLE = "_unreadable"


def carry_unreadable(row: dict[str, Any], into: dict[str, Any]) -> dict[str, Any]:
    """Copy an unreadable answer's reason to what the adapter makes of it (answers, then items)."""
    if row.get(UNREADABLE):
        into[UNREADABLE] = row[UNREADABLE]
    return into


def lines_of(records: list[Any]) -> list[str] | None:
    return getattr(records, "lines", None)


@dataclass(frozen=True)
class StageInfo:
    name: str
    kind: str  # generate | render | judge | oracle | agent
    needs_judge: bool = False
    per_item_jobs: bool = False  # one Job per item instead of one Indexed Job (heavy, heterogeneous items)
    description: str = ""
    skip_reason: str | None = None  # set when the stage does not run in this configuration (no judge, ...)
    #: the stage whose records this one reads (default: the stage before it); several judges all
    #: name the render stage, so they judge side by side rather than one after another
    after: str | None = None


#: upper bounds (seconds) of the duration histograms workers report in their progress records
DURATION_BUCKETS = (0.1, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0, 3600.0, float("inf"))


def bucket_of(seconds: float) -> str:
    return next(("+Inf" if b == float("inf") else f"{b:g}") for b in DURATION_BUCKETS if seconds <= b)


@dataclass
class ShardMetrics:
    """Counters and duration histograms a shard reports through its progress record; the operator
    sums them over shards and exposes them to Prometheus (workers never serve metrics themselves)."""

    counters: dict[str, dict[str, float]] = field(default_factory=dict)
    histograms: dict[str, dict[str, float]] = field(default_factory=dict)
    sums: dict[str, float] = field(default_factory=dict)

    def inc(self, name: str, label: str, by: float = 1.0) -> None:
        series = self.counters.setdefault(name, {})
        series[label] = series.get(label, 0.0) + by

    def observe(self, name: str, seconds: float) -> None:
        buckets = self.histograms.setdefault(name, {})
        key = bucket_of(seconds)
        buckets[key] = buckets.get(key, 0.0) + 1
        self.sums[name] = self.sums.get(name, 0.0) + seconds

    def snapshot(self) -> dict:
        return {"counters": self.counters, "histograms": self.histograms, "sums": self.sums}


@dataclass
class StageContext:
    """What a processor may use while working on a shard."""

    store: Store
    layout: RunLayout
    manifest: ShardManifest
    scratch: Path
    worker: str = "local"
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("proctor.worker"))
    #: counters and histograms (e.g. judge requests by outcome, their latency) for the operator's metrics
    metrics: ShardMetrics = field(default_factory=ShardMetrics)
    #: what the stage is waiting on right now, by source (e.g. the judge retrying or unreachable); shown
    #: in the progress line so a degraded dependency is visible instead of a silent stall
    notes: dict[str, str] = field(default_factory=dict)

    def note(self, source: str, text: str | None) -> None:
        if text:
            self.notes[source] = text
        else:
            self.notes.pop(source, None)

    def put_evidence(self, item_id: str, name: str, data: bytes, content_type: str | None = None) -> str:
        key = self.layout.evidence(self.manifest.stage, item_id, name)
        self.store.put_bytes(key, data, content_type)
        return key


class StageProcessor(ABC):
    """Processes items of one stage. One instance per shard; `process` may run concurrently."""

    #: items processed concurrently in one worker
    concurrency: int = 1
    #: the worker's own deadline per item (a safety net; processors enforce tighter ones themselves)
    item_deadline_s: float | None = None
    #: whether `process` wants items whose upstream record is not ok (e.g. a judge that can judge
    #: an answer on text alone when its render failed); otherwise such items are skipped
    accepts_failed_upstream: bool = False

    async def start(self, ctx: StageContext) -> None:  # noqa: B027 - optional hook
        """Acquire shared resources (a browser, a sandbox server) before the first item."""

    async def prepare(  # noqa: B027 - optional hook
        self, items: list[dict[str, Any]], upstream: dict[str, ItemRecord], ctx: StageContext
    ) -> None:
        """See every pending item once before `process`, to batch work (e.g. one linter run per shard)."""

    async def stop(self) -> None:  # noqa: B027 - optional hook
        """Release them after the last item, also after a failure."""

    @abstractmethod
    async def process(
        self, item: dict[str, Any], upstream: ItemRecord | None, ctx: StageContext
    ) -> ItemRecord:
        """Work one item and return its record. Raising is allowed: the worker records the failure."""


class Benchmark(ABC):
    name: str
    title: str = ""
    #: the item payload field holding the answer; a candidate model's "generate" stage fills it
    answer_field: str = "answer"

    @abstractmethod
    def parse_tasks(self, records: list[dict[str, Any]], source: str = "") -> list[dict[str, Any]]:
        """Validate and normalise task records; raise FormatError naming the record and field."""

    @abstractmethod
    def parse_answers(self, records: list[dict[str, Any]], source: str = "") -> list[dict[str, Any]]:
        """Validate and normalise answer records; raise FormatError naming the record and field."""

    def categories(self, tasks: list[dict[str, Any]]) -> dict[str, int]:
        """Item counts per category, for the Artifact's status."""
        return {}

    @abstractmethod
    def stages(self, spec: dict[str, Any]) -> list[StageInfo]:
        """The stages a run of this benchmark goes through, in order, given the EvalRun spec."""

    @abstractmethod
    def work_items(
        self, tasks: list[dict[str, Any]], answers: list[dict[str, Any]] | None, spec: dict[str, Any]
    ) -> tuple[list[dict[str, Any]], list[str]]:
        """The run's items (each with a unique `id`) and warnings about the inputs' join.

        With `answers=None` and `spec["candidate"]` set, make `candidate.samples` items per task with
        an empty `answer_field`: the generate stage fills it in."""

    def stage_config(self, stage: str, spec: dict[str, Any]) -> dict[str, Any]:
        """The JSON configuration a stage's workers receive (part of the config hash)."""
        return {}

    @abstractmethod
    def processor(self, stage: str, config: dict[str, Any]) -> StageProcessor: ...

    @abstractmethod
    def aggregate(
        self,
        items: list[dict[str, Any]],
        records: dict[str, dict[str, ItemRecord]],
        spec: dict[str, Any],
    ) -> dict[str, Any]:
        """Scores from the records: `{"headline": name, "scores": {...}, "breakdowns": {...}}`."""

    def exports(
        self,
        items: list[dict[str, Any]],
        records: dict[str, dict[str, ItemRecord]],
        spec: dict[str, Any],
    ) -> dict[str, bytes]:
        """Files in the benchmark's original result format (name -> content)."""
        return {}


def refuse_repeats(keys: list[Any], field: str, what: str, source: str = "") -> None:
    """Refuse an id on more rows than the usual number of rows per id, naming both rows.

    Several rows per id are samples (ArtifactsBench, Vision2Code) or split predictions (HumanEval-V,
    as the original's `aggregate_prediction_data` merges them) only when every id has that many; an id
    on more rows than most ids is a duplicate, which would silently change `n` for every task."""
    rows: dict[Any, list[int]] = {}
    for i, key in enumerate(keys):
        rows.setdefault(key, []).append(i)
    if not rows:
        return
    tally = Counter(len(v) for v in rows.values())
    usual = max(tally, key=lambda count: (tally[count], -count))
    extra = sorted((where[usual], key, where) for key, where in rows.items() if len(where) > usual)
    if extra:
        at, key, where = extra[0]
        others = f"most {what}s are on {usual} row{'s' if usual > 1 else ''}"
        raise FormatError(
            at, field, f"duplicate {what} {key!r} ({len(where)} rows; {others})", source, first=where[0]
        )

"""Inputs: fetch records from a source, validate them against their format, store the bundle.

The same code serves the operator (Artifact reconciliation) and local mode; only the lookup of
ConfigMaps differs (the API server vs. manifests next to the EvalRun file).
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from proctor.api.common import Source
from proctor_jobs.benchmarks import BENCHMARK_FORMATS, FormatError, get_benchmark
from proctor_jobs.benchmarks.base import UNREADABLE, Records, lines_of, position
from proctor_jobs.encoding import UTF8_HINT, line_at, not_text, scrub, undecodable
from proctor_jobs.layout import artifact_prefix
from proctor_jobs.store import Store, StoreError, open_store

IMAGE_FIELDS = ("diagram", "image", "reference_image", "image_path")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".gif")


#: the largest S3 or HTTP source read (the operator's `ingest.maxBytes`, `proctor ingest --max-bytes`)
MAX_SOURCE_BYTES = 512 * 1024 * 1024
CHUNK_BYTES = 1024 * 1024


class InputError(ValueError):
    """An input cannot be read or is invalid; the message names the source, record and field."""

    reason = "InvalidRecord"


class SourceTooLarge(InputError):
    """A source's body passed the size cap: refused without reading the rest."""

    reason = "SourceTooLarge"

    def __init__(self, what: str, max_bytes: int) -> None:
        super().__init__(
            f"{what}: larger than {max_bytes:,} bytes, the most a source may hold "
            "(the operator's ingest.maxBytes; `proctor ingest --max-bytes`)"
        )


@dataclass
class Bundle:
    type: str
    format: str
    records: list[dict[str, Any]]
    sha256: str
    categories: dict[str, int] = field(default_factory=dict)
    source: str = ""
    warnings: list[str] = field(default_factory=list)

    @property
    def items(self) -> int:
        return len(self.records)


def parse_records(data: bytes | bytearray | str, source: str, place: str = "") -> Records:
    """Records from a JSON array, a single JSON object, or JSON Lines (errors name the 1-based line).

    JSON Lines records carry their line numbers (`Records.lines`: "line 3", or "FILE line 3" with
    `place`), so an adapter's error about record i says the line an editor shows. A line that is not
    UTF-8 (a Latin-1 file, raw `\\xff`, a lone surrogate) but still JSON once decoded with
    replacement characters is kept, with the reason in `Records.unreadable` (index -> reason naming
    the line and byte offset): an answer then fails alone, anything else is refused."""
    raw = data if isinstance(data, bytes | bytearray) else data.encode("utf-8", "surrogatepass")
    stripped = raw.strip()
    if not stripped:
        return Records()
    if stripped[:1] in (b"[", b"{"):
        problem = undecodable(raw)
        try:
            value = json.loads(raw.decode("utf-8", "replace"))
        except json.JSONDecodeError as exc:
            if stripped[:1] == b"[":
                raise InputError(f"{source}: line {exc.lineno}: not valid JSON: {exc.msg}") from None
        else:
            if problem and stripped[:1] == b"[":
                raise InputError(not_text(raw, source))
            if not isinstance(value, list):
                records = Records([scrub(value)], [f"{place}line 1"])
                if problem:
                    records.unreadable[0] = f"{source}: line {line_at(raw, problem[0])}: {problem[1]}"
                return records
            return Records(value)
    records, lines = Records(), []
    offset = 0
    for number, line in enumerate(raw.split(b"\n"), 1):
        start, offset = offset, offset + len(line) + 1
        if not line.strip():
            continue
        problem = undecodable(line, start)
        try:
            record = json.loads(line.decode("utf-8", "replace"))
        except json.JSONDecodeError as exc:
            extra = f" ({problem[1]})" if problem else ""
            raise InputError(f"{source}: line {number}: not valid JSON: {exc.msg}{extra}") from None
        if problem:
            records.unreadable[len(records)] = f"{source}: line {number}: {problem[1]}"
            record = scrub(record)
        records.append(record)
        lines.append(f"{place}line {number}")
    records.lines = lines
    return records


def canonical_jsonl(records: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(r, sort_keys=True, ensure_ascii=False) + "\n" for r in records).encode()


def validate_bundle(type_: str, format_: str, records: list[Any], source: str) -> Bundle:
    """Normalise records through the benchmark adapter; InputError naming the record and field.

    Answers that are not UTF-8 (`Records.unreadable`) are kept with the reason in `UNREADABLE`: their
    items fail with it and the rest of the run goes on. Unreadable tasks are refused."""
    unreadable = dict(getattr(records, "unreadable", {}))
    if unreadable and type_ != "answers":
        first = next(iter(unreadable.values()))
        more = f" (and {len(unreadable) - 1} more line(s))" if len(unreadable) > 1 else ""
        raise InputError(f"{first}{more}; {UTF8_HINT}")
    warnings = []
    if unreadable:
        for i, reason in unreadable.items():
            if isinstance(records[i], dict):
                records[i][UNREADABLE] = reason
        first = next(iter(unreadable.values()))
        warnings.append(
            f"{len(unreadable)} answer record(s) are not UTF-8 and fail with that reason (first: {first}); "
            + UTF8_HINT
        )
    try:
        if format_ == "jsonl":
            bad = next((i for i, r in enumerate(records) if not isinstance(r, dict)), None)
            if bad is not None:
                raise FormatError(bad, "<record>", "expected a JSON object", source)
            normalised, categories = list(records), {}
        elif format_ in BENCHMARK_FORMATS:
            adapter = get_benchmark(format_)
            if type_ == "answers":
                normalised, categories = adapter.parse_answers(records, source), {}
            else:
                normalised = adapter.parse_tasks(records, source)
                categories = adapter.categories(normalised)
        else:
            raise InputError(f"{source}: unknown format {format_!r}")
    except FormatError as exc:
        raise InputError(exc.describe(lines_of(records))) from None
    if not normalised:
        raise InputError(f"{source}: no records")
    sha = hashlib.sha256(canonical_jsonl(normalised)).hexdigest()
    return Bundle(type_, format_, normalised, sha, categories, source, warnings)


def store_bundle(store: Store, bundle: Bundle) -> str:
    """Copy the bundle to artifacts/<sha256>/ (once: content addressing makes it immutable)."""
    prefix = artifact_prefix(bundle.sha256)
    manifest_key = f"{prefix}/manifest.json"
    if not store.exists(manifest_key):
        store.put_bytes(f"{prefix}/records.jsonl", canonical_jsonl(bundle.records), "application/x-ndjson")
        store.put_json(
            manifest_key,
            {
                "type": bundle.type,
                "format": bundle.format,
                "sha256": bundle.sha256,
                "items": bundle.items,
                "categories": bundle.categories,
                "source": bundle.source,
            },
        )
    return store.uri(prefix)


def load_bundle(store: Store, sha256: str) -> Bundle:
    prefix = artifact_prefix(sha256)
    meta = store.get_json(f"{prefix}/manifest.json")
    records = store.get_jsonl(f"{prefix}/records.jsonl")
    return Bundle(
        meta["type"], meta["format"], records, sha256, meta.get("categories", {}), meta.get("source", "")
    )


ConfigMapLookup = Callable[[str, str], str | bytes]  # (name, key) -> text (bytes for binaryData)


def fetch_source(
    source: Source,
    label: str,
    config_maps: ConfigMapLookup | None = None,
    base_dir: Path | None = None,
    allow_files: bool = True,
    max_bytes: int = MAX_SOURCE_BYTES,
    allow_network: bool = True,
) -> list[dict[str, Any]]:
    """The raw records of a source (not yet validated). S3 and HTTP bodies are streamed and hashed
    while they arrive, and refused once they pass `max_bytes`, so a huge or endless URL costs at most
    that much memory. The operator passes `allow_network=False`: what a tenant names over the network
    is fetched by an ingest Job, never in the operator's process."""
    if not allow_network and (source.s3 is not None or source.http is not None):
        raise InputError(f"{label}: S3 and HTTP sources are fetched by an ingest Job, not by the operator")
    if source.inline is not None:
        return list(source.inline)
    if source.config_map is not None:
        if config_maps is None:
            raise InputError(f"{label}: configMap sources need a cluster or a ConfigMap manifest")
        cm = source.config_map
        text = config_maps(cm.name, cm.key)
        return parse_records(text, f"{label} (ConfigMap {cm.name}, key {cm.key})")
    if source.file is not None:
        if not allow_files:
            raise InputError(
                f"{label}: file sources work only in local mode (proctor run); use s3, http or configMap"
            )
        path = Path(source.file.path)
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        return read_local_records(path)
    if source.s3 is not None:
        bucket, _, key = source.s3.uri.removeprefix("s3://").partition("/")
        try:
            with open_store(f"s3://{bucket}").open_read(key) as stream:
                data, _ = read_capped(stream, max_bytes, f"{label}: {source.s3.uri}")
        except StoreError as exc:
            raise InputError(f"{label}: {exc}") from None
        return parse_records(data, source.s3.uri)
    if source.http is not None:
        data, digest = http_get(source.http.url, label, max_bytes)
        if digest != source.http.sha256:
            raise InputError(f"{label}: {source.http.url} has sha256 {digest}, expected {source.http.sha256}")
        return parse_records(data, source.http.url)
    raise InputError(f"{label}: empty source")


def read_local_records(path: Path) -> list[dict[str, Any]]:
    """Records from a file or every .json/.jsonl file of a directory; image paths become base64."""
    if not path.exists():
        raise InputError(f"{path}: no such file or directory")
    files = sorted(p for p in path.iterdir() if p.suffix in (".json", ".jsonl")) if path.is_dir() else [path]
    records, lines = Records(), []
    for file in files:
        place = f"{file.name} " if path.is_dir() else ""
        found = parse_records(file.read_bytes(), str(file), place)
        for i, reason in found.unreadable.items():
            records.unreadable[len(records) + i] = reason
        for i, record in enumerate(found):
            if isinstance(record, dict):
                _inline_images(record, file.parent)
            records.append(record)
            lines.append(found.lines[i] if found.lines else f"{place}record {i + 1}")
    records.lines = lines
    return records


def _inline_images(record: dict[str, Any], base: Path) -> None:
    for name in IMAGE_FIELDS:
        value = record.get(name)
        if isinstance(value, str) and value.lower().endswith(IMAGE_SUFFIXES) and (base / value).is_file():
            record[name] = base64.b64encode((base / value).read_bytes()).decode()


def read_capped(stream: BinaryIO, max_bytes: int, what: str) -> tuple[bytearray, str]:
    """(the body, its sha256), read in chunks and hashed as they arrive; SourceTooLarge past `max_bytes`."""
    digest, body = hashlib.sha256(), bytearray()
    while chunk := stream.read(CHUNK_BYTES):
        if len(body) + len(chunk) > max_bytes:
            raise SourceTooLarge(what, max_bytes)
        digest.update(chunk)
        body += chunk
    return body, digest.hexdigest()


def http_get(
    url: str, label: str, max_bytes: int = MAX_SOURCE_BYTES, attempts: int = 4, timeout: float = 60.0
) -> tuple[bytearray, str]:
    """(body, sha256) of a GET, streamed under `max_bytes`, with retries and exponential backoff:
    downloads fail transiently more often than not; a body over the cap is refused at once."""
    delay = 1.0
    for attempt in range(1, attempts + 1):
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:
                declared = response.headers.get("Content-Length")
                if declared and declared.isdigit() and int(declared) > max_bytes:
                    raise SourceTooLarge(f"{label}: {url} (Content-Length {declared})", max_bytes)
                return read_capped(response, max_bytes, f"{label}: {url}")
        except SourceTooLarge:
            raise
        except Exception as exc:
            if attempt == attempts:
                raise InputError(f"{label}: cannot download {url} after {attempts} attempts: {exc}") from None
            time.sleep(delay)
            delay *= 2
    raise AssertionError("unreachable")


def human_table(records: list[Any], ref: dict[str, Any], label: str) -> dict[str, float]:
    """spec.humanRatings' records as item id -> rating; InputError naming the record and field."""
    import math

    id_field, rating_field = ref.get("idField", "id"), ref.get("ratingField", "rating")
    table: dict[str, float] = {}
    first: dict[str, int] = {}
    for i, record in enumerate(records):
        where = f"{label}: {position(i, lines_of(records))}"
        item = record.get(id_field) if isinstance(record, dict) else None
        if not isinstance(item, str | int) or isinstance(item, bool) or item == "":
            raise InputError(f"{where}: field {id_field!r}: expected an item id")
        value = record.get(rating_field)
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise InputError(f"{where}: field {rating_field!r}: expected a number, not {value!r}")
        if str(item) in first:
            earlier = position(first[str(item)], lines_of(records))
            raise InputError(f"{where}: field {id_field!r}: duplicate item {item!r} ({earlier} has it too)")
        first[str(item)] = i
        table[str(item)] = float(value)
    return table

"""S3 and HTTP sources: streamed under a size cap, hashed as they arrive, never fetched by the operator.

A real HTTP server on 127.0.0.1 serves the bodies (an endless one among them); a filesystem store
stands in for S3 where the store's streaming read is what is tested.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from proctor.api.common import Source
from proctor.inputs import InputError, SourceTooLarge, fetch_source, http_get, read_capped
from proctor.reconcile.evalrun import source_artifacts
from proctor_jobs.store import open_store
from tests.doubles.big_source import SMALL, TWO_GB, BigSource


@pytest.fixture
def server() -> Iterator[BigSource]:
    with BigSource() as source:
        yield source


def test_an_http_body_is_hashed_as_it_arrives(server):
    body, digest = http_get(server.url("/small.jsonl"), "t")
    assert bytes(body) == SMALL and digest == hashlib.sha256(SMALL).hexdigest()
    source = Source.model_validate({"http": {"url": server.url("/small.jsonl"), "sha256": digest}})
    assert [r["qid"] for r in fetch_source(source, "Artifact ns/a")] == ["a", "b"]


def test_an_endless_http_body_is_cut_at_the_cap(server):
    cap = 8 * 1024 * 1024
    with pytest.raises(SourceTooLarge) as err:
        http_get(server.url("/endless"), "Artifact ns/big", max_bytes=cap)
    assert "larger than 8,388,608 bytes" in str(err.value) and "Artifact ns/big" in str(err.value)
    assert err.value.reason == "SourceTooLarge"
    assert server.done("/endless").wait(10), "the server still sends: the client did not hang up"
    assert server.sent["/endless"] < TWO_GB // 4, "the download went on past the cap"


def test_a_declared_length_over_the_cap_is_refused_before_the_body(server):
    with pytest.raises(SourceTooLarge, match="Content-Length 2147483648"):
        http_get(server.url("/declared-huge"), "t", max_bytes=1024 * 1024)


def test_a_wrong_sha256_names_the_url_and_both_digests(server):
    source = Source.model_validate({"http": {"url": server.url("/small.jsonl"), "sha256": "0" * 64}})
    with pytest.raises(InputError, match=r"has sha256 \w+, expected 0000"):
        fetch_source(source, "Artifact ns/a")


def test_an_s3_object_is_streamed_under_the_cap(tmp_path: Path, monkeypatch):
    store = open_store(str(tmp_path))
    store.put_bytes("big.jsonl", b'{"qid": "x"}\n' * 100_000)
    with store.open_read("big.jsonl") as stream, pytest.raises(SourceTooLarge):
        read_capped(stream, 1024 * 1024, "s3://b/big.jsonl")
    with store.open_read("big.jsonl") as stream:
        body, digest = read_capped(stream, 2 * 1024 * 1024, "s3://b/big.jsonl")
    assert len(body) == 1_300_000 and digest == hashlib.sha256(bytes(body)).hexdigest()


def test_the_operator_never_fetches_a_network_source(server):
    for source in (
        {"http": {"url": server.url("/small.jsonl"), "sha256": "0" * 64}},
        {"s3": {"uri": "s3://bucket/tasks.jsonl"}},
    ):
        with pytest.raises(InputError, match="fetched by an ingest Job"):
            fetch_source(Source.model_validate(source), "spec.benchmark.source", allow_network=False)
    assert server.sent == {}


def test_sources_given_in_place_become_artifacts_the_run_owns():
    spec = {
        "benchmark": {
            "source": {"http": {"url": "https://example.test/t.jsonl", "sha256": "a" * 64}},
            "format": "humanevalv",
        },
        "answers": {"source": {"inline": [{"qid": "a"}]}, "format": "humanevalv"},
        "humanRatings": {"source": {"s3": {"uri": "s3://b/ratings.jsonl"}}, "scale": [1, 10]},
    }
    new, children = source_artifacts(spec, "team", "run-1", "uid-1")
    assert new["benchmark"] == {"artifactRef": {"name": "run-1-benchmark-source"}}
    assert new["answers"] == spec["answers"], "inline sources stay the operator's to read"
    assert new["humanRatings"] == {"artifactRef": {"name": "run-1-humanratings-source"}, "scale": [1, 10]}
    by_name = {c["metadata"]["name"]: c for c in children}
    bench = by_name["run-1-benchmark-source"]
    assert bench["spec"] == {
        "type": "benchmark",
        "format": "humanevalv",
        "source": spec["benchmark"]["source"],
    }
    assert bench["metadata"]["ownerReferences"][0]["uid"] == "uid-1"
    assert by_name["run-1-humanratings-source"]["spec"]["format"] == "jsonl"
    assert json.dumps(spec).count("artifactRef") == 0, "the run's own spec is left as written"

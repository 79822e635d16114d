"""The store contract, on the filesystem backend (the S3 backend runs the same contract in
tests/integration/test_store_s3.py against a real S3-compatible server)."""

from __future__ import annotations

import os
import threading

import pytest

from proctor_jobs.store import KeyNotFound, StoreError, open_store
from proctor_jobs.store.base import Store


def check_contract(store: Store) -> None:
    store.put_bytes("a/b/c.json", b"one")
    assert store.get_bytes("a/b/c.json") == b"one"
    store.put_bytes("a/b/c.json", b"two")  # replace
    assert store.get_bytes("a/b/c.json") == b"two"
    store.put_json("a/x.json", {"k": [1, 2]})
    store.put_jsonl("a/rows.jsonl", [{"i": 1}, {"i": 2}])
    store.put_bytes("ab/other", b"")
    assert store.get_json("a/x.json") == {"k": [1, 2]}
    assert store.get_jsonl("a/rows.jsonl") == [{"i": 1}, {"i": 2}]
    assert list(store.list("a/")) == ["a/b/c.json", "a/rows.jsonl", "a/x.json"]
    assert list(store.list("a")) == ["a/b/c.json", "a/rows.jsonl", "a/x.json", "ab/other"]
    assert list(store.list("nothing/")) == []
    assert store.exists("a/x.json") and not store.exists("a/missing")
    with pytest.raises(KeyNotFound):
        store.get_bytes("a/missing")
    assert store.get_json_or("a/missing", "default") == "default"
    store.delete("a/x.json")
    store.delete("a/x.json")  # deleting twice is fine
    assert not store.exists("a/x.json")
    assert store.delete_prefix("a/") == 2
    assert list(store.list("a/")) == []
    assert store.exists("ab/other")
    for bad in ("/abs", "a/../b", "a//b", "trailing/", ""):
        with pytest.raises(StoreError):
            store.put_bytes(bad, b"x")


def test_filesystem_store_contract(fs_store):
    check_contract(fs_store)


def test_open_store_picks_the_backend(tmp_path):
    assert type(open_store(str(tmp_path))).__name__ == "FilesystemStore"
    assert type(open_store(f"file://{tmp_path}")).__name__ == "FilesystemStore"


def test_readers_never_see_a_partial_object(fs_store):
    """A reader racing a writer sees the old or the new object, never a torn one."""
    big_a, big_b = b"a" * 2_000_000, b"b" * 2_000_000
    fs_store.put_bytes("k", big_a)
    stop = threading.Event()
    seen = set()

    def read():
        while not stop.is_set():
            data = fs_store.get_bytes("k")
            seen.add((len(data), data[:1], data[-1:]))

    reader = threading.Thread(target=read)
    reader.start()
    for i in range(30):
        fs_store.put_bytes("k", big_b if i % 2 else big_a)
    stop.set()
    reader.join()
    assert seen <= {(2_000_000, b"a", b"a"), (2_000_000, b"b", b"b")}


def test_temporary_files_are_not_listed(fs_store):
    fs_store.put_bytes("d/real", b"1")
    (fs_store.root / "d" / ".tmp-leftover").write_bytes(b"partial")
    assert list(fs_store.list("d/")) == ["d/real"]


def test_s3_url_configuration(monkeypatch):
    from proctor_jobs.store.s3 import S3Location

    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9999")
    monkeypatch.delenv("PROCTOR_S3_ENDPOINT", raising=False)
    loc = S3Location.parse("s3://bucket/some/prefix?addressing=path&region=eu-west-1")
    assert (loc.bucket, loc.prefix, loc.addressing, loc.region) == (
        "bucket",
        "some/prefix/",
        "path",
        "eu-west-1",
    )
    assert loc.endpoint == "http://127.0.0.1:9999"
    assert S3Location.parse("s3://bucket").prefix == ""
    with pytest.raises(StoreError):
        S3Location.parse("s3://bucket/p?addressing=sideways")
    assert os.environ["AWS_ENDPOINT_URL"]

"""A store that counts the bytes written through it: what a shard cost the object store.

It wraps another store; every write of the JSON/text helpers goes through `put_bytes`, so each byte
is counted once. Reads and listings are passed through untouched.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

from proctor_jobs.store.base import Store


class CountingStore(Store):
    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.url = inner.url
        self.bytes_written = 0
        self._lock = threading.Lock()  # records and evidence are written from executor threads

    def __getattr__(self, name: str):
        # Backend attributes stay visible (e.g. a directory store's `root`, which the sandbox hides
        # from programs): wrapping must not change what a stage sees.
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    def _count(self, size: int) -> None:
        with self._lock:
            self.bytes_written += size

    def put_bytes(self, key: str, data: bytes, content_type: str | None = None) -> None:
        self.inner.put_bytes(key, data, content_type)
        self._count(len(data))

    def put_file(self, key: str, path: Path, content_type: str | None = None) -> None:
        self.inner.put_file(key, path, content_type)  # the backend's own (streaming) upload
        self._count(Path(path).stat().st_size)

    def get_bytes(self, key: str) -> bytes:
        return self.inner.get_bytes(key)

    def get_file(self, key: str, path: Path) -> None:
        self.inner.get_file(key, path)

    def exists(self, key: str) -> bool:
        return self.inner.exists(key)

    def list(self, prefix: str) -> Iterator[str]:
        return self.inner.list(prefix)

    def delete(self, key: str) -> None:
        self.inner.delete(key)

    def delete_prefix(self, prefix: str) -> int:
        return self.inner.delete_prefix(prefix)

    def uri(self, key: str) -> str:
        return self.inner.uri(key)

    def close(self) -> None:
        self.inner.close()

"""The store interface every backend implements.

Keys are `/`-separated relative paths (`runs/ns/run/uid/plan.json`). A write is atomic: readers see
either nothing or the whole object, never a partial one, so a record is final once it is visible.
"""

from __future__ import annotations

import io
import json
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO


class StoreError(Exception):
    """A store operation failed (permissions, network, bad URL)."""


class KeyNotFound(StoreError, KeyError):
    """The key does not exist in the store."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key

    def __str__(self) -> str:
        return f"no object at key {self.key!r}"


def check_key(key: str) -> str:
    """Refuse keys that could escape the store root or differ between backends."""
    if not key or key.startswith("/") or key.endswith("/"):
        raise StoreError(f"invalid store key {key!r}: must be a relative path without a trailing '/'")
    parts = key.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise StoreError(f"invalid store key {key!r}: empty, '.' or '..' path segment")
    return key


class Store(ABC):
    """A flat key/value object store with prefix listing."""

    #: The URL that reopens this store with `open_store` (`/abs/dir` or `s3://bucket/prefix`).
    url: str

    @abstractmethod
    def put_bytes(self, key: str, data: bytes, content_type: str | None = None) -> None:
        """Write an object atomically, replacing any previous one."""

    @abstractmethod
    def get_bytes(self, key: str) -> bytes:
        """Read an object; raises KeyNotFound when absent."""

    @abstractmethod
    def exists(self, key: str) -> bool: ...

    @abstractmethod
    def list(self, prefix: str) -> Iterator[str]:
        """Yield the keys under `prefix` (a string prefix, usually ending in '/'), sorted."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Delete one object; deleting a missing key is not an error."""

    @abstractmethod
    def uri(self, key: str) -> str:
        """A URI a human (or another tool) can use to find the object."""

    def put_file(self, key: str, path: Path, content_type: str | None = None) -> None:
        """Upload a local file. Backends override this to stream large files."""
        self.put_bytes(key, Path(path).read_bytes(), content_type)

    def open_read(self, key: str) -> BinaryIO:
        """A readable stream of an object (close it, or use it in `with`); raises KeyNotFound.
        Backends override this to stream, so a large object need not be held whole."""
        return io.BytesIO(self.get_bytes(key))

    def get_file(self, key: str, path: Path) -> None:
        """Download an object to a local file (written atomically)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".part")
        tmp.write_bytes(self.get_bytes(key))
        tmp.replace(path)

    def delete_prefix(self, prefix: str) -> int:
        """Delete every object under `prefix`; returns how many were deleted."""
        keys = list(self.list(prefix))
        for key in keys:
            self.delete(key)
        return len(keys)

    # JSON conveniences shared by every backend.

    def put_json(self, key: str, value: Any) -> None:
        data = json.dumps(value, indent=1, sort_keys=True, ensure_ascii=False).encode()
        self.put_bytes(key, data + b"\n", "application/json")

    def get_json(self, key: str) -> Any:
        return json.loads(self.get_bytes(key))

    def get_json_or(self, key: str, default: Any = None) -> Any:
        try:
            return self.get_json(key)
        except KeyNotFound:
            return default

    def put_jsonl(self, key: str, rows: Iterable[Any]) -> None:
        lines = [json.dumps(r, sort_keys=True, ensure_ascii=False) for r in rows]
        self.put_bytes(key, ("\n".join(lines) + "\n" if lines else "").encode(), "application/x-ndjson")

    def get_jsonl(self, key: str) -> list[Any]:
        text = self.get_bytes(key).decode()
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    def get_text(self, key: str) -> str:
        return self.get_bytes(key).decode()

    def put_text(self, key: str, text: str, content_type: str = "text/plain; charset=utf-8") -> None:
        self.put_bytes(key, text.encode(), content_type)

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections; the default has nothing to release."""

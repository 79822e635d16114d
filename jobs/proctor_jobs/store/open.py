"""Open a store from its URL."""

from __future__ import annotations

from proctor_jobs.store.base import Store


def open_store(url: str) -> Store:
    """`s3://bucket/prefix[?endpoint=..&region=..&addressing=path]` → S3; anything else → a directory."""
    if url.startswith("s3://"):
        from proctor_jobs.store.s3 import S3Store

        return S3Store(url)
    from proctor_jobs.store.fs import FilesystemStore

    return FilesystemStore(url.removeprefix("file://"))

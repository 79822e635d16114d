"""The render cache: evidence keyed by what determines it, shared by every shard, run and model.

Key = sha256 over the extracted artifact (the exact page, or the exact program) and everything
else that changes the pixels: the render settings, the library cache version, the browser or
renderer version and `RENDERER_REVISION` (bumped when Proctor's own render logic changes). Two
models that produce the same page, or the same run rendered again, hit the same key and nothing is
rendered twice.

Layout: `cache/render/<key>/` holds the evidence files and `meta.json`, which is written last; an
entry without `meta.json` is incomplete (a worker died mid-write) and is rendered again. Only
outcomes that say something about the answer are cached (a page that rendered, hung or crashed by
itself); a render that failed for infrastructure reasons (the browser died under it) is not.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from proctor_jobs.layout import render_cache_prefix
from proctor_jobs.store.base import KeyNotFound, Store

#: Bump when a change to Proctor's render code changes the evidence it would produce.
RENDERER_REVISION = "1"


def cache_key(artifact: str | bytes, settings: dict[str, Any]) -> str:
    digest = hashlib.sha256()
    digest.update(artifact if isinstance(artifact, bytes) else artifact.encode("utf-8"))
    digest.update(b"\0")
    digest.update(
        json.dumps({"revision": RENDERER_REVISION, **settings}, sort_keys=True, default=str).encode()
    )
    return digest.hexdigest()[:40]


class RenderCache:
    def __init__(self, store: Store, enabled: bool = True) -> None:
        self.store = store
        self.enabled = enabled

    def key_for(self, key: str, name: str) -> str:
        return f"{render_cache_prefix(key)}/{name}"

    def get(self, key: str) -> dict[str, Any] | None:
        """The cached outcome (`meta.json`) when the entry is complete, else None."""
        if not self.enabled:
            return None
        try:
            meta = self.store.get_json(self.key_for(key, "meta.json"))
        except (KeyNotFound, ValueError):
            return None
        if not all(self.store.exists(k) for k in (meta.get("evidence") or {}).values()):
            return None  # a file went missing (manual cleanup): render again
        return meta

    def put_file(self, key: str, name: str, data: bytes, content_type: str | None = None) -> str:
        store_key = self.key_for(key, name)
        self.store.put_bytes(store_key, data, content_type)
        return store_key

    def commit(self, key: str, meta: dict[str, Any]) -> None:
        """Publish the entry: `meta.json` last, so a visible entry is a complete one."""
        if self.enabled:
            self.store.put_json(self.key_for(key, "meta.json"), meta)

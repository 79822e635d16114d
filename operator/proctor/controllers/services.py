"""What every controller shares for the operator's lifetime: configuration, the API client, stores and
metric state (`Services`), and what one run's daemon remembers between passes (`RunCache`)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from dataclasses import dataclass, field
from typing import Any

from proctor.cluster import Cluster, NotFound
from proctor.config import OperatorConfig
from proctor.metrics import OperatorState
from proctor.reconcile.stores import resolve_store
from proctor_jobs.store import Store, open_store


@dataclass
class RunCache:
    """What one run's daemon remembers between its passes (lost on restart: everything is re-read)."""

    plan: Any = None
    planned_spec: dict[str, Any] | None = None  # the spec the run was planned with (as this daemon saw it)
    items: list[dict[str, Any]] | None = None
    finished_progress: dict[tuple[str, int], dict[str, Any]] = field(default_factory=dict)
    results_artifact: bool = False
    last_phase: str | None = None
    last_status_patch: float = 0.0  # monotonic time of the last progress-only status patch
    unwritten: Any = None  # (manifests, items) planned but not yet in the store
    judges_checked: bool = False  # the plan has a stage for every judge the spec names
    finishing: bool = False  # over, its aggregate Job asked for: its Jobs stay as they are


@dataclass
class Services:
    """Process-wide resources: the configuration, the one API client, metric state, and the store
    clients and input bundles shared between runs. No object state lives here: what the cluster holds
    comes from kopf's indexes, what one run or judge remembers lives in its daemon."""

    config: OperatorConfig
    cluster: Cluster
    state: OperatorState
    planning: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(8))
    #: input bundles by sha256 (content-addressed, so never stale); runs sharing inputs read them once
    bundles: dict[str, Any] = field(default_factory=dict)
    _stores: dict[tuple, Store] = field(default_factory=dict)
    #: per cached client built from a namespace's Secret: when the Secret was last read, and a digest
    #: of the credentials the client holds (a rotated Secret gets a new client)
    _secret_reads: dict[tuple, tuple[float, str]] = field(default_factory=dict)
    _store_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    #: judge grants made by this process that kopf's Job index may not show yet, by (namespace, judge
    #: server) then Job name; granting holds the lock, so two runs never take the same free requests
    judge_grants: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    judge_grant_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def post_event(self, obj: dict[str, Any], type_: str, reason: str, message: str) -> None:
        try:
            await self.cluster.event(obj, type_, reason, message)
        except Exception as exc:  # an Event is worth one attempt, never a failed reconciliation
            import logging

            logging.getLogger("proctor.events").warning("cannot post event %s: %s", reason, exc)

    def store_settings(
        self, storage: dict[str, Any] | None, namespace: str | None = None
    ) -> tuple[str, dict[str, str], str | None]:
        """(store URL for workers, env for workers, credentials Secret name) for a run's storage spec
        in `namespace` (its entry in the operator's store.namespaces applies; None: none does)."""
        settings = resolve_store(self.config, namespace, storage)
        return settings.url, settings.env, settings.secret

    def open_store(self, url: str) -> Store:
        """A store by URL, cached: a boto3 client costs memory and start-up time; one per bucket."""
        key = (url, None, None)
        if key not in self._stores:
            self._stores[key] = open_store(url)
        return self._stores[key]

    async def store_for(self, namespace: str, storage: dict[str, Any] | None) -> Store:
        """The store of a run (or, with `storage` None, an Artifact) in `namespace`, with the credentials
        its spec or its namespace's store entry names: that namespace's Secret, read again at most every
        SECRET_REFRESH_SECONDS, so a rotated (or revoked) key takes effect without a restart; the client
        is cached per store, namespace and Secret and rebuilt only when the credentials changed."""
        settings = resolve_store(self.config, namespace, storage)
        url, secret = settings.url, settings.operator_secret
        key = (url, namespace if secret else None, secret)
        if key in self._stores and (not secret or not self._secret_due(key)):
            return self._stores[key]
        # One client per store, created once: building a boto3 client takes a second and ~15 MB, and
        # twenty runs arriving together must not build twenty.
        async with self._store_lock:
            if key in self._stores and (not secret or not self._secret_due(key)):
                return self._stores[key]
            if not secret:
                self._stores[key] = await asyncio.to_thread(open_store, url)
                return self._stores[key]
            try:
                creds = await self.cluster.secret_data(namespace, secret)
            except NotFound:
                self._stores.pop(key, None)  # revoked: nothing of that key is used any more
                self._secret_reads.pop(key, None)
                raise NotFound(f"Secret {namespace}/{secret} ({settings.secret_from}) not found") from None
            except Exception:
                if key not in self._stores:
                    raise
                return self._stores[key]  # the API is briefly unavailable: the client in hand will do
            digest = hashlib.sha256(json.dumps(creds, sort_keys=True).encode()).hexdigest()
            if key not in self._stores or self._secret_reads.get(key, (0.0, ""))[1] != digest:
                self._stores[key] = await asyncio.to_thread(_s3_with_credentials, url, creds)
            self._secret_reads[key] = (time.monotonic(), digest)
        return self._stores[key]

    def _secret_due(self, key: tuple) -> bool:
        return time.monotonic() - self._secret_reads.get(key, (0.0, ""))[0] >= SECRET_REFRESH_SECONDS


#: how often the operator reads a namespace's store Secret again (a rotated key is used within this long)
SECRET_REFRESH_SECONDS = 300.0


def _s3_with_credentials(url: str, creds: dict[str, str]) -> Store:
    from proctor_jobs.store.s3 import S3Location, S3Store, make_client

    return S3Store(url, client=make_client(S3Location.parse(url), creds))


@dataclass
class JudgeCache:
    """What one JudgeServer's daemon remembers: its last functional check (by uid: a re-created
    JudgeServer starts fresh) and the crash-log excerpt it last posted as an Event."""

    check_at: float = 0.0
    check: Any = None
    crash_event: str | None = None

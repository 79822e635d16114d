"""Which store a run or an Artifact uses, and with whose credentials: a pure function of the operator's
settings, the object's namespace and the run's `spec.storage`.

In order, the first that applies:

- `spec.storage.bucket` (and `prefix`): that bucket, as today;
- the namespace's entry in the operator's `store.namespaces` (`PROCTOR_STORE_NAMESPACES`): its URL;
- the operator's default store (`store.url`).

Credentials, likewise: `spec.storage.credentialsSecretRef`, else the namespace entry's
`credentialsSecret` — both Secrets *of that namespace*, read by the operator for its own client and
given to the worker and ingest pods — else the operator's `store.credentialsSecret` name (worker pods
read a Secret of that name in their namespace; the operator uses its own credentials).
Endpoint, region and addressing: the spec's, else the namespace entry's, else the operator's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

if TYPE_CHECKING:
    from proctor.config import OperatorConfig


@dataclass(frozen=True)
class StoreSettings:
    """Where a run's or an Artifact's data lives and who may read it."""

    url: str  # the store URL workers get (s3://bucket/prefix?endpoint=...&region=...)
    env: dict[str, str] = field(default_factory=dict)  # store variables of worker and ingest pods
    secret: str | None = None  # the credentials Secret worker and ingest pods read (envFrom)
    #: the Secret of the namespace the operator reads for its own client (None: its own credentials)
    operator_secret: str | None = None
    #: where `operator_secret` was named, for messages
    secret_from: str = ""


def resolve_store(
    config: OperatorConfig, namespace: str | None, storage: dict[str, Any] | None
) -> StoreSettings:
    """The store of an object in `namespace` (None: no namespace's entry applies) whose run asks for
    `storage` (EvalRun.spec.storage, camelCase; None for Artifacts)."""
    storage = storage or {}
    entry = config.store_namespaces.get(namespace) if namespace else None
    if storage.get("bucket"):
        base = f"s3://{storage['bucket']}/{storage.get('prefix', 'proctor').strip('/')}"
    elif entry is not None:
        base = entry.url
    else:
        base = config.store_url
    endpoint = storage.get("endpoint") or (entry and entry.endpoint) or config.store_endpoint
    region = storage.get("region") or (entry and entry.region) or config.store_region
    addressing = storage.get("addressing") or (entry and entry.addressing) or config.store_addressing
    env: dict[str, str] = {}
    query: dict[str, str] = {}
    if endpoint:
        env["AWS_ENDPOINT_URL"] = endpoint
        query["endpoint"] = endpoint
    if region:
        env["AWS_REGION"] = region
        env["AWS_DEFAULT_REGION"] = region
        query["region"] = region
    if addressing and addressing != "auto":
        env["PROCTOR_S3_ADDRESSING"] = addressing
        query["addressing"] = addressing
    url = f"{base}?{urlencode(query)}" if query and base.startswith("s3://") else base
    named = (storage.get("credentialsSecretRef") or {}).get("name")
    if named:
        return StoreSettings(url, env, named, named, "spec.storage.credentialsSecretRef")
    if entry is not None:
        where = f"the operator's store.namespaces entry of {namespace}"
        return StoreSettings(url, env, entry.credentials_secret, entry.credentials_secret, where)
    return StoreSettings(url, env, config.store_credentials_secret, None, "")

"""The Artifact controller: validate the records and store the bundle, content-addressed.

Small sources (inline, ConfigMap) are ingested by the operator itself; large ones (S3, HTTP) by an
ingest Job running `proctor ingest`, whose outcome the operator reads back from the store. Either way
an invalid record sets phase Invalid with a condition naming the record and the field.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from proctor.api.common import Source
from proctor.controllers.services import Services
from proctor.inputs import InputError, fetch_source, store_bundle, validate_bundle
from proctor.k8s.ingest import build_ingest_job, ingest_result_key
from proctor.k8s.netpol import build_ingest_network_policy
from proctor.reconcile.artifact import invalid_status, pending_status, ready_status, results_owner
from proctor.reconcile.tenancy import TenancyPolicy, store_refusal

log = logging.getLogger("proctor.artifact")


async def reconcile(
    rt: Services,
    body: dict[str, Any],
    post_event,
    ingest_jobs: set[str],
    runs: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any] | None:
    """One pass over one Artifact; `ingest_jobs`: the ingest Jobs its daemon created already; `runs`:
    the namespace's EvalRuns by name (a run's results Artifact is checked against its run)."""
    meta, spec, status = body["metadata"], body["spec"], dict(body.get("status") or {})
    namespace, name = meta["namespace"], meta["name"]
    generation = meta.get("generation")
    if status.get("observedGeneration") == generation and status.get("phase") in ("Ready", "Invalid"):
        return None
    label = f"Artifact {namespace}/{name}"
    no_store = store_refusal(namespace, TenancyPolicy.from_config(rt.config), "Artifacts")
    if no_store:
        # Held, not Invalid: once the admin gives the namespace a store (an operator restart), it goes on.
        new = pending_status(status, "NotAllowed", f"{label}: {no_store}", generation)
        return None if new == status else new
    store = await rt.store_for(namespace, None)
    source = Source.model_validate(spec["source"])
    results_of = await _results_store(rt, body, source.s3.uri, runs or {}) if source.s3 else None
    if source.file is not None:
        new = invalid_status(
            status, "LocalOnlySource", f"{label}: spec.source.file works only with `proctor run`", generation
        )
    elif source.inline is not None or source.config_map is not None or results_of is not None:
        config_maps: dict[tuple[str, str], str] = {}
        if source.config_map is not None:
            cm = source.config_map
            try:
                config_maps[(cm.name, cm.key)] = await rt.cluster.config_map_value(namespace, cm.name, cm.key)
            except Exception as exc:
                new = pending_status(
                    status, "ConfigMapNotFound", f"{label}: ConfigMap {cm.name!r}: {exc}", generation
                )
                return _finish(status, new, post_event)

        def ingest():
            if results_of is not None:  # a run's results: read back from the run's own store
                run_store, key = results_of
                records = run_store.get_jsonl(key)
            else:
                records = fetch_source(
                    source, label, lambda n, k: config_maps[(n, k)], allow_files=False, allow_network=False
                )
            bundle = validate_bundle(spec["type"], spec["format"], records, label)
            return bundle, store_bundle(store, bundle)

        try:
            bundle, uri = await asyncio.to_thread(ingest)
            new = ready_status(status, bundle.sha256, uri, bundle.items, bundle.categories, generation)
        except InputError as exc:
            new = invalid_status(status, "InvalidRecord", str(exc), generation)
    else:
        url, env, secret = rt.store_settings(None, namespace=namespace)
        key = ingest_result_key(namespace, name, meta["uid"], generation)
        outcome = await asyncio.to_thread(store.get_json_or, key)
        if outcome is None:
            job = build_ingest_job(rt.config, body, url, env, secret)
            if job["metadata"]["name"] not in ingest_jobs:  # create once, not on every pass
                if rt.config.network_policy:  # the fetch of a tenant's URL is confined before it starts
                    owner = {"apiVersion": "proctor.dev/v1alpha1", "kind": "Artifact", **meta}
                    policy = build_ingest_network_policy(namespace, owner, rt.config.store_egress_cidrs)
                    await rt.cluster.apply(policy)
                await rt.cluster.create(job)
                ingest_jobs.add(job["metadata"]["name"])
            new = pending_status(
                status, "Ingesting", f"{label}: an ingest Job validates the source", generation
            )
        elif outcome.get("ok"):
            new = ready_status(
                status,
                outcome["sha256"],
                outcome["uri"],
                outcome["items"],
                outcome.get("categories") or {},
                generation,
            )
        else:
            new = invalid_status(
                status, outcome.get("reason", "InvalidRecord"), outcome.get("message", ""), generation
            )
    return _finish(status, new, post_event)


async def _results_store(rt: Services, body: dict[str, Any], uri: str, runs) -> tuple[Any, str] | None:
    """(the run's store, key) when `body` is the results Artifact the operator wrote for a run of this
    namespace — exactly that run's records.jsonl in that run's store — else None (then an S3 source
    goes through an ingest Job with the namespace's credentials, like any other)."""
    run = results_owner(body, runs)
    if run is None:
        return None
    key = f"{run['status']['runPrefix']}/records.jsonl"
    try:
        store = await rt.store_for(run["metadata"]["namespace"], (run.get("spec") or {}).get("storage"))
    except Exception:  # the run's store is not reachable: not the operator's to read then
        return None
    return (store, key) if store.uri(key) == uri else None


def _finish(status: dict[str, Any], new: dict[str, Any], post_event) -> dict[str, Any] | None:
    if new.get("phase") == "Invalid" and status.get("phase") != "Invalid":
        post_event("Warning", "Invalid", new.get("message") or "invalid")
    comparable = ("phase", "sha256", "uri", "items", "categories", "message", "observedGeneration")
    if all(status.get(k) == new.get(k) for k in comparable) and len(status.get("conditions") or []) == len(
        new["conditions"]
    ):
        return None
    return new

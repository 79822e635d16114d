"""Deterministic names and labels: the same run always maps to the same Job names, which is what
makes creating them idempotent (a second create is AlreadyExists, never a duplicate)."""

from __future__ import annotations

import hashlib
import re

GROUP = "proctor.dev"
MANAGED_BY = {"app.kubernetes.io/managed-by": "proctor", "app.kubernetes.io/part-of": "proctor"}
RUN_LABEL = f"{GROUP}/run"
RUN_UID_LABEL = f"{GROUP}/run-uid"
STAGE_LABEL = f"{GROUP}/stage"
ITEM_INDEX_LABEL = f"{GROUP}/item-index"  # on the Jobs of a one-Job-per-item stage
COMPONENT_LABEL = f"{GROUP}/component"
JUDGE_LABEL = f"{GROUP}/judgeserver"
SPEC_HASH_ANNOTATION = f"{GROUP}/spec-hash"
QUEUE_LABEL = "kueue.x-k8s.io/queue-name"

_INVALID = re.compile(r"[^a-z0-9-]")


def dns_label(*parts: str, limit: int = 63) -> str:
    """A DNS-1123 label from parts; long ones keep a readable head and a hash of the whole."""
    raw = "-".join(p for p in parts if p)
    clean = _INVALID.sub("-", raw.lower()).strip("-")
    clean = re.sub(r"-{2,}", "-", clean) or "x"
    if len(clean) <= limit and clean == raw:
        return clean
    digest = hashlib.sha256(raw.encode()).hexdigest()[:8]
    head = clean[: limit - 9].rstrip("-")
    return f"{head}-{digest}"


def label_value(value: str) -> str:
    return (
        value
        if len(value) <= 63 and re.fullmatch(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?", value)
        else dns_label(value)
    )


def stage_job_name(run: str, stage: str) -> str:
    return dns_label(run, stage)


def item_job_name(run: str, stage: str, index: int) -> str:
    return dns_label(run, stage, str(index))


def run_labels(run: str, uid: str) -> dict[str, str]:
    return {**MANAGED_BY, RUN_LABEL: label_value(run), RUN_UID_LABEL: uid}


def owner_reference(api_version: str, kind: str, name: str, uid: str) -> dict:
    return {
        "apiVersion": api_version,
        "kind": kind,
        "name": name,
        "uid": uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def spec_hash(spec: dict) -> str:
    import json

    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


def with_spec_hash(obj: dict) -> dict:
    """`obj` annotated with a hash of everything it says, so a child whose desired form changed (a
    spec edit or a new operator version) is told apart from one that is current without a diff."""
    meta = obj["metadata"]
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if k != SPEC_HASH_ANNOTATION}
    bare = {**obj, "metadata": {**meta, "annotations": dict(annotations)}}
    return {
        **obj,
        "metadata": {**meta, "annotations": {**annotations, SPEC_HASH_ANNOTATION: spec_hash(bare)}},
    }

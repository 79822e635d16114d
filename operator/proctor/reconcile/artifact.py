"""Artifact status from the outcome of validating and storing its bundle (pure)."""

from __future__ import annotations

from typing import Any

from proctor.reconcile.conditions import set_condition


def ready_status(
    previous: dict[str, Any],
    sha256: str,
    uri: str,
    items: int,
    categories: dict[str, int],
    generation: int | None,
) -> dict[str, Any]:
    conditions = set_condition(
        previous.get("conditions") or [],
        "Ready",
        True,
        "Stored",
        f"{items} records stored at {uri}",
        generation,
    )
    return {
        "phase": "Ready",
        "sha256": sha256,
        "uri": uri,
        "items": items,
        "categories": categories,
        "message": None,
        "conditions": conditions,
        "observedGeneration": generation,
    }


def invalid_status(
    previous: dict[str, Any], reason: str, message: str, generation: int | None
) -> dict[str, Any]:
    conditions = set_condition(previous.get("conditions") or [], "Ready", False, reason, message, generation)
    return {
        "phase": "Invalid",
        "sha256": None,
        "uri": None,
        "items": None,
        "message": message[:1000],
        "conditions": conditions,
        "observedGeneration": generation,
    }


def pending_status(
    previous: dict[str, Any], reason: str, message: str, generation: int | None
) -> dict[str, Any]:
    conditions = set_condition(previous.get("conditions") or [], "Ready", False, reason, message, generation)
    return {**previous, "phase": "Pending", "message": message[:1000], "conditions": conditions}


def results_owner(body: dict[str, Any], runs: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    """The EvalRun whose results `body` is, or None. Labels and owner references are both writable by
    whoever creates an Artifact, so neither alone makes one a run's results (which the operator reads
    with its own store credentials): the controller reference must name a run that exists with that
    uid and has been planned (its runPrefix is set by the operator alone, in status)."""
    if (body.get("spec") or {}).get("type") != "results":
        return None
    refs = [r for r in (body.get("metadata") or {}).get("ownerReferences") or () if r.get("controller")]
    if len(refs) != 1 or refs[0].get("kind") != "EvalRun":
        return None
    run = runs.get(refs[0].get("name", ""))
    if run is None or run["metadata"].get("uid") != refs[0].get("uid"):
        return None
    return run if (run.get("status") or {}).get("runPrefix") else None

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

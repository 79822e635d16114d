"""Kubernetes-style conditions: set one, keeping its transition time when nothing changed."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Blocker:
    """A reason a resource cannot progress, as a condition reason and a human message."""

    reason: str
    message: str


def now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def set_condition(
    conditions: list[dict[str, Any]],
    type_: str,
    status: bool | str,
    reason: str,
    message: str = "",
    generation: int | None = None,
) -> list[dict[str, Any]]:
    """A new list with `type_` set; `lastTransitionTime` changes only when the status flips."""
    value = status if isinstance(status, str) else ("True" if status else "False")
    out = [dict(c) for c in conditions if c.get("type") != type_]
    previous = next((c for c in conditions if c.get("type") == type_), None)
    changed = previous is None or previous.get("status") != value
    condition = {
        "type": type_,
        "status": value,
        "reason": reason,
        "message": message[:1000],
        "lastTransitionTime": now() if changed else previous.get("lastTransitionTime", now()),
    }
    if generation is not None:
        condition["observedGeneration"] = generation
    out.append(condition)
    return sorted(out, key=lambda c: c["type"])


def get_condition(conditions: list[dict[str, Any]], type_: str) -> dict[str, Any] | None:
    return next((c for c in conditions or [] if c.get("type") == type_), None)


def problem_condition(
    conditions: list[dict[str, Any]],
    type_: str,
    problems: list[str],
    problem_reason: str,
    ok_reason: str,
    ok_message: str,
    generation: int | None = None,
) -> list[dict[str, Any]]:
    """`type_` False with the problems while there are any, True with `ok_message` once they are gone;
    absent until the first problem, so an object that never had one does not carry the condition."""
    if not problems and get_condition(conditions, type_) is None:
        return conditions
    reason = problem_reason if problems else ok_reason
    message = "; ".join(problems) or ok_message
    return set_condition(conditions, type_, not problems, reason, message, generation)


def same_conditions(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> bool:
    """Equal ignoring timestamps: a status patch is only worth sending when something changed."""

    def strip(conditions):
        return sorted(
            (c.get("type"), c.get("status"), c.get("reason"), c.get("message"), c.get("observedGeneration"))
            for c in conditions or []
        )

    return strip(a) == strip(b)

"""An EvalRun's spec is fixed once the run is planned, except what may change: `suspend`,
`parallelism`, how several judges are combined (`judgeAggregate`, `humanRatings`), and judges added at
the end of `additionalJudges` (a judge added to a planned or finished run judges only; the judges it
had stay exactly as they were, so their records stay valid).

The plan (shards, stage configurations, the records' configuration hashes) was made from the spec; an
edit of anything else after that would be ignored or, worse, half-applied to Jobs created later. The
API server refuses such an edit through CEL transition rules generated here from the model's own
fields (so a field added to EvalRunSpec is covered without anyone remembering to), and
`forbidden_changes` is the same decision in Python for code that holds both versions.

"Planned" is `status.runPrefix` set: the controller writes it in the pass that planned the run.
"""

from __future__ import annotations

from typing import Any

from proctor.api.evalrun import EvalRunSpec

#: spec fields that may change at any time (camelCase, as on the wire)
MUTABLE = ("suspend", "parallelism", "judgeAggregate", "humanRatings")
#: lists that may only grow: every entry of the planned run stays, unchanged
APPEND_ONLY = ("additionalJudges",)
PLANNED = "has(oldSelf.status) && has(oldSelf.status.runPrefix)"


def frozen_fields() -> list[str]:
    """EvalRunSpec's fields (wire names) that are fixed once the run is planned, in model order."""
    names = [field.alias or name for name, field in EvalRunSpec.model_fields.items()]
    return [name for name in names if name not in MUTABLE]


def message(field: str) -> str:
    allowed = ", ".join(f"spec.{m}" for m in MUTABLE)
    if field in APPEND_ONLY:
        return f"spec.{field}: once the run is planned, entries may be added, not changed or removed"
    return (
        f"spec.{field} cannot change once the run is planned (status.runPrefix set); only {allowed} "
        f"may, and judges may be added to spec.{APPEND_ONLY[0]}"
    )


def transition_rules() -> list[dict[str, Any]]:
    """CEL rules for the root of the EvalRun schema: one per frozen field, so each is cheap to estimate
    and the refusal names the field. `has()` on both sides: an optional field left out on one side
    and set on the other is a change too (comparing an absent field would be an error)."""
    required = {
        field.alias or name for name, field in EvalRunSpec.model_fields.items() if field.is_required()
    }
    rules = []
    for field in frozen_fields():
        new, old = f"self.spec.{field}", f"oldSelf.spec.{field}"
        if field in APPEND_ONLY:
            same = f"!has({old}) || (has({new}) && {old}.all(x, x in {new}))"
        elif field in required:
            same = f"{new} == {old}"
        else:
            same = f"has({new}) == has({old}) && (!has({new}) || {new} == {old})"
        rules.append(
            {
                "rule": f"!({PLANNED}) || ({same})",
                "message": message(field),
                "fieldPath": f".spec.{field}",
                "reason": "FieldValueForbidden",
            }
        )
    return rules


def planned(status: dict[str, Any] | None) -> bool:
    return bool((status or {}).get("runPrefix"))


def forbidden_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """The messages the API server would give for an update from `old` to `new` (whole objects, wire
    form): empty when `old` was not planned yet or only mutable fields changed."""
    if not planned(old.get("status")):
        return []
    before, after = old.get("spec") or {}, new.get("spec") or {}
    refused = []
    for f in frozen_fields():
        if f in APPEND_ONLY:
            if any(entry not in (after.get(f) or []) for entry in before.get(f) or []):
                refused.append(message(f))
        elif (f in before, before.get(f)) != (f in after, after.get(f)):
            refused.append(message(f))
    return refused

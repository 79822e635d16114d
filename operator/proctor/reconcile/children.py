"""Which children to (re)apply: the level-based comparison of what Proctor declares with what exists.

A child is applied when it is missing (deleted by hand, or never made) or carries another spec hash
than its desired form (a spec edit, a new operator version); otherwise nothing is written, so a pass in
steady state costs no request. The write itself is a server-side apply (`Cluster.apply`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from proctor.k8s.names import SPEC_HASH_ANNOTATION

#: observed children by (kind, name)
Observed = Mapping[tuple[str, str], dict[str, Any]]


def applied_hash(obj: dict[str, Any]) -> str | None:
    return ((obj.get("metadata") or {}).get("annotations") or {}).get(SPEC_HASH_ANNOTATION)


def stale_children(desired: Iterable[dict[str, Any]], observed: Observed) -> list[dict[str, Any]]:
    """The desired children that are missing or out of date, in the order given."""
    stale = []
    for child in desired:
        have = observed.get((child["kind"], child["metadata"]["name"]))
        if have is None or applied_hash(have) != applied_hash(child):
            stale.append(child)
    return stale


def observed_by_kind(**children: Iterable[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """`observed_by_kind(Deployment=[...], Service=[...])` keyed for `stale_children`."""
    return {(kind, obj["metadata"]["name"]): obj for kind, objs in children.items() for obj in objs}

"""Shard manifests: everything a worker needs to process one shard of one stage.

The control plane writes one per shard before any Job starts; the worker reads nothing else from
the control plane. Items carry their own payloads, so a worker needs no access to the inputs' format.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any


def config_hash(config: dict[str, Any]) -> str:
    """A stable hash of a stage configuration: records made under another config are redone."""
    canonical = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


@dataclass
class ShardManifest:
    run_prefix: str
    benchmark: str
    stage: str
    index: int
    shards: int
    items: list[dict[str, Any]]  # each has "id" plus the stage's payload
    config: dict[str, Any] = field(default_factory=dict)
    upstream: str | None = None  # the stage whose records feed this one
    # With a candidate model, answers are produced by the "generate" stage; later stages read the
    # answer from its records into `item[answer_field]` (see worker.attach_generated_answers).
    answers_from: str | None = None
    answer_field: str | None = None
    config_hash: str = ""

    def __post_init__(self) -> None:
        if not self.config_hash:
            self.config_hash = config_hash({"stage": self.stage, "config": self.config})

    @property
    def item_ids(self) -> list[str]:
        return [item["id"] for item in self.items]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ShardManifest:
        return cls(**data)

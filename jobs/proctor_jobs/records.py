"""Item records: the one durable fact per (stage, item).

A record is written once, atomically, when an item finishes in a stage. Its `status` says whether
the *evaluation* worked, not whether the answer was good:

- ``ok``      the stage produced its output (a wrong answer, a blank page, a failing test: still ok,
              with the outcome in `score`/`data` and the why in `reason`);
- ``failed``  the stage could not evaluate the item (renderer crashed, judge unreachable after its
              retry budget, sandbox broke); `reason` says why;
- ``skipped`` the stage did not apply (no judge configured, nothing upstream to work on);
- ``env_error`` this machine lacks something the stage needs (a Python extra, `pdflatex`, Chromium):
              says nothing about the answer, is never reused (a rerun redoes the item) and never
              enters the scores.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from typing import Any

STATUSES = ("ok", "failed", "skipped", "env_error")
#: statuses a rerun reuses; an `env_error` item is worked again once the environment is fixed
FINAL_STATUSES = ("ok", "failed", "skipped")


class EnvironmentMissing(RuntimeError):
    """Raised by a processor when the machine lacks what the stage needs; `fix` says how to install it."""

    def __init__(self, what: str, fix: str = "") -> None:
        self.what, self.fix = what, fix
        super().__init__(f"{what}; install: {fix}" if fix else what)


@dataclass
class ItemRecord:
    id: str
    stage: str
    status: str
    score: float | None = None
    reason: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    evidence: dict[str, str] = field(default_factory=dict)  # name -> store key
    duration_s: float = 0.0
    config_hash: str = ""
    worker: str = ""
    finished_at: str = ""

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"record status must be one of {STATUSES}, not {self.status!r}")
        if not self.finished_at:
            self.finished_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ItemRecord:
        known = cls.__dataclass_fields__
        return cls(**{k: v for k, v in data.items() if k in known})


def ok(item_id: str, stage: str, **kw: Any) -> ItemRecord:
    return ItemRecord(id=item_id, stage=stage, status="ok", **kw)


def failed(item_id: str, stage: str, reason: str, **kw: Any) -> ItemRecord:
    return ItemRecord(id=item_id, stage=stage, status="failed", reason=reason, **kw)


def skipped(item_id: str, stage: str, reason: str, **kw: Any) -> ItemRecord:
    return ItemRecord(id=item_id, stage=stage, status="skipped", reason=reason, **kw)


def env_error(item_id: str, stage: str, reason: str, **kw: Any) -> ItemRecord:
    return ItemRecord(id=item_id, stage=stage, status="env_error", reason=reason, **kw)


def environment_reason(exc: BaseException) -> str | None:
    """The reason for an `env_error` record when `exc` means the environment, not the answer, failed."""
    if isinstance(exc, EnvironmentMissing):
        return str(exc)
    if isinstance(exc, ImportError):
        name = getattr(exc, "name", None) or str(exc)
        return f"missing Python module {name!r} ({exc}); install the extra this stage needs (proctor doctor)"
    return None

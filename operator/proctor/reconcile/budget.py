"""A JudgeServer's request budget, shared by every run that uses it at every moment.

A judge stage's Job is granted a number of requests in flight when it is created (`Grant`: requests per
worker pod x pods) out of what the other unfinished judge Jobs of the same JudgeServer do not hold; the
grant is written on the Job (annotation `proctor.dev/judge-grant`, the pods' `PROCTOR_JUDGE_CONCURRENCY`)
and held until the Job finishes. A Job that would find no free request is not created yet: its run
waits and says for which server (`waiting_message`). A grant never grows while its Job runs, so the
sum of the grants never exceeds the budget — where splitting the budget at planning time between the
runs then running let a run planned alone keep the whole budget while the next one took its share.

One request of the budget is kept for the operator's own functional checks of the judge (one at a
time, every `judgeRecheckSeconds`) when the budget has more than one.

Pure: the controller passes the Jobs it observes (kopf's index) and the grants it made that the index
may not show yet.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

GRANT_ANNOTATION = "proctor.dev/judge-grant"
CONCURRENCY_ENV = "PROCTOR_JUDGE_CONCURRENCY"


@dataclass(frozen=True)
class Grant:
    server: str  # the JudgeServer's name (in the run's namespace)
    per_worker: int  # requests in flight per worker pod
    pods: int  # the Job's parallelism

    @property
    def total(self) -> int:
        return self.per_worker * self.pods

    def annotation(self) -> str:
        return json.dumps({"server": self.server, "perWorker": self.per_worker, "pods": self.pods})


def runs_budget(max_concurrency: int, ready_replicas: int) -> int:
    """The requests the runs may hold together: the server's, less one for the operator's checks."""
    budget = max(1, max_concurrency) * max(1, ready_replicas)
    return budget - 1 if budget > 1 else budget


def grant_of(job: dict[str, Any]) -> Grant | None:
    raw = ((job.get("metadata") or {}).get("annotations") or {}).get(GRANT_ANNOTATION)
    if not raw:
        return None
    try:
        data = json.loads(raw)
        return Grant(str(data["server"]), int(data["perWorker"]), int(data["pods"]))
    except (ValueError, KeyError, TypeError):
        return None


def _finished(job: dict[str, Any]) -> bool:
    for condition in (job.get("status") or {}).get("conditions") or ():
        if condition.get("status") == "True" and condition.get("type") in ("Complete", "Failed"):
            return True
    return False


def held(server: str, jobs: Iterable[dict[str, Any]], pending: dict[str, Grant] | None = None) -> int:
    """Requests the unfinished Jobs hold on `server`, by Job name (a Job the index shows and a grant
    made just now for it count once)."""
    holding: dict[str, int] = {}
    for job in jobs:
        grant = grant_of(job)
        if grant is not None and grant.server == server and not _finished(job):
            holding[job["metadata"]["name"]] = grant.total
        elif grant is not None:
            holding[job["metadata"]["name"]] = 0  # finished: its pending entry (if any) is spent
    for name, grant in (pending or {}).items():
        if grant.server == server:
            holding.setdefault(name, grant.total)
    return sum(holding.values())


def grant(server: str, budget: int, in_use: int, per_worker: int, pods: int) -> Grant | None:
    """What a new judge Job of `pods` workers wanting `per_worker` requests each gets from what is
    free, or None when nothing is (the Job waits). Fewer pods rather than none: every pod holds one."""
    free = budget - in_use
    if free < 1:
        return None
    pods = max(1, min(pods, free))
    return Grant(server, max(1, min(per_worker, free // pods)), pods)


def waiting_message(server: str, budget: int, in_use: int) -> str:
    return (
        f"judge server {server}: all {budget} requests of its budget are held by other runs' judge Jobs "
        f"({in_use}); this run's judge Job starts when one finishes"
    )


def with_grant(job: dict[str, Any], granted: Grant) -> dict[str, Any]:
    """The judge Job as created with its grant: the annotation the next grants count, at most `pods`
    pods, and each pod's share in its environment (the worker never sends more)."""
    job = copy.deepcopy(job)
    meta = job["metadata"]
    meta["annotations"] = {**(meta.get("annotations") or {}), GRANT_ANNOTATION: granted.annotation()}
    job["spec"]["parallelism"] = min(int(job["spec"].get("parallelism", 1)), granted.pods)
    for container in job["spec"]["template"]["spec"]["containers"]:
        env = [e for e in container.get("env") or () if e.get("name") != CONCURRENCY_ENV]
        container["env"] = [*env, {"name": CONCURRENCY_ENV, "value": str(granted.per_worker)}]
    return job

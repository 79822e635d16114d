"""Deleting a run's data with the run — the one place Proctor asks kopf for a finalizer of its own.

Only runs with `spec.storage.deleteDataWithRun` (or its deprecated alias `deleteOnFinish`) match, so
only they carry the finalizer after they finish. A run deleted while the operator is down keeps its
finalizer (and so exists, marked for deletion) until the operator is back, which then deletes the data
and lets the run go.
"""

from __future__ import annotations

import asyncio
from typing import Any

import kopf

from proctor.api.common import GROUP, VERSION


def deletes_data(spec, **_: Any) -> bool:
    storage = (spec or {}).get("storage") or {}
    return bool(storage.get("deleteDataWithRun") or storage.get("deleteOnFinish"))


# Retried every 5 s for about 10 minutes (a store that is down, a standby waiting to lead), then given up:
# kopf counts a handler that has used its retries as finished and lets the run go, so a store that is
# gone for good (or a namespace deleted with its credentials Secret first) never blocks a deletion.
@kopf.on.delete(GROUP, VERSION, "evalruns", id="delete-data", when=deletes_data, backoff=5.0, retries=120)
async def delete_run_data(body, memo: kopf.Memo, logger, **_: Any) -> None:
    from proctor.controllers import evalrun

    leader = memo.leader
    if leader is not None and not leader.is_leading():
        try:
            await asyncio.wait_for(leader.leading.wait(), timeout=leader.renew_s)
        except TimeoutError:
            raise kopf.TemporaryError("not the leader", delay=leader.renew_s) from None
    await evalrun.delete_data(memo.services, dict(body))

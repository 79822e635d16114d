"""kopf wiring, and nothing else: kopf is the runtime, the controllers do the work.

    kopf run -m proctor.handlers          # or: proctor operator

- `indexes`   @kopf.index: Jobs by run, EvalRuns, Artifacts and JudgeServers by namespace — the
              observed side, kept current by kopf's watches (no API reads in a pass);
- `events`    @kopf.on.event: wake the daemon an event concerns (after kopf indexed it), keep metrics;
- `daemons`   @kopf.daemon: one per active EvalRun, per JudgeServer and per pending Artifact; each
              recomputes desired vs. observed from the indexes, applies, patches status, and sleeps
              until woken or its resync interval passes. kopf stops a daemon when its object is
              deleted (its finalizer holds the deletion until then) or stops matching its filter
              (a finished run), so a deleted object is never reconciled again;
- `deletion`  @kopf.on.delete, only on runs that asked for their data to be deleted with them;
- `startup`   @kopf.on.startup / cleanup / probe: settings, services, leader election, health.
"""

from proctor.handlers import daemons, deletion, events, indexes, startup

__all__ = ["daemons", "deletion", "events", "indexes", "startup"]

"""`proctor aggregate`: a finished run's summary, reports and records (run by the run's aggregate Job).

The operator writes a request (phase, reason, message, spec) to the run's store and creates the Job;
aggregation, the reports and the thumbnails of images the answers made run here, in a worker pod, never
in the operator's process. The Job writes `aggregate/done.json` with the request's id last, so the
operator reads the summary only once it is complete.
"""

from __future__ import annotations

import argparse
import json


def add_parser(sub) -> None:
    p = sub.add_parser(
        "aggregate", help="write a finished run's summary, reports and records (what aggregate Jobs run)"
    )
    p.add_argument("--store", required=True, help="store URL")
    p.add_argument("--run", required=True, help="the run's prefix in the store")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from proctor.plan import read_plan
    from proctor.results import finish_run
    from proctor_jobs.layout import RunLayout
    from proctor_jobs.store import open_store

    store = open_store(args.store)
    layout = RunLayout(args.run)
    request = store.get_json(layout.aggregate_request)
    plan = read_plan(store, args.run)
    if plan is None:
        print(f"no plan under {args.run}", flush=True)
        return 1
    summary = finish_run(
        store, plan, request["spec"], request["run"], request["phase"], request["reason"], request["message"]
    )
    store.put_json(layout.aggregate_done, {"id": request["id"], "phase": summary["phase"]})
    print(json.dumps({"id": request["id"], "phase": summary["phase"], "scores": summary.get("scores")}))
    return 0

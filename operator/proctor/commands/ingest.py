"""`proctor ingest`: validate a large Artifact source and copy it into the store (run by ingest Jobs)."""

from __future__ import annotations

import argparse
import json
import sys


def add_parser(sub) -> None:
    p = sub.add_parser(
        "ingest", help="validate an Artifact source and store its bundle (what ingest Jobs run)"
    )
    p.add_argument("--source", required=True, help="the Artifact's spec.source as JSON")
    p.add_argument("--format", required=True)
    p.add_argument("--type", required=True)
    p.add_argument("--store", required=True, help="store URL")
    p.add_argument("--result", required=True, help="store key where the outcome is written")
    p.add_argument("--label", default="artifact", help="how errors name the object")
    p.add_argument(
        "--max-bytes",
        type=int,
        default=None,
        help="refuse a source larger than this (default 512 MiB); it is streamed, never read past it",
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from proctor.api.common import Source
    from proctor.inputs import MAX_SOURCE_BYTES, InputError, fetch_source, store_bundle, validate_bundle
    from proctor_jobs.store import open_store

    store = open_store(args.store)
    try:
        source = Source.model_validate(json.loads(args.source))
        records = fetch_source(
            source, args.label, allow_files=False, max_bytes=args.max_bytes or MAX_SOURCE_BYTES
        )
        bundle = validate_bundle(args.type, args.format, records, args.label)
        uri = store_bundle(store, bundle)
        outcome = {
            "ok": True,
            "sha256": bundle.sha256,
            "uri": uri,
            "items": bundle.items,
            "categories": bundle.categories,
        }
    except InputError as exc:
        outcome = {"ok": False, "reason": exc.reason, "message": str(exc)}
    except Exception as exc:  # a network failure is worth a retry of the Job, not an Invalid artifact
        print(f"ingest failed: {exc!r}", file=sys.stderr)
        return 1
    store.put_json(args.result, outcome)
    print(json.dumps(outcome))
    return 0

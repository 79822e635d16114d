"""`proctor worker`: process one shard (the same entry point as `proctor-worker` in Job pods)."""

from __future__ import annotations

import argparse


def add_parser(sub) -> None:
    p = sub.add_parser("worker", help="process one shard of one stage (what Job pods run)", add_help=False)
    p.add_argument("rest", nargs=argparse.REMAINDER)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from proctor_jobs.worker import main

    return main(args.rest)

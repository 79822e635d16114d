"""`proctor worker`: process one shard (the same entry point as `proctor-worker` in Job pods)."""

from __future__ import annotations

import argparse

DESCRIPTION = (
    "Process one shard of one stage of a run in the store: what each Job pod runs, and what "
    "`proctor run` runs in its worker processes. Safe to rerun: finished items are reused."
)


class _WorkerHelp(argparse.Action):
    """`proctor worker --help` prints the worker's own options (parsed by `proctor_jobs.worker`)."""

    def __init__(self, option_strings, dest, **kwargs) -> None:
        super().__init__(option_strings, dest, nargs=0, help="show this help message and exit")

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        from proctor_jobs.worker import build_parser

        build_parser(prog="proctor worker", description=DESCRIPTION).print_help()
        parser.exit()


def add_parser(sub) -> None:
    p = sub.add_parser(
        "worker",
        help="process one shard of one stage (what Job pods run)",
        description=DESCRIPTION,
        add_help=False,
    )
    p.add_argument("-h", "--help", action=_WorkerHelp)
    p.add_argument("rest", nargs=argparse.REMAINDER, help="the worker's options (see --help)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from proctor_jobs.worker import main

    return main(args.rest)

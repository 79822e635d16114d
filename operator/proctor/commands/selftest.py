"""`proctor selftest`: run the hostile suite (attacks written as answers) against this install."""

from __future__ import annotations

import argparse


def add_parser(sub) -> None:
    from proctor_jobs.selftest.cli import add_arguments

    p = sub.add_parser(
        "selftest",
        help="attack this install with the hostile suite; prints attack, tier, outcome, time, escaped",
        description="Run every attack in tests/hostile (forged verdicts, spoiled neighbours, stolen secrets "
        "and reference data, exhausted machines) through the real stage code in every tier asked for, "
        "beside well-behaved neighbours, with a loopback canary and canary credentials. Exit 1 if "
        "anything escaped.",
    )
    add_arguments(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from proctor_jobs.selftest.cli import run as run_selftest

    return run_selftest(args)

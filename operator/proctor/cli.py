"""`proctor` — the command line. Each subcommand lives in `proctor.commands.<name>` and imports its
heavy dependencies only when it runs, so `proctor --help` is instant and needs no cluster libraries."""

from __future__ import annotations

import argparse
import os
import sys
from types import ModuleType

from proctor import __version__

# Subcommand modules, in the order `proctor --help` lists them.
COMMANDS = [
    "run",
    "doctor",
    "crds",
    "validate",
    "worker",
    "operator",
    "ingest",
    "aggregate",
    "cache",
    "report",
    "compare",
    "agreement",
    "judge",
    "selftest",
    "docs",
]


def command_modules() -> list[ModuleType]:
    """The subcommand modules in COMMANDS order, imported by name in code (not from strings), so the
    import contracts see every module the CLI can reach."""
    from proctor.commands import (
        aggregate,
        agreement,
        cache,
        compare,
        crds,
        docs,
        doctor,
        ingest,
        judge,
        operator,
        report,
        run,
        selftest,
        validate,
        worker,
    )

    every = (agreement, cache, compare, crds, docs, doctor, ingest, judge, operator, report, run, selftest)
    by_name = {m.__name__.rpartition(".")[2]: m for m in (*every, aggregate, validate, worker)}
    return [by_name[name] for name in COMMANDS]


class _DescribedSubparsers:
    """Every subcommand's `--help` says what it does: its one-line help, unless it has a description."""

    def __init__(self, sub) -> None:
        self.sub = sub

    def add_parser(self, name: str, **kwargs):
        kwargs.setdefault("description", kwargs.get("help"))
        return self.sub.add_parser(name, **kwargs)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="proctor",
        description="Declarative evaluation of model-generated visual and executable programs.",
    )
    parser.add_argument("--version", action="version", version=f"proctor {__version__}")
    sub = _DescribedSubparsers(parser.add_subparsers(dest="command", metavar="COMMAND"))
    for module in command_modules():
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    try:
        return int(args.handler(args) or 0)
    except KeyboardInterrupt:
        # One line, no traceback; records written so far are kept, so the same command resumes.
        print(
            "\ninterrupted: nothing written so far is lost; run the same command again to resume",
            file=sys.stderr,
        )
        return INTERRUPTED


#: the exit status of a command stopped by Ctrl-C (128 + SIGINT, as a shell reports it)
INTERRUPTED = 130


def run() -> None:
    """The `proctor` command: `main`, then exit. Stopped by Ctrl-C, it exits at once: the workers are
    already killed (with everything they started) and every record is written whole, so nothing is
    left to wait for — the interpreter's exit would otherwise join the killed workers and the pool's
    threads, which a busy machine can keep for seconds."""
    code = main()
    if code == INTERRUPTED:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    run()

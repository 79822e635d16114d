"""`proctor doctor [FILE]`: what this machine has of what runs need, as a table (the preflight's checks)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_parser(sub) -> None:
    p = sub.add_parser(
        "doctor",
        help="check this machine for what runs need (extras, Chromium, fonts, TeX, cache, judge)",
        description="Print the checks `proctor run` makes before any work: with FILE, what that run "
        "needs; without, everything any benchmark may need. Exit status 1 if a needed part is missing.",
    )
    p.add_argument("manifest", nargs="?", type=Path, help="an EvalRun manifest (default: check everything)")
    p.add_argument("--name", help="which EvalRun, when the file holds several")
    p.add_argument("--judge-url", help="also check this judge (overrides spec.judge.url)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from proctor import preflight

    if args.manifest is None:
        checks = preflight.every_check(args.judge_url)
    else:
        from proctor.inputs import InputError
        from proctor.local import resolve
        from proctor.manifests import ManifestError

        overrides = {"judge": {"url": args.judge_url}} if args.judge_url else None
        try:
            resolved = resolve(args.manifest, args.name, overrides)
        except (ManifestError, InputError) as exc:
            print(f"invalid input\n{exc}", file=sys.stderr)
            return 2
        checks = preflight.checks_for(resolved.benchmark, resolved.spec, resolved.items)
    console = Console() if sys.stdout.isatty() else Console(width=200)  # a log: no cramped columns
    table = Table(title="proctor doctor", title_justify="left")
    for column in ("check", "needed by", "status", "detail", "install"):
        table.add_column(column)
    for check in checks:
        status = "[green]ok[/]" if check.ok else "[bold red]missing[/]"
        table.add_row(check.name, check.needed_by, status, check.detail, "" if check.ok else check.fix)
    if not checks:
        console.print("this run needs nothing beyond the core install")
    else:
        console.print(table)
    return 0 if all(c.ok for c in checks) else 1

"""`proctor selftest` (also `python -m proctor_jobs.selftest`): the hostile suite against this install.

Prints one line per attack — attack, target, tier, outcome, time, escaped — and exits 1 if anything
escaped (a forged or changed verdict, a secret in a record, a connection to the canary, a file outside
the scratch directory), 0 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from pathlib import Path

from proctor_jobs.selftest import Canary, CaseError, format_table, load_cases

TIERS = ("root", "userns", "none")
#: The render clocks (`spec.render.clock`) the render attacks run on.
CLOCKS = ("realtime", "virtual")


def default_cases() -> Path | None:
    """The suite shipped with the source tree (tests/hostile), if this install has one."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        candidate = parent / "tests" / "hostile"
        if candidate.is_dir():
            return candidate
    return None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--cases", type=Path, default=None, help="folder of case files (default: tests/hostile)"
    )
    parser.add_argument("--target", choices=("oracle", "render", "all"), default="all", help="which attacks")
    parser.add_argument(
        "--tier",
        choices=TIERS,
        action="append",
        default=None,
        help="sandbox tier(s) to run the oracle attacks in (default: the strongest this machine offers); "
        "may be repeated; a tier can only be lowered, never raised",
    )
    parser.add_argument(
        "--verdict",
        choices=("harness", "in-process"),
        default="harness",
        help="HumanEval-V verdict path to attack (in-process is the original's, and forgeable)",
    )
    parser.add_argument(
        "--clock",
        choices=CLOCKS,
        action="append",
        default=None,
        help="render clock(s) to run the render attacks on (default: both); may be repeated",
    )
    parser.add_argument("--json", action="store_true", help="print the rows as one JSON list")


def case_folder(args: argparse.Namespace) -> Path:
    """`--cases`, else the suite shipped with the source tree; CaseError when there is none."""
    folder = args.cases or default_cases()
    if folder is None or not folder.is_dir():
        raise CaseError("no case folder; pass --cases DIR (tests/hostile)")
    return folder


def report(rows: list[dict], as_json: bool, where: str = "") -> int:
    """Print the rows (a table, or one JSON list); exit status 1 if anything escaped, else 0."""
    escaped = [r for r in rows if r["escaped"]]
    if as_json:
        print(json.dumps(rows))
    else:
        print(format_table(rows))
        print(f"{len(rows)} checks{where}, {len(escaped)} escaped")
        for row in escaped:
            print(f"ESCAPED {row['attack']} ({row['tier']}): {row['detail'] or row['outcome']}")
    return 1 if escaped else 0


def run(args: argparse.Namespace) -> int:
    try:
        cases = load_cases(case_folder(args))
    except CaseError as exc:
        print(f"proctor selftest: {exc}", file=sys.stderr)
        return 2
    rows = []
    oracle = [c for c in cases if c["target"] == "oracle" and args.target in ("oracle", "all")]
    render = [c for c in cases if c["target"] == "render" and args.target in ("render", "all")]
    with Canary() as canary, tempfile.TemporaryDirectory(prefix="proctor-selftest-") as scratch:
        if oracle:
            from proctor_jobs.selftest.oracle import run_oracle_cases

            for tier in args.tier or [None]:
                rows += asyncio.run(
                    run_oracle_cases(
                        oracle,
                        canary=canary,
                        scratch=Path(scratch) / f"oracle-{tier or 'best'}",
                        tier=tier,
                        verdict=args.verdict,
                    )
                )
        if render:
            try:
                from proctor_jobs.selftest.render import run_render_cases
            except ImportError as exc:
                print(f"proctor selftest: render attacks need the render extra ({exc})", file=sys.stderr)
                return 2
            for clock in args.clock or CLOCKS:
                where = Path(scratch) / f"render-{clock}"
                rendered = asyncio.run(
                    run_render_cases(render, canary_port=canary.port, scratch=where, clock=clock)
                )
                # Pages run in Chromium's sandbox; the clock decides how (one browser or one per slot).
                rows += [{"tier": f"browser/{clock}", **row} for row in rendered]
        if canary.seen:
            rows.append(
                {
                    "attack": "(loopback canary)",
                    "target": "all",
                    "tier": "",
                    "outcome": f"{len(canary.seen)} connection(s)",
                    "expected": "none",
                    "time_s": 0.0,
                    "escaped": True,
                    "detail": repr(canary.seen[:3]),
                }
            )
    return report(rows, args.json)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="proctor selftest", description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))

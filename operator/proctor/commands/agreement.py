"""`proctor agreement FILE.csv --human COL --metric COL [...]`: how well metrics agree with people.

For each metric column: n (rows where both the human rating and the metric are numbers), missing
(rows with a human rating but no metric value), Pearson, Spearman (ties get average ranks),
Kendall's tau-b, and pairwise ranking agreement (over pairs the human rated differently, the share
the metric orders the same way, metric ties counting one half), each with a percentile bootstrap
95% interval from resampling rows (seeded: the same file gives the same intervals). `--group-by`
adds the same figures per value of a column (e.g. per model). With the Vision2Code authors'
human-alignment table this reproduces their published pooled correlations.

Exit status: 0 computed; 2 the file or a column is missing.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import sys
from pathlib import Path
from typing import Any

from proctor.commands import non_negative_int

STATS = ("pearson", "spearman", "kendall_tau_b", "pairwise_agreement")


def add_parser(sub) -> None:
    p = sub.add_parser(
        "agreement",
        help="agreement of metrics with human ratings (Pearson, Spearman, Kendall, pairwise) with CIs",
        description=__doc__.split("\n\n")[1],
    )
    p.add_argument("file", type=Path, help="a CSV file with a header row")
    p.add_argument("--human", required=True, help="the column of human ratings")
    p.add_argument("--metric", action="append", required=True, help="a metric column (repeat for several)")
    p.add_argument("--group-by", help="also report per value of this column")
    p.add_argument(
        "--bootstrap", type=non_negative_int, default=2000, help="resamples for the intervals (0: none)"
    )
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(handler=run)


def _number(text: str | None) -> float | None:
    try:
        value = float(str(text).strip())
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def analyse(
    rows: list[dict[str, str]], human: str, metric: str, iterations: int, seed: int
) -> dict[str, Any]:
    from proctor_jobs.scoring.judges import agreement_with_ci

    pairs, missing = [], 0
    for row in rows:
        h = _number(row.get(human))
        if h is None:
            continue
        m = _number(row.get(metric))
        if m is None:
            missing += 1
            continue
        pairs.append((h, m))
    hs, ms = [p[0] for p in pairs], [p[1] for p in pairs]
    # The same figures a run with several judges reports for its judges (scoring/judges.py).
    figures = agreement_with_ci(hs, ms, iterations, seed)
    result: dict[str, Any] = {"metric": metric, "n": len(pairs), "missing": missing}
    result.update({name: figures[name] for name in STATS})
    result["mean_human"] = sum(hs) / len(hs) if hs else math.nan
    result["mean_metric"] = sum(ms) / len(ms) if ms else math.nan
    for name in STATS:
        result[f"{name}_ci"] = figures[f"{name}_ci"]
    return result


def _clean(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def run(args: argparse.Namespace) -> int:
    if not args.file.exists():
        print(f"proctor agreement: {args.file}: no such file", file=sys.stderr)
        return 2
    from proctor_jobs.encoding import not_text

    raw = args.file.read_bytes()
    problem = not_text(raw, str(args.file), json_escapes=False)
    if problem:
        print(f"proctor agreement: {problem}", file=sys.stderr)
        return 2
    reader = csv.DictReader(io.StringIO(raw.decode(), newline=""))
    rows = list(reader)
    columns = reader.fieldnames or []
    wanted = [args.human, *args.metric] + ([args.group_by] if args.group_by else [])
    absent = [c for c in wanted if c not in columns]
    if absent:
        print(
            f"proctor agreement: {args.file}: no column {', '.join(map(repr, absent))} "
            f"(columns: {', '.join(columns)})",
            file=sys.stderr,
        )
        return 2
    groups: list[tuple[str, str, list[dict[str, str]]]] = [("pooled", "all", rows)]
    if args.group_by:
        values = sorted({row[args.group_by] for row in rows})
        groups += [(args.group_by, v, [r for r in rows if r[args.group_by] == v]) for v in values]
    results = [
        {
            "group": group,
            "group_value": value,
            **analyse(subset, args.human, metric, args.bootstrap, args.seed),
        }
        for group, value, subset in groups
        for metric in args.metric
    ]
    if args.json:
        print(
            json.dumps(
                {
                    "file": str(args.file),
                    "human": args.human,
                    "bootstrap": args.bootstrap,
                    "seed": args.seed,
                    "results": [{k: _clean(v) for k, v in r.items()} for r in results],
                },
                indent=1,
            )
        )
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(
        title=f"agreement with {args.human} ({args.bootstrap} bootstrap resamples, seed {args.seed})"
    )
    for column in ("group", "metric", "n", "missing", "Pearson", "Spearman", "Kendall τb", "pairwise"):
        table.add_column(column, justify="left" if column in ("group", "metric") else "right")

    def cell(r: dict[str, Any], name: str) -> str:
        low, high = r[f"{name}_ci"]
        value = r[name]
        if isinstance(value, float) and math.isnan(value):
            return "—"
        interval = "" if math.isnan(low) else f" [{low:.3f}, {high:.3f}]"
        return f"{value:.6f}{interval}"

    for r in results:
        label = "pooled" if r["group"] == "pooled" else f"{r['group']}={r['group_value']}"
        table.add_row(label, r["metric"], str(r["n"]), str(r["missing"]), *(cell(r, s) for s in STATS))
    # Piped output is not wrapped at 80 columns: the intervals make rows wide.
    Console(width=None if sys.stdout.isatty() else 170).print(table)
    return 0

"""`proctor compare RUN_A RUN_B`: how B's scores differ from A's, per category, with 95% intervals.

Items are paired by id (the same task — and sample — in both runs) and only items scored in both
runs count; the delta is mean(B) - mean(A) over those pairs, with a percentile bootstrap interval
from resampling the pairs (seeded, so the same runs always give the same interval). Categories
are the benchmark's leaderboard groups (ArtifactsBench domains, Vision2Code source datasets, ...).
RUN takes the same forms as in `proctor report`.

Exit status: 0 compared; 2 a run cannot be found or the runs are of different benchmarks.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections import defaultdict
from typing import Any

from proctor.commands import non_negative_int


def add_parser(sub) -> None:
    p = sub.add_parser(
        "compare",
        help="per-category score deltas between two runs, with paired bootstrap 95%% intervals",
        description=__doc__.split("\n\n")[0],
    )
    p.add_argument("run_a", help="the baseline run")
    p.add_argument("run_b", help="the run compared with it")
    p.add_argument("--store", help="store of both runs when given by prefix or name (default .proctor/store)")
    p.add_argument("--store-b", help="store of RUN_B, if different")
    p.add_argument("--bootstrap", type=non_negative_int, default=2000, help="resamples (default 2000)")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    p.set_defaults(handler=run)


def scores_of(ref) -> dict[str, dict[str, Any]]:
    from proctor.results import collect_records
    from proctor_jobs.scoring.items import item_scores

    items = ref.store.get_jsonl(ref.layout.items)
    records = collect_records(ref.store, ref.plan)
    rows = item_scores(ref.plan.benchmark, items, records, [s.name for s in ref.plan.active_stages])
    return {row["id"]: row for row in rows}


def compare(a: dict[str, dict], b: dict[str, dict], iterations: int, seed: int) -> dict[str, Any]:
    from proctor_jobs.scoring.stats import paired_bootstrap_delta

    pairs: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for item_id, row in a.items():
        other = b.get(item_id)
        if other is None or row["score"] is None or other["score"] is None:
            continue
        pairs["(all)"].append((row["score"], other["score"]))
        pairs[row["category"]].append((row["score"], other["score"]))
    rows = []
    for category in ["(all)", *sorted(k for k in pairs if k != "(all)")]:
        xs, ys = [p[0] for p in pairs[category]], [p[1] for p in pairs[category]]
        rows.append({"category": category, **paired_bootstrap_delta(xs, ys, iterations, seed)})
    return {
        "rows": rows,
        "paired": len(pairs.get("(all)", [])),
        "only_a": sum(1 for k in a if k not in b),
        "only_b": sum(1 for k in b if k not in a),
        "unscored": sum(
            1 for k, row in a.items() if k in b and (row["score"] is None or b[k]["score"] is None)
        ),
    }


def _clean(value: Any) -> Any:
    return None if isinstance(value, float) and math.isnan(value) else value


def run(args: argparse.Namespace) -> int:
    from proctor.commands._runs import RunNotFound, locate_run

    try:
        ref_a = locate_run(args.run_a, args.store)
        ref_b = locate_run(args.run_b, args.store_b or args.store)
    except RunNotFound as exc:
        print(f"proctor compare: {exc}", file=sys.stderr)
        return 2
    if ref_a.plan.benchmark != ref_b.plan.benchmark:
        print(
            f"proctor compare: different benchmarks ({ref_a.plan.benchmark} vs {ref_b.plan.benchmark})",
            file=sys.stderr,
        )
        return 2
    result = compare(scores_of(ref_a), scores_of(ref_b), args.bootstrap, args.seed)
    result.update(
        run_a=ref_a.label, run_b=ref_b.label, benchmark=ref_a.plan.benchmark, bootstrap=args.bootstrap
    )
    if args.json:
        result["rows"] = [{k: _clean(v) for k, v in row.items()} for row in result["rows"]]
        print(json.dumps(result, indent=1))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(
        title=f"{ref_a.plan.benchmark}: B − A (paired by item, bootstrap 95% CI)", title_justify="left"
    )
    for column in ("category", "n", "A", "B", "Δ (B−A)", "95% CI"):
        table.add_column(column, justify="left" if column == "category" else "right")
    for row in result["rows"]:
        table.add_row(
            row["category"],
            str(row["n"]),
            f"{row['mean_a']:.4g}",
            f"{row['mean_b']:.4g}",
            f"{row['delta']:+.4g}",
            f"[{row['ci_low']:+.4g}, {row['ci_high']:+.4g}]",
            style="bold" if row["category"] == "(all)" else "",
        )
    console = Console(width=None if sys.stdout.isatty() else 140)
    console.print(f"A: {ref_a.label}\nB: {ref_b.label}", highlight=False)
    console.print(table)
    console.print(
        f"paired {result['paired']} items; only in A {result['only_a']}, only in B {result['only_b']}, "
        f"not scored in one of them {result['unscored']}",
        highlight=False,
    )
    return 0

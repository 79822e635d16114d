"""`proctor compare RUN_A RUN_B`: how B's scores differ from A's, per group, with 95% intervals.

Items are paired by id (the same task — and sample — in both runs) and only items scored in both
runs count; the delta is mean(B) - mean(A) over those pairs, with a percentile bootstrap interval
from resampling the pairs (seeded, so the same runs always give the same interval). Values are in
the runs' own units, as their summaries state them (HumanEval-V: pass@1 in percent; ArtifactsBench:
0–100; Vision2Code: 0–5). One row for all items, then one per group — the benchmark's leaderboard
groups (ArtifactsBench domains, Vision2Code source datasets, ...) — when there is more than one.
RUN takes the same forms as in `proctor report`.

Runs are comparable when they are of the same benchmark, on the same task data (the same items),
with the same scoring profile (every stage setting that can change a score: judge model, profile
and rubric, render profile and viewport, oracle limits, ...; not concurrency, URLs or retries), and
when some item is scored in both. `--force` compares runs whose task data, item sets or scoring
profiles differ anyway (over the items both have), saying so.

Exit status: 0 compared; 2 a run cannot be found; 3 the runs are not comparable (the reasons on stderr).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections import defaultdict
from typing import Any

from proctor.commands import non_negative_int

ALL = "(all)"
NOT_COMPARABLE = 3

#: stage settings that change how a run goes, never what it scores
OPERATIONAL_SETTINGS = frozenset(
    {
        "api_key_env",
        "backoff_s",
        "cache",
        "concurrency",
        "configured",
        "libcache",
        "max_attempts",
        "outage_s",
        "server_ref",
        "tokenizer",
        "url",
    }
)
#: per stage kind, settings that are operational there only (a judge's request timeout; an oracle's
#: `timeout_s` can fail an answer, so it is part of the profile)
OPERATIONAL_BY_KIND = {"judge": frozenset({"timeout_s"})}


def add_parser(sub) -> None:
    p = sub.add_parser(
        "compare",
        help="per-group score deltas between two runs in their own units, with bootstrap 95%% intervals",
        description=__doc__.split("\n\n")[0],
        epilog="Runs of different benchmarks, task data, item sets or scoring profiles, or with no item "
        "scored in both, are refused (exit 3, reasons on stderr); --force compares runs whose task data, "
        "items or profiles differ anyway. Exit status: 0 compared; 2 a run cannot be found; "
        "3 not comparable.",
    )
    p.add_argument("run_a", help="the baseline run")
    p.add_argument("run_b", help="the run compared with it")
    p.add_argument("--store", help="store of both runs when given by prefix or name (default .proctor/store)")
    p.add_argument("--store-b", help="store of RUN_B, if different")
    p.add_argument("--bootstrap", type=non_negative_int, default=2000, help="resamples (default 2000)")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument(
        "--force",
        action="store_true",
        help="compare even when the task data, item sets or scoring profiles differ (items in both runs)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    p.set_defaults(handler=run)


def scores_of(ref) -> dict[str, dict[str, Any]]:
    from proctor.results import collect_records
    from proctor_jobs.scoring.items import item_scores

    items = ref.store.get_jsonl(ref.layout.items)
    records = collect_records(ref.store, ref.plan)
    rows = item_scores(ref.plan.benchmark, items, records, [s.name for s in ref.plan.active_stages])
    return {row["id"]: row for row in rows}


def scoring_profile(plan) -> dict[str, dict[str, Any]]:
    """Stage name -> the settings of that stage that can change a score (the stages that run)."""
    profile = {}
    for stage in plan.active_stages:
        ignored = OPERATIONAL_SETTINGS | OPERATIONAL_BY_KIND.get(stage.kind, frozenset())
        profile[stage.name] = {k: v for k, v in sorted(stage.config.items()) if k not in ignored}
    return profile


def _show(value: Any) -> str:
    return json.dumps(value, sort_keys=True) if isinstance(value, dict | list) else repr(value)


def _examples(ids: set[str], limit: int = 5) -> str:
    if not ids:
        return ""
    shown = ", ".join(sorted(ids)[:limit])
    return f" ({shown}{', …' if len(ids) > limit else ''})"


def comparability(plan_a, plan_b, ids_a: set[str], ids_b: set[str]) -> tuple[list[str], list[str]]:
    """(reasons the runs can never be compared, reasons `--force` may override); both empty: comparable."""
    if plan_a.benchmark != plan_b.benchmark:
        return [f"different benchmarks: A is {plan_a.benchmark}, B is {plan_b.benchmark}"], []
    soft = []
    data_a, data_b = plan_a.inputs.get("benchmark"), plan_b.inputs.get("benchmark")
    if data_a and data_b and data_a != data_b:
        soft.append(f"different task data: sha256 {data_a[:12]}… in A, {data_b[:12]}… in B")
    only_a, only_b = ids_a - ids_b, ids_b - ids_a
    if only_a or only_b:
        soft.append(
            f"different items: {len(only_a)} only in A{_examples(only_a)}, "
            f"{len(only_b)} only in B{_examples(only_b)}; {len(ids_a & ids_b)} in both"
        )
    prof_a, prof_b = scoring_profile(plan_a), scoring_profile(plan_b)
    for stage in sorted(set(prof_a) | set(prof_b), key=lambda s: (s not in prof_a, s)):
        if stage not in prof_a or stage not in prof_b:
            which = "A" if stage in prof_a else "B"
            soft.append(f"different scoring profile: stage {stage} runs only in {which}")
            continue
        a, b = prof_a[stage], prof_b[stage]
        for key in sorted(set(a) | set(b)):
            if a.get(key) != b.get(key):
                soft.append(
                    f"different scoring profile: {stage}.{key} is {_show(a.get(key))} in A, "
                    f"{_show(b.get(key))} in B"
                )
    return [], soft


def compare(
    a: dict[str, dict], b: dict[str, dict], iterations: int, seed: int, factor: float = 1.0
) -> dict[str, Any]:
    """Per-group paired deltas; scores multiplied by `factor` (the summary's unit, e.g. 100 for %)."""
    from proctor_jobs.scoring.stats import paired_bootstrap_delta

    pairs: dict[str, list[tuple[float, float]]] = defaultdict(list)
    groups: set[str] = set()
    for item_id, row in a.items():
        other = b.get(item_id)
        if other is not None:
            groups.add(str(row["category"]))
        if other is None or row["score"] is None or other["score"] is None:
            continue
        pair = (row["score"] * factor, other["score"] * factor)
        pairs[ALL].append(pair)
        pairs[str(row["category"])].append(pair)
    # One row per group: a single group is the same items as the overall row, so it is not repeated.
    names = [ALL, *sorted(groups)] if len(groups) > 1 else [ALL]
    rows = []
    for group in names:
        xs, ys = [p[0] for p in pairs[group]], [p[1] for p in pairs[group]]
        rows.append({"category": group, **paired_bootstrap_delta(xs, ys, iterations, seed)})
    return {
        "rows": rows,
        "paired": len(pairs.get(ALL, [])),
        "only_a": sum(1 for k in a if k not in b),
        "only_b": sum(1 for k in b if k not in a),
        "unscored": sum(
            1 for k, row in a.items() if k in b and (row["score"] is None or b[k]["score"] is None)
        ),
    }


def _clean(value: Any) -> Any:
    return None if isinstance(value, float) and math.isnan(value) else value


def _num(value: float, sign: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:+.4g}" if sign else f"{value:.4g}"


def run(args: argparse.Namespace) -> int:
    from proctor.commands._runs import RunNotFound, locate_run
    from proctor_jobs.scoring.items import summary_units

    try:
        ref_a = locate_run(args.run_a, args.store)
        ref_b = locate_run(args.run_b, args.store_b or args.store)
    except RunNotFound as exc:
        print(f"proctor compare: {exc}", file=sys.stderr)
        return 2
    a = scores_of(ref_a) if ref_a.plan.benchmark == ref_b.plan.benchmark else {}
    b = scores_of(ref_b) if a else {}
    hard, soft = comparability(ref_a.plan, ref_b.plan, set(a), set(b))
    if hard or (soft and not args.force):
        print(
            f"proctor compare: the runs are not comparable\n  A: {ref_a.label}\n  B: {ref_b.label}",
            file=sys.stderr,
        )
        for reason in hard + soft:
            print(f"  - {reason}", file=sys.stderr)
        if soft and not hard:
            print("  (--force compares them anyway, over the items both runs have)", file=sys.stderr)
        return NOT_COMPARABLE
    factor, unit, label = summary_units(ref_a.plan.benchmark)
    result = compare(a, b, args.bootstrap, args.seed, factor)
    if result["paired"] == 0:
        print(
            f"proctor compare: the runs are not comparable: no item is scored in both "
            f"({result['unscored']} items in both runs lack a score in one of them)\n"
            f"  A: {ref_a.label}\n  B: {ref_b.label}",
            file=sys.stderr,
        )
        return NOT_COMPARABLE
    for reason in soft:
        print(f"proctor compare: warning (--force): {reason}", file=sys.stderr)
    result.update(
        run_a=ref_a.label,
        run_b=ref_b.label,
        benchmark=ref_a.plan.benchmark,
        bootstrap=args.bootstrap,
        unit=unit,
        measure=label,
        differences=soft,
        cost={"a": _cost_of(ref_a), "b": _cost_of(ref_b)},
    )
    if args.json:
        result["rows"] = [{k: _clean(v) for k, v in row.items()} for row in result["rows"]]
        print(json.dumps(result, indent=1))
        return 0
    from rich.console import Console
    from rich.table import Table

    units = f"{label} ({unit})" if unit else label
    table = Table()
    for column in ("group", "n", "A", "B", "Δ (B−A)", "95% CI"):
        table.add_column(column, justify="left" if column == "group" else "right")
    for row in result["rows"]:
        table.add_row(
            row["category"],
            str(row["n"]),
            _num(row["mean_a"]),
            _num(row["mean_b"]),
            _num(row["delta"], sign=True),
            f"[{_num(row['ci_low'], sign=True)}, {_num(row['ci_high'], sign=True)}]" if row["n"] else "—",
            style="bold" if row["category"] == ALL else "",
        )
    console = Console(width=None if sys.stdout.isatty() else 140)
    console.print(f"A: {ref_a.label}\nB: {ref_b.label}", highlight=False)
    console.print(
        f"{ref_a.plan.benchmark}: B − A in {units}, paired by item, bootstrap 95% CI", highlight=False
    )
    console.print(table)
    console.print(
        f"paired {result['paired']} items; only in A {result['only_a']}, only in B {result['only_b']}, "
        f"not scored in one of them {result['unscored']}",
        highlight=False,
    )
    for line in cost_comparison(result["cost"]["a"], result["cost"]["b"]):
        console.print(line, highlight=False)
    return 0


def _cost_of(ref) -> dict[str, Any]:
    """The run's `cost` total from its summary.json (empty for a run summarised before costs were)."""
    summary = ref.store.get_json_or(ref.layout.summary) or {}
    return (summary.get("cost") or {}).get("total") or {}


def cost_comparison(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """What each run cost, side by side (only what both runs recorded)."""
    names = {
        "calls": "model calls",
        "retried_calls": "retried calls",
        "prompt_tokens": "prompt tokens",
        "completion_tokens": "completion tokens",
        "images": "images sent",
        "image_pixels": "image pixels sent",
        "estimated_tokens": "tokens estimated (no usage reported)",
        "model_seconds": "model seconds",
        "item_seconds": "item seconds",
        "cpu_seconds": "worker CPU seconds",
        "wall_seconds": "worker wall seconds",
        "bytes_written": "bytes written to the store",
    }
    shared = [(key, name) for key, name in names.items() if key in a and key in b]
    return [f"cost: {name} A {a[key]:g}, B {b[key]:g}" for key, name in shared]

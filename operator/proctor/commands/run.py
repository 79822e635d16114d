"""`proctor run FILE.yaml`: run an EvalRun on this machine, no cluster needed.

Exit status: 0 the run succeeded; 1 it failed (a shard could not be processed, or items hit a missing
part of the environment mid-run); 2 the manifest or its inputs are invalid; 3 this machine lacks what
the run needs (preflight: nothing was run).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from proctor.commands import positive_int

DEFAULT_STORE = ".proctor/store"


def add_parser(sub) -> None:
    p = sub.add_parser(
        "run",
        help="run an EvalRun manifest locally (same plan, workers and records as in a cluster)",
        description="Run an EvalRun manifest on this machine. Re-running the same command resumes.",
    )
    p.add_argument(
        "manifest",
        type=Path,
        help="EvalRun manifest (Artifacts/ConfigMaps it names are looked up in it, then next to it)",
    )
    p.add_argument(
        "--store",
        default=os.environ.get("PROCTOR_STORE", DEFAULT_STORE),
        help=f"a directory or s3://bucket/prefix (default: {DEFAULT_STORE}, env PROCTOR_STORE)",
    )
    p.add_argument(
        "--workers", type=positive_int, default=0, help="worker processes (default: number of CPUs)"
    )
    p.add_argument("--fresh", action="store_true", help="discard this run's earlier records and start over")
    p.add_argument("--json", action="store_true", help="print one JSON object as the last line of stdout")
    p.add_argument("--name", help="which EvalRun, when the file holds several")
    p.add_argument("--judge-url", help="OpenAI-compatible base URL of the judge (overrides spec.judge)")
    p.add_argument("--judge-model", help="the judge's model name (overrides spec.judge.model)")
    p.add_argument("--shard-size", type=positive_int, help="override spec.sharding.shardSize")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bars")
    p.add_argument(
        "--estimate",
        action="store_true",
        help="print what the run would cost (model calls, tokens, images per stage) and exit: nothing is "
        "rendered, judged or written",
    )
    p.set_defaults(handler=run)


def _overrides(args: argparse.Namespace) -> dict:
    spec: dict = {}
    if args.judge_url or args.judge_model:
        spec["judge"] = {k: v for k, v in (("url", args.judge_url), ("model", args.judge_model)) if v}
    if args.shard_size:
        spec["sharding"] = {"shardSize": args.shard_size}
    return spec


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from proctor.inputs import InputError
    from proctor.local import execute, prepare, resolve
    from proctor.manifests import ManifestError
    from proctor.preflight import PreflightFailed, preflight

    # With --json, stdout carries only the JSON line; everything for humans goes to stderr. Not on a
    # terminal (a log, a pipe): plain lines that do not wrap mid-path.
    stream = sys.stderr if args.json else sys.stdout
    console = Console(file=stream, soft_wrap=not stream.isatty())
    try:
        resolved = resolve(args.manifest, args.name, _overrides(args))
    except (ManifestError, InputError) as exc:
        print(f"invalid input\n{exc}", file=sys.stderr)
        return 2
    if args.estimate:
        return _estimate(resolved, console, args.json)
    try:  # never cached: the machine may have changed since the last run
        preflight(resolved.benchmark, resolved.spec, resolved.items)
    except PreflightFailed as exc:
        print(f"{exc}\n(`proctor doctor {args.manifest}` shows every check)", file=sys.stderr)
        return 3
    local = prepare(args.manifest, args.store, fresh=args.fresh, resolved=resolved)
    plan = local.plan
    for notice in plan.notices:
        console.print(f"[yellow]notice:[/] {notice}", highlight=False)
    for warning in plan.warnings:
        console.print(f"[yellow]warning:[/] {warning}", highlight=False)
    console.print(
        f"run [bold]{local.evalrun.metadata.name}[/] · {plan.benchmark} · {plan.total_items} items · "
        f"store {local.store.url}/{plan.run_prefix}",
        highlight=False,
    )
    workers = args.workers or min(
        len(os.sched_getaffinity(0)), max(1, max((s.shards for s in plan.stages), default=1))
    )
    result = _execute_with_progress(execute, local, workers, console, quiet=args.quiet)
    _print_summary(console, result, local)
    if args.json:
        sys.stdout.write(json.dumps(result.to_json()) + "\n")
        sys.stdout.flush()
    return 0 if result.phase == "Succeeded" else 1


def _estimate(resolved, console, as_json: bool) -> int:
    """`--estimate`: the plan in memory (no store), then items x calls x tokens per call per stage."""
    from rich.markdown import Markdown

    from proctor.estimate import estimate_lines, run_estimate
    from proctor.plan import plan_run
    from proctor_jobs.benchmarks import get_benchmark

    adapter = get_benchmark(resolved.benchmark)
    plan, _ = plan_run(adapter, resolved.spec, resolved.items, "estimate", resolved.inputs, resolved.warnings)
    estimate = run_estimate(plan, resolved.items)
    console.print(
        f"estimate for [bold]{resolved.evalrun.metadata.name}[/] · {plan.benchmark} · "
        f"{plan.total_items} items (one judge call per item; nothing rendered or called)",
        highlight=False,
    )
    console.print(Markdown("\n".join(estimate_lines(estimate))))
    methods = {s["method"] for s in estimate["stages"].values() if "method" in s}
    if methods:
        console.print(
            f"text tokens by {' / '.join(sorted(methods))} (spec.judge.tokenizer counts exactly); images as "
            "Qwen2-VL counts them at the render size; replies at a typical length (docs/judging.md)",
            highlight=False,
        )
    if as_json:
        sys.stdout.write(json.dumps(estimate) + "\n")
        sys.stdout.flush()
    return 0


def _execute_with_progress(execute, local, workers, console, quiet):
    if quiet:
        return execute(local, workers)
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = [
        TextColumn("{task.description:>10}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("[red]{task.fields[failed]} failed[/]"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("[yellow]{task.fields[note]}[/]"),  # a judge retrying or unreachable, say
    ]
    with Progress(*columns, console=console, transient=False) as progress:
        stages = local.plan.active_stages
        bars = {s.name: progress.add_task(s.name, total=s.items, failed=0, note="") for s in stages}

        def on_progress(stage: str, totals: dict) -> None:
            failed = totals["failed"] + totals.get("env_error", 0)
            done = totals["ok"] + totals["skipped"] + failed
            note = (totals.get("note") or "")[:80]
            progress.update(bars[stage], completed=min(done, totals["total"]), failed=failed, note=note)

        return execute(local, workers, on_progress=on_progress)


def _print_judges(console, panel: dict) -> None:
    """Each judge's headline score, then the judges' agreement (pooled) with 95% intervals."""
    from rich.table import Table

    from proctor.report_judges import STATS, stat_cell

    judges = Table(title="judges", title_justify="left")
    for col in ("judge", "stage", "score"):
        judges.add_column(col, justify="right" if col == "score" else "left")
    for name, judge in panel.get("judges", {}).items():
        score = judge.get("score")
        judges.add_row(name, judge["stage"], "—" if score is None else f"{score:.4g}")
    if panel.get("aggregate"):
        aggregate = panel["aggregate"]
        score = aggregate.get("score")
        judges.add_row(f"{aggregate['method']} (aggregate)", "", "—" if score is None else f"{score:.4g}")
    console.print(judges)
    pairs = [(f"{r['a']} ~ {r['b']}", r) for r in panel.get("agreement", [])]
    pairs += [(f"{r['judge']} ~ human", r) for r in panel.get("human", [])]
    if pairs:
        agreement = Table(title="agreement (95% bootstrap intervals)", title_justify="left")
        for col in ("judges", "n", *(title for _, title in STATS)):
            agreement.add_column(col, justify="left" if col == "judges" else "right")
        for label, row in pairs:
            agreement.add_row(label, str(row.get("n", 0)), *(stat_cell(row, name) for name, _ in STATS))
        console.print(agreement)


def _print_summary(console, result, local) -> None:
    from rich.table import Table

    summary = result.summary
    scores = Table(title=f"{local.evalrun.metadata.name}: {result.phase}", title_justify="left")
    scores.add_column("metric")
    scores.add_column("value", justify="right")
    for name, value in summary.get("scores", {}).items():
        style = "bold" if name == summary.get("headline") else ""
        scores.add_row(name, f"{value:.4g}" if isinstance(value, float) else str(value), style=style)
    console.print(scores)
    if summary.get("judges"):
        _print_judges(console, summary["judges"])
    stages = Table(show_header=True)
    rows = summary.get("stages", [])
    # Items this machine could not evaluate are neither the answer's failures nor skipped: own column.
    unevaluated = any(s.get("env_error") for s in rows)
    columns = ("stage", "total", "ok", "failed", "skipped", *(("not evaluated",) if unevaluated else ()))
    for col in columns:
        stages.add_column(col, justify="left" if col == "stage" else "right")
    for s in rows:
        cells = [s["name"], str(s["total"]), str(s["succeeded"]), str(s["failed"]), str(s["skipped"])]
        stages.add_row(*cells, *((str(s.get("env_error", 0)),) if unevaluated else ()))
    console.print(stages)
    console.print(
        f"items {result.total}: processed {result.processed}, reused {result.reused}, failed {result.failed}",
        highlight=False,
    )
    if len(result.stages) > 1:  # a resumed render+judge run: what each stage redid and reused
        for name, c in result.stages.items():
            console.print(
                f"  {name}: processed {c['processed']}, reused {c['reused']}, failed {c['failed']}",
                highlight=False,
            )
    base = local.store.url
    console.print(f"report: {base}/{local.plan.run_prefix}/report.md", highlight=False)
    for error in result.errors:
        console.print(f"[red]error:[/] {error}", highlight=False)

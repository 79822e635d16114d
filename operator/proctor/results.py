"""From records to results: aggregate a finished (or partial) run and write its summary and report."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any

from proctor.cost import cost_lines, run_cost
from proctor.estimate import beside_actual, estimate_lines, run_estimate
from proctor.plan import Plan
from proctor_jobs.benchmarks import get_benchmark
from proctor_jobs.records import ItemRecord
from proctor_jobs.store import Store
from proctor_jobs.worker import load_shard_records, shard_finished


def collect_records(store: Store, plan: Plan) -> dict[str, dict[str, ItemRecord]]:
    """Stage -> item id -> record, for records made under the stage's current configuration."""
    out: dict[str, dict[str, ItemRecord]] = {}
    for stage in plan.active_stages:
        records: dict[str, ItemRecord] = {}
        for index in range(stage.shards):
            for item_id, rec in load_shard_records(store, plan.layout, stage.name, index).items():
                if rec.config_hash == stage.config_hash:
                    records[item_id] = rec
        out[stage.name] = records
    return out


def stage_counts(plan: Plan, records: dict[str, dict[str, ItemRecord]]) -> list[dict[str, Any]]:
    rows = []
    for stage in plan.stages:
        counts = Counter(r.status for r in records.get(stage.name, {}).values())
        rows.append(
            {
                "name": stage.name,
                "kind": stage.kind,
                "total": stage.items,
                "succeeded": counts.get("ok", 0),
                "failed": counts.get("failed", 0),
                "skipped": counts.get("skipped", 0) if stage.runs else stage.items,
                "env_error": counts.get("env_error", 0),
                "shards": stage.shards if stage.runs else 0,
                "skip_reason": stage.skip_reason,
            }
        )
    return rows


def environment_errors(records: dict[str, dict[str, ItemRecord]]) -> dict[str, str]:
    """Item id -> reason, for items some stage could not evaluate on this machine (`env_error`)."""
    return {
        item_id: rec.reason or "environment"
        for stage_records in records.values()
        for item_id, rec in stage_records.items()
        if rec.status == "env_error"
    }


def all_shards_finished(store: Store, plan: Plan) -> bool:
    return all(
        shard_finished(store, plan.layout, stage.name, index)
        for stage in plan.active_stages
        for index in range(stage.shards)
    )


def measured_metrics(store: Store, plan: Plan) -> dict[str, dict[str, Any]]:
    """Stage -> what its workers measured (their progress records' metrics, summed over shards)."""
    from proctor.metrics import sum_shard_metrics

    out = {}
    for stage in plan.active_stages:
        snapshots = [
            (store.get_json_or(plan.layout.progress(stage.name, index)) or {}).get("metrics") or {}
            for index in range(stage.shards)
        ]
        out[stage.name] = sum_shard_metrics(snapshots)
    return out


def estimate_beside_actual(
    plan: Plan, items: list[dict[str, Any]], cost: dict[str, Any], records: dict[str, dict[str, ItemRecord]]
) -> dict[str, Any]:
    """The pre-run estimate, the estimate once the renders were known (`once_rendered`: the judge's
    bill before it was paid) and, per stage, the actual beside them; an estimate that cannot be made
    (e.g. a tokenizer that cannot be fetched) is named, never a reason to lose the results."""
    try:
        estimate = run_estimate(plan, items)
        once_rendered = run_estimate(plan, items, records)
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}
    return {
        **estimate,
        "once_rendered": once_rendered,
        "beside_actual": beside_actual(estimate, cost, once_rendered),
    }


def summarize(
    store: Store, plan: Plan, spec: dict[str, Any], run: dict[str, str], phase: str
) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, dict[str, ItemRecord]]]:
    items = store.get_jsonl(plan.layout.items)
    records = collect_records(store, plan)
    benchmark = get_benchmark(plan.benchmark)
    # An item the machine could not evaluate (env_error) says nothing about its answer: it stays out
    # of the scores (the run is then Failed, and a rerun redoes it) rather than counting as wrong.
    env_errors = environment_errors(records)
    scored = [item for item in items if item["id"] not in env_errors] if env_errors else items
    scores = benchmark.aggregate(scored, records, spec)
    active = plan.active_stages
    cost = run_cost(
        [s.name for s in active], records, measured_metrics(store, plan), {s.name: s.kind for s in active}
    )
    panel = judge_panel(store, plan, benchmark, scored, records, spec)
    if panel and panel.get("aggregate"):
        from proctor_jobs.scoring.judges import aggregate_result

        # Asked for (spec.judgeAggregate): the judges' per-item mean or median is the run's own score,
        # with its breakdowns and counts (each judge's own stay under `judges`).
        scores = aggregate_result(benchmark, scored, records, spec) or scores
    summary = {
        "run": run,
        "benchmark": plan.benchmark,
        "phase": phase,
        "run_prefix": plan.run_prefix,
        "headline": scores.get("headline"),
        "scores": scores.get("scores", {}),
        "breakdowns": scores.get("breakdowns", {}),
        "counts": scores.get("counts", {}),
        "stages": stage_counts(plan, records),
        "items": len(items),
        "env_errors": dict(Counter(env_errors.values())),
        **({"judges": panel} if panel else {}),
        "cost": cost,
        "estimate": estimate_beside_actual(plan, items, cost, records),
        "inputs": plan.inputs,
        "warnings": plan.warnings,
        "notices": plan.notices,
        "finished_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    return summary, items, records


def human_ratings(store: Store, plan: Plan, spec: dict[str, Any]) -> dict[str, float] | None:
    """Item id -> human rating from spec.humanRatings (stored with the run's inputs), if given."""
    sha = plan.inputs.get("humanRatings")
    ref = spec.get("humanRatings")
    if not sha or not ref:
        return None
    from proctor.inputs import human_table, load_bundle

    return human_table(load_bundle(store, sha).records, ref, "spec.humanRatings")


def judge_panel(store, plan, benchmark, items, records, spec) -> dict[str, Any] | None:
    """Per-judge scores, the aggregate and agreement for a run with several judges (or human ratings)."""
    from proctor_jobs.scoring.judges import panel_summary

    return panel_summary(benchmark, items, records, spec, human_ratings(store, plan, spec))


def write_results(
    store: Store, plan: Plan, spec: dict[str, Any], run: dict[str, str], phase: str
) -> tuple[dict[str, Any], dict[str, dict[str, ItemRecord]]]:
    """summary.json, report.md and the benchmark's original-format exports; returns (summary, records)."""
    summary, items, records = summarize(store, plan, spec, run, phase)
    benchmark = get_benchmark(plan.benchmark)
    for name, data in benchmark.exports(items, records, spec).items():
        store.put_bytes(plan.layout.export(name), data)
    store.put_text(plan.layout.report_md, render_markdown(summary, items, records, plan), "text/markdown")
    from proctor.report_html import write_html_report

    write_html_report(store, plan, summary, items, records)
    store.put_json(plan.layout.summary, summary)
    return summary, records


def finish_run(
    store: Store, plan: Plan, spec: dict[str, Any], run: dict[str, str], phase: str, reason: str, message: str
) -> dict[str, Any]:
    """summary, reports and records.jsonl of a finished run; a Failed one says why in `run`. What the
    cluster's aggregate Job does (`proctor aggregate`)."""
    if phase != "Succeeded":
        run = {**run, "reason": reason, "message": message}
    summary, records = write_results(store, plan, spec, run, phase)
    rows = [rec.to_dict() for stage_records in records.values() for rec in stage_records.values()]
    store.put_jsonl(f"{plan.run_prefix}/records.jsonl", rows)
    return summary


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1000 else f"{value:.1f}"
    return str(value)


def _cell(text: Any) -> str:
    """Table-cell safe and whole: pipes escaped, line breaks kept as `<br>`, nothing cut."""
    value = str(text if text is not None else "").strip()
    return value.replace("|", "\\|").replace("\r\n", "\n").replace("\n", "<br>")


def render_markdown(
    summary: dict[str, Any],
    items: list[dict[str, Any]],
    records: dict[str, dict[str, ItemRecord]],
    plan: Plan,
) -> str:
    run = summary["run"]
    lines = [
        f"# {run.get('name', 'run')} — {get_benchmark(plan.benchmark).title or plan.benchmark}",
        "",
        f"- Phase: **{summary['phase']}**"
        + (f" — {run['reason']}: {_cell(run.get('message'))}" if run.get("reason") else ""),
        f"- Items: {summary['items']}",
        f"- Store prefix: `{plan.run_prefix}`",
        f"- Finished: {summary['finished_at']}",
        "",
        "## Scores",
        "",
        "| metric | value |",
        "|---|---|",
    ]
    headline = summary.get("headline")
    for name, value in summary["scores"].items():
        label = f"**{name}**" if name == headline else name
        lines.append(f"| {label} | {_fmt(value)} |")
    if summary.get("judges"):
        from proctor.report_judges import judges_markdown

        lines += ["", *judges_markdown(summary["judges"])]
    lines += [
        "",
        "## Stages",
        "",
        "| stage | total | ok | failed | skipped | note |",
        "|---|---|---|---|---|---|",
    ]
    for s in summary["stages"]:
        lines.append(
            f"| {s['name']} | {s['total']} | {s['succeeded']} | {s['failed']} | {s['skipped']} | "
            f"{_cell(s.get('skip_reason') or '')} |"
        )
    if summary.get("cost"):
        lines += ["", "## Cost", "", *cost_lines(summary["cost"])]
    estimate = summary.get("estimate") or {}
    if estimate.get("stages"):
        lines += [
            "",
            "## Estimate beside the actual",
            "",
            "Estimated before the run from the prompt templates and the render size (one call per item), "
            "then once the renders were known (which items reach the judge, how many screenshots each "
            "sends): `before → once rendered → actual`.",
            "",
            *estimate_lines(estimate, estimate.get("beside_actual")),
        ]
    for title, key in (("Notices", "notices"), ("Warnings", "warnings")):
        if summary.get(key):
            lines += ["", f"## {title}", ""] + [f"- {_cell(w)}" for w in summary[key]]
    from proctor.report_items import item_rows, reason_counts

    stage_names = [s.name for s in plan.active_stages]
    rows = item_rows(plan.benchmark, items, records, stage_names)
    failures = reason_counts(rows, "failures")
    failed = sum(1 for row in rows if row["outcome"] == "failed")
    lines += ["", f"## Failures ({failed} of {len(rows)} items)", ""]
    if failures:
        lines += ["| reason | items |", "|---|---|"] + [f"| {_cell(r)} | {n} |" for r, n in failures]
    else:
        lines.append("No failed items.")
    notes = reason_counts(rows, "notes")
    if notes:
        lines += ["", "## Notes", "", "Remarks on items that were evaluated all the same.", ""]
        lines += ["| note | items |", "|---|---|"] + [f"| {_cell(r)} | {n} |" for r, n in notes]
    lines += [
        "",
        "## Items",
        "",
        "| item | " + " | ".join(stage_names) + " | score | outcome | reason |",
        "|---|" + "---|" * (len(stage_names) + 3),
    ]
    for item, row in zip(items, rows, strict=True):
        recs = [records.get(name, {}).get(item["id"]) for name in stage_names]
        statuses = [r.status if r else "—" for r in recs]
        score = _fmt(row["score"]) if row["score"] is not None else ""
        if row["failures"]:
            reason = "; ".join(row["failures"])
        else:
            # The scorer's own reason as its record states it (the HTML page shows the judge's in full).
            scorer = records.get(row["stage"] or "", {}).get(item["id"])
            explained = scorer.reason if scorer is not None and row["explanation"] else None
            reason = "; ".join([f"note: {n}" for n in row["notes"]] + ([explained] if explained else []))
        lines.append(
            f"| {_cell(item['id'])} | "
            + " | ".join(statuses)
            + f" | {score} | {row['outcome']} | {_cell(reason)} |"
        )
    return "\n".join(lines) + "\n"

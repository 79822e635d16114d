"""One row per item for the reports: its score, group, outcome, what failed and what is only a note.

A *failure* is something that went wrong for the item: a stage could not evaluate it (`failed`,
`env_error`), the answer failed its tests (a record with `passed: false`, as HumanEval-V's oracle
writes), the candidate did not render (a render record with a `failure`, as Vision2Code's), or the
scoring stage answered but gave no score (an unjudgeable reply). A *note* is an informational
remark on an item that was evaluated all the same (a contained navigation, a render that found no
code while the judge still scored the text, a stage skipped for it). The scoring stage's own
explanation of a score (the judge's reason) is neither: the reports show it as the item's detail.

Reasons are kept whole here; the reports decide how to lay them out.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from proctor_jobs.judge.panel import is_judge_stage
from proctor_jobs.records import ItemRecord
from proctor_jobs.scoring.items import item_scores

#: outcomes, in the order a reader wants them
OUTCOMES = ("failed", "passed", "scored", "not scored", "pending")


def _explains_score(rec: ItemRecord) -> bool:
    """The reason is the scorer's explanation of the score it gave (the judge's reason), not a remark."""
    if rec.score is None or not rec.reason:
        return False
    data = rec.data or {}
    for key in ("judge_reason", "overall_summary"):
        text = data.get(key)
        if isinstance(text, str) and text and text.startswith(rec.reason.rstrip("…")[:200]):
            return True
    return is_judge_stage(rec.stage)


def _answer_failure(rec: ItemRecord) -> str | None:
    """Why the answer failed in an evaluation that itself worked, else None."""
    data = rec.data or {}
    if data.get("passed") is False:
        return rec.reason or str(data.get("result") or "failed its tests")
    failure = data.get("failure")
    if failure:
        return rec.reason or str(failure)
    return None


def item_rows(
    benchmark: str,
    items: list[dict[str, Any]],
    records: dict[str, dict[str, ItemRecord]],
    stage_order: list[str],
) -> list[dict[str, Any]]:
    """Per item, in item order: id, category, score, stage (of the score), outcome, failures
    (["stage: reason", ...], whole), notes (the same shape) and explanation (the scorer's reason)."""
    rows = []
    for row in item_scores(benchmark, items, records, stage_order):
        item_id = row["id"]
        failures: list[str] = []
        notes: list[str] = []
        explanation = None
        passed = None
        for name in stage_order:
            rec = records.get(name, {}).get(item_id)
            if rec is None:
                continue
            if rec.status == "env_error":
                failures.append(f"{name}: environment: {rec.reason or 'missing dependency'}")
            elif rec.status == "failed":
                failures.append(f"{name}: {rec.reason or 'failed'}")
            elif rec.status == "skipped":
                if rec.reason:
                    notes.append(f"{name}: skipped: {rec.reason}")
            else:
                why = _answer_failure(rec)
                if why is not None:
                    if not any(f.endswith(why) for f in failures):
                        failures.append(f"{name}: {why}")
                elif name == row["stage"] and _explains_score(rec):
                    data = rec.data
                    explanation = data.get("judge_reason") or data.get("overall_summary") or rec.reason
                elif is_judge_stage(name) and _explains_score(rec):
                    continue  # another judge's explanation of its own score, not a remark on the item
                elif rec.reason:
                    notes.append(f"{name}: {rec.reason}")
                if name == row["stage"] and rec.data.get("passed") is True:
                    passed = True
        scorer = records.get(row["stage"] or "", {}).get(item_id)
        if row["score"] is None and scorer is not None and scorer.status == "ok" and not failures:
            failures.append(f"{scorer.stage}: not scored: {scorer.reason or 'no score in the reply'}")
        # A failed answer keeps its reason; a skipped downstream stage is then no news.
        if failures:
            notes = [n for n in notes if ": skipped: " not in n]
            outcome = "failed"
        elif row["score"] is None:
            waiting = row["stage"] is None or row["stage"] in records  # its scoring stage runs
            outcome = "pending" if scorer is None and waiting else "not scored"
        else:
            outcome = "passed" if passed else "scored"
        rows.append(
            {**row, "outcome": outcome, "failures": failures, "notes": notes, "explanation": explanation}
        )
    return rows


def reason_counts(rows: list[dict[str, Any]], key: str) -> list[tuple[str, int]]:
    """(reason, items) for the rows' `failures` or `notes`, most frequent first, ties by text."""
    counts = Counter(reason for row in rows for reason in dict.fromkeys(row[key]))
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))

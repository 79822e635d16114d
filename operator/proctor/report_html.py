"""`report.html`: one self-contained page per run (no scripts, no external requests).

Sections: the headline table (every score, the headline first), the stages, the per-category
tables from the benchmark's breakdowns, a score-distribution histogram drawn as inline SVG, the
failure reasons, and the lowest- and highest-scored items with their visual evidence (screenshots,
or reference and candidate images) embedded as data URLs beside the judge's reasons. Images are
shrunk (longest side 640 px, JPEG) so a report of many items stays small enough to mail.
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections import Counter
from typing import Any

from proctor.plan import Plan
from proctor_jobs.benchmarks import get_benchmark
from proctor_jobs.records import ItemRecord
from proctor_jobs.scoring.items import SCORE_RANGES, item_scores
from proctor_jobs.store import Store

THUMB_SIDE = 640
EXTREMES = 5  # items shown at each end of the ranking

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1200px;
color:#1d232a;padding:0 1rem;line-height:1.45}
h1{font-size:1.6rem;margin-bottom:.2rem}
h2{margin-top:2.2rem;border-bottom:1px solid #d8dde3;padding-bottom:.2rem}
h3{margin:.2rem 0}.meta{color:#5b6570;font-size:.92rem}
table{border-collapse:collapse;margin:.6rem 0 1rem;font-size:.92rem}
th,td{border:1px solid #d8dde3;padding:.25rem .6rem;text-align:left;vertical-align:top}
th{background:#f3f5f7}td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.headline td{font-weight:700;background:#fff8e1}
.item{border:1px solid #d8dde3;border-radius:6px;padding:.8rem;margin:.8rem 0;display:flex;gap:1rem}
.item .shots{flex:0 0 50%;display:flex;flex-wrap:wrap;gap:.4rem;align-content:flex-start}
.item .shots img{width:100%;border:1px solid #c9d0d6}
.item .shots figure{margin:0;flex:1 1 30%;min-width:150px}.item .shots pre{width:100%}
.item figcaption{font-size:.8rem;color:#5b6570}
.item .why{flex:1;min-width:0;overflow-x:auto}
.item pre{white-space:pre-wrap;word-break:break-word;background:#f7f8fa;
padding:.5rem;border-radius:4px;font-size:.85rem;max-height:28rem;overflow:auto}
.score{font-size:1.3rem;font-weight:700}.tag{display:inline-block;background:#eef1f4;border-radius:3px;
padding:0 .4rem;margin-right:.3rem;font-size:.8rem}.none{color:#8a939c;font-style:italic}
"""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "—"
        return f"{value:.4g}" if abs(value) < 1000 else f"{value:.1f}"
    return "—" if value is None else str(value)


def _thumbnail(data: bytes) -> str | None:
    """A data URL of the image, shrunk; None when the bytes are not an image."""
    try:
        from PIL import Image

        with Image.open(io.BytesIO(data)) as image:
            image.load()
            image = image.convert("RGB")
            if max(image.size) > THUMB_SIDE:
                scale = THUMB_SIDE / max(image.size)
                image = image.resize(
                    (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
                )
            out = io.BytesIO()
            image.save(out, format="JPEG", quality=78, optimize=True)
    except Exception:
        return None
    return "data:image/jpeg;base64," + base64.b64encode(out.getvalue()).decode("ascii")


def _table(headers: list[str], rows: list[list[Any]], headline_row: int | None = None) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = []
    for i, row in enumerate(rows):
        cells = "".join(
            f'<td class="num">{_e(_fmt(v))}</td>' if isinstance(v, int | float) else f"<td>{_e(_fmt(v))}</td>"
            for v in row
        )
        cls = ' class="headline"' if i == headline_row else ""
        body.append(f"<tr{cls}>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


# Stored summaries have sorted keys; show the leaderboard groups and their columns in reading order.
_BREAKDOWN_ORDER = ("by_domain", "by_dataset", "by_category", "by_difficulty")
_COLUMN_ORDER = (
    "column",
    "n",
    "num_samples",
    "judged",
    "unjudgeable",
    "pending",
    "mean",
    "mean_unjudgeable_as_zero",
    "mean_final_rating_0_to_5",
    "mean_raw_score_0_to_5",
)


def _ordered(keys: list[str], preferred: tuple[str, ...]) -> list[str]:
    rank = {k: i for i, k in enumerate(preferred)}
    return sorted(keys, key=lambda k: (rank.get(k, len(rank)), keys.index(k)))


def _breakdown_tables(breakdowns: dict[str, Any]) -> str:
    """Every breakdown that is a mapping of scalars or of flat records, as a table."""
    parts = []
    for name in _ordered(list(breakdowns), _BREAKDOWN_ORDER):
        value = breakdowns[name]
        if not isinstance(value, dict) or not value:
            continue
        title = f"<h3>{_e(name.replace('_', ' '))}</h3>"
        if all(isinstance(v, dict) for v in value.values()):
            columns: list[str] = []
            for record in value.values():
                for key, v in record.items():
                    if key not in columns and not isinstance(v, dict | list):
                        columns.append(key)
            columns = _ordered(columns, _COLUMN_ORDER)
            rows = [[key, *(record.get(c) for c in columns)] for key, record in value.items()]
            parts.append(title + _table([name.split("_")[-1], *columns], rows[:200]))
        elif all(not isinstance(v, dict | list) for v in value.values()):
            parts.append(title + _table(["key", "value"], [[k, v] for k, v in list(value.items())[:200]]))
    return "".join(parts) or '<p class="none">No breakdowns.</p>'


def histogram_svg(scores: list[float], low: float, high: float, bins: int = 10) -> str:
    """A bar chart of how many items fall in each score bin, as inline SVG."""
    if not scores:
        return '<p class="none">No scored items.</p>'
    if high <= low:
        high = low + 1.0
    if (low, high) == (0.0, 1.0) and all(s in (0.0, 1.0) for s in scores):
        bins = 2
    width, height, pad_left, pad_bottom, pad_top = 640, 240, 40, 36, 14
    counts = [0] * bins
    for s in scores:
        index = int((min(max(s, low), high) - low) / (high - low) * bins)
        counts[min(bins - 1, index)] += 1
    peak = max(counts) or 1
    bar_w = (width - pad_left - 10) / bins
    plot_h = height - pad_bottom - pad_top
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
        f'aria-label="score distribution" style="font:11px sans-serif">',
        f'<line x1="{pad_left}" y1="{height - pad_bottom}" x2="{width - 5}" '
        f'y2="{height - pad_bottom}" stroke="#333"/>',
    ]
    binary = bins == 2 and (low, high) == (0.0, 1.0)
    for i, count in enumerate(counts):
        h = plot_h * count / peak
        x = pad_left + i * bar_w
        y = height - pad_bottom - h
        start = low + (high - low) * i / bins
        end = low + (high - low) * (i + 1) / bins
        label = ("0 (fail)", "1 (pass)")[i] if binary else f"{start:g}–{end:g}"
        parts.append(
            f'<rect x="{x + 1:.1f}" y="{y:.1f}" width="{bar_w - 2:.1f}" height="{h:.1f}" fill="#4a7fb5">'
            f"<title>{start:g}–{end:g}: {count}</title></rect>"
        )
        if count:
            parts.append(f'<text x="{x + bar_w / 2:.1f}" y="{y - 3:.1f}" text-anchor="middle">{count}</text>')
        parts.append(
            f'<text x="{x + bar_w / 2:.1f}" y="{height - pad_bottom + 14}" '
            f'text-anchor="middle">{label}</text>'
        )
    parts.append(
        f'<text x="{pad_left}" y="{height - 4}" fill="#5b6570">'
        f"score ({len(scores)} items; bars: items per bin)</text>"
    )
    parts.append(f'<text x="4" y="{pad_top + 8}" fill="#5b6570">{peak}</text></svg>')
    return "".join(parts)


def _figure(data_url: str | None, caption: str) -> str:
    if data_url is None:
        return f'<p class="none">{_e(caption)}: image unavailable</p>'
    return (
        f'<figure><img src="{data_url}" alt="{_e(caption)}"><figcaption>{_e(caption)}</figcaption></figure>'
    )


class _Evidence:
    """Loads images for the report, tolerating missing or broken evidence."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def image(self, key: str | None) -> str | None:
        if not key:
            return None
        try:
            return _thumbnail(self.store.get_bytes(key))
        except Exception:
            return None

    def inline(self, b64: str | None) -> str | None:
        if not b64:
            return None
        try:
            return _thumbnail(base64.b64decode(b64.split(",", 1)[-1]))
        except Exception:
            return None


def _visuals(
    benchmark: str, item: dict[str, Any], records: dict[str, dict[str, ItemRecord]], ev: _Evidence
) -> str:
    render = records.get("render", {}).get(item["id"])
    if benchmark == "vision2code":
        reference = ev.inline(item.get("reference_image")) or ev.image(item.get("reference_key"))
        candidate = ev.image(render.evidence.get("image")) if render is not None else None
        if candidate is None:
            why = (render.data.get("failure") or render.reason) if render is not None else "no render record"
            return _figure(reference, "reference") + f'<p class="none">no candidate image: {_e(why)}</p>'
        return _figure(reference, "reference") + _figure(candidate, "candidate render")
    if benchmark not in ("artifactsbench",) and render is None:
        # No visual evidence in this benchmark: show the program that was evaluated instead.
        rec = next(
            (stage.get(item["id"]) for stage in reversed(list(records.values())) if item["id"] in stage), None
        )
        code = (
            (rec.data.get("completion") if rec is not None else None)
            or item.get("answer")
            or item.get("prediction")
        )
        return f"<pre>{_e(code)}</pre>" if code else '<p class="none">no answer text</p>'
    keys: list[str] = []
    if render is not None:
        keys = list(render.data.get("screenshots") or [])
        if not keys:
            keys = [v for k, v in sorted(render.evidence.items()) if k.startswith("screenshot")]
    if not keys:
        reason = render.reason if render is not None and render.reason else "no screenshots for this item"
        return f'<p class="none">{_e(reason)}</p>'
    return "".join(_figure(ev.image(key), f"screenshot {i + 1}") for i, key in enumerate(keys))


def _explanation(item: dict[str, Any], row: dict[str, Any], records: dict[str, dict[str, ItemRecord]]) -> str:
    rec = records.get(row.get("stage") or "", {}).get(item["id"])
    if rec is None:
        return '<p class="none">No record.</p>'
    parts = [f'<span class="tag">{_e(rec.stage)}: {_e(rec.status)}</span>']
    data = rec.data
    if data.get("text_only"):
        parts.append(f'<span class="tag">judged on text only: {_e(data.get("text_only_reason"))}</span>')
    caps = [c for c in data.get("applied_caps") or [] if c.get("changed_final_rating")]
    for cap in caps:
        parts.append(f'<span class="tag">cap {_e(cap.get("cap_to"))}: {_e(cap.get("type"))}</span>')
    reason = data.get("judge_reason") or data.get("overall_summary") or rec.reason or data.get("result")
    parts.append(f"<pre>{_e(reason) if reason else 'no reason recorded'}</pre>")
    categories = data.get("category_scores")
    if isinstance(categories, dict) and categories and data.get("status") != "render_failed":
        rows = [
            [cid, c.get("score_0_to_5"), c.get("weight"), c.get("rationale")] for cid, c in categories.items()
        ]
        parts.append(_table(["category", "score", "weight", "rationale"], rows))
    return "".join(parts)


def _failure_reasons(records: dict[str, dict[str, ItemRecord]]) -> str:
    reasons: Counter[tuple[str, str, str]] = Counter()
    for stage_records in records.values():
        for rec in stage_records.values():
            if rec.status != "ok" or (rec.score is None and rec.reason):
                reasons[
                    (rec.stage, rec.status, (rec.reason or "").splitlines()[0][:160] if rec.reason else "")
                ] += 1
    if not reasons:
        return '<p class="none">No failed or skipped items.</p>'
    rows = [[stage, status, reason, n] for (stage, status, reason), n in reasons.most_common(40)]
    return _table(["stage", "status", "reason", "items"], rows)


def render_html(
    summary: dict[str, Any],
    items: list[dict[str, Any]],
    records: dict[str, dict[str, ItemRecord]],
    plan: Plan,
    store: Store,
    extremes: int = EXTREMES,
) -> str:
    benchmark = plan.benchmark
    title = get_benchmark(benchmark).title or benchmark
    run = summary.get("run") or {}
    headline = summary.get("headline")
    score_items = list((summary.get("scores") or {}).items())
    score_items.sort(key=lambda kv: kv[0] != headline)
    score_rows = [[k, v] for k, v in score_items]
    counts = summary.get("counts") or {}
    stages = [
        [s["name"], s["total"], s["succeeded"], s["failed"], s["skipped"], s.get("skip_reason") or ""]
        for s in summary.get("stages", [])
    ]
    rows = item_scores(benchmark, items, records, [s.name for s in plan.active_stages])
    by_id = {item["id"]: item for item in items}
    scored = [r for r in rows if r["score"] is not None]
    low, high = SCORE_RANGES.get(benchmark, (None, None))
    values = [r["score"] for r in scored]
    if low is None:
        low, high = (min(values), max(values)) if values else (0.0, 1.0)
    ranked = sorted(scored, key=lambda r: (r["score"], r["id"]))
    lowest = ranked[:extremes]
    highest = list(reversed(ranked[-extremes:])) if len(ranked) > extremes else []
    ev = _Evidence(store)

    def item_block(row: dict[str, Any]) -> str:
        item = by_id[row["id"]]
        return (
            f'<div class="item"><div class="shots">{_visuals(benchmark, item, records, ev)}</div>'
            f'<div class="why"><h3>{_e(row["id"])}</h3><div>'
            f'<span class="score">{_e(_fmt(row["score"]))}</span> '
            f'<span class="tag">{_e(row["category"])}</span>'
            f"</div>{_explanation(item, row, records)}</div></div>"
        )

    sections = [
        f"<h1>{_e(run.get('name', 'run'))} — {_e(title)}</h1>",
        f'<p class="meta">Phase <b>{_e(summary.get("phase"))}</b> · {_e(summary.get("items"))} items · '
        f"store prefix <code>{_e(plan.run_prefix)}</code> · finished {_e(summary.get('finished_at'))}</p>",
        "<h2>Scores</h2>",
        _table(["metric", "value"], score_rows, 0 if headline and score_rows else None)
        if score_rows
        else '<p class="none">No scores yet.</p>',
        _table(["count", "value"], [[k, v] for k, v in counts.items() if not isinstance(v, dict | list)])
        if counts
        else "",
        "<h2>Stages</h2>",
        _table(["stage", "total", "ok", "failed", "skipped", "note"], stages),
    ]
    for title_, key in (("Notices", "notices"), ("Warnings", "warnings")):
        if summary.get(key):
            sections.append(
                f"<h2>{title_}</h2><ul>" + "".join(f"<li>{_e(w)}</li>" for w in summary[key]) + "</ul>"
            )
    sections += [
        "<h2>Per category</h2>",
        _breakdown_tables(summary.get("breakdowns") or {}),
        "<h2>Score distribution</h2>",
        histogram_svg(values, low, high),
        "<h2>Failure reasons</h2>",
        _failure_reasons(records),
        f"<h2>Lowest-scored items ({len(lowest)})</h2>",
        "".join(item_block(r) for r in lowest) or '<p class="none">No scored items.</p>',
    ]
    if highest:
        sections += [
            f"<h2>Highest-scored items ({len(highest)})</h2>",
            "".join(item_block(r) for r in highest),
        ]
    body = "\n".join(sections)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(run.get('name', 'run'))} — {_e(title)}</title><style>{_CSS}</style></head>"
        f"<body>\n{body}\n</body></html>\n"
    )


def write_html_report(
    store: Store,
    plan: Plan,
    summary: dict[str, Any],
    items: list[dict[str, Any]],
    records: dict[str, dict[str, ItemRecord]],
) -> str:
    """Write `report.html` for the run; a report that cannot be drawn says why instead of failing the run."""
    try:
        page = render_html(summary, items, records, plan, store)
    except Exception as exc:  # the summary and exports matter more than the page
        import traceback

        page = (
            "<!DOCTYPE html><html><head><meta charset='utf-8'><title>report unavailable</title></head><body>"
            f"<h1>The HTML report could not be drawn</h1><pre>{_e(traceback.format_exc())}</pre>"
            f"<p>{_e(type(exc).__name__)}: {_e(exc)}. See report.md and summary.json.</p></body></html>"
        )
    store.put_text(plan.layout.report_html, page, "text/html; charset=utf-8")
    return plan.layout.report_html

"""`report.html`: one self-contained page per run (no external requests).

Sections: the headline table (every score, the headline first), the stages, the per-category
tables from the benchmark's breakdowns, a score-distribution histogram drawn as inline SVG, the
failures (items that failed, by reason) apart from the notes (remarks on items evaluated all the
same), and every item of the run — score, category, outcome, failure and notes, the judge's reason,
and its visual evidence (screenshots, or reference and candidate images) — with a filter by text,
category and failed-only and a sort by score.

Thumbnails are embedded as data URLs (at most THUMB_WIDTH px wide, the top THUMB_MAX_HEIGHT px of
a tall page; one per item past MANY_ITEMS items, the other screenshots as links), so the page
shows everything without the store; each links to the full-size image
in the store (a path relative to the report, so it works in a filesystem store, a downloaded copy of
the store, or beside a copy written with `export_html`). The one inline script (filtering) is
allowed by its hash in the page's Content-Security-Policy, which also forbids every other script and
every request except data URLs: text from answers and judges can never run or fetch anything.
"""

from __future__ import annotations

import base64
import hashlib
import html
import io
import math
import posixpath
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from proctor.plan import Plan
from proctor.report_items import OUTCOMES, item_rows, reason_counts
from proctor_jobs.benchmarks import get_benchmark
from proctor_jobs.records import ItemRecord
from proctor_jobs.scoring.items import SCORE_RANGES
from proctor_jobs.store import Store

THUMB_WIDTH = 400
THUMB_MAX_HEIGHT = 600
MANY_ITEMS = 300  # beyond this many items, one thumbnail per item (the other screenshots as links)

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1280px;
color:#1d232a;padding:0 1rem;line-height:1.45}
h1{font-size:1.6rem;margin-bottom:.2rem}
h2{margin-top:2.2rem;border-bottom:1px solid #d8dde3;padding-bottom:.2rem}
h3{margin:.2rem 0;word-break:break-all}.meta{color:#5b6570;font-size:.92rem}
table{border-collapse:collapse;margin:.6rem 0 1rem;font-size:.92rem}
th,td{border:1px solid #d8dde3;padding:.25rem .6rem;text-align:left;vertical-align:top}
th{background:#f3f5f7}td.num{text-align:right;font-variant-numeric:tabular-nums}
td.reason{white-space:pre-wrap;word-break:break-word;max-width:60rem}
tr.headline td{font-weight:700;background:#fff8e1}
#filters{position:sticky;top:0;background:#fff;padding:.5rem 0;border-bottom:1px solid #d8dde3;z-index:1;
display:flex;gap:.8rem;flex-wrap:wrap;align-items:center}
#filters input[type=search]{flex:1 1 20rem;padding:.3rem .5rem;font-size:.95rem}
#shown{color:#5b6570;font-size:.9rem}
.item{border:1px solid #d8dde3;border-radius:6px;padding:.8rem;margin:.8rem 0;display:flex;gap:1rem}
.item[hidden]{display:none}
.item.failed{border-left:5px solid #c0392b}
.item .shots{flex:0 0 42%;display:flex;flex-wrap:wrap;gap:.4rem;align-content:flex-start;min-width:0}
.item .shots img{width:100%;border:1px solid #c9d0d6;display:block}
.item .shots a:hover img{outline:2px solid #4a7fb5}
.item .shots figure{margin:0;flex:1 1 30%;min-width:150px;max-width:49%}.item .shots details{width:100%}
.item figcaption{font-size:.8rem;color:#5b6570}
.item .why{flex:1;min-width:0;overflow-x:auto}
.item pre{white-space:pre-wrap;word-break:break-word;background:#f7f8fa;
padding:.5rem;border-radius:4px;font-size:.85rem;max-height:28rem;overflow:auto}
.item .failure pre{background:#fdecea;border-left:3px solid #c0392b}
.item ul.notes{margin:.3rem 0;padding-left:1.2rem;color:#5b6570;font-size:.88rem}
.score{font-size:1.3rem;font-weight:700}.tag{display:inline-block;background:#eef1f4;border-radius:3px;
padding:0 .4rem;margin-right:.3rem;font-size:.8rem}.none{color:#8a939c;font-style:italic}
.outcome-failed{background:#fdecea;color:#8e2418}.outcome-passed{background:#e6f4ea;color:#1e6b34}
"""

# Filtering and sorting; runs only as the page's own script (its hash is in the CSP).
_SCRIPT = """
(function () {
  var list = document.getElementById('items-list');
  if (!list) return;
  var cards = Array.prototype.slice.call(list.children);
  var q = document.getElementById('q'), cat = document.getElementById('cat');
  var failed = document.getElementById('failed-only'), sort = document.getElementById('sort');
  var shown = document.getElementById('shown');
  function apply() {
    var terms = q.value.toLowerCase().split(/\\s+/).filter(Boolean), n = 0;
    cards.forEach(function (card) {
      var text = card.getAttribute('data-search');
      var keep = terms.every(function (t) { return text.indexOf(t) >= 0; }) &&
        (!cat.value || card.getAttribute('data-category') === cat.value) &&
        (!failed.checked || card.getAttribute('data-outcome') === 'failed');
      card.hidden = !keep;
      if (keep) n++;
    });
    shown.textContent = n + ' of ' + cards.length + ' items shown';
  }
  function order() {
    var how = sort.value, sorted = cards.slice();
    if (how) {
      sorted.sort(function (a, b) {
        var x = parseFloat(a.getAttribute('data-score')), y = parseFloat(b.getAttribute('data-score'));
        if (isNaN(x) || isNaN(y)) return isNaN(x) - isNaN(y);
        return how === 'asc' ? x - y : y - x;
      });
    }
    sorted.forEach(function (card) { list.appendChild(card); });
  }
  q.addEventListener('input', apply);
  cat.addEventListener('change', apply);
  failed.addEventListener('change', apply);
  sort.addEventListener('change', order);
  Array.prototype.forEach.call(document.querySelectorAll('a.pick'), function (a) {
    a.addEventListener('click', function () {
      q.value = a.getAttribute('data-pick').toLowerCase();
      failed.checked = a.getAttribute('data-failed') === '1';
      cat.value = '';
      apply();
    });
  });
  apply();
})();
"""
_SCRIPT_HASH = base64.b64encode(hashlib.sha256(_SCRIPT.encode()).digest()).decode("ascii")
CSP = (
    "default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
    f"script-src 'sha256-{_SCRIPT_HASH}'; base-uri 'none'; form-action 'none'"
)


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "—"
        return f"{value:.4g}" if abs(value) < 1000 else f"{value:.1f}"
    return "—" if value is None else str(value)


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


def _thumbnail(data: bytes) -> tuple[str, tuple[int, int]] | None:
    """(data URL of the image shrunk to THUMB_WIDTH and cut at THUMB_MAX_HEIGHT, original size), or
    None when the bytes are not an image."""
    try:
        from PIL import Image

        with Image.open(io.BytesIO(data)) as image:
            image.load()
            size = image.size
            image = image.convert("RGB")
            if image.width > THUMB_WIDTH:
                scale = THUMB_WIDTH / image.width
                image = image.resize((THUMB_WIDTH, max(1, round(image.height * scale))))
            if image.height > THUMB_MAX_HEIGHT:
                image = image.crop((0, 0, image.width, THUMB_MAX_HEIGHT))
            out = io.BytesIO()
            image.save(out, format="JPEG", quality=75, optimize=True)
    except Exception:
        return None
    return "data:image/jpeg;base64," + base64.b64encode(out.getvalue()).decode("ascii"), size


def relative_link(report_key: str) -> Callable[[str], str]:
    """Links from the report at `report_key` to other keys of the same store, as relative URLs."""
    base = posixpath.dirname(report_key)
    return lambda key: quote(posixpath.relpath(key, base or "."))


class _Evidence:
    """Loads images for the report, tolerating missing or broken evidence."""

    def __init__(self, store: Store, link: Callable[[str], str | None]) -> None:
        self.store = store
        self.link = link

    def image(self, key: str | None) -> tuple[str, tuple[int, int], str | None] | None:
        """(thumbnail data URL, full size, link to the full-size image) or None."""
        if not key:
            return None
        try:
            thumb = _thumbnail(self.store.get_bytes(key))
        except Exception:
            return None
        if thumb is None:
            return None
        try:
            link = self.link(key)
        except Exception:
            link = None
        return thumb[0], thumb[1], link

    def inline(self, b64: str | None) -> tuple[str, tuple[int, int], str | None] | None:
        if not b64:
            return None
        try:
            thumb = _thumbnail(base64.b64decode(b64.split(",", 1)[-1]))
        except Exception:
            return None
        return (thumb[0], thumb[1], None) if thumb else None


def _figure(image: tuple[str, tuple[int, int], str | None] | None, caption: str) -> str:
    if image is None:
        return f'<p class="none">{_e(caption)}: image unavailable</p>'
    data_url, (width, height), link = image
    label = f"{caption} ({width}×{height})"
    img = f'<img src="{data_url}" alt="{_e(caption)}" title="{_e(label)}">'
    if link:
        img = f'<a class="full" href="{_e(link)}" target="_blank" rel="noopener">{img}</a>'
        label += " — open full size"
    return f"<figure>{img}<figcaption>{_e(label)}</figcaption></figure>"


def _visuals(
    benchmark: str,
    item: dict[str, Any],
    records: dict[str, dict[str, ItemRecord]],
    ev: _Evidence,
    thumbs: int | None = None,
) -> str:
    """The item's images as linked thumbnails; past `thumbs` screenshots, links only."""
    render = records.get("render", {}).get(item["id"])
    if benchmark == "vision2code":
        ref_key = item.get("reference_key")
        reference = ev.image(ref_key) if ref_key else ev.inline(item.get("reference_image"))
        if reference is None and ref_key:
            reference = ev.inline(item.get("reference_image"))
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
        if not code:
            return '<p class="none">no answer text</p>'
        return f"<details><summary>program evaluated</summary><pre>{_e(code)}</pre></details>"
    keys: list[str] = []
    if render is not None:
        keys = list(render.data.get("screenshots") or [])
        if not keys:
            keys = [v for k, v in sorted(render.evidence.items()) if k.startswith("screenshot")]
    if not keys:
        return (
            '<p class="none">no screenshots (see the failure or notes)</p>'
            if render
            else ('<p class="none">no render record</p>')
        )
    shown = keys if thumbs is None else keys[:thumbs]
    parts = [_figure(ev.image(key), f"screenshot {i + 1}") for i, key in enumerate(shown)]
    links = []
    for i, key in enumerate(keys[len(shown) :], start=len(shown)):
        try:
            href = ev.link(key)
        except Exception:
            href = None
        if href:
            links.append(
                f'<a class="full" href="{_e(href)}" target="_blank" rel="noopener">screenshot {i + 1}</a>'
            )
    if links:
        parts.append(f'<p class="meta">full size: {" · ".join(links)}</p>')
    return "".join(parts)


def _explanation(row: dict[str, Any], records: dict[str, dict[str, ItemRecord]]) -> str:
    parts = []
    if row["failures"]:
        parts.append(
            '<div class="failure"><b>Failure</b>'
            + "".join(f"<pre>{_e(reason)}</pre>" for reason in row["failures"])
            + "</div>"
        )
    if row["notes"]:
        parts.append(
            '<div><b>Notes</b><ul class="notes">'
            + "".join(f"<li>{_e(note)}</li>" for note in row["notes"])
            + "</ul></div>"
        )
    rec = records.get(row.get("stage") or "", {}).get(row["id"])
    if rec is None:
        return "".join(parts) or '<p class="none">No record.</p>'
    data = rec.data
    tags = [f'<span class="tag">{_e(rec.stage)}: {_e(rec.status)}</span>'] if rec.status != "ok" else []
    if data.get("text_only"):
        tags.append(f'<span class="tag">judged on text only: {_e(data.get("text_only_reason"))}</span>')
    for cap in [c for c in data.get("applied_caps") or [] if c.get("changed_final_rating")]:
        tags.append(f'<span class="tag">cap {_e(cap.get("cap_to"))}: {_e(cap.get("type"))}</span>')
    if tags:
        parts.append("<div>" + "".join(tags) + "</div>")
    if row["explanation"]:
        parts.append(f"<pre>{_e(row['explanation'])}</pre>")
    elif not row["failures"] and not row["notes"]:
        reason = rec.reason or data.get("result")
        parts.append(f"<pre>{_e(reason) if reason else 'no reason recorded'}</pre>")
    categories = data.get("category_scores")
    if isinstance(categories, dict) and categories and data.get("status") != "render_failed":
        rows = [
            [cid, c.get("score_0_to_5"), c.get("weight"), c.get("rationale")] for cid, c in categories.items()
        ]
        parts.append(
            "<details><summary>rubric scores</summary>"
            + _table(["category", "score", "weight", "rationale"], rows)
            + "</details>"
        )
    return "".join(parts)


def _reasons_table(counts: list[tuple[str, int]], failed: bool, what: str) -> str:
    if not counts:
        return f'<p class="none">No {what}.</p>'
    body = "".join(
        f'<tr><td class="reason"><a class="pick" href="#items" data-pick="{_e(reason)}" '
        f'data-failed="{1 if failed else 0}">{_e(reason)}</a></td><td class="num">{n}</td></tr>'
        for reason, n in counts
    )
    return f"<table><thead><tr><th>reason</th><th>items</th></tr></thead><tbody>{body}</tbody></table>"


def _item_card(row: dict[str, Any], visuals: str, explanation: str, show_category: bool = True) -> str:
    score = row["score"]
    search = " ".join(
        [str(row["id"]), str(row["category"]), row["outcome"], *row["failures"], *row["notes"]]
    ).lower()
    cls = "item failed" if row["outcome"] == "failed" else "item"
    category = f'<span class="tag">{_e(row["category"])}</span>' if show_category else ""
    outcome = row["outcome"]
    return (
        f'<div class="{cls}" id="item-{_e(row["id"])}" data-id="{_e(row["id"])}" '
        f'data-category="{_e(row["category"])}" data-outcome="{_e(outcome)}" '
        f'data-score="{"" if score is None else score}" data-search="{_e(search)}">'
        f'<div class="shots">{visuals}</div>'
        f'<div class="why"><h3>{_e(row["id"])}</h3><div>'
        f'<span class="score">{_e(_fmt(score))}</span> {category}'
        f'<span class="tag outcome-{_e(outcome.replace(" ", "-"))}">{_e(outcome)}</span>'
        f"</div>{explanation}</div></div>"
    )


def _filters(categories: list[str], total: int) -> str:
    options = "".join(f'<option value="{_e(c)}">{_e(c)}</option>' for c in categories)
    hidden = "" if len(categories) > 1 else " hidden"  # one category: nothing to choose
    return (
        '<div id="filters">'
        '<input type="search" id="q" placeholder="filter: id, category, reason…" aria-label="filter items">'
        f'<select id="cat" aria-label="category"{hidden}><option value="">every category</option>'
        f"{options}</select>"
        '<label><input type="checkbox" id="failed-only"> failed only</label>'
        '<select id="sort" aria-label="order"><option value="">item order</option>'
        '<option value="asc">score, lowest first</option><option value="desc">score, highest first</option>'
        f'</select><span id="shown">{total} items</span></div>'
    )


def render_html(
    summary: dict[str, Any],
    items: list[dict[str, Any]],
    records: dict[str, dict[str, ItemRecord]],
    plan: Plan,
    store: Store,
    link: Callable[[str], str | None] | None = None,
) -> str:
    """The page; `link` maps a store key to the URL of the full-size image (default: relative to
    where the report sits in the store)."""
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
    rows = item_rows(benchmark, items, records, [s.name for s in plan.active_stages])
    by_id = {item["id"]: item for item in items}
    values = [r["score"] for r in rows if r["score"] is not None]
    low, high = SCORE_RANGES.get(benchmark, (None, None))
    if low is None:
        low, high = (min(values), max(values)) if values else (0.0, 1.0)
    ev = _Evidence(store, link or relative_link(plan.layout.report_html))
    # A large run keeps one thumbnail per item (the others are links), so the page stays mailable.
    thumbs = None if len(rows) <= MANY_ITEMS else 1
    failed = [r for r in rows if r["outcome"] == "failed"]
    categories = sorted({str(r["category"]) for r in rows})
    outcomes = Counter(r["outcome"] for r in rows)

    sections = [
        f"<h1>{_e(run.get('name', 'run'))} — {_e(title)}</h1>",
        f'<p class="meta">Phase <b>{_e(summary.get("phase"))}</b> · {_e(summary.get("items"))} items · '
        f"store prefix <code>{_e(plan.run_prefix)}</code> · finished {_e(summary.get('finished_at'))}</p>",
        *(
            [f'<p class="failure">{_e(run["reason"])}: {_e(run.get("message", ""))}</p>']
            if run.get("reason")
            else []
        ),
        "<h2>Scores</h2>",
        _table(["metric", "value"], score_rows, 0 if headline and score_rows else None)
        if score_rows
        else '<p class="none">No scores yet.</p>',
        _table(["count", "value"], [[k, v] for k, v in counts.items() if not isinstance(v, dict | list)])
        if counts
        else "",
        "<h2>Stages</h2>",
        _table(["stage", "total", "ok", "failed", "skipped", "note"], stages),
        _cost_section(summary),
    ]
    if summary.get("judges"):
        from proctor.report_judges import judges_html

        sections.insert(-2, judges_html(summary["judges"]))
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
        f'<h2 id="failures">Failures ({len(failed)} of {len(rows)} items)</h2>',
        _reasons_table(reason_counts(rows, "failures"), True, "failed items"),
        '<h2 id="notes">Notes</h2>',
        '<p class="meta">Remarks on items that were evaluated all the same.</p>',
        _reasons_table(reason_counts(rows, "notes"), False, "notes"),
        f'<h2 id="items">Items ({len(rows)})</h2>',
        '<p class="meta">'
        + " · ".join(f"{outcomes[o]} {_e(o)}" for o in OUTCOMES if outcomes[o])
        + " · click a thumbnail for the full-size image</p>",
        _filters(categories, len(rows)),
        '<div id="items-list">'
        + "".join(
            _item_card(
                r,
                _visuals(benchmark, by_id[r["id"]], records, ev, thumbs),
                _explanation(r, records),
                show_category=len(categories) > 1,
            )
            for r in rows
        )
        + "</div>",
    ]
    body = "\n".join(sections)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(run.get('name', 'run'))} — {_e(title)}</title><style>{_CSS}</style></head>"
        f"<body>\n{body}\n<script>{_SCRIPT}</script>\n</body></html>\n"
    )


def _cost_section(summary: dict[str, Any]) -> str:
    """What the run cost per stage, and the estimate made before it beside the actual."""
    from proctor.cost import status_cost

    if not summary.get("cost"):
        return ""
    rows = [
        [
            r["name"],
            r["items"],
            r["calls"],
            r["promptTokens"],
            r["completionTokens"],
            r["estimatedTokens"],
            r["images"],
            r["judgeSeconds"],
            r["cpuSeconds"],
            r["wallSeconds"],
            r["bytesWritten"],
        ]
        for r in status_cost(summary["cost"], final=True)["stages"]
    ]
    headers = [
        "stage",
        "items",
        "model calls",
        "prompt tokens",
        "completion tokens",
        "tokens estimated (no usage)",
        "images",
        "model seconds",
        "worker CPU s",
        "worker wall s",
        "bytes written",
    ]
    html = "<h2>Cost</h2>" + _table(headers, rows)
    beside = (summary.get("estimate") or {}).get("beside_actual") or {}
    if beside:
        keys = ("calls", "prompt_tokens", "completion_tokens", "images", "prompt_tokens_per_call")
        estimate_rows = [
            [name, *(" → ".join(f"{v:,}" for v in side[k].values()) for k in keys)]
            for name, side in beside.items()
        ]
        html += (
            "<p>Estimated before the run (one call per item) → once the renders were known → actual:</p>"
        ) + _table(
            ["stage", "calls", "prompt tokens", "completion tokens", "images", "prompt tokens per call"],
            estimate_rows,
        )
    return html


def _unavailable() -> str:
    import sys
    import traceback

    exc = sys.exc_info()[1]
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>report unavailable</title></head><body>"
        f"<h1>The HTML report could not be drawn</h1><pre>{_e(traceback.format_exc())}</pre>"
        f"<p>{_e(type(exc).__name__)}: {_e(exc)}. See report.md and summary.json.</p></body></html>"
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
    except Exception:  # the summary and exports matter more than the page
        page = _unavailable()
    store.put_text(plan.layout.report_html, page, "text/html; charset=utf-8")
    return plan.layout.report_html


def export_html(
    store: Store,
    plan: Plan,
    summary: dict[str, Any],
    items: list[dict[str, Any]],
    records: dict[str, dict[str, ItemRecord]],
    path: Path,
) -> Path:
    """Write the report to a local file, with the full-size images its thumbnails link to copied into
    the folder `<name>_files/` beside it (so the copy works without the store). Returns that folder."""
    path = Path(path)
    folder = path.with_name(path.stem + "_files")
    copied: dict[str, str] = {}

    def link(key: str) -> str:
        if key not in copied:
            name = f"{len(copied):04d}-{posixpath.basename(key)}"
            store.get_file(key, folder / name)
            copied[key] = f"{folder.name}/{name}"
        return quote(copied[key])

    try:
        page = render_html(summary, items, records, plan, store, link=link)
    except Exception:
        page = _unavailable()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return folder

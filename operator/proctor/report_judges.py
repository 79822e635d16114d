"""The judges section of report.md and report.html: each judge's scores, the aggregate, and how well
the judges agree with each other (and with human ratings) — Pearson, Spearman and Kendall's tau-b,
each with its bootstrap 95% interval, pooled and per group."""

from __future__ import annotations

import html
from typing import Any

STATS = (("pearson", "Pearson"), ("spearman", "Spearman"), ("kendall_tau_b", "Kendall τb"))


def _num(value: Any) -> str:
    return "—" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)


def stat_cell(row: dict[str, Any], name: str) -> str:
    value, (low, high) = row.get(name), (row.get(f"{name}_ci") or [None, None])
    if value is None:
        return "—"
    return f"{value:.3f}" + (f" [{low:.3f}, {high:.3f}]" if low is not None and high is not None else "")


def _agreement_rows(panel: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(pair, group, figures): pooled first, then each group, for judge pairs then human ratings."""
    rows = []
    pairs = [(f"{r['a']} ~ {r['b']}", r) for r in panel.get("agreement", [])]
    pairs += [(f"{r['judge']} ~ human", r) for r in panel.get("human", [])]
    for label, row in pairs:
        rows.append((label, "all", row))
        rows += [(label, group, figures) for group, figures in (row.get("by_group") or {}).items()]
    return rows


def _score_rows(panel: dict[str, Any]) -> tuple[list[str], list[tuple[str, dict[str, Any]]]]:
    judges = list(panel.get("judges", {}).items())
    if panel.get("aggregate"):
        judges.append((f"{panel['aggregate']['method']} (aggregate)", panel["aggregate"]))
    metrics: list[str] = []
    for _, judge in judges:
        metrics += [m for m in judge.get("scores", {}) if m not in metrics]
    return metrics, judges


def judges_markdown(panel: dict[str, Any]) -> list[str]:
    metrics, judges = _score_rows(panel)
    lines = ["## Judges", "", "| metric | " + " | ".join(name for name, _ in judges) + " |"]
    lines.append("|---|" + "---|" * len(judges))
    for metric in metrics:
        lines.append(f"| {metric} | " + " | ".join(_num(j["scores"].get(metric)) for _, j in judges) + " |")
    rows = _agreement_rows(panel)
    if rows:
        lines += [
            "",
            f"### Agreement ({panel.get('bootstrap')} bootstrap resamples, seed {panel.get('seed')}; "
            "95% intervals)",
            "",
            "| judges | group | n | " + " | ".join(title for _, title in STATS) + " |",
            "|---|---|---|" + "---|" * len(STATS),
        ]
        for label, group, row in rows:
            stats = " | ".join(stat_cell(row, name) for name, _ in STATS)
            lines.append(f"| {label} | {group.replace('|', '/')} | {row.get('n', 0)} | {stats} |")
    return lines


def judges_html(panel: dict[str, Any]) -> str:
    e = html.escape
    metrics, judges = _score_rows(panel)
    head = "".join(f"<th>{e(name)}</th>" for name, _ in judges)
    body = "".join(
        f"<tr><td>{e(metric)}</td>"
        + "".join(f'<td class="num">{e(_num(j["scores"].get(metric)))}</td>' for _, j in judges)
        + "</tr>"
        for metric in metrics
    )
    out = f'<section id="judges"><h2>Judges</h2><table><tr><th>metric</th>{head}</tr>{body}</table>'
    rows = _agreement_rows(panel)
    if rows:
        titles = "".join(f"<th>{e(t)}</th>" for _, t in STATS)
        cells = "".join(
            f'<tr><td>{e(label)}</td><td>{e(group)}</td><td class="num">{row.get("n", 0)}</td>'
            + "".join(f'<td class="num">{e(stat_cell(row, name))}</td>' for name, _ in STATS)
            + "</tr>"
            for label, group, row in rows
        )
        out += (
            f"<h3>Agreement ({panel.get('bootstrap')} bootstrap resamples; 95% intervals)</h3>"
            f"<table><tr><th>judges</th><th>group</th><th>n</th>{titles}</tr>{cells}</table>"
        )
    return out + "</section>"

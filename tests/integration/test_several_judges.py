"""Several judges on one local run (`proctor run`): two judge doubles, one biased and one noisy, judge
the same Vision2Code renders; summary.json and report.md show each judge's scores, the aggregate,
and their agreement with bootstrap intervals; a judge added to the finished run judges only.

The renders are real (matplotlib in the sandbox) on a handful of the example's tasks; the judges
are the test double (tests/doubles/judge_server.py) in its `bias` and `noise` modes.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "examples/vision2code/data"
#: four that render (the judges are asked) and two that do not (rated 0 by the benchmark, no judge call)
TASKS = (
    "ChartQA_test_000509_2ac3907c97d2",
    "matplotlib_bar_0001",
    "geometry3k_0001",
    "chemvqa_0001",
    "dvqa_pie_0001",
    "figureqa_line_0001",
)
JUDGED = 4


def _subset(tmp: Path) -> None:
    (tmp / "images").mkdir(parents=True)
    for name, keep in (("tasks.jsonl", True), ("answers.jsonl", False)):
        rows = [json.loads(line) for line in (DATA / name).read_text().splitlines() if line.strip()]
        rows = [r for r in rows if r.get("question_folder") in TASKS]
        (tmp / name).write_text("".join(json.dumps(r) + "\n" for r in rows))
        if keep:
            for r in rows:
                shutil.copy(DATA / r["image_path"], tmp / r["image_path"])


def manifest(
    tmp: Path, judges: list[tuple[str, str]], aggregate: str | None = None, human: bool = False
) -> Path:
    (first_name, first_url), *others = judges
    lines = [
        "apiVersion: proctor.dev/v1alpha1",
        "kind: EvalRun",
        "metadata: {name: panel}",
        "spec:",
        "  benchmark: {format: vision2code, source: {file: {path: tasks.jsonl}}}",
        "  answers: {format: vision2code, source: {file: {path: answers.jsonl}}}",
        "  render: {concurrency: 3}",
        "  sharding: {shardSize: 6}",
        f"  judge: {{name: {first_name}, url: '{first_url}', backoffSeconds: 0.05}}",
    ]
    if others:
        lines.append("  additionalJudges:")
        lines += [f"  - {{name: {n}, url: '{u}', backoffSeconds: 0.05, concurrency: 2}}" for n, u in others]
    if aggregate:
        lines.append(f"  judgeAggregate: {aggregate}")
    if human:
        lines.append("  humanRatings: {source: {file: {path: human.jsonl}}, ratingField: score}")
    path = tmp / "evalrun.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def proctor_run(path: Path, store: Path) -> dict:
    argv = [
        sys.executable,
        "-m",
        "proctor",
        "run",
        str(path),
        "--store",
        str(store),
        "--json",
        "--quiet",
        "--workers",
        "2",
    ]
    done = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_two_judges_show_their_scores_and_agreement_and_a_third_judges_only(tmp_path, judge_double_process):
    biased = judge_double_process(bias=0.2)  # +1 rating point on the 0-5 scale, clipped
    noisy = judge_double_process(noise=0.15, seed=7)
    _subset(tmp_path)
    store = tmp_path / "store"
    first = proctor_run(manifest(tmp_path, [("bias", biased.url), ("noise", noisy.url)], "median"), store)
    assert first["phase"] == "Succeeded"
    assert first["stages"]["render"]["processed"] == len(TASKS)
    assert first["stages"]["judge"]["processed"] == first["stages"]["judge-noise"]["processed"] == len(TASKS)

    summary = json.loads(next(store.rglob("summary.json")).read_text())
    panel = summary["judges"]
    bias, noise = panel["judges"]["bias"], panel["judges"]["noise"]
    headline = bias["headline"]
    # The biased judge rates higher than the noisy one on the same renders; both were asked for every item.
    assert bias["score"] > noise["score"]
    assert bias["counts"]["rated"] == noise["counts"]["rated"] == len(TASKS)
    # The run's own score is the judges' per-item median, through the benchmark's own aggregation.
    assert panel["aggregate"]["method"] == "median"
    assert summary["scores"][headline] == panel["aggregate"]["score"]
    assert (
        min(bias["score"], noise["score"])
        <= panel["aggregate"]["score"]
        <= max(bias["score"], noise["score"])
    )
    [pair] = panel["agreement"]
    assert (pair["a"], pair["b"], pair["n"]) == ("bias", "noise", len(TASKS))
    for stat in ("pearson", "spearman", "kendall_tau_b"):
        low, high = pair[f"{stat}_ci"]
        assert low <= pair[stat] <= high
    assert pair["pearson"] > 0.5  # both see the same renders: they agree, not perfectly
    report = next(store.rglob("report.md")).read_text()
    assert "## Judges" in report and "| bias ~ noise | all | 6 |" in report
    assert f"{pair['pearson']:.3f} [{pair['pearson_ci'][0]:.3f}, {pair['pearson_ci'][1]:.3f}]" in report
    assert "Agreement" in next(store.rglob("report.html")).read_text()
    # Each judge's leaderboard file in the original's format, from its own ratings.
    exports = next(store.rglob("summary.json")).parent / "exports"
    own = json.loads(next(exports.glob("benchmark_eval__*.json")).read_text())
    theirs = json.loads(next((exports / "judges/noise").glob("benchmark_eval__*.json")).read_text())
    assert len(own["rows"]) == len(theirs["rows"]) == len(TASKS)
    ratings = [[row["rating_final_0_to_5"] for row in f["rows"]] for f in (own, theirs)]
    assert ratings[0] != ratings[1] and sum(ratings[0]) > sum(ratings[1])  # the biased judge's are higher

    # A third judge (and human ratings) added to the finished run: renders and both judges are reused.
    third = judge_double_process()
    items = [row["id"] for row in _items(store)]
    (tmp_path / "human.jsonl").write_text(
        "".join(json.dumps({"id": i, "score": n % 5}) + "\n" for n, i in enumerate(items))
    )

    def judged(double) -> int:  # chat completions with images: items judged (not the one-token preflight)
        return sum(1 for request in double.log() if request.get("images"))

    before = judged(biased), judged(noisy)
    assert before == (JUDGED, JUDGED)
    path = manifest(
        tmp_path, [("bias", biased.url), ("noise", noisy.url), ("plain", third.url)], "median", True
    )
    second = proctor_run(path, store)
    assert second["run_prefix"] == first["run_prefix"]
    assert second["stages"]["render"] == {"processed": 0, "reused": len(TASKS), "failed": 0}
    assert second["stages"]["judge"]["processed"] == second["stages"]["judge-noise"]["processed"] == 0
    assert second["stages"]["judge-plain"]["processed"] == len(TASKS)
    assert (judged(biased), judged(noisy)) == before
    assert judged(third) == JUDGED
    summary = json.loads(next(store.rglob("summary.json")).read_text())
    assert len(summary["judges"]["agreement"]) == 3
    assert [h["judge"] for h in summary["judges"]["human"]] == ["bias", "noise", "plain"]
    assert all(h["n"] == len(TASKS) for h in summary["judges"]["human"])


def _items(store: Path) -> list[dict]:
    return [json.loads(line) for line in next(store.rglob("items.jsonl")).read_text().splitlines()]

"""Several judges on one run, on the real control plane: two judge doubles (one biased, one noisy —
tests/doubles/judge_server.py) judge the same Vision2Code renders in Jobs of their own; the EvalRun's
status, summary.json and Prometheus show each judge's scores and their agreement; a judge added to
the finished run judges only (no render Job again, the other judges asked nothing more).

Kept small: four tasks that render (matplotlib, in the sandbox) and one that does not.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.e2e.conftest import wait_for

pytestmark = pytest.mark.e2e
DATA = Path(__file__).resolve().parents[2] / "examples" / "vision2code" / "data"
TASKS = (
    "ChartQA_test_000509_2ac3907c97d2",
    "matplotlib_bar_0001",
    "geometry3k_0001",
    "chemvqa_0001",
    "dvqa_pie_0001",
)
JUDGED = 4  # the fifth does not render: the benchmark rates it 0 without asking a judge


def inline_records(tmp: Path) -> tuple[list[dict], list[dict]]:
    from proctor.inputs import read_local_records

    (tmp / "images").mkdir(parents=True)
    out = []
    for name in ("tasks.jsonl", "answers.jsonl"):
        rows = [json.loads(line) for line in (DATA / name).read_text().splitlines() if line.strip()]
        rows = [r for r in rows if r.get("question_folder") in TASKS]
        for r in rows:
            if r.get("image_path"):
                shutil.copy(DATA / r["image_path"], tmp / r["image_path"])
        (tmp / name).write_text("".join(json.dumps(r) + "\n" for r in rows))
        out.append([dict(r) for r in read_local_records(tmp / name)])  # reference images inlined
    return out[0], out[1]


def images_judged(double) -> int:
    """Vision2Code ratings asked (reference and render: two images), not a JudgeServer's one-image
    readiness checks."""
    return sum(1 for request in double.log() if request.get("images") == 2)


def test_two_judges_score_side_by_side_and_a_third_added_later_judges_only(
    kube, operator, prometheus, judge_double_process, s3, tmp_path
):
    prometheus.add_target(
        f"proctor-{kube.namespace}", f"127.0.0.1:{operator.metrics_port}", scrape_interval="1s"
    )
    biased, noisy = judge_double_process(bias=0.2), judge_double_process(noise=0.15, seed=7)
    kube(
        "create", "secret", "generic", "noise-key", "--from-literal=token=not-a-real-key"
    )  # the noisy judge's own key
    kube.apply(
        {
            "apiVersion": "proctor.dev/v1alpha1",
            "kind": "JudgeServer",
            "metadata": {"name": "biased"},
            "spec": {"external": {"baseUrl": biased.url, "model": "judge-double"}, "maxConcurrency": 4},
        }
    )
    tasks, answers = inline_records(tmp_path)
    run = {
        "apiVersion": "proctor.dev/v1alpha1",
        "kind": "EvalRun",
        "metadata": {"name": "panel"},
        "spec": {
            "benchmark": {"format": "vision2code", "source": {"inline": tasks}},
            "answers": {"format": "vision2code", "source": {"inline": answers}},
            "judge": {"name": "bias", "serverRef": {"name": "biased"}, "backoffSeconds": 0.05},
            "additionalJudges": [
                {
                    "name": "noise",
                    "url": noisy.url,
                    "apiKeySecretRef": {"name": "noise-key", "key": "token"},
                    "concurrency": 2,
                }
            ],
            "judgeAggregate": "mean",
            "sharding": {"shardSize": 5},
        },
    }
    kube.apply(run)
    final = kube.wait_phase("evalrun", "panel", ("Succeeded", "Failed"), timeout=300)
    status = final["status"]
    assert status["phase"] == "Succeeded", status.get("message")

    # One Job per judge, each with its own endpoint in its shard manifests and its own key.
    jobs = {
        j["metadata"]["labels"]["proctor.dev/stage"]: j
        for j in kube.items("jobs", "proctor.dev/run=panel,proctor.dev/component=worker")
    }
    assert set(jobs) == {"render", "judge", "judge-noise"}

    def key(stage: str) -> str | None:
        env = jobs[stage]["spec"]["template"]["spec"]["containers"][0]["env"]
        refs = [e["valueFrom"]["secretKeyRef"]["name"] for e in env if e["name"] == "PROCTOR_JUDGE_API_KEY"]
        return refs[0] if refs else None

    assert (key("render"), key("judge-noise")) == (None, "noise-key")
    assert images_judged(biased) == images_judged(noisy) == JUDGED

    # Per-judge scores and agreement in the status (and `kubectl get` keeps one Score column).
    headline = status["scoreName"]
    bias_score, noise_score = status["scores"][f"bias/{headline}"], status["scores"][f"noise/{headline}"]
    assert bias_score > noise_score
    assert status["score"] == status["scores"][f"aggregate/{headline}"]
    judges = {j["name"]: j for j in status["judges"]}
    assert judges["bias"]["score"] == bias_score and judges["noise"]["stage"] == "judge-noise"
    assert -1.0 <= judges["noise"]["pearson"] <= 1.0 and "kendall" in judges["noise"]
    summary_key = status["results"]["summary"].split("/", 3)[3]
    summary = json.loads(s3.client().get_object(Bucket=s3.bucket, Key=summary_key)["Body"].read())
    [pair] = summary["judges"]["agreement"]
    assert (pair["a"], pair["b"], pair["n"]) == ("bias", "noise", len(TASKS))
    low, high = pair["pearson_ci"]
    assert low <= pair["pearson"] <= high
    # what each stage cost, in the EvalRun itself (`kubectl get evalrun -o yaml`)
    cost = {row["name"]: row for row in status["cost"]["stages"]}
    assert status["cost"]["final"] is True
    assert cost["judge"]["calls"] >= JUDGED and cost["judge-noise"]["calls"] >= JUDGED
    assert cost["judge"]["images"] == cost["judge-noise"]["images"] > 0
    assert cost["render"]["calls"] == 0 and cost["render"]["wallSeconds"] > 0

    # Prometheus tells the judges apart.
    selector = f'namespace="{kube.namespace}",run="panel"'
    prometheus.wait_for(f'proctor_run_score{{{selector},judge="noise",metric="{headline}"}} > 0', timeout=60)
    prometheus.wait_for(
        f'sum(proctor_judge_requests_total{{{selector},judge="noise"}}) >= {JUDGED}', timeout=60
    )
    prometheus.wait_for(
        f'sum(proctor_judge_requests_total{{{selector},judge="bias"}}) >= {JUDGED}', timeout=60
    )

    # A third judge added to the finished run: only its stage works.
    plain = judge_double_process()
    render_uid = jobs["render"]["metadata"]["uid"]
    run["spec"]["additionalJudges"].append({"name": "plain", "url": plain.url})
    kube.apply(run)
    generation = kube.get("evalrun", "panel")["metadata"]["generation"]

    def done_again():
        current = (kube.get("evalrun", "panel") or {}).get("status") or {}
        finished = current.get("observedGeneration") == generation and current.get("phase") == "Succeeded"
        return current if finished and f"plain/{headline}" in current.get("scores", {}) else None

    again = wait_for(done_again, 240, "the run to finish again with the third judge")
    assert images_judged(plain) == JUDGED
    assert images_judged(biased) == images_judged(noisy) == JUDGED  # nobody else asked again
    stages = {
        j["metadata"]["labels"]["proctor.dev/stage"]: j
        for j in kube.items("jobs", "proctor.dev/run=panel,proctor.dev/component=worker")
    }
    assert stages["render"]["metadata"]["uid"] == render_uid  # the renders were not redone
    assert {j["name"] for j in again["judges"]} == {"bias", "noise", "plain"}


def test_two_runs_sharing_a_judge_stay_within_its_budget_at_every_moment(
    kube, operator, judge_double_process, tmp_path
):
    """Two runs on one JudgeServer (maxConcurrency 3: two requests for runs, one for the operator's
    checks). Split at planning time, the run planned alone kept two requests in flight and the next
    took two more; granted from what is free, the second run's judge Job waits and says so."""
    double = judge_double_process(latency_s=1.0)
    kube.apply(
        {
            "apiVersion": "proctor.dev/v1alpha1",
            "kind": "JudgeServer",
            "metadata": {"name": "shared"},
            "spec": {"external": {"baseUrl": double.url, "model": "judge-double"}, "maxConcurrency": 3},
        }
    )
    kube.wait_phase("judgeserver", "shared", ("Ready",), timeout=60)
    tasks, answers = inline_records(tmp_path)
    names = ("share-a", "share-b")
    for name in names:
        kube.apply(
            {
                "apiVersion": "proctor.dev/v1alpha1",
                "kind": "EvalRun",
                "metadata": {"name": name},
                "spec": {
                    "benchmark": {"format": "vision2code", "source": {"inline": tasks}},
                    "answers": {"format": "vision2code", "source": {"inline": answers}},
                    "judge": {"serverRef": {"name": "shared"}, "backoffSeconds": 0.05},
                    "sharding": {"shardSize": 1},
                    "parallelism": 2,
                },
            }
        )
    waited: set[str] = set()

    def both_finished() -> bool:
        for name in names:
            conditions = (kube.get("evalrun", name) or {}).get("status", {}).get("conditions") or []
            if any(c.get("reason") == "WaitingForJudgeBudget" for c in conditions):
                waited.add(name)
        return all(kube.phase("evalrun", name) in ("Succeeded", "Failed") for name in names)

    assert wait_for(both_finished, 300, "both runs finished")
    for name in names:
        assert kube.phase("evalrun", name) == "Succeeded"
    stats = double.stats()
    assert images_judged(double) == 2 * JUDGED
    assert stats["peak_in_flight"] <= 3, stats  # the runs' requests and the operator's check together
    assert len(waited) == 1, waited  # the later run's judge Job waited for the earlier one's
    grants = []
    for name in names:
        [job] = kube.items("jobs", f"proctor.dev/run={name},proctor.dev/stage=judge")
        grants.append(json.loads(job["metadata"]["annotations"]["proctor.dev/judge-grant"]))
        env = {e["name"]: e.get("value") for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
        assert env["PROCTOR_JUDGE_CONCURRENCY"] == str(grants[-1]["perWorker"])
        assert job["spec"]["parallelism"] <= grants[-1]["pods"]
    assert all(g["server"] == "shared" and g["perWorker"] * g["pods"] <= 2 for g in grants)

"""The examples this project ships work as written: the quickstart runs locally in one command with the
scores its header states; the cluster variants plan into the Jobs and judge servers they promise.
(Every example is also dry-run against the API server: tests/e2e/test_examples_dry_run.py.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

from proctor.config import OperatorConfig
from proctor.k8s.jobs import WorkerContext, build_item_job
from proctor.k8s.judge import build_deployment
from proctor.local import prepare

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"


def test_the_quickstart_runs_locally_in_one_command_with_the_stated_scores(tmp_path):
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"}
    command = ["proctor", "run", "examples/quickstart/evalrun.yaml", "--store", str(tmp_path), "--json"]
    done = subprocess.run(command, capture_output=True, text=True, cwd=REPO, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["phase"] == "Succeeded"
    assert result["counts"]["total"] == 6 and result["counts"]["failed"] == 0
    assert result["scores"] == {"pass@1": 66.7, "pass@2": 100.0, "parse_success_rate": 83.3}
    header = (EXAMPLES / "quickstart" / "evalrun.yaml").read_text()
    assert "Expected: pass@1 66.7, pass@2 100, parse_success_rate 83.3." in header
    # Run again: everything is reused.
    again = subprocess.run(command, capture_output=True, text=True, cwd=REPO, env=env, timeout=300)
    assert json.loads(again.stdout.strip().splitlines()[-1])["counts"]["processed"] == 0


def test_the_artevalbench_cluster_example_is_generated_from_its_script():
    import importlib.util

    folder = EXAMPLES / "artevalbench" / "cluster"
    spec = importlib.util.spec_from_file_location("artevalbench_cluster_example", folder / "make_example.py")
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    assert (folder / "inputs.yaml").read_text() == generator.inputs()
    assert (folder / "evalrun.yaml").read_text() == generator.evalrun()


def test_artevalbench_cluster_tasks_become_jobs_with_their_image_deadline_and_gpu(tmp_path):
    local = prepare(EXAMPLES / "artevalbench" / "cluster" / "evalrun.yaml", str(tmp_path / "store"))
    store, prefix = local.store, local.plan.run_prefix
    items = {}
    for index in range(local.plan.stages[0].shards):
        shard = store.get_json(f"{prefix}/oracle/shards/{index}.json")
        for item in shard["items"]:
            items[item["id"]] = (index, item)
    assert set(items) == {"tinysort", "hello-gpu"}
    spec = local.evalrun.spec.dump()
    ctx = WorkerContext("evals", "artevalbench-cluster", "uid-1", spec, prefix, "s3://b/p", OperatorConfig())
    jobs = {name: build_item_job(ctx, "oracle", "oracle", i, item) for name, (i, item) in items.items()}
    image = "ghcr.io/proctor-dev/proctor-worker:0.1.0"
    for name, job in jobs.items():
        [container] = job["spec"]["template"]["spec"]["containers"]
        assert container["image"] == image, name
    gpu = jobs["hello-gpu"]["spec"]["template"]["spec"]
    assert gpu["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in gpu["tolerations"]
    assert "nvidia.com/gpu" not in str(
        jobs["tinysort"]["spec"]["template"]["spec"]["containers"][0]["resources"]
    )
    # Deadlines: agent (the task's budget, capped by spec.agent) + evaluator + 600 s of fetch and upload.
    assert jobs["hello-gpu"]["spec"]["activeDeadlineSeconds"] == 600 + 600 + 600
    assert jobs["tinysort"]["spec"]["activeDeadlineSeconds"] == 1200 + 600 + 600


def test_the_qwen_judge_is_served_the_way_the_artifactsbench_authors_ran_it():
    server = yaml.safe_load((EXAMPLES / "artifactsbench" / "qwen-judge" / "judgeserver.yaml").read_text())
    from proctor.api.judgeserver import JudgeServer

    spec = JudgeServer.model_validate(server).spec.dump()
    deployment = build_deployment("evals", "qwen25-vl-72b", "uid", spec)
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    args = container["args"]

    def after(flag: str) -> str:
        return args[args.index(flag) + 1]

    # The authors' command (README "Evaluation Using Qwen2.5-VL-72B"), flag by flag.
    assert after("--tensor-parallel-size") == "8"
    assert after("--max-model-len") == "32768"
    assert json.loads(after("--limit-mm-per-prompt")) == {"image": 5}
    assert after("--dtype") == "float16"
    assert after("--gpu-memory-utilization") == "0.9"
    assert after("--seed") == "1024"
    assert after("--served-model-name") == "Qwen2.5-VL-72B-Instruct"
    assert {"--enforce-eager", "--trust-remote-code"} <= set(args)
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "8"
    run = yaml.safe_load((EXAMPLES / "artifactsbench" / "qwen-judge" / "evalrun.yaml").read_text())
    assert run["spec"]["judge"]["serverRef"]["name"] == server["metadata"]["name"]
    assert run["spec"]["judge"]["systemMessage"] is True and run["spec"]["judge"]["screenshots"] == 3

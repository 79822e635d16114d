"""`proctor judge serve`: the same vLLM arguments as a JudgeServer, a loud failure without vLLM or a GPU,
and waiting until the model is served. vLLM itself cannot run here (no GPU); the readiness wait is
exercised against the OpenAI-compatible judge test double, which serves `/v1/models` the same way."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from proctor.cli import build_parser
from proctor.commands import judge
from proctor.k8s.judge import build_deployment, vllm_args

REPO = Path(__file__).resolve().parents[2]
QWEN = REPO / "examples" / "artifactsbench" / "qwen-judge" / "judgeserver.yaml"


def parse(*argv: str):
    return build_parser().parse_args(["judge", "serve", *argv])


def value_after(argv: list[str], flag: str) -> str:
    return argv[argv.index(flag) + 1]


def test_flags_map_to_the_judgeservers_vllm_arguments():
    args = parse(
        "--model", "/models/Qwen2.5-VL-72B-Instruct", "--served-model-name", "Qwen2.5-VL-72B-Instruct",
        "--tensor-parallel", "8", "--max-model-len", "32768", "--images-per-prompt", "5",
        "--dtype", "float16", "--port", "8088", "--", "--enforce-eager", "--seed", "1024",
    )  # fmt: skip
    argv = judge.server_argv(judge.vllm_spec(args), args.host, python="python3")
    # `vllm serve`, the Deployment's entry point, with the model positional (vLLM refuses --model there)
    assert argv[:4] == ["python3", "-m", "vllm.entrypoints.cli.main", "serve"]
    assert argv[4] == "/models/Qwen2.5-VL-72B-Instruct" and "--model" not in argv
    same_as_cluster = vllm_args(
        {
            "model": "/models/Qwen2.5-VL-72B-Instruct",
            "servedModelName": "Qwen2.5-VL-72B-Instruct",
            "tensorParallelSize": 8,
            "maxModelLen": 32768,
            "imagesPerPrompt": 5,
            "dtype": "float16",
            "port": 8088,
            "extraArgs": ["--enforce-eager", "--seed", "1024"],
        }
    )
    same_as_cluster[same_as_cluster.index("--host") + 1] = "127.0.0.1"
    assert argv[4:] == same_as_cluster
    assert value_after(argv, "--tensor-parallel-size") == "8"
    assert value_after(argv, "--max-model-len") == "32768"
    assert json.loads(value_after(argv, "--limit-mm-per-prompt")) == {"image": 5}
    assert value_after(argv, "--host") == "127.0.0.1"  # this machine only, unless --host says otherwise
    assert argv[-3:] == ["--enforce-eager", "--seed", "1024"]


def test_a_judgeserver_manifest_serves_locally_with_the_deployments_arguments():
    """--manifest: the example JudgeServer's settings, byte for byte what its Deployment would run."""
    args = parse("--model", "/data/Qwen2.5-VL-72B-Instruct", "--manifest", str(QWEN))
    argv = judge.server_argv(judge.vllm_spec(args), "127.0.0.1", python="python3")
    server = yaml.safe_load(QWEN.read_text())
    from proctor.api.judgeserver import JudgeServer

    spec = JudgeServer.model_validate(server).spec.dump()
    [container] = build_deployment("ns", "qwen25-vl-72b", "uid", spec)["spec"]["template"]["spec"][
        "containers"
    ]
    cluster = list(container["args"])
    # The two differences: where the weights are, and where it listens.
    assert container["command"] == ["vllm", "serve"] and argv[3] == "serve"
    assert cluster[0] == "Qwen/Qwen2.5-VL-72B-Instruct"
    cluster[0] = "/data/Qwen2.5-VL-72B-Instruct"
    cluster[cluster.index("--host") + 1] = "127.0.0.1"
    assert argv[4:] == cluster
    assert value_after(argv, "--served-model-name") == "Qwen2.5-VL-72B-Instruct"
    assert judge.served_name(judge.vllm_spec(args)) == "Qwen2.5-VL-72B-Instruct"


def test_without_vllm_or_a_gpu_it_fails_at_once_saying_what_is_missing(tmp_path):
    if importlib.util.find_spec("vllm") is not None:
        pytest.skip("vLLM is installed here; the missing-vLLM path cannot be shown")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run(
        [sys.executable, "-m", "proctor", "judge", "serve", "--model", str(tmp_path / "no-such-model"),
         "--tensor-parallel", "2"],
        capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip
    assert done.returncode != 0
    assert "vLLM is not installed" in done.stderr and "pip install 'proctor[vllm]'" in done.stderr
    assert "GPU" in done.stderr
    assert "no-such-model does not exist" in done.stderr
    assert "--judge-url" not in done.stdout  # nothing claims to be served


def test_preflight_names_each_missing_piece():
    spec = {"model": "Qwen/Qwen2.5-VL-72B-Instruct", "tensorParallelSize": 8}
    assert judge.preflight(spec, vllm_installed=True, gpus=(8, "test")).problems == []
    [problem] = judge.preflight(spec, vllm_installed=True, gpus=(4, "test")).problems
    assert "--tensor-parallel 8 needs 8, found 4" in problem
    problems = judge.preflight(spec, vllm_installed=False, gpus=(0, "no NVIDIA driver")).problems
    assert len(problems) == 2 and "vLLM is not installed" in problems[0] and "no GPU" in problems[1]


def test_waits_until_the_model_is_listed_then_reports_the_url(judge_double):
    double = judge_double()  # an OpenAI-compatible server listing `judge-double`
    url = double.url.rstrip("/")
    assert judge.wait_until_served(url, "judge-double", None, timeout_s=10, every_s=0.1) is None
    why = judge.wait_until_served(url, "another-model", None, timeout_s=0.5, every_s=0.1)
    assert "did not list 'another-model'" in why and "judge-double" in why


def test_a_server_that_dies_while_loading_is_reported_not_waited_for():
    dead = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    dead.wait()
    why = judge.wait_until_served("http://127.0.0.1:9/v1", "m", dead, timeout_s=30, every_s=0.1)
    assert why == "vLLM exited with status 3 before serving"


def test_judge_url_is_what_proctor_run_takes():
    assert judge.judge_url("127.0.0.1", 8000) == "http://127.0.0.1:8000/v1"
    assert judge.judge_url("0.0.0.0", 8001) == "http://127.0.0.1:8001/v1"
    assert judge.judge_url("::1", 8000) == "http://[::1]:8000/v1"
    run = build_parser().parse_args(["run", "x.yaml", "--judge-url", judge.judge_url("127.0.0.1", 8000)])
    assert run.judge_url == "http://127.0.0.1:8000/v1"

"""`proctor judge serve`: a local vLLM judge on a GPU workstation, started like a JudgeServer's;
`proctor judge check`: whether a judge passes the calibration set (see `check` below).

    proctor judge serve --model /models/Qwen2.5-VL-72B-Instruct --tensor-parallel 8 \\
        --max-model-len 32768 --images-per-prompt 5

builds the same vLLM arguments the operator gives a JudgeServer's Deployment (`proctor.k8s.judge.
vllm_args`, from the same spec fields), starts vLLM's OpenAI-compatible server, waits until
`/v1/models` lists the model, prints the `--judge-url` to pass to `proctor run`, and serves in the
foreground until interrupted. Without vLLM or without enough GPUs it fails at once, saying what is
missing, instead of half-starting a server that dies minutes later.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from proctor.commands import fraction, port, positive_float, positive_int

DEFAULT_READY_TIMEOUT_S = 3600.0  # downloading and loading a 72B model's weights takes a while


def add_parser(sub) -> None:
    p = sub.add_parser("judge", help="run a judge model locally (vLLM) for `proctor run --judge-url`")
    actions = p.add_subparsers(dest="judge_action", metavar="ACTION")
    serve = actions.add_parser(
        "serve",
        help="start vLLM's OpenAI-compatible server with a JudgeServer's arguments",
        description=__doc__.split("\n\n")[0],
    )
    serve.add_argument("--model", required=True, help="a model directory, or a Hugging Face model id")
    serve.add_argument("--served-model-name", help="the name clients send (default: the model's)")
    serve.add_argument(
        "--tensor-parallel", type=positive_int, default=1, metavar="N", help="GPUs to shard over"
    )
    serve.add_argument(
        "--max-model-len", type=positive_int, help="context length (vLLM's default: the model's)"
    )
    serve.add_argument(
        "--images-per-prompt", type=positive_int, default=8, help="vLLM --limit-mm-per-prompt image=N"
    )
    serve.add_argument("--dtype", default="auto", choices=["auto", "bfloat16", "float16", "float32"])
    serve.add_argument("--gpu-memory-utilization", type=fraction, default=0.9)
    serve.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: this machine only)"
    )
    serve.add_argument("--port", type=port, default=8000)
    serve.add_argument(
        "--ready-timeout",
        type=positive_float,
        default=DEFAULT_READY_TIMEOUT_S,
        help="seconds to wait for the model to load (default: %(default)s)",
    )
    serve.add_argument(
        "--manifest",
        type=Path,
        help="take the vLLM settings from this JudgeServer manifest (spec.vllm) instead",
    )
    serve.add_argument("extra", nargs=argparse.REMAINDER, help="after --: more vLLM arguments")
    serve.set_defaults(handler=run_serve)
    check = actions.add_parser(
        "check",
        help="ask a judge the calibration items and check its scores fall in their bands",
        description=CHECK_HELP,
    )
    check.add_argument("--judge-url", required=True, help="the judge's OpenAI-compatible base URL")
    check.add_argument("--model", help="the model to ask for (default: the first the server lists)")
    check.add_argument(
        "--benchmark",
        choices=["all", "artifactsbench", "vision2code"],
        default="all",
        help="which calibration set (default: %(default)s)",
    )
    check.add_argument("--json", action="store_true", help="print the outcomes as JSON instead of a table")
    check.add_argument(
        "--result-file",
        type=Path,
        help="also write the verdict (one JSON object of at most 4 KiB) here: a calibration Job's "
        "termination message",
    )
    check.set_defaults(handler=run_check)
    p.set_defaults(handler=lambda args: (p.print_help(), 2)[1])


CHECK_HELP = (
    "Ask a judge the shipped calibration items (known screenshots and renders with an expected score "
    "band) through each benchmark's real judge prompt, print item, band, score, pass/fail and what the "
    "judge said, and exit 1 when any score falls outside its band. The API key, if the judge needs "
    "one, comes from PROCTOR_JUDGE_API_KEY (else OPENAI_API_KEY), as in a run."
)


def run_check(args: argparse.Namespace) -> int:
    import asyncio

    from proctor_jobs.judge.calibration import calibrate, resolve_benchmarks, summary, table, verdict

    try:
        outcomes = asyncio.run(calibrate(args.judge_url, args.model, resolve_benchmarks(args.benchmark)))
    except (ValueError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        if args.result_file:
            args.result_file.write_text(verdict(None, f"the calibration could not run: {exc}"))
        return 2
    if args.result_file:
        args.result_file.write_text(verdict(outcomes))
    if args.json:
        print(json.dumps([o.to_dict() for o in outcomes], indent=1, ensure_ascii=False))
    else:
        print(table(outcomes))
        print(summary(outcomes))
    return 0 if all(o.passed for o in outcomes) else 1


def vllm_spec(args: argparse.Namespace) -> dict[str, Any]:
    """The JudgeServer `spec.vllm` these flags stand for (camelCase, as on the wire)."""
    if args.manifest:
        return _spec_from_manifest(args.manifest, args.model)
    extra = list(args.extra or [])
    if extra[:1] == ["--"]:
        extra = extra[1:]
    spec: dict[str, Any] = {
        "model": args.model,
        "tensorParallelSize": args.tensor_parallel,
        "gpus": args.tensor_parallel,
        "imagesPerPrompt": args.images_per_prompt,
        "dtype": args.dtype,
        "gpuMemoryUtilization": args.gpu_memory_utilization,
        "port": args.port,
        "extraArgs": extra,
    }
    if args.served_model_name:
        spec["servedModelName"] = args.served_model_name
    if args.max_model_len:
        spec["maxModelLen"] = args.max_model_len
    return spec


def _spec_from_manifest(path: Path, model: str) -> dict[str, Any]:
    from proctor.api.judgeserver import JudgeServer
    from proctor.manifests import ManifestError, load_documents

    try:  # named errors (not UTF-8, not YAML) instead of a traceback
        docs = [d.body for d in load_documents(path) if d.kind == "JudgeServer"]
    except ManifestError as exc:
        raise SystemExit(f"error: {exc}") from None
    if len(docs) != 1:
        raise SystemExit(f"error: {path} must hold exactly one JudgeServer (found {len(docs)})")
    server = JudgeServer.model_validate(docs[0])
    if server.spec.vllm is None:
        raise SystemExit(f"error: {path}: the JudgeServer is external; there is nothing to serve locally")
    spec = server.spec.vllm.model_dump(mode="json", by_alias=True, exclude_none=True)
    spec["model"] = model  # the local copy of the weights
    spec["servedModelName"] = server.spec.vllm.served_model_name or server.spec.vllm.model
    spec.pop("modelCachePvc", None)  # a cluster volume; locally the path is the model itself
    return spec


def server_argv(spec: dict[str, Any], host: str, python: str = sys.executable) -> list[str]:
    """`vllm serve` with exactly the JudgeServer's arguments, except where it listens: the entry point
    the Deployment runs (vLLM's CLI, `vllm.entrypoints.cli.main`), through this Python so that the vLLM
    installed next to Proctor is the one that serves."""
    from proctor.k8s.judge import vllm_args

    args = vllm_args(spec)
    i = args.index("--host")
    args[i + 1] = host  # the Deployment listens on 0.0.0.0 inside its pod; a workstation need not
    return [python, "-m", "vllm.entrypoints.cli.main", "serve", *args]


def served_name(spec: dict[str, Any]) -> str:
    return spec.get("servedModelName") or spec["model"]


def judge_url(host: str, port: int) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "", "::") else host
    if ":" in shown and not shown.startswith("["):
        shown = f"[{shown}]"
    return f"http://{shown}:{port}/v1"


# ---- pre-flight: fail at once when the machine cannot serve ------------------------------------------


@dataclass
class Preflight:
    problems: list[str]
    gpus: int


def count_gpus() -> tuple[int, str]:
    """NVIDIA GPUs on this machine, and how they were counted (vLLM's CUDA build needs them)."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    smi = shutil.which("nvidia-smi")
    found = 0
    how = ""
    if smi:
        try:
            out = subprocess.run([smi, "--list-gpus"], capture_output=True, text=True, timeout=30)
            found = sum(1 for line in out.stdout.splitlines() if line.startswith("GPU "))
            how = "nvidia-smi --list-gpus"
        except (OSError, subprocess.TimeoutExpired):
            found = 0
    if not found:
        driver = Path("/proc/driver/nvidia/gpus")
        found = len(list(driver.iterdir())) if driver.is_dir() else 0
        how = how or (
            "/proc/driver/nvidia/gpus" if driver.is_dir() else "no NVIDIA driver (nvidia-smi not found)"
        )
    if visible is not None and found:
        chosen = [d for d in visible.split(",") if d.strip() and d.strip() != "-1"]
        found = min(found, len(chosen))
        how += f", limited by CUDA_VISIBLE_DEVICES={visible!r}"
    return found, how


def preflight(spec: dict[str, Any], vllm_installed: bool | None = None, gpus: tuple[int, str] | None = None):
    """Everything missing for serving `spec` here, all at once."""
    problems: list[str] = []
    if vllm_installed is None:
        vllm_installed = importlib.util.find_spec("vllm") is not None
    if not vllm_installed:
        problems.append(
            "vLLM is not installed in this Python environment: pip install 'proctor[vllm]' "
            "(Linux with an NVIDIA GPU and CUDA; or use a JudgeServer on the cluster)"
        )
    found, how = gpus if gpus is not None else count_gpus()
    needed = int(spec.get("tensorParallelSize", 1))
    if found == 0:
        problems.append(f"no GPU: vLLM needs {needed} NVIDIA GPU(s) and found none ({how})")
    elif found < needed:
        problems.append(f"not enough GPUs: --tensor-parallel {needed} needs {needed}, found {found} ({how})")
    model = str(spec["model"])
    looks_local = model.startswith(("/", "./", "../", "~")) or Path(model).exists()
    if looks_local and not Path(model).expanduser().exists():
        problems.append(f"the model path {model} does not exist")
    return Preflight(problems, found)


# ---- waiting for the server ----------------------------------------------------------------------------


def models_listed(url: str, timeout: float = 5.0) -> list[str] | None:
    """The model ids `GET {url}/models` lists, or None while the server does not answer."""
    try:
        with urllib.request.urlopen(f"{url}/models", timeout=timeout) as response:
            body = json.loads(response.read().decode())
    except (OSError, urllib.error.URLError, ValueError):
        return None
    return [m.get("id") for m in body.get("data", []) if isinstance(m, dict)]


def wait_until_served(
    url: str, model: str, process: subprocess.Popen | None, timeout_s: float, every_s: float = 2.0
) -> str | None:
    """None once `model` is listed; otherwise why not (the server exited, or the time ran out)."""
    deadline = time.monotonic() + timeout_s
    while True:
        if process is not None and process.poll() is not None:
            return f"vLLM exited with status {process.returncode} before serving"
        listed = models_listed(url)
        if listed is not None and model in listed:
            return None
        if time.monotonic() >= deadline:
            shown = f"; it lists {listed}" if listed else ""
            return f"{url}/models did not list {model!r} within {timeout_s:.0f} s{shown}"
        time.sleep(every_s)


def run_serve(args: argparse.Namespace) -> int:
    spec = vllm_spec(args)
    check = preflight(spec)
    if check.problems:
        print("error: cannot serve the judge here:", file=sys.stderr)
        for problem in check.problems:
            print(f"  - {problem}", file=sys.stderr)
        return 2
    argv = server_argv(spec, args.host)
    url = judge_url(args.host, int(spec.get("port", args.port)))
    name = served_name(spec)
    print(f"starting vLLM: {' '.join(argv[1:])}", file=sys.stderr, flush=True)
    env = {**os.environ, "VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1"}
    process = subprocess.Popen(argv, env=env, start_new_session=True)

    def forward(signum, _frame) -> None:
        if process.poll() is None:
            os.killpg(process.pid, signum)

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, forward)
    why = wait_until_served(url, name, process, args.ready_timeout)
    if why is not None:
        print(f"error: {why}", file=sys.stderr)
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        return 1
    print(f"judge ready: {url} serves {name}", flush=True)
    print(
        f"  proctor run examples/artifactsbench/evalrun.yaml --judge-url {url} --judge-model {name}",
        flush=True,
    )
    return process.wait()

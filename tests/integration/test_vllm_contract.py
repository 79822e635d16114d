"""Contract tests against the real `vllm` package: what Proctor runs and sends, checked by vLLM itself.

For each vLLM version in VERSIONS, tests/setup.d/70-vllm.sh keeps a tests-only virtualenv with that
release from PyPI under ~/.cache/proctor/vllm-<version>/; tests/doubles/vllm_probe.py runs in it (a
subprocess with that venv's python) and answers with vLLM's own verdicts:

- (a) the command of every JudgeServer in examples/ and of every combination of the JudgeServer fields
  that shape it (each enum value, each bound of each range, optional fields set and unset) goes through
  `vllm serve`'s real parser (vLLM's CLI entry point with its subcommand validation); so does
  `proctor judge serve`'s. A flag a version does not know fails with vLLM's message, which names it.
- (b) every request body each judge and generation profile sends (ArtifactsBench and Vision2Code judges
  in the faithful and strict profiles and their options, a repair request, candidate generation for each
  benchmark, the operator's one-image readiness check) validates against that version's
  `ChatCompletionRequest`, and vLLM ignores none of its fields. The bodies are captured from the real
  request-building code talking to the judge test double, not written by hand.

The oldest version is the one the previous default image ran (and many clusters still do); the newest is
DEFAULT_VLLM_IMAGE's, the newest release on PyPI when it was set.
"""

from __future__ import annotations

import asyncio
import base64
import io
import itertools
import json
import os
import subprocess
import typing
from pathlib import Path
from typing import Any

import pytest
import yaml
from PIL import Image, ImageDraw

from proctor.api.judgeserver import DEFAULT_VLLM_IMAGE, JudgeServer, VllmJudge
from proctor.commands.judge import server_argv
from proctor.k8s.judge import build_deployment

REPO = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("PROCTOR_CACHE", Path.home() / ".cache" / "proctor"))
PROBE = REPO / "tests" / "doubles" / "vllm_probe.py"
# Keep in step with `versions` in tests/setup.d/70-vllm.sh and the table in docs/judging.md.
VERSIONS = ("0.11.0", "0.34.0")

pytestmark = pytest.mark.parametrize("version", VERSIONS)
UNKNOWN_FLAG = ["serve", "Qwen/Qwen2.5-VL-7B-Instruct", "--no-such-vllm-flag", "1"]
BAD_BODIES = [  # a wrongly typed field; an unknown one
    {"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": "many"},
    {"model": "m", "messages": [{"role": "user", "content": "hi"}], "no_such_field": 1},
]


def vllm_python(version: str) -> Path:
    python = CACHE / f"vllm-{version}" / "bin" / "python"
    if not python.exists() or not list(python.parent.parent.glob(".complete-*")):
        message = f"vLLM {version} is not installed in {python.parent.parent}; run tests/setup.d/70-vllm.sh"
        if os.environ.get("PROCTOR_REQUIRE_ENV") == "1":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return python


_ANSWERS: dict[tuple[str, str, str], dict[str, Any]] = {}


def probe(version: str, action: str, items: list) -> list[dict[str, Any]]:
    """vLLM's answers, one per item. Importing vLLM takes seconds, so the first question of a kind asks
    everything of that kind the module will ask (`_everything`) in one subprocess; answers are kept."""
    key = lambda item: json.dumps(item, sort_keys=True)  # noqa: E731
    missing = [item for item in items if (version, action, key(item)) not in _ANSWERS]
    if missing:
        missing += [item for item in _everything(action) if (version, action, key(item)) not in _ANSWERS]
        unique = list({key(item): item for item in missing}.values())
        done = subprocess.run(
            [str(vllm_python(version)), str(PROBE), action],
            input=json.dumps(unique),
            capture_output=True,
            text=True,
            timeout=600,
            cwd=REPO,
        )
        assert done.returncode == 0, f"the vLLM {version} probe failed:\n{done.stderr[-3000:]}"
        answers = json.loads(done.stdout.strip().splitlines()[-1])
        assert len(answers) == len(unique)
        for item, answer in zip(unique, answers, strict=True):
            _ANSWERS[(version, action, key(item))] = answer
    return [_ANSWERS[(version, action, key(item))] for item in items]


def _everything(action: str) -> list:
    if action != "argv":
        return list(BAD_BODIES)
    examples = [server for _, server in example_judgeservers() if server.spec.vllm]
    return (
        [deployment_argv(server) for server in examples + schema_combinations()]
        + [judge_serve_argv(server) for server in examples]
        + [UNKNOWN_FLAG]
    )


# --- (a) server commands ---------------------------------------------------------------------------


def example_judgeservers() -> list[tuple[str, JudgeServer]]:
    found = []
    for path in sorted(REPO.glob("examples/**/*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if isinstance(doc, dict) and doc.get("kind") == "JudgeServer":
                found.append((str(path.relative_to(REPO)), JudgeServer.model_validate(doc)))
    return found


def deployment_argv(server: JudgeServer) -> list[str]:
    """What the pod runs, after `vllm`: the operator's Deployment for this JudgeServer."""
    spec = server.spec.dump()
    [container] = build_deployment("ns", server.metadata.name, "uid", spec)["spec"]["template"]["spec"][
        "containers"
    ]
    assert container["command"][0] == "vllm"
    return [*container["command"][1:], *container["args"]]


def _bounds(field_name: str, unbounded: Any = None) -> list[Any]:
    """The smallest and largest value the schema allows for a numeric field (`unbounded` stands for
    the largest where the schema sets none)."""
    field = VllmJudge.model_fields[field_name]
    low, high = None, unbounded
    for rule in field.metadata:
        low = getattr(rule, "ge", low)
        high = getattr(rule, "le", high)
        if getattr(rule, "gt", None) is not None:
            low = rule.gt + 0.05  # the smallest value one would write
    assert low is not None and high is not None, f"{field_name} has no bounds in the schema"
    return [low, high]


def schema_combinations() -> list[dict[str, Any]]:
    """spec.vllm variations covering every value the schema allows for each field that shapes the
    command: each dtype, each bound of each range, optional fields set and unset, a model given as a
    hub id, as a bare name in the model cache PVC, and as a path."""
    dtypes = list(typing.get_args(VllmJudge.model_fields["dtype"].annotation))
    specs: list[dict[str, Any]] = []
    models = [
        {"model": "Qwen/Qwen2.5-VL-7B-Instruct"},
        {"model": "Qwen2.5-VL-7B-Instruct", "modelCachePvc": "models"},
        {"model": "/models/Qwen2.5-VL-7B-Instruct", "modelCachePvc": "models"},
    ]
    served = [{}, {"servedModelName": "judge"}]
    lengths = [{}, *({"maxModelLen": n} for n in _bounds("max_model_len", unbounded=1048576))]
    for model, name, length, dtype in itertools.product(models, served, lengths, dtypes):
        specs.append({**model, **name, **length, "dtype": dtype})
    for field, key in (
        ("tensor_parallel_size", "tensorParallelSize"),
        ("images_per_prompt", "imagesPerPrompt"),
        ("gpu_memory_utilization", "gpuMemoryUtilization"),
        ("port", "port"),
    ):
        for value in _bounds(field):
            specs.append({"model": "Qwen/Qwen2.5-VL-7B-Instruct", key: value})
    # Every field with its default left out.
    specs.append({"model": "Qwen/Qwen2.5-VL-7B-Instruct"})
    servers = []
    for vllm in specs:
        server = JudgeServer.model_validate(
            {"apiVersion": "proctor.dev/v1alpha1", "kind": "JudgeServer", "metadata": {"name": "j"},
             "spec": {"vllm": vllm}}
        )  # fmt: skip
        servers.append(server)
    return servers


def expected_parse(server: JudgeServer, argv: list[str]) -> dict[str, Any]:
    vllm = server.spec.vllm
    assert vllm is not None
    return {
        "model": argv[1],
        "served_model_name": [vllm.served_model_name or vllm.model],
        "port": vllm.port,
        "tensor_parallel_size": vllm.tensor_parallel_size,
        "dtype": vllm.dtype,
        "gpu_memory_utilization": vllm.gpu_memory_utilization,
        "limit_mm_per_prompt": {"image": vllm.images_per_prompt},
        "max_model_len": vllm.max_model_len,
    }


def assert_parsed(version: str, label: str, server: JudgeServer, argv: list[str], answer: dict) -> None:
    command = " ".join(argv)
    assert answer["ok"], f"vLLM {version} refuses {label}: {answer['error']}\n  vllm {command}"
    parsed = answer["args"]
    for key, value in expected_parse(server, argv).items():
        assert parsed.get(key) == value, f"vLLM {version} reads {key}={parsed.get(key)!r} from {label}"


def test_every_example_judgeservers_command_is_accepted_by_vllm_serve(version):
    examples = [(label, server) for label, server in example_judgeservers() if server.spec.vllm]
    assert examples, "no vLLM JudgeServer found in examples/"
    argvs = [deployment_argv(server) for _, server in examples]
    for (label, server), argv, answer in zip(examples, argvs, probe(version, "argv", argvs), strict=True):
        assert_parsed(version, label, server, argv, answer)
        # The example's extraArgs (trust remote code, enforce eager, seed, ...) are understood too.
        extra = server.spec.vllm.extra_args
        if "--enforce-eager" in extra:
            assert answer["args"]["enforce_eager"] is True
        if "--trust-remote-code" in extra:
            assert answer["args"]["trust_remote_code"] is True


def test_every_field_combination_the_schema_allows_is_accepted_by_vllm_serve(version):
    servers = schema_combinations()
    argvs = [deployment_argv(server) for server in servers]
    for i, (server, argv, answer) in enumerate(
        zip(servers, argvs, probe(version, "argv", argvs), strict=True)
    ):
        label = f"spec.vllm {server.spec.vllm.model_dump(by_alias=True, exclude_defaults=True)} (#{i})"
        assert_parsed(version, label, server, argv, answer)


def judge_serve_argv(server: JudgeServer) -> list[str]:
    """What `proctor judge serve --manifest` runs for this JudgeServer, after `python -m ...`."""
    spec = server.spec.vllm.model_dump(mode="json", by_alias=True, exclude_none=True)
    argv = server_argv(spec, "127.0.0.1", python="python3")
    # `python -m vllm.entrypoints.cli.main` is what the `vllm` console script runs.
    assert argv[1:3] == ["-m", "vllm.entrypoints.cli.main"]
    return argv[3:]


def test_proctor_judge_serve_runs_the_same_command_and_vllm_accepts_it(version):
    examples = [(label, server) for label, server in example_judgeservers() if server.spec.vllm]
    argvs = [judge_serve_argv(server) for _, server in examples]
    for (label, server), argv, answer in zip(examples, argvs, probe(version, "argv", argvs), strict=True):
        assert_parsed(version, f"proctor judge serve --manifest {label}", server, argv, answer)
        assert answer["args"]["host"] == "127.0.0.1"


def test_a_flag_vllm_does_not_know_fails_with_the_flag_named(version):
    """The check can fail, and says which flag: the old `--model` form where vLLM refuses it, and a
    flag no vLLM has."""
    (answer,) = probe(version, "argv", [UNKNOWN_FLAG])
    assert not answer["ok"] and "--no-such-vllm-flag" in answer["error"]


# --- (b) request bodies ------------------------------------------------------------------------------


def png(color: str = "navy", size: tuple[int, int] = (320, 200)) -> bytes:
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    draw.rectangle([30, 30, 200, 150], fill=color)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def captured_bodies(tmp_path: Path) -> list[tuple[str, dict[str, Any]]]:
    """Every request body Proctor's judges, generation and readiness check send, as sent: the real
    request-building code talks to the judge test double, which keeps each body it receives."""
    from proctor.controllers.judgeserver import functional_check
    from proctor_jobs.benchmarks.base import StageContext
    from proctor_jobs.generate import GenerateProcessor
    from proctor_jobs.judge import judge_stage_config
    from proctor_jobs.judge.artifactsbench import ArtifactsBenchJudge
    from proctor_jobs.judge.limits import forget_endpoints
    from proctor_jobs.judge.vision2code import Vision2CodeJudge
    from proctor_jobs.layout import RunLayout
    from proctor_jobs.manifest import ShardManifest
    from proctor_jobs.records import ok
    from proctor_jobs.store.fs import FilesystemStore
    from tests.doubles.judge_server import JudgeDouble, scripted_reply

    bodies: list[tuple[str, dict[str, Any]]] = []
    label = ["?"]
    garbage_once: set[str] = set()

    def reply(info) -> str:
        bodies.append((label[0], info.params))
        if label[0].endswith("repair") and label[0] not in garbage_once:
            garbage_once.add(label[0])
            return "no verdict here"
        return scripted_reply("auto", info.text, info.images, "")

    double = JudgeDouble(reply=reply).start()
    run = "runs/default/vllm-contract/u1"
    try:
        forget_endpoints()

        def ctx(stage: str, benchmark: str) -> StageContext:
            store = FilesystemStore(tmp_path / "store")
            return StageContext(
                store, RunLayout(run), ShardManifest(run, benchmark, stage, 0, 1, []), tmp_path
            )

        async def drive(processor, context, pairs):
            await processor.start(context)
            try:
                return await asyncio.gather(*(processor.process(item, up, context) for item, up in pairs))
            finally:
                await processor.stop()

        def run_stage(name, processor, context, pairs):
            label[0] = name
            records = asyncio.run(drive(processor, context, pairs))
            assert all(r.status == "ok" for r in records), f"{name}: {[r.reason for r in records]}"

        # ArtifactsBench judge: three screenshots, and text only (nothing rendered).
        ab_item = {
            "id": "ab1", "index": 1, "question": "Build a counter page", "class": "Web Applications",
            "checklist": [{"id": 0, "title": "Works", "description": "d", "maxScore": 10}],
            "difficulty": "easy", "answer": "```html\n<html><body>[[score:70]]</body></html>\n```",
        }  # fmt: skip
        ab_profiles = {
            "faithful": {},
            "strict": {"profile": "strict"},
            "strict, every option": {
                "profile": "strict", "systemMessage": True, "screenshots": 2, "maxTokens": 2048, "seed": 7,
                "temperature": 0.2, "imageFormat": "jpeg", "imageMaxSide": 256,
            },
        }  # fmt: skip
        for profile, options in ab_profiles.items():
            for shots in (3, 0):
                context = ctx("judge", "artifactsbench")
                keys = []
                for n in range(shots):
                    key = f"cache/render/ab1/screenshot_{n}.png"
                    context.store.put_bytes(key, png(("navy", "teal", "maroon")[n]))
                    keys.append(key)
                kind = "html" if shots else "none"
                render = ok(
                    "ab1", "render", data={"extraction": {"kind": kind, "reason": "x"}, "screenshots": keys}
                )
                config = judge_stage_config("artifactsbench", {"judge": {"url": double.url, **options}})
                name = f"ArtifactsBench judge, {profile}, {shots} screenshots"
                run_stage(name, ArtifactsBenchJudge(config), context, [(ab_item, render)])

        # The 42 example items (examples/artifactsbench), as the faithful judge sends them: the real
        # questions, checklists and answers; three screenshots where the answer has code to render.
        from proctor_jobs.benchmarks import get_benchmark

        adapter = get_benchmark("artifactsbench")
        data = REPO / "examples" / "artifactsbench" / "data"
        rows = [[json.loads(line) for line in (data / f).read_text().splitlines() if line.strip()]
                for f in ("tasks.jsonl", "answers.jsonl")]  # fmt: skip
        items, _ = adapter.work_items(adapter.parse_tasks(rows[0]), adapter.parse_answers(rows[1]), {})
        assert len(items) == 42
        context = ctx("judge", "artifactsbench")
        pairs = []
        for item in items:
            keys = []
            if "```" in item["answer"]:
                for n in range(3):
                    key = f"cache/render/{item['id']}/screenshot_{n}.png"
                    context.store.put_bytes(key, png(("navy", "teal", "maroon")[n]))
                    keys.append(key)
            extraction = {"kind": "html" if keys else "none", "reason": "x"}
            pairs.append(
                (item, ok(item["id"], "render", data={"extraction": extraction, "screenshots": keys}))
            )
        config = judge_stage_config("artifactsbench", {"judge": {"url": double.url}})
        run_stage(
            "ArtifactsBench judge, faithful, the example items", ArtifactsBenchJudge(config), context, pairs
        )

        # Vision2Code rater (system + user with two images), with a repair request after a bad reply.
        v2c_item = {
            "id": "v1", "sample_id": "ChartQA:v1", "source_dataset": "ChartQA", "category": "Charts&Plots",
            "reference_image": base64.b64encode(png("navy")).decode(), "reference_size": [320, 200],
            "answer": "```python\nprint(1)\n```", "renderer": "python",
        }  # fmt: skip
        for profile, options in {
            "faithful": {},
            "strict": {"profile": "strict"},
            "generic rubric": {"rubric": "generic"},
            "faithful, repair": {},
        }.items():
            context = ctx("judge", "vision2code")
            context.store.put_bytes("runs/x/render/evidence/v1/image.png", png("teal"))
            render = ok(
                "v1", "render", data={"failure": None, "similarity": 0.8, "code": "print(1)"},
                evidence={"image": "runs/x/render/evidence/v1/image.png"},
            )  # fmt: skip
            config = judge_stage_config("vision2code", {"judge": {"url": double.url, **options}})
            run_stage(
                f"Vision2Code judge, {profile}", Vision2CodeJudge(config), context, [(v2c_item, render)]
            )

        # Candidate generation, each benchmark's request shape.
        generation = [
            ("artifactsbench", {}, {**ab_item, "answer": ""}),
            ("vision2code", {}, {**v2c_item, "answer": ""}),
            ("vision2code", {"samples": 4}, {**v2c_item, "answer": ""}),
            (
                "humanevalv",
                {},
                {
                    "id": "q1/0",
                    "qid": "q1",
                    "sample": 0,
                    "prediction": "",
                    "function_signature": "def solution(grid: list) -> int:\n    ...",
                    "diagram": base64.b64encode(png()).decode(),
                },
            ),
        ]
        for benchmark, candidate, item in generation:
            processor = GenerateProcessor(
                {
                    "benchmark": benchmark,
                    "candidate": {"url": double.url, "model": "judge-double", **candidate},
                }
            )
            run_stage(
                f"generation, {benchmark} {candidate}", processor, ctx("generate", benchmark), [(item, None)]
            )

        # The operator's readiness check: one tiny chat completion with one image.
        label[0] = "JudgeServer readiness check"
        result = asyncio.run(functional_check(double.url, "judge-double", None))
        assert result.ok, result.message
    finally:
        double.stop()
        forget_endpoints()
    return bodies


@pytest.fixture(scope="module")
def bodies(tmp_path_factory) -> list[tuple[str, dict[str, Any]]]:
    return captured_bodies(tmp_path_factory.mktemp("vllm-contract"))


def test_every_request_body_validates_against_vllms_chat_completion_request(version, bodies):
    senders = {label for label, _ in bodies}
    for expected in (
        "ArtifactsBench judge, faithful, 3 screenshots",
        "ArtifactsBench judge, strict, 0 screenshots",
        "Vision2Code judge, faithful",
        "Vision2Code judge, faithful, repair",
        "generation, humanevalv {}",
        "JudgeServer readiness check",
    ):
        assert expected in senders, f"no request captured from {expected}"
    examples = [body for label, body in bodies if label.endswith("the example items")]
    assert len(examples) == 42, "not every example item was judged once"
    repair = [body for label, body in bodies if label == "Vision2Code judge, faithful, repair"]
    assert len(repair) == 2, "the repair request was not sent"
    answers = probe(version, "chat", [body for _, body in bodies])
    for (label, _), answer in zip(bodies, answers, strict=True):
        assert answer["ok"], f"vLLM {version} rejects the request of {label}: {answer['error'][:2000]}"
        assert not answer["ignored"], f"vLLM {version} ignores {answer['ignored']} in the request of {label}"
    images = sum(
        1
        for _, body in bodies
        for message in body["messages"]
        if isinstance(message.get("content"), list)
        for part in message["content"]
        if part.get("type") == "image_url"
    )
    assert images > 10, "the captured requests carry too few images to check the multimodal shape"


def test_a_body_vllm_cannot_read_is_reported(version):
    """The check can fail: a wrongly typed field is rejected and an unknown field is ignored."""
    rejected, ignored = probe(version, "chat", BAD_BODIES)
    assert not rejected["ok"]
    assert ignored["ok"] and ignored["ignored"] == ["no_such_field"]


def test_the_default_image_runs_a_vllm_version_checked_here(version):
    tag = DEFAULT_VLLM_IMAGE.rsplit(":", 1)[1].removeprefix("v")
    assert tag in VERSIONS

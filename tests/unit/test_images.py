"""The container images, checked without a container engine (none runs here).

What a `docker build` and a pod start would find out late is checked here early: every COPY/ADD source
exists in the build context and survives .dockerignore, the extras the images install exist, the
images run as the non-root uid the chart and the operator assume, the judge image is the tag a
JudgeServer uses by default, and every entry point the Dockerfiles and the chart name
(`proctor operator`, `proctor-worker`, `proctor ingest`) starts and answers `--help`.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.unit.chart_support import find, template_runner

REPO = Path(__file__).resolve().parents[2]
IMAGES = REPO / "images"
DOCKERFILES = sorted(IMAGES.glob("*/Dockerfile"))
VENV_BIN = Path(sys.executable).parent


@dataclass
class Instruction:
    op: str
    args: str
    line: int


@pytest.fixture
def helm_template(tmp_path):
    return template_runner(tmp_path / "helm")


def instructions(path: Path) -> list[Instruction]:
    """Dockerfile instructions with continuation lines joined and comments dropped."""
    out: list[Instruction] = []
    pending, start = "", 0
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue
        if not pending:
            start = number
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = (pending + line).strip()
        pending = ""
        op, _, args = full.partition(" ")
        out.append(Instruction(op.upper(), args.strip(), start))
    return out


def exec_form(args: str) -> list[str]:
    value = json.loads(args)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), args
    return value


def copy_sources(ins: Instruction) -> list[str] | None:
    """Sources of a COPY/ADD from the build context (None for COPY --from=<stage>)."""
    words = shlex.split(ins.args)
    flags = [w for w in words if w.startswith("--")]
    if any(f.startswith("--from=") for f in flags):
        return None
    paths = [w for w in words if not w.startswith("--")]
    assert len(paths) >= 2, f"{ins.op} needs a source and a destination: {ins.args}"
    return paths[:-1]


def dockerignore_rules() -> list[tuple[bool, re.Pattern]]:
    rules = []
    for raw in (REPO / ".dockerignore").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = line[1:] if negate else line
        pattern = pattern.strip("/")
        regex = ""
        i = 0
        while i < len(pattern):
            if pattern.startswith("**/", i):
                regex, i = regex + "(?:.*/)?", i + 3
            elif pattern.startswith("**", i):
                regex, i = regex + ".*", i + 2
            elif pattern[i] == "*":
                regex, i = regex + "[^/]*", i + 1
            elif pattern[i] == "?":
                regex, i = regex + "[^/]", i + 1
            else:
                regex, i = regex + re.escape(pattern[i]), i + 1
        rules.append((negate, re.compile(regex + "$")))
    return rules


def in_context(relative: str) -> bool:
    """Whether a path reaches the build context: Docker's rule, the last matching pattern wins, and a
    pattern matching a parent directory matches everything under it."""
    parts = relative.strip("/").split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    included = True
    for negate, regex in dockerignore_rules():
        if any(regex.match(c) for c in candidates):
            included = negate
    return included


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_every_copy_source_exists_in_the_build_context(dockerfile):
    for ins in instructions(dockerfile):
        if ins.op not in ("COPY", "ADD"):
            continue
        for source in copy_sources(ins) or []:
            path = REPO / source
            assert path.exists(), f"{dockerfile}:{ins.line}: {source} does not exist"
            assert in_context(source), f"{dockerfile}:{ins.line}: {source} is excluded by .dockerignore"
            if path.is_dir():
                files = [
                    p.relative_to(REPO).as_posix()
                    for p in path.rglob("*")
                    if p.is_file() and "__pycache__" not in p.parts
                ]
                assert files, f"{source} is empty"
                left_out = [f for f in files if not in_context(f)]
                assert not left_out, f"{dockerfile}:{ins.line}: .dockerignore drops {left_out[:5]}"


def test_dockerignore_keeps_the_context_small():
    # The checkout's virtualenv, stores and tests never reach the daemon.
    for heavy in (".venv/bin/python", ".proctor/store/x", ".git/HEAD", "tests/run", "examples/x.yaml"):
        assert not in_context(heavy), heavy
    assert not in_context("operator/proctor/__pycache__/cli.cpython-311.pyc")


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_installed_extras_exist(dockerfile):
    extras = set(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"])
    named: list[str] = []
    for ins in instructions(dockerfile):
        for group in re.findall(r"requirements\.py pyproject\.toml ([a-z0-9 -]+)", ins.args):
            named_extras = set(group.split()) - {"--only"}
            assert named_extras <= extras, f"{dockerfile}: unknown extra in {group}"
            named.append(group)
    assert named or dockerfile.parent.name == "judge", f"{dockerfile} installs no extras by name"


def _user(dockerfile: Path) -> str | None:
    users = [ins.args for ins in instructions(dockerfile) if ins.op == "USER"]
    return users[-1] if users else None


def test_operator_and_worker_run_as_the_non_root_uid_the_chart_and_operator_assume(helm_template):
    from proctor.config import OperatorConfig

    docs = helm_template()
    [deployment] = find(docs, "Deployment")
    pod_uid = deployment["spec"]["template"]["spec"]["securityContext"]["runAsUser"]
    [config] = find(docs, "ConfigMap", "t-proctor")
    worker_uid = int(config["data"]["PROCTOR_WORKER_RUN_AS_USER"])
    assert _user(IMAGES / "operator" / "Dockerfile") == f"{pod_uid}:{pod_uid}"
    assert _user(IMAGES / "worker" / "Dockerfile") == f"{worker_uid}:{worker_uid}"
    assert worker_uid == OperatorConfig().run_as_user != 0


def test_the_judge_image_is_the_judgeserver_default_vllm_tag():
    from proctor.api.judgeserver import DEFAULT_VLLM_IMAGE

    [base] = [ins.args for ins in instructions(IMAGES / "judge" / "Dockerfile") if ins.op == "FROM"]
    assert base == DEFAULT_VLLM_IMAGE
    assert re.fullmatch(r"vllm/vllm-openai:v\d+\.\d+\.\d+", base), "pinned by an exact version tag"


def test_worker_image_has_the_browser_fonts_tex_and_library_cache():
    text = " ".join(ins.args for ins in instructions(IMAGES / "worker" / "Dockerfile"))
    for package in (
        "chromium",
        "fonts-noto-cjk",
        "fonts-noto-color-emoji",
        "texlive-latex-base",
        "latexmk",
        "poppler-utils",
    ):
        assert re.search(rf"\b{re.escape(package)}\b", text), package
    assert "build_cache()" in text  # the library cache, baked in
    env = " ".join(ins.args for ins in instructions(IMAGES / "worker" / "Dockerfile") if ins.op == "ENV")
    assert "PROCTOR_LIBCACHE=/opt/proctor-libcache" in env
    # The render farm finds Chromium where Debian puts it.
    assert "PROCTOR_CHROMIUM=/usr/bin/chromium" in env
    assert "playwright install" not in text


def test_operator_image_is_slim():
    text = " ".join(ins.args for ins in instructions(IMAGES / "operator" / "Dockerfile"))
    for heavy in ("chromium", "texlive", "render", "vision2code"):
        assert heavy not in text, heavy
    assert "requirements.py pyproject.toml --only operator >" in text


def test_images_install_the_dependencies_of_exactly_the_extras_they_name():
    sys.path.insert(0, str(IMAGES))
    try:
        from requirements import requirements
    finally:
        sys.path.remove(str(IMAGES))
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    worker = requirements(pyproject, ["render", "vision2code", "judge"])
    assert {"playwright>=1.44", "matplotlib>=3.8", "openai>=1.40"} <= set(worker)
    assert set(pyproject["project"]["dependencies"]) <= set(worker)
    assert not any(r.startswith(("kopf", "kubernetes")) for r in worker)
    # `proctor[...]` (the project's own extras) expands to theirs
    assert set(requirements(pyproject, ["all"])) >= set(worker) | {"kopf>=1.37"}
    # The operator image: the control plane's extra alone, none of the project's data-plane dependencies.
    operator = requirements(pyproject, ["operator"], core=False)
    assert {"kopf>=1.37", "kubernetes>=29", "boto3>=1.34", "pydantic>=2.7,<3"} <= set(operator)
    assert not any(r.startswith(("numpy", "pillow", "pylint", "openai", "playwright")) for r in operator)


def _runs_help(argv: list[str]) -> subprocess.CompletedProcess:
    executable = VENV_BIN / argv[0]
    assert executable.exists(), f"{argv[0]} is not installed in {VENV_BIN} (pip install -e .)"
    env = {**os.environ, "PATH": f"{VENV_BIN}:{os.environ.get('PATH', '')}"}
    done = subprocess.run(
        [str(executable), *argv[1:], "--help"], capture_output=True, text=True, timeout=120, env=env
    )
    assert done.returncode == 0, f"{argv} --help failed:\n{done.stderr[-2000:]}"
    assert "usage:" in done.stdout, done.stdout[:500]
    return done


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_dockerfile_entrypoints_answer_help(dockerfile):
    ops = {ins.op: ins.args for ins in instructions(dockerfile)}
    if "ENTRYPOINT" not in ops:
        assert dockerfile.parent.name == "judge", f"{dockerfile} has no entry point"
        return  # vLLM's own (`vllm serve`), which needs a GPU machine
    argv = exec_form(ops["ENTRYPOINT"]) + (exec_form(ops["CMD"]) if "CMD" in ops else [])
    _runs_help(argv)


def test_chart_entrypoints_answer_help(helm_template):
    docs = helm_template()
    [deployment] = find(docs, "Deployment")
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["proctor", "operator"]
    done = _runs_help(container["command"])
    # Every flag the chart passes is one the command knows.
    for arg in container["args"]:
        flag = arg.split("=", 1)[0]
        assert flag in done.stdout, f"the chart passes {flag}, which `proctor operator` does not know"
    [config] = find(docs, "ConfigMap", "t-proctor")
    worker = json.loads(config["data"]["PROCTOR_WORKER_COMMAND"])
    ingest = json.loads(config["data"]["PROCTOR_INGEST_COMMAND"])
    aggregate = json.loads(config["data"]["PROCTOR_AGGREGATE_COMMAND"])
    calibrate = json.loads(config["data"]["PROCTOR_CALIBRATE_COMMAND"])
    assert worker == ["proctor-worker"] and ingest == ["proctor", "ingest"]
    assert aggregate == ["proctor", "aggregate"] and calibrate == ["proctor", "judge", "check"]
    assert "--stage" in _runs_help(worker).stdout
    assert "--source" in _runs_help(ingest).stdout
    assert "--run" in _runs_help(aggregate).stdout
    assert "--result-file" in _runs_help(calibrate).stdout


@pytest.mark.parametrize(
    ("argv", "clusterwide", "namespaces"),
    [(["operator", "--standalone"], True, []), (["operator", "-n", "evals"], False, ["evals"])],
)
def test_the_operator_command_hands_kopf_a_namespace_collection_never_none(
    monkeypatch, argv, clusterwide, namespaces
):
    """`proctor operator` cluster-wide passed namespaces=None, and kopf's namespace observer iterates
    it: the chart's default operator died at start (found by the image smoke test,
    tests/integration/test_images.py)."""
    import kopf

    import proctor.controllers.bootstrap as bootstrap
    from proctor.cli import build_parser

    seen = {}

    async def fake_operator(**kwargs):
        seen.update(kwargs)

    monkeypatch.setattr(kopf, "operator", fake_operator)
    monkeypatch.setattr(bootstrap, "services_for", lambda config: None)
    monkeypatch.delenv("PROCTOR_NAMESPACES", raising=False)
    args = build_parser().parse_args([*argv, "--metrics-port=0"])
    assert args.handler(args) == 0
    assert seen["clusterwide"] is clusterwide and list(seen["namespaces"]) == namespaces

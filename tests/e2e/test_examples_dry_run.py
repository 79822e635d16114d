"""Every example manifest is accepted by the real API server (server-side dry run, CRDs installed).

A dry run goes through everything an apply does — decoding, the CRDs' structural schemas and their CEL
rules, defaulting, admission — and stores nothing. So a field an example misspells, a value out of
bounds or a rule it breaks fails here, in CI, before a user copies it.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"


def manifest_files() -> list[Path]:
    """Every YAML file under examples/ that holds Kubernetes objects (data files hold none)."""
    files = []
    for path in sorted(EXAMPLES.rglob("*.yaml")):
        docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
        if docs and all(isinstance(d, dict) and "apiVersion" in d and "kind" in d for d in docs):
            files.append(path)
    return files


def test_every_example_folder_has_manifests():
    folders = {p.relative_to(EXAMPLES).parts[0] for p in manifest_files()}
    assert folders >= {"quickstart", "humanevalv", "artifactsbench", "vision2code", "artevalbench"}
    # The cluster variants this project ships beside the local ones.
    names = {p.relative_to(EXAMPLES).as_posix() for p in manifest_files()}
    assert {
        "artifactsbench/qwen-judge/judgeserver.yaml",
        "artifactsbench/external-judge/judgeserver.yaml",
        "vision2code/cluster/evalrun.yaml",
        "artevalbench/cluster/evalrun.yaml",
    } <= names


def test_every_example_is_accepted_by_a_server_side_dry_run(k8s, crds):
    files = manifest_files()
    expected = 0
    for path in files:
        expected += sum(1 for d in yaml.safe_load_all(path.read_text()) if d)
    namespace = f"examples-{uuid.uuid4().hex[:6]}"
    k8s.create_namespace(namespace)
    try:
        args = [
            "apply",
            "--dry-run=server",
            "--server-side",
            "--field-manager=proctor-examples",
            "-n",
            namespace,
        ]
        for path in files:
            args += ["-f", str(path)]
        done = k8s.kubectl(*args, check=False, timeout=120)
        assert done.returncode == 0, done.stderr
        accepted = [line for line in done.stdout.splitlines() if "(server dry run)" in line]
        assert len(accepted) == expected, done.stdout
        # Nothing was stored.
        listed = k8s.kubectl("get", "evalruns,judgeservers,artifacts", "-n", namespace, "-o", "name").stdout
        assert listed.strip() == ""
    finally:
        k8s.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def test_the_dry_run_refuses_a_broken_example(k8s, crds, tmp_path):
    """The check can fail: the same example with a misspelt field and an out-of-range value is refused."""
    run = yaml.safe_load((EXAMPLES / "artifactsbench" / "qwen-judge" / "evalrun.yaml").read_text())
    run["spec"]["judge"]["screenshot"] = 3  # misspelt (screenshots)
    server = yaml.safe_load((EXAMPLES / "artifactsbench" / "qwen-judge" / "judgeserver.yaml").read_text())
    server["spec"]["vllm"]["tensorParallelSize"] = 0
    broken = tmp_path / "broken.yaml"
    broken.write_text(yaml.safe_dump_all([run, server]))
    done = k8s.kubectl(
        "apply", "--dry-run=server", "--server-side", "-n", "default", "-f", str(broken), check=False
    )
    assert done.returncode != 0
    assert "screenshot" in done.stderr and "spec.vllm.tensorParallelSize" in done.stderr, done.stderr

"""CRDs are generated from the models, current in the repo, and structural."""

from __future__ import annotations

import subprocess
import sys

import yaml

from proctor.api import crdgen


def _walk(node, path="$"):
    yield path, node
    if isinstance(node, dict):
        for key in ("properties",):
            for name, sub in node.get(key, {}).items():
                yield from _walk(sub, f"{path}.{name}")
        if isinstance(node.get("items"), dict):
            yield from _walk(node["items"], f"{path}[]")
        if isinstance(node.get("additionalProperties"), dict):
            yield from _walk(node["additionalProperties"], f"{path}{{}}")


def test_committed_crds_are_current(repo_root):
    proc = subprocess.run(
        [sys.executable, "-m", "proctor", "crds", "--check", "--out", str(repo_root / "crds")],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr


def test_check_detects_staleness(tmp_path):
    crdgen.write(tmp_path)
    path = next(tmp_path.glob("evalruns*.yaml"))
    path.write_text(path.read_text().replace("shardSize", "shardSise"))
    assert crdgen.stale(tmp_path) == [path.name]


def test_schemas_are_structural():
    for text in crdgen.render_all().values():
        crd = yaml.safe_load(text)
        [version] = crd["spec"]["versions"]
        schema = version["schema"]["openAPIV3Schema"]
        for path, node in _walk(schema):
            for banned in ("$ref", "anyOf", "oneOf", "allOf", "const", "title", "$defs"):
                assert banned not in node, f"{crd['metadata']['name']} {path}: {banned}"
            assert node.get("additionalProperties") is not False, path
            typed = "type" in node or node.get("x-kubernetes-int-or-string")
            assert typed, f"{crd['metadata']['name']} {path} has no type"
            if "properties" in node:
                assert "additionalProperties" not in node, path
            if node.get("type") == "integer" and "default" in node:
                assert isinstance(node["default"], int), path


def test_crds_have_status_columns_and_short_names():
    crds = {
        yaml.safe_load(t)["spec"]["names"]["kind"]: yaml.safe_load(t) for t in crdgen.render_all().values()
    }
    assert set(crds) == {"EvalRun", "JudgeServer", "Artifact"}
    run = crds["EvalRun"]["spec"]
    [version] = run["versions"]
    assert version["subresources"] == {"status": {}}
    columns = {c["name"]: c["jsonPath"] for c in version["additionalPrinterColumns"]}
    assert columns["Phase"] == ".status.phase"
    assert columns["Progress"] == ".status.progress"
    assert columns["Score"] == ".status.score"
    assert columns["Age"] == ".metadata.creationTimestamp"
    assert "er" in run["names"]["shortNames"]
    spec = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert spec["properties"]["sharding"]["properties"]["shardSize"] == {
        "default": 50,
        "description": "items per shard",
        "maximum": 100000,
        "minimum": 1,
        "type": "integer",
    }
    assert spec["properties"]["render"]["default"] == {}  # nested defaults apply when omitted
    assert "x-kubernetes-validations" in spec["properties"]["benchmark"]
    fmt = spec["properties"]["benchmark"]["properties"]["format"]
    assert fmt["enum"] == ["artifactsbench", "vision2code", "humanevalv", "artevalbench", "jsonl"]

"""The test kubelet's pure rules (no servers needed): `$(VAR)` expansion, the downward API,
quantities and the rewriting of mount paths."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from tests.cluster import kubelet_spec as ks

POD = {
    "metadata": {
        "name": "p",
        "namespace": "ns",
        "uid": "u-1",
        "labels": {"a": "1", "b": "2"},
        "annotations": {"batch.kubernetes.io/job-completion-index": "4"},
    },
    "spec": {
        "nodeName": "n",
        "serviceAccountName": "sa",
        "containers": [
            {"name": "c", "resources": {"requests": {"cpu": "250m"}, "limits": {"memory": "1Gi"}}}
        ],
    },
}


def test_expand_follows_kubernetes_rules() -> None:
    env = {"A": "x", "B": "y"}
    assert ks.expand("$(A)-$(B)", env) == "x-y"
    assert ks.expand("$$(A) $(MISSING) $A $", env) == "$(A) $(MISSING) $A $"
    assert ks.expand("$(A", env) == "$(A"


def test_downward_api_fields() -> None:
    assert ks.field_value(POD, "metadata.annotations['batch.kubernetes.io/job-completion-index']") == "4"
    assert ks.field_value(POD, "metadata.labels") == 'a="1"\nb="2"'
    assert ks.field_value(POD, "status.podIP") == "127.0.0.1"
    assert ks.field_value(POD, "spec.serviceAccountName") == "sa"
    with pytest.raises(ValueError):
        ks.field_value(POD, "spec.nope")


def test_resource_field_refs_and_quantities() -> None:
    alloc = {"cpu": "16", "memory": "64Gi"}
    assert ks.quantity("1.5Gi") == Decimal(1.5 * 2**30)
    assert ks.resource_value(POD, {"resource": "requests.cpu", "divisor": "1m"}, "c", alloc) == "250"
    assert ks.resource_value(POD, {"resource": "requests.cpu"}, "c", alloc) == "1"  # rounded up
    assert ks.resource_value(POD, {"resource": "limits.memory", "divisor": "1Mi"}, "c", alloc) == "1024"
    assert ks.resource_value(POD, {"resource": "limits.cpu"}, "c", alloc) == "16"  # unset: allocatable


def test_build_env_order_and_refs() -> None:
    data = {("configmap", "cm"): {"k": b"v", "mode": b"fast"}, ("secret", "s"): {"pw": b"p"}}

    def lookup(kind: str, name: str, optional: bool) -> dict[str, bytes] | None:
        found = data.get((kind, name))
        if found is None and not optional:
            raise LookupError(name)
        return found

    container = {
        "name": "c",
        "envFrom": [{"prefix": "X_", "configMapRef": {"name": "cm"}}],
        "env": [
            {"name": "M", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "mode"}}},
            {"name": "PW", "valueFrom": {"secretKeyRef": {"name": "s", "key": "pw"}}},
            {"name": "BOTH", "value": "$(M):$(PW):$(BASE)"},
            {"name": "OPT", "valueFrom": {"secretKeyRef": {"name": "gone", "key": "x", "optional": True}}},
        ],
    }
    env = ks.build_env(POD, container, {"BASE": "b"}, lookup, {})
    assert env == {"BASE": "b", "X_k": "v", "X_mode": "fast", "M": "fast", "PW": "p", "BOTH": "fast:p:b"}
    container["env"].append({"name": "REQ", "valueFrom": {"secretKeyRef": {"name": "gone", "key": "x"}}})
    with pytest.raises(LookupError):
        ks.build_env(POD, container, {}, lookup, {})


def test_path_rewriter_rewrites_whole_prefixes_once() -> None:
    rewrite = ks.PathRewriter({"/data": Path("/h/data"), "/data/sub": Path("/h/sub"), "/tmp": Path("/h/tmp")})
    assert rewrite("--out=/data/x") == "--out=/h/data/x"
    assert rewrite("/data/sub/y") == "/h/sub/y"  # the longest mount path wins
    assert rewrite("/database /srv/data /data") == "/database /srv/data /h/data"
    assert rewrite("/tmp/a:/data") == "/h/tmp/a:/h/data"
    assert ks.PathRewriter({"/tmp": Path("/tmp/pods/x")})("/tmp/f") == "/tmp/pods/x/f"  # never twice


def test_path_rewriter_leaves_the_images_own_files_alone_under_a_mount_path() -> None:
    # The repository cloned under /tmp, an emptyDir at /tmp: the worker command names the image's
    # Python, which no mount shadows; other /tmp paths still go to the volume.
    rewrite = ks.PathRewriter({"/tmp": Path("/h/tmp")}, keep=["/tmp/clone/"])
    assert rewrite("/tmp/clone/.venv/bin/python") == "/tmp/clone/.venv/bin/python"
    assert rewrite("CMD=/tmp/clone") == "CMD=/tmp/clone"
    assert rewrite("/tmp/clone2/x /tmp/scratch") == "/h/tmp/clone2/x /h/tmp/scratch"

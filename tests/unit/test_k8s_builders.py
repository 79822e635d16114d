"""Job, Deployment, Service and NetworkPolicy builders: pure functions, checked without a cluster."""

from __future__ import annotations

import pytest

from proctor.config import OperatorConfig
from proctor.k8s import (
    WorkerContext,
    build_deployment,
    build_item_job,
    build_network_policy,
    build_service,
    build_stage_job,
)
from proctor.k8s.judge import vllm_args
from proctor.k8s.names import dns_label, stage_job_name


def ctx(**spec) -> WorkerContext:
    return WorkerContext(
        namespace="team",
        run_name="my-run",
        run_uid="uid-1",
        spec={"parallelism": 4, "retries": {"backoffLimitPerIndex": 2}, **spec},
        run_prefix="runs/team/my-run/uid-1",
        store_url="s3://bucket/proctor?addressing=path",
        config=OperatorConfig(images={"default": "worker:1", "render": "render:1"}),
        store_env={"AWS_ENDPOINT_URL": "http://s3:9000"},
        credentials_secret="store-creds",
        judge_api_key={"name": "judge", "key": "token"},
    )


def test_stage_job_is_indexed_with_shards_as_completions():
    job = build_stage_job(ctx(), "render", "render", shards=10)
    spec = job["spec"]
    assert job["metadata"]["name"] == "my-run-render"
    assert (spec["completionMode"], spec["completions"], spec["parallelism"]) == ("Indexed", 10, 4)
    assert spec["backoffLimitPerIndex"] == 2
    assert spec["podReplacementPolicy"] == "Failed"
    assert spec["podFailurePolicy"]["rules"] == [
        {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]}
    ]
    assert job["metadata"]["ownerReferences"][0] == {
        "apiVersion": "proctor.dev/v1alpha1",
        "kind": "EvalRun",
        "name": "my-run",
        "uid": "uid-1",
        "controller": True,
        "blockOwnerDeletion": True,
    }
    container = spec["template"]["spec"]["containers"][0]
    assert container["image"] == "render:1"
    assert container["command"] == ["proctor-worker"]
    assert container["args"][:6] == [
        "--store",
        "s3://bucket/proctor?addressing=path",
        "--run",
        "runs/team/my-run/uid-1",
        "--stage",
        "render",
    ]
    assert container["envFrom"] == [{"secretRef": {"name": "store-creds"}}]
    env = {e["name"]: e for e in container["env"]}
    assert env["TMPDIR"]["value"] == "/scratch"


def test_only_stages_that_call_a_model_get_the_judge_key():
    """Pods that run or render answers never hold the judge's key (a hostile answer could read it)."""
    stages = (("render", "render"), ("oracle", "oracle"), ("judge", "judge"), ("generate", "judge"))
    for stage, kind in stages:
        container = build_stage_job(ctx(), stage, kind, shards=1)["spec"]["template"]["spec"]["containers"][0]
        env = {e["name"]: e for e in container["env"]}
        if stage in ("judge", "generate"):
            key = env["PROCTOR_JUDGE_API_KEY"]["valueFrom"]
            assert key == {"secretKeyRef": {"name": "judge", "key": "token"}}
        else:
            assert "PROCTOR_JUDGE_API_KEY" not in env, stage


def test_parallelism_never_exceeds_the_shard_count():
    assert build_stage_job(ctx(parallelism=50), "oracle", "oracle", shards=3)["spec"]["parallelism"] == 3


def test_worker_pods_are_hardened():
    pod = build_stage_job(ctx(runtimeClassName="gvisor"), "oracle", "oracle", 1)["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    assert pod["runtimeClassName"] == "gvisor"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    security = pod["containers"][0]["securityContext"]
    assert security == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
        "runAsNonRoot": True,
    }
    assert {"name": "scratch", "emptyDir": {}} in pod["volumes"]


def test_suspend_and_queue_name():
    assert build_stage_job(ctx(suspend=True), "oracle", "oracle", 1)["spec"]["suspend"] is True
    queued = build_stage_job(ctx(queueName="gpu-queue"), "oracle", "oracle", 1)
    assert queued["spec"]["suspend"] is True
    assert queued["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "gpu-queue"
    assert build_stage_job(ctx(), "oracle", "oracle", 1)["spec"]["suspend"] is False


def test_item_job_takes_image_gpu_deadline_and_workspace_from_the_item():
    item = {
        "job": {
            "image": "artifact:1",
            "gpu": True,
            "timeout_seconds": 7200,
            "privileged": True,
            "workspace": "emptyDir",
        }
    }
    job = build_item_job(ctx(), "oracle", "oracle", 3, item)
    spec = job["spec"]
    pod = spec["template"]["spec"]
    container = pod["containers"][0]
    assert job["metadata"]["name"] == "my-run-oracle-3"
    assert container["image"] == "artifact:1"
    assert container["args"][-2:] == ["--index", "3"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
    assert spec["activeDeadlineSeconds"] == 7200
    # privileged only when the EvalRun asks for it explicitly
    assert container["securityContext"].get("privileged") is not True
    allowed = build_item_job(ctx(oracle={"privileged": True}), "oracle", "oracle", 3, item)
    assert allowed["spec"]["template"]["spec"]["containers"][0]["securityContext"] == {"privileged": True}
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts["workspace"] == "/workspace"
    pvc = build_item_job(ctx(), "oracle", "oracle", 0, {"job": {"workspace": "big-disk"}})
    volumes = {v["name"]: v for v in pvc["spec"]["template"]["spec"]["volumes"]}
    assert volumes["workspace"]["persistentVolumeClaim"] == {"claimName": "big-disk"}


def test_names_are_deterministic_valid_labels():
    assert stage_job_name("my-run", "render") == "my-run-render"
    long = stage_job_name("a" * 80, "judge")
    assert len(long) <= 63 and long == stage_job_name("a" * 80, "judge")
    assert long != stage_job_name("a" * 79 + "b", "judge")
    assert dns_label("Run_With.Dots") != "Run_With.Dots" and len(dns_label("x" * 100)) <= 63


def test_a_label_value_is_always_valid_even_when_a_long_name_is_cut_at_a_dash():
    """A name 253 characters long is legal for an object but not as a label value; cutting it at 63 can
    leave a trailing '-' or '.', which the API server refuses (422) on every retry."""
    import re

    from proctor.k8s.names import label_value

    valid = re.compile(r"([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?")
    for name in ("a" * 62 + "-b", "run." + "x" * 58 + ".y", "r" * 200, "my-run", "a-" * 40):
        value = label_value(name)
        assert len(value) <= 63 and valid.fullmatch(value), (name, value)
        assert value == label_value(name)  # deterministic: selectors find it again
    assert label_value("my-run") == "my-run"
    assert label_value("a" * 62 + "-b") != label_value("a" * 62 + "-c")


VLLM = {
    "vllm": {
        "model": "Qwen/Qwen2.5-VL-72B-Instruct",
        "image": "vllm/vllm-openai:v0.11.0",
        "tensorParallelSize": 8,
        "gpus": 8,
        "maxModelLen": 32768,
        "imagesPerPrompt": 3,
        "dtype": "bfloat16",
        "gpuMemoryUtilization": 0.92,
        "extraArgs": ["--enforce-eager"],
        "nodeSelector": {"gpu": "h100"},
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists"}],
        "runtimeClassName": "nvidia",
        "modelCachePvc": "models",
        "shmSize": "32Gi",
    }
}


def test_vllm_deployment_carries_the_spec():
    deployment = build_deployment("team", "qwen", "uid-2", VLLM)
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    args = container["args"]
    for flag, value in (
        ("--tensor-parallel-size", "8"),
        ("--max-model-len", "32768"),
        ("--dtype", "bfloat16"),
        ("--gpu-memory-utilization", "0.92"),
        ("--served-model-name", "Qwen/Qwen2.5-VL-72B-Instruct"),
        ("--limit-mm-per-prompt", '{"image": 3}'),
    ):
        assert args[args.index(flag) + 1] == value
    assert args[-1] == "--enforce-eager"
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "8"
    assert pod["nodeSelector"] == {"gpu": "h100"} and pod["runtimeClassName"] == "nvidia"
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["dshm"]["emptyDir"] == {"medium": "Memory", "sizeLimit": "32Gi"}
    assert volumes["models"]["persistentVolumeClaim"] == {"claimName": "models"}
    assert container["startupProbe"]["httpGet"]["path"] == "/health"
    assert container["readinessProbe"]["httpGet"]["path"] == "/v1/models"


def test_unset_replicas_are_left_to_an_autoscaler():
    spec = {"vllm": {**VLLM["vllm"], "replicas": None}}
    assert "replicas" not in build_deployment("team", "qwen", "uid", spec)["spec"]
    spec = {"vllm": {**VLLM["vllm"], "replicas": 3}}
    assert build_deployment("team", "qwen", "uid", spec)["spec"]["replicas"] == 3


def test_service_points_at_the_judge_pods():
    service = build_service("team", "qwen", "uid", VLLM)
    deployment = build_deployment("team", "qwen", "uid", VLLM)
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    assert service["spec"]["ports"][0]["port"] == 8000


def test_vllm_model_name_resolves_into_the_cache_volume():
    # The model is `vllm serve`'s positional argument, first.
    assert vllm_args({"model": "local-model", "modelCachePvc": "m"})[0] == "/models/local-model"
    assert vllm_args({"model": "org/model"})[0] == "org/model"


@pytest.mark.parametrize(("judge", "external", "expect_port"), [("qwen", False, 8000), (None, True, 443)])
def test_network_policy_allows_only_dns_store_and_judge(judge, external, expect_port):
    c = ctx()
    c.config.store_egress_cidrs = ["10.0.0.5/32"]
    policy = build_network_policy(
        c, judge_server=judge, judge_port=8000 if judge else None, external_judge=external
    )
    spec = policy["spec"]
    assert spec["policyTypes"] == ["Ingress", "Egress"] and spec["ingress"] == []
    assert spec["podSelector"]["matchLabels"]["proctor.dev/run-uid"] == "uid-1"
    ports = [p["port"] for rule in spec["egress"] for p in rule.get("ports", [])]
    assert 53 in ports and expect_port in ports
    assert {"ipBlock": {"cidr": "10.0.0.5/32"}} in [t for rule in spec["egress"] for t in rule.get("to", [])]


def test_the_selftest_pod_is_a_worker_pod_without_any_secret():
    """`proctor selftest --cluster` must attack what answers really get: the same hardening, seccomp
    profile, runtime class and placement as an oracle worker — and it must hold nothing worth stealing."""
    from proctor.k8s.jobs import build_selftest_job, selftest_command

    config = OperatorConfig(
        images={"default": "worker:1"},
        worker_seccomp_profile={"type": "Localhost", "localhostProfile": "proctor/sandbox.json"},
        runtime_class_name="gvisor",
        node_selector={"pool": "eval"},
    )
    job = build_selftest_job(
        config, "team", "proctor-selftest-1", "proctor-selftest-1", ["--target", "oracle"]
    )
    worker = build_stage_job(ctx(), "oracle", "oracle", shards=1)["spec"]["template"]["spec"]
    pod = job["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert pod["securityContext"]["seccompProfile"] == config.worker_seccomp_profile
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"] == worker["containers"][0]["securityContext"]
    assert pod["automountServiceAccountToken"] is False
    assert (pod["runtimeClassName"], pod["nodeSelector"]) == ("gvisor", {"pool": "eval"})
    assert "envFrom" not in container
    assert not [e for e in container["env"] if "AWS" in e["name"] or "JUDGE" in e["name"]]
    assert container["image"] == "worker:1"
    assert container["args"] == ["--cases", "/cases", "--json", "--target", "oracle"]
    assert {"name": "cases", "configMap": {"name": "proctor-selftest-1"}} in pod["volumes"]
    assert job["spec"]["backoffLimit"] == 0 and "ownerReferences" not in job["metadata"]
    assert selftest_command(["proctor-worker"]) == ["python", "-m", "proctor_jobs.selftest"]
    assert selftest_command(["/v/python", "-m", "proctor_jobs.worker"]) == [
        "/v/python",
        "-m",
        "proctor_jobs.selftest",
    ]


def test_every_kind_of_pod_proctor_creates_is_hardened_alike():
    """Stage, item, aggregate, selftest, ingest and calibration pods all come out of one builder: an
    admin's seccomp profile, runtime class, nodes and tolerations reach every one of them, and none
    holds a service-account token. (A hand-built ingest pod once got its seccomp profile renamed into
    a value the API server refuses, and never got the admin's runtime class.)"""
    from proctor.k8s.ingest import build_ingest_job
    from proctor.k8s.jobs import build_aggregate_job, build_selftest_job
    from proctor.k8s.judge import build_calibration_job

    config = OperatorConfig(
        images={"default": "worker:1"},
        worker_seccomp_profile={"type": "Localhost", "localhostProfile": "proctor/sandbox.json"},
        runtime_class_name="gvisor",
        node_selector={"pool": "workers"},
        tolerations=[{"key": "workers", "operator": "Exists", "effect": "NoSchedule"}],
    )
    run = ctx()
    run.config = config
    artifact = {
        "metadata": {"name": "tasks", "namespace": "team", "uid": "u", "generation": 1},
        "spec": {"type": "benchmark", "format": "humanevalv", "source": {"s3": {"uri": "s3://b/k"}}},
    }
    jobs = {
        "stage": build_stage_job(run, "oracle", "oracle", 2),
        "item": build_item_job(run, "oracle", "oracle", 0, {"job": {}}),
        "aggregate": build_aggregate_job(run, "req-1"),
        "selftest": build_selftest_job(config, "team", "selftest", "cases", []),
        "ingest": build_ingest_job(config, artifact, "s3://b/p", {}, "store-creds"),
        "calibration": build_calibration_job(
            "team",
            "judge",
            "u",
            endpoint="http://j",
            model="m",
            choice="all",
            attempt=1,
            api_key=None,
            config=config,
        ),
    }
    for kind, job in jobs.items():
        pod = job["spec"]["template"]["spec"]
        [container] = pod["containers"]
        assert pod["securityContext"] == {
            "runAsNonRoot": True,
            "runAsUser": config.run_as_user,
            "runAsGroup": config.run_as_user,
            "fsGroup": config.run_as_user,
            "seccompProfile": config.worker_seccomp_profile,
        }, kind
        assert container["securityContext"] == {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
            "runAsNonRoot": True,
        }, kind
        assert pod["automountServiceAccountToken"] is False and pod["enableServiceLinks"] is False, kind
        assert pod["restartPolicy"] == "Never", kind
        assert pod["runtimeClassName"] == "gvisor", kind
        assert pod["nodeSelector"] == {"pool": "workers"}, kind
        assert pod["tolerations"] == config.tolerations, kind
        assert container["imagePullPolicy"] == config.image_pull_policy, kind
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert env["HOME"] == env["TMPDIR"] == "/scratch", kind  # the root is read-only
        assert {"name": "scratch", "mountPath": "/scratch"} in container["volumeMounts"], kind

"""JudgeServers on the real control plane: readiness means served; runs wait for their judge."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest

from tests.e2e.conftest import wait_for
from tests.e2e.test_operator_humanevalv import EXAMPLE, yaml_run
from tests.integration.test_local_humanevalv import EXPECTED_N6

pytestmark = pytest.mark.e2e


def external_judge(name: str, url: str, model: str = "judge-double", **spec) -> dict:
    return {
        "apiVersion": "proctor.dev/v1alpha1",
        "kind": "JudgeServer",
        "metadata": {"name": name},
        "spec": {"external": {"baseUrl": url, "model": model}, "maxConcurrency": 8, **spec},
    }


def test_a_run_waits_for_a_missing_judge_and_starts_when_it_appears(kube, operator, judge_double_process):
    kube("apply", "-f", str(EXAMPLE / "inputs.yaml"))
    kube.apply(yaml_run("needs-judge", judge={"serverRef": {"name": "late-judge"}}))

    def reason():
        run = kube.get("evalrun", "needs-judge") or {}
        conditions = {c["type"]: c for c in (run.get("status") or {}).get("conditions") or []}
        return conditions.get("InputsReady", {}).get("reason")

    assert wait_for(lambda: reason() == "JudgeNotFound", 60, "reason JudgeNotFound")
    assert kube.phase("evalrun", "needs-judge") == "Pending"
    assert not kube.items("jobs", "proctor.dev/run=needs-judge")
    described = kube("describe", "evalrun", "needs-judge").stdout
    assert "JudgeServer 'late-judge' does not exist" in described

    judge = judge_double_process()
    kube.apply(external_judge("late-judge", judge.url))
    kube.wait_phase("judgeserver", "late-judge", ("Ready",), timeout=60)
    final = kube.wait_phase("evalrun", "needs-judge", ("Succeeded", "Failed"), timeout=240)
    assert final["status"]["scores"] == EXPECTED_N6


def test_external_judge_is_ready_only_after_a_served_one_image_completion(
    kube, operator, judge_double_process
):
    judge = judge_double_process()
    kube.apply(external_judge("good-judge", judge.url))
    ready = kube.wait_phase("judgeserver", "good-judge", ("Ready",), timeout=60)
    assert ready["status"]["endpoint"] == judge.url
    assert ready["status"]["model"] == "judge-double"
    [check] = judge.log()[:1]  # the double logs chat completions: the check sent one image
    assert check["images"] == 1 and check["model"] == "judge-double"

    # A model the server does not serve never becomes Ready, and says why.
    kube.apply(external_judge("wrong-model", judge.url, model="not-served"))
    bad = wait_for(
        lambda: (kube.get("judgeserver", "wrong-model") or {}).get("status", {}).get("message"),
        60,
        "a check result",
    )
    assert "not served" in bad
    assert kube.phase("judgeserver", "wrong-model") != "Ready"

    # A Ready judge is rechecked: when it goes away it becomes Degraded, and Ready again when it is back.
    port = judge.port
    judge.kill()
    degraded = kube.wait_phase("judgeserver", "good-judge", ("Degraded",), timeout=60)
    assert "cannot reach" in degraded["status"]["message"]
    judge_double_process(port=port)
    kube.wait_phase("judgeserver", "good-judge", ("Ready",), timeout=60)


def test_a_blind_judge_is_held_back_by_calibration_and_a_run_waiting_on_it_says_why(
    kube, operator, judge_double_process
):
    """A judge that ignores the images (the double's blind mode: a text-only model behind a multimodal
    name) answers the functional check, but not the calibration items: it stays not Ready with reason
    CalibrationFailed naming the items, and a run on it waits saying so. Seeing again, it passes."""
    judge = judge_double_process(blind=True)
    kube.apply(external_judge("blind-judge", judge.url, calibration={"enabled": True}))

    def calibration_failed():
        status = (kube.get("judgeserver", "blind-judge") or {}).get("status") or {}
        ready = {c["type"]: c for c in status.get("conditions") or []}.get("Ready", {})
        return status if ready.get("reason") == "CalibrationFailed" else None

    status = wait_for(calibration_failed, 120, "reason CalibrationFailed")
    assert status["phase"] == "Failed"
    assert status["message"].startswith("calibration failed on 6 of 7 items: ")
    assert "artifactsbench/calculator scored 50, expected 55-100" in status["message"]
    assert "without looking at the" in status["message"]  # what the judge said
    assert status["calibration"]["state"] == "Failed" and status["calibration"]["items"] == 7
    assert "vision2code/chartqa-exact" in status["calibration"]["failedItems"]
    # A calibration Job of the JudgeServer asked, not the operator's process.
    [job] = kube.items("jobs", "proctor.dev/component=calibration")
    assert job["metadata"]["name"] == status["calibration"]["job"]
    assert job["metadata"]["ownerReferences"][0]["name"] == "blind-judge"
    # It asked the benchmarks' prompts with their images, after the one-image functional check.
    asked = judge.log()
    assert any('"Overall Score"' in r["text"] and r["images"] == 1 for r in asked)
    assert any("category_scores" in r["text"] and r["images"] == 2 for r in asked)

    kube("apply", "-f", str(EXAMPLE / "inputs.yaml"))
    kube.apply(yaml_run("on-blind-judge", judge={"serverRef": {"name": "blind-judge"}}))

    def waiting():
        run = kube.get("evalrun", "on-blind-judge") or {}
        conditions = {c["type"]: c for c in (run.get("status") or {}).get("conditions") or []}
        inputs = conditions.get("InputsReady", {})
        # The failed calibration is retried every few seconds here (PROCTOR_JUDGE_RECHECK_SECONDS), so
        # the run also says "(Calibrating)" while a new attempt's Job asks: wait for the failure's words.
        failed = "JudgeServer 'blind-judge' is not ready (CalibrationFailed): calibration failed"
        return inputs if inputs.get("reason") == "JudgeNotReady" and failed in inputs["message"] else None

    inputs = wait_for(waiting, 60, "the run to wait with JudgeNotReady, saying the calibration failed")
    assert "artifactsbench/calculator scored 50" in inputs["message"]
    assert kube.phase("evalrun", "on-blind-judge") == "Pending"
    assert not kube.items("jobs", "proctor.dev/run=on-blind-judge")
    assert "CalibrationFailed" in kube("describe", "evalrun", "on-blind-judge").stdout

    # The same server, seeing again: the calibration is retried, passes, and the run goes ahead.
    request = urllib.request.Request(
        judge.url.rsplit("/v1", 1)[0] + "/_double/config",
        data=json.dumps({"blind": False}).encode(),
        headers={"Content-Type": "application/json"},
    )
    urllib.request.urlopen(request, timeout=10).read()
    ready = kube.wait_phase("judgeserver", "blind-judge", ("Ready",), timeout=120)
    assert ready["status"]["calibration"]["state"] == "Passed"
    assert ready["status"]["calibration"]["attempt"] >= 2  # a new Job asked again
    assert "calibration passed: 7 of 7" in ready["status"]["message"]
    final = kube.wait_phase("evalrun", "on-blind-judge", ("Succeeded", "Failed"), timeout=240)
    assert final["status"]["scores"] == EXPECTED_N6


def test_a_vllm_judge_gets_a_deployment_and_its_pods_reasons_in_conditions(kube, operator):
    judge = {
        "apiVersion": "proctor.dev/v1alpha1",
        "kind": "JudgeServer",
        "metadata": {"name": "qwen"},
        "spec": {
            "vllm": {
                "model": "Qwen/Qwen2.5-VL-72B-Instruct",
                "tensorParallelSize": 8,
                "gpus": 8,
                "maxModelLen": 32768,
                "imagesPerPrompt": 3,
                "nodeSelector": {"nvidia.com/gpu.product": "H100"},
                "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
            },
            "maxConcurrency": 64,
        },
    }
    kube.apply(judge)
    deployment = wait_for(lambda: kube.get("deployment", "qwen-judge"), 60, "the vLLM Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    args = container["args"]
    assert args[args.index("--tensor-parallel-size") + 1] == "8"
    assert args[args.index("--max-model-len") + 1] == "32768"
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "8"
    assert container["readinessProbe"]["httpGet"]["path"] == "/v1/models"
    assert container["startupProbe"]["httpGet"]["path"] == "/health"
    assert any(
        v.get("emptyDir", {}).get("medium") == "Memory"
        for v in deployment["spec"]["template"]["spec"]["volumes"]
    )
    assert kube.get("service", "qwen-judge")["spec"]["ports"][0]["port"] == 8000

    # The test node has no GPU and matches no selector: the pod cannot be scheduled, and the
    # JudgeServer says so instead of sitting in Loading forever.
    def unschedulable():
        status = (kube.get("judgeserver", "qwen") or {}).get("status") or {}
        return (
            status
            if status.get("phase") == "Pending" and "Unschedulable" in str(status.get("conditions"))
            else None
        )

    status = wait_for(unschedulable, 90, "an Unschedulable condition")
    pods = {c["type"]: c for c in status["conditions"]}["PodsHealthy"]
    assert pods["reason"] == "Unschedulable" and pods["status"] == "False"

    # Children converge. Only workers and the operator may call the judge:
    policy = kube.get("networkpolicy", "qwen-judge")
    assert policy["spec"]["podSelector"]["matchLabels"]["proctor.dev/judgeserver"] == "qwen"
    # a Service deleted by hand comes back (the watch wakes the judge's daemon; no resync needed)
    kube("delete", "service", "qwen-judge", "--wait=true")
    wait_for(lambda: kube.get("service", "qwen-judge"), 20, "the Service to come back")
    # a field the spec stops setting leaves the Deployment (a merge patch would have kept the
    # nodeSelector), and the Deployment is Proctor's by server-side apply
    judge["spec"]["vllm"].pop("nodeSelector")
    kube.apply(judge)

    def without_selector():
        deployment = kube.get("deployment", "qwen-judge") or {}
        pod = deployment.get("spec", {}).get("template", {}).get("spec", {})
        return deployment if pod and "nodeSelector" not in pod else None

    wait_for(without_selector, 30, "the nodeSelector to leave the Deployment")
    shown = kube("get", "deployment", "qwen-judge", "-o", "json", "--show-managed-fields")
    managers = {m["manager"]: m["operation"] for m in json.loads(shown.stdout)["metadata"]["managedFields"]}
    assert managers.get("proctor") == "Apply", managers


def test_a_judge_whose_server_binary_crashes_reports_crash_loop(kube, operator):
    # No GPU requirements: the test kubelet runs the command, `vllm` is not installed, so it crashes.
    judge = {
        "apiVersion": "proctor.dev/v1alpha1",
        "kind": "JudgeServer",
        "metadata": {"name": "crashy"},
        "spec": {"vllm": {"model": "tiny", "gpus": 0}, "maxConcurrency": 4},
    }
    kube.apply(judge)

    def failed():
        status = (kube.get("judgeserver", "crashy") or {}).get("status") or {}
        return status if status.get("phase") == "Failed" else None

    status = wait_for(failed, 120, "phase Failed from the crashing pods")
    reasons = {c["type"]: c["reason"] for c in status["conditions"]}
    assert reasons["PodsHealthy"] in ("CrashLoopBackOff", "StartError", "CreateContainerError")
    events = kube("get", "events", "--field-selector", "involvedObject.name=crashy").stdout
    assert "Failed" in events


VLLM_REFUSES = "vllm: error: unrecognized arguments: --no-such-vllm-flag"


def test_a_judge_whose_server_exits_on_a_bad_flag_shows_vllms_message(kube, operator, tmp_path):
    """`kubectl describe judgeserver` quotes the server's own last log lines when it crash-loops. A
    stand-in `vllm` (the pod's command) prints what vLLM prints for an unknown flag and exits 2;
    the operator reads the crashed run's log through pods/log (the test kubelet serves it)."""
    stand_in = tmp_path / "bin" / "vllm"
    stand_in.parent.mkdir()
    stand_in.write_text(
        "#!/bin/sh\n"
        'echo "INFO [api_server.py] vLLM API server version 0.34.0 (stand-in: $*)"\n'
        'echo "usage: vllm serve [model_tag] [options]" >&2\n'
        f'echo "{VLLM_REFUSES}" >&2\n'
        "exit 2\n"
    )
    stand_in.chmod(0o755)
    judge = {
        "apiVersion": "proctor.dev/v1alpha1",
        "kind": "JudgeServer",
        "metadata": {"name": "bad-flag"},
        "spec": {
            "vllm": {"model": "tiny", "gpus": 0, "extraArgs": ["--no-such-vllm-flag"]},
            "maxConcurrency": 4,
        },
    }
    kube.apply(judge)
    deployment = wait_for(lambda: kube.get("deployment", "bad-flag-judge"), 60, "the judge's Deployment")
    # The operator patches its Deployment only when the JudgeServer's spec changes: the stand-in stays
    # (the pod runs it with the Deployment's own arguments).
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["vllm", "serve"]
    patch = {"spec": {"template": {"spec": {"containers": [
        {"name": container["name"], "command": [str(stand_in), "serve"]}
    ]}}}}  # fmt: skip
    kube("patch", "deployment", "bad-flag-judge", "--type=strategic", "-p", json.dumps(patch))

    def quoted():
        status = (kube.get("judgeserver", "bad-flag") or {}).get("status") or {}
        return (
            status
            if status.get("phase") == "Failed" and VLLM_REFUSES in str(status.get("conditions"))
            else None
        )

    status = wait_for(quoted, 120, "vLLM's message in the Failed JudgeServer's condition")
    condition = {c["type"]: c for c in status["conditions"]}["PodsHealthy"]
    assert condition["reason"] == "CrashLoopBackOff" and "last log lines of pod" in condition["message"]
    described = kube("describe", "judgeserver", "bad-flag").stdout
    assert VLLM_REFUSES in described

    # An Event too, with the server's own words.
    def event():
        events = kube(
            "get", "events", "--field-selector", "involvedObject.name=bad-flag", "-o", "json"
        ).stdout
        items = json.loads(events)["items"]
        crashed = [e for e in items if e.get("reason") == "ServerCrashed"]
        return [e for e in crashed if VLLM_REFUSES in e.get("message", "")]

    # once per different excerpt, not once per restart (the Failed phase's own Event may quote it too)
    [posted] = wait_for(event, 30, "an Event quoting vLLM's message")
    assert posted["type"] == "Warning"


def test_artifact_with_an_invalid_record_names_it(kube, operator):
    bad = {
        "apiVersion": "proctor.dev/v1alpha1",
        "kind": "Artifact",
        "metadata": {"name": "broken-tasks"},
        "spec": {
            "type": "benchmark",
            "format": "humanevalv",
            "source": {
                "inline": [
                    {"qid": "a", "function_signature": "def solution(): pass", "test_script": "check()"},
                    {"qid": "b", "function_signature": "def solution(): pass"},
                ]
            },
        },
    }
    kube.apply(bad)
    status = kube.wait_phase("artifact", "broken-tasks", ("Invalid",), timeout=60)["status"]
    assert "record 2" in status["message"] and "test_script" in status["message"]
    [ready] = [c for c in status["conditions"] if c["type"] == "Ready"]
    assert ready["reason"] == "InvalidRecord"
    kube.apply(yaml_run("uses-broken", benchmark={"artifactRef": {"name": "broken-tasks"}}))

    def artifact_invalid():
        status = (kube.get("evalrun", "uses-broken") or {}).get("status") or {}
        return "ArtifactInvalid" in str(status.get("conditions"))

    wait_for(artifact_invalid, 60, "the run to report ArtifactInvalid")
    assert kube.phase("evalrun", "uses-broken") == "Pending"


def test_large_sources_are_ingested_by_a_job(kube, operator, s3):
    key = f"inputs-{kube.namespace}/tasks.jsonl"
    s3.client().put_object(
        Bucket=s3.bucket, Key=key, Body=(Path(EXAMPLE) / "data" / "tasks.jsonl").read_bytes()
    )
    kube.apply(
        {
            "apiVersion": "proctor.dev/v1alpha1",
            "kind": "Artifact",
            "metadata": {"name": "tasks-from-s3"},
            "spec": {
                "type": "benchmark",
                "format": "humanevalv",
                "source": {"s3": {"uri": f"s3://{s3.bucket}/{key}"}},
            },
        }
    )
    wait_for(lambda: kube.items("jobs", "proctor.dev/component=ingest"), 60, "an ingest Job")
    status = kube.wait_phase("artifact", "tasks-from-s3", ("Ready", "Invalid"), timeout=120)["status"]
    assert status["phase"] == "Ready" and status["items"] == 12
    assert status["categories"]["simulation"] == 2

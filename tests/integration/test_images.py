"""Smoke runs of the container images tests/setup.d/40-images.sh builds from images/*/Dockerfile, with
podman, the way the chart runs them: as the image's non-root uid, read-only root filesystem, all
capabilities dropped, no privilege escalation, no network (`--network none`: the container has a
loopback interface and nothing else). Writable scratch is a host directory owned by the image's uid
bound where the pod mounts its emptyDir (a `--tmpfs` would stay root-owned).

- operator: `proctor operator` starts and answers kopf's /healthz;
- worker: `proctor-worker` processes a one-item shard of the ArtifactsBench example's render stage
  (Debian's Chromium, libraries from the baked-in cache), of the HumanEval-V example's oracle stage
  (the sandbox) and of the Vision2Code example's render stage (matplotlib);
- judge: built on a stand-in for vLLM's image (not pullable here); its entrypoint, the JudgeServer
  Deployment's command and arguments and its environment are checked.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
VERSION = re.search(r'^version = "(.+)"$', (REPO / "pyproject.toml").read_text(), re.M).group(1)
OPERATOR = f"localhost/proctor-operator:{VERSION}"
WORKER = f"localhost/proctor-worker:{VERSION}"
JUDGE = f"localhost/proctor-judge:{VERSION}"
SECCOMP_PROFILE = REPO / "charts/proctor/files/seccomp/proctor-sandbox.json"  # the chart's, for `userns`


def _unavailable(message: str) -> None:
    if os.environ.get("PROCTOR_REQUIRE_ENV") == "1":
        pytest.fail(message)
    pytest.skip(message)


def podman(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(["podman", *args], capture_output=True, text=True, timeout=timeout)
    if check and done.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)}: exit {done.returncode}\n{done.stderr[-4000:]}")
    return done


def require_image(image: str) -> dict:
    if shutil.which("podman") is None:
        _unavailable("podman missing (tests/setup.d/40-images.sh installs it and builds the images)")
    if podman("image", "exists", image, check=False).returncode != 0:
        _unavailable(f"{image} missing (tests/setup.d/40-images.sh builds it)")
    return json.loads(podman("image", "inspect", image).stdout)[0]


def image_uid(config: dict) -> int:
    user = config["Config"].get("User") or ""
    assert re.fullmatch(r"\d+(:\d+)?", user), f"the image must name a numeric non-root user, not {user!r}"
    uid = int(user.split(":")[0])
    assert uid != 0
    return uid


def owned_dir(path: Path, uid: int) -> Path:
    """A host directory the image's uid owns (what an emptyDir with fsGroup gives the pod)."""
    path.mkdir(parents=True, exist_ok=True)
    for sub in [path, *path.rglob("*")]:
        os.chown(sub, uid, uid)
    return path


def hardened(uid: int) -> list[str]:
    """`podman run` flags equivalent to the pod securityContext the operator and chart emit."""
    return [
        "--network=none",
        "--read-only",
        "--read-only-tmpfs=false",
        f"--user={uid}:{uid}",
        "--cap-drop=all",
        "--security-opt=no-new-privileges",
    ]


# ---- operator ------------------------------------------------------------------------------------


def test_the_operator_image_runs_as_non_root_on_a_read_only_root_and_answers_healthz(tmp_path):
    config = require_image(OPERATOR)
    uid = image_uid(config)
    assert uid == 10001  # PROCTOR's chart: runAsUser 10001 (values.yaml podSecurityContext)
    assert config["Config"]["Entrypoint"] == ["proctor"]
    tmp = owned_dir(tmp_path / "tmp", uid)
    # A kubeconfig for an API server that is not there: kopf keeps retrying the cluster and its
    # liveness endpoint must answer regardless (that is what lets the kubelet judge the process).
    kubeconfig = tmp / "kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "c",
            }
        )
    )
    os.chown(kubeconfig, uid, uid)
    name = f"proctor-smoke-operator-{uuid.uuid4().hex[:8]}"
    podman(
        "run", "--detach", f"--name={name}", *hardened(uid), f"--volume={tmp}:/tmp",
        "--env=KUBECONFIG=/tmp/kubeconfig", OPERATOR,
        "operator", "--standalone", "--liveness-port=8081", "--metrics-port=8080", "--bind=127.0.0.1",
    )  # fmt: skip
    try:
        probe = (
            "import json, urllib.request;"
            "r = urllib.request.urlopen('http://127.0.0.1:8081/healthz', timeout=5);"
            "print(json.dumps({'status': r.status, 'body': r.read().decode()}))"
        )
        deadline, last = time.monotonic() + 90, None
        while time.monotonic() < deadline:
            last = podman("exec", name, "python", "-c", probe, check=False)
            if last.returncode == 0:
                break
            state = podman("inspect", "--format", "{{.State.Status}}", name).stdout.strip()
            assert state == "running", f"the operator exited: {podman('logs', name).stderr[-3000:]}"
            time.sleep(2)
        assert last is not None and last.returncode == 0, (
            f"no /healthz within 90 s: {last.stderr[-1000:] if last else ''}\n"
            f"{podman('logs', name, check=False).stderr[-3000:]}"
        )
        assert json.loads(last.stdout)["status"] == 200
        whoami = podman("exec", name, "python", "-c", "import os; print(os.getuid(), os.getgid())").stdout
        assert whoami.split() == [str(uid), str(uid)]
        readonly = podman("exec", name, "sh", "-c", "touch /opt/x 2>&1; echo $?", check=False).stdout
        assert "Read-only file system" in readonly
    finally:
        podman("rm", "--force", "--time=0", name, check=False)


CONTROL_PLANE = ("kopf", "kubernetes", "boto3", "aiohttp", "prometheus_client", "pydantic_settings", "yaml")
DATA_PLANE = ("openai", "PIL", "numpy", "pylint", "tokenizers", "matplotlib", "playwright", "scipy", "httpx")


def test_the_operator_image_holds_only_the_control_plane_and_still_plans_every_example(tmp_path):
    """No model client, image, numeric or lint library in the operator image (calibration, aggregation
    and reports run in Jobs on the worker image), and what the operator does with a run — read its
    manifest and inputs, plan it with its benchmark's adapter — works without them, for all four
    benchmarks (`proctor validate` makes `proctor run`'s checks and plans each EvalRun)."""
    config = require_image(OPERATOR)
    uid = image_uid(config)
    wanted = CONTROL_PLANE + DATA_PLANE
    probe = (
        "import importlib.util, json; print(json.dumps({m: bool(importlib.util.find_spec(m)) for m in %r}))"
    )
    found = podman("run", "--rm", *hardened(uid), "--entrypoint=python", OPERATOR, "-c", probe % (wanted,))
    assert json.loads(found.stdout) == {m: m in CONTROL_PLANE for m in wanted}, found.stdout
    tmp = owned_dir(tmp_path / "tmp", uid)
    manifests = sorted(str(p.relative_to(EXAMPLES)) for p in EXAMPLES.glob("*/evalrun.yaml"))
    assert len(manifests) >= 4, manifests
    done = podman(
        "run", "--rm", *hardened(uid), f"--volume={tmp}:/tmp", f"--volume={EXAMPLES}:/examples:ro",
        "--workdir=/examples", "--env=HOME=/tmp", OPERATOR, "validate", *manifests,
        timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, (
        f"proctor validate in the operator image: {done.stdout[-3000:]}{done.stderr[-3000:]}"
    )
    planned = podman(
        "run", "--rm", *hardened(uid), f"--volume={tmp}:/tmp", f"--volume={EXAMPLES}:/examples:ro",
        "--workdir=/examples", "--env=HOME=/tmp", "--entrypoint=python", OPERATOR, "-c", PLAN_EVERY_EXAMPLE,
        *manifests, timeout=300, check=False,
    )  # fmt: skip
    assert planned.returncode == 0, f"planning in the operator image: {planned.stderr[-3000:]}"
    assert sorted(planned.stdout.split()) == manifests


#: What the operator does with an EvalRun before its first Job: resolve its inputs, plan it (the
#: benchmark adapter's stages and shards); and its whole process imports (kopf's wiring, every
#: controller) and names a JudgeServer's calibration items.
PLAN_EVERY_EXAMPLE = """
import sys
from pathlib import Path
import proctor.handlers, proctor.controllers.calibration
from proctor.local import resolve
from proctor.plan import plan_run
from proctor_jobs.benchmarks import get_benchmark
from proctor_jobs.judge.calibration import load_set, resolve_benchmarks
assert sum(len(load_set(b)) for b in resolve_benchmarks("all")) > 0
for path in sys.argv[1:]:
    run = resolve(Path(path))
    plan, _ = plan_run(get_benchmark(run.benchmark), run.spec, run.items, "runs/t/u1", run.inputs, [])
    assert plan.stages, path
    print(path)
"""


# ---- worker --------------------------------------------------------------------------------------


def plan_one(example: str, item_id: str, store_dir: Path):
    """The example's EvalRun planned with one of its items only, into a filesystem store."""
    from proctor.inputs import store_bundle
    from proctor.local import resolve
    from proctor.plan import plan_run, write_plan
    from proctor_jobs.benchmarks import get_benchmark
    from proctor_jobs.store import open_store

    path = EXAMPLES / example
    resolved = resolve(path)  # what `proctor run` reads: the file, then the neighbours it names
    store = open_store(str(store_dir))
    for bundle in resolved.bundles.values():
        store_bundle(store, bundle)
    items = [item for item in resolved.items if item["id"] == item_id]
    assert len(items) == 1, f"{item_id} is not an item of {example}"
    adapter = get_benchmark(resolved.benchmark)
    prefix = f"runs/smoke/{path.parent.name}/u1"
    plan, manifests = plan_run(adapter, resolved.spec, items, prefix, resolved.inputs, [])
    write_plan(store, plan, manifests, items)
    return plan


def run_worker_stage(tmp_path: Path, example: str, item_id: str, stage: str, timeout: float = 300):
    """`proctor-worker` in the worker image on a one-item shard; returns the item's record and the store."""
    from proctor_jobs.store.fs import FilesystemStore
    from proctor_jobs.worker import load_shard_records

    config = require_image(WORKER)
    uid = image_uid(config)
    scratch = tmp_path / "scratch"
    plan = plan_one(example, item_id, scratch / "store")
    owned_dir(scratch, uid)
    started = time.monotonic()
    done = podman(
        "run", "--rm", *hardened(uid), f"--volume={scratch}:/scratch", WORKER,
        "--store", "/scratch/store", "--run", plan.run_prefix, "--stage", stage, "--index", "0",
        timeout=timeout, check=False,
    )  # fmt: skip
    assert done.returncode == 0, f"proctor-worker exit {done.returncode}:\n{done.stderr[-5000:]}"
    outcome = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"{example} {stage} {item_id}: {time.monotonic() - started:.1f} s, {outcome}")
    store = FilesystemStore(scratch / "store")
    record = load_shard_records(store, plan.layout, stage, 0)[item_id]
    expected = {"ok": 1, "failed": 0, "skipped": 0, "env_error": 0}
    assert outcome["counts"] == expected, (record.reason, record.data)
    return record, store, done


def test_the_worker_image_renders_an_artifactsbench_page_with_its_chromium_and_library_cache(tmp_path):
    # The Galton board (matter.js from a CDN): no network in the container, the library is served
    # from the cache baked into the image.
    record, store, _ = run_worker_stage(tmp_path, "artifactsbench/evalrun.yaml", "1720", "render")
    assert record.status == "ok", record.reason
    assert record.data["extraction"]["kind"] == "html"
    assert record.data["libraries"] == ["matter-js@0.19.0/build/matter.min.js"]
    assert len(record.data["screenshots"]) == 3 and not record.data["blank"]
    assert store.get_bytes(record.evidence["screenshot_0"]).startswith(b"\x89PNG")


def test_the_worker_image_runs_a_humanevalv_sample_in_its_sandbox(tmp_path):
    record, _, _ = run_worker_stage(tmp_path, "humanevalv/evalrun-n1.yaml", "hv01/0", "oracle")
    assert record.status == "ok", record.reason
    assert record.score == 1.0, record.data
    # Inside the hardened container the sandbox still confines the program; what it reached is recorded.
    print("sandbox isolation in the container:", record.data["isolation"])
    assert {"rlimits", "process-group"} <= set(record.data["isolation"])


def test_the_worker_image_renders_a_vision2code_matplotlib_answer(tmp_path):
    from proctor_jobs.render import images

    record, store, _ = run_worker_stage(
        tmp_path, "vision2code/evalrun.yaml", "ChartQA_test_000509_2ac3907c97d2", "render"
    )
    assert record.status == "ok", record.reason
    png = next(store.get_bytes(key) for key in record.evidence.values() if key.endswith(".png"))
    inspection = images.inspect_candidate(png)
    assert (inspection["width"], inspection["height"]) == (420, 756)
    assert not inspection["is_blank_or_degenerate"]


# ---- judge ---------------------------------------------------------------------------------------


def test_the_judge_image_keeps_vllms_entrypoint_and_takes_the_judgeservers_arguments():
    from proctor.api.judgeserver import JudgeServer
    from proctor.k8s.judge import build_deployment

    config = require_image(JUDGE)
    labels = config["Config"]["Labels"]
    assert labels["org.opencontainers.image.title"] == "proctor-judge"
    assert labels.get("org.proctor.stand-in", "").startswith("vllm/vllm-openai:")  # not the real vLLM
    assert config["Config"]["Entrypoint"] == ["vllm", "serve"]
    server = yaml.safe_load((EXAMPLES / "artifactsbench/qwen-judge/judgeserver.yaml").read_text())
    spec = JudgeServer.model_validate(server).spec.dump()
    [container] = build_deployment("evals", "qwen", "uid", spec)["spec"]["template"]["spec"]["containers"]
    assert container["command"] == config["Config"]["Entrypoint"]
    assert f"{container['ports'][0]['containerPort']}/tcp" in config["Config"]["ExposedPorts"]
    # What the kubelet runs: the Deployment's command replaces the entrypoint, its args the CMD.
    done = podman(
        "run", "--rm", "--network=none", "--read-only",
        "--entrypoint", json.dumps(container["command"]), JUDGE, *container["args"],
    )  # fmt: skip
    called = json.loads(done.stdout.strip().splitlines()[-1])
    assert called["argv"] == ["serve", *container["args"]]
    assert called["env"]["VLLM_NO_USAGE_STATS"] == "1" and called["env"]["DO_NOT_TRACK"] == "1"


# ---- the real node -------------------------------------------------------------------------------

HARDENING_PROBE = """
import json, os, pathlib
status = dict(line.split(":\\t", 1) for line in pathlib.Path("/proc/self/status").read_text().splitlines()
              if ":\\t" in line)
try:
    open("/opt/proctor/probe", "w")
    root = "writable"
except OSError as err:
    root = err.strerror
scratch = pathlib.Path(os.environ["HOME"], "probe")
scratch.write_text("x")
from proctor_jobs.oracle import isolation
report = {"uid": os.getuid(), "gid": os.getgid(), "groups": os.getgroups(),
          "seccomp": status["Seccomp"].strip(), "cap_eff": status["CapEff"].strip(),
          "no_new_privs": status["NoNewPrivs"].strip(), "root": root,
          "scratch": str(scratch), "token": os.path.exists("/var/run/secrets/kubernetes.io/serviceaccount"),
          "sandbox_tier": isolation.probe_tier()}
pathlib.Path("/dev/termination-log").write_text(json.dumps(report))
print(json.dumps(report))
"""


def test_a_worker_pod_as_the_operator_builds_it_is_hardened_on_the_real_node(k8s, real_node):
    """The render stage's Job pod template from the operator's own builder, run by the real kubelet,
    containerd and runc in the worker image: the hardening the template asks for holds inside."""
    from proctor.config import OperatorConfig

    require_image(WORKER)
    report = run_worker_pod(
        k8s, real_node, HARDENING_PROBE, example="artifactsbench/evalrun.yaml", stage="render", timeout=120
    )
    print("inside the pod on the real node:", report)
    assert_hardened(report, OperatorConfig().run_as_user)
    assert report["sandbox_tier"]


def assert_hardened(report: dict, uid: int) -> None:
    """What HARDENING_PROBE saw inside a worker pod is the hardening the operator's template asks for."""
    assert (report["uid"], report["gid"]) == (uid, uid) and uid in report["groups"]  # fsGroup
    assert report["seccomp"] == "2"  # RuntimeDefault or the chart's Localhost profile: a seccomp filter
    assert report["cap_eff"] == "0000000000000000" and report["no_new_privs"] == "1"
    assert report["root"] == "Read-only file system"
    assert report["scratch"] == "/scratch/probe" and report["token"] is False


# ---- the sandbox tier a worker pod really gets ----------------------------------------------------

TIER_PROBE = """
import json, os, pathlib, sys, tempfile
from proctor_jobs.oracle import isolation
from proctor_jobs.benchmarks.humanevalv import require_tier
scratch = pathlib.Path(tempfile.mkdtemp())
report = {"tier": isolation.probe_tier(scratch / "probe")}
try:
    require_tier(report["tier"], "userns")  # what a HumanEval-V shard does with the default minIsolation
    report["refused"] = None
except RuntimeError as exc:
    report["refused"] = str(exc)[:200]
if report["tier"] != "none" and "--suite" in sys.argv:
    import contextlib, io
    from proctor_jobs.selftest.cli import main
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        report["exit"] = main(["--cases", "/cases", "--target", "oracle", "--json"])
    rows = json.loads(out.getvalue().strip().splitlines()[-1])
    report["tiers"] = sorted({r["tier"] for r in rows})
    report["checks"] = len(rows)
    report["escaped"] = [r["attack"] for r in rows if r["escaped"]]
    report["why"] = [(r["attack"], r["outcome"][:150], r["detail"][:150]) for r in rows if r["escaped"]][:4]
pathlib.Path("/dev/termination-log").write_text(json.dumps(report)[:4000])
print(json.dumps(report))
"""


def run_worker_pod(
    k8s,
    node: str,
    script: str,
    *,
    example: str = "humanevalv/evalrun.yaml",
    stage: str = "oracle",
    seccomp: dict | None = None,
    args: list[str] | None = None,
    volumes=(),
    mounts=(),
    timeout: float = 420,
) -> dict:
    """A worker pod exactly as the operator builds it for `stage` of `example` (optionally with another
    seccomp profile), on the real node, running `script`; returns the JSON it left as its termination
    message."""
    from proctor.config import OperatorConfig
    from proctor.k8s.jobs import WorkerContext, build_stage_job
    from proctor.local import load_run_manifests

    evalrun, _ = load_run_manifests(EXAMPLES / example)
    config = OperatorConfig(**({"worker_seccomp_profile": seccomp} if seccomp else {}))
    ctx = WorkerContext("default", "probe", "uid-1", evalrun.spec.dump(), "runs/x", "s3://b/p", config)
    spec = build_stage_job(ctx, stage, stage, 1)["spec"]["template"]["spec"]
    spec["nodeName"] = node
    spec.setdefault("tolerations", []).append({"key": "proctor.dev/real-node", "operator": "Exists"})
    return run_probe_pod(
        k8s, "default", spec, script, image=WORKER, args=args, volumes=volumes, mounts=mounts, timeout=timeout
    )


def run_probe_pod(
    k8s,
    namespace: str,
    spec: dict,
    script: str,
    *,
    image: str | None = None,
    args: list[str] | None = None,
    volumes=(),
    mounts=(),
    timeout: float = 420,
) -> dict:
    """A pod with `spec` (a worker pod's, as built offline or taken from a Job the operator created) whose
    only container runs `python -c script` instead of its command; returns the JSON the script left as
    its termination message once the pod Succeeded."""
    spec = json.loads(json.dumps(spec))
    [container] = spec["containers"]
    container.update(command=["python", "-c", script], args=list(args or []))
    if image:
        container.update(image=image, imagePullPolicy="Never")
    container["volumeMounts"] = container.get("volumeMounts", []) + list(mounts)
    spec["volumes"] = spec.get("volumes", []) + list(volumes)
    spec["restartPolicy"] = "Never"
    name = f"probe-{uuid.uuid4().hex[:6]}"
    meta = {"name": name, "namespace": namespace}
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}
    k8s.kubectl("apply", "-f", "-", input=json.dumps(pod))
    try:
        deadline, got = time.monotonic() + timeout, {}
        while time.monotonic() < deadline:
            got = json.loads(k8s.kubectl("get", "pod", name, "-n", namespace, "-o", "json").stdout)
            if got["status"].get("phase") in ("Succeeded", "Failed"):
                break
            time.sleep(1)
        assert got["status"].get("phase") == "Succeeded", json.dumps(got.get("status"), indent=1)[-3000:]
        terminated = got["status"]["containerStatuses"][0]["state"]["terminated"]
        return json.loads(terminated["message"])
    finally:
        k8s.kubectl("delete", "pod", name, "-n", namespace, "--grace-period=1", "--wait=false", check=False)


def test_a_default_worker_pod_gets_no_sandbox_namespaces_and_its_run_is_refused(k8s, real_node):
    """RuntimeDefault seccomp forbids user namespaces: the sandbox can only reach `none`, and a
    HumanEval-V shard with the default minIsolation refuses to run rather than run answers unconfined."""
    require_image(WORKER)
    report = run_worker_pod(k8s, real_node, TIER_PROBE, seccomp={"type": "RuntimeDefault"})
    print("default worker pod on the real node:", report)
    assert report["tier"] == "none"
    assert report["refused"] and report["refused"].startswith("isolation_below_minimum")


def test_with_the_charts_seccomp_profile_the_hostile_suite_holds_in_a_real_pod(
    k8s, real_node, proctor_env_dir
):
    """The chart's Localhost profile (files/seccomp/proctor-sandbox.json) gives worker pods — still
    non-root, no capabilities, read-only root — the `userns` tier; the hostile suite runs inside the
    pod on the real kubelet + containerd + runc and nothing escapes."""
    require_image(WORKER)
    from tests.cluster import realnode

    profile = realnode.install_seccomp_profile(proctor_env_dir / "realnode", SECCOMP_PROFILE)
    cases = Path(tempfile.mkdtemp(prefix="proctor-cases-", dir="/tmp"))
    try:
        shutil.copytree(REPO / "tests/hostile/oracle", cases / "oracle")
        for path in [cases, *cases.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
        report = run_worker_pod(
            k8s,
            real_node,
            TIER_PROBE,
            seccomp={"type": "Localhost", "localhostProfile": profile},
            args=["--suite"],
            volumes=[{"name": "cases", "hostPath": {"path": str(cases), "type": "Directory"}}],
            mounts=[{"name": "cases", "mountPath": "/cases", "readOnly": True}],
        )
    finally:
        shutil.rmtree(cases, ignore_errors=True)
    print("worker pod with the chart's seccomp profile:", report)
    assert report["tier"] == "userns" and report["refused"] is None
    assert report["tiers"] == ["userns"] and report["checks"] >= 20
    assert report["escaped"] == [] and report["exit"] == 0

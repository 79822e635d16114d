"""ArtEvalBench end to end on this machine: real sandboxes, real agents and evaluators, real records.

- the example scores 4 (and 3 and 2 when the agent skips steps), and a rerun does no work;
- an agent that goes looking for `_agent_eval/` finds nothing, and what it plants there is discarded;
- an agent cannot phone home;
- timeouts, crashes, missing evaluators and images that cannot run here are recorded outcomes, and the
  other artifacts of the run are scored all the same.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest

from tests.integration.arteval_helpers import (
    REPO,
    agent_spec,
    make_artifact,
    report_line,
    run_local,
    scripted_agent,
    task,
    write_run,
)

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the sandbox needs Linux")
PROCTOR = [sys.executable, "-m", "proctor"]


def proctor_run(manifest: Path, store: Path, *extra: str) -> tuple[dict, str]:
    done = subprocess.run(
        [*PROCTOR, "run", str(manifest), "--store", str(store), *extra],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return (json.loads(done.stdout.splitlines()[-1]) if "--json" in extra else {}), done.stdout + done.stderr


def test_the_example_scores_4_and_a_rerun_does_no_work(tmp_path):
    manifest = REPO / "examples" / "artevalbench" / "evalrun.yaml"
    _, text = proctor_run(manifest, tmp_path / "store", "--quiet")
    # Per-artifact and per-stage scores and the share at expected score, as printed for people.
    for row in (
        "share_at_expected",
        "artifact/tinysort",
        "artifact/hello",
        "stage_pass_rate/experiment_runs",
    ):
        assert row in text
    result, _ = proctor_run(manifest, tmp_path / "store", "--json", "--quiet")
    assert result["phase"] == "Succeeded"
    assert result["counts"] == {"total": 2, "processed": 0, "reused": 2, "failed": 0}  # the rerun
    scores = result["scores"]
    assert scores["artifact/tinysort"] == 4.0 and scores["artifact/hello"] == 1.0
    assert scores["share_at_expected"] == 1.0
    assert all(scores[f"stage_pass_rate/{s}"] == 1.0 for s in ("env_setup", "build", "experiment_runs"))


@pytest.mark.parametrize(
    ("variant", "tinysort", "failing"),
    [("evalrun-skip-experiment.yaml", 3.0, ["experiment_runs"]), ("evalrun-skip-dataset.yaml", 2.0, None)],
)
def test_an_agent_that_skips_steps_scores_less(tmp_path, variant, tinysort, failing):
    result, _ = proctor_run(REPO / "examples" / "artevalbench" / variant, tmp_path / "store", "--json", "-q")
    scores = result["scores"]
    assert scores["artifact/tinysort"] == tinysort and scores["artifact/hello"] == 1.0
    assert scores["share_at_expected"] == 0.5
    assert scores["mean_score"] == (tinysort + 1) / 2
    if failing:
        assert scores["stage_pass_rate/experiment_runs"] == 0.0
        assert scores["stage_pass_rate/benchmark_prep"] == 1.0
    summary = json.loads((tmp_path / "store" / result["run_prefix"] / "summary.json").read_text())
    row = summary["breakdowns"]["artifacts"]["tinysort"]
    assert row["reason"].startswith(f"score {int(tinysort)}/4, expected 4")
    # The original's result.jsonl, with each stage's outcome and the log lines that explain it.
    exported = (tmp_path / "store" / result["run_prefix"] / "exports" / "result.jsonl").read_text()
    line = next(json.loads(x) for x in exported.splitlines() if json.loads(x)["task_id"] == "tinysort")
    assert line["score"] == int(tinysort) and line["status"] == "success"
    assert line["stages"]["experiment_runs"] is False
    assert "ExperimentRuns: FAIL" in line["stage_logs"]["experiment_runs"]
    assert "results/table1.md" in line["stage_logs"]["experiment_runs"]
    assert "ArtifactBuild: PASS" in line["stage_logs"]["build"]


HOSTILE_AGENT = """\
import json, os, subprocess
canary = os.environ["CANARY"]
report = {"workspace": [], "readable": []}
# Controls, so that a search that finds nothing has proved something: both must be found.
control = os.path.join(os.environ["HOME"], "control")
os.makedirs(os.path.join(control, "_agent_eval"))
with open(os.path.join(control, "note.txt"), "w") as f:
    f.write(canary)
for folder, dirs, files in os.walk("."):
    report["workspace"] += [os.path.join(folder, n) for n in dirs + files if "_agent_eval" in n or "ref" in n]
found = subprocess.run(
    ["find", "/", "(", "-name", "_agent_eval", "-o", "-name", "artifact.tar.gz",
     "-o", "-name", "secret.txt", ")",
     "-not", "-path", "/proc/*", "-not", "-path", "/usr/*", "-not", "-path", "/sys/*"],
    capture_output=True, text=True, timeout=120)
report["find"] = found.stdout.split()
grep = subprocess.run(
    ["grep", "-rlI", "--exclude-dir=proc", "--exclude-dir=sys", "--exclude-dir=dev", "--exclude-dir=usr",
     "--exclude-dir=.pyenv", "--exclude-dir=.venv", "--exclude-dir=site-packages", canary, "/"],
    capture_output=True, text=True, timeout=240)
report["grep"] = grep.stdout.split()
for path in json.loads(os.environ["PROBE"].replace("{agentDir}", os.environ["ARTEVAL_AGENT_DIR"])):
    try:
        if os.path.isdir(path):
            if os.listdir(path):
                report["readable"].append(path)
        else:
            with open(path, "rb") as f:
                f.read(1)
            report["readable"].append(path)
    except OSError:
        pass
# Plant a fake evaluator that reports full marks, and make the "answer" the reference itself.
os.makedirs("_agent_eval/refs", exist_ok=True)
with open("_agent_eval/main.py", "w") as f:
    f.write("print('{\\"stages\\": {\\"env_setup\\": true, \\"experiment_runs\\": true}}')")
os.symlink("_agent_eval/refs/secret.txt", "answer.txt")
print("REPORT " + json.dumps(report), flush=True)
"""

VAULT_EVALUATOR = """\
import json, pathlib
# {canary}
root = pathlib.Path(__file__).resolve().parent.parent
secret = (root / "_agent_eval" / "refs" / "secret.txt").read_text().strip()
answer = root / "answer.txt"
found = answer.is_file() and not answer.is_symlink() and answer.read_text().strip() == secret
print(json.dumps({{"stages": {{"env_setup": True, "experiment_runs": found}}}}))
"""


def test_an_agent_looking_for_the_evaluator_finds_nothing(tmp_path):
    canary = f"PROCTOR-CANARY-{uuid.uuid4().hex}"
    source = make_artifact(
        tmp_path / "sources" / "vault",
        {
            "README.md": "# Vault\n\n## Step 1: Answer\n\nWrite the secret number to answer.txt.\n",
            "_agent_eval/main.py": VAULT_EVALUATOR.format(canary=canary),
            "_agent_eval/refs/secret.txt": f"{canary}-739184265\n",
        },
    )
    store = tmp_path / "store"
    probe = [
        "{agentDir}",
        str(source / "_agent_eval"),
        str(source / "_agent_eval" / "refs" / "secret.txt"),
        str(store),
        str(REPO / "examples" / "artevalbench" / "artifacts" / "tinysort" / "_agent_eval"),
        "/work/shared/data/arteval_bench",
    ]
    agent = agent_spec(
        {"hostile.py": HOSTILE_AGENT},
        ["python3", "{agentDir}/hostile.py"],
        env={"CANARY": canary, "PROBE": json.dumps(probe)},
        timeoutSeconds=300,
    )
    manifest = write_run(
        tmp_path / "manifests", "leak", [task("vault", source, expected_score=2)], {"agent": agent}
    )
    _, records, local = run_local(manifest, store)
    rec = records["vault"]
    agent_log = local.store.get_text(rec.evidence["agent.log"])
    report = report_line(agent_log)
    assert rec.data["agent"]["status"] == "exited" and rec.data["agent"]["exit_code"] == 0, agent_log
    assert rec.data["leak_guard"] == "strict"
    control = Path(rec.data["agent"]["command"][1]).parent  # the agent's folder: readable, as the control
    assert report["workspace"] == []  # not in the workspace ...
    # ... nor anywhere the agent can see (no archive, no other copy): only the agent's own control folder
    assert [Path(p).name for p in report["find"]] == ["_agent_eval"]
    assert report["find"][0].endswith("/control/_agent_eval")
    assert [Path(p).name for p in report["grep"]] == ["note.txt"]  # no other readable file has the canary
    assert report["readable"] == [str(control)]  # the source folder, the store, the real data: hidden
    # The real evaluator ran (not the planted one), and the link to the reference did not count.
    assert rec.status == "ok" and rec.score == 1.0, rec.reason
    assert rec.data["score_source"] == "json"
    assert [(s["name"], s["passed"]) for s in rec.data["stages"]] == [
        ("env_setup", True),
        ("experiment_runs", False),
    ]
    assert any("made by the agent" in n for n in rec.data["notes"])
    assert any("removed symlink answer.txt" in n for n in rec.data["notes"])


PHONE_HOME = """\
import json, socket
outcome = {}
try:
    with socket.create_connection(("127.0.0.1", __PORT__), timeout=3) as s:
        s.sendall(b"the secret is 42")
        outcome["sent"] = True
except OSError as exc:
    outcome["error"] = type(exc).__name__
print("REPORT " + json.dumps(outcome), flush=True)
"""


def test_an_agent_cannot_phone_home(tmp_path):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.settimeout(0.2)
    port = listener.getsockname()[1]
    received: list[bytes] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                received.append(conn.recv(1024) or b"<connected>")

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        source = make_artifact(
            tmp_path / "src" / "home",
            {"README.md": "# Home\n", "_agent_eval/main.py": "print(0)\n"},
        )
        agent = agent_spec(
            {"call.py": PHONE_HOME.replace("__PORT__", str(port))}, ["python3", "{agentDir}/call.py"]
        )
        manifest = write_run(
            tmp_path / "m", "phone", [task("home", source, expected_score=0)], {"agent": agent}
        )
        _, records, local = run_local(manifest, tmp_path / "store")
    finally:
        stop.set()
        thread.join(5)
        listener.close()
    report = report_line(local.store.get_text(records["home"].evidence["agent.log"]))
    assert "error" in report and "sent" not in report
    assert received == []


FAIL_EVAL = {
    "slow": "import time\ntime.sleep(60)\n",
    "crash": "import json\nraise KeyError('refs/table.json')\n",
}


def test_timeouts_crashes_and_missing_evaluators_are_recorded_and_the_rest_is_scored(tmp_path):
    good = "import json, os\nprint(json.dumps({'stages': {'env_setup': os.path.exists('started.txt')}}))\n"

    def artifact(name: str, evaluator: str, readme_step: str = "touch started.txt") -> Path:
        readme = f"# {name}\n\n## Step 1: Start\n\n```bash\n{readme_step}\n```\n"
        return make_artifact(tmp_path / "src" / name, {"README.md": readme, "_agent_eval/main.py": evaluator})

    tasks = [
        task("fine", artifact("fine", good), expected_score=1, keep_container=True),
        task("slow-eval", artifact("slow-eval", FAIL_EVAL["slow"])),
        task("crash-eval", artifact("crash-eval", FAIL_EVAL["crash"])),
        task("no-eval", artifact("no-eval", good), evaluator="no-eval/_agent_eval/missing.py"),
        task("slow-agent", artifact("slow-agent", good, "touch started.txt\nsleep 60"), expected_score=1),
        task("image", artifact("image", good), env="registry.example/ae:1"),
    ]
    spec = {"agent": scripted_agent(timeout=4), "oracle": {"evaluatorTimeoutSeconds": 3}}
    manifest = write_run(tmp_path / "m", "outcomes", tasks, spec)
    result, records, local = run_local(manifest, tmp_path / "store")
    assert result.phase == "Succeeded"  # failed artifacts are records, not a failed run
    outcome = {k: (r.status, r.data.get("outcome")) for k, r in records.items()}
    assert outcome == {
        "fine": ("ok", "scored"),
        "slow-eval": ("failed", "evaluator_timeout"),
        "crash-eval": ("failed", "evaluator_crashed"),
        "no-eval": ("failed", "evaluator_missing"),
        "slow-agent": ("ok", "scored"),
        "image": ("failed", "refused"),
    }
    assert records["slow-eval"].reason == "the evaluator timed out after 3 s"
    assert "KeyError" in local.store.get_text(records["crash-eval"].evidence["evaluator.log"])
    assert "no-eval/_agent_eval/missing.py" not in records["no-eval"].reason  # named from the root
    assert "_agent_eval/missing.py is not in the artifact" in records["no-eval"].reason
    assert "registry.example/ae:1" in records["image"].reason and "runImagesOnHost" in records["image"].reason
    # The agent ran out of time, and the evaluator still judged what it had done.
    slow = records["slow-agent"]
    assert slow.data["agent"]["status"] == "timeout" and slow.score == 1.0
    assert records["fine"].score == 1.0 and records["fine"].data["reached_expected"]
    # keep_container: the finished workspace is evidence.
    assert local.store.exists(records["fine"].evidence["workspace.tar.gz"])
    summary = result.summary
    assert summary["scores"]["share_at_expected"] == pytest.approx(2 / 6, abs=1e-4)
    assert summary["counts"]["not_scored"] == 4


def test_an_image_artifact_runs_here_when_the_spec_says_this_machine_is_the_image(tmp_path):
    source = make_artifact(
        tmp_path / "src" / "img",
        {"README.md": "# img\n", "_agent_eval/main.py": "print('{\"score\": 4}')\n"},
    )
    tasks = [task("img", source, env="bastoica/ae-agent-ubuntu24.04:latest")]
    manifest = write_run(tmp_path / "m", "host", tasks, {"oracle": {"runImagesOnHost": True}})
    _, records, _ = run_local(manifest, tmp_path / "store")
    assert records["img"].status == "ok" and records["img"].score == 4.0
    assert records["img"].data["leak_guard"] == "no agent"


def test_pod_isolation_is_refused_outside_a_pod(tmp_path, monkeypatch):
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    source = make_artifact(
        tmp_path / "src" / "p", {"README.md": "# p\n", "_agent_eval/main.py": "print(1)\n"}
    )
    manifest = write_run(tmp_path / "m", "pod", [task("p", source)], {"oracle": {"isolation": "pod"}})
    _, records, _ = run_local(manifest, tmp_path / "store")
    assert records["p"].status == "failed" and "only in a per-artifact pod" in records["p"].reason
    assert not os.environ.get("KUBERNETES_SERVICE_HOST")


def test_inside_a_pod_image_artifacts_run_and_pod_isolation_runs_plain_processes(tmp_path, monkeypatch):
    # In a per-artifact pod the image is the task's own, so nothing is refused; `pod` isolation then runs
    # the phases as plain child processes (for artifacts that need root in their image).
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
    readme = "# p\n\n## Step 1: Build\n\n```bash\necho built > out.txt\n```\n"
    evaluator = "import os\nprint(1 if open('out.txt').read() == 'built\\n' else 0)\n"
    source = make_artifact(tmp_path / "src" / "p", {"README.md": readme, "_agent_eval/main.py": evaluator})
    tasks = [task("p", source, env="registry.example/ae:1", expected_score=1)]
    spec = {"agent": scripted_agent(), "oracle": {"isolation": "pod"}}
    _, records, _ = run_local(write_run(tmp_path / "m", "inpod", tasks, spec), tmp_path / "store")
    rec = records["p"]
    assert rec.status == "ok" and rec.score == 1.0, rec.reason
    assert rec.data["agent"]["tier"] == "pod" and rec.data["leak_guard"] == "weak"
    assert any("without namespaces" in n for n in rec.data["notes"])

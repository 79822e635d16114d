"""`proctor run` on the HumanEval-V example, end to end, as a user runs it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.unit.test_store import check_contract

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "humanevalv"
# The example's answers are designed per task (see make_example.py): 6, 4, 2 and 0 correct samples out
# of 6, three tasks each; the pylint gate rejects 9 of the 72 samples (a syntax error, and
# `return [][1]`, which pylint flags as an invalid index).
EXPECTED_N6 = {"pass@1": 50.0, "pass@3": 70.0, "parse_success_rate": 87.5}
EXPECTED_N1 = {"pass@1": 75.0, "parse_success_rate": 75.0}  # 3 of 12 samples fail the pylint gate


def proctor(*args: str, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "proctor", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def last_json(proc: subprocess.CompletedProcess) -> dict:
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_first_run_scores_then_a_rerun_processes_nothing(tmp_path):
    """Also: the example's hostile answers (one tries to write outside its sandbox) left no trace."""
    escape = Path("/tmp/proctor-escaped-the-sandbox")
    escape.unlink(missing_ok=True)
    store = tmp_path / "store"
    first = last_json(proctor("run", str(EXAMPLE / "evalrun.yaml"), "--store", str(store), "--json"))
    assert first["phase"] == "Succeeded"
    assert not escape.exists()
    assert first["scores"] == EXPECTED_N6
    assert first["counts"] == {"total": 72, "processed": 72, "reused": 0, "failed": 0}
    run_dir = store / first["run_prefix"]
    report = (run_dir / "report.md").read_text()
    assert "| **pass@1** | 50 |" in report and "hv12/5" in report
    executed = json.loads((run_dir / "exports" / "humanevalv_executed.json").read_text())
    assert len(executed) == 12 and all(len(e["results"]) == 6 for e in executed)
    assert sum(r["passed"] for e in executed for r in e["results"]) == 36
    second = last_json(proctor("run", str(EXAMPLE / "evalrun.yaml"), "--store", str(store), "--json"))
    assert second["counts"] == {"total": 72, "processed": 0, "reused": 72, "failed": 0}
    assert second["scores"] == EXPECTED_N6


def test_single_sample_predictions_report_pass_at_1(tmp_path):
    result = last_json(
        proctor("run", str(EXAMPLE / "evalrun-n1.yaml"), "--store", str(tmp_path / "s"), "--json")
    )
    assert result["scores"] == EXPECTED_N1


def test_a_sandbox_below_the_runs_minimum_isolation_is_refused_and_redone_once_fixed(tmp_path):
    """Run where only the `none` tier is available: no answer runs unconfined and none is recorded as
    failed — every item is `not evaluated` with the reason, the run exits 1; on a machine that has the
    tier the same command redoes exactly those items and scores them."""
    store = tmp_path / "s"
    refused = proctor(
        "run", str(EXAMPLE / "evalrun-n1.yaml"), "--store", str(store), env={"PROCTOR_SANDBOX_TIER": "none"}
    )
    assert refused.returncode == 1, refused.stdout[-2000:]
    assert "not evaluated" in refused.stdout and "isolation_below_minimum" in refused.stdout
    fixed = last_json(proctor("run", str(EXAMPLE / "evalrun-n1.yaml"), "--store", str(store), "--json"))
    assert fixed["counts"]["processed"] == 12 and fixed["scores"] == EXPECTED_N1


def _processes_mentioning(marker: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker in (entry / "cmdline").read_bytes().decode(errors="replace") or marker in (
                    entry / "environ"
                ).read_bytes().decode(errors="replace"):
                    pids.append(int(entry.name))
            except OSError:
                continue
    return [p for p in pids if p != os.getpid()]


def test_sigkill_half_way_then_rerun_finishes_without_redoing_finished_items(tmp_path):
    store = tmp_path / "store"
    marker = str(tmp_path / "tmp")
    os.makedirs(marker)
    env = {**os.environ, "TMPDIR": marker}
    cmd = [sys.executable, "-m", "proctor", "run", str(EXAMPLE / "evalrun.yaml"), "--store", str(store), "-q"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    records = lambda: list(store.glob("runs/*/*/*/oracle/items/*/*.json"))  # noqa: E731
    deadline = time.monotonic() + 120
    while len(records()) < 12 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)  # only the parent: its workers must die with it
    proc.wait()
    done_before = len(records())
    assert 0 < done_before < 72, "the run was not interrupted half-way"
    time.sleep(1.0)
    assert _processes_mentioning(marker) == [], "workers or sandboxes outlived a SIGKILLed run"
    result = last_json(
        proctor("run", str(EXAMPLE / "evalrun.yaml"), "--store", str(store), "--json", env={"TMPDIR": marker})
    )
    assert result["counts"]["processed"] == 72 - done_before
    assert result["counts"]["reused"] == done_before
    assert result["scores"] == EXPECTED_N6
    # and the killed workers' scratch folders (sandboxes, programs) are gone from the temp dir
    assert sorted(p.name for p in Path(marker).glob("proctor-*")) == []


@pytest.mark.parametrize("workers", ["1", "3"])
def test_worker_count_does_not_change_the_numbers(tmp_path, workers):
    result = last_json(
        proctor(
            "run",
            str(EXAMPLE / "evalrun.yaml"),
            "--store",
            str(tmp_path / "s"),
            "--json",
            "--workers",
            workers,
        )
    )
    assert result["scores"] == EXPECTED_N6


def test_s3_store_gives_the_same_scores(tmp_path, s3):
    url = f"s3://{s3.bucket}/proctor-tests/{tmp_path.name}?addressing=path"
    result = last_json(proctor("run", str(EXAMPLE / "evalrun.yaml"), "--store", url, "--json", env=s3.env()))
    assert result["scores"] == EXPECTED_N6
    prefix = f"proctor-tests/{tmp_path.name}/{result['run_prefix']}/"
    listed = s3.client().list_objects_v2(Bucket=s3.bucket, Prefix=prefix + "summary.json")
    assert listed.get("KeyCount") == 1
    again = last_json(proctor("run", str(EXAMPLE / "evalrun.yaml"), "--store", url, "--json", env=s3.env()))
    assert again["counts"]["processed"] == 0


def test_s3_store_contract(s3, monkeypatch, tmp_path):
    from proctor_jobs.store import open_store

    for key, value in s3.env().items():
        monkeypatch.setenv(key, value)
    check_contract(open_store(f"s3://{s3.bucket}/contract-{tmp_path.name}?addressing=path"))


def test_s3_large_file_and_credentials_file(s3, monkeypatch, tmp_path):
    from proctor_jobs.store import open_store

    creds = tmp_path / "credentials"
    creds.write_text(
        f"[default]\naws_access_key_id = {s3.access_key}\naws_secret_access_key = {s3.secret_key}\n"
    )
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(creds))
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3.endpoint)
    monkeypatch.setenv("AWS_DEFAULT_REGION", s3.region)
    store = open_store(f"s3://{s3.bucket}/large-{tmp_path.name}?addressing=path")
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(20 * 1024 * 1024))  # over the multipart threshold
    store.put_file("blob.bin", big)
    out = tmp_path / "out.bin"
    store.get_file("blob.bin", out)
    assert out.read_bytes() == big.read_bytes()


def test_s3_wrong_secret_is_refused(s3, monkeypatch, tmp_path):
    from proctor_jobs.store import StoreError, open_store

    for key, value in s3.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    store = open_store(f"s3://{s3.bucket}/denied?addressing=path")
    with pytest.raises(StoreError, match=r"SignatureDoesNotMatch|AccessDenied|InvalidAccessKeyId"):
        store.put_bytes("x", b"1")


def _interruptible() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def session_processes(session: int) -> list[str]:
    """The command lines of the processes still in `session` (the run and everything it started,
    sandboxes in their own namespaces included: a session id is kept across them)."""
    left = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            if int(fields[3]) == session and fields[0] != "Z":
                left.append((entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()[:120])
        except (OSError, ValueError):
            continue
    return left


def test_ctrl_c_stops_within_two_seconds_with_one_line_and_the_rerun_resumes(tmp_path):
    store = tmp_path / "store"
    # SIGUSR1 makes it print every thread's stack: what it was doing, should it be slow to stop
    entry = "import faulthandler, signal, sys; faulthandler.register(signal.SIGUSR1, all_threads=True); "
    entry += "from proctor.cli import run; run()"
    cmd = [sys.executable, "-c", entry, "run", str(EXAMPLE / "evalrun.yaml"), "--store", str(store)]
    # its own session: Ctrl-C in a terminal signals the whole foreground process group, workers too;
    # and SIGINT deliverable, as from a terminal (the test process may have inherited it ignored or
    # blocked, and a child inherits both: the run would then never see the Ctrl-C)
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=_interruptible,
    )
    records = lambda: list(store.glob("runs/*/*/*/oracle/items/*/*.json"))  # noqa: E731
    deadline = time.monotonic() + 120
    while len(records()) < 12 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.02)
    assert proc.poll() is None, "the run ended before it could be interrupted"
    started = time.monotonic()
    os.killpg(proc.pid, signal.SIGINT)
    try:
        proc.wait(timeout=2.0)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGUSR1)  # the stacks go to its stderr, shown below on failure
        proc.wait(timeout=30)
    exited = time.monotonic() - started
    # Nothing it started outlives it (a sandbox left running would hold the terminal and the CPU).
    while (left := session_processes(proc.pid)) and time.monotonic() - started < exited + 1.0:
        time.sleep(0.05)
    assert not left, f"processes outlived the interrupted run: {left}"
    out, err = proc.communicate(timeout=30)
    assert exited < 2.0, f"stopped after {exited:.1f} s; its threads then:\n{err[-6000:]}"
    assert proc.returncode == 130
    assert "Traceback" not in err and "Traceback" not in out
    assert [line for line in err.splitlines() if line.strip()] == [
        "interrupted: nothing written so far is lost; run the same command again to resume"
    ]
    done_before = len(records())
    assert 0 < done_before < 72
    result = last_json(proctor("run", str(EXAMPLE / "evalrun.yaml"), "--store", str(store), "--json"))
    assert result["counts"]["reused"] >= done_before - 6  # a record being written when killed is redone
    assert result["counts"]["processed"] + result["counts"]["reused"] == 72
    assert result["scores"] == EXPECTED_N6

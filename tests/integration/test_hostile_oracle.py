"""The hostile suite (tests/hostile/oracle) in every sandbox tier this machine offers.

Each case is an answer that tries to forge its verdict, spoil a neighbour's, read credentials or the
reference solution, phone home or exhaust the machine; `run_oracle_cases` puts all of them through the
real HumanEval-V oracle stage beside correct and wrong neighbours, with canary credentials in the
worker's environment and a loopback canary listener. Nothing may escape in any tier.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from proctor_jobs.oracle import Sandbox, SandboxLimits
from proctor_jobs.selftest import Canary, load_cases
from proctor_jobs.selftest.oracle import run_oracle_cases

pytestmark = pytest.mark.slow
on_loop = pytest.mark.asyncio(loop_scope="session")

REPO = Path(__file__).resolve().parents[2]
CASES = REPO / "tests" / "hostile" / "oracle"
UNPRIVILEGED_PYTHON = Path("/var/lib/proctor-tests/unprivileged/bin/python")


def _escapes(rows):
    return [(r["attack"], r["tier"], r["outcome"], r["detail"]) for r in rows if r["escaped"]]


@on_loop
@pytest.mark.parametrize("tier", ["root", "userns"])
async def test_nothing_escapes_in_the_tier(tier, tmp_path):
    if tier == "root" and os.geteuid() != 0:
        pytest.skip("the root tier needs root")
    cases = load_cases(CASES)
    assert len(cases) >= 20
    with Canary() as canary:
        rows = await run_oracle_cases(cases, canary=canary, scratch=tmp_path, tier=tier)
        assert not canary.seen
    assert {r["tier"] for r in rows} == {tier}
    assert not _escapes(rows)
    by_name = {r["attack"]: r for r in rows}
    assert by_name["correct-with-tricks"]["outcome"] == "passed"
    assert "answer_too_large" in by_name["answer-50mb"]["outcome"]


def test_nothing_escapes_as_an_unprivileged_user():
    """As uid 65534 (nobody), where only a user namespace is available: the same suite, the same result."""
    if os.geteuid() != 0:
        pytest.skip("switching to another user needs root")
    if not UNPRIVILEGED_PYTHON.exists():
        pytest.fail("tests/setup.d/30-unprivileged.sh has not made the unprivileged virtualenv")
    work = Path(tempfile.mkdtemp(prefix="proctor-unprivileged-", dir="/tmp"))
    try:
        # A copy of the source any user can read (the checkout may sit under a private home).
        shutil.copytree(REPO / "jobs", work / "jobs", ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copytree(REPO / "tests" / "hostile", work / "hostile")
        scratch = work / "scratch"
        scratch.mkdir()
        os.chown(scratch, 65534, 65534)
        for path in [work, *work.rglob("*")]:
            if path != scratch and not path.is_relative_to(scratch):
                path.chmod(0o755 if path.is_dir() else 0o644)
        env = {
            "PATH": "/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "HOME": str(scratch),
            "TMPDIR": str(scratch),
            "PYTHONPATH": str(work / "jobs"),
        }
        command = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", str(UNPRIVILEGED_PYTHON)]
        command += ["-m", "proctor_jobs.selftest", "--cases", str(work / "hostile")]
        command += ["--target", "oracle", "--json"]
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600, cwd=scratch)
        assert done.stdout.strip(), done.stderr[-3000:]
        rows = json.loads(done.stdout.strip().splitlines()[-1])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    assert {r["tier"] for r in rows} == {"userns"}, rows[-1]
    assert not _escapes(rows), done.stderr[-2000:]
    assert done.returncode == 0


@on_loop
async def test_the_in_process_verdict_is_forgeable_and_the_harness_is_not(tmp_path):
    """Why the harness exists: the original's single process lets an answer report success itself."""
    forge = {
        "name": "forge-done-and-wait",
        "target": "oracle",
        "attack": "writes the completion report on its channel while loading, then waits to be stopped",
        "expect": {"passed": False},
        "answer": (
            "```python\nimport json, os, struct, time\nclass _AtLoad:\n"
            "    body = json.dumps({'event': 'done'}).encode()\n"
            "    os.write(3, struct.pack('>I', len(body)) + body)\n"
            "    time.sleep(5)\n"
            "def solution(n):\n    return -1\n```\n"
        ),
    }
    with Canary() as canary:
        forged = await run_oracle_cases([forge], canary=canary, scratch=tmp_path / "a", verdict="in-process")
        held = await run_oracle_cases([forge], canary=canary, scratch=tmp_path / "b", verdict="harness")
    assert forged[0]["outcome"] == "passed" and forged[0]["escaped"]
    assert not held[0]["escaped"] and held[0]["outcome"].startswith("failed")


@on_loop
@pytest.mark.parametrize("tier", ["root", "userns"])
async def test_memory_is_budgeted_across_all_of_a_samples_processes(tier, monkeypatch):
    """Five children of 500 MB each stay under the per-process limit but not under the sample's."""
    if tier == "root" and os.geteuid() != 0:
        pytest.skip("the root tier needs root")
    monkeypatch.setenv("PROCTOR_SANDBOX_TIER", tier)
    code = (
        "import os, time\n"
        "for _ in range(5):\n"
        "    if os.fork() == 0:\n"
        "        block = bytearray(500 * 1024 * 1024)\n"
        "        time.sleep(60)\n"
        "        os._exit(0)\n"
        "time.sleep(60)\n"
    )
    async with Sandbox(concurrency=1) as sandbox:
        assert sandbox.tier == tier
        result = await sandbox.run_python(code, SandboxLimits(wall_seconds=20, memory_mb=2048))
    assert result.budget_exceeded == "memory", (result.status, result.budget, result.stderr[-500:])
    assert result.duration_s < 19
    assert "memory budget exceeded" in result.reason
    # root: a cgroup where the machine lets us make one; a user namespace can only account and kill
    kinds = ("cgroup-v1", "cgroup-v2", "accounted") if tier == "root" else ("accounted",)
    assert result.budget["kind"] in kinds


@on_loop
async def test_a_huge_request_does_not_hold_up_the_others():
    """Handing a 50 MB program to the server is linear: small programs beside it finish in time."""
    import asyncio

    async with Sandbox(concurrency=4) as sandbox:
        big = "x = 1\n" * (50 * 1024 * 1024 // 6)
        small = [sandbox.run_python("print(1)", SandboxLimits(wall_seconds=5)) for _ in range(3)]
        results = await asyncio.gather(sandbox.run_python(big, SandboxLimits(wall_seconds=30)), *small)
    assert all(r.ok for r in results[1:]), [r.reason for r in results[1:]]
    assert max(r.duration_s for r in results[1:]) < 5
    # more than one frame can carry is refused with the reason, not lost in a harness worker
    assert not results[0].ok and "the sandbox takes at most" in results[0].reason, results[0].reason

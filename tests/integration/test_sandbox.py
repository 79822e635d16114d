"""The sandbox against hostile programs: each ends as a result with a reason, nothing escapes."""

from __future__ import annotations

import os
import socket
import threading

import pytest

from proctor_jobs.oracle import Sandbox, SandboxLimits

pytestmark = pytest.mark.asyncio(loop_scope="session")

LIMITS = SandboxLimits(wall_seconds=2)


@pytest.fixture(scope="module")
def listener():
    """A loopback server that must see nothing: a program phoning home has to be stopped earlier."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    seen: list[bytes] = []
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except (TimeoutError, OSError):
                continue
            seen.append(conn.recv(100) or b"<connected>")
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1], seen
    stop.set()
    thread.join()
    server.close()


@pytest.fixture(scope="module")
async def sandbox(tmp_path_factory):
    outside = tmp_path_factory.mktemp("hidden-store")
    (outside / "secret.txt").write_text("the reference answers")
    async with Sandbox(concurrency=2, hide=[str(outside)]) as sb:
        sb.outside = outside  # type: ignore[attr-defined]
        yield sb


async def test_a_correct_program_passes_and_reports_its_isolation(sandbox):
    result = await sandbox.run_python(
        "import numpy as np\nassert int(np.arange(4).sum()) == 6\nprint('fine')", LIMITS
    )
    assert result.ok, result.reason
    assert result.stdout == "fine\n"
    assert "rlimits" in result.isolation
    if os.geteuid() == 0:
        assert {"no-network", "read-only-filesystem", "pid-namespace", "unprivileged-uid"} <= set(
            result.isolation
        )


async def test_a_failing_assertion_is_a_result_with_its_message(sandbox):
    result = await sandbox.run_python("assert 1 == 2, 'one is not two'", LIMITS)
    assert not result.ok
    assert result.exception == {"type": "AssertionError", "message": "one is not two"}


async def test_infinite_loop_is_killed_at_the_deadline(sandbox):
    result = await sandbox.run_python("while True:\n    pass", SandboxLimits(wall_seconds=1))
    assert result.status == "timeout"
    assert 0.9 < result.duration_s < 3
    assert "timeout" in result.reason


async def test_fork_bomb_is_contained_and_leaves_nothing_behind(sandbox):
    code = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass"
    result = await sandbox.run_python(code, SandboxLimits(wall_seconds=1, max_processes=32))
    assert not result.ok
    follow_up = await sandbox.run_python("print('still alive')", LIMITS)
    assert follow_up.ok and follow_up.stdout == "still alive\n"


async def test_a_fork_bombs_own_exception_is_its_reason_not_its_childrens_echoes(sandbox):
    # Every child inherits the status pipe and reports the same exception after the program's own.
    code = "import os\nwhile True:\n    os.fork()"
    result = await sandbox.run_python(code, SandboxLimits(wall_seconds=2, max_processes=16))
    assert not result.ok
    assert result.exception is not None and result.exception["type"] == "BlockingIOError", result.reason
    assert result.reason.startswith("BlockingIOError")


async def test_ten_gigabytes_are_refused(sandbox):
    result = await sandbox.run_python("blob = bytearray(10 * 1024 ** 3)", LIMITS)
    assert not result.ok
    assert "MemoryError" in result.reason


async def test_writes_outside_the_scratch_directory_fail(sandbox, tmp_path):
    target = tmp_path / "escaped.txt"
    code = f"import os\nopen('inside.txt', 'w').write('ok')\nopen({str(target)!r}, 'w').write('escaped')\n"
    result = await sandbox.run_python(code, LIMITS)
    assert not result.ok
    assert not target.exists()
    tmp_target = "/tmp/proctor-sandbox-escape-test"
    result = await sandbox.run_python(f"open({tmp_target!r}, 'w').write('x')", LIMITS)
    assert not result.ok and not os.path.exists(tmp_target)


async def test_hidden_paths_are_invisible(sandbox):
    secret = sandbox.outside / "secret.txt"
    result = await sandbox.run_python(f"print(open({str(secret)!r}).read())", LIMITS)
    assert not result.ok
    assert "reference answers" not in result.stdout


async def test_phoning_home_reaches_nobody(sandbox, listener):
    port, seen = listener
    code = (
        "import socket\n"
        f"s = socket.create_connection(('127.0.0.1', {port}), timeout=1)\n"
        "s.sendall(b'stolen')\n"
    )
    result = await sandbox.run_python(code, LIMITS)
    assert not result.ok
    assert seen == []


async def test_exiting_early_with_status_zero_is_not_a_pass(sandbox):
    result = await sandbox.run_python("import os\nos._exit(0)\nassert False", LIMITS)
    assert result.exit_code == 0 and not result.ok
    assert "exited before the program finished" in result.reason
    result = await sandbox.run_python("import sys\nsys.exit(0)", LIMITS)
    assert not result.ok and result.exception["type"] == "SystemExit"


async def test_huge_output_is_capped(sandbox):
    result = await sandbox.run_python(
        "print('x' * (300 * 1024 * 1024))", SandboxLimits(wall_seconds=5, max_file_mb=8)
    )
    assert not result.ok
    assert len(result.stdout) < 64 * 1024


async def test_commands_run_confined_in_their_working_directory(sandbox, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    result = await sandbox.run_command(
        ["sh", "-c", "echo built > out.txt && touch /tmp/proctor-cmd-escape; cat out.txt"],
        SandboxLimits(wall_seconds=5),
        cwd=work,
    )
    assert result.stdout.strip().startswith("built")
    assert (work / "out.txt").read_text() == "built\n"
    assert not os.path.exists("/tmp/proctor-cmd-escape")


async def test_many_programs_in_parallel_all_come_back(sandbox):
    import asyncio

    results = await asyncio.gather(
        *(sandbox.run_python(f"assert {i} * 2 == {2 * i}", LIMITS) for i in range(40))
    )
    assert all(r.ok for r in results)


async def test_a_test_script_that_never_ends_costs_its_harness_worker_not_its_neighbours(sandbox):
    """The harness workers are reused across programs; one stuck in a test that loops on its own is
    killed at the backstop (the program's wall time + 10 s), its program recorded, the rest unharmed."""
    import asyncio

    answer = "def double(x):\n    return 2 * x\n"
    stuck = sandbox.run_test(answer, "while True:\n    pass\n", "double", SandboxLimits(wall_seconds=1))
    neighbours = [
        sandbox.run_test(answer, f"assert double({i}) == {2 * i}\n", "double", LIMITS) for i in range(6)
    ]
    stuck_result, *others = await asyncio.gather(stuck, *neighbours)
    assert not stuck_result.ok
    assert "without a verdict" in stuck_result.verdict.get("harness_error", "")
    assert all(r.ok for r in others), [r.reason for r in others]
    after = await sandbox.run_test(answer, "assert double(21) == 42\n", "double", LIMITS)
    assert after.ok, after.reason


async def test_a_slot_reused_with_other_memory_limits_still_starts(sandbox):
    """Per-sample cgroups are made once per slot and reused; raising a slot's memory limit after a
    lower one must work (cgroup v1 refuses memory above memory+swap: the order of the writes matters)."""
    for memory_mb in (256, 1024, 300, 2048):
        result = await sandbox.run_python("print('ok')", SandboxLimits(wall_seconds=2, memory_mb=memory_mb))
        assert result.ok, (memory_mb, result.reason)
        assert result.budget.get("memory_mb") == memory_mb

"""Hostile render cases (`tests/hostile/render/*.yaml`) through the real render stage and Chromium.

Every case's answer is an attack (dialog and popup loops, navigations away, beacons to a loopback
canary, memory bombs, hung pages, oversized pages, `file://` reads, invalid text); all of them are
rendered at once by `proctor_jobs.selftest.render.run_render_cases`, which checks each case's `expect`
block — on each render clock (one browser on the real-time clock, one per slot on the virtual one).
Meanwhile the worker's secrets are set to canary values in this process, and every Chromium process
started for the run is inspected: none may carry them, and no record or evidence may contain them.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from pathlib import Path

import pytest
import yaml

# idle_machine: a page that should render has a 15 s deadline; beside the other test worker one
# waited 23 s for a slot and timed out (wasm-4gb, counted as an escape), so tests/run runs it alone.
pytestmark = [pytest.mark.slow, pytest.mark.idle_machine]

CASES_DIR = Path(__file__).resolve().parents[1] / "hostile" / "render"
SECRETS = ("AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID", "PROCTOR_JUDGE_API_KEY")


def _cases() -> list[dict]:
    cases = [yaml.safe_load(p.read_text(encoding="utf-8")) for p in sorted(CASES_DIR.glob("*.yaml"))]
    assert cases, f"no cases in {CASES_DIR}"
    return cases


@pytest.fixture
def canary():
    """A loopback TCP and UDP listener standing in for the outside world; it must see nothing."""
    from tests.integration.test_render_farm import Listener

    listener = Listener()
    try:
        yield listener.port, listener.seen
    finally:
        listener.close()


def _descendants(root: int) -> list[int]:
    parents: dict[int, int] = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            parents[int(pid)] = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
    found, frontier = [], {root}
    while frontier:
        children = {pid for pid, parent in parents.items() if parent in frontier}
        found += children
        frontier = children
    return found


class EnvironmentWatch:
    """Reads /proc/<pid>/environ of every Chromium process under this test process, every 0.3 s."""

    def __init__(self, canaries: dict[str, str]) -> None:
        self.canaries = canaries
        self.inspected: set[int] = set()
        self.with_environment: set[int] = set()  # processes whose environ is readable as such
        self.leaks: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.3):
            for pid in _descendants(os.getpid()):
                try:
                    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
                    if b"chrom" not in cmdline.lower():
                        continue
                    environ = Path(f"/proc/{pid}/environ").read_bytes()
                except OSError:
                    continue
                self.inspected.add(pid)
                if b"HOME=" in environ:
                    self.with_environment.add(pid)
                for name, value in self.canaries.items():
                    if value.encode() in environ or f"{name}=".encode() in environ:
                        self.leaks.append(f"pid {pid} ({cmdline[:120]!r}) has {name}")

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


@pytest.mark.parametrize("clock", ["realtime", "virtual"])
def test_hostile_render_cases_are_contained(canary, tmp_path, monkeypatch, clock):
    if not Path("/usr/bin/chromium").exists():
        if os.environ.get("PROCTOR_REQUIRE_ENV") == "1":
            pytest.fail("Chromium missing (tests/setup.d/20-render.sh installs it)")
        pytest.skip("Chromium missing (tests/setup.d/20-render.sh installs it)")
    from proctor_jobs.selftest.render import run_render_cases

    port, seen = canary
    canaries = {name: f"canary-{name.lower()}-{os.getpid()}-5f3a" for name in SECRETS}
    for name, value in canaries.items():
        monkeypatch.setenv(name, value)
    cases = _cases()
    names = [c["name"] for c in cases]
    assert len(set(names)) == len(names) and all(c["target"] == "render" for c in cases)

    watch = EnvironmentWatch(canaries)
    started = time.monotonic()
    try:
        results = asyncio.run(run_render_cases(cases, canary_port=port, scratch=tmp_path, clock=clock))
    finally:
        watch.stop()
    elapsed = time.monotonic() - started
    time.sleep(0.5)  # anything in flight would have reached the canary by now

    report = "\n".join(
        f"{r['attack']:22} {'ESCAPED' if r['escaped'] else 'ok':8} {r['time_s']:5.1f} s  {r['outcome']}"
        f"{'  -- ' + r['detail'] if r['escaped'] else ''}"
        for r in results
    )
    print(f"\n{report}\ntotal {elapsed:.1f} s")
    assert [r["attack"] for r in results] == names
    assert not [r for r in results if r["escaped"]], report
    assert seen == [], f"the canary listener was reached: {seen}"
    # Chromium's children overwrite their /proc environ with the process title; the browser process
    # (whose environment every child inherits) and its crash handlers show theirs.
    assert watch.inspected and watch.with_environment, "no Chromium environment was inspected"
    assert watch.leaks == [], watch.leaks
    for path in tmp_path.rglob("*"):
        if path.is_file():
            body = path.read_bytes()
            assert not any(v.encode() in body for v in canaries.values()), f"a secret is in {path}"

"""Nothing piles up in the temp dir: stale shard scratch is swept, render workers share one wrapper."""

from __future__ import annotations

import os
import subprocess
import sys

from proctor_jobs.render import network
from proctor_jobs.worker import sweep_stale_scratch


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_scratch_of_a_killed_worker_is_swept_and_a_live_ones_kept(tmp_path):
    dead = tmp_path / f"proctor-oracle-0-pid{_dead_pid()}-abc"
    live = tmp_path / f"proctor-oracle-1-pid{os.getpid()}-def"
    other = tmp_path / "proctor-pylint-warm-xyz"  # not a shard scratch folder: left alone
    for folder in (dead, live, other):
        (folder / "sandbox").mkdir(parents=True)
        (folder / "sandbox" / "program.py").write_text("x")
    assert sweep_stale_scratch(tmp_path) == [dead]
    assert not dead.exists() and live.exists() and other.exists()


def test_render_workers_share_one_netns_wrapper_in_the_temp_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(network.tempfile, "tempdir", None)
    script = '#!/bin/sh\nexec /usr/bin/unshare --net -- "/usr/bin/chromium" "$@"\n'
    first = network._shared_wrapper(script)
    second = network._shared_wrapper(script)  # another worker process: the same file
    assert first == second and first.parent == tmp_path and first.read_text() == script
    assert sorted(p.name for p in tmp_path.iterdir()) == [first.name]
    # a wrapper someone else could have written is never trusted
    first.chmod(0o777)
    third = network._shared_wrapper(script)
    assert third == first and (third.stat().st_mode & 0o022) == 0

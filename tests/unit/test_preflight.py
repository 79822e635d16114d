"""Preflight before any work, never cached; environment failures mid-run recorded apart and redone."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from proctor import preflight
from proctor.plan import plan_run, write_plan
from proctor.results import summarize
from proctor_jobs.benchmarks import get_benchmark
from proctor_jobs.layout import RunLayout
from proctor_jobs.worker import load_shard_records, run_shard

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
PREFIX = "runs/default/t/uid1"


def test_a_missing_extra_is_named_with_the_command_that_installs_it(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "playwright" else real(name)
    )
    monkeypatch.setenv("PROCTOR_CHROMIUM", sys.executable)  # any runnable file: not what this test is about
    checks = preflight.checks_for("artifactsbench", {}, [{"id": "1"}])
    [missing] = [c for c in checks if not c.ok]
    assert missing.name == "python: playwright" and missing.needed_by == "ArtifactsBench render"
    assert missing.fix.endswith("install -e '.[render]'")
    with pytest.raises(preflight.PreflightFailed, match=r"python: playwright .*to fix: .*\[render\]"):
        preflight.preflight("artifactsbench", {}, [{"id": "1"}])


def test_the_headless_shell_is_needed_where_the_clock_is_virtual_by_default_or_by_choice():
    """The `fixed` profile renders on the virtual clock unless told otherwise, so a default ArtifactsBench
    run needs the old headless shell; `faithful` keeps real time and does not."""

    def shell(render):
        checks = preflight.checks_for("artifactsbench", {"render": render}, [{"id": "1"}])
        return [c.needed_by for c in checks if c.name == "chromium-headless-shell"]

    assert (
        shell({})
        == shell({"clock": "virtual", "profile": "faithful"})
        == ["ArtifactsBench render (clock: virtual)"]
    )
    assert shell({"profile": "faithful"}) == [] and shell({"clock": "realtime"}) == []


def test_proctor_chromium_pointing_at_a_missing_file_is_an_error(monkeypatch, tmp_path):
    monkeypatch.setenv("PROCTOR_CHROMIUM", str(tmp_path / "chromium"))
    check = preflight.chromium("render")
    assert not check.ok and check.detail == f"PROCTOR_CHROMIUM={tmp_path / 'chromium'}: no such file"


def test_tex_tools_are_checked_only_for_latex_tasks(monkeypatch):
    monkeypatch.setattr(preflight.shutil, "which", lambda name: None)
    names = {c.name for c in preflight.checks_for("vision2code", {}, [{"renderer": "matplotlib"}])}
    assert "pdflatex" not in names
    checks = preflight.checks_for("vision2code", {}, [{"renderer": "latex"}])
    tex = [c for c in checks if c.name in ("pdflatex", "pdftoppm")]
    assert len(tex) == 2 and not any(c.ok for c in tex) and "texlive" in tex[0].fix


def test_an_unreachable_judge_fails_fast_and_a_live_one_answers(judge_double):
    started = time.monotonic()
    check = preflight.judge({"url": "http://127.0.0.1:9"}, "judge")
    assert not check.ok and "unreachable" in check.detail and time.monotonic() - started < 5
    double = judge_double()
    check = preflight.judge({"url": double.url}, "judge")
    assert check.ok, check.detail
    assert preflight.checks_for("humanevalv", {"oracle": {"pylint": False}}, []) == []


def test_run_stops_before_any_work_naming_the_missing_part(tmp_path):
    store = tmp_path / "store"
    manifest = str(EXAMPLES / "artifactsbench" / "evalrun.yaml")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "proctor",
            "run",
            manifest,
            "--store",
            str(store),
            "--judge-url",
            "http://127.0.0.1:9",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PROCTOR_CHROMIUM": str(tmp_path / "nope"), "HOME": str(tmp_path)},
    )
    assert proc.returncode == 3, proc.stderr
    assert f"PROCTOR_CHROMIUM={tmp_path / 'nope'}: no such file" in proc.stderr
    assert "judge" in proc.stderr and "unreachable" in proc.stderr and "Traceback" not in proc.stderr
    assert not store.exists() and not (tmp_path / ".cache").exists()  # nothing written, nothing built
    doctor = subprocess.run(
        [sys.executable, "-m", "proctor", "doctor", str(EXAMPLES / "artifactsbench" / "evalrun.yaml")],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PROCTOR_CHROMIUM": str(tmp_path / "nope"), "HOME": str(tmp_path)},
    )
    assert doctor.returncode == 1 and "chromium" in doctor.stdout and "missing" in doctor.stdout


def test_an_environment_failure_mid_run_is_env_error_redone_on_rerun_and_not_scored(fs_store, fake_benchmark):
    items = [{"id": "a"}, {"id": "b", "do": "needs_extra", "value": 0}]
    plan, manifests = plan_run(get_benchmark("fake"), {"sharding": {"shardSize": 3}}, items, PREFIX)
    write_plan(fs_store, plan, manifests, items)
    for stage in ("first", "second"):
        run_shard(fs_store, PREFIX, stage, 0)
    records = load_shard_records(fs_store, RunLayout(PREFIX), "first", 0)
    assert records["b"].status == "env_error" and "playwright" in records["b"].reason
    summary, *_ = summarize(fs_store, plan, {}, {"name": "t"}, "Failed")
    assert summary["scores"] == {"mean": 2.0}  # only a: b's missing extra is not b's score
    assert sum(summary["env_errors"].values()) == 1
    # the extra is installed: the rerun redoes b (and only b), in both stages
    fake_benchmark.extra_installed = True
    fake_benchmark.calls.clear()
    outcome = run_shard(fs_store, PREFIX, "first", 0)
    assert fake_benchmark.calls == [("first", "b")] and outcome.processed == 1
    assert load_shard_records(fs_store, RunLayout(PREFIX), "first", 0)["b"].status == "ok"


def test_a_missing_pdflatex_mid_run_is_the_environments_fault_not_the_answers(monkeypatch):
    import shutil

    from proctor_jobs.records import EnvironmentMissing, environment_reason
    from proctor_jobs.render import vision2code

    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(EnvironmentMissing) as info:
        vision2code.require_renderer_tools("latex")
    reason = environment_reason(info.value)
    assert reason.startswith("pdflatex, pdftoppm not found (LaTeX renderer); install: sudo apt-get install")
    assert environment_reason(ModuleNotFoundError("No module named 'playwright'", name="playwright"))
    assert environment_reason(RuntimeError("a bad answer")) is None

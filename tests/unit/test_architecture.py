"""The architecture's import rules, checked rather than hoped for."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path


def test_import_contracts_hold(repo_root):
    lint = shutil.which("lint-imports") or str(Path(sys.executable).parent / "lint-imports")
    proc = subprocess.run(
        [lint, "--config", str(repo_root / "pyproject.toml")], capture_output=True, text=True, cwd=repo_root
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "BROKEN" not in proc.stdout


def _modules_after(statement: str) -> set[str]:
    code = f"import sys, json\n{statement}\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return set(json.loads(out))


def test_control_plane_import_pulls_no_browser_or_plotting_library():
    loaded = _modules_after("import proctor.cli, proctor.local, proctor.plan, proctor.api, proctor.results")
    for heavy in ("playwright", "matplotlib", "openai", "kopf"):
        assert heavy not in loaded, f"{heavy} imported by the control plane"


def test_data_plane_never_imports_cluster_libraries():
    loaded = _modules_after("import proctor_jobs.worker, proctor_jobs.benchmarks.humanevalv")
    for forbidden in ("proctor", "kopf", "kubernetes"):
        assert forbidden not in loaded


def test_no_top_level_module_named_operator(repo_root):
    # operator/ is a source folder, not a package: a module named `operator` would shadow the stdlib.
    assert not (repo_root / "operator" / "__init__.py").exists()
    import operator

    assert hasattr(operator, "itemgetter")

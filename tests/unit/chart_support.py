"""Rendering the Helm chart with the real helm (built by tests/cluster/build.sh), for the chart tests."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "proctor"


def helm_binary() -> Path:
    from tests.cluster.binaries import MissingBinary, go_binary

    try:
        return go_binary("helm")
    except MissingBinary as err:
        if os.environ.get("PROCTOR_REQUIRE_ENV") == "1":
            pytest.fail(f"helm is required:{err}", pytrace=False)
        pytest.skip(f"helm is not built:{err}")


def helm(*args: str, check: bool = True, home: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run helm with its caches kept out of the user's home (no repositories are ever contacted)."""
    env = dict(os.environ)
    if home is not None:
        env.update(
            HELM_CACHE_HOME=str(home / "cache"),
            HELM_CONFIG_HOME=str(home / "config"),
            HELM_DATA_HOME=str(home / "data"),
        )
    done = subprocess.run([str(helm_binary()), *args], capture_output=True, text=True, timeout=120, env=env)
    if check and done.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} failed ({done.returncode}):\n{done.stderr}")
    return done


def render(*args: str, release: str = "t", namespace: str = "proctor-system", home: Path | None = None):
    """`helm template` of the chart → the list of objects (documents without content dropped)."""
    out = helm("template", release, str(CHART), "--namespace", namespace, *args, home=home).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def template_runner(home: Path) -> Callable[..., list[dict[str, Any]]]:
    """What the chart tests' `helm_template` fixture returns: `helm_template("--set", "a=b", ...)`
    renders the chart (release `t`, namespace proctor-system) with helm's state under `home`."""

    def run(*args: str, **kwargs: Any) -> list[dict[str, Any]]:
        return render(*args, home=home, **kwargs)

    return run


def find(docs: list[dict], kind: str, name: str | None = None, namespace: str | None = None) -> list[dict]:
    return [
        d
        for d in docs
        if d["kind"] == kind
        and (name is None or d["metadata"]["name"] == name)
        and (namespace is None or d["metadata"].get("namespace") == namespace)
    ]

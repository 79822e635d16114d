"""Where the environment's binaries are, and a loud error naming the build command when one is not.

The Go binaries are built by `tests/cluster/build.sh` into ~/.cache/proctor/<name>-<version>/ (see
versions.env); Prometheus comes from Debian (`tests/setup-env.sh`). Nothing here builds anything:
a test run that finds a binary missing should say how to get it, not start a 20-minute build.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

HERE = Path(__file__).resolve().parent
BUILD_SH = HERE / "build.sh"


class MissingBinary(RuntimeError):
    """A binary the environment needs has not been built or installed."""


def _versions() -> dict[str, str]:
    versions: dict[str, str] = {}
    for line in (HERE / "versions.env").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            versions[key] = os.environ.get(key, value)
    return versions


VERSIONS = _versions()
K8S_VERSION = VERSIONS["PROCTOR_K8S_VERSION"]


def cache_dir() -> Path:
    """The cache build.sh writes to (PROCTOR_CACHE overrides ~/.cache/proctor, as in build.sh)."""
    return Path(os.environ.get("PROCTOR_CACHE", Path.home() / ".cache" / "proctor"))


def _component(component: str) -> Path:
    version = VERSIONS[f"PROCTOR_{component.upper()}_VERSION"]
    return cache_dir() / f"{component}-{version}"


def go_binary(component: str, name: str | None = None) -> Path:
    """The path of a binary build.sh builds, e.g. go_binary("k8s", "kube-apiserver")."""
    directory = _component(component)
    path = directory / (name or component)
    if not (directory / ".complete").exists() or not path.exists():
        raise MissingBinary(
            f"\n{'!' * 78}\n"
            f"  PROCTOR TEST ENVIRONMENT: {path.name} ({component}) IS NOT BUILT.\n"
            f"  Expected {path} (with {directory}/.complete).\n"
            f"  Build it with:   {BUILD_SH} {component}\n"
            f"  or everything:   tests/setup-env.sh\n"
            f"{'!' * 78}"
        )
    return path


def prometheus() -> Path:
    """Debian's prometheus binary (PROCTOR_PROMETHEUS overrides)."""
    found = os.environ.get("PROCTOR_PROMETHEUS") or shutil.which("prometheus")
    if not found:
        raise MissingBinary(
            f"\n{'!' * 78}\n"
            "  PROCTOR TEST ENVIRONMENT: `prometheus` IS NOT INSTALLED.\n"
            "  Install it with:  apt-get install -y prometheus   (or run tests/setup-env.sh)\n"
            f"{'!' * 78}"
        )
    return Path(found)


def kubectl() -> Path:
    """The kubectl built alongside the control plane, so client and server versions match."""
    return go_binary("k8s", "kubectl")

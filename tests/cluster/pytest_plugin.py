"""Session-scoped pytest fixtures for the real test environment: `k8s`, `s3`, `prometheus`, `kwok`,
`real_node`.

Loaded from tests/conftest.py (`pytest_plugins = ["tests.cluster.pytest_plugin"]`). Each fixture
starts its part once per session on first use, and stops it at session end, then checks that no
process it started (servers and every pod process) is left. A missing binary skips the tests that
need it with a loud reason naming the build command, or fails them when PROCTOR_REQUIRE_ENV=1 (CI).
The contract is documented in tests/cluster/README.md.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from . import environment, procs
from . import prometheus as prom
from . import s3 as s3mod
from .binaries import MissingBinary
from .controlplane import ControlPlane

_MISSING: list[str] = []


def _missing(err: MissingBinary) -> None:
    """Skip (or, when the environment is required, fail) with the build instructions."""
    if str(err) not in _MISSING:
        _MISSING.append(str(err))
    if os.environ.get("PROCTOR_REQUIRE_ENV") == "1":
        pytest.fail(f"PROCTOR_REQUIRE_ENV=1 but the test environment is incomplete:{err}", pytrace=False)
    pytest.skip(f"test environment incomplete:{err}")


@pytest.fixture(scope="session")
def proctor_env_dir(request: pytest.FixtureRequest) -> Iterator[Path]:
    """The session's working directory for all servers; kept when a test failed (for the logs).

    PROCTOR_ENV_DIR names a fixed directory instead (it is never deleted then; under pytest-xdist, one
    folder in it per worker).
    """
    fixed = os.environ.get("PROCTOR_ENV_DIR")
    path = Path(fixed) if fixed else Path(tempfile.mkdtemp(prefix="proctor-env-"))
    if fixed and os.environ.get("PYTEST_XDIST_WORKER"):
        path /= os.environ["PYTEST_XDIST_WORKER"]  # each xdist worker is a session with servers of its own
    path.mkdir(parents=True, exist_ok=True)
    yield path
    failed = request.session.testsfailed and any(path.iterdir())
    if fixed is None and not failed and os.environ.get("PROCTOR_KEEP_ENV") != "1":
        shutil.rmtree(path, ignore_errors=True)
    elif failed:
        print(f"\n[proctor test env] logs kept in {path}")


def _check_no_leftovers(what: str, pids: list[int]) -> None:
    stragglers = environment.reap(pids)
    if stragglers:
        raise AssertionError(f"{what}: processes left running after teardown (killed now): {stragglers}")


@pytest.fixture(scope="session")
def k8s(proctor_env_dir: Path) -> Iterator[ControlPlane]:
    """A real control plane with one Ready test-kubelet node (see README.md for the API)."""
    try:
        plane = environment.start_k8s(proctor_env_dir / "k8s")
    except MissingBinary as err:
        _missing(err)
    yield plane
    _check_no_leftovers("k8s", environment.stop_k8s(plane))


@pytest.fixture(scope="session")
def s3(proctor_env_dir: Path) -> Iterator[s3mod.S3Server]:
    """A MinIO server with generated credentials and one bucket for the session."""
    try:
        server = s3mod.start(proctor_env_dir / "s3")
    except MissingBinary as err:
        _missing(err)
    try:
        server.wait_ready()
    except BaseException:
        server.stop()
        raise
    yield server
    server.stop()
    _check_no_leftovers("s3", [server.info.pid])


@pytest.fixture(scope="session")
def prometheus(proctor_env_dir: Path) -> Iterator[prom.Prometheus]:
    """Debian's Prometheus scraping what tests add with `add_target`, queried with `query`."""
    try:
        server = prom.start(proctor_env_dir / "prometheus")
    except MissingBinary as err:
        _missing(err)
    try:
        server.wait_ready()
    except BaseException:
        server.stop()
        raise
    yield server
    server.stop()
    _check_no_leftovers("prometheus", [server.info.pid])


@pytest.fixture(scope="session")
def kwok(k8s: ControlPlane, proctor_env_dir: Path) -> Iterator[object]:
    """kwok managing fake nodes (tainted, so only pods that ask land there) for scale tests."""
    from . import kwok as kwok_mod

    try:
        controller = kwok_mod.start(k8s, proctor_env_dir / "kwok")
    except MissingBinary as err:
        _missing(err)
    yield controller
    controller.stop()
    _check_no_leftovers("kwok", [controller.server.pid])


@pytest.fixture(scope="session")
def real_node(k8s: ControlPlane, proctor_env_dir: Path) -> Iterator[str]:
    """A real kubelet + containerd + runc node beside the test kubelet (tests/cluster/realnode.py),
    tainted `proctor.dev/real-node=true:NoSchedule`; yields its node name. Host sysctls and iptables
    rules are restored at the end."""
    from . import realnode

    workdir = proctor_env_dir / "realnode"
    try:
        servers = realnode.start(workdir, k8s.kubeconfig, k8s.kubectl)
    except MissingBinary as err:
        _missing(err)
    yield realnode.NODE_NAME
    realnode.drain(k8s.kubectl)
    for server in reversed(servers):
        server.stop()
    problems = realnode.stop_leftovers(workdir, k8s.kubectl)
    _check_no_leftovers("real node", [server.pid for server in servers])
    assert not problems, f"the real node could not undo: {problems}"


@pytest.fixture(scope="session")
def real_node_network(k8s: ControlPlane, real_node: str) -> Iterator[object]:
    """Makes the session's servers on 127.0.0.1 reachable from pods on the real node
    (`realnode.PodNetwork`): `.expose(url) -> url` relays a server through the bridge address, and the
    `kubernetes` Service (10.0.0.1:443) reaches the API server, so in-cluster clients work."""
    from urllib.parse import urlsplit

    from . import realnode

    network = realnode.PodNetwork(urlsplit(k8s.server).port)
    yield network
    network.close()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Repeat, at the end of the run, which parts of the environment were missing (skips are quiet)."""
    if _MISSING:
        terminalreporter.write_sep("!", "PROCTOR TEST ENVIRONMENT INCOMPLETE: tests were skipped", red=True)
        for message in _MISSING:
            terminalreporter.write_line(message, red=True)


__all__ = ["k8s", "kwok", "procs", "proctor_env_dir", "prometheus", "real_node", "real_node_network", "s3"]

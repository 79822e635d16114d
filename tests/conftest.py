"""Shared pytest configuration: fixture plugins by area (each optional until its area exists), and how
`tests/run` shares the tests between its two pytest-xdist workers."""

import importlib.util

import pytest

_PLUGINS = [
    "tests.cluster.pytest_plugin",  # real control plane, test kubelet, S3 (MinIO), Prometheus
    "tests.doubles.pytest_plugin",  # test doubles: the OpenAI-compatible judge server
    "tests.support",  # small fixtures shared by unit tests
]


def _available(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


pytest_plugins = [name for name in _PLUGINS if _available(name)]

#: Fixtures of the one Kubernetes environment a session may hold: the real node changes the host's
#: sysctls and iptables and has a fixed name, and a second control plane would only cost CPU.
CLUSTER_FIXTURES = frozenset({"k8s", "kwok", "real_node", "real_node_network"})


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the groups
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under `--dist loadgroup`: every test that needs the cluster runs in one worker (the group
    `cluster`), every other module's tests together in one worker (its module- and class-scoped
    fixtures, the example runs among them, are then set up once). Without xdist the marks do nothing."""
    for item in items:
        needs_cluster = CLUSTER_FIXTURES.intersection(getattr(item, "fixturenames", ()))
        group = "cluster" if needs_cluster else item.path.stem
        item.add_marker(pytest.mark.xdist_group(group))


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_node_collection_finished(node: object, ids: list[str]) -> None:
    """Fail loudly where xdist's groups did not take (a pytest whose node ids it cannot mark:
    pytest-dev/pytest-xdist#1386): the cluster's tests would start a second control plane and a
    second real node."""
    if ids and not all("@" in nodeid for nodeid in ids):
        raise pytest.UsageError(
            "pytest-xdist did not apply tests/conftest.py's xdist_group marks: install the pytest that "
            "pyproject.toml pins, or run with PROCTOR_TEST_WORKERS=0"
        )

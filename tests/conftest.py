"""Shared pytest configuration: fixture plugins by area (each optional until its area exists)."""

import importlib.util

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

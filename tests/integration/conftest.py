"""Fixtures shared by the integration modules."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import require_env


@pytest.fixture(scope="module")
def libraries():
    require_env(
        Path("/usr/bin/chromium").exists(), "Chromium missing (tests/setup.d/20-render.sh installs it)"
    )
    from proctor_jobs.render.libcache import LibraryCacheError, ensure_cache

    try:
        return ensure_cache()
    except LibraryCacheError as exc:
        require_env(False, f"library cache unavailable: {exc}")

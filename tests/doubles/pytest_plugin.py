"""Fixtures for the judge TEST DOUBLE (tests/doubles/judge_server.py).

- `judge_double` — a factory, function-scoped: `judge_double(latency_s=0.1, capacity=4, ...)`
  starts an in-process double on 127.0.0.1 (a free port, or `port=`) and returns it; every double
  the test started is stopped at teardown. `double.url` is the base URL (`.../v1`),
  `double.requests` the request log, `double.stats()` the counters, `double.stop()` /
  `double.start()` take it down and bring it back on the same port.
- `judge_double_process` — the same factory for a double in a child process (for tests whose
  workers run in other processes, or that SIGKILL the judge): `proc.kill()`, `proc.start()`,
  `proc.stats()`, `proc.log()`. Every process it started is killed at teardown.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.doubles.judge_server import JudgeDouble, JudgeDoubleProcess


@pytest.fixture
def judge_double() -> Iterator[Callable[..., JudgeDouble]]:
    started: list[JudgeDouble] = []

    def factory(**options: Any) -> JudgeDouble:
        options.setdefault("host", "127.0.0.1")
        if options["host"] != "127.0.0.1":
            raise ValueError("the judge double binds 127.0.0.1 only in tests")
        double = JudgeDouble(**options)
        started.append(double)
        return double.start()

    yield factory
    for double in started:
        double.stop()


@pytest.fixture
def judge_double_process() -> Iterator[Callable[..., JudgeDoubleProcess]]:
    started: list[JudgeDoubleProcess] = []

    def factory(port: int = 0, **config: Any) -> JudgeDoubleProcess:
        proc = JudgeDoubleProcess(port, **config)
        started.append(proc)
        return proc.start()

    yield factory
    for proc in started:
        proc.kill()

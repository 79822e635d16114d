"""Imported by a fork server that will lint programs: warms pylint once, so every child starts warm.

pylint's inference library (astroid) builds its picture of `builtins` and the standard library
lazily and caches it per process. A fork server that imports this module does that work once at
start-up; each confined child it forks inherits the warm cache instead of rebuilding it per shard.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile

_WARM_PROGRAM = '''
import collections, functools, heapq, itertools, math, re, typing
from typing import List, Dict, Tuple


def solution(grid: list) -> int:
    """Touch the kinds of names HumanEval-V programs use."""
    counts = collections.Counter(x for row in grid for x in row)
    best = max(counts.values(), default=0)
    return int(math.sqrt(best)) + len(re.findall(r"a", str(grid))) + sum(itertools.chain([1], [2]))


assert solution([[1, 2], [3, 4]]) >= 0
'''


def warm() -> None:
    from pylint.lint import Run
    from pylint.reporters.json_reporter import JSONReporter

    with tempfile.TemporaryDirectory(prefix="proctor-pylint-warm-") as scratch:
        path = os.path.join(scratch, "warm.py")
        with open(path, "w") as f:
            f.write(_WARM_PROGRAM)
        options = ["--score=n", "--persistent=n", "--disable=all", "--enable=E,F"]
        with contextlib.suppress(Exception), contextlib.redirect_stdout(io.StringIO()):
            Run([*options, path], reporter=JSONReporter(io.StringIO()), exit=False)


warm()

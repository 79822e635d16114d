"""Step 1: check that this machine can run TinySort and record the environment in env/ready.json."""

import json
import platform
from pathlib import Path

if tuple(int(p) for p in platform.python_version_tuple()[:2]) < (3, 9):
    raise SystemExit(f"TinySort needs Python 3.9 or newer, this is {platform.python_version()}")
Path("env").mkdir(exist_ok=True)
Path("env/ready.json").write_text(
    json.dumps({"python": platform.python_version(), "implementation": platform.python_implementation()})
    + "\n"
)
print(f"environment ready: Python {platform.python_version()}")

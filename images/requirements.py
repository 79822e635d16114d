"""Print the requirements of Proctor's dependencies and the named extras, one per line, from
pyproject.toml — so an image installs its dependencies in a layer of their own, rebuilt when
pyproject.toml changes, not on every change to Proctor's code.

    python images/requirements.py pyproject.toml render judge > requirements.txt
    python images/requirements.py pyproject.toml --only operator > requirements.txt

`--only`: the named extras without the project's own dependencies (the operator image: its extra
names everything the control plane imports, and nothing a worker needs).
"""

from __future__ import annotations

import re
import sys
import tomllib


def requirements(pyproject: dict, extras: list[str], core: bool = True) -> list[str]:
    project = pyproject["project"]
    optional = project.get("optional-dependencies", {})
    own = re.compile(rf"^{re.escape(project['name'])}\[(?P<extras>[^\]]+)\]$")
    out: list[str] = list(project.get("dependencies", [])) if core else []
    pending, seen = list(extras), set()
    while pending:
        extra = pending.pop(0)
        if extra in seen:
            continue
        if extra not in optional:
            raise SystemExit(f"pyproject.toml: no optional dependency group {extra!r}")
        seen.add(extra)
        for requirement in optional[extra]:
            nested = own.match(requirement.replace(" ", ""))
            if nested:  # proctor[a,b]: the project's own extras
                pending += nested["extras"].split(",")
            elif requirement not in out:
                out.append(requirement)
    return out


if __name__ == "__main__":
    arguments = sys.argv[2:]
    only = "--only" in arguments
    with open(sys.argv[1], "rb") as handle:
        extras = [a for a in arguments if a != "--only"]
        print("\n".join(requirements(tomllib.load(handle), extras, core=not only)))

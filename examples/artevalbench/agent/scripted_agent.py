#!/usr/bin/env python3
"""A scripted "agent" that reproduces an artifact by following its README, step by step.

It reads the README it is given, finds the `## Step N: <title>` sections and runs each section's
```bash blocks in order from the artifact root, the way a careful human (or a model) would. `--skip WORD`
leaves out every step whose title contains WORD, to imitate an agent that skips part of the work.

    scripted_agent.py README.md [--skip experiment] [--skip dataset]

Exit status: 0 when every step it ran succeeded, 1 otherwise. It needs nothing but Python and bash.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

STEP = re.compile(r"^##\s+Step\s+(\d+)\s*:\s*(.+?)\s*$", re.MULTILINE)
BLOCK = re.compile(r"^```(?:bash|sh|shell)\s*\n(.*?)^```", re.MULTILINE | re.DOTALL)


def steps(readme: str) -> list[tuple[str, list[str]]]:
    found = list(STEP.finditer(readme))
    out = []
    for i, match in enumerate(found):
        end = found[i + 1].start() if i + 1 < len(found) else len(readme)
        section = readme[match.end() : end]
        out.append((f"Step {match.group(1)}: {match.group(2)}", BLOCK.findall(section)))
    return out


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("readme", type=Path)
    parser.add_argument("--skip", action="append", default=[], help="skip steps whose title contains this")
    args = parser.parse_args(argv)
    plan = steps(args.readme.read_text())
    if not plan:
        print(f"agent: {args.readme} has no '## Step N:' sections; nothing to do", flush=True)
        return 1
    failures = 0
    for title, blocks in plan:
        if any(word.lower() in title.lower() for word in args.skip):
            print(f"agent: skipping {title}", flush=True)
            continue
        print(f"agent: {title} ({len(blocks)} command block(s))", flush=True)
        for block in blocks:
            done = subprocess.run(["bash", "-euo", "pipefail", "-c", block])
            if done.returncode != 0:
                print(f"agent: {title} failed with exit status {done.returncode}", flush=True)
                failures += 1
                break
    print(f"agent: finished, {failures} step(s) failed", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

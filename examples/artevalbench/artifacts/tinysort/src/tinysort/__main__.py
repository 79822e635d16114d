"""tinysort bench DATASET [--out FILE]: Table 1 of the paper (mean comparisons per array)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tinysort import __version__
from tinysort.algorithms import ALGORITHMS, Counter

BUCKETS = ((4, 15), (16, 31), (32, 64))


def load(path: Path) -> list[list[int]]:
    return [[int(v) for v in line.split()] for line in path.read_text().splitlines() if line.strip()]


def table(arrays: list[list[int]]) -> str:
    lines = [
        "| algorithm | " + " | ".join(f"n={lo}-{hi}" for lo, hi in BUCKETS) + " |",
        "|---|" + "---|" * len(BUCKETS),
    ]
    for name, sort in ALGORITHMS.items():
        cells = []
        for lo, hi in BUCKETS:
            group = [a for a in arrays if lo <= len(a) <= hi]
            total = 0
            for values in group:
                counter = Counter()
                if sort(values, counter) != sorted(values):
                    raise SystemExit(f"{name} sorted incorrectly")
                total += counter.comparisons
            cells.append(f"{total / len(group):.1f}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="tinysort")
    parser.add_argument("--version", action="version", version=f"tinysort {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    bench = sub.add_parser("bench", help="print Table 1")
    bench.add_argument("dataset", type=Path)
    bench.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    text = table(load(args.dataset))
    print(text, end="")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    return 0


def cli() -> None:
    sys.exit(main(sys.argv[1:]))


if __name__ == "__main__":
    cli()

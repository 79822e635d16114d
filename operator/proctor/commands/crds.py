"""`proctor crds`: generate the CRDs from the models, or check that the committed ones are current."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_parser(sub) -> None:
    p = sub.add_parser(
        "crds",
        help="generate CustomResourceDefinitions into crds/ (or --check them)",
        description="Generate the CustomResourceDefinitions of EvalRun, JudgeServer and Artifact from "
        "the models (one YAML file per kind), or check that the files are up to date.",
    )
    p.add_argument("--out", type=Path, default=Path("crds"), help="output directory (default: crds)")
    p.add_argument("--check", action="store_true", help="exit 1 if the directory is not up to date")
    p.add_argument("--stdout", action="store_true", help="print all CRDs as one YAML stream")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from proctor.api import crdgen

    if args.stdout:
        sys.stdout.write("---\n".join(crdgen.render_all().values()))
        return 0
    if args.check:
        stale = crdgen.stale(args.out)
        if stale:
            print(
                f"{args.out}/ is stale ({', '.join(stale)}); run `proctor crds --out {args.out}`",
                file=sys.stderr,
            )
            return 1
        print(f"{args.out}/ is up to date")
        return 0
    for path in crdgen.write(args.out):
        print(f"wrote {path}")
    return 0

"""`proctor validate`: check manifests and their inputs without running anything.

An EvalRun gets exactly the checks `proctor run` makes before any work (`proctor.local.resolve`):
the manifest, its inputs (missing, unreadable, empty, duplicate ids) and the join of tasks and
answers; an Artifact gets its records checked. Exit status 2 when anything is refused."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_parser(sub) -> None:
    p = sub.add_parser(
        "validate",
        help="validate Proctor manifests (and the records they reference)",
        description="Check manifests and their inputs as `proctor run` does before any work, without "
        "running anything. Exit status 2 if anything is refused.",
    )
    p.add_argument("paths", nargs="+", type=Path, help="manifest files or folders of manifests")
    p.add_argument("--name", help="check only the EvalRun with this name")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from proctor.api import Artifact
    from proctor.inputs import InputError, fetch_source, validate_bundle
    from proctor.local import LocalResolver, resolve
    from proctor.manifests import ManifestError, is_proctor, load_documents, validate

    status = 0
    for path in args.paths:
        try:
            docs = load_documents(path)
            base = path.parent if path.is_file() else path
            resolver = LocalResolver(list(docs), base, path if path.is_file() else None)
            for doc in docs:
                if not is_proctor(doc) or (args.name and doc.name != args.name):
                    continue
                obj = validate(doc)
                detail = ""
                if isinstance(obj, Artifact):
                    records = fetch_source(obj.spec.source, doc.label, resolver.config_map, base)
                    bundle = validate_bundle(obj.spec.type, obj.spec.format, records, doc.label)
                    detail = f" ({bundle.items} records, sha256 {bundle.sha256[:12]})"
                elif doc.kind == "EvalRun":
                    resolved = resolve(Path(doc.source.split("#", 1)[0]), doc.name)
                    detail = f" ({len(resolved.items)} items)"
                    for warning in resolved.warnings:
                        print(f"warning: {doc.label}: {warning}", file=sys.stderr)
                print(f"ok  {doc.label}{detail}")
        except (ManifestError, InputError) as exc:
            print(f"{exc}", file=sys.stderr)
            status = 2
    return status

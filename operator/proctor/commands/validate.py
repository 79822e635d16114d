"""`proctor validate`: check manifests and their inputs without running anything."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_parser(sub) -> None:
    p = sub.add_parser("validate", help="validate Proctor manifests (and the records they reference)")
    p.add_argument("paths", nargs="+", type=Path)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from proctor.api import Artifact
    from proctor.inputs import InputError, fetch_source, validate_bundle
    from proctor.local import LocalResolver
    from proctor.manifests import ManifestError, is_proctor, load_documents, validate

    status = 0
    for path in args.paths:
        try:
            docs = load_documents(path)
            context = docs + (load_documents(path.parent) if path.is_file() else [])
            base = path.parent if path.is_file() else path
            resolver = LocalResolver(context, base)
            for doc in docs:
                if not is_proctor(doc):
                    continue
                obj = validate(doc)
                detail = ""
                if isinstance(obj, Artifact):
                    records = fetch_source(obj.spec.source, doc.label, resolver.config_map, base)
                    bundle = validate_bundle(obj.spec.type, obj.spec.format, records, doc.label)
                    detail = f" ({bundle.items} records, sha256 {bundle.sha256[:12]})"
                print(f"ok  {doc.label}{detail}")
        except (ManifestError, InputError) as exc:
            print(f"{exc}", file=sys.stderr)
            status = 2
    return status

"""`proctor cache`: the render farm's library cache (and a look at the render cache).

    proctor cache build [--force]        download the front-end libraries from the npm registry
    proctor cache status [--json] [--store DIR|s3://...]
    proctor cache path                   where the library cache lives (PROCTOR_LIBCACHE overrides)

The library cache is built on first use when missing; building it ahead (at image build time, or in
CI's setup) keeps the first render fast and lets workers without network egress render at all.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def add_parser(sub) -> None:
    p = sub.add_parser("cache", help="build or inspect the render farm's library cache")
    actions = p.add_subparsers(dest="cache_action", metavar="ACTION")
    build = actions.add_parser("build", help="build the library cache from the npm registry")
    build.add_argument(
        "--dir", type=Path, help="where to build it (default: the path `proctor cache path` shows)"
    )
    build.add_argument("--force", action="store_true", help="rebuild even when a current cache exists")
    build.set_defaults(handler=run_build)
    status = actions.add_parser("status", help="is the library cache present and current")
    status.add_argument("--dir", type=Path, help="the library cache directory to inspect")
    status.add_argument("--store", help="also count render-cache entries in this store")
    status.add_argument("--json", action="store_true")
    status.set_defaults(handler=run_status)
    path = actions.add_parser("path", help="print the library cache directory")
    path.set_defaults(handler=run_path)
    p.set_defaults(handler=lambda args: (p.print_help(), 2)[1])


def run_build(args: argparse.Namespace) -> int:
    from proctor_jobs.render.libcache import LibraryCacheError, build_cache, cache_status, default_dir

    root = args.dir or default_dir()
    status = cache_status(root)
    if status.get("present") and status.get("current") and not args.force:
        print(
            f"library cache {status['version']} is current at {root} ({status['megabytes']} MB);"
            " --force rebuilds"
        )
        return 0
    print(f"building library cache at {root} ...", flush=True)
    try:
        build_cache(root, log_fn=lambda line: print(line, flush=True))
    except (LibraryCacheError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def run_status(args: argparse.Namespace) -> int:
    from proctor_jobs.render.libcache import cache_status

    status = cache_status(args.dir)
    if args.store:
        from proctor_jobs.store import open_store

        store = open_store(args.store)
        entries = [k for k in store.list("cache/render/") if k.endswith("/meta.json")]
        status["render_cache"] = {"store": store.url, "entries": len(entries)}
    if args.json:
        print(json.dumps(status, indent=1))
        return 0 if status.get("present") else 1
    if not status.get("present"):
        print(
            f"library cache: missing at {status['path']} (expected version {status['expected_version']});"
            " `proctor cache build` builds it (a render builds it on first use)"
        )
    else:
        state = "current" if status["current"] else f"stale (expected {status['expected_version']})"
        print(f"library cache: {status['path']}")
        print(
            f"  version {status['version']} ({state}), built {status['built_at']}, {status['megabytes']} MB"
        )
        for name, versions in status["packages"].items():
            print(f"  {name}: {', '.join(versions)}")
    if "render_cache" in status:
        print(
            f"render cache: {status['render_cache']['entries']} entries in {status['render_cache']['store']}"
        )
    return 0 if status.get("present") else 1


def run_path(args: argparse.Namespace) -> int:
    from proctor_jobs.render.libcache import default_dir

    print(default_dir())
    return 0

"""`proctor report RUN`: (re)write a run's report.md and self-contained report.html.

RUN is a run directory or store URL with its prefix (`.proctor/store/runs/NS/NAME/UID`,
`s3://bucket/prefix/runs/NS/NAME/UID`), a prefix `runs/NS/NAME/UID` with `--store`, or an EvalRun's
`NAME` / `NS/NAME` (its most recent run in the store). The reports are written next to the run in
the store; `--output` / `--markdown` also write copies to local files (the HTML copy with the
full-size images its thumbnails open in a `NAME_files/` folder beside it). The scores come from the
run's summary.json; `--reaggregate` recomputes them (and the exports) from the records, with the
spec of `--manifest` if given (otherwise the benchmark's defaults).

Exit status: 0 written; 2 the run cannot be found.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_parser(sub) -> None:
    p = sub.add_parser(
        "report",
        help="write a run's report.md and report.html (headline, categories, distribution, examples)",
        description=__doc__.split("\n\n")[1],
    )
    p.add_argument("run", help="run directory, store URL with run prefix, runs/NS/NAME/UID, NAME or NS/NAME")
    p.add_argument(
        "--store", help="store for a run prefix or name (default .proctor/store, env PROCTOR_STORE)"
    )
    p.add_argument(
        "--output", "-o", type=Path, help="also write report.html to this file (full-size images beside it)"
    )
    p.add_argument("--markdown", type=Path, help="also write report.md to this file")
    p.add_argument("--reaggregate", action="store_true", help="recompute scores and exports from the records")
    p.add_argument("--manifest", type=Path, help="EvalRun manifest whose spec to aggregate with")
    p.set_defaults(handler=run)


def _spec(manifest: Path | None) -> dict:
    if manifest is None:
        return {}
    from proctor.local import load_run_manifests

    evalrun, _ = load_run_manifests(manifest)
    return evalrun.spec.dump()


def run(args: argparse.Namespace) -> int:
    from proctor.commands._runs import RunNotFound, locate_run
    from proctor.report_html import export_html, write_html_report
    from proctor.results import all_shards_finished, collect_records, render_markdown, write_results

    try:
        ref = locate_run(args.run, args.store)
    except RunNotFound as exc:
        print(f"proctor report: {exc}", file=sys.stderr)
        return 2
    store, plan, layout = ref.store, ref.plan, ref.layout
    summary = store.get_json_or(layout.summary)
    run_meta = {"name": ref.name, "namespace": ref.namespace}
    if summary is None or args.reaggregate:
        phase = (summary or {}).get("phase") or (
            "Succeeded" if all_shards_finished(store, plan) else "Running"
        )
        summary, records = write_results(store, plan, _spec(args.manifest), run_meta, phase)
        items = store.get_jsonl(layout.items)
    else:
        items = store.get_jsonl(layout.items)
        records = collect_records(store, plan)
        store.put_text(layout.report_md, render_markdown(summary, items, records, plan), "text/markdown")
        write_html_report(store, plan, summary, items, records)
    print(f"report.md:   {store.uri(layout.report_md)}")
    print(f"report.html: {store.uri(layout.report_html)}")
    if args.output is not None:
        folder = export_html(store, plan, summary, items, records, args.output)
        images = f" (full-size images in {folder})" if folder.exists() else ""
        print(f"wrote {args.output}{images}")
    if args.markdown is not None:
        store.get_file(layout.report_md, args.markdown)
        print(f"wrote {args.markdown}")
    return 0

"""Finding a finished (or running) run in a store, for `proctor report` and `proctor compare`.

A RUN argument is one of:
- a store URL or directory path that contains the run prefix: `s3://bucket/prefix/runs/NS/NAME/UID`
  or `.proctor/store/runs/NS/NAME/UID` (the part before `/runs/` is the store);
- a run prefix `runs/NS/NAME/UID` inside the store given by `--store` (default `.proctor/store`,
  env PROCTOR_STORE);
- `NS/NAME` or `NAME` (namespace `default`): the most recently finished run of that EvalRun in the
  store (local runs of the same EvalRun differ by the hash of their spec and inputs).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from proctor.plan import Plan, read_plan
from proctor_jobs.layout import RunLayout
from proctor_jobs.store import Store, open_store

DEFAULT_STORE = ".proctor/store"


class RunNotFound(LookupError):
    pass


@dataclass
class RunRef:
    store: Store
    prefix: str
    plan: Plan

    @property
    def layout(self) -> RunLayout:
        return RunLayout(self.prefix)

    @property
    def namespace(self) -> str:
        return self.prefix.split("/")[1]

    @property
    def name(self) -> str:
        return self.prefix.split("/")[2]

    @property
    def label(self) -> str:
        return f"{self.store.url}/{self.prefix}"


def default_store() -> str:
    return os.environ.get("PROCTOR_STORE", DEFAULT_STORE)


def _split(run: str) -> tuple[str, str] | None:
    """(store URL, run prefix) when RUN names both."""
    marker = "/runs/"
    text = run.rstrip("/")
    if marker not in text:
        return None
    root, rest = text.split(marker, 1)
    if not root.startswith("s3://"):
        root = str(Path(root or "/").resolve())
    return root, "runs/" + rest


def _latest(store: Store, base: str) -> str | None:
    """The run prefix under `base` (runs/NS/NAME/) whose summary finished last, else any with a plan."""
    candidates = []
    for key in store.list(base):
        if key.endswith("/plan.json") and key.count("/") == 4:
            prefix = key[: -len("/plan.json")]
            summary = store.get_json_or(RunLayout(prefix).summary) or {}
            candidates.append((summary.get("finished_at") or "", prefix))
    return max(candidates)[1] if candidates else None


def locate_run(run: str, store_url: str | None = None) -> RunRef:
    split = _split(run)
    if split is not None and (run.startswith("s3://") or Path(split[0]).is_dir()):
        store_url, prefix = split
    else:
        store_url = store_url or default_store()
        if run.startswith("runs/"):
            prefix = run.rstrip("/")
        else:
            parts = run.strip("/").split("/")
            if len(parts) not in (1, 2):
                raise RunNotFound(f"{run!r} is neither a run path, a run prefix, NAME nor NAMESPACE/NAME")
            namespace, name = parts if len(parts) == 2 else ("default", parts[0])
            found = _latest(open_store(store_url), f"runs/{namespace}/{name}/")
            if found is None:
                raise RunNotFound(f"no run of {namespace}/{name} in {store_url}")
            prefix = found
    store = open_store(store_url)
    plan = read_plan(store, prefix)
    if plan is None:
        raise RunNotFound(f"no plan.json at {store.url}/{prefix}: not a Proctor run")
    return RunRef(store, prefix, plan)

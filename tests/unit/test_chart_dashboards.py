"""The chart's Grafana dashboards: generated from one source, and valid against Grafana's published schema.

The schema check compiles each dashboard with TypeScript against `@grafana/schema` (the types Grafana
publishes on the npm registry; tests/setup.d/60-ship.sh caches them with `typescript` under
~/.cache/proctor/grafana-schema-<version>/). Each dashboard becomes a fresh object literal typed as
`Dashboard`, so TypeScript's excess-property checks catch a misspelt key at any depth, a wrong type or a
value outside an enum; each panel's `options` and `fieldConfig.defaults.custom` are checked against
that panel plugin's own types (timeseries, stat, bargauge, table, text), and each query against the
schema's `DataQuery` plus the Prometheus query fields. String enums are compared by their values
(JSON cannot name a TypeScript enum), and panel options are deep-partial because Grafana fills in
defaults for what a dashboard leaves out.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.unit.chart_support import template_runner

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "proctor"
SCHEMA_VERSION = "13.2.3"
CACHE = Path(os.environ.get("PROCTOR_CACHE", Path.home() / ".cache" / "proctor"))
NODE_MODULES = CACHE / f"grafana-schema-{SCHEMA_VERSION}" / "node_modules"
PANELCFG = {
    "timeseries": ("Options", "FieldConfig"),
    "stat": ("Options", None),
    "bargauge": ("Options", None),
    "table": ("Options", "FieldConfig"),
    "text": ("Options", None),
}

PRELUDE = """
import type {{ Dashboard, DataQuery }} from "@grafana/schema";
{imports}

// Enums compared by value: JSON spells `"palette-classic"`, never `FieldColorModeId.PaletteClassic`.
type Loose<T> = T extends string ? `${{T}}`
  : T extends number | boolean | null | undefined ? T
  : T extends (infer U)[] ? Loose<U>[]
  : T extends object ? {{ [K in keyof T]: Loose<T[K]> }}
  : T;
// Panel options: Grafana merges what a dashboard sets over the plugin's defaults.
type LoosePartial<T> = T extends string ? `${{T}}`
  : T extends number | boolean | null | undefined ? T
  : T extends (infer U)[] ? LoosePartial<U>[]
  : T extends object ? {{ [K in keyof T]?: LoosePartial<T[K]> }}
  : T;

// A Prometheus query as Grafana stores it (the Prometheus plugin's query model over DataQuery).
interface PromQuery extends DataQuery {{
  expr: string;
  legendFormat?: string;
  range?: boolean;
  instant?: boolean;
  format?: "time_series" | "table" | "heatmap";
  editorMode?: "code" | "builder";
  interval?: string;
  intervalFactor?: number;
  exemplar?: boolean;
  datasource?: {{ type: "prometheus"; uid: string }};
}}
"""


@pytest.fixture
def helm_template(tmp_path):
    return template_runner(tmp_path / "helm")


def _tsc() -> Path:
    tsc = NODE_MODULES / ".bin" / "tsc"
    if not tsc.exists() or not (NODE_MODULES / "@grafana" / "schema").is_dir():
        message = (
            f"@grafana/schema {SCHEMA_VERSION} and typescript are not in {NODE_MODULES.parent}; "
            "run tests/setup.d/60-ship.sh"
        )
        if os.environ.get("PROCTOR_REQUIRE_ENV") == "1":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    if shutil.which("node") is None:
        pytest.skip("node is not installed")
    return tsc


def dashboards() -> dict[str, dict]:
    return {p.name: json.loads(p.read_text()) for p in sorted((CHART / "dashboards").glob("*.json"))}


def typescript_check(name: str, board: dict) -> str:
    """TypeScript source that compiles only when `board` fits Grafana's types."""
    stem = Path(name).stem.replace("-", "_")
    imports = []
    for plugin, (options, custom) in PANELCFG.items():
        names = [f"{options} as {plugin}_options"] + ([f"{custom} as {plugin}_custom"] if custom else [])
        module = f"@grafana/schema/dist/types/raw/composable/{plugin}/panelcfg/x/types.gen"
        imports.append(f'import type {{ {", ".join(names)} }} from "{module}";')
    lines = [PRELUDE.format(imports="\n".join(imports))]
    lines.append(f"export const {stem}: Loose<Dashboard> = {json.dumps(board, indent=1)};")
    panels = [p for p in board.get("panels", [])]
    panels += [inner for p in board.get("panels", []) for inner in p.get("panels", [])]
    for panel in panels:
        kind, pid = panel["type"], panel.get("id")
        if kind == "row":
            continue
        assert kind in PANELCFG, f"{name}: panel {pid} has type {kind!r}, which this check does not cover"
        if "options" in panel:
            lines.append(
                f"export const {stem}_{pid}_options: LoosePartial<{kind}_options> = "
                f"{json.dumps(panel['options'])};"
            )
        custom = ((panel.get("fieldConfig") or {}).get("defaults") or {}).get("custom")
        if custom is not None:
            assert PANELCFG[kind][1], f"{name}: panel {pid} ({kind}) sets field custom options it has none of"
            lines.append(
                f"export const {stem}_{pid}_custom: LoosePartial<{kind}_custom> = {json.dumps(custom)};"
            )
        for i, query in enumerate(panel.get("targets") or []):
            lines.append(f"export const {stem}_{pid}_q{i}: PromQuery = {json.dumps(query)};")
    return "\n".join(lines) + "\n"


def compile_typescript(tmp_path: Path, sources: dict[str, str]) -> subprocess.CompletedProcess:
    tsc = _tsc()
    for filename, source in sources.items():
        (tmp_path / filename).write_text(source)
    schema = NODE_MODULES / "@grafana" / "schema"
    config = {
        "compilerOptions": {
            "strict": True,
            "noEmit": True,
            "target": "es2020",
            "module": "esnext",
            "moduleResolution": "bundler",
            "skipLibCheck": True,
            "types": [],
            "baseUrl": str(tmp_path),
            "paths": {
                "@grafana/schema": [str(schema / "dist" / "types" / "index.d.ts")],
                "@grafana/schema/dist/types/*": [str(schema / "dist" / "types" / "*")],
            },
        },
        "files": sorted(sources),
    }
    (tmp_path / "tsconfig.json").write_text(json.dumps(config, indent=1))
    return subprocess.run(
        [str(tsc), "-p", str(tmp_path / "tsconfig.json")], capture_output=True, text=True, timeout=300
    )


def build(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(CHART / "dashboards" / "build.py"), *args], capture_output=True, text=True
    )


def test_dashboard_files_are_what_the_generator_writes():
    done = build("--check")
    assert done.returncode == 0, done.stderr


def test_the_currency_check_names_a_stale_dashboard(tmp_path):
    """Byte for byte: one changed character in one file, and `--check` fails naming that file only."""
    for path in (CHART / "dashboards").glob("*.json"):
        (tmp_path / path.name).write_bytes(path.read_bytes())
    judge = tmp_path / "judge.json"
    judge.write_text(judge.read_text().replace('"refresh": "30s"', '"refresh": "1m"', 1))
    done = build("--check", "--out", str(tmp_path))
    assert done.returncode == 1
    assert "stale dashboards: judge.json;" in done.stderr


def test_panel_ids_come_from_titles_and_a_duplicate_title_is_refused(monkeypatch):
    """Ids are stable (a panel keeps its id, and so its `?viewPanel=` link, when others are added), and
    unique within each dashboard: a second panel with the same title would share an id, so it is refused."""
    pytest.importorskip("grafana_foundation_sdk")
    source = CHART / "dashboards" / "panels.py"
    spec = importlib.util.spec_from_file_location("chart_dashboard_panels", source)
    assert spec and spec.loader
    panels = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, panels)  # dataclasses look their module up; gone after
    spec.loader.exec_module(panels)
    for board in dashboards().values():
        ids = [p["id"] for p in board["panels"]]
        assert len(set(ids)) == len(ids)
        for p in board["panels"]:
            title = p["title"] if p["type"] != "row" else f"row {p['title']}"
            assert p["id"] == panels.panel_id(title, set())
    taken: set[int] = set()
    panels.panel_id("Throughput", taken)
    with pytest.raises(ValueError, match=r"'Throughput'.*duplicate title"):
        panels.panel_id("Throughput", taken)


def test_every_dashboard_fits_grafanas_published_schema(tmp_path):
    boards = dashboards()
    assert set(boards) == {"runs.json", "judge.json", "operator.json"}
    sources = {f"{Path(n).stem}.ts": typescript_check(n, b) for n, b in boards.items()}
    done = compile_typescript(tmp_path, sources)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_schema_check_rejects_what_grafana_would_not_load(tmp_path):
    """The check can fail: a misspelt key, a wrong type, an unknown enum value and a query without
    `expr` are each refused (each in its own file: TypeScript reports one excess key per literal)."""
    board = dashboards()["runs.json"]

    def broken(change) -> dict:
        copy = json.loads(json.dumps(board))
        change(copy)
        return copy

    def first(copy: dict, kind: str) -> dict:
        return next(p for p in copy["panels"] if p["type"] == kind)

    cases = {
        "refreshh": broken(lambda b: b.update(refreshh="30s")),
        "'string' is not assignable to type 'number'": broken(
            lambda b: b["panels"][1]["gridPos"].update(w="wide")
        ),
        "rainbow": broken(lambda b: first(b, "stat")["options"].update(colorMode="rainbow")),
        "exprr": broken(lambda b: first(b, "timeseries")["targets"][0].update(exprr="up")),
    }
    sources = {f"broken{i}.ts": typescript_check(f"broken{i}.json", b) for i, b in enumerate(cases.values())}
    done = compile_typescript(tmp_path, sources)
    assert done.returncode != 0
    for i, needle in enumerate(cases):
        errors = [line for line in done.stdout.splitlines() if f"broken{i}.ts(" in line]
        assert any(needle in line for line in errors), f"{needle!r} not reported:\n{done.stdout}"


def test_dashboards_are_configmaps_with_the_sidecar_label_and_folder(helm_template):
    docs = helm_template("--set", "dashboards.folder=Evaluation", "--set", "dashboards.extraLabels.team=ml")
    maps = [d for d in docs if d["kind"] == "ConfigMap" and "-dashboard-" in d["metadata"]["name"]]
    assert sorted(m["metadata"]["name"] for m in maps) == [
        "t-proctor-dashboard-judge",
        "t-proctor-dashboard-operator",
        "t-proctor-dashboard-runs",
    ]
    for m in maps:
        assert m["metadata"]["labels"]["grafana_dashboard"] == "1"
        assert m["metadata"]["labels"]["team"] == "ml"
        assert m["metadata"]["annotations"] == {"grafana_folder": "Evaluation"}
        [(key, text)] = m["data"].items()
        assert json.loads(text) == dashboards()[key.removeprefix("proctor-")]
    assert not [
        d
        for d in helm_template("--set", "dashboards.enabled=false")
        if "-dashboard-" in d["metadata"]["name"]
    ]

"""Build the chart's Grafana dashboards (runs.json, judge.json, operator.json) with grafana-foundation-sdk.

    python charts/proctor/dashboards/build.py           # rewrite the JSON files
    python charts/proctor/dashboards/build.py --check   # exit 1 when a file differs (tests run this)

The dashboards are written with the SDK's typed builders (generated from Grafana's own schema; the
`dashboards` extra pins the version, because the JSON is compared byte for byte): board_runs.py,
board_judge.py and board_operator.py describe the panels, panels.py the conventions they share. The
output is deterministic — keys sorted, panel ids derived from titles — so `--check` can compare bytes.
Tests: tests/unit/test_chart_dashboards.py runs `--check` and type-checks the JSON against
@grafana/schema; tests/e2e/test_dashboards.py runs every query against Prometheus after real runs.

Template variables used in queries: $namespace, $run, $judgeserver, $model, $cluster_queue (all
multi-value regexes) and Grafana's $__rate_interval.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.dont_write_bytecode = True  # no __pycache__ inside the chart
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

try:
    from grafana_foundation_sdk.cog.encoder import JSONEncoder
except ImportError:  # pragma: no cover - the message is the point
    sys.exit("grafana-foundation-sdk is not installed: pip install -e '.[dashboards]'")

import board_judge  # noqa: E402
import board_operator  # noqa: E402
import board_runs  # noqa: E402

DASHBOARDS = {
    "runs.json": board_runs.build,
    "judge.json": board_judge.build,
    "operator.json": board_operator.build,
}


def render() -> dict[str, str]:
    """File name -> JSON text, exactly as written to the chart."""
    return {
        name: json.dumps(build(), cls=JSONEncoder, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
        for name, build in DASHBOARDS.items()
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a dashboard file is stale")
    parser.add_argument("--out", type=Path, default=HERE, help="the directory of the JSON files (this one)")
    args = parser.parse_args(argv)
    stale = []
    for name, text in render().items():
        path = args.out / name
        if args.check:
            if not path.is_file() or path.read_text() != text:
                stale.append(name)
        else:
            path.write_text(text)
            print(f"wrote {path}")
    if stale:
        print(f"stale dashboards: {', '.join(stale)}; run python {Path(__file__).name}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

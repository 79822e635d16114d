#!/usr/bin/env bash
# Shipping (issue 8): what the chart, image, example and dashboard tests need on a clean Debian 12
# machine, as root. Idempotent: a warm run only checks and prints versions.
#
#   - helm: built from its Go module by tests/cluster/build.sh (tests/setup-env.sh runs it); checked here.
#   - Grafana's published dashboard schema (@grafana/schema) and the TypeScript compiler, from the npm
#     registry, cached under ~/.cache/proctor/grafana-schema-<version>/ (tests/unit/test_chart_dashboards.py
#     type-checks every dashboard against it). npm comes from Debian when missing.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cache="${PROCTOR_CACHE:-$HOME/.cache/proctor}"
schema_version=13.2.3      # keep in step with SCHEMA_VERSION in tests/unit/test_chart_dashboards.py
typescript_version=5.9.3
log() { printf '[setup ship %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# ---- helm (built by tests/cluster/build.sh) -----------------------------------------------------------
helm_version="$(sed -n 's/^PROCTOR_HELM_VERSION=//p' "$here/tests/cluster/versions.env")"
helm="$cache/helm-$helm_version/helm"
if [[ ! -x "$helm" ]]; then
  log "helm $helm_version is missing: building it (tests/cluster/build.sh helm)"
  "$here/tests/cluster/build.sh" helm
fi
printf 'helm %s\n' "$("$helm" version --short)" >&2

# ---- npm (Debian's, with Node.js) -----------------------------------------------------------------------
if ! command -v npm >/dev/null 2>&1; then
  log "installing Debian's npm"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -q --no-install-recommends npm >/dev/null
fi

# ---- @grafana/schema + typescript, cached --------------------------------------------------------------
dir="$cache/grafana-schema-$schema_version"
stamp="$dir/.complete-ts-$typescript_version"
if [[ ! -f "$stamp" ]]; then
  log "installing @grafana/schema $schema_version and typescript $typescript_version into $dir"
  rm -rf "$dir.tmp" && mkdir -p "$dir.tmp"
  printf '{"name": "proctor-dashboard-check", "private": true}\n' >"$dir.tmp/package.json"
  attempt=1
  until (cd "$dir.tmp" && npm install --silent --no-audit --no-fund --save-exact \
           "@grafana/schema@$schema_version" "typescript@$typescript_version" >/dev/null); do
    if ((attempt >= 3)); then log "npm install failed $attempt times"; exit 1; fi
    attempt=$((attempt + 1)); sleep $((attempt * 5))
  done
  rm -rf "$dir" && mv "$dir.tmp" "$dir"
  touch "$stamp"
fi
test -f "$dir/node_modules/@grafana/schema/dist/types/index.d.ts" || { log "@grafana/schema is incomplete in $dir"; exit 1; }
printf 'typescript %s | @grafana/schema %s\n' "$("$dir/node_modules/.bin/tsc" --version | cut -d' ' -f2)" \
  "$(node -p "require('$dir/node_modules/@grafana/schema/package.json').version")" >&2

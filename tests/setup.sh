#!/usr/bin/env bash
# Install everything the tests need on a clean Debian 12 machine (run as root): a virtualenv with
# Proctor and its test extras, the real test environment (Debian's Prometheus; the Kubernetes control
# plane, MinIO, helm and kwok built with Go and cached under ~/.cache/proctor/<name>-<version>/), then
# each area's own setup script in tests/setup.d/. Idempotent: a warm run only checks.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
export PROCTOR_CACHE="${PROCTOR_CACHE:-$HOME/.cache/proctor}"
export PIP_CACHE_DIR="${PIP_CACHE_DIR:-$PROCTOR_CACHE/pip}"
export PIP_DISABLE_PIP_VERSION_CHECK=1
log() { printf '[setup %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
start=$SECONDS

command -v python3 >/dev/null || { log "python3 (>= 3.11) is required"; exit 1; }
python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { log "Python >= 3.11 is required"; exit 1; }
command -v go >/dev/null || { log "Go (>= 1.26) is required to build the test control plane"; exit 1; }

if [[ ! -x .venv/bin/python ]]; then
  log "creating .venv"
  python3 -m venv .venv
fi
# Reinstall only when the dependency list changed (the editable install follows the code by itself).
stamp=".venv/.proctor-deps-$(sha256sum pyproject.toml | cut -c1-16)"
if [[ ! -f "$stamp" ]]; then
  log "installing proctor[test] into .venv"
  .venv/bin/pip install --quiet --upgrade pip
  .venv/bin/pip install --quiet -e '.[test]'
  rm -f .venv/.proctor-deps-* && touch "$stamp"
fi

export PYTHON="$root/.venv/bin/python"
tests/setup-env.sh
for script in tests/setup.d/*.sh; do
  log "running $script"
  bash "$script"
done
log "setup done in $((SECONDS - start)) s"

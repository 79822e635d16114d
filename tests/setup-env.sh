#!/usr/bin/env bash
# Install what the real test environment (tests/cluster) needs on a clean Debian 12 machine, as root:
# Debian's Prometheus (never left running as a service: the fixtures start their own on a free
# port), the Python packages the fixtures import, and the Go-built binaries (tests/cluster/build.sh).
#
#   tests/setup-env.sh          # idempotent; a warm run (everything present) takes a few seconds
#
# PYTHON selects the interpreter whose site-packages get the Python packages (default: python3).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PYTHON="${PYTHON:-python3}"
log() { printf '[setup-env %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# ---- Prometheus from Debian -------------------------------------------------------------------------
if ! command -v prometheus >/dev/null 2>&1; then
  log "installing Debian's prometheus"
  export DEBIAN_FRONTEND=noninteractive
  # Keep the package's maintainer scripts from starting a daemon on :9090 (policy-rc.d exit 101 =
  # "action forbidden"); ours is started by the fixtures on 127.0.0.1 and a free port.
  added_policy=0
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && added_policy=1
  fi
  apt-get update -qq
  apt-get install -y -q --no-install-recommends prometheus >/dev/null
  if [[ $added_policy == 1 ]]; then rm -f /usr/sbin/policy-rc.d; fi
  # Whatever the package did anyway: its service neither enabled nor running. (Only for an install
  # made here: a Prometheus service that was already on the machine is not ours to stop.)
  if command -v systemctl >/dev/null 2>&1; then
    systemctl disable --now prometheus.service >/dev/null 2>&1 || true
  fi
  if [[ -x /etc/init.d/prometheus ]]; then
    /etc/init.d/prometheus stop >/dev/null 2>&1 || true
  fi
fi
prometheus --version 2>&1 | sed -n 1p >&2

# ---- Python packages the fixtures import ------------------------------------------------------------
if ! "$PYTHON" -c 'import cryptography, requests, kubernetes, yaml, boto3, pytest, prometheus_client' 2>/dev/null; then
  log "installing Python packages into $("$PYTHON" -c 'import sys; print(sys.prefix)')"
  "$PYTHON" -m pip install -q cryptography requests kubernetes pyyaml boto3 pytest prometheus-client
fi

# ---- Go-built binaries (cached in ~/.cache/proctor) ---------------------------------------------------
"$here/cluster/build.sh" all
"$here/cluster/build.sh" status >&2
log "test environment ready: python -m pytest tests/integration/test_cluster_env.py"

#!/usr/bin/env bash
# Judging and scoring (issue 5): what the judge tests, the judge test double and
# benchmarks/judge_throughput.py need on a clean Debian 12 machine, as root. Idempotent: a warm run
# only checks and prints versions.
#
#   - Python packages (from PyPI, into $PYTHON's environment; default: the repo's .venv if present,
#     else python3): openai and tokenizers (the judge extra), aiohttp (the judge test double),
#     Pillow (images), scipy (statistics cross-checks in tests only), playwright (the Python
#     package only, to open report.html in Chromium; never `playwright install`).
#   - Debian's Chromium (/usr/bin/chromium), which the report test opens report.html with.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
if [[ -z "${PYTHON:-}" ]]; then
  if [[ -x "$here/.venv/bin/python" ]]; then PYTHON="$here/.venv/bin/python"; else PYTHON=python3; fi
fi
log() { printf '[setup judge %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# ---- Python packages -----------------------------------------------------------------------------
if ! "$PYTHON" -c 'import openai, tokenizers, aiohttp, PIL, scipy, playwright, numpy' 2>/dev/null; then
  log "installing the judge's Python packages into $("$PYTHON" -c 'import sys; print(sys.prefix)')"
  "$PYTHON" -m pip install --quiet --disable-pip-version-check \
    'openai>=1.40' 'tokenizers>=0.19' 'aiohttp>=3.9' 'pillow>=10' 'numpy>=1.26' 'scipy>=1.11' 'playwright>=1.44'
fi
"$PYTHON" -c 'import openai, tokenizers, aiohttp, PIL; print("openai", openai.__version__, "| tokenizers",
tokenizers.__version__, "| aiohttp", aiohttp.__version__, "| pillow", PIL.__version__)' >&2

# ---- Chromium from Debian (report.html is checked in a real browser) -----------------------------
if [[ ! -x /usr/bin/chromium ]]; then
  log "installing Debian's chromium"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -q --no-install-recommends chromium fonts-dejavu-core >/dev/null
fi
/usr/bin/chromium --version >&2 || { log "chromium is installed but does not run"; exit 1; }

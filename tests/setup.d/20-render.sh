#!/usr/bin/env bash
# Rendering (issue 4): what the render farm, the Vision2Code renderers, their tests and
# benchmarks/render_throughput.py need on a clean Debian 12 machine, as root. Idempotent: a warm run
# only checks and prints versions.
#
#   - Debian packages: chromium and chromium-headless-shell (the old headless shell, for the virtual
#     render clock; both used through Playwright's executable_path; `playwright install` is
#     never run), fonts (Latin, CJK and colour emoji, so answers in Chinese and with emoji render as
#     they would for a user), a minimal TeX Live with latexmk, and poppler-utils (pdftoppm) for the
#     LaTeX renderer, util-linux (unshare: Chromium runs in an empty network namespace), and npm
#     when no npm client is installed yet.
#   - Python packages (from PyPI, into $PYTHON's environment; default: the repo's .venv if present,
#     else python3): the `render` and `vision2code` extras (playwright, matplotlib).
#   - The library cache (front-end libraries from the npm registry, `proctor cache build`), cached
#     under ~/.cache/proctor/libcache-<version>/ and rebuilt only when its version changes.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
if [[ -z "${PYTHON:-}" ]]; then
  if [[ -x "$here/.venv/bin/python" ]]; then PYTHON="$here/.venv/bin/python"; else PYTHON=python3; fi
fi
log() { printf '[setup render %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# ---- Debian packages ---------------------------------------------------------------------------------
packages=(chromium chromium-headless-shell fonts-liberation fonts-dejavu-core fonts-noto-cjk fonts-noto-color-emoji
          texlive-latex-base texlive-latex-recommended texlive-fonts-recommended latexmk poppler-utils
          util-linux)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
# The npm client fetches the library cache's packages; any npm will do (Debian's brings Node.js).
command -v npm >/dev/null 2>&1 || missing+=(npm)
if ((${#missing[@]})); then
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi
/usr/bin/chromium --version >&2 || { log "chromium is installed but does not run"; exit 1; }
/usr/bin/chromium-headless-shell --version >&2 || { log "chromium-headless-shell does not run"; exit 1; }
# `sed -n` reads its whole input: `head` would exit early and, under pipefail, the writer's SIGPIPE
# (exit 141) would fail the set-up.
pdflatex --version | sed -n 1p >&2
latexmk -v | sed -n 2p >&2
pdftoppm -v 2>&1 | sed -n 1p >&2

# ---- Python packages -------------------------------------------------------------------------------
if ! "$PYTHON" -c 'import playwright, matplotlib, PIL, numpy' 2>/dev/null; then
  log "installing the render and vision2code extras into $("$PYTHON" -c 'import sys; print(sys.prefix)')"
  "$PYTHON" -m pip install --quiet --disable-pip-version-check 'playwright>=1.44' 'matplotlib>=3.8' \
    'pillow>=10' 'numpy>=1.26'
fi
"$PYTHON" -c 'import matplotlib, playwright; from importlib.metadata import version
print("playwright", version("playwright"), "| matplotlib", matplotlib.__version__)' >&2

# ---- The library cache (npm registry -> ~/.cache/proctor/libcache-<version>/) ------------------------
# Its version is a hash of the library table (jobs/proctor_jobs/render/libraries.py): an unchanged
# table finds its cache and does nothing; a changed one builds a new directory next to the old.
if ! "$PYTHON" -c "import sys; sys.path.insert(0, '$here/jobs')
from proctor_jobs.render.libcache import cache_status
sys.exit(0 if cache_status().get('current') else 1)"; then
  log "building the library cache from the npm registry (a minute or two)"
  (cd "$here" && PYTHONPATH="$here/jobs:$here/operator" "$PYTHON" -m proctor cache build)
fi
(cd "$here" && PYTHONPATH="$here/jobs:$here/operator" "$PYTHON" -m proctor cache status | sed -n 1,2p) >&2

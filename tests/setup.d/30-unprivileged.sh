#!/usr/bin/env bash
# The unprivileged tier (issue 11): the hostile suite also runs as an ordinary user (nobody), where the
# sandbox can only use a user namespace. That user cannot read root's Python (pyenv under /root), so
# this makes a virtualenv from Debian's python3 with Proctor's core dependencies (not Proctor itself:
# the test puts a copy of the source on PYTHONPATH) in a folder any user can read, keyed by the
# dependency list. Idempotent: a warm run only checks.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
log() { printf '[setup unprivileged %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
start=$SECONDS

if [[ ! -x /usr/bin/python3 ]] || ! /usr/bin/python3 -c 'import venv, ensurepip' 2>/dev/null; then
  log "installing Debian's python3 and python3-venv"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -q --no-install-recommends python3 python3-venv >/dev/null
fi
command -v setpriv >/dev/null || { log "setpriv (util-linux) is required"; exit 1; }

deps="pydantic>=2.7,<3 pyyaml>=6 boto3>=1.34 rich>=13 numpy>=1.26 pillow>=10 pylint>=3.2"
key="$(printf '%s %s' "$deps" "$(/usr/bin/python3 -V)" | sha256sum | cut -c1-12)"
root="/var/lib/proctor-tests/unprivileged-$key"
if [[ ! -f "$root/.complete" ]]; then
  log "making $root (Debian python3 + core dependencies)"
  rm -rf "$root" && mkdir -p "$(dirname "$root")"
  /usr/bin/python3 -m venv "$root"
  # shellcheck disable=SC2086
  "$root/bin/pip" install --quiet --disable-pip-version-check $deps
  chmod -R a+rX "$root"
  touch "$root/.complete"
fi
ln -sfn "$root" /var/lib/proctor-tests/unprivileged
setpriv --reuid=65534 --regid=65534 --clear-groups /var/lib/proctor-tests/unprivileged/bin/python -c \
  'import numpy, pylint, yaml, pydantic; import os; print("unprivileged python ok as uid", os.getuid())' >&2
log "unprivileged environment ready in $((SECONDS - start)) s"

#!/usr/bin/env bash
# vLLM contract tests (issue 17): the real `vllm` package from PyPI, one tests-only virtualenv per
# version under ~/.cache/proctor/vllm-<version>/, in which tests/integration/test_vllm_contract.py runs
# vLLM's own `vllm serve` argument parser and its OpenAI protocol models (tests/doubles/vllm_probe.py).
# Idempotent: a version whose stamp file is there is only checked.
#
# The lightest install that imports vLLM's CLI and protocol models on a machine without a GPU:
#   - `vllm` itself without dependencies, then its own requirements (read from the installed metadata)
#     except the GPU stack: torch, torchvision, torchaudio, xformers, flashinfer, the nvidia-* wheels,
#     GPU kernel packages, ray and a few engine-only packages. PyPI's torch for x86_64 is the CUDA
#     build (~0.9 GB wheel plus ~3 GB of nvidia-* libraries, and it does not import without them), so
#     the probe puts a stand-in torch on the import path (tests/doubles/torch_stub.py) instead: the
#     argument parser and the pydantic request models are vLLM's own code, unchanged.
#   - vLLM's compiled extensions (vllm/*.so, ~1.2 GB for 0.11.0) are left out when its wheel is
#     unpacked: they link against CUDA torch and could never load here.
#   - The other requirements resolve as PyPI had them shortly after that vLLM release
#     (pip --uploaded-prior-to), so the pydantic, fastapi and transformers versions are the ones that
#     release shipped with, not today's.
# Needs python3 (>= 3.10) with venv. Prints each version's cold cost (time, disk) when it installs.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cache="${PROCTOR_CACHE:-$HOME/.cache/proctor}"
log() { printf '[setup vllm %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# <version> <dependencies as PyPI had them before this UTC date>: keep in step with VERSIONS in
# tests/integration/test_vllm_contract.py (the oldest is the previous default image's vLLM, the newest
# is DEFAULT_VLLM_IMAGE's).
versions=(
  "0.11.0 2025-10-05"
  "0.34.0 2026-11-19"
)
# Requirements of vllm that are left out (GPU stack and engine-only packages the CLI parser and the
# protocol models do not import).
skip="torch,torchvision,torchaudio,torchcodec,xformers,flashinfer-python,ray,xgrammar,compressed-tensors"
skip+=",numba,opencv-python-headless,scipy,pynvvideocodec,tilelang,quack-kernels,tokenspeed-mla"
skip+=",humming-kernels,apache-tvm-ffi,fastsafetensors,instanttensor,nvtx,ninja,outlines-core"
skip+=",lm-format-enforcer,depyf,gguf"
# A changed recipe reinstalls: bump recipe_revision when the install steps below change.
recipe_revision=1
recipe="r$recipe_revision-$(printf '%s' "$skip" | sha256sum | cut -c1-12)"

pip_quiet=(--quiet --disable-pip-version-check --no-input)
for entry in "${versions[@]}"; do
  read -r version before <<<"$entry"
  dir="$cache/vllm-$version"
  stamp="$dir/.complete-$recipe"
  if [[ ! -f "$stamp" ]]; then
    start=$SECONDS
    log "installing vllm $version (CPU-only import, no torch) into $dir"
    rm -rf "$dir"
    python3 -m venv "$dir"
    py="$dir/bin/python"
    # pip >= 26 for --uploaded-prior-to.
    "$py" -m pip install "${pip_quiet[@]}" --upgrade 'pip>=26'
    # vllm itself: its wheel from PyPI (through pip, so pip's cache serves it next time), unpacked
    # without the compiled extensions (*.so: CUDA kernels linked against CUDA torch, ~1.2 GB for 0.11.0,
    # that could never load here; skipping them saves most of the time and disk). Python code, data
    # files and the .dist-info (version, requirements) are the wheel's own.
    "$py" -m pip download "${pip_quiet[@]}" --no-deps --only-binary=:all: "vllm==$version" -d "$dir/wheel"
    "$py" - "$dir"/wheel/vllm-*.whl <<'EOF'
import sys
import sysconfig
import zipfile

with zipfile.ZipFile(sys.argv[1]) as wheel:
    names = [name for name in wheel.namelist() if not name.endswith(".so")]
    wheel.extractall(sysconfig.get_paths()["purelib"], names)
EOF
    rm -rf "$dir/wheel"
    "$py" - "$skip" >"$dir/requirements.txt" <<'EOF'
import sys
from importlib.metadata import requires

from pip._vendor.packaging.requirements import Requirement

skip = set(sys.argv[1].split(","))
for line in requires("vllm"):
    req = Requirement(line)
    if req.marker is not None and not req.marker.evaluate({"extra": ""}):
        continue
    name = req.name.lower().replace("_", "-")
    if name not in skip and not name.startswith("nvidia-"):
        req.marker = None
        print(req)
EOF
    # pip then lists every left-out requirement as a conflict ("... which is not installed"): expected.
    "$py" -m pip install "${pip_quiet[@]}" --uploaded-prior-to "${before}T00:00:00Z" -r "$dir/requirements.txt" \
      2> >(grep -v -e 'which is not installed' -e "dependency resolver does not currently" >&2)
    if "$py" -c 'import importlib.util, sys; sys.exit(importlib.util.find_spec("torch") is None)'; then
      log "a requirement of vllm $version pulled in torch: add it to skip in ${BASH_SOURCE[0]}"
      exit 1
    fi
    "$py" "$here/tests/doubles/vllm_probe.py" version >/dev/null || {
      log "vllm $version does not import with the stand-in torch (see the traceback above)"; exit 1; }
    touch "$stamp"
    log "vllm $version: cold install $((SECONDS - start)) s, $(du -sh "$dir" | cut -f1) on disk"
  fi
  # Warm: the installed version only (the full import was checked when it was installed).
  printf 'vllm %s (%s)\n' "$("$dir/bin/python" -c 'from importlib.metadata import version; print(version("vllm"))')" \
    "$dir" >&2
done

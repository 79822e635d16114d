#!/usr/bin/env bash
# Container images (issue 12): build images/operator and images/worker from their real Dockerfiles and
# the judge image on a labelled stand-in, with podman, on a clean Debian 12 machine, as root, without
# any container registry. Idempotent: a warm run only checks and prints what it found.
#
#   - Debian packages: podman, buildah, runc, debootstrap (installed when missing), zstd.
#   - /etc/containers/containers.conf.d/50-proctor.conf: runtime = runc (crun fails on this hybrid
#     cgroup VM) and default ulimits podman can set without CAP_SYS_RESOURCE. A drop-in, so the
#     host's own containers.conf is left alone.
#   - The stand-in base for python:3.11-slim-bookworm (no registry to pull it from):
#     `debootstrap --variant=minbase bookworm` -> `podman import` -> Debian's python3 + venv + the
#     host's CA bundle (registries behind an intercepting proxy must still verify). Cached as a
#     compressed archive under ~/.cache/proctor/base-bookworm-<PROCTOR_BASE_VERSION>/ (versions.env);
#     bump the version to rebuild it.
#   - localhost/proctor-operator and localhost/proctor-worker, tagged <project version>-<content hash>
#     (hash of the Dockerfile, the files the build context holds and the base version) and
#     <project version>. An image whose content tag exists is not rebuilt. (No build-time --label: it
#     would change every layer's cache key, and a code change would rebuild the Debian layer too.)
#   - localhost/proctor-judge on a stand-in for vllm/vllm-openai (labelled
#     org.proctor.stand-in=true; its `vllm` prints its arguments), so the judge Dockerfile is built and
#     its entrypoint and arguments can be checked (tests/integration/test_images.py).
#
# PROCTOR_IMAGES=0 skips this script (a machine without podman needs nothing from it but the image tests).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cache="${PROCTOR_CACHE:-$HOME/.cache/proctor}"
log() { printf '[setup images %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
fail() { log "FAILED: $*"; exit 1; }
if [[ "${PROCTOR_IMAGES:-1}" == 0 ]]; then log "PROCTOR_IMAGES=0: skipped"; exit 0; fi

versions="$here/tests/cluster/versions.env"
base_version="${PROCTOR_BASE_VERSION:-$(sed -n 's/^PROCTOR_BASE_VERSION=//p' "$versions")}"
[[ -n "$base_version" ]] || fail "PROCTOR_BASE_VERSION is missing from $versions"
project_version="$(sed -n 's/^version = "\(.*\)"$/\1/p' "$here/pyproject.toml" | head -n1)"
[[ -n "$project_version" ]] || fail "no version in pyproject.toml"
vllm_tag="$(sed -n 's/^FROM vllm\/vllm-openai:\(.*\)$/\1/p' "$here/images/judge/Dockerfile")"
[[ -n "$vllm_tag" ]] || fail "images/judge/Dockerfile does not start FROM vllm/vllm-openai:<tag>"

# ---- Debian packages --------------------------------------------------------------------------------
# apt_ensure PACKAGE...: install the packages that are missing, and say how long it took.
apt_ensure() {
  local package missing=() t=$SECONDS
  for package in "$@"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
  done
  ((${#missing[@]})) || return 0
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
  log "packages installed in $((SECONDS - t)) s"
}
apt_ensure podman buildah runc debootstrap zstd
printf '%s | %s | %s\n' "$(podman --version)" "$(buildah --version | cut -d' ' -f1-3)" \
  "$(runc --version | sed -n 1p)" >&2

# ---- containers.conf drop-in ------------------------------------------------------------------------
conf=/etc/containers/containers.conf.d/50-proctor.conf
wanted='# Written by proctor tests/setup.d/40-images.sh (issue 12).
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]

[engine]
runtime = "runc"'
if [[ "$(cat "$conf" 2>/dev/null)" != "$wanted" ]]; then
  log "writing $conf"
  mkdir -p "$(dirname "$conf")"
  printf '%s\n' "$wanted" >"$conf"
fi
[[ "$(podman info --format '{{.Host.OCIRuntime.Name}}')" == runc ]] || fail "podman does not use runc (see $conf)"

# ---- The stand-in base ------------------------------------------------------------------------------
base="localhost/proctor-base:bookworm-$base_version"
base_dir="$cache/base-bookworm-$base_version"
archive="$base_dir/proctor-base.tar.zst"
if podman image exists "$base"; then
  :
elif [[ -f "$archive" ]]; then
  t=$SECONDS
  log "loading the stand-in base from $archive"
  zstd -dc "$archive" | podman load -q >/dev/null || fail "podman load of $archive"
  podman image exists "$base" || fail "$archive does not hold $base"
  log "stand-in base loaded in $((SECONDS - t)) s"
else
  t=$SECONDS
  work="$(mktemp -d "${TMPDIR:-/tmp}/proctor-base.XXXXXX")"
  trap 'rm -rf "$work"' EXIT
  log "debootstrap --variant=minbase bookworm (about a minute)"
  debootstrap --variant=minbase bookworm "$work/rootfs" http://deb.debian.org/debian >"$work/debootstrap.log" 2>&1 \
    || { tail -n 20 "$work/debootstrap.log" >&2; fail "debootstrap"; }
  rm -rf "$work/rootfs/var/cache/apt/archives/"*.deb "$work/rootfs/var/lib/apt/lists/"*
  log "debootstrap done in $((SECONDS - t)) s"
  t1=$SECONDS
  tar -C "$work/rootfs" --numeric-owner -c . | podman import -q - "localhost/proctor-debootstrap:bookworm-$base_version" >/dev/null
  rm -rf "$work/rootfs"
  log "podman import done in $((SECONDS - t1)) s"
  t1=$SECONDS
  cp /etc/ssl/certs/ca-certificates.crt "$work/host-ca.crt"
  # What python:3.11-slim-bookworm gives the Dockerfiles: `python` on PATH (3.11), venv with pip,
  # C.UTF-8; plus the host's CA bundle, for builds that reach PyPI/npm through an intercepting proxy.
  cat >"$work/Containerfile" <<EOF
FROM localhost/proctor-debootstrap:bookworm-$base_version
LABEL org.proctor.stand-in="python:3.11-slim-bookworm" \\
      org.proctor.base-version="$base_version" \\
      org.opencontainers.image.description="Proctor test stand-in for python:3.11-slim-bookworm: debootstrap minbase + Debian python3"
RUN apt-get update \\
    && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates \\
    && rm -rf /var/lib/apt/lists/* \\
    && ln -s /usr/bin/python3 /usr/local/bin/python
COPY host-ca.crt /usr/local/share/ca-certificates/proctor-host-bundle.crt
RUN cp /usr/local/share/ca-certificates/proctor-host-bundle.crt /etc/ssl/certs/ca-certificates.crt
ENV LANG=C.UTF-8 \\
    PIP_CERT=/etc/ssl/certs/ca-certificates.crt \\
    REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt \\
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \\
    NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt
CMD ["python3"]
EOF
  podman build -q --pull=never --network host -t "$base" -f "$work/Containerfile" "$work" >/dev/null \
    || fail "building the stand-in base"
  podman rmi -f "localhost/proctor-debootstrap:bookworm-$base_version" >/dev/null
  log "python3 layer done in $((SECONDS - t1)) s"
  t1=$SECONDS
  mkdir -p "$base_dir"
  podman save -q "$base" | zstd -q -T0 -6 -o "$archive.tmp" && mv "$archive.tmp" "$archive"
  log "cached $archive ($(du -h "$archive" | cut -f1)) in $((SECONDS - t1)) s"
  log "stand-in base built in $((SECONDS - t)) s"
fi
podman run --rm --network none "$base" python -c 'import sys, venv; print("stand-in base: python", sys.version.split()[0])' >&2 \
  || fail "the stand-in base does not run"

# ---- Operator and worker images ---------------------------------------------------------------------
# The content hash: the Dockerfile, every file the build context holds (.dockerignore: pyproject.toml,
# README.md, images/requirements.py, operator/, jobs/ without caches) and the base version.
context_hash() {
  local dockerfile="$1"
  (
    cd "$here"
    {
      printf 'base %s\n' "$base_version"
      sha256sum "$dockerfile"
      find pyproject.toml README.md images/requirements.py operator jobs -type f \
        -not -path '*/__pycache__/*' -not -name '*.pyc' -not -path '*.egg-info/*' -print0 \
        | LC_ALL=C sort -z | xargs -0 sha256sum
    } | sha256sum | cut -c1-12
  )
}

build_image() {
  local name="$1" dockerfile="images/$1/Dockerfile" image="localhost/proctor-$1" hash t
  hash="$(context_hash "$dockerfile")"
  if podman image exists "$image:$project_version-$hash"; then
    log "$image:$project_version-$hash is up to date"
  else
    t=$SECONDS
    log "building $image:$project_version-$hash from $dockerfile"
    (cd "$here" && podman build --pull=never --network host --layers \
        --build-arg "PYTHON_IMAGE=$base" \
        -f "$dockerfile" -t "$image:$project_version-$hash" . >"$cache/images-$name.build.log" 2>&1) \
      || { tail -n 30 "$cache/images-$name.build.log" >&2; fail "building $image (log: $cache/images-$name.build.log)"; }
    log "$image built in $((SECONDS - t)) s"
  fi
  # Superseded builds of this image go (untagged, their layers stay as build cache for a while).
  podman images --format '{{.Repository}}:{{.Tag}}' "$image" \
    | grep -E "^$image:$project_version-[0-9a-f]{12}$" | grep -v -x "$image:$project_version-$hash" \
    | xargs -r podman rmi >/dev/null || true
  podman tag "$image:$project_version-$hash" "$image:$project_version"
  printf '%s:%s %s\n' "$image" "$project_version-$hash" \
    "$(podman image inspect --format '{{.Size}}' "$image:$project_version" | awk '{printf "%.0f MB", $1/1e6}')" >&2
}

mkdir -p "$cache"
build_image operator
build_image worker

# ---- The real node's prerequisites (tests/cluster/realnode.py) ------------------------------------------
# Debian's containerd and CNI plugins, and the kubelet + pause built from the control plane's module.
apt_ensure containerd containernetworking-plugins iptables iproute2
t=$SECONDS
kubelet_dir="$cache/kubelet-${PROCTOR_K8S_VERSION:-$(sed -n 's/^PROCTOR_K8S_VERSION=//p' "$versions")}"
if [[ ! -f "$kubelet_dir/.complete" ]]; then
  "$here/tests/cluster/build.sh" kubelet || fail "building the kubelet (tests/cluster/build.sh kubelet)"
  log "kubelet built in $((SECONDS - t)) s"
fi
printf '%s | %s\n' "$(containerd --version | cut -d' ' -f1,3)" "$("$kubelet_dir/kubelet" --version)" >&2

# ---- The judge image on a stand-in for vLLM's --------------------------------------------------------
# vllm/vllm-openai cannot be pulled here. The stand-in keeps its entrypoint (`vllm serve`) and puts a
# `vllm` on PATH that prints its arguments as JSON, so the tests can check what the operator's
# Deployment would run. Local storage answers the Dockerfile's short name with --pull=never.
vllm_standin="localhost/vllm/vllm-openai:$vllm_tag"
if ! podman image exists "$vllm_standin" \
   || [[ "$(podman image inspect --format '{{index .Labels "org.proctor.base-version"}}' "$vllm_standin")" != "$base_version" ]]; then
  t=$SECONDS
  work_judge="$(mktemp -d "${TMPDIR:-/tmp}/proctor-vllm.XXXXXX")"
  cat >"$work_judge/vllm" <<'EOF'
#!/usr/bin/env python3
# Proctor's stand-in for vLLM's CLI: prints how it was called (argv and the environment it cares about).
import json, os, sys
print(json.dumps({"argv": sys.argv[1:], "env": {k: v for k, v in os.environ.items()
                                               if k.startswith(("VLLM_", "DO_NOT_TRACK", "HF_"))}}))
EOF
  cat >"$work_judge/Containerfile" <<EOF
FROM $base
LABEL org.proctor.stand-in="vllm/vllm-openai:$vllm_tag" \\
      org.proctor.base-version="$base_version"
COPY vllm /usr/local/bin/vllm
RUN chmod 0755 /usr/local/bin/vllm
ENTRYPOINT ["vllm", "serve"]
EOF
  podman build -q --pull=never --network none -t "$vllm_standin" -f "$work_judge/Containerfile" "$work_judge" >/dev/null \
    || fail "building the vLLM stand-in"
  rm -rf "$work_judge"
  log "vLLM stand-in built in $((SECONDS - t)) s"
fi
judge_hash="$(cd "$here" && { printf 'base %s\n' "$base_version"; sha256sum images/judge/Dockerfile; } | sha256sum | cut -c1-12)"
if ! podman image exists "localhost/proctor-judge:$project_version-$judge_hash"; then
  t=$SECONDS
  mkdir -p "$cache/judge-context"
  podman build -q --pull=never --network none --label "org.proctor.stand-in=vllm/vllm-openai:$vllm_tag" \
    -f "$here/images/judge/Dockerfile" -t "localhost/proctor-judge:$project_version-$judge_hash" \
    "$cache/judge-context" >/dev/null || fail "building images/judge/Dockerfile on the vLLM stand-in"
  log "localhost/proctor-judge built in $((SECONDS - t)) s"
fi
podman tag "localhost/proctor-judge:$project_version-$judge_hash" "localhost/proctor-judge:$project_version"
printf 'localhost/proctor-judge:%s (on a stand-in for vllm/vllm-openai:%s)\n' "$project_version-$judge_hash" "$vllm_tag" >&2
# Build cache older than three days (dangling layers of superseded builds) is dropped.
podman image prune -f --filter until=72h >/dev/null

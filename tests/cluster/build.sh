#!/usr/bin/env bash
# Build the test environment's Go binaries from their modules on the Go module proxy and cache them
# under ~/.cache/proctor/<name>-<version>/. Nothing is downloaded from outside the registries (this
# machine reaches the Go module proxy but not GitHub releases or dl.k8s.io), so building is the only way in.
#
#   tests/cluster/build.sh [k8s|kubelet|etcd|minio|kwok|helm|all|status]     (kubelet: not in `all`)
#
# A component is rebuilt only when its cache directory lacks the `.complete` stamp; a finished build
# writes the stamp last, so an interrupted build is redone rather than trusted. Each build appends its
# wall-clock time and output size to $CACHE/build-times.log (the figures quoted in README.md).
# Builds run one after another: on 2 cores, two concurrent Go builds are slower than two in a row.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# Versions live in one file shared with binaries.py; an exported variable of the same name wins.
while IFS='=' read -r key value; do
  [[ -z "$key" || "$key" == \#* ]] && continue
  [[ -n "${!key:-}" ]] || export "$key=$value"
done <"$here/versions.env"
K8S_VERSION="$PROCTOR_K8S_VERSION"
ETCD_VERSION="$PROCTOR_ETCD_VERSION"
KWOK_VERSION="$PROCTOR_KWOK_VERSION"
HELM_VERSION="$PROCTOR_HELM_VERSION"
MINIO_VERSION="$PROCTOR_MINIO_VERSION"

CACHE="${PROCTOR_CACHE:-$HOME/.cache/proctor}"
export GOFLAGS="-mod=mod -buildvcs=false"
export CGO_ENABLED=0
export GOTOOLCHAIN=local

log() { printf '[build %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

command -v go >/dev/null || { echo "build.sh: 'go' is not on PATH; install Go >= 1.25 first" >&2; exit 1; }

# record NAME VERSION SECONDS DIR: append one line to the build-time log.
record() {
  printf '%s\t%s %s\t%ss\t%s\t%s\n' "$(date -u +%FT%TZ)" "$1" "$2" "$3" "$(du -sh "$4" | cut -f1)" \
    "$(go env GOVERSION)" >>"$CACHE/build-times.log"
}

# wrapper_module DIR MODULE VERSION: an empty module that requires MODULE@VERSION.
wrapper_module() {
  local dir="$1" module="$2" version="$3"
  rm -rf "$dir" && mkdir -p "$dir"
  cat >"$dir/go.mod" <<MOD
module proctor.local/build
go $(go env GOVERSION | sed 's/^go//')
MOD
  (cd "$dir" && go mod edit -require="$module@$version")
}

# k8s_module DIR: a wrapper module for k8s.io/kubernetes@$K8S_VERSION; sets $ldflags (version stamps).
k8s_module() {
  local dir="$1"
  wrapper_module "$dir" k8s.io/kubernetes "$K8S_VERSION"
  # k8s.io/kubernetes points its staging modules at ./staging/src/...; the module zip does not carry
  # them, so pin each to its published v0.x.y twin of the same release.
  local modfile staging minor
  modfile="$(cd "$dir" && go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')"
  staging="v0.${K8S_VERSION#v1.}"
  while read -r mod; do
    (cd "$dir" && go mod edit -replace="$mod=$mod@$staging")
  done < <(grep -E '^\s*k8s\.io/[a-z0-9-]+ => \./staging' "$modfile" | awk '{print $1}')
  minor="$(echo "$K8S_VERSION" | cut -d. -f2)"
  ldflags="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
}

# k8s_build NAME WHAT PACKAGE...: build PACKAGEs of k8s.io/kubernetes@$K8S_VERSION into
# $CACHE/NAME-$K8S_VERSION/; a function `NAME_extra OUT`, when defined, adds to it before the stamp.
k8s_build() {
  local name="$1" what="$2"; shift 2
  local out="$CACHE/$name-$K8S_VERSION"
  [[ -f "$out/.complete" ]] && { log "$name $K8S_VERSION cached in $out"; return; }
  log "building $what $K8S_VERSION"
  local start=$SECONDS dir="$CACHE/src/$name-$K8S_VERSION" ldflags
  k8s_module "$dir"
  mkdir -p "$out"
  (cd "$dir" && go build -trimpath -ldflags "$ldflags" -o "$out/" "$@")
  if declare -F "${name}_extra" >/dev/null; then "${name}_extra" "$out"; fi
  touch "$out/.complete"
  record "$name" "$K8S_VERSION" "$((SECONDS - start))" "$out"
  log "$name built in $((SECONDS - start)) s: $(du -sh "$out" | cut -f1)"
}

build_k8s() {
  k8s_build k8s "Kubernetes (kube-apiserver, kube-controller-manager, kube-scheduler, kubectl)" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl
}

# The real node's kubelet (tests/cluster/realnode.py), from the same module version as the control plane,
# and the static pause binary its pod sandboxes run. Not part of `all`: only the real node needs it.
kubelet_extra() { (cd "$here" && GOFLAGS=-buildvcs=false go build -trimpath -ldflags "-s -w" -o "$1/pause" pause.go); }
build_kubelet() { k8s_build kubelet "the kubelet and pause" k8s.io/kubernetes/cmd/kubelet; }

# go_install NAME VERSION MODULE BINARY=PACKAGE...: build packages of MODULE@VERSION into the cache.
go_install() {
  local name="$1" version="$2" module="$3"; shift 3
  local out="$CACHE/$name-$version"
  [[ -f "$out/.complete" ]] && { log "$name $version cached in $out"; return; }
  log "building $name $version"
  local start=$SECONDS dir="$CACHE/src/$name-$version"
  wrapper_module "$dir" "$module" "$version"
  mkdir -p "$out"
  local spec
  for spec in "$@"; do
    (cd "$dir" && go build -trimpath -ldflags "-s -w" -o "$out/${spec%%=*}" "${spec#*=}")
  done
  touch "$out/.complete"
  record "$name" "$version" "$((SECONDS - start))" "$out"
  log "$name built in $((SECONDS - start)) s: $(du -sh "$out" | cut -f1)"
}

build_etcd() { go_install etcd "$ETCD_VERSION" go.etcd.io/etcd/server/v3 etcd=go.etcd.io/etcd/server/v3; }
build_kwok() { go_install kwok "$KWOK_VERSION" sigs.k8s.io/kwok kwok=sigs.k8s.io/kwok/cmd/kwok; }
build_helm() { go_install helm "$HELM_VERSION" helm.sh/helm/v3 helm=helm.sh/helm/v3/cmd/helm; }
build_minio() { go_install minio "$MINIO_VERSION" github.com/minio/minio minio=github.com/minio/minio; }

status() {
  local name version
  for pair in "k8s $K8S_VERSION" "etcd $ETCD_VERSION" "minio $MINIO_VERSION" "helm $HELM_VERSION" \
              "kwok $KWOK_VERSION" "kubelet $K8S_VERSION"; do
    read -r name version <<<"$pair"
    if [[ -f "$CACHE/$name-$version/.complete" ]]; then
      printf '%-6s %-40s built   %s\n' "$name" "$version" "$(du -sh "$CACHE/$name-$version" | cut -f1)"
    else
      printf '%-6s %-40s MISSING (tests/cluster/build.sh %s)\n' "$name" "$version" "$name"
    fi
  done
}

mkdir -p "$CACHE"
what="${1:-all}"
case "$what" in
  k8s) build_k8s ;; kubelet) build_kubelet ;; etcd) build_etcd ;; kwok) build_kwok ;; helm) build_helm ;; minio) build_minio ;;
  all) build_etcd; build_k8s; build_minio; build_helm; build_kwok ;;
  status) status ;;
  *) echo "usage: $0 [k8s|kubelet|etcd|minio|kwok|helm|all|status]" >&2; exit 2 ;;
esac

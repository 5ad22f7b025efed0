#!/usr/bin/env bash
# Builds the kube-apiserver and etcd binaries that envtest starts, from their Go
# modules (no prebuilt downloads are reachable here), and caches them outside the
# clone so a fresh checkout (CI) reuses them. Prints the folder that holds them.
#
#   hack/envtest-bins.sh            build if missing, print the folder
#
# Versions are pinned here; bump them together with k8s.io/* in go.mod.
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-1.37.2}"
ETCD_VERSION="${ETCD_VERSION:-3.6.16}"
CACHE="${JWTGATE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/jwtgate}"
OUT="$CACHE/envtest/k8s-${K8S_VERSION}-etcd-${ETCD_VERSION}"

if [[ -x "$OUT/kube-apiserver" && -x "$OUT/etcd" ]]; then
  echo "$OUT"
  exit 0
fi

mkdir -p "$OUT"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

log() { echo "envtest-bins: $*" >&2; }

if [[ ! -x "$OUT/kube-apiserver" ]]; then
  log "building kube-apiserver v${K8S_VERSION} (several minutes the first time)"
  mkdir -p "$work/apiserver"
  (
    cd "$work/apiserver"
    go mod init envtest.local/apiserver >/dev/null 2>&1
    go mod edit -require="k8s.io/kubernetes@v${K8S_VERSION}"
    # k8s.io/kubernetes replaces its staging modules with local paths; point each at
    # the published module of the matching version instead.
    modfile=$(GOFLAGS=-mod=mod go mod download -json "k8s.io/kubernetes@v${K8S_VERSION}" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
    staging_ver="v0${K8S_VERSION#1}"
    grep -oE 'k8s\.io/[a-z0-9-]+ => \./staging/src/k8s\.io/[a-z0-9-]+' "$modfile" | awk '{print $1}' | sort -u |
      while read -r m; do go mod edit -replace="$m=$m@$staging_ver"; done
    echo 'package main; import _ "k8s.io/kubernetes/cmd/kube-apiserver"' > tools.go
    GOFLAGS=-mod=mod go mod tidy >/dev/null 2>&1 || true
    GOFLAGS=-mod=mod CGO_ENABLED=0 go build -trimpath -o "$OUT/kube-apiserver.tmp" k8s.io/kubernetes/cmd/kube-apiserver
    mv "$OUT/kube-apiserver.tmp" "$OUT/kube-apiserver"
  )
fi

if [[ ! -x "$OUT/etcd" ]]; then
  log "building etcd v${ETCD_VERSION}"
  mkdir -p "$work/etcd"
  (
    cd "$work/etcd"
    go mod init envtest.local/etcd >/dev/null 2>&1
    echo 'package main; import _ "go.etcd.io/etcd/server/v3"' > tools.go
    GOFLAGS=-mod=mod go get "go.etcd.io/etcd/server/v3@v${ETCD_VERSION}" >/dev/null 2>&1
    GOFLAGS=-mod=mod CGO_ENABLED=0 go build -trimpath -o "$OUT/etcd.tmp" go.etcd.io/etcd/server/v3
    mv "$OUT/etcd.tmp" "$OUT/etcd"
  )
fi

echo "$OUT"

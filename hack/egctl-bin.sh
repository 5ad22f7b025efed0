#!/usr/bin/env bash
# Builds egctl, Envoy Gateway's command line, from its Go module (no prebuilt
# downloads are reachable here), and caches it outside the clone so a fresh
# checkout (CI) reuses it. Prints the binary's path. `make egctl-translate`
# uses its `experimental translate` to render the xDS that Envoy Gateway makes
# from docs/proxies/envoy-gateway.md.
#
#   hack/egctl-bin.sh            build if missing, print the path
set -euo pipefail

EG_VERSION="${EG_VERSION:-1.9.1}"
CACHE="${JWTGATE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/jwtgate}"
OUT="$CACHE/egctl/v${EG_VERSION}"
BIN="$OUT/egctl"

if [[ -x "$BIN" ]]; then
  echo "$BIN"
  exit 0
fi

log() { echo "egctl-bin: $*" >&2; }

mkdir -p "$OUT"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
start=$(date +%s)
log "building egctl of Envoy Gateway v${EG_VERSION} (minutes the first time)"
go mod init egctl.local/build >/dev/null 2>&1
go mod edit -require="github.com/envoyproxy/gateway@v${EG_VERSION}"
echo 'package main; import _ "github.com/envoyproxy/gateway/cmd/egctl"' > tools.go
GOFLAGS=-mod=mod go mod tidy >/dev/null 2>&1 || true
GOFLAGS=-mod=mod CGO_ENABLED=0 go build -trimpath -o "$BIN.tmp" github.com/envoyproxy/gateway/cmd/egctl
mv "$BIN.tmp" "$BIN"
log "built in $(( $(date +%s) - start ))s: $BIN"
echo "$BIN"

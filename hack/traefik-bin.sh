#!/usr/bin/env bash
# Builds the Traefik binary that the Traefik walk (test/traefik) starts, from its Go
# module (no prebuilt downloads are reachable here), and caches it outside the clone
# so a fresh checkout (CI) reuses it. Prints the binary's path.
#
#   hack/traefik-bin.sh            build if missing (about 7 min on 2 cores), print the path
#
# v3.6.12 is the newest Traefik that builds from the Go module proxy here (v3.7 does
# not). Traefik's own go.mod carries three `replace` lines and one `exclude` that a
# module requiring it does not inherit: they are copied from that go.mod, not retyped.
set -euo pipefail

TRAEFIK_VERSION="${TRAEFIK_VERSION:-3.6.12}"
CACHE="${JWTGATE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/jwtgate}"
OUT="$CACHE/traefik/v${TRAEFIK_VERSION}"
BIN="$OUT/traefik"

if [[ -x "$BIN" ]]; then
  echo "$BIN"
  exit 0
fi

log() { echo "traefik-bin: $*" >&2; }

mkdir -p "$OUT"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

log "building traefik v${TRAEFIK_VERSION} (about 7 minutes on 2 cores the first time)"
go mod init traefik.local/build >/dev/null 2>&1
modfile=$(GOFLAGS=-mod=mod go mod download -json "github.com/traefik/traefik/v3@v${TRAEFIK_VERSION}" |
  sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
if [[ ! -f "$modfile" ]]; then
  log "go mod download gave no go.mod for github.com/traefik/traefik/v3@v${TRAEFIK_VERSION}"
  exit 1
fi

# The replace block: lines "old => new version" between "replace (" and ")".
awk '/^replace \(/{on=1; next} on && /^\)/{on=0} on && /=>/{print $1"="$3"@"$4}' "$modfile" |
  while read -r r; do go mod edit -replace="$r"; done
awk '/^replace [^(]/ && /=>/{print $2"="$4"@"$5}' "$modfile" |
  while read -r r; do go mod edit -replace="$r"; done
awk '/^exclude [^(]/{print $2"@"$3}' "$modfile" |
  while read -r e; do go mod edit -exclude="$e"; done
awk '/^exclude \(/{on=1; next} on && /^\)/{on=0} on && NF==2{print $1"@"$2}' "$modfile" |
  while read -r e; do go mod edit -exclude="$e"; done

go mod edit -require="github.com/traefik/traefik/v3@v${TRAEFIK_VERSION}"
echo 'package main; import _ "github.com/traefik/traefik/v3/cmd/traefik"' > tools.go
GOFLAGS=-mod=mod go mod tidy >/dev/null 2>&1 || true
GOFLAGS=-mod=mod CGO_ENABLED=0 go build -trimpath -o "$BIN.tmp" github.com/traefik/traefik/v3/cmd/traefik
mv "$BIN.tmp" "$BIN"
log "built $BIN"
echo "$BIN"

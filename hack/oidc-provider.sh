#!/usr/bin/env bash
# Builds the OpenID provider the OIDC tests sign in with (Ory Hydra), from the Go
# module proxy, and caches it outside the clone so a fresh checkout (CI) reuses it.
# Prints the path of the hydra binary.
#
#   hack/oidc-provider.sh            build if missing, print the binary's path
#
# Hydra does not build as a dependency of a scratch module (its go.mod replaces
# gobuffalo/pop/v6 with ory/pop/v6 and Go ignores a dependency's replaces), so it
# is built inside a copy of its own module source, once the replace of
# hydra-client-go (which points at a folder the published module lacks) is
# dropped. cgo and the sqlite tags are what `DSN=memory` needs.
set -euo pipefail

HYDRA_VERSION="${HYDRA_VERSION:-2.3.0}"
CACHE="${JWTGATE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/jwtgate}"
OUT="$CACHE/oidc-provider/hydra-${HYDRA_VERSION}"
BIN="$OUT/hydra"

if [[ -x "$BIN" ]]; then
  echo "$BIN"
  exit 0
fi

log() { echo "oidc-provider: $*" >&2; }

command -v gcc >/dev/null || { log "gcc is missing (Hydra's sqlite driver needs cgo): apt-get install gcc"; exit 1; }

mkdir -p "$OUT"
work=$(mktemp -d)
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT

start=$(date +%s)
log "building Ory Hydra v${HYDRA_VERSION} (about 3 minutes on 2 cores the first time)"
dir=$(cd "$work" && GOFLAGS=-mod=mod go mod download -json "github.com/ory/hydra/v2@v${HYDRA_VERSION}" |
  sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
[[ -n "$dir" && -d "$dir" ]] || { log "go mod download did not name the module folder"; exit 1; }
cp -r "$dir" "$work/hydra"
chmod -R u+w "$work/hydra"
(
  cd "$work/hydra"
  # The replace points at ./internal/httpclient, which the published module lacks;
  # the required version of hydra-client-go comes from the proxy instead.
  go mod edit -dropreplace=github.com/ory/hydra-client-go/v2
  GOFLAGS=-mod=mod CGO_ENABLED=1 go build -trimpath -tags sqlite,sqlite_omit_load_extension \
    -ldflags "-X github.com/ory/hydra/v2/driver/config.Version=v${HYDRA_VERSION}" \
    -o "$BIN.tmp" .
)
mv "$BIN.tmp" "$BIN"
log "built in $(( $(date +%s) - start ))s: $BIN"
echo "$BIN"

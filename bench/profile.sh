#!/usr/bin/env bash
# bench/profile.sh: CPU profiles of jwtgate and the do-nothing server side by
# side, under the same wrk load as bench/run.sh's scenario a, plus the server
# CPU each spends per request. See bench/README.md ("Where the time goes").
#
#   bench/profile.sh                         # noop, jwtgate (fasthttp), jwtgate --http-server net/http
#   DURATION=10s TOP=40 bench/profile.sh
#   KEEP=1 bench/profile.sh                  # keep the profiles: go tool pprof -http : DIR/cpu.jwtgate.pb
#
# Everything listens on 127.0.0.1; wrk and every profile are bounded by DURATION.
set -euo pipefail

DURATION=${DURATION:-6s}
CONNECTIONS=${CONNECTIONS:-32}
TOP=${TOP:-25}
KEEP=${KEEP:-0}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
die() { echo "profile: $*" >&2; exit 1; }
for tool in go wrk openssl curl; do command -v "$tool" >/dev/null || die "$tool is missing (hack/install-deps.sh installs wrk)"; done
secs=${DURATION%s}
[[ $secs =~ ^[1-9][0-9]*$ ]] || die "DURATION must be whole seconds, like 6s"

work=$(mktemp -d "${TMPDIR:-/tmp}/jwtgate-profile.XXXXXX")
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  if [[ $KEEP == 1 ]]; then echo "profile: kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

pin_load=() pin_srv=()
if (($(nproc) >= 2)) && command -v taskset >/dev/null; then pin_load=(taskset -c 0) pin_srv=(taskset -c 1); fi

go build -trimpath -o "$work/jwtgate" ./cmd/jwtgate
go build -trimpath -o "$work/noop" ./bench/cmd/noop
go build -trimpath -o "$work/mint" ./bench/cmd/mint
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$work/rs256.key" 2>/dev/null
openssl pkey -in "$work/rs256.key" -pubout -out "$work/rs256.pub"
token=$("$work/mint" -key "$work/rs256.key" -claims '{"sub":"alice","iss":"bench-issuer","aud":"bench","roles":["user"]}')
mkdir -p "$work/pol"
{
  printf -- '---\napiVersion: v1\nkind: Secret\nmetadata: {name: bench-keys, namespace: bench}\nstringData:\n  rs256.pem: |\n'
  sed 's/^/    /' "$work/rs256.pub"
  cat <<'EOF'
---
apiVersion: jwtgate.dev/v1alpha1
kind: AuthPolicy
metadata: {name: rs256, namespace: bench}
spec:
  hosts: ["rs256.bench.test"]
  jwt:
    algorithms: [RS256]
    keys: [{secretRef: {name: bench-keys, key: rs256.pem}}]
    issuer: bench-issuer
    audiences: [bench]
  rolesClaim: roles
  rules:
    - {path: /public/, public: true}
    - {path: /admin/, roles: [admin]}
  forwardClaims:
    - {claim: sub, header: X-Auth-User}
EOF
} >"$work/pol/policies.yaml"

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
declare -A URL PPROF PID
start_jwtgate() { # name server
  local p q; p=$(port); q=$(port)
  "${pin_srv[@]}" "$work/jwtgate" serve -f "$work/pol" --listen "127.0.0.1:$p" --http-server "$2" \
    --metrics-bind-address 0 --health-probe-bind-address 0 --log-level error \
    --state-dir "$work/state-$1" --pprof-bind-address "127.0.0.1:$q" >"$work/$1.log" 2>&1 &
  pids+=($!) PID[$1]=$! URL[$1]=http://127.0.0.1:$p/jwtgate/auth/bench/rs256 PPROF[$1]=http://127.0.0.1:$q
}
p=$(port) q=$(port)
"${pin_srv[@]}" "$work/noop" -listen "127.0.0.1:$p" -pprof "127.0.0.1:$q" >"$work/noop.log" 2>&1 &
pids+=($!) PID[noop]=$! URL[noop]=http://127.0.0.1:$p/jwtgate/auth/bench/rs256 PPROF[noop]=http://127.0.0.1:$q
start_jwtgate jwtgate fasthttp
start_jwtgate jwtgate-nethttp net/http
hdrs=(-H "X-Original-URL: http://app.bench.test/api/orders/7" -H "X-Original-Method: GET" -H "Authorization: Bearer $token")
for v in noop jwtgate jwtgate-nethttp; do
  for ((i = 0; i < 100; i++)); do
    [[ $(curl -s -o /dev/null -w '%{http_code}' "${hdrs[@]}" "${URL[$v]}" || true) == 200 ]] && break
    sleep 0.1
  done
  ((i < 100)) || die "$v does not answer 200: $(tail -n 3 "$work/$v.log")"
done

ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
clk=$(getconf CLK_TCK)
echo "profile: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load $(cut -d' ' -f1-3 /proc/loadavg)"
for v in noop jwtgate jwtgate-nethttp; do
  "${pin_load[@]}" wrk -t1 -c"$CONNECTIONS" -d2s "${hdrs[@]}" "${URL[$v]}" >/dev/null # warm-up
  curl -s -o "$work/cpu.$v.pb" "${PPROF[$v]}/debug/pprof/profile?seconds=$secs" &
  cpid=$!
  c0=$(ticks "${PID[$v]}")
  out=$("${pin_load[@]}" wrk -t1 -c"$CONNECTIONS" -d"$DURATION" "${hdrs[@]}" "${URL[$v]}")
  c1=$(ticks "${PID[$v]}")
  wait "$cpid"
  n=$(awk '/requests in/ { print $1 }' <<<"$out")
  awk -v v="$v" -v n="$n" -v c=$((c1 - c0)) -v clk="$clk" -v d="$secs" 'BEGIN {
    printf "profile: %-16s %8.0f req/s  %6.2f us of server CPU per request\n", v, n / d, c / clk * 1e6 / n }'
done
for v in noop jwtgate jwtgate-nethttp; do
  echo
  echo "=== $v: top $TOP by cumulative CPU"
  go tool pprof -top -cum -nodecount="$TOP" "$work/cpu.$v.pb" 2>/dev/null | sed -n '/flat%/,$p'
done

#!/usr/bin/env bash
# bench/run.sh: jwtgate's decision throughput beside its baselines, on loopback.
# See bench/README.md. Everything it starts listens on 127.0.0.1 only, every
# load run is bounded by DURATION, and everything it starts is stopped on exit.
#
#   DURATION=10s ROUNDS=3 CONNECTIONS=32 bench/run.sh
#   SCENARIOS="a b" bench/run.sh          # a subset (a, b, c, d, e, g)
#   COMPARE_OAUTH2_PROXY=1 bench/run.sh   # also oauth2-proxy v7.15.4 in a and b
#   JWTGATE=path/to/jwtgate bench/run.sh  # a prebuilt jwtgate instead of building ./cmd/jwtgate
#   JWTGATE_BASELINE=path/to/old/jwtgate bench/run.sh  # also that build in a and b, interleaved
set -euo pipefail

DURATION=${DURATION:-10s}
ROUNDS=${ROUNDS:-3}
CONNECTIONS=${CONNECTIONS:-32}
WARMUP=${WARMUP:-2s}
SCENARIOS=${SCENARIOS:-a b c d e g}
TOKENS=${TOKENS:-4096}           # pre-minted unique tokens per algorithm, scenario c
MANY_POLICIES=${MANY_POLICIES:-10000}
COMPARE_OAUTH2_PROXY=${COMPARE_OAUTH2_PROXY:-0}
OAUTH2_PROXY_VERSION=${OAUTH2_PROXY_VERSION:-v7.15.4}
PIN=${PIN:-auto}                 # auto: pin when nproc >= 2; 0: never
KEEP=${KEEP:-0}                  # 1: keep the work dir (configs, logs, raw results)
JWTGATE=${JWTGATE:-}
JWTGATE_BASELINE=${JWTGATE_BASELINE:-}

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

die() { echo "bench: $*" >&2; exit 1; }
for tool in go wrk nginx openssl curl; do
  command -v "$tool" >/dev/null || die "$tool is missing (hack/install-deps.sh installs nginx and wrk)"
done
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "ROUNDS must be a positive integer"

work=$(mktemp -d "${TMPDIR:-/tmp}/jwtgate-bench.XXXXXX")
chmod 755 "$work" # nginx workers may run as another user when started by root
pids=()
declare -A names
cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  if [[ $KEEP == 1 ]]; then echo "bench: work dir kept: $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- pinning: wrk and nginx on CPU 0, the servers under test on CPU 1 -------------
ncpu=$(nproc)
pin_load=() pin_srv=() wrk_threads=2
if [[ $PIN != 0 ]] && ((ncpu >= 2)) && command -v taskset >/dev/null; then
  pin_load=(taskset -c 0) pin_srv=(taskset -c 1) wrk_threads=1
fi

# --- build -----------------------------------------------------------------------
echo "bench: building into $work/bin" >&2
mkdir -p "$work/bin"
if [[ -n $JWTGATE ]]; then cp "$JWTGATE" "$work/bin/jwtgate"; else go build -trimpath -o "$work/bin/jwtgate" ./cmd/jwtgate; fi
[[ -z $JWTGATE_BASELINE ]] || cp "$JWTGATE_BASELINE" "$work/bin/jwtgate-base"
for c in noop fastnoop floorverify mint grpcnoop grpcload; do go build -trimpath -o "$work/bin/$c" "./bench/cmd/$c"; done
B=$work/bin
# oauth2-proxy (optional): built once into the cache, in a scratch module, never
# inside this repository.
o2token=""
if [[ $COMPARE_OAUTH2_PROXY == 1 ]]; then
  o2dir=${XDG_CACHE_HOME:-$HOME/.cache}/jwtgate/oauth2-proxy-$OAUTH2_PROXY_VERSION
  if [[ ! -x $o2dir/bin/oauth2-proxy ]]; then
    echo "bench: building oauth2-proxy $OAUTH2_PROXY_VERSION in $o2dir (once)" >&2
    rm -rf "$o2dir/mod"; mkdir -p "$o2dir/mod"
    (cd "$o2dir/mod" && go mod init x >/dev/null 2>&1 &&
      go get -tool "github.com/oauth2-proxy/oauth2-proxy/v7@$OAUTH2_PROXY_VERSION" &&
      GOBIN=$o2dir/bin go install tool) >&2 || die "building oauth2-proxy failed"
  fi
fi


# --- keys, tokens, policies ------------------------------------------------------
k=$work/keys
mkdir -p "$k"
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$k/rs256.key" 2>/dev/null
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$k/es256.key" 2>/dev/null
openssl genpkey -algorithm ED25519 -out "$k/eddsa.key" 2>/dev/null
for a in rs256 es256 eddsa; do openssl pkey -in "$k/$a.key" -pubout -out "$k/$a.pub"; done

claims='{"sub":"alice","iss":"bench-issuer","aud":"bench","roles":["user"]}'
token=$("$B/mint" -key "$k/rs256.key" -claims "$claims")
if [[ " $SCENARIOS " == *" c "* ]]; then
  echo "bench: minting $TOKENS unique tokens for each of RS256, ES256, EdDSA" >&2
  for a in rs256 es256 eddsa; do "$B/mint" -key "$k/$a.key" -n "$TOKENS" -claims "$claims" >"$k/$a.tokens"; done
fi

# secret NAMESPACE: the Secret holding the three public keys.
secret() {
  printf -- '---\napiVersion: v1\nkind: Secret\nmetadata: {name: bench-keys, namespace: %s}\nstringData:\n' "$1"
  local a
  for a in rs256 es256 eddsa; do
    printf '  %s.pem: |\n' "$a"
    sed 's/^/    /' "$k/$a.pub"
  done
}
# policies NAME... with ALG and KEY set: AuthPolicies shaped like examples/policy.yaml.
policy_doc() { # name alg keyfile
  cat <<EOF
---
apiVersion: jwtgate.dev/v1alpha1
kind: AuthPolicy
metadata: {name: $1, namespace: bench}
spec:
  hosts: ["$1.bench.test"]
  jwt:
    algorithms: [$2]
    keys:
      - secretRef: {name: bench-keys, key: $3}
    issuer: bench-issuer
    audiences: [bench]
  rolesClaim: roles
  rules:
    - path: /public/
      public: true
    - path: /admin/
      roles: [admin]
    - path: /api/orders
      methods: [POST]
      claims:
        - {name: scope, contains: "orders:write"}
  forwardClaims:
    - {claim: sub, header: X-Auth-User}
EOF
}
mkdir -p "$work/pol-main"
{
  secret bench
  policy_doc rs256 RS256 rs256.pem
  policy_doc es256 ES256 es256.pem
  policy_doc eddsa EdDSA eddsa.pem
} >"$work/pol-main/policies.yaml"
# pol-N: N RS256 policies p0..pN-1 (awk writes 10,000 in a blink).
gen_policies() {
  mkdir -p "$work/pol-$1"
  { secret bench; policy_doc @N@ RS256 rs256.pem | awk -v n="$1" '{ doc[NR] = $0 } END {
      for (i = 0; i < n; i++) for (j = 1; j <= NR; j++) { l = doc[j]; gsub(/@N@/, "p" i, l); print l } }'
  } >"$work/pol-$1/policies.yaml"
}

# --- processes -------------------------------------------------------------------
used_ports=" "
free_port() {
  local p i
  for ((i = 0; i < 100; i++)); do
    p=$((20000 + RANDOM % 40000))
    [[ $used_ports == *" $p "* ]] && continue
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then used_ports+="$p "; echo "$p"; return; fi
  done
  die "no free port found"
}
# start NAME CMD...: runs CMD in the background; its pid lands in PID_<NAME>.
start() {
  local name=$1; shift
  "$@" >"$work/$name.log" 2>&1 &
  pids+=($!)
  names[$!]=$name
  printf -v "PID_$name" %s "$!"
}
# wait_status URL WANT [CURL ARGS...]: until URL answers WANT, at most 180 s.
wait_status() {
  local url=$1 want=$2; shift 2
  local deadline=$((SECONDS + 180)) got p
  while ((SECONDS < deadline)); do
    for p in "${pids[@]}"; do
      kill -0 "$p" 2>/dev/null || die "${names[$p]} exited: $(tail -n 5 "$work/${names[$p]}.log")"
    done
    got=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$@" "$url" || true)
    [[ $got == "$want" ]] && return 0
    sleep 0.2
  done
  die "$url answered $got, not $want, within 180 s (logs in $work; KEEP=1 keeps them)"
}
jwtgate_serve() { # name policydir [extra flags]
  local name=$1 dir=$2; shift 2
  local port bin=$B/jwtgate; port=$(free_port)
  [[ $name == jgbase ]] && bin=$B/jwtgate-base
  printf -v "PORT_$name" %s "$port"
  start "$name" "${pin_srv[@]}" "$bin" serve -f "$dir" --listen "127.0.0.1:$port" \
    --metrics-bind-address 0 --health-probe-bind-address 0 --log-level warn \
    --state-dir "$work/state-$name" "$@"
}
direct_hdrs=(-H "X-Original-URL: http://app.bench.test/api/orders/7" -H "X-Original-Method: GET")
# What Traefik and Caddy send the forward-auth door for the same request.
forward_hdrs=(-H "X-Forwarded-Method: GET" -H "X-Forwarded-Proto: https" -H "X-Forwarded-Host: app.bench.test" -H "X-Forwarded-Uri: /api/orders/7")
rss_mib() { awk '/^VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }

# --- load ------------------------------------------------------------------------
results=$work/results.tsv
: >"$results"
clk=$(getconf CLK_TCK)
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }

# Variants: URL_<v>, SRV_<v> (the server whose CPU is reported), ENV_<v> (for the
# Lua script), ARGS_<v> (extra wrk arguments, headers).
declare -A URL SRV ENVS HDR
variant() { URL[$1]=$2; SRV[$1]=$3; ENVS[$1]=$4; HDR[$1]=${5:-}; }

wrk_once() { # variant duration -> "rps p99_us non2xx errors cpu%"
  local v=$1 d=$2 pid=${SRV[$1]} c0 c1 t0 t1 out line
  local -a hdrs=()
  case ${HDR[$v]} in
    direct) hdrs=("${direct_hdrs[@]}" -H "Authorization: Bearer $token") ;;
    directnotoken) hdrs=("${direct_hdrs[@]}") ;;
    bearer) hdrs=(-H "Authorization: Bearer $token") ;;
    forward) hdrs=("${forward_hdrs[@]}" -H "Authorization: Bearer $token") ;;
    oauth2) hdrs=(-H "Authorization: Bearer $o2token") ;;
  esac
  c0=$(cpu_ticks "$pid"); t0=$(date +%s%N)
  if [[ ${URL[$v]} == grpc://* ]]; then
    # Envoy ext_authz over gRPC: bench/cmd/grpcload in place of wrk, same BENCH line.
    out=$("${pin_load[@]}" "$B/grpcload" -addr "${URL[$v]#grpc://}" -duration "$d" -concurrency "$CONNECTIONS" \
      -token "$token" -policy bench/rs256 2>&1) || die "grpcload failed for $v: $out"
  else
    out=$(env ${ENVS[$v]} "${pin_load[@]}" wrk -t"$wrk_threads" -c"$CONNECTIONS" -d"$d" --timeout 5s \
      -s "$root/bench/wrk.lua" "${hdrs[@]}" "${URL[$v]}" 2>&1) || die "wrk failed for $v: $out"
  fi
  c1=$(cpu_ticks "$pid"); t1=$(date +%s%N)
  line=$(grep '^BENCH ' <<<"$out") || die "wrk printed no result for $v: $out"
  awk -v l="$line" -v dc=$((c1 - c0)) -v dt=$((t1 - t0)) -v clk="$clk" 'BEGIN {
    n = split(l, f, " "); for (i = 2; i <= n; i++) { split(f[i], kv, "="); r[kv[1]] = kv[2] }
    printf "%s %s %s %s %.0f\n", r["rps"], r["p99_us"], r["non2xx"], r["errors"], 100 * dc / clk / (dt / 1e9) }'
}

# measure SCENARIO VARIANT...: a warm-up of each, then ROUNDS interleaved rounds.
measure() {
  local s=$1 v r res; shift
  for v in "$@"; do wrk_once "$v" "$WARMUP" >/dev/null; done
  for ((r = 1; r <= ROUNDS; r++)); do
    for v in "$@"; do
      res=$(wrk_once "$v" "$DURATION")
      echo "$s $v $r $res" >>"$results"
      printf 'bench: %-2s %-22s round %d: %s req/s  p99 %s us  non-2xx %s  errors %s  server cpu %s%%\n' "$s" "$v" "$r" $res >&2
    done
  done
}

# --- servers ---------------------------------------------------------------------
want() { [[ " $SCENARIOS " == *" $1 "* ]]; }
port_noop=$(free_port)
start noop "${pin_srv[@]}" "$B/noop" -listen "127.0.0.1:$port_noop"
grpc_flags=()
if want g; then port_jg_grpc=$(free_port); grpc_flags=(--grpc-bind-address "127.0.0.1:$port_jg_grpc"); fi
jwtgate_serve jg "$work/pol-main" "${grpc_flags[@]}"
wait_status "http://127.0.0.1:$port_noop/" 200
wait_status "http://127.0.0.1:$PORT_jg/jwtgate/auth/bench/rs256" 200 "${direct_hdrs[@]}" -H "Authorization: Bearer $token"
wait_status "http://127.0.0.1:$PORT_jg/jwtgate/auth/bench/rs256" 401 "${direct_hdrs[@]}"

# The same jwtgate on Go's net/http (--http-server net/http), and fasthttp's
# own do-nothing server, side by side with the default.
jwtgate_serve jgn "$work/pol-main" --http-server net/http
port_fastnoop=$(free_port)
start fastnoop "${pin_srv[@]}" "$B/fastnoop" -listen "127.0.0.1:$port_fastnoop"
wait_status "http://127.0.0.1:$PORT_jgn/jwtgate/auth/bench/rs256" 200 "${direct_hdrs[@]}" -H "Authorization: Bearer $token"
wait_status "http://127.0.0.1:$port_fastnoop/" 200

variant noop "http://127.0.0.1:$port_noop/jwtgate/auth/bench/rs256" "$PID_noop" "" direct
variant jwtgate "http://127.0.0.1:$PORT_jg/jwtgate/auth/bench/rs256" "$PID_jg" "" direct
variant jwtgate-nethttp "http://127.0.0.1:$PORT_jgn/jwtgate/auth/bench/rs256" "$PID_jgn" "" direct
variant noop-fasthttp "http://127.0.0.1:$port_fastnoop/jwtgate/auth/bench/rs256" "$PID_fastnoop" "" direct
extra_a=(jwtgate-nethttp noop-fasthttp) extra_b=(nginx+jwtgate-nethttp)
if [[ -n $JWTGATE_BASELINE ]]; then
  jwtgate_serve jgbase "$work/pol-main"
  wait_status "http://127.0.0.1:$PORT_jgbase/jwtgate/auth/bench/rs256" 200 "${direct_hdrs[@]}" -H "Authorization: Bearer $token"
  variant jwtgate-base "http://127.0.0.1:$PORT_jgbase/jwtgate/auth/bench/rs256" "$PID_jgbase" "" direct
  extra_a+=(jwtgate-base)
fi

# nginx: one master and one worker (pinned with wrk), a server block per auth upstream.
ngx=$work/nginx
mkdir -p "$ngx/static"
port_ngx_jg=$(free_port) port_ngx_jgn=$(free_port) port_ngx_noop=$(free_port) port_ngx_o2=$(free_port) port_static=$(free_port) port_ngx_base=$(free_port)
auth_server() { # listen-port upstream auth-path
  cat <<EOF
  server {
    listen 127.0.0.1:$1;
    location / {
      auth_request /_auth;
      empty_gif;
    }
    location = /_auth {
      internal;
      proxy_pass http://$2$3;
      proxy_pass_request_body off;
      proxy_set_header Content-Length "";
      proxy_set_header X-Original-URL \$scheme://\$http_host\$request_uri;
      proxy_set_header X-Original-Method \$request_method;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
EOF
}
upstream() { # name port
  printf '  upstream %s {\n    server 127.0.0.1:%s;\n    keepalive 64;\n    keepalive_requests 1000000;\n  }\n' "$1" "$2"
}
port_o2=$(free_port)
{
  cat <<EOF
worker_processes 1;
daemon off;
pid $ngx/nginx.pid;
error_log $ngx/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  client_body_temp_path $ngx/client_body;
  proxy_temp_path $ngx/proxy;
  fastcgi_temp_path $ngx/fastcgi;
  uwsgi_temp_path $ngx/uwsgi;
  scgi_temp_path $ngx/scgi;
EOF
  upstream jwtgate "$PORT_jg"
  upstream jwtgatenet "$PORT_jgn"
  upstream noop "$port_noop"
  upstream oauth2 "$port_o2"
  if [[ -n $JWTGATE_BASELINE ]]; then
    upstream jwtgatebase "$PORT_jgbase"
    auth_server "$port_ngx_base" jwtgatebase /jwtgate/auth/bench/rs256
  fi
  auth_server "$port_ngx_jg" jwtgate /jwtgate/auth/bench/rs256
  auth_server "$port_ngx_jgn" jwtgatenet /jwtgate/auth/bench/rs256
  auth_server "$port_ngx_noop" noop /jwtgate/auth/bench/rs256
  auth_server "$port_ngx_o2" oauth2 /oauth2/auth
  printf '  server {\n    listen 127.0.0.1:%s;\n    root %s;\n    default_type application/json;\n  }\n}\n' "$port_static" "$ngx/static"
} >"$ngx/nginx.conf"
if want b || [[ $COMPARE_OAUTH2_PROXY == 1 ]]; then
  nginx -t -p "$ngx" -c "$ngx/nginx.conf" >"$ngx/test.log" 2>&1 || die "nginx -t: $(cat "$ngx/test.log")"
  start nginx "${pin_load[@]}" nginx -p "$ngx" -c "$ngx/nginx.conf"
  wait_status "http://127.0.0.1:$port_ngx_noop/" 200 -H "Authorization: Bearer $token"
  wait_status "http://127.0.0.1:$port_ngx_jg/" 200 -H "Authorization: Bearer $token"
  wait_status "http://127.0.0.1:$port_ngx_jg/" 401
  variant nginx+noop "http://127.0.0.1:$port_ngx_noop/api/orders/7" "$PID_noop" "" bearer
  variant nginx+jwtgate "http://127.0.0.1:$port_ngx_jg/api/orders/7" "$PID_jg" "" bearer
  variant nginx+jwtgate-nethttp "http://127.0.0.1:$port_ngx_jgn/api/orders/7" "$PID_jgn" "" bearer
  if [[ -n $JWTGATE_BASELINE ]]; then
    variant nginx+jwtgate-base "http://127.0.0.1:$port_ngx_base/api/orders/7" "$PID_jgbase" "" bearer
    extra_b+=(nginx+jwtgate-base)
  fi
fi

if [[ $COMPARE_OAUTH2_PROXY == 1 ]]; then
  iss=http://127.0.0.1:$port_static
  "$B/mint" -key "$k/rs256.key" -jwks >"$ngx/static/jwks.json"
  o2token=$("$B/mint" -key "$k/rs256.key" -claims "{\"sub\":\"alice\",\"iss\":\"$iss\",\"aud\":\"bench\",\"email\":\"alice@bench.test\",\"email_verified\":true}")
  start oauth2 "${pin_srv[@]}" "$o2dir/bin/oauth2-proxy" --http-address "127.0.0.1:$port_o2" \
    --provider oidc --oidc-issuer-url "$iss" --skip-oidc-discovery \
    --login-url "$iss/login" --redeem-url "$iss/token" --oidc-jwks-url "$iss/jwks.json" \
    --client-id bench --client-secret bench --cookie-secret 0123456789abcdef0123456789abcdef \
    --cookie-secure=false --email-domain '*' --upstream static://200 --skip-jwt-bearer-tokens \
    --request-logging=false --auth-logging=false --standard-logging=false
  wait_status "http://127.0.0.1:$port_o2/oauth2/auth" 202 -H "Authorization: Bearer $o2token"
  variant oauth2-proxy "http://127.0.0.1:$port_o2/oauth2/auth" "$PID_oauth2" "" oauth2
  variant nginx+oauth2-proxy "http://127.0.0.1:$port_ngx_o2/api/orders/7" "$PID_oauth2" "" oauth2
  extra_a+=(oauth2-proxy) extra_b+=(nginx+oauth2-proxy)
fi

# wait_grpc ADDR: until one Check through grpcload is answered OK, at most 180 s.
wait_grpc() {
  local deadline=$((SECONDS + 180)) out=""
  while ((SECONDS < deadline)); do
    out=$("$B/grpcload" -addr "$1" -requests 1 -concurrency 1 -duration 5s -token "$token" -policy bench/rs256 2>&1 || true)
    [[ $out == *" non2xx=0 errors=0"* ]] && return 0
    sleep 0.2
  done
  die "the gRPC ext_authz server on $1 did not allow a Check within 180 s: $out"
}
if want g; then
  port_gnoop=$(free_port)
  start gnoop "${pin_srv[@]}" "$B/grpcnoop" -listen "127.0.0.1:$port_gnoop"
  wait_grpc "127.0.0.1:$port_gnoop"
  wait_grpc "127.0.0.1:$port_jg_grpc"
  variant grpc-noop "grpc://127.0.0.1:$port_gnoop" "$PID_gnoop" "" grpc
  variant grpc-jwtgate "grpc://127.0.0.1:$port_jg_grpc" "$PID_jg" "" grpc
fi

# --- scenarios -------------------------------------------------------------------
want a && measure a noop jwtgate "${extra_a[@]}"
want b && measure b nginx+noop nginx+jwtgate "${extra_b[@]}"
if want c; then
  # A cache of 64 tokens against thousands of unique ones, cycled: every request
  # verifies a signature and then pays the cache insert and eviction too.
  jwtgate_serve jgmiss "$work/pol-main" --token-cache-size 64
  port_floor=$(free_port)
  start floor "${pin_srv[@]}" "$B/floorverify" -listen "127.0.0.1:$port_floor" -key "$k/rs256.pub"
  wait_status "http://127.0.0.1:$PORT_jgmiss/jwtgate/auth/bench/rs256" 200 "${direct_hdrs[@]}" -H "Authorization: Bearer $token"
  wait_status "http://127.0.0.1:$port_floor/" 200 -H "Authorization: Bearer $token"
  variant floor-rs256 "http://127.0.0.1:$port_floor/jwtgate/auth/bench/rs256" "$PID_floor" "BENCH_TOKENS_FILE=$k/rs256.tokens" directnotoken
  for a in rs256 es256 eddsa; do
    variant "miss-$a" "http://127.0.0.1:$PORT_jgmiss/jwtgate/auth/bench/$a" "$PID_jgmiss" "BENCH_TOKENS_FILE=$k/$a.tokens" directnotoken
  done
  measure c floor-rs256 miss-rs256 miss-es256 miss-eddsa
fi
if want e; then
  # The other HTTP doors, in scenario a's shape: the same cached RS256 decision
  # through forward-auth (the four X-Forwarded-* headers) and Envoy's HTTP
  # ext_authz (the original path after the prefix), beside the do-nothing server.
  wait_status "http://127.0.0.1:$PORT_jg/jwtgate/forward-auth/bench/rs256" 200 "${forward_hdrs[@]}" -H "Authorization: Bearer $token"
  wait_status "http://127.0.0.1:$PORT_jg/jwtgate/forward-auth/bench/rs256" 401 "${forward_hdrs[@]}"
  wait_status "http://127.0.0.1:$PORT_jg/jwtgate/ext-authz/bench/rs256/api/orders/7" 200 -H "Authorization: Bearer $token"
  wait_status "http://127.0.0.1:$PORT_jg/jwtgate/ext-authz/bench/rs256/api/orders/7" 401
  variant noop-door "http://127.0.0.1:$port_noop/jwtgate/forward-auth/bench/rs256" "$PID_noop" "" forward
  variant forward-auth "http://127.0.0.1:$PORT_jg/jwtgate/forward-auth/bench/rs256" "$PID_jg" "" forward
  variant ext-authz-http "http://127.0.0.1:$PORT_jg/jwtgate/ext-authz/bench/rs256/api/orders/7" "$PID_jg" "" bearer
  measure e noop-door forward-auth ext-authz-http
fi
rss_many=""
if want d; then
  # The same cached RS256 decision, cycling over every policy of the set.
  dvars=()
  for n in 1 100 "$MANY_POLICIES"; do
    gen_policies "$n"
    jwtgate_serve "jgp$n" "$work/pol-$n"
    port_var=PORT_jgp$n pid_var=PID_jgp$n
    variant "policies=$n" "http://127.0.0.1:${!port_var}/" "${!pid_var}" "BENCH_POLICIES=$n" direct
    dvars+=("policies=$n")
  done
  for n in 1 100 "$MANY_POLICIES"; do
    port_var=PORT_jgp$n
    wait_status "http://127.0.0.1:${!port_var}/jwtgate/auth/bench/p$((n - 1))" 200 "${direct_hdrs[@]}" -H "Authorization: Bearer $token"
  done
  measure d "${dvars[@]}"
  for n in 1 100 "$MANY_POLICIES"; do
    pid_var=PID_jgp$n
    echo "rss policies=$n $(rss_mib "${!pid_var}")" >>"$results"
  done
fi
want g && measure g grpc-noop grpc-jwtgate
echo "rss main $(rss_mib "$PID_jg")" >>"$results"

# --- report ----------------------------------------------------------------------
report() {
  awk -v rounds="$ROUNDS" '
  function median(arr, n,   i, j, t, b) {
    for (i = 1; i <= n; i++) b[i] = arr[i]
    for (i = 2; i <= n; i++) { t = b[i]; for (j = i - 1; j >= 1 && b[j] > t; j--) b[j + 1] = b[j]; b[j + 1] = t }
    return n % 2 ? b[(n + 1) / 2] : (b[n / 2] + b[n / 2 + 1]) / 2
  }
  function lo(arr, n,   i, m) { m = arr[1]; for (i = 2; i <= n; i++) if (arr[i] < m) m = arr[i]; return m }
  function hi(arr, n,   i, m) { m = arr[1]; for (i = 2; i <= n; i++) if (arr[i] > m) m = arr[i]; return m }
  $1 == "rss" { rss[$2] = $3; next }
  {
    key = $1 SUBSEP $2
    if (!(key in seen)) { seen[key] = 1; order[++nv] = key; scen[nv] = $1; name[nv] = $2 }
    rps[key, $3] = $4; p99[key, $3] = $5; bad[key] += $6 + $7; cpu[key, $3] = $8
  }
  function stats(key,   r, a, b, c) {
    for (r = 1; r <= rounds; r++) { a[r] = rps[key, r]; b[r] = p99[key, r]; c[r] = cpu[key, r] }
    S_rps = median(a, rounds); S_lo = lo(a, rounds); S_hi = hi(a, rounds)
    S_p99 = median(b, rounds) / 1000; S_cpu = median(c, rounds)
  }
  # paired ratio: median over rounds of variant/baseline, with its range
  function ratio(key, base,   r, a) {
    for (r = 1; r <= rounds; r++) a[r] = rps[key, r] / rps[base, r]
    R_med = median(a, rounds); R_lo = lo(a, rounds); R_hi = hi(a, rounds)
  }
  END {
    base["a"] = "noop"; base["b"] = "nginx+noop"; base["c"] = "floor-rs256"; base["d"] = "policies=1"; base["e"] = "noop-door"; base["g"] = "grpc-noop"
    # the targets of issue 17, for jwtgate as it ships (the default --http-server)
    target["a", "jwtgate"] = 0.90; target["b", "nginx+jwtgate"] = 0.95
    target["c", "miss-rs256"] = 0.80; target["d", "policies=10000"] = 0.90
    target["e", "forward-auth"] = 0.90; target["e", "ext-authz-http"] = 0.90
    target["g", "grpc-jwtgate"] = 0.85
    printf "%-2s %-20s %10s %17s %9s %6s %17s %7s %s\n", "", "variant", "req/s", "(min-max)", "p99 ms", "cpu%", "ratio (range)", "target", "met"
    for (i = 1; i <= nv; i++) {
      key = order[i]; s = scen[i]; v = name[i]
      stats(key)
      rs = "-"; tg = ""; met = ""
      bkey = s SUBSEP base[s]
      if (v != base[s] && (bkey in seen)) {
        ratio(key, bkey); rs = sprintf("%.3f (%.2f-%.2f)", R_med, R_lo, R_hi)
        if ((s, v) in target) { tg = sprintf(">=%.2f", target[s, v]); met = R_med >= target[s, v] ? "yes" : "NO" }
        if (s == "d" && v != base[s]) { tg = "+-10%"; met = (R_med >= 0.9 && R_med <= 1.1) ? "yes" : "NO" }
      }
      if (s == "b" && v == "nginx+jwtgate" && (bkey in seen)) {
        # p99 within 0.3 ms of the p99 of nginx+noop (medians over the rounds)
        P = S_p99; stats(bkey); d = P - S_p99; stats(key)
        met = met sprintf(", p99 +%.2fms %s", d, d <= 0.3 ? "<=0.3 yes" : "<=0.3 NO")
      }
      if (bad[key] > 0) met = met " (" bad[key] " non-2xx/errors!)"
      printf "%-2s %-20s %10.0f %17s %9.2f %6.0f %17s %7s %s\n", s, v, S_rps, sprintf("(%.0f-%.0f)", S_lo, S_hi), S_p99, S_cpu, rs, tg, met
    }
    for (k in rss) if (k != "main") printf "RSS with %s: %s MiB%s\n", k, rss[k], (k == "policies=10000" ? (rss[k] < 100 ? " (target <100 MiB: yes)" : " (target <100 MiB: NO)") : "")
    if ("main" in rss) printf "RSS of the scenario-a/b jwtgate (3 policies): %s MiB\n", rss["main"]
  }' "$results"
}

{
  echo "jwtgate bench, $(date -u '+%Y-%m-%d %H:%M UTC'): DURATION=$DURATION ROUNDS=$ROUNDS CONNECTIONS=$CONNECTIONS wrk -t$wrk_threads"
  echo "machine: nproc=$ncpu, $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo), kernel $(uname -r), $(go version | awk '{ print $3 }'), $(nginx -v 2>&1 | sed 's/.*: //'), load average $(cut -d' ' -f1-3 /proc/loadavg)"
  if ((${#pin_srv[@]})); then echo "pinning: wrk and nginx on CPU 0, servers on CPU 1"; else echo "pinning: none"; fi
  echo "ratio = median over rounds of (variant / baseline of the same round); cpu% = the server under test (100 = one core)"
  echo
  report
} | tee "$work/report.txt"
mkdir -p "$root/bench/results"
stamp=$(date -u +%Y%m%dT%H%M%SZ)
cp "$work/report.txt" "$root/bench/results/$stamp.txt"
cp "$results" "$root/bench/results/$stamp.tsv"
echo "bench: report saved to bench/results/$stamp.txt" >&2

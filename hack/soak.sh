#!/usr/bin/env bash
# Soak test: DURATION (default 10m) of mixed load through nginx in front of two
# `jwtgate serve` processes while
#   - the verification keys rotate {K0} -> {K0,K1} -> {K1} -> {K1,K2} ... (the
#     valid-token clients switch to the new key between the two writes),
#   - the policy changes (a rule is renamed every POLICY_EVERY s; once per
#     rotation it is invalid for 2 s, and the last good version must serve),
#   - jwtgate #2 is stopped with SIGTERM and started again.
# It reports the non-2xx answers and socket errors seen by the valid-token
# clients (target 0), the answers of the mixed clients (no token, a bad token, a
# missing role: 401/403 expected), and the RSS of jwtgate #1, which is never
# restarted, sampled every 10 s (target: flat after warm-up).
#
# Loopback only and bounded: wrk with few connections and a per-connection
# delay (RATE_DELAY_MS), everything on 127.0.0.1, stopped at the end.
#
#   hack/soak.sh                      # make soak: 10 minutes
#   DURATION=2m hack/soak.sh          # shorter
#
# Knobs: DURATION, ROTATE_EVERY (s, 30), POLICY_EVERY (s, 20), RESTART_EVERY (s,
# 60), CONNECTIONS (valid-token clients, 8), RATE_DELAY_MS (2: at most ~500 req/s
# per connection), SOAK_OUT (default bin/soak-<time>), JWTGATE (binary).
# Needs nginx, wrk, openssl (hack/install-deps.sh nginx wrk openssl).
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10m}
ROTATE_EVERY=${ROTATE_EVERY:-30}
POLICY_EVERY=${POLICY_EVERY:-20}
RESTART_EVERY=${RESTART_EVERY:-60}
CONNECTIONS=${CONNECTIONS:-8}
RATE_DELAY_MS=${RATE_DELAY_MS:-2}
JWTGATE=${JWTGATE:-bin/jwtgate}
NGINX=${NGINX:-/usr/sbin/nginx}
OUT=${SOAK_OUT:-bin/soak-$(date -u +%Y%m%dT%H%M%SZ)}

seconds() { # 10m, 90s, 1h, 120 -> seconds
  case "$1" in
    *h) echo $(( ${1%h} * 3600 )) ;;
    *m) echo $(( ${1%m} * 60 )) ;;
    *s) echo "${1%s}" ;;
    *) echo "$1" ;;
  esac
}
TOTAL=$(seconds "$DURATION")

for tool in "$NGINX" wrk openssl; do
  command -v "$tool" >/dev/null 2>&1 || { echo "soak: $tool missing: hack/install-deps.sh nginx wrk openssl" >&2; exit 1; }
done
[ -x "$JWTGATE" ] || go build -trimpath -o "$JWTGATE" ./cmd/jwtgate

mkdir -p "$OUT/tmp" "$OUT/keys"
OUT=$(cd "$OUT" && pwd)
echo "soak: $DURATION, output in $OUT"

free_port() {
  local p
  while :; do
    p=$((20000 + RANDOM % 30000))
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
  done
}
P1=$(free_port); P2=$(free_port); H1=$(free_port); H2=$(free_port); FRONT=$(free_port)

pids=()
cleanup() {
  for p in "${pids[@]}" ${J2:-}; do kill "$p" 2>/dev/null || true; done
  [ -f "$OUT/nginx.pid" ] && kill "$(cat "$OUT/nginx.pid")" 2>/dev/null || true
  wait 2>/dev/null || true
}
trap cleanup EXIT

# ---- keys, tokens, files ----
newkey() { # newkey N: K<N>.pem (private) and K<N>.pub
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$OUT/keys/K$1.pem" 2>/dev/null
  openssl pkey -in "$OUT/keys/K$1.pem" -pubout -out "$OUT/keys/K$1.pub"
}
token() { "$JWTGATE" token --key "$OUT/keys/K$1.pem" --claims '{"sub":"soak","roles":["user"]}' --ttl 3h; }
atomic_write() { cat >"$1.tmp" && mv "$1.tmp" "$1"; }
write_keys() { # write_keys N [M]: the Secret holds K<N> (and K<M>)
  {
    printf 'apiVersion: v1\nkind: Secret\nmetadata: {name: soak-keys, namespace: default}\nstringData:\n  keys.pem: |\n'
    for n in "$@"; do sed 's/^/    /' "$OUT/keys/K$n.pub"; done
  } | atomic_write "$OUT/keys.yaml"
}
write_policy() { # write_policy N [invalid]
  local algs="[ES256]"
  [ "${2:-}" = invalid ] && algs="[none]"
  cat <<EOF | atomic_write "$OUT/policy.yaml"
apiVersion: jwtgate.dev/v1alpha1
kind: AuthPolicy
metadata: {name: shop, namespace: default}
spec:
  hosts: ["app.test"]
  jwt:
    algorithms: $algs
    keys:
      - secretRef: {name: soak-keys, key: keys.pem}
  rules:
    - path: /public/
      public: true
    - path: /admin/
      roles: [admin]
    - path: /change-$1/
      roles: [user]
  forwardClaims:
    - {claim: sub, header: X-Auth-User}
EOF
}

newkey 0
newkey bad # never in the set
write_keys 0
write_policy 0
token 0 | atomic_write "$OUT/valid.token"
BAD_TOKEN=$(token bad)

# ---- jwtgate x2, nginx ----
start_jwtgate() { # start_jwtgate NAME PORT PROBEPORT -> pid in $started
  "$JWTGATE" serve -f "$OUT/policy.yaml" -f "$OUT/keys.yaml" --listen "127.0.0.1:$2" \
    --health-probe-bind-address "127.0.0.1:$3" --metrics-bind-address 0 \
    --state-dir "$OUT/state-$1" --shutdown-delay 1s --shutdown-timeout 5s \
    --log-format text >>"$OUT/$1.log" 2>&1 &
  started=$!
  for _ in $(seq 100); do
    curl -fsS -o /dev/null "http://127.0.0.1:$3/readyz" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "soak: $1 did not become ready; see $OUT/$1.log" >&2
  return 1
}
start_jwtgate jwtgate1 "$P1" "$H1"; J1=$started; pids+=("$J1")
start_jwtgate jwtgate2 "$P2" "$H2"; J2=$started

user=""; [ "$(id -u)" = 0 ] && user="user root;"
cat >"$OUT/nginx.conf" <<EOF
$user
worker_processes 1;
pid $OUT/nginx.pid;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $OUT/tmp/client_body;
    proxy_temp_path $OUT/tmp/proxy;
    fastcgi_temp_path $OUT/tmp/fastcgi;
    uwsgi_temp_path $OUT/tmp/uwsgi;
    scgi_temp_path $OUT/tmp/scgi;
    upstream jwtgate {
        server 127.0.0.1:$P1;
        server 127.0.0.1:$P2;
        keepalive 32;
    }
    server {
        listen 127.0.0.1:$FRONT;
        location / {
            auth_request /_jwtgate_auth;
            empty_gif;
        }
        location = /_jwtgate_auth {
            internal;
            proxy_pass http://jwtgate/jwtgate/auth/default/shop;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header X-Original-URL \$scheme://\$http_host\$request_uri;
            proxy_set_header X-Original-Method \$request_method;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_connect_timeout 1s;
            proxy_next_upstream error timeout http_502 http_503;
        }
    }
}
EOF
"$NGINX" -p "$OUT/" -c "$OUT/nginx.conf" -e "$OUT/nginx-error.log" -t 2>/dev/null
"$NGINX" -p "$OUT/" -c "$OUT/nginx.conf" -e "$OUT/nginx-error.log"
for _ in $(seq 50); do [ -f "$OUT/nginx.pid" ] && break; sleep 0.1; done

# ---- load ----
cat >"$OUT/valid.lua" <<'EOF'
-- Valid tokens of the key in the set right now: re-read every second.
local tokfile = os.getenv("SOAK_TOKEN_FILE")
local delay_ms = tonumber(os.getenv("RATE_DELAY_MS") or "2")
local token, last, i = "", -1, 0
local paths = {"/", "/orders/1", "/api/v1/items?page=2", "/public/logo.png", "/change-0/x"}
request = function()
  local now = os.time()
  if now ~= last then
    local f = io.open(tokfile, "r")
    if f then local t = f:read("*l"); f:close(); if t and #t > 0 then token = t end end
    last = now
  end
  i = i + 1
  return wrk.format("GET", paths[i % #paths + 1], {["Host"] = "app.test", ["Authorization"] = "Bearer " .. token})
end
delay = function() return delay_ms end
EOF
cat >"$OUT/mixed.lua" <<'EOF'
-- Requests that must be refused: no token (401), a token of a key never in the
-- set (401), a valid token without the admin role on /admin/ (403).
local bad = os.getenv("SOAK_BAD_TOKEN")
local tokfile = os.getenv("SOAK_TOKEN_FILE")
local delay_ms = tonumber(os.getenv("RATE_DELAY_MS") or "2")
local token, last, i = "", -1, 0
request = function()
  local now = os.time()
  if now ~= last then
    local f = io.open(tokfile, "r")
    if f then local t = f:read("*l"); f:close(); if t and #t > 0 then token = t end end
    last = now
  end
  i = i + 1
  local k = i % 3
  if k == 0 then return wrk.format("GET", "/orders", {["Host"] = "app.test"}) end
  if k == 1 then return wrk.format("GET", "/orders", {["Host"] = "app.test", ["Authorization"] = "Bearer " .. bad}) end
  return wrk.format("GET", "/admin/users", {["Host"] = "app.test", ["Authorization"] = "Bearer " .. token})
end
delay = function() return delay_ms * 4 end
EOF
export SOAK_TOKEN_FILE="$OUT/valid.token" SOAK_BAD_TOKEN="$BAD_TOKEN" RATE_DELAY_MS
wrk -t1 -c"$CONNECTIONS" -d"${TOTAL}s" --timeout 5s --latency -s "$OUT/valid.lua" "http://127.0.0.1:$FRONT/" >"$OUT/wrk-valid.txt" 2>&1 &
WRK1=$!; pids+=("$WRK1")
wrk -t1 -c2 -d"${TOTAL}s" --timeout 5s -s "$OUT/mixed.lua" "http://127.0.0.1:$FRONT/" >"$OUT/wrk-mixed.txt" 2>&1 &
WRK2=$!; pids+=("$WRK2")

# ---- the faults, on a one-second tick ----
rss() { awk '/^VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
printf 'elapsed_s\tjwtgate1_rss_kb\tjwtgate2_rss_kb\n' >"$OUT/rss.tsv"
cur=0 rotations=0 policy_changes=0 invalid_changes=0 restarts=0 restart_fail=0
start=$(date +%s)
for ((t = 1; t <= TOTAL; t++)); do
  sleep $(( start + t - $(date +%s) > 0 ? start + t - $(date +%s) : 0 ))
  if (( t % 10 == 0 )); then
    printf '%d\t%s\t%s\n' "$t" "$(rss "$J1")" "$(rss "$J2")" >>"$OUT/rss.tsv"
  fi
  # Rotation: add the next key, 4 s later move the clients, 4 s later drop the old.
  phase=$(( t % ROTATE_EVERY ))
  if (( t + 10 < TOTAL )); then
    if (( phase == 0 )); then
      newkey $((cur + 1)); write_keys "$cur" $((cur + 1))
    elif (( phase == 4 )) && [ -f "$OUT/keys/K$((cur + 1)).pem" ]; then
      token $((cur + 1)) | atomic_write "$OUT/valid.token"
    elif (( phase == 8 )) && [ -f "$OUT/keys/K$((cur + 1)).pem" ]; then
      cur=$((cur + 1)); write_keys "$cur"; rotations=$((rotations + 1))
    fi
  fi
  if (( t % POLICY_EVERY == 0 )); then
    policy_changes=$((policy_changes + 1)); write_policy "$policy_changes"
  fi
  # An invalid policy for 2 s, away from the rotation steps (while it is
  # invalid the last good version, with the keys of that time, serves).
  if (( phase == ROTATE_EVERY / 2 )); then
    write_policy "$policy_changes" invalid; invalid_changes=$((invalid_changes + 1))
  elif (( phase == ROTATE_EVERY / 2 + 2 )); then
    write_policy "$policy_changes"
  fi
  if (( t % RESTART_EVERY == RESTART_EVERY / 2 )) && (( t + 10 < TOTAL )); then
    kill -TERM "$J2"; wait "$J2" 2>/dev/null || true
    if start_jwtgate jwtgate2 "$P2" "$H2"; then J2=$started; restarts=$((restarts + 1)); else restart_fail=$((restart_fail + 1)); fi
  fi
done
wait "$WRK1" "$WRK2" || true
printf '%d\t%s\t%s\n' "$TOTAL" "$(rss "$J1")" "$(rss "$J2")" >>"$OUT/rss.tsv"

# ---- report ----
sockerr() { # sum of connect/read/write/timeout socket errors
  local l; l=$(grep -E '^ +Socket errors' "$1" || true)
  [ -z "$l" ] && { echo 0; return; }
  echo "$l" | grep -Eo '[0-9]+' | awk '{s += $1} END {print s + 0}'
}
v_total=$(grep -Eo '^ +[0-9]+ requests in' "$OUT/wrk-valid.txt" | grep -Eo '[0-9]+' | head -1)
v_non2xx=$(grep -Eo 'Non-2xx or 3xx responses: [0-9]+' "$OUT/wrk-valid.txt" | grep -Eo '[0-9]+$' || echo 0)
v_sock=$(sockerr "$OUT/wrk-valid.txt")
v_rps=$(grep -Eo 'Requests/sec: +[0-9.]+' "$OUT/wrk-valid.txt" | grep -Eo '[0-9.]+$')
v_p99=$(awk '$1=="99%" {print $2}' "$OUT/wrk-valid.txt")
m_total=$(grep -Eo '^ +[0-9]+ requests in' "$OUT/wrk-mixed.txt" | grep -Eo '[0-9]+' | head -1)
m_non2xx=$(grep -Eo 'Non-2xx or 3xx responses: [0-9]+' "$OUT/wrk-mixed.txt" | grep -Eo '[0-9]+$' || echo 0)
m_sock=$(sockerr "$OUT/wrk-mixed.txt")
panics=$(cat "$OUT"/jwtgate*.log | grep -c -i 'panic' || true)

rss_report=$(awk -F'\t' 'NR>1 && $2>0 {n++; v[n]=$2; t[n]=$1; if ($2>max) max=$2}
  END {
    if (n < 2) { print "too few RSS samples"; exit }
    w = 1; for (i = 1; i <= n; i++) if (t[i] >= 60) { w = i; break }   # after 1 min of warm-up
    if (t[n] < 120) w = 1
    printf "first %d KiB, at %ds %d KiB, last %d KiB, max %d KiB; growth after warm-up %+d KiB (%+.1f%%)",
      v[1], t[w], v[w], v[n], max, v[n]-v[w], (v[n]-v[w])*100.0/v[w]
  }' "$OUT/rss.tsv")

{
  echo "soak: $DURATION through nginx -> 2 x jwtgate serve ($OUT)"
  echo "  faults: $rotations key rotations, $policy_changes policy changes ($invalid_changes invalid, last good kept), $restarts restarts of jwtgate #2 (SIGTERM, $restart_fail failed to come back)"
  echo "  valid tokens:  ${v_total:-0} requests, ${v_rps:-?} req/s, p99 ${v_p99:-?}; non-2xx ${v_non2xx:-0}, socket errors ${v_sock:-0}   (target 0 and 0)"
  echo "  refused mix:   ${m_total:-0} requests, non-2xx ${m_non2xx:-0} (all expected: 401/403), socket errors ${m_sock:-0}"
  echo "  jwtgate #1 RSS: $rss_report"
  echo "  panics in jwtgate logs: $panics"
} | tee "$OUT/summary.txt"

fail=$(( ${v_non2xx:-0} + ${v_sock:-0} + ${m_sock:-0} + panics + restart_fail ))
[ "${m_non2xx:-0}" = "${m_total:-0}" ] || { echo "soak: some refused-mix requests were allowed" | tee -a "$OUT/summary.txt"; fail=$((fail + 1)); }
exit $(( fail > 0 ? 1 : 0 ))

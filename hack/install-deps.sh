#!/usr/bin/env bash
# Installs the Debian packages the tests start for real when they are missing:
# nginx and its set_misc module (the e2e's ingress-nginx-style config escapes rd
# with set_escape_uri, as ingress-nginx does), redis-server (with redis-cli),
# redis-sentinel (the Sentinel and Cluster session store tests), caddy (the Caddy
# guide walk), haproxy (the HAProxy guide walk), wrk, openssl, and
# chromium (the e2e's browser). As root it runs apt-get; otherwise it fails with
# the exact command to run, so a test never skips silently.
#
#   hack/install-deps.sh              everything
#   hack/install-deps.sh nginx ...    only these packages (names as below)
set -euo pipefail

# package -> how to tell it is there
present() {
  case "$1" in
    nginx) command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] ;;
    libnginx-mod-http-set-misc) [ -f /usr/lib/nginx/modules/ngx_http_set_misc_module.so ] ;;
    redis-server) command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1 ;;
    redis-sentinel) command -v redis-sentinel >/dev/null 2>&1 ;;
    wrk) command -v wrk >/dev/null 2>&1 ;;
    openssl) command -v openssl >/dev/null 2>&1 ;;
    chromium) [ -x /usr/bin/chromium ] ;;
    caddy) [ -x /usr/bin/caddy ] ;;
    haproxy) [ -x /usr/sbin/haproxy ] ;;
    *) echo "install-deps.sh: unknown package $1" >&2; exit 2 ;;
  esac
}

wanted=("$@")
[ ${#wanted[@]} -gt 0 ] || wanted=(nginx libnginx-mod-http-set-misc redis-server redis-sentinel wrk openssl chromium caddy haproxy)
need=()
for p in "${wanted[@]}"; do
  present "$p" || need+=("$p")
done
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "missing packages: ${need[*]}; install them with: sudo apt-get update && sudo apt-get install -y --no-install-recommends ${need[*]}" >&2
  exit 1
fi
echo "installing ${need[*]}" >&2
DEBIAN_FRONTEND=noninteractive apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null

#!/usr/bin/env bash
# `make run`: serves examples/ on :8000 and prints curls that show it working.
# The demo signing key is made here, into bin/demo/, so no private key is ever
# committed.
set -euo pipefail
bin=${1:-bin/jwtgate}
bin=${bin#"$PWD"/} # print commands as a newcomer types them, from the checkout
demo=bin/demo
mkdir -p "$demo"
if [[ ! -f $demo/private.pem ]]; then
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$demo/private.pem" 2>/dev/null
  chmod 600 "$demo/private.pem"
fi
pub=$(openssl pkey -in "$demo/private.pem" -pubout)
{
  echo "# made by hack/run-examples.sh: the public half of $demo/private.pem"
  echo "apiVersion: v1"
  echo "kind: Secret"
  echo "metadata: {name: demo-keys, namespace: default}"
  echo "stringData:"
  echo "  public.pem: |"
  sed 's/^/    /' <<<"$pub"
} > "$demo/keys.yaml"
if [[ ${2:-} == --keys-only ]]; then
  echo "demo key: $demo/private.pem; its Secret: $demo/keys.yaml"
  exit 0
fi

cat <<TXT

jwtgate is starting on http://localhost:8000 with examples/ (Ctrl-C stops it).
In another terminal:

  # 200, with X-Auth-User: alice (a token signed by the demo key):
  curl -i http://localhost:8000/jwtgate/auth/default/demo \\
    -H 'X-Original-URL: http://localhost/app/' -H 'X-Original-Method: GET' \\
    -H "Authorization: Bearer \$($bin token --key $demo/private.pem --claims '{"sub":"alice","iss":"demo-issuer","aud":"demo","roles":["user"]}')"

  # 401, no token:
  curl -i http://localhost:8000/jwtgate/auth/default/demo \\
    -H 'X-Original-URL: http://localhost/app/' -H 'X-Original-Method: GET'

  # 403, a valid token without the admin role on /admin/:
  curl -i http://localhost:8000/jwtgate/auth/default/demo \\
    -H 'X-Original-URL: http://localhost/admin/' -H 'X-Original-Method: GET' \\
    -H "Authorization: Bearer \$($bin token --key $demo/private.pem --claims '{"sub":"alice","iss":"demo-issuer","aud":"demo","roles":["user"]}')"

  # Sign in: open http://localhost:8000/jwtgate/login as user "demo",
  # password "correct horse battery staple".

TXT
exec "$bin" serve -f examples/ -f "$demo/keys.yaml" --state-dir "$demo/state" --log-format text

#!/usr/bin/env bash
# The package arrows of README "Package map", checked on the whole import graph
# (`go list -deps`), not only on each file's own imports as golangci-lint's
# depguard does: a core package must not reach the cluster or the HTTP front
# through a package in between either.
set -euo pipefail
cd "$(dirname "$0")/.."
mod=$(go list -m)
fail=0

# Every package of ours with its transitive dependencies, and with its own imports.
deps=$(go list -f '{{.ImportPath}} {{join .Deps " "}}' ./...)
imports=$(go list -deps -f '{{.ImportPath}} {{join .Imports " "}}' ./... | grep "^$mod/")

# check PACKAGE-REGEXP FORBIDDEN-REGEXP REASON
check() {
  local pkgs=$1 forbidden=$2 reason=$3 pkg bad edges
  while read -r pkg bad; do
    echo "check-deps: $pkg must not depend on $(wc -w <<<"$bad") of its dependencies ($reason); the imports that bring them in:"
    # The edges "ours -> forbidden" in pkg's graph: the lines to change.
    edges=$(awk -v re="$forbidden" -v deps=" $pkg $(go list -f '{{join .Deps " "}}' "$pkg") " '
      index(deps, " " $1 " ") { for (i = 2; i <= NF; i++) if ($i ~ re && $i != $1) print "    " $1 " -> " $i }' <<<"$imports")
    echo "${edges:-    $bad}"
    fail=1
  done < <(awk -v pkgs="$pkgs" -v re="$forbidden" '
    $1 ~ pkgs { bad = ""; for (i = 2; i <= NF; i++) if ($i ~ re && $i != $1) bad = bad " " $i; if (bad != "") print $1 bad }' <<<"$deps")
}

cluster='^(sigs\.k8s\.io/controller-runtime|k8s\.io/client-go)(/|$)'
http="^$mod/authsvc/(server|login|admin)(/|$)"

check "^$mod/authsvc/(policy|keys|session)(/|$)" "$cluster|$http" \
  "the decision core knows no cluster and no HTTP front"
check "^$mod/api(/|$)" "$cluster|^$mod/" "api/ imports apimachinery only, nothing of ours"
check "^$mod/(authsvc|internal)(/|$)" "$cluster" \
  "only controllers/ and cmd/jwtgate talk to the API server"

# The package map (README "Package map"), exactly: which of our packages each
# package's non-test files may import. A package of ours not listed here is a
# new box on the map: add it, with its arrows, here and in the README.
# cmd/jwtgate (the wiring), bench/ and test/ may import any of ours.
declare -A may=(
  [api/v1alpha1]=""
  [authsvc/users]=""
  [authsvc/outbound]=""
  [authsvc/fastserve]=""
  [authsvc/session]=""
  [authsvc/keys]="authsvc/outbound"
  [authsvc/oidc]="authsvc/keys authsvc/outbound"
  [authsvc/policy]="api/v1alpha1 authsvc/keys authsvc/users"
  [authsvc/session/redisstore]="authsvc/session"
  [authsvc/door]="authsvc/policy"
  [authsvc/grpcdoor]="authsvc/door authsvc/policy"
  [authsvc/server]="authsvc/door authsvc/policy"
  [authsvc/login]="authsvc/oidc authsvc/policy authsvc/session authsvc/users"
  [authsvc/admin]="authsvc/session"
  [authsvc/proxycheck]="api/v1alpha1"
  [authsvc/filesource]="api/v1alpha1 authsvc/proxycheck"
  [authsvc/standalone]="api/v1alpha1 authsvc/filesource authsvc/keys authsvc/policy"
  [controllers]="api/v1alpha1 authsvc/keys authsvc/oidc authsvc/policy authsvc/proxycheck"
  [internal/testproc]=""
  [internal/testredis]="internal/testproc"
  [internal/oidctest]="internal/testproc"
  [internal/loadtest]=""
)
while read -r pkg imports; do
  rel=${pkg#"$mod/"}
  case $rel in cmd/* | bench | bench/* | test/*) continue ;; esac
  if [[ ! -v may[$rel] ]]; then
    echo "check-deps: $rel is not on the package map: add it and the packages of ours it may import to hack/check-deps.sh and README \"Package map\""
    fail=1
    continue
  fi
  for imp in $imports; do
    [[ $imp == "$mod/"* ]] || continue
    imp=${imp#"$mod/"}
    if [[ " ${may[$rel]} " != *" $imp "* ]]; then
      echo "check-deps: $rel must not import $imp (it may import: ${may[$rel]:-nothing of ours})"
      fail=1
    fi
  done
done < <(go list -f '{{.ImportPath}} {{join .Imports " "}}' ./...)

if [[ $fail -ne 0 ]]; then
  echo "check-deps: README \"Package map\" states the arrows; move the code, or inject what the core needs (a new arrow that is right goes on the map: here and in the README)"
  exit 1
fi
echo "check-deps: the package arrows hold"

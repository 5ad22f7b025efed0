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

if [[ $fail -ne 0 ]]; then
  echo "check-deps: README \"Package map\" states the arrows; move the code, or inject what the core needs"
  exit 1
fi
echo "check-deps: the package arrows hold"

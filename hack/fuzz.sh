#!/usr/bin/env bash
# Runs every fuzz target for a while: `hack/fuzz.sh 30s` (make fuzz), or a short
# pass in CI (make test runs `hack/fuzz.sh 300x`: a count of inputs, not a time,
# because a time limit that ends during a slow input fails the run with
# "context deadline exceeded"). Failing inputs are written
# under the package's testdata/fuzz/ by go test; commit them as regression seeds.
set -euo pipefail
time=${1:-30s}
cd "$(dirname "$0")/.."
grep -rl --include='*_test.go' '^func Fuzz' authsvc controllers cmd 2>/dev/null | sort |
while read -r file; do
  pkg=./$(dirname "$file")
  for target in $(grep -o '^func Fuzz[A-Za-z0-9_]*' "$file" | sed 's/^func //'); do
    echo "fuzz: $pkg $target for $time"
    go test -run '^$' -fuzz "^${target}\$" -fuzztime "$time" "$pkg"
  done
done

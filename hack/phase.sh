#!/usr/bin/env bash
# Times the phases of `make test`, so CI's log says where the minutes went.
#
#   hack/phase.sh NAME cmd args...   run cmd; print "phase NAME: 12 s" (or "... FAILED (exit 3)")
#   hack/phase.sh --start            forget the phases of an earlier run
#   hack/phase.sh --summary          print the table of this run's phases and the total
#
# A phase's exit status is the command's: a failed phase still fails make (and
# CI), after the table of the phases run so far is printed.
set -euo pipefail

# One log per checkout (bin/ is not committed), so two clones never mix their runs.
log="${PHASE_LOG:-$(cd "$(dirname "$0")/.." && pwd)/bin/phases.log}"
mkdir -p "$(dirname "$log")"

summary() {
  [[ -s "$log" ]] || return 0
  echo "== phases of make test =="
  awk -F'\t' '{ printf "  %-14s %6d s  %s\n", $1, $2, $3; total += $2 }
    END { printf "  %-14s %6d s\n", "total", total }' "$log"
}

case "${1:-}" in
  --start) : >"$log"; exit 0 ;;
  --summary) summary; exit 0 ;;
  "" | -*) echo "usage: hack/phase.sh NAME cmd args... | --start | --summary" >&2; exit 2 ;;
esac

name=$1
shift
[[ $# -gt 0 ]] || { echo "hack/phase.sh: phase $name has no command" >&2; exit 2; }

start=$SECONDS
rc=0
"$@" || rc=$?
took=$((SECONDS - start))
if [[ $rc -eq 0 ]]; then
  echo "phase $name: $took s"
  printf '%s\t%s\tok\n' "$name" "$took" >>"$log"
else
  echo "phase $name: $took s FAILED (exit $rc)"
  printf '%s\t%s\tFAILED (exit %s)\n' "$name" "$took" "$rc" >>"$log"
  summary
fi
exit "$rc"

#!/usr/bin/env bash
# The suite, after setup: most files two at a time (a 2-core machine; most
# tests wait on media playing at real time, so two files nearly halve the
# wall time), then the files that judge the whole machine alone, since they
# measure its load or load it themselves:
#   admission, supervision, cluster  CPU budgets against /proc's machine load
#   soak, bench-smoke                60 channels under faults; the benchmark
# Both phases always run; the exit status is non-zero if either failed.
set -uo pipefail
cd "$(dirname "$0")/.."
alone=(admission supervision cluster soak bench-smoke)
shared=()
for f in dist/test/*.test.js; do
  name=$(basename "$f" .test.js)
  [[ " ${alone[*]} " == *" $name "* ]] || shared+=("$f")
done
run() { node --test --test-timeout=300000 "$@"; }
run --test-concurrency=2 "${shared[@]}"
first=$?
alone_files=()
for name in "${alone[@]}"; do alone_files+=("dist/test/$name.test.js"); done
run --test-concurrency=1 "${alone_files[@]}"
second=$?
exit $(( first != 0 || second != 0 ))

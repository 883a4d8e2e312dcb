#!/usr/bin/env bash
# check.sh NAME CMD [ARGS...]: run one test step, keep its output in
# build/logs/NAME.log, print PASS/FAIL with the time taken, and record the
# result for scripts/summary.sh.  Always exits 0 so that `make test` runs
# every step; the summary decides the exit status.
set -u
name=$1; shift
top=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$top/build/logs"
log="$top/build/logs/$name.log"
start=$(date +%s.%N)
"$@" >"$log" 2>&1
rc=$?
secs=$(printf '%.1f' "$(echo "$(date +%s.%N) - $start" | bc)")
if [ $rc -eq 0 ]; then
    echo "PASS $name (${secs}s)"
    echo "PASS $name" >>"$top/build/test-results.txt"
    # A step may print lines starting with 'SHOW ' that belong in the summary.
    grep '^SHOW ' "$log" | sed 's/^SHOW /     /' || true
else
    echo "FAIL $name (${secs}s, exit $rc): last lines of build/logs/$name.log:"
    tail -n 25 "$log" | sed 's/^/     | /'
    echo "FAIL $name" >>"$top/build/test-results.txt"
fi
exit 0

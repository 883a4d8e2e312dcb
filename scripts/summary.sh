#!/usr/bin/env bash
# Print the closing line of `make test` and fail if any step failed.
top=$(cd "$(dirname "$0")/.." && pwd)
res="$top/build/test-results.txt"
[ -f "$res" ] || { echo "0 passed, 1 failed"; echo "no test ran"; exit 1; }
p=$(grep -c '^PASS' "$res"); f=$(grep -c '^FAIL' "$res")
if [ "$f" -gt 0 ]; then echo; echo "failed:"; grep '^FAIL' "$res" | sed 's/^FAIL /  /'; fi
echo
echo "$p passed, $f failed"
[ "$f" -eq 0 ] && [ "$p" -gt 0 ]

#!/usr/bin/env bash
# run.sh MODE SECONDS BUILDDIR: drive the fuzz targets (see mk/fuzz.mk).
#
#   fuzz    fuzz every target (fuzz-api 2/3 of SECONDS, fuzz-checked 1/3),
#           seeded from fuzz/corpus/<target>/, then merge (-merge=1) the
#           old corpus and the new finds into a minimal fuzz/corpus/<target>/
#   replay  run every input of fuzz/corpus/<target>/ and
#           fuzz/regressions/<target>/ once; any failure fails the step
#   short   fuzz SECONDS in total, half per target, in a scratch copy of the
#           corpus (the repository's corpus is left alone)
#
# Each run prints a SHOW line: executions, executions per second, and
# libFuzzer's coverage (cov: edges, ft: features).  Crashes are written to
# BUILDDIR/artifacts/; a failing input belongs in fuzz/regressions/<target>/
# once the bug is fixed.
set -euo pipefail
mode=$1 secs=$2 build=$3
top=$(cd "$(dirname "$0")/.." && pwd)
targets=(api checked)
art="$build/artifacts"
mkdir -p "$art"
status=0

# -rss_limit_mb: ASan's shadow plus a 192 MiB heap area; -timeout: the
# checked build runs ha_check() on every call of a 1500-call input.
opts=(-rss_limit_mb=4096 -timeout=60 -max_len=4096 -print_final_stats=1 -artifact_prefix="$art/")

# One libFuzzer run; prints its last stats as a SHOW line.
fuzz_one() { # TARGET SECONDS CORPUSDIR...
    local t=$1 s=$2; shift 2
    local log="$build/fuzz-$t.log"
    echo "fuzz-$t: $s s, corpus $*"
    if ! "$build/fuzz-$t" "${opts[@]}" -max_total_time="$s" "$@" >"$log" 2>&1; then
        tail -n 40 "$log"
        echo "fuzz-$t: FAILED (log $log)"
        status=1
    fi
    local last execs rate
    last=$(grep -E '^#[0-9]+' "$log" | tail -n 1 || true)
    execs=$(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}' || true)
    rate=$(grep -E '^stat::average_exec_per_sec' "$log" | awk '{print $2}' || true)
    echo "SHOW fuzz-$t: ${execs:-?} runs in ${s}s, ${rate:-?} exec/s, $(echo "$last" | grep -oE 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+' || echo 'no stats')"
}

case $mode in
fuzz)
    for t in "${targets[@]}"; do
        if [ "$t" = api ]; then s=$((secs * 2 / 3)); else s=$((secs - secs * 2 / 3)); fi
        [ "$s" -gt 0 ] || continue
        corpus="$top/fuzz/corpus/$t"
        work="$build/work/$t"
        rm -rf "$work"; mkdir -p "$work" "$corpus"
        fuzz_one "$t" "$s" "$work" "$corpus"
        # Minimise: the smallest set of old and new inputs with the same
        # coverage replaces the corpus.
        merged="$build/merged/$t"
        rm -rf "$merged"; mkdir -p "$merged"
        # Edges only (-use_counters=0): the corpus stays a few hundred files.
        "$build/fuzz-$t" "${opts[@]}" -use_counters=0 -merge=1 "$merged" "$corpus" "$work" >"$build/merge-$t.log" 2>&1 ||
            { tail -n 20 "$build/merge-$t.log"; status=1; continue; }
        rm -rf "$corpus"; mkdir -p "$corpus"
        cp "$merged"/* "$corpus"/ 2>/dev/null || true
        echo "fuzz-$t: corpus now $(ls "$corpus" | wc -l) inputs"
    done
    ;;
replay)
    for t in "${targets[@]}"; do
        files=()
        for d in "$top/fuzz/corpus/$t" "$top/fuzz/regressions/$t"; do
            [ -d "$d" ] && while IFS= read -r f; do files+=("$f"); done < <(find "$d" -type f ! -name '*.md' ! -name '.*' | sort)
        done
        if [ ${#files[@]} -eq 0 ]; then
            echo "fuzz-$t: no inputs to replay"; status=1; continue
        fi
        start=$(date +%s.%N)
        if "$build/fuzz-$t" "${opts[@]}" "${files[@]}" >"$build/replay-$t.log" 2>&1; then
            echo "SHOW fuzz-$t: replayed ${#files[@]} inputs in $(printf '%.1f' "$(echo "$(date +%s.%N) - $start" | bc)") s"
        else
            tail -n 40 "$build/replay-$t.log"
            echo "fuzz-$t: replay FAILED"
            status=1
        fi
    done
    ;;
short)
    for t in "${targets[@]}"; do
        work="$build/short/$t"
        rm -rf "$work"; mkdir -p "$work"
        [ -d "$top/fuzz/corpus/$t" ] && cp "$top/fuzz/corpus/$t"/* "$work"/ 2>/dev/null || true
        fuzz_one "$t" $((secs / 2)) "$work"
    done
    ;;
*)
    echo "run.sh: unknown mode $mode" >&2; exit 2 ;;
esac
exit $status

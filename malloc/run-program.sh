#!/usr/bin/env bash
# run-program.sh VARIANT PROGRAM: run a real program's workload twice, on
# glibc's malloc and on hartalloc (LD_PRELOAD of build/malloc/VARIANT/
# libhartalloc-malloc.so), and require the same stdout and stderr, exit
# status 0 both times, and proof that hartalloc served it: every process
# that ran preloaded wrote a HARTALLOC_STATS line with allocs > 0 and a heap
# that ha_check found consistent at exit.
#
#   VARIANT  default | checked (HA_CHECKED=1: a full heap walk on every
#            call, about a millisecond each, so the workloads are scaled down)
#   PROGRAM  python3 | sqlite3 | git | gcc | xz-threads
set -euo pipefail

variant=$1 program=$2
top=$(cd "$(dirname "$0")/.." && pwd)
so=$top/build/malloc/$variant/libhartalloc-malloc.so
[ -f "$so" ] || { echo "missing $so (make malloc)"; exit 2; }
work=$top/build/malloc/work/$program-$variant
rm -rf "$work"; mkdir -p "$work"

checked=0; [ "$variant" = checked ] && checked=1

# $RUN prefixes the program under test only: the shell helpers around it
# (seq, sha256sum ...) stay on glibc, so the checked build's time goes to
# the program itself.
workload_python3() {
    local n=30000 pymalloc=malloc
    # pymalloc serves Python's small objects from its own arenas: the
    # default build turns it off (every object through malloc, about 1.6
    # million calls); the checked build keeps it (1,500 calls).
    [ $checked = 1 ] && { n=100; pymalloc=pymalloc; }
    PYTHONHASHSEED=0 PYTHONMALLOC=$pymalloc \
        $RUN /usr/bin/python3 -S -s -B "$top/malloc/programs/collections_workload.py" $n
}

workload_sqlite3() {
    local n=5000
    [ $checked = 1 ] && n=40
    "$top/malloc/programs/sqlite_workload.sh" $n >load.sql
    $RUN /usr/bin/sqlite3 test.db <load.sql
    # A second process reopens the file: what the first wrote must be there.
    $RUN /usr/bin/sqlite3 test.db 'PRAGMA integrity_check; SELECT count(*), sum(qty) FROM item;'
}

workload_git() {
    local files=16 commits=5
    [ $checked = 1 ] && { files=3; commits=1; }
    export HOME=$PWD GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null
    export GIT_AUTHOR_NAME=Ada GIT_AUTHOR_EMAIL=ada@example.org
    export GIT_COMMITTER_NAME=Ada GIT_COMMITTER_EMAIL=ada@example.org
    local git="$RUN /usr/bin/git"
    $git init -q -b main repo
    cd repo
    local c f
    for c in $(seq 1 $commits); do
        for f in $(seq 1 $files); do
            mkdir -p "dir$((f % 5))"
            seq $((f * c)) $((f * c + 200 + f)) | sed "s/^/line $c $f /" >"dir$((f % 5))/file$f.txt"
        done
        export GIT_AUTHOR_DATE="2024-01-0${c}T12:00:00Z" GIT_COMMITTER_DATE="2024-01-0${c}T12:00:00Z"
        $git add -A
        $git commit -q -m "commit $c"
    done
    $git log --stat --format='%H %s'
    $git gc -q
    $git count-objects -v | grep -E '^(count|in-pack|packs):'
    $git fsck --full --no-progress
    $git rev-parse HEAD
}

workload_gcc() {
    local funcs=80 opt=-O2
    # cc1 makes about 7,000 allocations at -O0 for a small file, 17,000 at
    # -O2: the checked build compiles 3 functions at -O0.
    [ $checked = 1 ] && { funcs=3; opt=-O0; }
    "$top/malloc/programs/gen_c_file.sh" $funcs >prog.c
    # The generated code must be the same byte for byte, and run the same.
    [ $checked = 1 ] || $RUN /usr/bin/gcc $opt -S -o - prog.c | sha256sum
    $RUN /usr/bin/gcc $opt -Wall -o prog prog.c
    ./prog
}

workload_xz-threads() {
    local mib=3
    [ $checked = 1 ] && mib=2
    # Text that compresses but not to nothing: numbers and their squares.
    # Cut with truncate, not head: under pipefail, head closing the pipe
    # early would fail the pipeline with SIGPIPE.
    seq 1 400000 | awk '{ print $1, $1 * $1 % 1000003 }' >data
    truncate -s $((mib << 20)) data
    # 256 KiB blocks: several per thread, so both threads compress.
    $RUN /usr/bin/xz -T2 --block-size=256KiB -6 -c data >data.xz
    sha256sum data.xz
    $RUN /usr/bin/xz -T2 -dc data.xz | cmp - data
    $RUN /usr/bin/zstd -q -T2 -3 -c data >data.zst
    $RUN /usr/bin/zstd -q -T2 -dc data.zst | cmp - data
    echo "roundtrips ok $(stat -c %s data) bytes"
}

run() { # run DIR PRELOAD: the workload's exit status (any failing command)
    local dir=$1 rc=0
    mkdir -p "$dir"
    set +e
    (
        set -e
        cd "$dir"
        if [ "$2" = yes ]; then RUN="env LD_PRELOAD=$so HARTALLOC_STATS=$work/stats.txt"; else RUN=""; fi
        "workload_$program"
    ) >"$dir.out" 2>"$dir.err"
    rc=$?
    set -e
    return $rc
}

t0=$(date +%s.%N)
rc=0; run "$work/glibc" no || rc=$?
[ $rc -eq 0 ] || { echo "FAIL: $program on glibc exited $rc"; cat "$work/glibc.err"; exit 1; }
t1=$(date +%s.%N)
run "$work/hartalloc" yes || rc=$?
t2=$(date +%s.%N)
if [ $rc -ne 0 ]; then
    echo "FAIL: $program on hartalloc ($variant) exited $rc"; tail -n 20 "$work/hartalloc.err"; exit 1
fi
for s in out err; do
    if ! diff -u "$work/glibc.$s" "$work/hartalloc.$s" >"$work/diff.$s"; then
        echo "FAIL: $program std$s differs between glibc and hartalloc ($variant):"
        head -n 40 "$work/diff.$s"; exit 1
    fi
done
echo "--- output (identical on both):"; cat "$work/hartalloc.out"

stats=$work/stats.txt
[ -s "$stats" ] || { echo "FAIL: no process wrote HARTALLOC_STATS: the front end was not used"; exit 1; }
procs=$(wc -l <"$stats")
if grep -v 'check=ok$' "$stats"; then echo "FAIL: heap inconsistent at exit (above)"; exit 1; fi
if grep -E ' allocs=0 ' "$stats"; then echo "FAIL: a process made no allocation through hartalloc"; exit 1; fi
allocs=$(sed -E 's/.* allocs=([0-9]+) .*/\1/' "$stats" | paste -sd+ | bc)
peak=$(sed -E 's/.* bytes_peak=([0-9]+) .*/\1/' "$stats" | sort -n | tail -1)
echo "--- hartalloc stats, one line per process:"; cat "$stats"
printf 'SHOW %s on hartalloc (%s): same output as glibc; processes: %d, allocations: %d, largest peak: %d KiB; %.1fs (glibc %.1fs)\n' \
    "$program" "$variant" "$procs" "$allocs" $((peak / 1024)) \
    "$(echo "$t2 - $t1" | bc)" "$(echo "$t1 - $t0" | bc)"

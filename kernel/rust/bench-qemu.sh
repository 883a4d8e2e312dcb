#!/usr/bin/env bash
# bench-qemu.sh ELF LOGDIR RESULTS: boot the Rust kernel built with the
# `bench` feature twice, 256 MiB each: 1 hart under -icount shift=0 (exact
# instruction counts) and 4 harts under plain TCG (wall time; -icount with
# several harts can hang while one spins).  Print both tables, write them
# with the date and QEMU's version to RESULTS (markdown), and end with one
# line 'SHOW bench-qemu: ...' carrying the ratios buddy/hartalloc and
# talc/hartalloc.
set -u
[ $# -eq 3 ] || { sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
elf=$1 logdir=$2 results=$3
here=$(cd "$(dirname "$0")" && pwd)
run=$here/../run-qemu.sh
mkdir -p "$logdir" "$(dirname "$results")"

# One boot: its log, judged by run-qemu.sh (exit 0, the closing line, no
# failure).
boot() {
    local name=$1; shift
    echo "bench-qemu: $name: kernel/run-qemu.sh $(basename "$elf") $*"
    "$run" "$elf" --mem 256M --quiet --log "$logdir/bench-$name.log" \
        --expect "bench: done, ha_check consistent" --reject "[FAIL]" --reject "panicked" "$@"
}

rc=0
boot smp1-icount --smp 1 --icount --append icount --timeout 900 || rc=1
boot smp4-tcg --smp 4 --timeout 900 --expect "smp: 4 of 4 harts online" || rc=1

# What a reader needs of a log: the mode lines (as a list) and the
# table, a blank line between them for markdown.
extract() {
    grep '^bench: ' "$1" 2>/dev/null | sed 's/^bench: /- /'
    echo
    grep '^|' "$1" 2>/dev/null
}

{
    echo "# hartalloc vs buddy_system_allocator and talc in QEMU (the Rust kernel)"
    echo
    echo "Written by \`make bench-qemu\` on $(date -u '+%Y-%m-%d %H:%M UTC'); $(qemu-system-riscv64 --version | head -n 1)."
    echo "Host: $(nproc) CPUs, shared with other work, so the TCG figures vary from run to run"
    echo "(4 harts on fewer host CPUs: a spin-lock holder can be descheduled); the icount figures"
    echo "repeat exactly.  Ratios buddy/hartalloc and talc/hartalloc > 1: hartalloc is faster."
    echo
    echo "The three allocators run in the same boot on the same seeded traces, through the same"
    echo "monomorphised loop (\`kernel/rust/src/bench.rs\`): hartalloc as the global allocator"
    echo "(\`GlobalAlloc\`, and \`ha_alloc_pages(1)\`/\`ha_free_pages\` for frames); buddy_system_allocator"
    echo "on 32 MiB of hartalloc's pages (\`LockedHeap<32>\`) and the frame numbers of another 32 MiB"
    echo "(\`LockedFrameAllocator<32>\`, whose BTreeSets live on the global allocator, as in rCore);"
    echo "talc 5 behind a spin lock (\`TalcLock<spinning_top::RawSpinlock, Manual>\`) on a third"
    echo "32 MiB, its frames 4 KiB blocks at 4 KiB alignment (talc has no page API)."
    echo "Blocks are not written to: the figures are the allocators' own work."
    echo
    echo "## 1 hart, \`-icount shift=0\` (instructions, exact)"
    echo
    echo '```'
    echo "kernel/run-qemu.sh build/kernel-rust/hartalloc-kernel-bench --smp 1 --mem 256M --icount --append icount"
    echo '```'
    echo
    extract "$logdir/bench-smp1-icount.log"
    echo
    echo "## 4 harts, plain TCG (wall time, rdtime)"
    echo
    echo '```'
    echo "kernel/run-qemu.sh build/kernel-rust/hartalloc-kernel-bench --smp 4 --mem 256M"
    echo '```'
    echo
    extract "$logdir/bench-smp4-tcg.log"
} >"$results.tmp"
if [ $rc -eq 0 ]; then
    mv "$results.tmp" "$results"
    echo "bench-qemu: results in $results"
else
    rm -f "$results.tmp"
    echo "bench-qemu: a run failed: $results left as it was; logs in $logdir"
fi

echo
for log in "$logdir/bench-smp1-icount.log" "$logdir/bench-smp4-tcg.log"; do
    extract "$log"
    echo
done
one=$(grep -h '^bench-qemu: ' "$logdir/bench-smp1-icount.log" 2>/dev/null | sed 's/^bench-qemu: //')
four=$(grep -h '^bench-qemu: ' "$logdir/bench-smp4-tcg.log" 2>/dev/null | sed 's/^bench-qemu: //')
echo "SHOW bench-qemu: ${one:-1 hart: no result}; ${four:-4 harts: no result}"
exit $rc

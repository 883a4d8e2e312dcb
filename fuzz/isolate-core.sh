#!/usr/bin/env bash
# isolate-core.sh OUT.o IN.o...: link the allocator's objects into one
# relocatable object whose writable state sits in two sections of its own,
# hartalloc_state_data and hartalloc_state_bss.  The linker then defines
# __start_/__stop_ symbols for them, and the fuzz harness can put the
# allocator back into its load-time state before every input (state.c).
#
# The reset is only sound if those two sections hold ALL of the allocator's
# mutable static state, so this refuses any other writable or TLS section,
# except what the compiler's instrumentation owns (coverage counters and PC
# tables, constructor arrays) and .data.rel.ro (constants fixed at load).
set -euo pipefail
out=$1; shift
ld -r "$@" -o "$out.tmp"
objcopy --rename-section .data=hartalloc_state_data \
        --rename-section .bss=hartalloc_state_bss "$out.tmp" "$out"
rm -f "$out.tmp"
sections=$(readelf -SW "$out" | sed -n 's/^ *\[ *[0-9]*\] //p')
# Fields: Name Type Address Off Size ES [Flg] Lk Inf Al (Flg may be empty).
bad=$(echo "$sections" | awk '
    NF == 10 && ($7 ~ /T/ || ($7 ~ /W/ && $1 !~ /^(hartalloc_state_data|hartalloc_state_bss|__sancov_cntrs|__sancov_pcs|\.init_array.*|\.fini_array.*|\.data\.rel\.ro.*)$/)) { print $1 }')
if [ -n "$bad" ]; then
    echo "isolate-core.sh: writable state outside the reset sections: $bad" >&2
    rm -f "$out"; exit 1
fi
for s in hartalloc_state_data hartalloc_state_bss; do
    # A here-string, not a pipe: under pipefail, grep -q quitting at the
    # first match can kill echo with SIGPIPE and fail the check at random.
    grep -q "^$s " <<<"$sections" || { echo "isolate-core.sh: no $s section" >&2; rm -f "$out"; exit 1; }
done

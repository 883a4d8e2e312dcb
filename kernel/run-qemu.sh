#!/usr/bin/env bash
# run-qemu.sh ELF [options]: boot a kernel in QEMU under a timeout, show
# its console output as it runs, and judge the run by its exit status and
# its output.  Shared by all kernels.
#
#   --arch A           riscv64 (default): qemu-system-riscv64 -machine virt
#                      -bios default (OpenSBI); aarch64: qemu-system-aarch64
#                      -machine virt -cpu cortex-a57, no firmware, with
#                      -semihosting (a failing kernel's exit status)
#   --smp N            harts (default 1)
#   --mem M            RAM, as QEMU's -m takes it (default 128M)
#   --timeout S        seconds before the run counts as hung (default 60)
#   --expect-exit E    0 (default): QEMU must exit 0; fail: it must exit
#                      non-zero, but not by timeout; N: exactly N; any: do
#                      not judge it
#   --expect TEXT      a line containing TEXT must appear (repeatable)
#   --reject TEXT      no line may contain TEXT (repeatable)
#   --show TEXT        repeat lines containing TEXT at the end, prefixed
#                      'SHOW ' (scripts/check.sh puts them in the summary)
#   --append ARGS      the kernel command line (-append: /chosen/bootargs)
#   --log FILE         also keep the console output in FILE
#   --quiet            do not echo the console output (the log still has it)
#   --icount           pass -icount shift=0 (exact, repeatable rdcycle)
#   --qemu-arg ARG     one more argument for QEMU (repeatable)
#
# Exit status: 0 when every expectation holds, 1 when one does not, 124
# when QEMU hung, 2 on a usage error.  A RISC-V kernel ends QEMU through
# SBI system reset (exit 0) or the sifive_test device at 0x100000
# ((code << 16) | 0x3333 -> exit code; 0x5555 -> 0); an aarch64 kernel
# through PSCI SYSTEM_OFF (exit 0) or semihosting SYS_EXIT_EXTENDED (its
# code).
set -u

usage() { sed -n '2,31p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

[ $# -ge 1 ] || usage
elf=$1; shift
arch=riscv64 smp=1 mem=128M tmo=60 expect_exit=0 log="" quiet=0
expects=() rejects=() shows=() qargs=()
while [ $# -gt 0 ]; do
    case $1 in
    --arch) arch=$2; shift 2 ;;
    --smp) smp=$2; shift 2 ;;
    --mem) mem=$2; shift 2 ;;
    --timeout) tmo=$2; shift 2 ;;
    --expect-exit) expect_exit=$2; shift 2 ;;
    --expect) expects+=("$2"); shift 2 ;;
    --reject) rejects+=("$2"); shift 2 ;;
    --show) shows+=("$2"); shift 2 ;;
    --append) qargs+=(-append "$2"); shift 2 ;;
    --log) log=$2; shift 2 ;;
    --quiet) quiet=1; shift ;;
    --icount) qargs+=(-icount shift=0); shift ;;
    --qemu-arg) qargs+=("$2"); shift 2 ;;
    -h|--help) usage ;;
    *) echo "run-qemu.sh: unknown option '$1'" >&2; usage ;;
    esac
done
case $expect_exit in fail|any|[0-9]|[0-9][0-9]|[0-9][0-9][0-9]) ;; *) echo "run-qemu.sh: --expect-exit N|fail|any" >&2; exit 2 ;; esac
[ -f "$elf" ] || { echo "run-qemu.sh: no kernel image '$elf'" >&2; exit 2; }
case $arch in
riscv64)
    qemu=qemu-system-riscv64 setup=riscv
    machine=(-machine virt -nographic -bios default) ;;
aarch64)
    # -net none: else QEMU looks for efi-virtio.rom and stops.
    qemu=qemu-system-aarch64 setup=aarch64
    machine=(-machine virt -cpu cortex-a57 -nographic -net none -semihosting) ;;
*)  echo "run-qemu.sh: --arch riscv64|aarch64" >&2; exit 2 ;;
esac
command -v $qemu >/dev/null || { echo "run-qemu.sh: $qemu missing (scripts/setup.sh $setup)" >&2; exit 2; }

out=$(mktemp)
trap 'rm -f "$out"' EXIT

cmd=($qemu "${machine[@]}"
     -smp "$smp" -m "$mem" -kernel "$elf" -monitor none -serial stdio "${qargs[@]}")
echo "run-qemu: ${cmd[*]} (timeout ${tmo}s)"
# --foreground: QEMU keeps the terminal (and dies with the timeout); stdin
# from /dev/null so that a run under make never waits for input.
if [ $quiet -eq 1 ]; then
    timeout --foreground -k 5 "$tmo" "${cmd[@]}" </dev/null >"$out" 2>&1
    rc=$?
else
    timeout --foreground -k 5 "$tmo" "${cmd[@]}" </dev/null 2>&1 | tee "$out"
    rc=${PIPESTATUS[0]}
fi
# The console uses CR LF; judge lines without the CR.
sed -i 's/\r$//' "$out"
[ -n "$log" ] && cp "$out" "$log"

bad=0
if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
    echo "run-qemu: HUNG: no exit within ${tmo}s"
    exit 124
fi
case $expect_exit in
any)  ;;
fail) [ $rc -ne 0 ] || { echo "run-qemu: exit status 0, expected a failure"; bad=1; } ;;
*)    [ $rc -eq "$expect_exit" ] || { echo "run-qemu: exit status $rc, expected $expect_exit"; bad=1; } ;;
esac
for e in "${expects[@]+"${expects[@]}"}"; do
    grep -qF -- "$e" "$out" || { echo "run-qemu: missing expected output: $e"; bad=1; }
done
for r in "${rejects[@]+"${rejects[@]}"}"; do
    if grep -qF -- "$r" "$out"; then echo "run-qemu: unexpected output: $(grep -F -m1 -- "$r" "$out")"; bad=1; fi
done
for t in "${shows[@]+"${shows[@]}"}"; do
    grep -F -- "$t" "$out" | sed 's/^/SHOW /'
done
if [ $bad -eq 0 ]; then
    echo "run-qemu: OK (exit status $rc, ${#expects[@]} expected lines found)"
fi
exit $bad

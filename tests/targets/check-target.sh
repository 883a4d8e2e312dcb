#!/usr/bin/env bash
# check-target.sh: the crate on the bare-metal targets it supports.
#
#   check-target.sh build TARGET [hide-gcc]
#       Builds and links tests/targets (a no_std program with hartalloc as
#       its global allocator) for TARGET, with no CC_* or CFLAGS* set, so
#       build.rs picks the compiler and flags itself; then checks the C
#       objects of that build (the libhartalloc.a in its OUT_DIR): 64-bit
#       ELF of the target's machine (RISC-V lp64d, AArch64, x86-64), and no
#       FP/SIMD register where the target has none (x86_64-unknown-none,
#       aarch64-unknown-none-softfloat).  With hide-gcc, the target's gcc
#       is hidden from PATH, so build.rs must fall back to clang.
#   check-target.sh stable-cfg TARGET [clang]
#       The same checks on the C core alone, built by the root crate with
#       the cfg of a stable rustc, which hides unstable target features
#       (riscv's f and d): build.rs must not depend on them.
#       With clang (also for build): CC_<target>=clang set, as a user
#       would, and the objects must come from clang.
#   check-target.sh refused TARGET TEXT [hide-compilers]
#       build.rs must stop for TARGET with one message containing TEXT
#       (no build-std needed: the build script fails before any Rust of the
#       target is compiled).  With hide-compilers, every gcc for the target
#       and clang are hidden from PATH.
#
# Toolchain: rustup's when it has TARGET installed, else Debian's Rust 1.96
# with -Zbuild-std (core and alloc built from rust-web-src).  Linkers: the
# GNU ld of each architecture (Debian's rustc has no rust-lld).
set -euo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
crate=$top/tests/targets
out=$top/build/targets
mode=$1 target=$2
shift 2

# What the user would not have set: the point is build.rs's own choice.
# (env -u, because CC_<target> with dashes is no shell variable name.)
tu=${target//[-.]/_}
clean=(env)
for v in CC CFLAGS AR; do
    clean+=(-u "$v" -u "TARGET_$v" -u "${v}_$target" -u "${v}_$tu")
done
clean+=(-u CROSS_COMPILE)
export HARTALLOC_WERROR=1

case $target in
riscv64*) arch=riscv64 linker=riscv64-unknown-elf-ld ;;
aarch64*) arch=aarch64 linker=aarch64-linux-gnu-ld ;;
x86_64*) arch=x86_64 linker=ld ;;
*) arch=${target%%-*} linker= ;;
esac

# A PATH with the same programs as now, less those whose name matches the
# extended regex $1.  The symlinks live in $tmp.
shadow_path() {
    local dir=$tmp/bin d f name
    mkdir -p "$dir"
    IFS=: read -ra dirs <<<"$PATH"
    for d in "${dirs[@]}"; do
        [ -d "$d" ] || continue
        for f in "$d"/*; do
            name=${f##*/}
            [ -x "$f" ] && [ ! -e "$dir/$name" ] || continue
            [[ $name =~ $1 ]] && continue
            ln -s "$f" "$dir/$name"
        done
    done
    echo "$dir"
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

cargo_cmd=(cargo)
build_std=()
if ! rustup target list --installed 2>/dev/null | grep -qx "$target"; then
    export RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1
    cargo_cmd=(/usr/bin/cargo)
    build_std=(-Zbuild-std=core,alloc -Zbuild-std-features=compiler-builtins-mem)
fi

case $mode in
refused)
    text=$1 hide=${2:-}
    if [ "$hide" = hide-compilers ]; then
        PATH=$(shadow_path "^(${arch}-.*gcc.*|clang.*)$")
        export PATH
    fi
    set +e
    "${clean[@]}" "${cargo_cmd[@]}" build --manifest-path "$top/Cargo.toml" --target "$target" \
        --target-dir "$out" -j2 >"$tmp/log" 2>&1
    rc=$?
    set -e
    cat "$tmp/log"
    [ $rc -ne 0 ] || { echo "FAIL: the build for $target succeeded"; exit 1; }
    grep -qF -- "$text" "$tmp/log" || { echo "FAIL: no '$text' in the output"; exit 1; }
    # One message from build.rs, not a panic or cc's error chain.
    if grep -qE "panicked at|ToolExecError|failed to find tool" "$tmp/log"; then
        echo "FAIL: the failure is not build.rs's plain message"; exit 1
    fi
    echo "SHOW $target refused: $(grep -m1 -F -- "$text" "$tmp/log" | sed 's/^ *//')"
    exit 0
    ;;
build | stable-cfg) ;;
*) echo "usage: $0 build|stable-cfg TARGET [hide-gcc|clang] | refused TARGET TEXT [hide-compilers]" >&2; exit 2 ;;
esac

want_cc= user_cc=()
if [ "${1:-}" = clang ]; then
    # The user's override, as documented: CC_<target>=clang.
    user_cc=("CC_$tu=clang")
    want_cc=clang
elif [ "${1:-}" = hide-gcc ]; then
    PATH=$(shadow_path "^${arch}-.*gcc.*$")
    export PATH
    if compgen -c | grep -qE "^${arch}-.*-gcc$"; then echo "a ${arch} gcc is still on PATH"; exit 1; fi
    want_cc=clang
fi
tu_upper=$(tr 'a-z' 'A-Z' <<<"$tu")
export "CARGO_TARGET_${tu_upper}_LINKER=$linker"

if [ "$mode" = build ]; then
    cd "$crate"
    "${clean[@]}" "${user_cc[@]}" "${cargo_cmd[@]}" build --target "$target" "${build_std[@]}" --target-dir "$out" -j2 \
        --message-format=json-render-diagnostics >"$tmp/json"
    elf=$out/$target/debug/hartalloc-targets
    [ -f "$elf" ] || { echo "no linked program at $elf"; exit 1; }
    linked="program linked with $linker"
else
    # The cfg a stable rustc gives build.rs (no unstable target features):
    # the root crate alone, no build-std.  Without a rustup target the
    # build stops at the missing core after build.rs has built the C core,
    # which is all this looks at.
    "${clean[@]}" -u RUSTC_BOOTSTRAP "${user_cc[@]}" "${cargo_cmd[@]}" build --manifest-path "$top/Cargo.toml" \
        --target "$target" --target-dir "$out/stable-cfg" -j2 \
        --message-format=json-render-diagnostics >"$tmp/json" || true
    elf=
    linked="built on a stable rustc's cfg"
fi

# The OUT_DIR of this very build of hartalloc (not an older one).
out_dir=$(grep '"reason":"build-script-executed"' "$tmp/json" | grep '#hartalloc@' |
          sed -E 's/.*"out_dir":"([^"]*)".*/\1/' | tail -1)
lib=$out_dir/libhartalloc.a
[ -f "$lib" ] || { echo "no libhartalloc.a in '$out_dir'"; exit 1; }

case $target in
riscv64*) machine="RISC-V" objdump=riscv64-unknown-elf-objdump ;;
aarch64*) machine="AArch64" objdump=aarch64-linux-gnu-objdump ;;
x86_64*) machine="Advanced Micro Devices X86-64" objdump=objdump ;;
*) echo "no checks known for $target"; exit 1 ;;
esac

mkdir -p "$tmp/objs"
(cd "$tmp/objs" && ar x "$lib")
n=0
for o in "$tmp/objs"/*.o $elf; do
    h=$(readelf -h "$o")
    grep -q 'Class: *ELF64' <<<"$h" || { echo "$o: not ELF64"; exit 1; }
    grep -q "Machine: *$machine\$" <<<"$h" ||
        { echo "$o: $(grep Machine <<<"$h"), want $machine"; exit 1; }
    if [[ $target == riscv64gc-* ]]; then
        grep -q 'Flags:.*double-float ABI' <<<"$h" || { echo "$o: not lp64d"; exit 1; }
    fi
    n=$((n + 1))
done
[ -z "$elf" ] || n=$((n - 1))

# Which compiler made them: gcc and clang both sign .comment.
made_by=$(readelf -p .comment "$tmp/objs"/*.o | grep -m1 -oE '(GCC: \([^)]*\) [0-9.]+|clang version [0-9.]+)' || true)
[ -n "$made_by" ] || { echo "no compiler signature in the objects"; exit 1; }
if [ "$want_cc" = clang ] && [[ $made_by != clang* ]]; then
    echo "built by $made_by, expected clang"; exit 1
fi

# Instructions that touch FP/SIMD registers, one per line; branch targets
# and symbol names are dropped so that "b d0 <f+0xd0>" is no match.
fp_insns() {
    case $target in
    x86_64*)
        "$objdump" -d --no-show-raw-insn "$lib" | grep -E '%([xyz]mm[0-9]|mm[0-7]|st\b|st\()' || true ;;
    aarch64*)
        "$objdump" -d --no-show-raw-insn "$lib" |
            awk -F'\t' '/^ +[0-9a-f]+:\t/ {print $2 "\t" $3}' |
            sed -E 's/[0-9a-f]+ <[^>]*>//g; s@//.*@@' |
            grep -P '^(f[a-z0-9]*|movi|mvni|dup|ld[1-4]r?|st[1-4]|ins|umov|smov|cnt|addv|uaddlv|[su]cvtf)\b|\b[vqdshb]([0-9]|[12][0-9]|3[01])\b' || true ;;
    esac
}

fp=$(fp_insns | wc -l)
case $target in
x86_64-unknown-none | aarch64-unknown-none-softfloat)
    if [ "$fp" -ne 0 ]; then
        echo "FP/SIMD registers in the C objects for $target:"; fp_insns | head -20; exit 1
    fi
    regs="no FP/SIMD register" ;;
aarch64-unknown-none)
    regs="$fp FP/SIMD instructions (allowed here; proves the check sees them)" ;;
*)
    regs="lp64d" ;;
esac
echo "SHOW $target: $n C objects by $made_by, $machine, $regs; $linked"

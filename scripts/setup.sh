#!/usr/bin/env bash
# setup.sh GROUP...: install what a build step needs, once, saying what it
# installs.  Idempotent: a group whose tools are present costs nothing.
#
#   host     C compiler (with the ThreadSanitizer runtime), valgrind and
#            binutils' nm for the host test suite
#   riscv-c  riscv64 cross gcc, QEMU, OpenSBI (the C library and C kernel)
#   riscv    riscv-c, and a Rust toolchain that can build core/alloc for
#            riscv64gc-unknown-none-elf
#   cbindgen cbindgen, to regenerate and verify the hooks header
#   clang    clang with libFuzzer and the sanitizer runtimes
set -euo pipefail

need=()
want() { # want COMMAND-OR-PATH PACKAGE...
    local probe=$1; shift
    if [[ $probe == /* ]]; then [ -e "$probe" ] && return 0
    else command -v "$probe" >/dev/null 2>&1 && return 0; fi
    need+=("$@")
}

for group in "$@"; do
    case $group in
    host)
        want gcc gcc
        # The TSan runtime is a dependency of gcc on amd64; said here since
        # the tsan steps cannot run without it.
        libtsan=$(gcc -print-file-name=libtsan.so 2>/dev/null || true)
        want "/${libtsan#/}" libtsan2
        want make make
        want nm binutils
        want bc bc
        want valgrind valgrind
        ;;
    riscv-c)
        want riscv64-unknown-elf-gcc gcc-riscv64-unknown-elf
        want qemu-system-riscv64 qemu-system-misc
        want /usr/lib/riscv64-linux-gnu/opensbi/generic/fw_dynamic.bin opensbi
        ;;
    riscv)
        want riscv64-unknown-elf-gcc gcc-riscv64-unknown-elf
        want qemu-system-riscv64 qemu-system-misc
        want /usr/lib/riscv64-linux-gnu/opensbi/generic/fw_dynamic.bin opensbi
        # Debian's Rust builds core/alloc for the kernel target with
        # -Zbuild-std; not needed where rustup already has the target.
        installed=$(rustup target list --installed 2>/dev/null || true)
        if ! grep -qx riscv64gc-unknown-none-elf <<<"$installed"; then
            want /usr/bin/rustc rustc-web
            want /usr/bin/cargo cargo-web
            want /usr/lib/rustlib/src/rust/library/Cargo.lock rust-web-src
        fi
        ;;
    cbindgen)
        want cbindgen cbindgen
        ;;
    clang)
        want clang clang
        ;;
    *)
        echo "setup.sh: unknown group '$group'" >&2; exit 2 ;;
    esac
done

if [ ${#need[@]} -gt 0 ]; then
    # shellcheck disable=SC2207
    pkgs=($(printf '%s\n' "${need[@]}" | sort -u))
    echo "setup: installing ${pkgs[*]}"
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
fi

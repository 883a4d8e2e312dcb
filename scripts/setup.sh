#!/usr/bin/env bash
# setup.sh GROUP...: install what a build step needs, once, saying what it
# installs.  Idempotent: a group whose tools are present costs nothing.
#
#   host     C compiler (with the ThreadSanitizer runtime), valgrind and
#            binutils' nm for the host test suite
#   riscv-c  riscv64 cross gcc, QEMU, OpenSBI (the C library and C kernel)
#   riscv    riscv-c, and a Rust toolchain that can build core/alloc for
#            riscv64gc-unknown-none-elf
#   aarch64  aarch64 cross gcc and binutils, qemu-system-aarch64, and a Rust
#            toolchain that can build core/alloc for aarch64-unknown-none
#   cbindgen cbindgen, to regenerate and verify the hooks header
#   bindgen  bindgen (with libclang) and rustfmt, to regenerate and verify
#            the crate's Rust mirror of hartalloc.h (rust-shim/sys.rs)
#   clang    clang with libFuzzer and the sanitizer runtimes
#   targets  what mk/targets.mk needs: cross gcc and binutils for riscv64 and
#            aarch64, clang and llvm-ar (the fallback compiler), host
#            binutils, and Debian's Rust with its library sources
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
    aarch64)
        want aarch64-linux-gnu-gcc gcc-aarch64-linux-gnu
        want aarch64-linux-gnu-ld binutils-aarch64-linux-gnu
        want qemu-system-aarch64 qemu-system-arm
        installed=$(rustup target list --installed 2>/dev/null || true)
        if ! grep -qx aarch64-unknown-none <<<"$installed"; then
            want /usr/bin/rustc rustc-web
            want /usr/bin/cargo cargo-web
            want /usr/lib/rustlib/src/rust/library/Cargo.lock rust-web-src
        fi
        ;;
    cbindgen)
        want cbindgen cbindgen
        ;;
    bindgen)
        # Debian's bindgen (0.60) pulls in libclang; the committed file is
        # its output, so the check needs this one, not a newer bindgen-cli.
        want bindgen bindgen
        # bindgen formats its output with the rustfmt on PATH (rustup's).
        want rustfmt rustfmt
        ;;
    clang)
        want clang clang
        ;;
    targets)
        want gcc gcc
        want ld binutils
        want riscv64-unknown-elf-gcc gcc-riscv64-unknown-elf
        want riscv64-unknown-elf-objdump binutils-riscv64-unknown-elf
        want aarch64-linux-gnu-gcc gcc-aarch64-linux-gnu
        want aarch64-linux-gnu-objdump binutils-aarch64-linux-gnu
        want clang clang
        want llvm-ar llvm
        # core/alloc for each target from -Zbuild-std (check-target.sh uses
        # rustup's instead for a target rustup has; the steps span six
        # targets, so Debian's Rust is always wanted).
        want /usr/bin/rustc rustc-web
        want /usr/bin/cargo cargo-web
        want /usr/lib/rustlib/src/rust/library/Cargo.lock rust-web-src
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

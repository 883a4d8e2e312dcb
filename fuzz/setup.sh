#!/usr/bin/env bash
# fuzz/setup.sh: clang plus the libFuzzer and sanitizer runtimes.  Debian's
# clang only recommends libclang-rt-NN-dev (where libFuzzer lives), and
# scripts/setup.sh installs without recommends, so ask for it by name.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
"$top/scripts/setup.sh" clang
rt=$(clang --print-runtime-dir 2>/dev/null || true)
if [ -z "$rt" ] || [ ! -e "$rt/libclang_rt.fuzzer-x86_64.a" ] && [ ! -e "$rt/libclang_rt.fuzzer.a" ]; then
    major=$(clang -dumpversion | cut -d. -f1)
    echo "setup: installing libclang-rt-$major-dev (libFuzzer)"
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends "libclang-rt-$major-dev" >/dev/null
fi

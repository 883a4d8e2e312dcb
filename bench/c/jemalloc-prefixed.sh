#!/usr/bin/env bash
# jemalloc-prefixed.sh OUT.a: Debian's jemalloc as a static archive whose
# public names carry a bje_ prefix (bje_mallocx, bje_malloc, ...).
#
# Debian ships jemalloc unprefixed: linked normally it would replace the
# process's malloc, and dlopen() fails (its TLS is initial-exec: "cannot
# allocate memory in static TLS block").  Renaming the public symbols in
# the PIC archive leaves glibc's malloc in place and links jemalloc's
# TLS into the executable, where initial-exec is allowed.  The C++
# operators (jemalloc_cpp) are left out: the driver is C.
set -euo pipefail
out=$(realpath -m "$1")
src=/usr/lib/x86_64-linux-gnu/libjemalloc_pic.a
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
ar x "$src"
rm -f jemalloc_cpp.pic.o
# Public = defined, global, not in jemalloc's private je_ namespace and
# not reserved (leading underscore).
nm -g --defined-only ./*.o | awk 'NF == 3 { print $3 }' | grep -v -E '^(je_|_)' | sort -u |
    awk '{ print $1, "bje_" $1 }' >rename.map
for o in ./*.o; do objcopy --redefine-syms=rename.map "$o"; done
mkdir -p "$(dirname "$out")"
rm -f "$out"
ar rcs "$out" ./*.o
echo "jemalloc-prefixed: $(wc -l <rename.map) public symbols renamed bje_* in $out"

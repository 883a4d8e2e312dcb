#!/usr/bin/env bash
# setup.sh: what `make bench` needs beyond scripts/setup.sh host, installed
# once: the hosted peers (Debian's jemalloc and mimalloc) and Python's venv
# for the charts (matplotlib itself comes from PyPI into build/bench-venv).
set -euo pipefail
need=()
[ -e /usr/lib/x86_64-linux-gnu/libjemalloc_pic.a ] || need+=(libjemalloc-dev)
[ -e /usr/include/mimalloc.h ] || need+=(libmimalloc-dev)
python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)
command -v objcopy >/dev/null || need+=(binutils)
if [ ${#need[@]} -gt 0 ]; then
    echo "bench setup: installing ${need[*]}"
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

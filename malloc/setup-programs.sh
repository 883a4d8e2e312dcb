#!/usr/bin/env bash
# setup-programs.sh: install the Debian programs the malloc front end's tests
# run (python3, sqlite3, git, gcc, xz, zstd), once.  Idempotent, in the
# manner of scripts/setup.sh: nothing is installed when every tool is there.
# The tests name Debian's binaries in /usr/bin (not whatever PATH finds first:
# a pyenv shim or a locally built git is not the program under test).
set -euo pipefail

need=()
want() { # want PATH PACKAGE
    [ -e "$1" ] || need+=("$2")
}
want /usr/bin/python3 python3
want /usr/bin/sqlite3 sqlite3
want /usr/bin/git git
want /usr/bin/gcc gcc
want /usr/bin/xz xz-utils
want /usr/bin/zstd zstd
want /usr/bin/bc bc

if [ ${#need[@]} -gt 0 ]; then
    echo "setup: installing ${need[*]}"
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

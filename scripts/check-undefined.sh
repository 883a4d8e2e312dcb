#!/usr/bin/env bash
# The freestanding library may only depend on what hartalloc.h says the
# environment provides: the four mem* functions and the platform hooks.
set -euo pipefail
lib=$1
nm=${NM:-riscv64-unknown-elf-nm}
allowed='^(memcpy|memmove|memset|memcmp|ha_platform_cpu_id|ha_platform_irq_save|ha_platform_irq_restore|ha_platform_fatal)$'
undef=$($nm -u "$lib" | awk 'NF==2 && $1=="U" {print $2}' | sort -u)
defined=$($nm --defined-only "$lib" | awk 'NF==3 {print $3}' | sort -u)
bad=$(comm -23 <(echo "$undef") <(echo "$defined") | grep -Ev "$allowed" || true)
if [ -n "$bad" ]; then echo "libhartalloc.a needs symbols the environment does not provide:"; echo "$bad"; exit 1; fi
echo "undefined symbols: $(comm -23 <(echo "$undef") <(echo "$defined") | tr '\n' ' ')"

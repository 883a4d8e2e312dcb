/*
 * Proves that the hooks header cbindgen generates from the Rust crate
 * (hartalloc_hooks.h) and the C library's own declarations (hartalloc.h)
 * agree.  Both are included in one translation unit: any difference in a
 * hook's return or parameter types is a "conflicting types" error.  The
 * assertions below add what redeclaration does not catch: a hook that
 * cbindgen dropped (then only hartalloc.h declares it and the check of
 * the generated header would pass vacuously), and the exact types.
 *
 * Compiled by build.rs into every build of the crate, and by `make test`
 * (rust-header-matches-c) with the host and riscv64 compilers.
 */
#include "hartalloc.h"
#include "hartalloc_hooks.h"

#ifndef HARTALLOC_HOOKS_H
#error "hartalloc_hooks.h did not define its include guard"
#endif

#define HOOK_HAS_TYPE(fn, type) \
    _Static_assert(__builtin_types_compatible_p(__typeof__(fn), type), #fn " has the type of hartalloc.h")

HOOK_HAS_TYPE(ha_platform_cpu_id, unsigned(void));
HOOK_HAS_TYPE(ha_platform_irq_save, uintptr_t(void));
HOOK_HAS_TYPE(ha_platform_irq_restore, void(uintptr_t));
HOOK_HAS_TYPE(ha_platform_fatal, void(const char *, const void *));

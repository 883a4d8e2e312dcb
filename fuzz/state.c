/* Save and restore the allocator's static state: see state.h. */
#include "state.h"

#include <stdint.h>
#include <stdlib.h>

/* Defined by the linker for sections named like C identifiers. */
extern unsigned char __start_hartalloc_state_data[], __stop_hartalloc_state_data[];
extern unsigned char __start_hartalloc_state_bss[], __stop_hartalloc_state_bss[];

static unsigned char *saved_data, *saved_bss;

/* The sections hold ASan-instrumented globals with poisoned red zones
 * between them: copy the whole span without ASan's checks, and through
 * volatile so that the compiler does not turn the loop into a (checked)
 * memcpy call. */
__attribute__((no_sanitize("address")))
static void span_copy(unsigned char *dst, const unsigned char *src, size_t n)
{
    size_t i = 0;
    if ((uintptr_t)dst % 8 == 0 && (uintptr_t)src % 8 == 0) {
        volatile uint64_t *d = (volatile uint64_t *)(void *)dst;
        const volatile uint64_t *s = (const volatile uint64_t *)(const void *)src;
        for (; i + 8 <= n; i += 8)
            d[i / 8] = s[i / 8];
    }
    volatile unsigned char *db = dst;
    const volatile unsigned char *sb = src;
    for (; i < n; i++)
        db[i] = sb[i];
}

size_t state_save(void)
{
    size_t nd = (size_t)(__stop_hartalloc_state_data - __start_hartalloc_state_data);
    size_t nb = (size_t)(__stop_hartalloc_state_bss - __start_hartalloc_state_bss);
    saved_data = malloc(nd ? nd : 1);
    saved_bss = malloc(nb ? nb : 1);
    if (!saved_data || !saved_bss)
        abort();
    span_copy(saved_data, __start_hartalloc_state_data, nd);
    span_copy(saved_bss, __start_hartalloc_state_bss, nb);
    return nd + nb;
}

void state_restore(void)
{
    span_copy(__start_hartalloc_state_data, saved_data,
              (size_t)(__stop_hartalloc_state_data - __start_hartalloc_state_data));
    span_copy(__start_hartalloc_state_bss, saved_bss,
              (size_t)(__stop_hartalloc_state_bss - __start_hartalloc_state_bss));
}

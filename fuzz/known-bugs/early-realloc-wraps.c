/* ha_realloc(p, SIZE_MAX - k) of the newest early block succeeds in place:
 * early_resize_in_place rounds the size up to 16 and wraps to 0. */
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include "hartalloc.h"
int main(void) {
    char *area = mmap(0, 1 << 24, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0);
    ha_early_init(area, 1 << 20);
    void *p = ha_alloc(100, 16);
    void *q = ha_realloc(p, SIZE_MAX - 3, 16);
    printf("ha_realloc(p, SIZE_MAX - 3) = %p (p = %p), usable now %zu: expected NULL and p unchanged\n",
           q, p, ha_usable_size(p));
    return q != NULL;
}

#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include "hartalloc.h"
void ha_platform_fatal(const char *m, const void *a) { printf("FATAL %s at %p\n", m, a); exit(1); }
int main(int argc, char **argv) {
    char *area = mmap(0, 1 << 24, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0);
    char *base = (char *)(((unsigned long)area + 4095) & ~4095ul);
    ha_early_init(base, 1 << 20);
    if (argc > 1) { ha_add_region(base + (2 << 20), 8 << 20); ha_final_init(); }
    size_t al = argc > 2 ? strtoul(argv[2], 0, 0) : 1;
    void *p = ha_alloc(0, al);
    printf("p=%p usable %zu\n", p, ha_usable_size(p));
    ha_free_sized(p, 0, al);
    printf("freed ok\n");
    return 0;
}

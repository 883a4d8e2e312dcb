/* Write after free: a freed block's bytes overwritten, then the heap used. */
#include "probe.h"

int main(void)
{
    char *p = malloc(64);
    free(p);
    memset(launder(p), 'A', 64);
    probe_exercise();
    char *q = malloc(64), *r = malloc(64);
    free(q);
    free(r);
    return probe_survived("write to freed memory went unnoticed");
}

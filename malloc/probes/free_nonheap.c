/* Free of a pointer the allocator never handed out (a stack array). */
#include "probe.h"

int main(void)
{
    char local[64];
    memset(local, 0, sizeof local);
    free(launder(local + 16));
    probe_exercise();
    return probe_survived("free of a stack address accepted");
}

/* Free of an interior pointer: 16 bytes into a live block. */
#include "probe.h"

int main(void)
{
    char *p = malloc(64);
    free(launder(p + 16));
    probe_exercise();
    return probe_survived("interior free accepted");
}

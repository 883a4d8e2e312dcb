/* Double free: the same block freed twice. */
#include "probe.h"

int main(void)
{
    char *p = malloc(32);
    free(p);
    free(launder(p));
    probe_exercise();
    return probe_survived("second free accepted");
}

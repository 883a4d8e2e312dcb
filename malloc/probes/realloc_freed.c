/* realloc of a pointer already freed. */
#include "probe.h"

int main(void)
{
    char *p = malloc(48);
    free(p);
    char *q = realloc(launder(p), 100);
    probe_exercise();
    free(q);
    return probe_survived("realloc of a freed block accepted");
}

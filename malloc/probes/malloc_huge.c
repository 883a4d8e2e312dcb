/* An impossibly large malloc (SIZE_MAX - 7: header and red-zone arithmetic
 * would wrap): must fail cleanly and leave the heap usable. */
#include "probe.h"

int main(void)
{
    size_t n = launder_size(SIZE_MAX - 7);
    errno = 0;
    char *p = malloc(n);
    if (p) {
        printf("malloc(%zu) returned %p\n", n, (void *)p);
        return 3;
    }
    int e = errno;
    probe_exercise();
    return probe_survived(e == ENOMEM ? "NULL, errno ENOMEM" : "NULL, errno not ENOMEM");
}

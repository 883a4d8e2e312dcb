/* calloc whose n * size overflows: must fail, not hand out a small block. */
#include "probe.h"

int main(void)
{
    size_t n = launder_size(SIZE_MAX / 16 + 2);
    errno = 0;
    char *p = calloc(n, 16);
    if (p) {
        printf("calloc(%zu, 16) returned %p: a block far smaller than asked\n", n, (void *)p);
        return 3;
    }
    int e = errno;
    probe_exercise();
    return probe_survived(e == ENOMEM ? "NULL, errno ENOMEM" : "NULL, errno not ENOMEM");
}

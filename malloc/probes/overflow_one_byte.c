/* One-byte overflow: the classic off-by-one NUL, a 32-character string
 * copied into 32 bytes. */
#include "probe.h"

int main(void)
{
    char *p = malloc(32);
    strcpy(launder(p), "0123456789abcdef0123456789abcdef");
    free(p);
    probe_exercise();
    return probe_survived("byte past the block went unnoticed");
}

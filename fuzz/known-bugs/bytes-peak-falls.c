/* bytes_peak goes down: the sum of two CPUs' usage peaks while neither
 * CPU passes its own high-water mark, so nothing records the new peak. */
#include <stdio.h>
#include <sys/mman.h>
#include "hartalloc.h"
static unsigned cpu;
unsigned ha_platform_cpu_id(void) { return cpu; }
int main(void) {
    char *area = mmap(0, 1 << 24, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0);
    ha_add_region(area, 1 << 24); ha_final_init();
    struct ha_stats s;
    cpu = 1; ha_free(ha_alloc(16, 16));                      /* cpu 1 high-water mark: 16 */
    cpu = 0; void *a = ha_alloc(16, 16);
    cpu = 1; void *b = ha_alloc(16, 16);                     /* total 32, cpu 1 at 16: not above its mark */
    ha_get_stats(&s); printf("used %zu peak %zu\n", s.bytes_used, s.bytes_peak);
    ha_free(a); ha_free(b);
    ha_get_stats(&s); printf("used %zu peak %zu  <- peak fell below a bytes_used reported before\n", s.bytes_used, s.bytes_peak);
    return 0;
}

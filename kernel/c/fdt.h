/*
 * A small flattened-device-tree reader: what a kernel needs to start its
 * memory allocator and its harts, nothing more.  It never writes the blob
 * and never reads outside [dtb, dtb + totalsize).
 */
#ifndef KC_FDT_H
#define KC_FDT_H

#include <stdint.h>

#define FDT_MAX_MEM 8
#define FDT_MAX_RESV 16
#define FDT_MAX_HARTS 16

enum fdt_error {
    FDT_OK = 0,
    FDT_EMAGIC = -1,     /* not a DTB */
    FDT_EVERSION = -2,   /* older than v17, or incompatible */
    FDT_EHEADER = -3,    /* blocks outside totalsize, misaligned */
    FDT_ESTRUCT = -4,    /* bad token, truncated name or property, bad nesting */
    FDT_ECELLS = -5,     /* #address-cells > 2 or #size-cells > 2 where reg is read */
    FDT_ERESV_FULL = -6  /* more reserved ranges than FDT_MAX_RESV: unsafe to go on */
};

struct fdt_range {
    uint64_t base, size;
};

struct fdt_info {
    uint32_t totalsize;  /* bytes of the blob: reserve [dtb, dtb + totalsize) */
    uint32_t boot_cpuid; /* header's boot_cpuid_phys */
    unsigned n_mem;      /* /memory reg entries (device_type "memory", not disabled) */
    struct fdt_range mem[FDT_MAX_MEM];
    unsigned n_resv;     /* /memreserve/ entries and /reserved-memory children with reg */
    struct fdt_range resv[FDT_MAX_RESV];
    unsigned n_harts;    /* /cpus children with device_type "cpu", not disabled */
    uint64_t harts[FDT_MAX_HARTS];
    unsigned dropped;    /* memory or hart entries beyond the tables (ignored) */
    uint64_t timebase_hz;   /* /cpus timebase-frequency, 0 if absent */
    const char *bootargs;   /* /chosen bootargs (inside the blob) or "" */
    const void *rng_seed;   /* /chosen rng-seed (inside the blob), or NULL */
    uint32_t rng_seed_len;  /* its bytes */
};

/* Parse the blob at dtb.  FDT_OK or a negative fdt_error. */
int fdt_parse(const void *dtb, struct fdt_info *out);
const char *fdt_strerror(int err);

#endif /* KC_FDT_H */

/*
 * Flattened device tree (DTSpec v0.4, chapter 5) reader.
 *
 * The blob is big-endian and may sit at any 8-byte aligned address; every
 * field is read a byte at a time, and every offset is checked against the
 * block it must lie in before it is used, so a damaged blob yields an error,
 * never a wild read.
 *
 * Which cells apply where: a node's reg is decoded with #address-cells and
 * #size-cells of its parent (defaults 2 and 1), which the DTSpec requires
 * to come before the parent's subnodes; so the walk keeps one frame per
 * open node, and decodes a node's reg when the node ends (its own
 * device_type or status may follow reg).
 */
#include "fdt.h"

#include <stdbool.h>
#include <stddef.h>

#define FDT_MAGIC 0xd00dfeedu
#define FDT_HEADER_SIZE 40u
#define FDT_BEGIN_NODE 1u
#define FDT_END_NODE 2u
#define FDT_PROP 3u
#define FDT_NOP 4u
#define FDT_END 9u
/* Deep enough for any real tree; deeper blobs are refused. */
#define FDT_MAX_DEPTH 16

enum fdt_node_kind {
    NODE_OTHER,
    NODE_ROOT,
    NODE_MEMORY,     /* child of / named memory or memory@... */
    NODE_RESV_PARENT,
    NODE_RESV_CHILD,
    NODE_CPUS,
    NODE_CPU,        /* child of /cpus: a hart if device_type is "cpu" */
    NODE_CHOSEN
};

struct fdt_frame {
    enum fdt_node_kind kind;
    uint32_t addr_cells, size_cells; /* for this node's children */
    const uint8_t *reg;
    uint32_t reg_len;
    bool memory_type, cpu_type, disabled;
};

struct fdt_walk {
    const uint8_t *blob;
    uint32_t pos, end;              /* inside the structure block */
    const uint8_t *strings;
    uint32_t strings_size;
    struct fdt_info *out;
    int depth;                      /* -1: before the root node */
    struct fdt_frame frame[FDT_MAX_DEPTH];
};

static uint32_t fdt_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint32_t fdt_align4(uint32_t x)
{
    return (x + 3u) & ~3u;
}

static bool fdt_streq(const char *a, const char *b)
{
    while (*a && *a == *b) {
        a++;
        b++;
    }
    return *a == *b;
}

/* Does the property value (len bytes, normally NUL-terminated) equal s? */
static bool fdt_value_is(const uint8_t *v, uint32_t len, const char *s)
{
    uint32_t i = 0;
    for (; s[i]; i++)
        if (i >= len || v[i] != (uint8_t)s[i])
            return false;
    return i == len || (i + 1 == len && v[i] == 0);
}

/* Node name without its unit address equals s ("memory@80000000" is
 * "memory"). */
static bool fdt_name_is(const char *name, const char *s)
{
    while (*s && *name == *s) {
        name++;
        s++;
    }
    return *s == 0 && (*name == 0 || *name == '@');
}

/* Read `cells` 32-bit cells (0..2) at p as one number. */
static uint64_t fdt_cells(const uint8_t *p, uint32_t cells)
{
    uint64_t v = 0;
    for (uint32_t i = 0; i < cells; i++)
        v = v << 32 | fdt_be32(p + 4 * i);
    return v;
}

static int fdt_add_range(struct fdt_range *tab, unsigned *n, unsigned max, uint64_t base,
                         uint64_t size)
{
    if (*n >= max)
        return -1;
    tab[*n].base = base;
    tab[*n].size = size;
    (*n)++;
    return 0;
}

/* Decode a finished node's reg with its parent's cells. */
static int fdt_node_end(struct fdt_walk *w)
{
    struct fdt_frame *f = &w->frame[w->depth];
    if (w->depth == 0 || !f->reg)
        return FDT_OK;
    const struct fdt_frame *parent = &w->frame[w->depth - 1];
    bool memory = w->depth == 1 && (f->kind == NODE_MEMORY || f->memory_type) && !f->disabled;
    /* A reserved-memory child is honoured even when disabled: reserving too
     * much is safe, handing out firmware memory is not. */
    bool resv = f->kind == NODE_RESV_CHILD;
    bool hart = f->kind == NODE_CPU && f->cpu_type && !f->disabled;
    if (!memory && !resv && !hart)
        return FDT_OK;

    uint32_t ac = parent->addr_cells, sc = parent->size_cells;
    if (ac == 0 || ac > 2 || sc > 2)
        return FDT_ECELLS;
    uint32_t entry = 4 * (ac + sc);
    if (f->reg_len % entry)
        return FDT_ESTRUCT;
    struct fdt_info *out = w->out;
    for (uint32_t off = 0; off < f->reg_len; off += entry) {
        uint64_t base = fdt_cells(f->reg + off, ac);
        uint64_t size = fdt_cells(f->reg + off + 4 * ac, sc);
        if (hart) {
            if (out->n_harts < FDT_MAX_HARTS)
                out->harts[out->n_harts++] = base;
            else
                out->dropped++;
            break; /* a hart's reg: its id first, any more entries are threads */
        }
        if (size == 0)
            continue;
        if (memory) {
            if (fdt_add_range(out->mem, &out->n_mem, FDT_MAX_MEM, base, size))
                out->dropped++;
        } else if (fdt_add_range(out->resv, &out->n_resv, FDT_MAX_RESV, base, size)) {
            return FDT_ERESV_FULL;
        }
    }
    return FDT_OK;
}

static int fdt_node_begin(struct fdt_walk *w, const char *name)
{
    if (++w->depth >= FDT_MAX_DEPTH)
        return FDT_ESTRUCT;
    struct fdt_frame *f = &w->frame[w->depth];
    *f = (struct fdt_frame){ .kind = NODE_OTHER, .addr_cells = 2, .size_cells = 1 };
    if (w->depth == 0) {
        f->kind = NODE_ROOT;
        return FDT_OK;
    }
    enum fdt_node_kind parent = w->frame[w->depth - 1].kind;
    if (parent == NODE_ROOT) {
        if (fdt_name_is(name, "memory"))
            f->kind = NODE_MEMORY;
        else if (fdt_streq(name, "reserved-memory"))
            f->kind = NODE_RESV_PARENT;
        else if (fdt_streq(name, "cpus"))
            f->kind = NODE_CPUS;
        else if (fdt_name_is(name, "chosen"))
            f->kind = NODE_CHOSEN;
    } else if (parent == NODE_RESV_PARENT) {
        f->kind = NODE_RESV_CHILD;
    } else if (parent == NODE_CPUS) {
        f->kind = NODE_CPU;
    }
    return FDT_OK;
}

static void fdt_node_prop(struct fdt_walk *w, const char *name, const uint8_t *v, uint32_t len)
{
    struct fdt_frame *f = &w->frame[w->depth];
    if (fdt_streq(name, "#address-cells") && len == 4)
        f->addr_cells = fdt_be32(v);
    else if (fdt_streq(name, "#size-cells") && len == 4)
        f->size_cells = fdt_be32(v);
    else if (fdt_streq(name, "reg")) {
        f->reg = v;
        f->reg_len = len;
    } else if (fdt_streq(name, "device_type")) {
        f->memory_type = fdt_value_is(v, len, "memory");
        f->cpu_type = fdt_value_is(v, len, "cpu");
    } else if (fdt_streq(name, "status")) {
        f->disabled = !fdt_value_is(v, len, "okay") && !fdt_value_is(v, len, "ok");
    } else if (fdt_streq(name, "timebase-frequency") && (len == 4 || len == 8) &&
               (f->kind == NODE_CPUS || (f->kind == NODE_CPU && w->out->timebase_hz == 0))) {
        w->out->timebase_hz = fdt_cells(v, len / 4);
    } else if (fdt_streq(name, "bootargs") && f->kind == NODE_CHOSEN && len > 0 && v[len - 1] == 0) {
        w->out->bootargs = (const char *)v;
    } else if (fdt_streq(name, "rng-seed") && f->kind == NODE_CHOSEN && len > 0) {
        w->out->rng_seed = v;
        w->out->rng_seed_len = len;
    }
}

static int fdt_walk_struct(struct fdt_walk *w)
{
    for (;;) {
        if (w->end - w->pos < 4)
            return FDT_ESTRUCT;
        uint32_t tok = fdt_be32(w->blob + w->pos);
        w->pos += 4;
        switch (tok) {
        case FDT_BEGIN_NODE: {
            const char *name = (const char *)w->blob + w->pos;
            uint32_t n = 0;
            while (w->pos + n < w->end && name[n])
                n++;
            if (w->pos + n >= w->end)
                return FDT_ESTRUCT;
            w->pos = fdt_align4(w->pos + n + 1);
            if (w->pos > w->end)
                return FDT_ESTRUCT;
            int err = fdt_node_begin(w, name);
            if (err)
                return err;
            break;
        }
        case FDT_END_NODE: {
            if (w->depth < 0)
                return FDT_ESTRUCT;
            int err = fdt_node_end(w);
            if (err)
                return err;
            w->depth--;
            break;
        }
        case FDT_PROP: {
            if (w->depth < 0 || w->end - w->pos < 8)
                return FDT_ESTRUCT;
            uint32_t len = fdt_be32(w->blob + w->pos);
            uint32_t nameoff = fdt_be32(w->blob + w->pos + 4);
            w->pos += 8;
            if (len > w->end - w->pos || nameoff >= w->strings_size)
                return FDT_ESTRUCT;
            const char *name = (const char *)w->strings + nameoff;
            uint32_t n = 0;
            while (nameoff + n < w->strings_size && name[n])
                n++;
            if (nameoff + n >= w->strings_size)
                return FDT_ESTRUCT;
            fdt_node_prop(w, name, w->blob + w->pos, len);
            w->pos = fdt_align4(w->pos + len);
            if (w->pos > w->end)
                return FDT_ESTRUCT;
            break;
        }
        case FDT_NOP:
            break;
        case FDT_END:
            return w->depth == -1 ? FDT_OK : FDT_ESTRUCT;
        default:
            return FDT_ESTRUCT;
        }
    }
}

/* The memory reservation block: (address, size) pairs of 64-bit numbers,
 * ended by a pair of zeros. */
static int fdt_walk_rsvmap(const uint8_t *blob, uint32_t off, uint32_t limit, struct fdt_info *out)
{
    for (;; off += 16) {
        if (limit - off < 16)
            return FDT_EHEADER;
        uint64_t base = fdt_cells(blob + off, 2), size = fdt_cells(blob + off + 8, 2);
        if (base == 0 && size == 0)
            return FDT_OK;
        if (size && fdt_add_range(out->resv, &out->n_resv, FDT_MAX_RESV, base, size))
            return FDT_ERESV_FULL;
    }
}

int fdt_parse(const void *dtb, struct fdt_info *out)
{
    const uint8_t *blob = dtb;
    *out = (struct fdt_info){ .bootargs = "" };
    if (!blob || ((uintptr_t)blob & 3) || fdt_be32(blob) != FDT_MAGIC)
        return FDT_EMAGIC;
    uint32_t totalsize = fdt_be32(blob + 4);
    uint32_t off_struct = fdt_be32(blob + 8), off_strings = fdt_be32(blob + 12);
    uint32_t off_rsvmap = fdt_be32(blob + 16), version = fdt_be32(blob + 20);
    uint32_t last_comp = fdt_be32(blob + 24);
    uint32_t size_strings = fdt_be32(blob + 32), size_struct = fdt_be32(blob + 36);
    /* v17 added size_dt_struct, which the walk relies on for its bounds. */
    if (version < 17 || last_comp > 17)
        return FDT_EVERSION;
    if (totalsize < FDT_HEADER_SIZE || off_struct < FDT_HEADER_SIZE || (off_struct & 3) ||
        off_struct > totalsize || size_struct > totalsize - off_struct ||
        off_strings > totalsize || size_strings > totalsize - off_strings ||
        off_rsvmap < FDT_HEADER_SIZE || (off_rsvmap & 7) || off_rsvmap > totalsize)
        return FDT_EHEADER;
    out->totalsize = totalsize;
    out->boot_cpuid = fdt_be32(blob + 28);

    int err = fdt_walk_rsvmap(blob, off_rsvmap, totalsize, out);
    if (err)
        return err;
    struct fdt_walk w = {
        .blob = blob,
        .pos = off_struct,
        .end = off_struct + size_struct,
        .strings = blob + off_strings,
        .strings_size = size_strings,
        .out = out,
        .depth = -1,
    };
    return fdt_walk_struct(&w);
}

const char *fdt_strerror(int err)
{
    switch (err) {
    case FDT_OK: return "ok";
    case FDT_EMAGIC: return "bad magic (not a device tree)";
    case FDT_EVERSION: return "unsupported version";
    case FDT_EHEADER: return "header blocks out of bounds";
    case FDT_ESTRUCT: return "structure block damaged";
    case FDT_ECELLS: return "unsupported #address-cells/#size-cells";
    case FDT_ERESV_FULL: return "too many reserved ranges";
    default: return "unknown error";
    }
}

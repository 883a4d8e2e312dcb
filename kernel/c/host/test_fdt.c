/*
 * Host test of the kernel's FDT reader (fdt.c), run under ASan+UBSan:
 * trees built here cover the cases QEMU's tree does not (cells 1/1,
 * several ranges, disabled nodes, /memreserve/, a memory node found by
 * device_type), and every single-byte corruption of a tree must give an
 * error or a result, never a read outside the blob.  With an argument, it
 * also reads that DTB (dumped by QEMU) and prints what it found.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../fdt.h"

static int failures;
#define EXPECT(cond)                                                                    \
    do {                                                                                \
        if (!(cond)) {                                                                  \
            fprintf(stderr, "%s:%d: expected %s\n", __FILE__, __LINE__, #cond);       \
            failures++;                                                                 \
        }                                                                               \
    } while (0)

/* ---- a minimal FDT writer ---- */
struct fdtw {
    unsigned char st[4096], str[1024];
    size_t nst, nstr;
    unsigned long long rsv[8][2];
    int nrsv;
};

static void put32(unsigned char *p, unsigned v)
{
    p[0] = v >> 24;
    p[1] = v >> 16;
    p[2] = v >> 8;
    p[3] = v;
}

static void st32(struct fdtw *w, unsigned v)
{
    put32(w->st + w->nst, v);
    w->nst += 4;
}

static void begin(struct fdtw *w, const char *name)
{
    st32(w, 1);
    size_t n = strlen(name) + 1;
    memcpy(w->st + w->nst, name, n);
    w->nst += (n + 3) & ~(size_t)3;
}

static void end(struct fdtw *w) { st32(w, 2); }

static void prop(struct fdtw *w, const char *name, const void *v, size_t len)
{
    st32(w, 3);
    st32(w, (unsigned)len);
    st32(w, (unsigned)w->nstr);
    memcpy(w->str + w->nstr, name, strlen(name) + 1);
    w->nstr += strlen(name) + 1;
    memcpy(w->st + w->nst, v, len);
    w->nst += (len + 3) & ~(size_t)3;
}

static void prop_cells(struct fdtw *w, const char *name, int n, const unsigned *cells)
{
    unsigned char buf[64];
    for (int i = 0; i < n; i++)
        put32(buf + 4 * i, cells[i]);
    prop(w, name, buf, 4 * (size_t)n);
}

static void prop_str(struct fdtw *w, const char *name, const char *s)
{
    prop(w, name, s, strlen(s) + 1);
}

/* Lay the blob out: header, rsvmap, structure, strings.  Caller frees. */
static unsigned char *finish(struct fdtw *w, size_t *size)
{
    st32(w, 9);
    size_t off_rsv = 40, off_st = off_rsv + 16 * (w->nrsv + 1), off_str = off_st + w->nst;
    size_t total = off_str + w->nstr;
    unsigned char *b = calloc(1, total);
    put32(b, 0xd00dfeed);
    put32(b + 4, total);
    put32(b + 8, off_st);
    put32(b + 12, off_str);
    put32(b + 16, off_rsv);
    put32(b + 20, 17);
    put32(b + 24, 16);
    put32(b + 32, w->nstr);
    put32(b + 36, w->nst);
    for (int i = 0; i < w->nrsv; i++)
        for (int k = 0; k < 2; k++) {
            put32(b + off_rsv + 16 * i + 8 * k, w->rsv[i][k] >> 32);
            put32(b + off_rsv + 16 * i + 8 * k + 4, (unsigned)w->rsv[i][k]);
        }
    memcpy(b + off_st, w->st, w->nst);
    memcpy(b + off_str, w->str, w->nstr);
    *size = total;
    return b;
}

/* A tree with 32-bit cells at the root, two memory nodes (one found only by
 * device_type), a disabled one, reserved-memory with 2/2 cells, three cpus
 * (one disabled), /memreserve/ and bootargs. */
static unsigned char *build_tree(size_t *size)
{
    static struct fdtw w;
    memset(&w, 0, sizeof w);
    w.rsv[0][0] = 0x40001000;
    w.rsv[0][1] = 0x2000;
    w.nrsv = 1;
    begin(&w, "");
    prop_cells(&w, "#address-cells", 1, (unsigned[]){ 1 });
    prop_cells(&w, "#size-cells", 1, (unsigned[]){ 1 });
    begin(&w, "chosen");
    prop_str(&w, "bootargs", "double-free quiet");
    end(&w);
    begin(&w, "memory@40000000");
    prop_cells(&w, "reg", 4, (unsigned[]){ 0x40000000, 0x08000000, 0x50000000, 0x01000000 });
    prop_str(&w, "device_type", "memory");
    end(&w);
    begin(&w, "ram@60000000"); /* memory by device_type only */
    prop_str(&w, "device_type", "memory");
    prop_cells(&w, "reg", 2, (unsigned[]){ 0x60000000, 0x00100000 });
    end(&w);
    begin(&w, "memory@70000000"); /* disabled: not RAM */
    prop_cells(&w, "reg", 2, (unsigned[]){ 0x70000000, 0x00100000 });
    prop_str(&w, "status", "disabled");
    end(&w);
    begin(&w, "reserved-memory");
    prop_cells(&w, "#address-cells", 1, (unsigned[]){ 2 });
    prop_cells(&w, "#size-cells", 1, (unsigned[]){ 2 });
    prop(&w, "ranges", "", 0);
    begin(&w, "fw@40000000");
    prop_cells(&w, "reg", 4, (unsigned[]){ 0, 0x40000000, 0, 0x80000 });
    prop(&w, "no-map", "", 0);
    end(&w);
    begin(&w, "dyn"); /* no reg: nothing to reserve */
    prop_cells(&w, "size", 2, (unsigned[]){ 0, 0x1000 });
    end(&w);
    end(&w);
    begin(&w, "cpus");
    prop_cells(&w, "#address-cells", 1, (unsigned[]){ 1 });
    prop_cells(&w, "#size-cells", 1, (unsigned[]){ 0 });
    prop_cells(&w, "timebase-frequency", 1, (unsigned[]){ 1000000 });
    static const unsigned ids[] = { 0, 5, 9 };
    for (int i = 0; i < 3; i++) {
        char name[16];
        snprintf(name, sizeof name, "cpu@%u", ids[i]);
        begin(&w, name);
        prop_cells(&w, "reg", 1, &ids[i]);
        prop_str(&w, "device_type", "cpu");
        if (i == 2)
            prop_str(&w, "status", "disabled");
        end(&w);
    }
    end(&w);
    end(&w);
    return finish(&w, size);
}

static void test_built_tree(void)
{
    size_t size;
    unsigned char *b = build_tree(&size);
    struct fdt_info fi;
    EXPECT(fdt_parse(b, &fi) == FDT_OK);
    EXPECT(fi.totalsize == size);
    EXPECT(fi.n_mem == 3);
    EXPECT(fi.mem[0].base == 0x40000000 && fi.mem[0].size == 0x08000000);
    EXPECT(fi.mem[1].base == 0x50000000 && fi.mem[1].size == 0x01000000);
    EXPECT(fi.mem[2].base == 0x60000000 && fi.mem[2].size == 0x00100000);
    EXPECT(fi.n_resv == 2);
    EXPECT(fi.resv[0].base == 0x40001000 && fi.resv[0].size == 0x2000);
    EXPECT(fi.resv[1].base == 0x40000000 && fi.resv[1].size == 0x80000);
    EXPECT(fi.n_harts == 2 && fi.harts[0] == 0 && fi.harts[1] == 5);
    EXPECT(fi.timebase_hz == 1000000);
    EXPECT(strcmp(fi.bootargs, "double-free quiet") == 0);

    /* Every single-byte change past totalsize's field: an error or a
     * result, and (ASan) no read outside the blob. */
    unsigned long ok = 0, err = 0;
    for (size_t i = 0; i < size; i++) {
        if (i >= 4 && i < 8)
            continue; /* a larger totalsize would claim memory we do not own */
        static const unsigned char flips[] = { 0x01, 0x80, 0xFF };
        for (int f = 0; f < 3; f++) {
            unsigned char *c = malloc(size);
            memcpy(c, b, size);
            c[i] ^= flips[f];
            if (fdt_parse(c, &fi) == FDT_OK)
                ok++;
            else
                err++;
            EXPECT(fi.n_mem <= FDT_MAX_MEM && fi.n_resv <= FDT_MAX_RESV && fi.n_harts <= FDT_MAX_HARTS);
            free(c);
        }
    }
    /* Truncations: totalsize says less than the blocks need. */
    for (size_t t = 0; t < size; t++) {
        unsigned char *c = malloc(size);
        memcpy(c, b, size);
        put32(c + 4, (unsigned)t);
        EXPECT(fdt_parse(c, &fi) != FDT_OK || t >= size);
        free(c);
    }
    printf("built tree: %zu bytes parsed; %lu corruptions accepted, %lu refused, no stray read\n",
           size, ok, err);
    free(b);
}

static void test_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    EXPECT(f != NULL);
    if (!f)
        return;
    static unsigned char buf[1 << 20] __attribute__((aligned(8)));
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    struct fdt_info fi;
    int r = fdt_parse(buf, &fi);
    EXPECT(r == FDT_OK);
    EXPECT(fi.totalsize <= n); /* the dump may be padded */
    printf("%s: %s, %u bytes, %u memory range(s), %u reserved, %u hart(s)\n", path,
           fdt_strerror(r), fi.totalsize, fi.n_mem, fi.n_resv, fi.n_harts);
    for (unsigned i = 0; i < fi.n_mem; i++)
        printf("  memory %#llx + %#llx\n", (unsigned long long)fi.mem[i].base,
               (unsigned long long)fi.mem[i].size);
    EXPECT(fi.n_mem >= 1 && fi.n_harts >= 1);
}

int main(int argc, char **argv)
{
    test_built_tree();
    for (int i = 1; i < argc; i++)
        test_file(argv[i]);
    printf("%s\n", failures ? "FAILED" : "all fdt checks passed");
    return failures != 0;
}

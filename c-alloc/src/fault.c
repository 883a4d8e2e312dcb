/*
 * The bottom of the core: what every module may call and that calls no
 * module back.  Fault reporting (ha_fault and its messages), the first
 * inconsistency a checker found (check_fail, ha_check_message), and the
 * per-boot secret that keys the words kept inside freed memory.
 *
 * Layers, lowest first (scripts/check-layers.sh holds this order and fails
 * the build when an object needs a symbol from a module above it):
 *   fault, hooks -> page -> early, frame, slab, tlsf -> facade
 */
#include "ha_internal.h"

/* ------------------------------------------------------------- faults */

static const char *const fault_text[FAULT_COUNT] = {
    [FAULT_NONE] = "hartalloc: no fault",
    [FAULT_DOUBLE_FREE] = "hartalloc: double free (block already freed)",
    [FAULT_NOT_ALLOCATED] = "hartalloc: free of a pointer that is not a live block",
    [FAULT_INTERIOR] = "hartalloc: free of an interior pointer (not the start of a block)",
    [FAULT_FOREIGN] = "hartalloc: free of a pointer hartalloc never handed out",
    [FAULT_PAGES_NOT_BYTES] = "hartalloc: byte free of pages from ha_alloc_pages",
    [FAULT_BYTES_NOT_PAGES] = "hartalloc: ha_free_pages of memory that belongs to the byte allocator",
    [FAULT_RESERVED] = "hartalloc: ha_free_pages of reserved or metadata pages",
    [FAULT_SIZE_MISMATCH] = "hartalloc: ha_free_sized size does not match the block",
    [FAULT_ALIGN_MISMATCH] = "hartalloc: ha_free_sized alignment does not match the block",
    [FAULT_UNALIGNED] = "hartalloc: ha_free_pages of a pointer or count that is not whole pages",
    [FAULT_CORRUPT] = "hartalloc: heap metadata corrupted",
    [FAULT_OVERFLOW] = "hartalloc: heap buffer overflow (red zone past the block written)",
    [FAULT_USE_AFTER_FREE] = "hartalloc: write to freed memory (use after free)",
    [FAULT_BAD_CPU] = "hartalloc: per-CPU state corrupted",
};

_Noreturn void ha_fault(enum ha_fault fault, const void *addr)
{
    const char *msg = (unsigned)fault < FAULT_COUNT ? fault_text[fault] : fault_text[FAULT_CORRUPT];
    ha_platform_fatal(msg, addr);
    for (;;) /* a platform hook that returns gets no second chance */
        ha_cpu_relax();
}

/* ------------------------------------------------------------ checking */

static const char *check_what;
static const void *check_addr;
static char check_text[160];

int check_fail(const char *what, const void *addr)
{
    if (!check_what) {
        check_what = what;
        check_addr = addr;
    }
    return -1;
}

static void text_append(char **at, const char *end, const char *s)
{
    while (*s && *at < end)
        *(*at)++ = *s++;
}

const char *ha_check_message(void)
{
    if (!check_what)
        return "consistent";
    char *at = check_text, *end = check_text + sizeof check_text - 1;
    text_append(&at, end, check_what);
    text_append(&at, end, " at 0x");
    uintptr_t a = (uintptr_t)check_addr;
    for (int shift = (int)sizeof a * 8 - 4; shift >= 0; shift -= 4) {
        char digit[2] = { "0123456789abcdef"[(a >> shift) & 15], 0 };
        text_append(&at, end, digit);
    }
    *at = 0;
    return check_text;
}

void check_reset(void)
{
    check_what = 0;
    check_addr = 0;
}

const char *check_first(const void **addr)
{
    *addr = check_addr;
    return check_what;
}

/* ---------------------------------------------------------------- secret */
/*
 * Every word the allocator keeps inside memory it does not own any more
 * (free tags of small objects and frames, TLSF links and check words) is
 * keyed with ha_secret, so that a stray write that knows the layout still
 * cannot forge one.  ha_seed() mixes the platform's
 * entropy in before the heap starts (e.g. the device tree's
 * /chosen/rng-seed); without it the fixed fallback below is used, which
 * still catches every accidental write but not a deliberate forgery.
 */
uint64_t ha_secret = 0x6A09E667F3BCC909ull; /* sqrt(2) fraction: no hidden structure */
/* The slab headers' key, derived from the secret (sqrt(3) fraction until
 * seeded): a domain of its own, so that a header's check word, which is
 * plain address-plus-class XOR this key (three instructions to test), is
 * not related to any free tag, which adds ha_secret. */
uint64_t ha_slab_key = 0xBB67AE8584CAA73Bull;
/* The free tags' keys (slab objects, frames), each a domain of its own
 * derived from the secret: a tag is the address XOR its key, one load and
 * one XOR to make.  Bits 63 and 62 differ from each other in a key (10),
 * so that a tag is never a canonical address (their top bits agree) and
 * live pointers rarely equal one by chance.  Until seeded: fractions of
 * sqrt(5) and sqrt(7) with those two bits set so. */
uint64_t ha_tag_key = 0xBC6EF372FE94F82Bull;
uint64_t ha_frame_tag_key = 0xA54FF53A5F1D36F1ull;
/* The keys of TLSF's check words, of a used block's header and a free
 * one's (indexed by the size word's free bit), each derived from the
 * secret: a check word is one multiply, a load and two XORs.  Until
 * seeded: two fixed words, each XOR the fallback secret. */
uint64_t ha_check_keys[2] = {0x7C3A5E9D1B2F4861ull ^ 0x6A09E667F3BCC909ull,
                             0xA4D2E61F37C95B0Eull ^ 0x6A09E667F3BCC909ull};

/* splitmix64's finaliser: every input bit reaches every output bit. */
static uint64_t secret_mix(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xBF58476D1CE4E5B9ull;
    x ^= x >> 27;
    x *= 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

/* A free tag's key from a mixed word: bit 63 set, bit 62 clear. */
static uint64_t tag_key(uint64_t x)
{
    return (x | (1ull << 63)) & ~(1ull << 62);
}

void secret_seed(const unsigned char *bytes, size_t len)
{
    uint64_t s = ha_secret;
    for (size_t i = 0; i < len; i += 8) {
        uint64_t w = 0;
        for (size_t k = 0; k < 8 && i + k < len; k++)
            w |= (uint64_t)bytes[i + k] << (8 * k);
        s = secret_mix(s ^ w) + 0x9E3779B97F4A7C15ull;
    }
    s = secret_mix(s ^ len);
    /* Bit 0 clear and a high bit set keep keyed links odd-looking
     * (never a plausible aligned pointer when left unkeyed by mistake). */
    ha_secret = (s | (1ull << 63)) & ~1ull;
    ha_slab_key = secret_mix(ha_secret ^ 0x51AB0C0DE5EEDull);
    ha_tag_key = tag_key(secret_mix(ha_secret ^ 0x7A6F0B1EC7ull));
    ha_frame_tag_key = tag_key(secret_mix(ha_secret ^ 0xF4A3E5CAC4EDull));
    ha_check_keys[0] = secret_mix(ha_secret ^ 0xC4EC05EDull);
    ha_check_keys[1] = secret_mix(ha_secret ^ 0xC4EC0F8EEull);
}

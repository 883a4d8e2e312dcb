/*
 * Where the front end's memory comes from, and the process events around it.
 *
 * The heap is the core exactly as a kernel runs it: regions added, then
 * ha_final_init.  A process has no RAM map, so regions are anonymous
 * mappings (MAP_NORESERVE: only the pages touched cost memory), read as zero
 * (HA_REGION_ZEROED spares calloc the clearing of fresh pages).  The first
 * chunk is mapped at start-up; later ones through the core's OOM hook when a
 * request finds no room, each at least twice the last (up to
 * CHUNK_GROWTH_MAX) so that the core's HA_MAX_REGIONS slots last.
 *
 * Start-up is lazy and thread-safe: the first malloc (often from the dynamic
 * loader or libc, before any constructor) or the constructor starts the heap.
 * Nothing on that path allocates: mmap, the core's life-cycle calls, getenv.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "front.h"

#define MIB (1ull << 20)
#define CHUNK_FIRST (64 * MIB)
#define CHUNK_GROWTH_MAX (4096 * MIB)
/* A region keeps 3 bits of metadata per page inside itself, a dedicated
 * block adds its arena header: the slack a chunk needs beyond the request. */
#define CHUNK_SLACK (2 * MIB)
/* Nothing a process asks for is larger: refuse before mmap is asked for
 * an absurd size (a 47-bit address space). */
#define CHUNK_LIMIT (1ull << 45)

atomic_int front_state;

/* Serialises growth: one thread maps while the others wait and retry. */
static pthread_mutex_t grow_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_uint grow_generation;
static unsigned long long chunk_next = CHUNK_FIRST;
static atomic_ullong mapped_bytes;
static atomic_uint mapped_chunks;
/* HARTALLOC_STATS: unset or "0" nothing; a path starting with '/': the
 * line is appended to that file (a test counts the processes); else stderr. */
static const char *stats_dest;

/* Map len bytes and give them to the core; 0 on success. */
static int chunk_add(unsigned long long len)
{
    void *p = mmap(NULL, (size_t)len, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED)
        return -1;
    if (ha_add_region_flags(p, (size_t)len, HA_REGION_ZEROED) != HA_OK) {
        munmap(p, (size_t)len);
        return -1;
    }
    atomic_fetch_add_explicit(&mapped_bytes, len, memory_order_relaxed);
    atomic_fetch_add_explicit(&mapped_chunks, 1, memory_order_relaxed);
    return 0;
}

/* The core's OOM hook: map a chunk that fits the request and ask for a
 * retry.  Called without allocator locks held. */
static int heap_grow(size_t bytes, size_t align)
{
    unsigned seen = atomic_load_explicit(&grow_generation, memory_order_acquire);
    if (bytes > CHUNK_LIMIT || align > CHUNK_LIMIT)
        return 0;
    unsigned long long need = (unsigned long long)bytes + align + bytes / 1024 + CHUNK_SLACK;
    need = (need + 2 * MIB - 1) & ~(2 * MIB - 1);

    pthread_mutex_lock(&grow_lock);
    int retry = 1;
    /* Another thread grew the heap while this one waited: try that first. */
    if (atomic_load_explicit(&grow_generation, memory_order_relaxed) == seen) {
        unsigned long long len = need > chunk_next ? need : chunk_next;
        if (chunk_add(len) == 0) {
            if (chunk_next < CHUNK_GROWTH_MAX)
                chunk_next *= 2;
            atomic_fetch_add_explicit(&grow_generation, 1, memory_order_release);
        } else {
            retry = 0;
        }
    }
    pthread_mutex_unlock(&grow_lock);
    return retry;
}

static void heap_fatal(const char *what)
{
    struct front_line l = { .len = 0 };
    line_str(&l, "hartalloc: ");
    line_str(&l, what);
    line_str(&l, "\n");
    line_write(&l, 2);
    abort();
}

static void heap_start(void)
{
    const char *s = getenv("HARTALLOC_STATS");
    if (s && s[0] && strcmp(s, "0") != 0)
        stats_dest = s;
    /* Under a tight RLIMIT_AS a smaller first chunk still starts the heap;
     * the OOM hook grows it from there. */
    unsigned long long len = CHUNK_FIRST;
    while (chunk_add(len) != 0) {
        if (len <= MIB)
            heap_fatal("cannot map the first heap chunk");
        len /= 2;
    }
    if (ha_final_init() != HA_OK)
        heap_fatal("ha_final_init failed");
    ha_set_oom_handler(heap_grow);
}

void front_start(void)
{
    int expected = FRONT_NONE;
    if (atomic_compare_exchange_strong_explicit(&front_state, &expected, FRONT_STARTING,
                                                memory_order_acq_rel, memory_order_acquire)) {
        heap_start();
        atomic_store_explicit(&front_state, FRONT_READY, memory_order_release);
        return;
    }
    while (atomic_load_explicit(&front_state, memory_order_acquire) != FRONT_READY)
        sched_yield();
}

/* ------------------------------------------------------------- fork */
/*
 * fork copies the heap with whatever locks other threads held at that
 * instant.  The prepare handler takes them all (growth lock first: the OOM
 * hook takes allocator locks inside it), so the child starts with a quiet
 * heap.  Registered from the constructor, so it runs after the prepare
 * handlers of libraries loaded later (which may still allocate).
 */
static void fork_prepare(void)
{
    pthread_mutex_lock(&grow_lock);
    ha_fork_prepare();
}

static void fork_parent(void)
{
    ha_fork_parent();
    pthread_mutex_unlock(&grow_lock);
}

static void fork_child(void)
{
    ha_fork_child();
    pthread_mutex_init(&grow_lock, NULL);
}

/* ------------------------------------------------------- statistics */

static void stats_field(struct front_line *l, const char *name, unsigned long long v)
{
    line_str(l, " ");
    line_str(l, name);
    line_str(l, "=");
    line_dec(l, v);
}

/* HARTALLOC_STATS: one line per process at exit, proof that the program
 * ran on hartalloc, and a full heap walk of what it left behind. */
static void stats_print(void)
{
    struct ha_stats st;
    ha_get_stats(&st);
    int rc = ha_check();
    struct front_line l = { .len = 0 };
    line_str(&l, "hartalloc-stats: pid=");
    line_dec(&l, (unsigned long long)getpid());
    stats_field(&l, "allocs", st.allocs);
    stats_field(&l, "frees", st.frees);
    stats_field(&l, "failures", st.failures);
    stats_field(&l, "bytes_used", st.bytes_used);
    stats_field(&l, "bytes_peak", st.bytes_peak);
    stats_field(&l, "pages_used", st.pages_used);
    stats_field(&l, "pages_peak", st.pages_peak);
    stats_field(&l, "chunks", atomic_load_explicit(&mapped_chunks, memory_order_relaxed));
    stats_field(&l, "mapped", atomic_load_explicit(&mapped_bytes, memory_order_relaxed));
    line_str(&l, " check=");
    line_str(&l, rc == 0 ? "ok" : ha_check_message());
    line_str(&l, "\n");
    int fd = 2;
    if (stats_dest[0] == '/')
        fd = open(stats_dest, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return;
    line_write(&l, fd);
    if (fd != 2)
        close(fd);
}

__attribute__((constructor)) static void front_constructor(void)
{
    front_ready();
    pthread_atfork(fork_prepare, fork_parent, fork_child);
}

__attribute__((destructor)) static void front_destructor(void)
{
    if (stats_dest)
        stats_print();
}

/* Counting wrappers around Python's raw allocator and its arena allocator.
 * pymalloc takes small blocks from arenas and large ones from the raw domain,
 * so these two see every byte the interpreter asks for. */
#include "memlimit.h"

#include <Python.h>
#include <malloc.h>
#include <stdlib.h>
#include <sys/mman.h>

static size_t limit, used, peak, refused;

static int charge(size_t n)
{
    if (n > limit || used > limit - n) {
        refused++;
        return -1;
    }
    used += n;
    if (used > peak)
        peak = used;
    return 0;
}

/* Refuse before calling malloc: a 10 GB request must fail without first
 * touching (or, under ASan, poisoning) 10 GB. */
static int over(size_t n)
{
    if (n > limit || used > limit - n) {
        refused++;
        return 1;
    }
    return 0;
}

static void *raw_malloc(void *ctx, size_t n)
{
    (void)ctx;
    if (over(n))
        return NULL;
    void *p = malloc(n ? n : 1);
    if (p && charge(malloc_usable_size(p)) < 0) {
        free(p);
        return NULL;
    }
    return p;
}

static void *raw_calloc(void *ctx, size_t nelem, size_t elsize)
{
    (void)ctx;
    if (elsize && nelem > limit / elsize) {
        refused++;
        return NULL;
    }
    void *p = calloc(nelem ? nelem : 1, elsize ? elsize : 1);
    if (p && charge(malloc_usable_size(p)) < 0) {
        free(p);
        return NULL;
    }
    return p;
}

static void raw_free(void *ctx, void *p)
{
    (void)ctx;
    if (!p)
        return;
    size_t n = malloc_usable_size(p);
    used = n > used ? 0 : used - n;
    free(p);
}

static void *raw_realloc(void *ctx, void *p, size_t n)
{
    (void)ctx;
    size_t old = p ? malloc_usable_size(p) : 0;
    if (n > old && over(n - old))
        return NULL;
    void *q = realloc(p, n ? n : 1);
    if (!q)
        return NULL;
    size_t now = malloc_usable_size(q);
    used = old > used ? 0 : used - old;
    (void)charge(now);   /* already checked; may overshoot by rounding only */
    return q;
}

static void *arena_alloc(void *ctx, size_t n)
{
    (void)ctx;
    if (charge(n) < 0)
        return NULL;
    void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        used -= n;
        return NULL;
    }
    return p;
}

static void arena_free(void *ctx, void *p, size_t n)
{
    (void)ctx;
    munmap(p, n);
    used = n > used ? 0 : used - n;
}

void memlimit_install(size_t limit_bytes)
{
    limit = limit_bytes;
    PyMemAllocatorEx raw = { NULL, raw_malloc, raw_calloc, raw_realloc, raw_free };
    PyMem_SetAllocator(PYMEM_DOMAIN_RAW, &raw);
    PyObjectArenaAllocator arenas = { NULL, arena_alloc, arena_free };
    PyObject_SetArenaAllocator(&arenas);
}

void memlimit_relax(size_t extra)
{
    limit += extra;
}

size_t memlimit_used(void)
{
    return used;
}

size_t memlimit_peak(void)
{
    return peak;
}

size_t memlimit_refused(void)
{
    return refused;
}

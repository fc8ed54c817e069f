/* Counting wrappers around Python's raw allocator and its arena allocator.
 * pymalloc (the PYMEM_DOMAIN_MEM and _OBJ domains) takes small blocks from
 * arenas and large ones from the raw domain, so these two see every byte the
 * interpreter asks for. */
#include "memlimit.h"

#include <Python.h>
#include <malloc.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>

static size_t limit, used, peak, refused;

/* The counter is exactly what the allocator holds for Python: every block at
 * malloc_usable_size (its real footprint, rounding included, as freeing it
 * will subtract) plus every arena at its size, whatever the path: malloc,
 * calloc, realloc up, down or refused, free.  Requests are judged before
 * the allocator is called; what it then really gave is always counted. */
static void account(size_t released, size_t taken)
{
    used = (released > used ? 0 : used - released) + taken;
    if (used > peak)
        peak = used;
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

/* A fresh block whose rounding does not fit is given back: malloc and
 * calloc never take the counter past the limit. */
static void *fresh(void *p)
{
    if (!p)
        return NULL;
    size_t n = malloc_usable_size(p);
    if (over(n)) {
        free(p);
        return NULL;
    }
    account(0, n);
    return p;
}

static void *raw_malloc(void *ctx, size_t n)
{
    (void)ctx;
    return over(n) ? NULL : fresh(malloc(n ? n : 1));
}

static void *raw_calloc(void *ctx, size_t nelem, size_t elsize)
{
    (void)ctx;
    if (elsize && nelem > SIZE_MAX / elsize) {   /* nelem * elsize overflows */
        refused++;
        return NULL;
    }
    if (over(nelem * elsize))
        return NULL;
    return fresh(calloc(nelem ? nelem : 1, elsize ? elsize : 1));
}

static void raw_free(void *ctx, void *p)
{
    (void)ctx;
    if (!p)
        return;
    account(malloc_usable_size(p), 0);
    free(p);
}

/* A block realloc grew or moved cannot be taken back, so its rounding may
 * pass the limit by less than a page; the next request is then refused. */
static void *raw_realloc(void *ctx, void *p, size_t n)
{
    (void)ctx;
    size_t old = p ? malloc_usable_size(p) : 0;
    if (n > old && over(n - old))
        return NULL;
    void *q = realloc(p, n ? n : 1);
    if (!q)
        return NULL;   /* p is untouched and still counted */
    account(old, malloc_usable_size(q));
    return q;
}

static void *arena_alloc(void *ctx, size_t n)
{
    (void)ctx;
    if (over(n))
        return NULL;
    void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    account(0, n);
    return p;
}

static void arena_free(void *ctx, void *p, size_t n)
{
    (void)ctx;
    munmap(p, n);
    account(n, 0);
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

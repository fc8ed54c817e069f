/* Unit and property tests of src/memlimit.c (run by tests/memlimit.bats).
 *
 * The truth is kept apart from memlimit's counter: a tracking layer above
 * memlimit's hooks records every live block with the size the allocator
 * gave it (malloc_usable_size at allocation) and every live arena, and after
 * every single call checks memlimit_used() == sum of blocks + sum of arenas.
 * Every path is driven through Python's own API (PyMem_Raw*, PyMem_*,
 * PyObject_*, the arena allocator), as the interpreter calls it.
 *
 *   memlimit-test paths           one test per allocator path
 *   memlimit-test random SEED N   N random operations (property test)
 *   memlimit-test python          a real interpreter on top, hostile workload
 * Exit 0 when every check held; each failure is printed. */
#include <Python.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "memlimit.h"

#define MIB (1u << 20)

static int failures;

#define CHECK(cond, ...)                                                \
    do {                                                                \
        if (!(cond)) {                                                  \
            failures++;                                                 \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);        \
            fprintf(stderr, __VA_ARGS__);                               \
            fputc('\n', stderr);                                        \
        }                                                               \
    } while (0)

/* --- the tracking layer: live blocks and arenas, outside Python's heap --- */

#define SLOTS (1u << 20)
static struct slot { void *p; size_t n; } table[SLOTS];
static size_t truth, live_blocks, mismatches;
static PyMemAllocatorEx inner;
static PyObjectArenaAllocator inner_arena;

static size_t slot_of(const void *p)
{
    return (size_t)(((uintptr_t)p >> 4) * 0x9E3779B97F4A7C15ull) & (SLOTS - 1);
}

static void track(void *p, size_t n)
{
    size_t i = slot_of(p);
    while (table[i].p)
        i = (i + 1) & (SLOTS - 1);
    table[i].p = p;
    table[i].n = n;
    truth += n;
    live_blocks++;
}

/* Remove p (linear probing, backward-shift deletion); its recorded size. */
static size_t untrack(void *p)
{
    size_t i = slot_of(p);
    while (table[i].p && table[i].p != p)
        i = (i + 1) & (SLOTS - 1);
    if (!table[i].p) {
        fprintf(stderr, "FAIL: freeing a block never allocated through the hooks\n");
        failures++;
        return 0;
    }
    size_t n = table[i].n;
    for (size_t j = (i + 1) & (SLOTS - 1); table[j].p; j = (j + 1) & (SLOTS - 1)) {
        size_t home = slot_of(table[j].p);
        if (((j - home) & (SLOTS - 1)) >= ((j - i) & (SLOTS - 1))) {
            table[i] = table[j];
            i = j;
        }
    }
    table[i].p = NULL;
    truth -= n;
    live_blocks--;
    return n;
}

/* After every call: the counter is the allocator's total, to the byte. */
static void verify(const char *what)
{
    if (memlimit_used() != truth && mismatches++ < 5)
        fprintf(stderr, "FAIL: after %s: counted %zu, held %zu\n", what, memlimit_used(), truth);
}

static void *t_malloc(void *ctx, size_t n)
{
    void *p = inner.malloc(inner.ctx, n);
    (void)ctx;
    if (p)
        track(p, malloc_usable_size(p));
    verify("malloc");
    return p;
}

static void *t_calloc(void *ctx, size_t nelem, size_t elsize)
{
    void *p = inner.calloc(inner.ctx, nelem, elsize);
    (void)ctx;
    if (p)
        track(p, malloc_usable_size(p));
    verify("calloc");
    return p;
}

static void *t_realloc(void *ctx, void *p, size_t n)
{
    (void)ctx;
    void *q = inner.realloc(inner.ctx, p, n);
    if (q) {
        if (p)
            untrack(p);
        track(q, malloc_usable_size(q));
    }
    verify("realloc");
    return q;
}

static void t_free(void *ctx, void *p)
{
    (void)ctx;
    if (p)
        untrack(p);
    inner.free(inner.ctx, p);
    verify("free");
}

static void *t_arena_alloc(void *ctx, size_t n)
{
    (void)ctx;
    void *p = inner_arena.alloc(inner_arena.ctx, n);
    if (p)
        track(p, n);
    verify("arena alloc");
    return p;
}

static void t_arena_free(void *ctx, void *p, size_t n)
{
    (void)ctx;
    size_t had = untrack(p);
    CHECK(had == n, "arena freed with size %zu, allocated with %zu", n, had);
    inner_arena.free(inner_arena.ctx, p, n);
    verify("arena free");
}

static void install(size_t limit)
{
    memlimit_install(limit);
    PyMem_GetAllocator(PYMEM_DOMAIN_RAW, &inner);
    PyObject_GetArenaAllocator(&inner_arena);
    PyMemAllocatorEx raw = { NULL, t_malloc, t_calloc, t_realloc, t_free };
    PyMem_SetAllocator(PYMEM_DOMAIN_RAW, &raw);
    PyObjectArenaAllocator arenas = { NULL, t_arena_alloc, t_arena_free };
    PyObject_SetArenaAllocator(&arenas);
}

/* --- one test per path ---------------------------------------------------- */

/* The raw domain: each path moves the counter by exactly what the block
 * holds, refusals move nothing, and the held block survives a refusal. */
static void raw_paths(size_t limit)
{
    size_t base = memlimit_used();
    void *p = PyMem_RawMalloc(1000);
    CHECK(p && memlimit_used() == base + malloc_usable_size(p), "raw malloc");
    size_t r0 = memlimit_refused();
    CHECK(!PyMem_RawMalloc(limit + 1) && memlimit_refused() == r0 + 1, "raw malloc over the limit");
    void *c = PyMem_RawCalloc(100, 30);
    CHECK(c && ((char *)c)[2999] == 0, "raw calloc");
    CHECK(!PyMem_RawCalloc(SIZE_MAX / 2, 4), "calloc: nelem * elsize overflows");
    CHECK(!PyMem_RawCalloc(limit / 8 + 1, 8), "calloc above the limit");
    CHECK(!PyMem_RawCalloc(SIZE_MAX, SIZE_MAX), "calloc: SIZE_MAX * SIZE_MAX");
    void *z = PyMem_RawCalloc(0, 0);
    CHECK(z != NULL, "calloc(0, 0) is a distinct block");
    p = PyMem_RawRealloc(p, 300000);                  /* up, to an mmapped chunk */
    CHECK(p != NULL, "realloc up");
    p = PyMem_RawRealloc(p, 20);                      /* down */
    CHECK(p != NULL, "realloc down");
    p = PyMem_RawRealloc(p, 20);                      /* same */
    void *n = PyMem_RawRealloc(NULL, 77);             /* NULL: a malloc */
    CHECK(n != NULL, "realloc(NULL, n)");
    n = PyMem_RawRealloc(n, 0);                       /* 0: still a block */
    CHECK(n != NULL, "realloc(p, 0)");
    memset(p, 'k', 20);
    CHECK(!PyMem_RawRealloc(p, limit + 1), "realloc refused above the limit");
    CHECK(((char *)p)[19] == 'k', "a refused realloc leaves the block intact");
    PyMem_RawFree(p);
    PyMem_RawFree(c);
    PyMem_RawFree(z);
    PyMem_RawFree(n);
    PyMem_RawFree(NULL);
    CHECK(memlimit_used() == base, "raw: everything freed, counter back to %zu (is %zu)",
          base, memlimit_used());
}

/* The red team's pattern: the heap filled close to the limit, then one
 * block grown in place step by step.  Every step's rounding (up to a page
 * for an mmapped chunk) lands near the limit; nothing may be forgotten, and
 * what is held stays within the limit plus one page. */
static void grow_near_limit(size_t limit, size_t step)
{
    void *fill[4096];
    size_t k = 0;
    while (k < 4096 && (fill[k] = PyMem_RawMalloc(64 * 1024)) != NULL)
        k++;
    for (size_t i = 0; i < 16 && k > 0; i++)
        PyMem_RawFree(fill[--k]);
    char *s = NULL;
    size_t len = 0;
    for (int i = 0; i < 200000; i++) {
        char *t = PyMem_RawRealloc(s, len + step);
        if (!t)
            continue;   /* refused: try again, as a snippet catching MemoryError would */
        s = t;
        len += step;
    }
    CHECK(memlimit_used() <= limit + 4096, "step %zu: counted %zu above the limit %zu", step,
          memlimit_used(), limit);
    CHECK(truth <= limit + 4096, "step %zu: %zu bytes held under a limit of %zu", step, truth,
          limit);
    PyMem_RawFree(s);
    while (k > 0)
        PyMem_RawFree(fill[--k]);
}

/* The mem and obj domains (pymalloc): large blocks come from the raw
 * domain, small ones from arenas; the tracking layer checks each call. */
static void pymalloc_paths(void)
{
    size_t base = memlimit_used();
    void *(*const mallocs[2])(size_t) = { PyMem_Malloc, PyObject_Malloc };
    void *(*const callocs[2])(size_t, size_t) = { PyMem_Calloc, PyObject_Calloc };
    void *(*const reallocs[2])(void *, size_t) = { PyMem_Realloc, PyObject_Realloc };
    void (*const frees[2])(void *) = { PyMem_Free, PyObject_Free };
    for (int d = 0; d < 2; d++) {
        void *small = mallocs[d](24), *big = mallocs[d](200000);
        void *zc = callocs[d](64, 64);
        CHECK(small && big && zc, "domain %d: malloc/calloc", d);
        CHECK(!callocs[d](SIZE_MAX / 2, 4), "domain %d: calloc overflow", d);
        small = reallocs[d](small, 100000);   /* small -> raw */
        big = reallocs[d](big, 16);           /* raw, shrunk */
        zc = reallocs[d](zc, 8);              /* small -> small */
        CHECK(small && big && zc, "domain %d: realloc", d);
        CHECK(!mallocs[d](SIZE_MAX / 2), "domain %d: malloc of SIZE_MAX/2", d);
        frees[d](small);
        frees[d](big);
        frees[d](zc);
    }
    /* pymalloc may keep an empty arena for reuse and its address map. */
    CHECK(memlimit_used() <= base + 2 * MIB, "pymalloc: counter %zu after freeing, was %zu",
          memlimit_used(), base);
}

static void arena_paths(size_t limit)
{
    PyObjectArenaAllocator a;
    PyObject_GetArenaAllocator(&a);
    size_t base = memlimit_used();
    void *p = a.alloc(a.ctx, 256 * 1024);
    CHECK(p && memlimit_used() == base + 256 * 1024, "arena alloc");
    CHECK(!a.alloc(a.ctx, limit), "arena above the limit");
    a.free(a.ctx, p, 256 * 1024);
    CHECK(memlimit_used() == base, "arena free");
}

/* --- property test: random sequences across the three domains ------------- */

/* Sizes of every class, and often just what is left below the limit (the
 * edge where rounding decides): old is the block's current size. */
static size_t random_size(unsigned *seed, size_t old, size_t limit)
{
    unsigned r = (unsigned)rand_r(seed);
    size_t left = limit > memlimit_used() ? limit - memlimit_used() : 0;
    switch (r % 6) {
    case 4:
    case 5: return old + left - (left ? r % (left < 8192 ? left : 8192) : 0);
    case 0: return r % 600;                      /* pymalloc's small blocks */
    case 1: return r % 8192;
    case 2: return (size_t)(r % 400000);         /* around the mmap threshold */
    default: return (size_t)(r % (3 * MIB));     /* page-rounded chunks */
    }
}

static void random_ops(unsigned seed, int steps, size_t limit)
{
    enum { LIVE = 256 };
    struct { void *p; int domain; } live[LIVE] = { { 0 } };
    void *(*const mallocs[3])(size_t) = { PyMem_RawMalloc, PyMem_Malloc, PyObject_Malloc };
    void *(*const callocs[3])(size_t, size_t) = { PyMem_RawCalloc, PyMem_Calloc, PyObject_Calloc };
    void *(*const reallocs[3])(void *, size_t) = { PyMem_RawRealloc, PyMem_Realloc, PyObject_Realloc };
    void (*const frees[3])(void *) = { PyMem_RawFree, PyMem_Free, PyObject_Free };
    for (int i = 0; i < steps; i++) {
        int k = rand_r(&seed) % LIVE, op = rand_r(&seed) % 5, d = live[k].domain;
        size_t n = random_size(&seed, live[k].p && d == 0 ? malloc_usable_size(live[k].p) : 0,
                               limit);
        if (!live[k].p) {
            d = rand_r(&seed) % 3;
            live[k].domain = d;
            live[k].p = op < 3 ? mallocs[d](n) : callocs[d](n / 16 + (size_t)(op == 4), 16);
        } else if (op < 3) {
            void *q = reallocs[d](live[k].p, n);
            if (q)
                live[k].p = q;
        } else {
            frees[d](live[k].p);
            live[k].p = NULL;
        }
    }
    for (int k = 0; k < LIVE; k++)
        if (live[k].p)
            frees[live[k].domain](live[k].p);
}

/* --- a real interpreter on top -------------------------------------------- */

static const char HOSTILE[] =
    "held = []\n"
    "try:\n"
    "    while True:\n"
    "        held.append(b'x' * 65536)\n"
    "except MemoryError:\n"
    "    pass\n"
    "del held[-16:]\n"
    "def grow(step):\n"
    "    s = ''\n"
    "    size = 0\n"
    "    for i in range(30000):\n"
    "        try:\n"
    "            s = s + 'x' * step\n"
    "            size = len(s)\n"
    "        except MemoryError:\n"
    "            s = 'x' * size\n"
    "    return size\n"
    "total = sum(len(b) for b in held) + grow(1000)\n"
    "assert total <= LIMIT, (total, LIMIT)\n"
    "del held\n"
    "d = {}\n"
    "for i in range(20000):\n"
    "    d[i] = [i] * (i % 50)\n"
    "del d\n";

static int python_workload(size_t limit)
{
    PyConfig c;
    PyConfig_InitIsolatedConfig(&c);
    c.site_import = 0;
    c.install_signal_handlers = 0;
    PyStatus st = Py_InitializeFromConfig(&c);
    PyConfig_Clear(&c);
    if (PyStatus_Exception(st)) {
        fprintf(stderr, "FAIL: the interpreter did not start\n");
        return 1;
    }
    char code[sizeof(HOSTILE) + 64];
    snprintf(code, sizeof(code), "LIMIT = %zu\n%s", limit, HOSTILE);
    CHECK(PyRun_SimpleString(code) == 0, "the Python workload failed");
    return 0;
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "paths";
    size_t limit = 16 * MIB;
    install(limit);
    if (strcmp(mode, "paths") == 0) {
        raw_paths(limit);
        arena_paths(limit);
        pymalloc_paths();
        for (size_t step = 1000; step <= 9000; step += 1111)
            grow_near_limit(limit, step);
    } else if (strcmp(mode, "random") == 0 && argc == 4) {
        random_ops((unsigned)strtoul(argv[2], NULL, 10), atoi(argv[3]), limit);
    } else if (strcmp(mode, "python") == 0) {
        if (python_workload(limit))
            return 1;
    } else {
        fprintf(stderr, "usage: memlimit-test paths | random SEED N | python\n");
        return 2;
    }
    CHECK(mismatches == 0, "%zu calls left the counter off the allocator's total", mismatches);
    printf("%s: %s (%zu blocks live, %zu bytes counted, peak %zu, %zu refused)\n", mode,
           failures ? "FAILED" : "ok", live_blocks, memlimit_used(), memlimit_peak(),
           memlimit_refused());
    return failures ? 1 : 0;
}

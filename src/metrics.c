#include "metrics.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "state.h"
#include "usage_counters.h"

struct metric {
    const char *name, *help;
    size_t field;           /* offset of the uint64_t counter in struct usage */
    double scale;           /* cpu/wall are kept in ms, exported in seconds */
};

#define METRIC(field, name, header, help, ms) \
    { "pyexec_" name "_total", help, offsetof(struct usage, field), (ms) ? 1000 : 1 },
static const struct metric METRICS[] = { USAGE_COUNTERS(METRIC) };
#undef METRIC
#define NMETRICS (sizeof(METRICS) / sizeof(METRICS[0]))

/* A growing text buffer; on allocation failure it stays failed. */
struct text {
    char *buf;
    size_t len, cap;
    int failed;
};

static void put(struct text *t, const char *s, size_t n)
{
    if (t->failed)
        return;
    if (t->len + n + 1 > t->cap) {
        size_t cap = (t->cap ? t->cap * 2 : 4096) + n;
        char *b = realloc(t->buf, cap);
        if (!b) {
            t->failed = 1;
            return;
        }
        t->buf = b;
        t->cap = cap;
    }
    memcpy(t->buf + t->len, s, n);
    t->len += n;
    t->buf[t->len] = '\0';
}

static void puts_(struct text *t, const char *s)
{
    put(t, s, strlen(s));
}

/* A label value, escaped as the exposition format requires. */
static void put_label(struct text *t, const char *v)
{
    for (; *v; v++) {
        if (*v == '\\')
            puts_(t, "\\\\");
        else if (*v == '"')
            puts_(t, "\\\"");
        else if (*v == '\n')
            puts_(t, "\\n");
        else
            put(t, v, 1);
    }
}

static void put_sample(struct text *t, const struct metric *m, const struct key_entry *k,
                       const struct usage *u)
{
    uint64_t v = *(const uint64_t *)((const char *)u + m->field);
    char num[64];
    puts_(t, m->name);
    puts_(t, "{client=\"");
    put_label(t, k->id);
    puts_(t, "\",name=\"");
    put_label(t, k->name);
    puts_(t, "\",env=\"");
    put_label(t, k->env);
    if (m->scale == 1)
        snprintf(num, sizeof(num), "\"} %llu\n", (unsigned long long)v);
    else
        snprintf(num, sizeof(num), "\"} %.3f\n", (double)v / m->scale);
    puts_(t, num);
}

char *metrics_render(const struct keyring *ring)
{
    struct text t = { 0 };
    struct usage *all = calloc(ring->count ? ring->count : 1, sizeof(*all));
    if (!all)
        return NULL;
    for (size_t i = 0; i < ring->count; i++)
        if (state_read_usage(state_dir(), ring->entries[i].id, &all[i]) < 0)
            memset(&all[i], 0, sizeof(all[i]));
    for (size_t m = 0; m < NMETRICS; m++) {
        char head[256];
        snprintf(head, sizeof(head), "# HELP %s %s\n# TYPE %s counter\n", METRICS[m].name,
                 METRICS[m].help, METRICS[m].name);
        puts_(&t, head);
        for (size_t i = 0; i < ring->count; i++)
            put_sample(&t, &METRICS[m], &ring->entries[i], &all[i]);
    }
    free(all);
    if (t.failed) {
        free(t.buf);
        return NULL;
    }
    return t.buf;
}

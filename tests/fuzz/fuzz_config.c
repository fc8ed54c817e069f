/* libFuzzer harness: the configuration file parser (src/config.c).
 *
 * Per input: config_parse() twice over the same zeroed struct config, on
 * exactly the input's bytes (no NUL after them).  Parsing is a pure function
 * of the text and the struct, so the second pass must give the same verdict,
 * the same message and the same struct.
 *
 * Checked beyond the sanitizers: a failure has a "name:line: reason"
 * message; every value that was set lies in its documented range; the
 * user name is NUL-terminated inside its field. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

#define NAME "fuzz.conf"

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "check failed: %s (%s:%d)\n", \
                                          #c, __FILE__, __LINE__); __builtin_trap(); } } while (0)

/* 0 (never set: the struct started zeroed) or within [lo, hi]. */
#define IN_RANGE(v, lo, hi) ((v) == 0 || ((v) >= (lo) && (v) <= (hi)))

static void check_config(const struct config *c)
{
    CHECK(memchr(c->user, '\0', sizeof(c->user)) != NULL);
    CHECK(IN_RANGE(c->request_timeout_ms, 100, 600000));
    CHECK(IN_RANGE(c->max_concurrent, 1, 100000));
    for (int i = 0; i < ENV_COUNT; i++) {
        const struct limits *l = &c->env[i];
        CHECK(IN_RANGE(l->wall_ms, 10, 600000));
        CHECK(IN_RANGE(l->cpu_ms, 10, 600000));
        CHECK(IN_RANGE(l->memory_mb, 16, 65536));
        CHECK(l->output_bytes >= 0 && l->output_bytes <= (64L << 20));
        CHECK(IN_RANGE(l->result_bytes, 16, 256L << 20));
        CHECK(IN_RANGE(l->body_bytes, 64, 256L << 20));
        CHECK(IN_RANGE(l->rate_limit, 1, 1000000));
        CHECK(IN_RANGE(l->rate_window_s, 1, 86400));
        CHECK(IN_RANGE(l->concurrency, 1, 10000));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size ? size : 1);
    if (!text)
        return 0;
    memcpy(text, data, size);

    static struct config cfg, first;
    char err1[512], err2[512];
    memset(&cfg, 0, sizeof(cfg));
    memset(err1, 0, sizeof(err1));
    memset(err2, 0, sizeof(err2));

    int rc1 = config_parse(&cfg, NAME, text, size, err1, sizeof(err1));
    CHECK(rc1 == 0 || rc1 == -1);
    if (rc1 < 0)
        CHECK(strncmp(err1, NAME ":", sizeof(NAME)) == 0 && strlen(err1) > sizeof(NAME));
    check_config(&cfg);
    memcpy(&first, &cfg, sizeof(cfg));

    /* Again over the same struct: same verdict, same message, same values. */
    int rc2 = config_parse(&cfg, NAME, text, size, err2, sizeof(err2));
    CHECK(rc2 == rc1);
    CHECK(strcmp(err1, err2) == 0);
    CHECK(memcmp(&first, &cfg, sizeof(cfg)) == 0);
    check_config(&cfg);

    free(text);
    return 0;
}

/* libFuzzer harness: the JSON reader with exact numbers (src/jsonext.c) and
 * the POST /execute body validation on top of it (src/body.c).
 *
 * jsonext_parse() gets exactly the input bytes in a buffer of their size (its
 * contract: len bytes, no NUL needed), so ASan sees any read past them.
 * body_parse() gets the body as http_read_body() leaves it: a NUL-terminated
 * copy, with the test environment's default limits.
 *
 * Checked beyond the sanitizers:
 *  - every number node below the root carries its own literal (the second
 *    pass over the text stays aligned with cJSON's tree): the literal is
 *    made of number characters and strtod() of it gives cJSON's value;
 *  - body_parse() returns 0 exactly when no failure is recorded, fails with
 *    400/422 otherwise, never accepts what jsonext_parse() refused, and only
 *    ever tightens the limits. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "body.h"
#include "jsonext.h"
#include "request.h"

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "check failed: %s (%s:%d)\n", \
                                          #c, __FILE__, __LINE__); __builtin_trap(); } } while (0)

static const struct limits TEST_LIMITS = {   /* config.c's DEFAULT_TEST */
    .wall_ms = 2000, .cpu_ms = 2000, .memory_mb = 128,
    .output_bytes = 65536, .result_bytes = 1 << 20, .body_bytes = 1 << 20,
    .rate_limit = 60, .rate_window_s = 60, .concurrency = 2,
};

static struct request req;

static void check_numbers(const cJSON *node, int depth)
{
    for (; node; node = node->next) {
        if (cJSON_IsNumber(node)) {
            const char *lit = node->valuestring;
            CHECK(lit != NULL);
            size_t n = strlen(lit);
            CHECK(n > 0 && strspn(lit, "+-.eE0123456789") == n);
            CHECK(lit[0] == '-' || (lit[0] >= '0' && lit[0] <= '9'));
            /* Only a root value may be followed by text cJSON leaves
             * unparsed ("1-2" is 1 then "-2"), so only below the root must
             * the literal and the value agree exactly. */
            if (depth > 0) {
                double v = strtod(lit, NULL);
                CHECK(v == node->valuedouble || (isnan(v) && isnan(node->valuedouble)));
                if (jsonext_is_integer(node))
                    CHECK(strspn(lit, "-0123456789") == n);
            }
        }
        if (node->child)
            check_numbers(node->child, depth + 1);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* 1. jsonext_parse on exactly the input's bytes. */
    char *exact = malloc(size ? size : 1);
    if (!exact)
        return 0;
    memcpy(exact, data, size);
    const char *err = NULL;
    cJSON *root = jsonext_parse(exact, size, &err);
    if (root)
        check_numbers(root, 0);
    else
        CHECK(err && *err);
    int parsed = root != NULL;
    cJSON_Delete(root);
    free(exact);

    /* 2. body_parse on a NUL-terminated copy, as main.c hands it over. */
    memset(&req, 0, sizeof(req));
    req.env = 0;
    req.content_length = (long)size;
    req.limits = TEST_LIMITS;
    req.body = malloc(size + 1);
    if (!req.body)
        return 0;
    memcpy(req.body, data, size);
    req.body[size] = '\0';
    req.body_len = size;

    struct exec_body b;
    int rc = body_parse(&req, &b);
    if (rc == 0) {
        CHECK(req.fail.status == 0);
        CHECK(parsed);
        CHECK(cJSON_IsObject(b.root));
        CHECK(b.code && strlen(b.code) == b.code_len);
        CHECK(b.data != NULL);
        const struct limits *l = &req.limits;
        CHECK(l->wall_ms >= 1 && l->wall_ms <= TEST_LIMITS.wall_ms);
        CHECK(l->cpu_ms >= 1 && l->cpu_ms <= TEST_LIMITS.cpu_ms);
        CHECK(l->memory_mb >= 16 && l->memory_mb <= TEST_LIMITS.memory_mb);
        CHECK(l->output_bytes >= 1 && l->output_bytes <= TEST_LIMITS.output_bytes);
        CHECK(l->result_bytes >= 1 && l->result_bytes <= TEST_LIMITS.result_bytes);
        CHECK(l->body_bytes == TEST_LIMITS.body_bytes);
    } else {
        CHECK(rc == -1);
        CHECK(req.fail.status == 400 || req.fail.status == 422);
        CHECK(req.fail.type != NULL);
    }
    body_free(&b);
    CHECK(b.root == NULL && b.empty_data == NULL);
    free(req.body);
    req.body = NULL;
    return 0;
}

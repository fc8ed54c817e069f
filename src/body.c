#include "body.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "jsonext.h"

/* RFC 3629 UTF-8: no overlongs, no surrogates, nothing above U+10FFFF. */
static bool valid_utf8(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        size_t len;
        unsigned lo = 0x80, hi = 0xBF;
        if (c < 0x80) { i++; continue; }
        else if (c >= 0xC2 && c <= 0xDF) len = 2;
        else if (c >= 0xE0 && c <= 0xEF) {
            len = 3;
            if (c == 0xE0) lo = 0xA0;
            if (c == 0xED) hi = 0x9F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            len = 4;
            if (c == 0xF0) lo = 0x90;
            if (c == 0xF4) hi = 0x8F;
        } else return false;
        if (i + len > n || s[i + 1] < lo || s[i + 1] > hi)
            return false;
        for (size_t k = 2; k < len; k++)
            if ((s[i + k] & 0xC0) != 0x80)
                return false;
        i += len;
    }
    return true;
}

/* Floats beyond double range would silently become infinity. */
static const cJSON *find_overflow(const cJSON *node)
{
    for (; node; node = node->next) {
        if (cJSON_IsNumber(node) && !jsonext_is_integer(node) && !isfinite(node->valuedouble))
            return node;
        const cJSON *bad = node->child ? find_overflow(node->child) : NULL;
        if (bad)
            return bad;
    }
    return NULL;
}

/* "limits": each value a positive integer no looser than the environment. */
static int apply_limits(struct request *req, const cJSON *lim)
{
    static const struct { const char *name; size_t off; } FIELDS[] = {
        { "timeout_ms",   offsetof(struct limits, wall_ms) },
        { "cpu_ms",       offsetof(struct limits, cpu_ms) },
        { "memory_mb",    offsetof(struct limits, memory_mb) },
        { "output_bytes", offsetof(struct limits, output_bytes) },
        { "result_bytes", offsetof(struct limits, result_bytes) },
    };
    if (!cJSON_IsObject(lim))
        return fail(req, 422, "ValidationError", "\"limits\" must be an object");
    for (const cJSON *f = lim->child; f; f = f->next) {
        size_t i = 0, n = sizeof(FIELDS) / sizeof(FIELDS[0]);
        while (i < n && strcmp(FIELDS[i].name, f->string) != 0)
            i++;
        if (i == n)
            return fail(req, 422, "ValidationError",
                        "unknown limit \"%.*s\" (known: timeout_ms, cpu_ms, memory_mb, "
                        "output_bytes, result_bytes)", jsonext_utf8_prefix(f->string, 64),
                        f->string);
        long *cur = (long *)((char *)&req->limits + FIELDS[i].off);
        if (!cJSON_IsNumber(f) || !jsonext_is_integer(f) || f->valuedouble < 1)
            return fail(req, 422, "ValidationError",
                        "limits.%s must be a positive integer", FIELDS[i].name);
        if (f->valuedouble > (double)*cur)
            return fail(req, 422, "ValidationError",
                        "limits.%s of %.0f exceeds this key's maximum of %ld",
                        FIELDS[i].name, f->valuedouble, *cur);
        *cur = (long)f->valuedouble;
    }
    if (req->limits.memory_mb < 16)
        return fail(req, 422, "ValidationError", "limits.memory_mb must be at least 16");
    return 0;
}

/* cJSON keeps repeated names and GetObjectItem finds the first, Python's
 * json the last: refuse them anywhere rather than pick one silently. */
static int check_duplicates(struct request *req, const cJSON *root)
{
    const cJSON *dup = NULL;
    if (jsonext_find_duplicate(root, &dup) < 0)
        return fail(req, 503, "ServiceUnavailable", "out of memory checking the body");
    if (dup)
        return fail(req, 422, "ValidationError", "duplicate member name \"%.*s\" in a JSON object",
                    jsonext_utf8_prefix(dup->string, 64), dup->string);
    return 0;
}

static int check_fields(struct request *req, const cJSON *root)
{
    for (const cJSON *f = root->child; f; f = f->next)
        if (strcmp(f->string, "code") != 0 && strcmp(f->string, "data") != 0 &&
            strcmp(f->string, "limits") != 0)
            return fail(req, 422, "ValidationError",
                        "unknown field \"%.*s\" (expected code, data, limits)",
                        jsonext_utf8_prefix(f->string, 64), f->string);
    return 0;
}

int body_parse(struct request *req, struct exec_body *b)
{
    memset(b, 0, sizeof(*b));
    if (!valid_utf8((const unsigned char *)req->body, req->body_len))
        return fail(req, 400, "InvalidJSON", "body is not valid UTF-8");
    const char *err = NULL;
    b->root = jsonext_parse(req->body, req->body_len, &err);
    if (!b->root)
        return fail(req, 400, "InvalidJSON", "%s", err);
    if (!cJSON_IsObject(b->root))
        return fail(req, 422, "ValidationError", "body must be a JSON object");
    if (check_duplicates(req, b->root) < 0 || check_fields(req, b->root) < 0)
        return -1;
    const cJSON *code = cJSON_GetObjectItemCaseSensitive(b->root, "code");
    if (!code)
        return fail(req, 422, "ValidationError", "missing required field \"code\"");
    if (!cJSON_IsString(code))
        return fail(req, 422, "ValidationError", "\"code\" must be a string");
    b->code = code->valuestring;
    b->code_len = strlen(code->valuestring);
    b->data = cJSON_GetObjectItemCaseSensitive(b->root, "data");
    if (!b->data) {
        b->empty_data = cJSON_CreateObject();
        b->data = b->empty_data;
    }
    if (find_overflow(b->data))
        return fail(req, 422, "ValidationError", "data contains a number beyond float range");
    const cJSON *lim = cJSON_GetObjectItemCaseSensitive(b->root, "limits");
    return lim ? apply_limits(req, lim) : 0;
}

void body_free(struct exec_body *b)
{
    cJSON_Delete(b->root);
    cJSON_Delete(b->empty_data);
    memset(b, 0, sizeof(*b));
}

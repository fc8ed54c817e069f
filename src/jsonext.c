/* Exact numbers over cJSON.  cJSON validates the document and builds the tree
 * in document order; a second pass over the (now known valid) text finds the
 * number literals in the same order and attaches each to its node. */
#include "jsonext.h"

#include <stdlib.h>
#include <string.h>

/* Skip a string starting at s[i] == '"'; returns the index after it, or 0 when
 * it holds a raw control character or an escaped NUL. */
static size_t skip_string(const char *s, size_t len, size_t i)
{
    for (i++; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"')
            return i + 1;
        if (c < 0x20)
            return 0;
        if (c == '\\') {
            if (i + 5 < len && s[i + 1] == 'u' && memcmp(s + i + 2, "0000", 4) == 0)
                return 0;
            i++;
        }
    }
    return 0;
}

struct literal_cursor {
    const char *text;
    size_t len, pos;
};

/* The next number literal at or after the cursor: its start and length. */
static int next_literal(struct literal_cursor *c, const char **start, size_t *n)
{
    while (c->pos < c->len) {
        char ch = c->text[c->pos];
        if (ch == '"') {
            size_t next = skip_string(c->text, c->len, c->pos);
            if (!next)
                return -1;
            c->pos = next;
        } else if (ch == '-' || (ch >= '0' && ch <= '9')) {
            size_t e = c->pos;
            while (e < c->len && c->text[e] && strchr("+-.eE0123456789", c->text[e]))
                e++;
            *start = c->text + c->pos;
            *n = e - c->pos;
            c->pos = e;
            return 0;
        } else {
            c->pos++;
        }
    }
    return -1;
}

/* RFC 8259: -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?  cJSON
 * (strtod) also takes 01, 1. and -.5. */
static bool valid_number(const char *s, size_t n)
{
    size_t i = 0, d;
    if (i < n && s[i] == '-')
        i++;
    if (i < n && s[i] == '0')
        i++;
    else if (i < n && s[i] >= '1' && s[i] <= '9')
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
    else
        return false;
    if (i < n && s[i] == '.') {
        for (d = ++i; i < n && s[i] >= '0' && s[i] <= '9'; i++) {}
        if (i == d)
            return false;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        for (d = i; i < n && s[i] >= '0' && s[i] <= '9'; i++) {}
        if (i == d)
            return false;
    }
    return i == n;
}

/* Pre-order walk: every number node, in document order, takes its literal.
 * -1: out of memory; -2: a literal outside the RFC 8259 grammar. */
static int attach_literals(cJSON *node, struct literal_cursor *c)
{
    for (; node; node = node->next) {
        if (cJSON_IsNumber(node)) {
            const char *start;
            size_t n;
            if (next_literal(c, &start, &n) < 0 || !valid_number(start, n))
                return -2;
            node->valuestring = malloc(n + 1);
            if (!node->valuestring)
                return -1;
            memcpy(node->valuestring, start, n);
            node->valuestring[n] = '\0';
        } else if (cJSON_IsString(node)) {
            /* Its text is skipped by next_literal; nothing to attach. */
        }
        int rc = node->child ? attach_literals(node->child, c) : 0;
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* Reject strings cJSON would silently truncate or accept against RFC 8259. */
static int check_strings(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (s[i] != '"')
            continue;
        size_t next = skip_string(s, len, i);
        if (!next)
            return -1;
        i = next - 1;
    }
    return 0;
}

/* RFC 8259 whitespace only: cJSON skips every byte <= 0x20 as whitespace. */
static int only_whitespace(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
            return 0;
    return 1;
}

/* Control bytes outside strings, which cJSON would take for whitespace. */
static int stray_controls(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"') {
            size_t next = skip_string(s, len, i);
            if (!next)
                return 0;   /* reported by check_strings */
            i = next - 1;
        } else if (c < 0x20 && c != '\t' && c != '\r' && c != '\n') {
            return 1;
        }
    }
    return 0;
}

cJSON *jsonext_parse(const char *text, size_t len, const char **err)
{
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (!root) {
        *err = "body is not valid JSON (or nests deeper than 1000 levels)";
        return NULL;
    }
    /* One JSON value and nothing after it: cJSON stops after the first. */
    if (!end || end < text || (size_t)(end - text) > len ||
        !only_whitespace(end, len - (size_t)(end - text)) || stray_controls(text, len)) {
        cJSON_Delete(root);
        *err = "body is not valid JSON (data after the value, or control characters)";
        return NULL;
    }
    if (check_strings(text, len) < 0) {
        cJSON_Delete(root);
        *err = "JSON strings must not contain control characters or \\u0000";
        return NULL;
    }
    struct literal_cursor c = { text, len, 0 };
    int rc = attach_literals(root, &c);
    if (rc < 0) {
        cJSON_Delete(root);
        *err = rc == -2 ? "body is not valid JSON (a number such as 01, 1. or -.5 "
                          "breaks the RFC 8259 grammar)"
                        : "out of memory while reading numbers";
        return NULL;
    }
    return root;
}

static int compare_names(const void *a, const void *b)
{
    return strcmp((*(const cJSON *const *)a)->string, (*(const cJSON *const *)b)->string);
}

/* A repeated member name among obj's own members (sorted: O(n log n), so a
 * body of 100k members costs no quadratic time).  -1 when out of memory. */
static int own_duplicate(const cJSON *obj, const cJSON **dup)
{
    size_t n = 0;
    for (const cJSON *m = obj->child; m; m = m->next)
        n++;
    if (n < 2)
        return 0;
    const cJSON **v = malloc(n * sizeof(*v));
    if (!v)
        return -1;
    n = 0;
    for (const cJSON *m = obj->child; m; m = m->next)
        v[n++] = m;
    qsort(v, n, sizeof(*v), compare_names);
    for (size_t i = 1; i < n && !*dup; i++)
        if (strcmp(v[i - 1]->string, v[i]->string) == 0)
            *dup = v[i];
    free(v);
    return 0;
}

int jsonext_find_duplicate(const cJSON *node, const cJSON **dup)
{
    for (; node && !*dup; node = node->next) {
        if (cJSON_IsObject(node) && own_duplicate(node, dup) < 0)
            return -1;
        if (node->child && jsonext_find_duplicate(node->child, dup) < 0)
            return -1;
    }
    return 0;
}

int jsonext_utf8_prefix(const char *s, size_t max)
{
    size_t n = strnlen(s, max);
    if (n == max)   /* cut: while s[n] continues a character, cut before it */
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
            n--;
    return (int)n;
}

bool jsonext_is_integer(const cJSON *node)
{
    const char *s = node->valuestring;
    return s && !strpbrk(s, ".eE");
}

cJSON *jsonext_string(const char *s, size_t len)
{
    if (!memchr(s, '\0', len)) {
        char *copy = malloc(len + 1);
        if (!copy)
            return NULL;
        memcpy(copy, s, len);
        copy[len] = '\0';
        cJSON *node = cJSON_CreateString(copy);
        free(copy);
        return node;
    }
    /* Print each NUL-free piece with cJSON's escaper and join them with
     * \u0000: the only escape cJSON cannot produce. */
    size_t cap = len * 6 + 3, used = 0;
    char *out = malloc(cap);
    if (!out)
        return NULL;
    out[used++] = '"';
    const char *p = s, *end = s + len;
    while (p <= end) {
        const char *nul = memchr(p, '\0', (size_t)(end - p));
        size_t n = nul ? (size_t)(nul - p) : (size_t)(end - p);
        cJSON *piece = jsonext_string(p, n);
        char *printed = piece ? cJSON_PrintUnformatted(piece) : NULL;
        cJSON_Delete(piece);
        if (!printed) {
            free(out);
            return NULL;
        }
        size_t plen = strlen(printed) - 2;   /* without its quotes */
        memcpy(out + used, printed + 1, plen);
        used += plen;
        free(printed);
        if (!nul)
            break;
        memcpy(out + used, "\\u0000", 6);
        used += 6;
        p = nul + 1;
    }
    out[used++] = '"';
    out[used] = '\0';
    cJSON *node = cJSON_CreateRaw(out);
    free(out);
    return node;
}

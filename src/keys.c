/* Reading the API keys file.  pyexec calls keys_load on every request, so this
 * is one read and one cJSON parse, and it trusts nothing in the file: every
 * required field is checked, and anything it does not know is ignored so that
 * later versions can add fields.  Error messages name the problem, never the
 * path (the caller adds that) and never a hash. */
#include "keys.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cJSON.h>

#define ID_TAG     "key_"
#define ID_HEX     16
#define HASH_TAG   "sha256:"

/* Messages built at run time live here: *err must outlive keys_parse and the
 * ring has no room for it.  It stays valid until the next call that fails. */
static _Thread_local char err_buf[256];

__attribute__((format(printf, 1, 2)))
static const char *fail(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err_buf, sizeof err_buf, fmt, ap);
    va_end(ap);
    return err_buf;
}

const char *keys_path(const char *explicit_path)
{
    const char *env;

    if (explicit_path != NULL)
        return explicit_path;
    env = getenv("PYEXEC_KEYS");
    if (env != NULL && env[0] != '\0')
        return env;
    /* Under systemd, LoadCredential= hands the file over in a private dir. */
    env = getenv("CREDENTIALS_DIRECTORY");
    if (env != NULL && env[0] != '\0') {
        static char credential[4096];
        int n = snprintf(credential, sizeof(credential), "%s/" KEYS_CREDENTIAL, env);
        if (n > 0 && (size_t)n < sizeof(credential))
            return credential;
    }
    return KEYS_DEFAULT_PATH;
}

/* ---- reading ---------------------------------------------------------- */

/* Open path and learn its size; a missing file is told apart from the rest. */
static enum keys_status open_keys(const char *path, int *fd, size_t *size,
                                  const char **err)
{
    struct stat st;

    /* O_NONBLOCK: a FIFO planted at the path must not hang the request. */
    *fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (*fd < 0) {
        int e = errno;

        *err = fail("cannot open: %s", strerror(e));
        return e == ENOENT ? KEYS_MISSING : KEYS_UNREADABLE;
    }
    if (fstat(*fd, &st) != 0) {
        *err = fail("cannot stat: %s", strerror(errno));
        return KEYS_UNREADABLE;
    }
    if (!S_ISREG(st.st_mode)) {
        *err = "not a regular file";
        return KEYS_UNREADABLE;
    }
    if (st.st_size > (off_t)KEYS_MAX_SIZE) {
        *err = "larger than 16 MiB";
        return KEYS_CORRUPT;
    }
    *size = (size_t)st.st_size;
    return KEYS_OK;
}

/* Make room for more bytes once buf is full, never beyond the size limit. */
static enum keys_status grow(char **buf, size_t *cap, const char **err)
{
    size_t new_cap = *cap * 2 > KEYS_MAX_SIZE + 1 ? KEYS_MAX_SIZE + 1 : *cap * 2;
    char *p;

    if (*cap >= KEYS_MAX_SIZE + 1) {
        *err = "larger than 16 MiB";
        return KEYS_CORRUPT;
    }
    p = realloc(*buf, new_cap + 1);
    if (p == NULL) {
        *err = "out of memory";
        return KEYS_NOMEM;
    }
    *buf = p;
    *cap = new_cap;
    return KEYS_OK;
}

/* Read to EOF.  The buffer starts at the fstat size plus one byte, so that
 * a file that grew since fstat (edited in place) is noticed, and grows. */
static enum keys_status read_all(int fd, size_t size, char **text, size_t *len,
                                 const char **err)
{
    size_t cap = size + 1, got = 0;
    enum keys_status st = KEYS_OK;
    char *buf = malloc(cap + 1);  /* + 1 for the NUL */

    if (buf == NULL) {
        *err = "out of memory";
        return KEYS_NOMEM;
    }
    for (;;) {
        if (got == cap && (st = grow(&buf, &cap, err)) != KEYS_OK)
            break;
        ssize_t n = read(fd, buf + got, cap - got);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            *err = fail("cannot read: %s", strerror(errno));
            st = KEYS_UNREADABLE;
        }
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    if (st != KEYS_OK) {
        free(buf);
        return st;
    }
    buf[got] = '\0';
    *text = buf;
    *len = got;
    return KEYS_OK;
}

enum keys_status keys_read_file(const char *path, char **text, size_t *len,
                                const char **err)
{
    const char *dummy;
    size_t size = 0;
    int fd;
    enum keys_status st;

    if (err == NULL)
        err = &dummy;
    *text = NULL;
    *len = 0;
    st = open_keys(path, &fd, &size, err);
    if (st == KEYS_OK)
        st = read_all(fd, size, text, len, err);
    if (fd >= 0)
        close(fd);  /* read-only: nothing to lose if close fails */
    return st;
}

enum keys_status keys_load(const char *path, struct keyring *ring, const char **err)
{
    char *text;
    size_t len;
    enum keys_status st;

    ring->entries = NULL;
    ring->count = 0;
    st = keys_read_file(path, &text, &len, err);
    if (st != KEYS_OK)
        return st;
    st = keys_parse(text, len, ring, err);
    free(text);
    return st;
}

/* ---- parsing ---------------------------------------------------------- */

/* True when s is exactly n lower-case hex digits. */
static bool is_lower_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return s[n] == '\0';
}

static bool valid_id(const char *s)
{
    return strncmp(s, ID_TAG, strlen(ID_TAG)) == 0 && is_lower_hex(s + strlen(ID_TAG), ID_HEX);
}

static bool valid_env(const char *s)
{
    return strcmp(s, "test") == 0 || strcmp(s, "prod") == 0;
}

static bool non_empty(const char *s)
{
    return s[0] != '\0';
}

static bool any_string(const char *s)
{
    (void)s;
    return true;
}

/* The string fields of an entry; all must be present, only revoked_at may be
 * null.  "hash" is checked here too but kept as bytes, not as a string. */
static const struct field {
    const char *name;
    ptrdiff_t offset;             /* of the char * in struct key_entry, or -1 */
    bool nullable;
    bool (*valid)(const char *);
    const char *expect;           /* what valid() wants, for the message */
} fields[] = {
    {"id", offsetof(struct key_entry, id), false, valid_id,
     "\"" ID_TAG "\" followed by 16 lower-case hex digits"},
    {"name", offsetof(struct key_entry, name), false, non_empty, "a non-empty string"},
    {"description", offsetof(struct key_entry, description), false, any_string, "a string"},
    {"env", offsetof(struct key_entry, env), false, valid_env, "\"test\" or \"prod\""},
    {"created", offsetof(struct key_entry, created), false, non_empty, "a non-empty string"},
    {"revoked_at", offsetof(struct key_entry, revoked_at), true, non_empty,
     "null or a non-empty string"},
    {"prefix", offsetof(struct key_entry, prefix), false, non_empty, "a non-empty string"},
    {"hash", -1, false, NULL, "\"" HASH_TAG "\" followed by 64 lower-case hex digits"},
};
#define NFIELDS (sizeof fields / sizeof fields[0])

static char **field_slot(struct key_entry *e, const struct field *f)
{
    return (char **)(void *)((char *)e + f->offset);
}

static bool valid_hash(const char *s, unsigned char out[SHA256_LEN])
{
    return strncmp(s, HASH_TAG, strlen(HASH_TAG)) == 0 &&
           is_lower_hex(s + strlen(HASH_TAG), 2 * SHA256_LEN) &&
           crypto_unhex(s + strlen(HASH_TAG), out, SHA256_LEN) == 0;
}

/* Check one field of entry number idx and store it in e. */
static enum keys_status parse_field(const cJSON *obj, size_t idx, const struct field *f,
                                    struct key_entry *e, const char **err)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, f->name);
    const char *s = cJSON_GetStringValue(item);

    if (item == NULL) {
        *err = fail("keys[%zu]: \"%s\" is missing", idx, f->name);
        return KEYS_CORRUPT;
    }
    if (f->nullable && cJSON_IsNull(item))
        return KEYS_OK;
    if (s == NULL || !(f->offset < 0 ? valid_hash(s, e->hash) : f->valid(s))) {
        *err = fail("keys[%zu]: \"%s\" must be %s", idx, f->name, f->expect);
        return KEYS_CORRUPT;
    }
    if (f->offset < 0)
        return KEYS_OK;
    *field_slot(e, f) = strdup(s);
    if (*field_slot(e, f) == NULL) {
        *err = "out of memory";
        return KEYS_NOMEM;
    }
    return KEYS_OK;
}

int keys_parse_rate(const char *text, long *limit, long *window_s)
{
    static const struct { const char *unit; long seconds; } UNITS[] = {
        {"s", 1}, {"sec", 1}, {"second", 1}, {"min", 60}, {"minute", 60},
        {"h", 3600}, {"hour", 3600}, {"day", 86400},
    };
    char *end;
    errno = 0;
    long n = strtol(text, &end, 10);
    if (errno || end == text || *text == '-' || *text == '+' || n < 1 || n > 1000000 || *end != '/')
        return -1;
    for (size_t i = 0; i < sizeof(UNITS) / sizeof(UNITS[0]); i++) {
        if (strcmp(end + 1, UNITS[i].unit) == 0) {
            *limit = n;
            *window_s = UNITS[i].seconds;
            return 0;
        }
    }
    return -1;
}

unsigned keys_parse_scopes(const char *text)
{
    unsigned bits = 0;
    const char *p = text;
    while (*p) {
        size_t n = strcspn(p, ",");
        if (n == 7 && strncmp(p, "execute", 7) == 0)
            bits |= KEY_SCOPE_EXECUTE;
        else if (n == 5 && strncmp(p, "admin", 5) == 0)
            bits |= KEY_SCOPE_ADMIN;
        else
            return 0;
        p += n;
        if (*p == ',' && *++p == '\0')
            return 0;
    }
    return bits;
}

/* The optional per-key limits and scopes. */
static enum keys_status parse_overrides(const cJSON *obj, size_t idx, struct key_entry *e,
                                        const char **err)
{
    const cJSON *rate = cJSON_GetObjectItemCaseSensitive(obj, "rate");
    const cJSON *conc = cJSON_GetObjectItemCaseSensitive(obj, "concurrency");
    const cJSON *scope = cJSON_GetObjectItemCaseSensitive(obj, "scope");
    if (rate && !cJSON_IsNull(rate) &&
        (!cJSON_IsString(rate) || keys_parse_rate(rate->valuestring, &e->rate_limit,
                                                  &e->rate_window_s) < 0)) {
        *err = fail("keys[%zu]: \"rate\" must be like \"120/min\"", idx);
        return KEYS_CORRUPT;
    }
    if (conc && !cJSON_IsNull(conc)) {
        if (!cJSON_IsNumber(conc) || conc->valuedouble < 1 || conc->valuedouble > 10000 ||
            conc->valuedouble != (double)(long)conc->valuedouble) {
            *err = fail("keys[%zu]: \"concurrency\" must be an integer in 1..10000", idx);
            return KEYS_CORRUPT;
        }
        e->concurrency = (long)conc->valuedouble;
    }
    e->scopes = KEY_SCOPE_EXECUTE;
    if (scope && !cJSON_IsNull(scope)) {
        const cJSON *s;
        e->scopes = 0;
        if (!cJSON_IsArray(scope)) {
            *err = fail("keys[%zu]: \"scope\" must be an array of \"execute\"/\"admin\"", idx);
            return KEYS_CORRUPT;
        }
        cJSON_ArrayForEach(s, scope) {
            unsigned bit = cJSON_IsString(s) ? keys_parse_scopes(s->valuestring) : 0;
            if (bit != KEY_SCOPE_EXECUTE && bit != KEY_SCOPE_ADMIN) {
                *err = fail("keys[%zu]: \"scope\" must be an array of \"execute\"/\"admin\"", idx);
                return KEYS_CORRUPT;
            }
            e->scopes |= bit;
        }
    }
    return KEYS_OK;
}

static enum keys_status parse_entry(const cJSON *obj, size_t idx, struct key_entry *e,
                                    const char **err)
{
    enum keys_status st = KEYS_OK;

    if (!cJSON_IsObject(obj)) {
        *err = fail("keys[%zu] is not a JSON object", idx);
        return KEYS_CORRUPT;
    }
    for (size_t i = 0; i < NFIELDS && st == KEYS_OK; i++)
        st = parse_field(obj, idx, &fields[i], e, err);
    return st == KEYS_OK ? parse_overrides(obj, idx, e, err) : st;
}

/* Parse exactly len bytes as one JSON value: cJSON stops after the first
 * value, so trailing bytes other than whitespace are refused here. */
static cJSON *parse_json(const char *text, size_t len, const char **err)
{
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, 0);

    /* cJSON cannot tell running out of memory from bad input; both refuse. */
    if (root == NULL) {
        *err = fail("not valid JSON (near byte %zu)", end != NULL ? (size_t)(end - text) : 0);
        return NULL;
    }
    for (; end < text + len; end++) {
        if (!strchr(" \t\r\n", *end) || *end == '\0') {
            *err = fail("unexpected data after the JSON value (byte %zu)", (size_t)(end - text));
            cJSON_Delete(root);
            return NULL;
        }
    }
    return root;
}

static enum keys_status parse_root(const cJSON *root, struct keyring *ring, const char **err)
{
    const cJSON *version, *keys, *item;
    enum keys_status st = KEYS_OK;
    int n;

    if (!cJSON_IsObject(root)) {
        *err = "the top level is not a JSON object";
        return KEYS_CORRUPT;
    }
    version = cJSON_GetObjectItemCaseSensitive(root, "version");
    keys = cJSON_GetObjectItemCaseSensitive(root, "keys");
    if (!cJSON_IsNumber(version) || version->valuedouble != 1) {
        *err = "\"version\" must be 1";
        return KEYS_CORRUPT;
    }
    if (!cJSON_IsArray(keys)) {
        *err = "\"keys\" must be an array";
        return KEYS_CORRUPT;
    }
    n = cJSON_GetArraySize(keys);
    if (n == 0)
        return KEYS_OK;
    ring->entries = calloc((size_t)n, sizeof *ring->entries);
    if (ring->entries == NULL) {
        *err = "out of memory";
        return KEYS_NOMEM;
    }
    cJSON_ArrayForEach(item, keys) {
        /* Counted before parsing so that keys_free frees a half-filled entry. */
        st = parse_entry(item, ring->count, &ring->entries[ring->count], err);
        ring->count++;
        if (st != KEYS_OK)
            break;
    }
    return st;
}

/* ---- uniqueness ------------------------------------------------------- */

static int cmp_id(const void *a, const void *b)
{
    const struct key_entry *const *x = a, *const *y = b;

    return strcmp((*x)->id, (*y)->id);
}

static int cmp_hash(const void *a, const void *b)
{
    const struct key_entry *const *x = a, *const *y = b;

    return memcmp((*x)->hash, (*y)->hash, SHA256_LEN);
}

/* Sort pointers to the entries by cmp and report two neighbours that are
 * equal: O(n log n), since pyexec checks this on every request. */
static enum keys_status find_duplicate(const struct keyring *ring, const struct key_entry **v,
                                       int (*cmp)(const void *, const void *),
                                       const char *field, const char **err)
{
    size_t a, b;

    for (size_t i = 0; i < ring->count; i++)
        v[i] = &ring->entries[i];
    qsort(v, ring->count, sizeof *v, cmp);
    for (size_t i = 1; i < ring->count; i++) {
        if (cmp(&v[i - 1], &v[i]) != 0)
            continue;
        a = (size_t)(v[i - 1] - ring->entries);
        b = (size_t)(v[i] - ring->entries);
        *err = fail("keys[%zu]: \"%s\" is the same as in keys[%zu]",
                    a > b ? a : b, field, a > b ? b : a);
        return KEYS_CORRUPT;
    }
    return KEYS_OK;
}

static enum keys_status check_unique(const struct keyring *ring, const char **err)
{
    const struct key_entry **v;
    enum keys_status st;

    if (ring->count < 2)
        return KEYS_OK;
    v = malloc(ring->count * sizeof *v);
    if (v == NULL) {
        *err = "out of memory";
        return KEYS_NOMEM;
    }
    st = find_duplicate(ring, v, cmp_id, "id", err);
    if (st == KEYS_OK)
        st = find_duplicate(ring, v, cmp_hash, "hash", err);
    free(v);
    return st;
}

enum keys_status keys_parse(const char *text, size_t len, struct keyring *ring,
                            const char **err)
{
    const char *dummy;
    enum keys_status st;
    cJSON *root;

    if (err == NULL)
        err = &dummy;
    ring->entries = NULL;
    ring->count = 0;
    root = parse_json(text, len, err);
    if (root == NULL)
        return KEYS_CORRUPT;
    st = parse_root(root, ring, err);
    cJSON_Delete(root);
    if (st == KEYS_OK)
        st = check_unique(ring, err);
    if (st != KEYS_OK)
        keys_free(ring);
    return st;
}

void keys_free(struct keyring *ring)
{
    if (ring == NULL)
        return;
    for (size_t i = 0; i < ring->count; i++)
        for (size_t f = 0; f < NFIELDS; f++)
            if (fields[f].offset >= 0)
                free(*field_slot(&ring->entries[i], &fields[f]));
    free(ring->entries);
    ring->entries = NULL;
    ring->count = 0;
}

/* ---- authentication --------------------------------------------------- */

const struct key_entry *keys_authenticate(const struct keyring *ring,
                                          const char *key, size_t key_len)
{
    unsigned char hash[SHA256_LEN];
    const struct key_entry *found = NULL;

    if (ring == NULL || key == NULL || key_len == 0 ||
        crypto_sha256(key, key_len, hash) != 0)
        return NULL;
    /* Every entry is compared, with no early exit, so the time taken does
     * not depend on where (or whether) the key is in the file. */
    for (size_t i = 0; i < ring->count; i++) {
        bool equal = crypto_equal(hash, ring->entries[i].hash, SHA256_LEN);

        if (equal && found == NULL)
            found = &ring->entries[i];
    }
    return found != NULL && found->revoked_at == NULL ? found : NULL;
}

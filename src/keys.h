/* The API keys file: reading (pyexec, manage-keys) and locked atomic
 * rewriting (manage-keys).  Only SHA-256 hashes of keys are ever stored. */
#ifndef PYEXEC_KEYS_H
#define PYEXEC_KEYS_H

#include <stdbool.h>
#include <stddef.h>

#include "crypto.h"

#define KEYS_DEFAULT_PATH "/etc/pyexec/api_keys.json"
#define KEYS_CREDENTIAL   "api_keys.json"   /* name under $CREDENTIALS_DIRECTORY */
#define KEYS_MAX_SIZE (16u << 20)  /* larger files are refused, never read */

struct key_entry {
    char *id;          /* "key_" + 16 hex, non-secret, stable */
    char *name;
    char *description;
    char *env;         /* "test" or "prod" */
    char *created;     /* RFC 3339 UTC */
    char *revoked_at;  /* NULL while active */
    char *prefix;      /* first 12 characters of the key, for humans */
    unsigned char hash[SHA256_LEN];
    /* Optional per-key overrides; 0 means "the environment's default". */
    long rate_limit;   /* requests per rate_window_s ("rate": "120/min") */
    long rate_window_s;
    long concurrency;  /* executions at once ("concurrency": 8) */
    unsigned scopes;   /* KEY_SCOPE_* ("scope": ["execute", "admin"]); default execute */
};

#define KEY_SCOPE_EXECUTE 1u   /* POST /execute */
#define KEY_SCOPE_ADMIN   2u   /* GET /metrics */

/* "120/min" (also /s, /sec, /minute, /h, /hour, /day) to a count and a
 * window in seconds; 0, or -1 when malformed or out of range. */
int keys_parse_rate(const char *text, long *limit, long *window_s);

/* "execute", "admin" or "admin,execute" to KEY_SCOPE_* bits; 0 when malformed. */
unsigned keys_parse_scopes(const char *text);

struct keyring {
    struct key_entry *entries;
    size_t count;
};

enum keys_status {
    KEYS_OK = 0,
    KEYS_MISSING,      /* file does not exist */
    KEYS_UNREADABLE,   /* exists but cannot be read (permissions, I/O) */
    KEYS_CORRUPT,      /* not a valid keys file */
    KEYS_NOMEM,
};

/* The keys path: explicit if non-NULL, else $PYEXEC_KEYS, else
 * $CREDENTIALS_DIRECTORY/api_keys.json (systemd), else the default. */
const char *keys_path(const char *explicit_path);

/* Parse a keys file held in memory (len bytes, need not be NUL-terminated).
 * On failure *err names the problem (static or owned by the ring: valid until
 * keys_free).  An empty ring is valid. */
enum keys_status keys_parse(const char *text, size_t len, struct keyring *ring,
                            const char **err);

/* Read the whole file at path into a malloc'd buffer (*text, *len bytes, with
 * a NUL after them that len does not count).  Shared by keys_load and by
 * manage-keys' locked rewrite so that both apply the same limits. */
enum keys_status keys_read_file(const char *path, char **text, size_t *len,
                                const char **err);

/* Read and parse the file at path. */
enum keys_status keys_load(const char *path, struct keyring *ring, const char **err);

void keys_free(struct keyring *ring);

/* The active (not revoked) entry whose hash matches SHA-256(key), or NULL.
 * Compares against every entry in constant time per entry. */
const struct key_entry *keys_authenticate(const struct keyring *ring,
                                          const char *key, size_t key_len);

#endif

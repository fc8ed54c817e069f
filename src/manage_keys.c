/* manage-keys: add, list and revoke pyexec API keys.
 *
 * Shell-friendly: `add` prints the new key alone on stdout, everything else
 * goes to stderr; exit 0 on success, 1 on failure, 2 on a usage error.  The
 * key itself is shown once and never stored: the file holds its SHA-256. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>


#include "crypto.h"
#include "keys.h"
#include "keystore.h"

#define PROG            "manage-keys"
#define KEY_BYTES       24   /* 192 random bits: 48 hex digits */
#define ID_BYTES        8    /* 16 hex digits; ids need to be unique, not secret */
#define PREFIX_LEN      12
#define TIME_LEN        sizeof "2026-11-26T12:00:00Z"

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };

struct options {
    const char *keys;         /* --keys PATH */
    const char *name;         /* add --name */
    const char *description;  /* add --description */
    const char *env;          /* add --env */
    bool json;                /* list --json */
    bool help;                /* -h, --help */
    const char *command;
    const char *arg;          /* revoke's KEY_OR_ID */
    int extra;                /* positional arguments after the command */
};

static const char usage_text[] =
    "Usage: " PROG " [--keys PATH] COMMAND [OPTIONS]\n"
    "\n"
    "Manage the API keys that pyexec accepts.  The keys file holds only SHA-256\n"
    "hashes: a key is shown once, when it is added, and cannot be shown again.\n"
    "\n"
    "Commands:\n"
    "  add --name NAME [--description TEXT] --env test|prod\n"
    "                    create a key; print it alone on stdout\n"
    "  list [--json]     show all keys (never a key or its hash)\n"
    "  revoke KEY_OR_ID  revoke a key, given the key itself or its id\n"
    "  help              show this help\n"
    "\n"
    "Options:\n"
    "  --keys PATH       the keys file (default: $PYEXEC_KEYS if set, else\n"
    "                    " KEYS_DEFAULT_PATH ")\n"
    "  -h, --help        show this help\n"
    "\n"
    "Exit status: 0 success, 1 failure, 2 usage error.\n";

/* One line on stderr, written at once so that concurrent runs do not mix. */
__attribute__((format(printf, 1, 0)))
static void vsay(const char *fmt, va_list ap)
{
    char msg[2048];

    vsnprintf(msg, sizeof msg, fmt, ap);
    fprintf(stderr, PROG ": %s\n", msg);
}

__attribute__((format(printf, 1, 2)))
static void say(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsay(fmt, ap);
    va_end(ap);
}

/* Report a usage error; returns -1 so that parsers can return it. */
__attribute__((format(printf, 1, 2)))
static int usage_error(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsay(fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n%s", usage_text);
    return -1;
}

/* ---- arguments -------------------------------------------------------- */

/* Where the value of option arg goes, and how long its name is (arg may be
 * "--name=VALUE"); NULL for an option that takes no value or is unknown. */
static const char **value_slot(struct options *o, const char *arg, size_t *name_len)
{
    static const char *const names[] = {"--keys", "--name", "--description", "--env"};
    const char **slots[] = {&o->keys, &o->name, &o->description, &o->env};

    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        size_t n = strlen(names[i]);

        if (strncmp(arg, names[i], n) == 0 && (arg[n] == '\0' || arg[n] == '=')) {
            *name_len = n;
            return slots[i];
        }
    }
    return NULL;
}

static int parse_option(struct options *o, int argc, char **argv, int *i)
{
    const char *arg = argv[*i];
    const char **slot;
    size_t n = 0;

    if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
        o->help = true;
        return 0;
    }
    if (strcmp(arg, "--json") == 0) {
        o->json = true;
        return 0;
    }
    slot = value_slot(o, arg, &n);
    if (slot == NULL)
        return usage_error("unknown option %s", arg);
    if (*slot != NULL)
        return usage_error("%.*s given twice", (int)n, arg);
    if (arg[n] == '=')
        *slot = arg + n + 1;
    else if (*i + 1 < argc)
        *slot = argv[++*i];
    else
        return usage_error("%s needs a value", arg);
    return 0;
}

/* Options may come before or after the command; "--" ends them. */
static int parse_args(int argc, char **argv, struct options *o)
{
    bool options_done = false;

    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];

        if (!options_done && strcmp(arg, "--") == 0)
            options_done = true;
        else if (!options_done && arg[0] == '-' && arg[1] != '\0') {
            if (parse_option(o, argc, argv, &i) != 0)
                return -1;
        } else if (o->command == NULL)
            o->command = arg;
        else if (o->extra++ == 0)
            o->arg = arg;
    }
    if (o->keys != NULL && o->keys[0] == '\0')
        return usage_error("--keys needs a non-empty path");
    return 0;
}

/* Each option belongs to one command (--keys and --help to all). */
static int check_args(const struct options *o)
{
    bool is_add = strcmp(o->command, "add") == 0;
    bool is_revoke = strcmp(o->command, "revoke") == 0;

    if (!is_add && (o->name != NULL || o->description != NULL || o->env != NULL))
        return usage_error("--name, --description and --env go with add only");
    if (o->json && strcmp(o->command, "list") != 0)
        return usage_error("--json goes with list only");
    if (is_revoke && o->extra != 1)
        return usage_error("revoke needs exactly one KEY_OR_ID");
    if (!is_revoke && o->extra != 0)
        return usage_error("%s takes no arguments", o->command);
    return 0;
}

/* ---- helpers ---------------------------------------------------------- */

/* Current UTC time as RFC 3339, e.g. 2026-11-26T12:00:00Z; 0 or -1. */
static int utc_now(char out[TIME_LEN])
{
    time_t now = time(NULL);
    struct tm tm;

    if (now == (time_t)-1 || gmtime_r(&now, &tm) == NULL)
        return -1;
    return strftime(out, TIME_LEN, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0 ? -1 : 0;
}

/* Length of the UTF-8 sequence at p that encodes a printable character, or
 * 0: malformed, overlong, a surrogate, or a C0/C1 control character. */
static size_t clean_char_len(const unsigned char *p)
{
    size_t n;
    unsigned long cp, min;

    if (p[0] < 0x80)
        return p[0] >= 0x20 && p[0] != 0x7f;
    if ((p[0] & 0xe0) == 0xc0)
        n = 2, cp = p[0] & 0x1f, min = 0x80;
    else if ((p[0] & 0xf0) == 0xe0)
        n = 3, cp = p[0] & 0x0f, min = 0x800;
    else if ((p[0] & 0xf8) == 0xf0)
        n = 4, cp = p[0] & 0x07, min = 0x10000;
    else
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80)  /* also stops at the NUL */
            return 0;
        cp = cp << 6 | (p[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) || cp < 0xa0)
        return 0;
    return n;
}

/* Names and descriptions end up in JSON read by other tools and in a table
 * on a terminal: valid UTF-8 without control characters only. */
static bool is_clean_text(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;

    while (*p != '\0') {
        size_t n = clean_char_len(p);

        if (n == 0)
            return false;
        p += n;
    }
    return true;
}

/* ---- add -------------------------------------------------------------- */

struct new_key {
    char key[sizeof "sk_test_" + 2 * KEY_BYTES];
    char id[sizeof "key_" + 2 * ID_BYTES];
    char hash[sizeof "sha256:" + 2 * SHA256_LEN];
    char prefix[PREFIX_LEN + 1];
    char created[TIME_LEN];
};

static int check_add_input(const struct options *o)
{
    if (o->name == NULL || o->name[0] == '\0')
        say("add needs --name NAME (a non-empty name)");
    else if (!is_clean_text(o->name))
        say("--name must be UTF-8 text without control characters");
    else if (o->description != NULL && !is_clean_text(o->description))
        say("--description must be UTF-8 text without control characters");
    else if (o->env == NULL)
        say("add needs --env test or --env prod");
    else if (strcmp(o->env, "test") != 0 && strcmp(o->env, "prod") != 0)
        say("--env must be test or prod, not \"%s\"", o->env);
    else
        return 0;
    return -1;
}

static int new_id(char id[sizeof "key_" + 2 * ID_BYTES])
{
    unsigned char raw[ID_BYTES];

    if (crypto_random(raw, sizeof raw) != 0)
        return -1;
    memcpy(id, "key_", 4);
    crypto_hex(raw, sizeof raw, id + 4);
    return 0;
}

static bool id_taken(const struct keyring *ring, const char *id)
{
    for (size_t i = 0; i < ring->count; i++)
        if (strcmp(ring->entries[i].id, id) == 0)
            return true;
    return false;
}

/* Fill k with a fresh key for env and everything derived from it. */
static int make_key(const char *env, const struct keyring *ring, struct new_key *k)
{
    unsigned char raw[KEY_BYTES], digest[SHA256_LEN];
    int n = snprintf(k->key, sizeof k->key, "sk_%s_", env);
    int rc = -1;

    if (n < 0 || (size_t)n + 2 * KEY_BYTES >= sizeof k->key || crypto_random(raw, sizeof raw) != 0)
        goto out;
    crypto_hex(raw, sizeof raw, k->key + n);
    if (crypto_sha256(k->key, strlen(k->key), digest) != 0 || utc_now(k->created) != 0)
        goto out;
    memcpy(k->hash, "sha256:", 7);
    crypto_hex(digest, sizeof digest, k->hash + 7);
    memcpy(k->prefix, k->key, PREFIX_LEN);
    k->prefix[PREFIX_LEN] = '\0';
    /* A clash is all but impossible, but would make the file invalid. */
    do {
        if (new_id(k->id) != 0)
            goto out;
    } while (id_taken(ring, k->id));
    rc = 0;
out:
    crypto_wipe(raw, sizeof raw);
    return rc;
}

/* The entry for the file, fields in the documented order. */
static cJSON *entry_json(const struct options *o, const struct new_key *k)
{
    cJSON *e = cJSON_CreateObject();

    if (e == NULL || !cJSON_AddStringToObject(e, "id", k->id) ||
        !cJSON_AddStringToObject(e, "name", o->name) ||
        !cJSON_AddStringToObject(e, "description", o->description ? o->description : "") ||
        !cJSON_AddStringToObject(e, "env", o->env) ||
        !cJSON_AddStringToObject(e, "created", k->created) ||
        !cJSON_AddNullToObject(e, "revoked_at") ||
        !cJSON_AddStringToObject(e, "prefix", k->prefix) ||
        !cJSON_AddStringToObject(e, "hash", k->hash)) {
        cJSON_Delete(e);
        return NULL;
    }
    return e;
}

/* Add the key to the file under the lock; 0 or -1 (reported). */
static int store_key(const struct options *o, const char *path, struct new_key *k)
{
    struct keystore ks;
    cJSON *e = NULL;
    int rc = -1;

    if (keystore_open(&ks, path) != 0)
        goto out;
    if (make_key(o->env, &ks.ring, k) != 0) {
        snprintf(ks.err, sizeof ks.err, "cannot generate a key (libcrypto failed)");
        goto out;
    }
    e = entry_json(o, k);
    if (e == NULL || !cJSON_AddItemToArray(ks.keys, e)) {
        cJSON_Delete(e);
        snprintf(ks.err, sizeof ks.err, "out of memory");
        goto out;
    }
    rc = keystore_commit(&ks);
out:
    if (rc != 0)
        say("%s", ks.err);
    keystore_close(&ks);
    return rc;
}

static int cmd_add(const struct options *o, const char *path)
{
    struct new_key k = {0};
    int rc = EXIT_FAIL;

    if (check_add_input(o) != 0)
        return EXIT_FAIL;
    if (store_key(o, path, &k) != 0)
        goto out;
    /* The key goes out only once it is safely in the file. */
    if (printf("%s\n", k.key) < 0 || fflush(stdout) != 0) {
        say("%s was added but could not be printed; revoke it: " PROG " revoke %s",
            k.id, k.id);
        goto out;
    }
    say("added %s (%s, %s) for \"%s\" to %s", k.id, k.prefix, o->env, o->name, path);
    rc = EXIT_OK;
out:
    crypto_wipe(&k, sizeof k);
    return rc;
}

/* ---- list ------------------------------------------------------------- */

enum { COL_ID, COL_NAME, COL_ENV, COL_CREATED, COL_REVOKED, COL_PREFIX, COL_DESC, NCOLS };

static const char *const headers[NCOLS] = {
    "ID", "NAME", "ENV", "CREATED", "REVOKED", "PREFIX", "DESCRIPTION",
};

static const char *cell(const struct key_entry *e, int col)
{
    switch (col) {
    case COL_ID: return e->id;
    case COL_NAME: return e->name;
    case COL_ENV: return e->env;
    case COL_CREATED: return e->created;
    case COL_REVOKED: return e->revoked_at != NULL ? e->revoked_at : "no";
    case COL_PREFIX: return e->prefix;
    default: return e->description;
    }
}

/* One row: columns padded to width, the last (free text) not padded. */
static void print_row(const char *const cells[NCOLS], const size_t width[NCOLS])
{
    for (int c = 0; c < NCOLS - 1; c++)
        printf("%-*s  ", (int)width[c], cells[c]);
    printf("%s\n", cells[NCOLS - 1]);
}

static int print_table(const struct keyring *ring)
{
    size_t width[NCOLS];
    const char *cells[NCOLS];

    for (int c = 0; c < NCOLS; c++) {
        width[c] = strlen(headers[c]);
        for (size_t i = 0; i < ring->count; i++)
            if (strlen(cell(&ring->entries[i], c)) > width[c])
                width[c] = strlen(cell(&ring->entries[i], c));
    }
    print_row(headers, width);
    for (size_t i = 0; i < ring->count; i++) {
        for (int c = 0; c < NCOLS; c++)
            cells[c] = cell(&ring->entries[i], c);
        print_row(cells, width);
    }
    return EXIT_OK;
}

/* What list --json shows of one entry: everything but the hash. */
static cJSON *listed_json(const struct key_entry *e)
{
    cJSON *o = cJSON_CreateObject();

    if (o == NULL || !cJSON_AddStringToObject(o, "id", e->id) ||
        !cJSON_AddStringToObject(o, "name", e->name) ||
        !cJSON_AddStringToObject(o, "description", e->description) ||
        !cJSON_AddStringToObject(o, "env", e->env) ||
        !cJSON_AddStringToObject(o, "created", e->created) ||
        !cJSON_AddBoolToObject(o, "revoked", e->revoked_at != NULL) ||
        !(e->revoked_at != NULL ? cJSON_AddStringToObject(o, "revoked_at", e->revoked_at)
                                : cJSON_AddNullToObject(o, "revoked_at")) ||
        !cJSON_AddStringToObject(o, "prefix", e->prefix)) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

static int print_json(const struct keyring *ring)
{
    cJSON *list = cJSON_CreateArray(), *item;
    char *text = NULL;
    int rc = EXIT_FAIL;

    for (size_t i = 0; list != NULL && i < ring->count; i++) {
        item = listed_json(&ring->entries[i]);
        if (item == NULL || !cJSON_AddItemToArray(list, item)) {
            cJSON_Delete(item);
            goto out;
        }
    }
    text = list != NULL ? cJSON_Print(list) : NULL;
    if (text != NULL) {
        printf("%s\n", text);
        rc = EXIT_OK;
    }
out:
    if (rc != EXIT_OK)
        say("out of memory");
    free(text);
    cJSON_Delete(list);
    return rc;
}

/* Reading needs no lock: the file is only ever replaced whole. */
static int cmd_list(const struct options *o, const char *path)
{
    struct keyring ring;
    const char *why = NULL;
    enum keys_status st = keys_load(path, &ring, &why);
    int rc;

    if (st == KEYS_MISSING)
        st = KEYS_OK;  /* no file yet: no keys */
    if (st != KEYS_OK) {
        say(st == KEYS_CORRUPT ? "%s is not a valid keys file: %s" : "%s: %s", path, why);
        return EXIT_FAIL;
    }
    rc = o->json ? print_json(&ring) : print_table(&ring);
    keys_free(&ring);
    return rc;
}

/* ---- revoke ----------------------------------------------------------- */

/* The entry that target names, as an id or else as the key itself (matched
 * by hash, comparing every entry as pyexec does): 1 found, 0 not, -1 error. */
static int find_entry(const struct keyring *ring, const char *target, size_t *idx)
{
    unsigned char hash[SHA256_LEN];
    int found = 0;

    for (size_t i = 0; i < ring->count; i++) {
        if (strcmp(ring->entries[i].id, target) == 0) {
            *idx = i;
            return 1;
        }
    }
    if (crypto_sha256(target, strlen(target), hash) != 0)
        return -1;
    for (size_t i = 0; i < ring->count; i++) {
        if (crypto_equal(hash, ring->entries[i].hash, SHA256_LEN) && !found) {
            *idx = i;
            found = 1;
        }
    }
    return found;
}

/* Set revoked_at of entry idx in the document; 0 or -1. */
static int mark_revoked(struct keystore *ks, size_t idx)
{
    char now[TIME_LEN];
    cJSON *entry = cJSON_GetArrayItem(ks->keys, (int)idx);
    cJSON *when;

    if (entry == NULL || utc_now(now) != 0 || (when = cJSON_CreateString(now)) == NULL)
        return -1;
    if (!cJSON_ReplaceItemInObjectCaseSensitive(entry, "revoked_at", when)) {
        cJSON_Delete(when);
        return -1;
    }
    return 0;
}

static int revoke_entry(struct keystore *ks, const char *target)
{
    const struct key_entry *e;
    size_t idx = 0;
    int found = find_entry(&ks->ring, target, &idx);

    if (found < 0) {
        say("cannot hash the key (libcrypto failed)");
        return EXIT_FAIL;
    }
    if (found == 0) {
        say("no key in %s has that id or key", ks->path);
        return EXIT_FAIL;
    }
    e = &ks->ring.entries[idx];
    if (e->revoked_at != NULL) {
        say("%s (\"%s\") was already revoked at %s; nothing changed", e->id, e->name,
            e->revoked_at);
        return EXIT_OK;
    }
    if (mark_revoked(ks, idx) != 0) {
        say("cannot revoke %s: out of memory or clock unavailable", e->id);
        return EXIT_FAIL;
    }
    if (keystore_commit(ks) != 0) {
        say("%s", ks->err);
        return EXIT_FAIL;
    }
    /* keystore_commit refreshed the ring, so look the entry up again. */
    e = &ks->ring.entries[idx];
    say("revoked %s (\"%s\") at %s", e->id, e->name, e->revoked_at);
    return EXIT_OK;
}

static int cmd_revoke(const struct options *o, const char *path)
{
    struct keystore ks;
    int rc = EXIT_FAIL;

    if (keystore_open(&ks, path) != 0)
        say("%s", ks.err);
    else
        rc = revoke_entry(&ks, o->arg);
    keystore_close(&ks);
    return rc;
}

/* ---- main ------------------------------------------------------------- */

static const struct command {
    const char *name;
    int (*run)(const struct options *o, const char *path);
} commands[] = {
    {"add", cmd_add},
    {"list", cmd_list},
    {"revoke", cmd_revoke},
};

static const struct command *find_command(const char *name)
{
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

int main(int argc, char **argv)
{
    struct options o = {0};
    const struct command *cmd;
    int rc;

    if (parse_args(argc, argv, &o) != 0)
        return EXIT_USAGE;
    if (o.help || (o.command != NULL && strcmp(o.command, "help") == 0)) {
        fputs(usage_text, stdout);
        return fflush(stdout) == 0 ? EXIT_OK : EXIT_FAIL;
    }
    if (o.command == NULL) {
        usage_error("no command given");
        return EXIT_USAGE;
    }
    cmd = find_command(o.command);
    if (cmd == NULL) {
        usage_error("unknown command \"%s\"", o.command);
        return EXIT_USAGE;
    }
    if (check_args(&o) != 0)
        return EXIT_USAGE;
    rc = cmd->run(&o, keys_path(o.keys));
    /* A full disk or closed pipe on stdout must not pass for success. */
    if (fflush(stdout) != 0 || ferror(stdout)) {
        say("cannot write to standard output");
        rc = EXIT_FAIL;
    }
    return rc;
}

/* manage-keys: add, change, list and revoke pyexec API keys, and report how
 * much each has been used (from the counters pyexec keeps in its state
 * directory); carry the keys file to other hosts (export, import) and give
 * HAProxy the per-key limits (export-haproxy-limits).
 *
 * Shell-friendly: `add` prints the new key alone on stdout (or, with --json,
 * one line of JSON with its id), everything else goes to stderr; exit 0 on
 * success, 1 on failure, 2 on a usage error (in one line, with a hint).  The
 * key itself is shown once and never stored: the file holds its SHA-256. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "crypto.h"
#include "keys.h"
#include "keystore.h"
#include "state.h"
#include "usage_counters.h"
#include "version.h"

#define PROG            "manage-keys"
#define KEY_BYTES       24   /* 192 random bits: 48 hex digits */
#define ID_BYTES        8    /* 16 hex digits; ids need to be unique, not secret */
#define PREFIX_LEN      12
#define TIME_LEN        sizeof "2026-11-26T12:00:00Z"
#define MAX_CONCURRENCY 10000      /* the most keys.c accepts */
#define DEFAULT_WORD    "default"  /* set: drop the key's own setting */
#define RATE_LEN        32         /* "1000000/day" and more */
#define NUM_LEN         32         /* a uint64_t, or one in thousandths as "N.NNN" */
#define MAX_COLS        18         /* the widest table (usage) */

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };

struct options {
    const char *keys;         /* --keys PATH */
    const char *name;         /* add, set --name */
    const char *description;  /* add, set --description */
    const char *env;          /* add --env */
    const char *rate;         /* add, set --rate */
    const char *concurrency;  /* add, set --concurrency */
    const char *scope;        /* add, set --scope */
    const char *state;        /* usage --state */
    const char *out;          /* export, export-haproxy-limits --out */
    const char *period;       /* export-haproxy-limits --period */
    const char *test_rate;    /* export-haproxy-limits --test-rate */
    const char *prod_rate;    /* export-haproxy-limits --prod-rate */
    bool json;                /* add, list, usage --json */
    bool force;               /* import --force */
    bool help;                /* -h, --help */
    bool version;             /* --version */
    const char *command;
    const char *arg;          /* revoke's or set's KEY_OR_ID, import's FILE, help's COMMAND */
    int extra;                /* positional arguments after the command */
    const char *unknown;      /* the first unknown option, or NULL */
    char error[160];          /* else what was wrong with an option, or "" */
};

/* Printed by --help of every command, and in the overview. */
#define COMMON_HELP \
    "  --keys PATH       the keys file (default: $PYEXEC_KEYS if set, else\n" \
    "                    " KEYS_DEFAULT_PATH ")\n" \
    "  -h, --help        show this help\n"

#define LIMITS_HELP \
    "  --rate N/UNIT     at most N requests (1 to 1000000) per UNIT: s, min, h or\n" \
    "                    day (also sec, second, minute, hour), e.g. 120/min\n" \
    "  --concurrency N   at most N executions at once, 1 to 10000\n" \
    "  --scope SCOPES    what the key may do, comma-separated: execute (run code)\n" \
    "                    and admin (read /metrics), e.g. admin,execute; an\n" \
    "                    admin-only key cannot run code\n"

#define EXIT_HELP \
    "Exit status: 0 success; 1 failure (e.g. the keys file or the key not found,\n" \
    "an invalid file, an I/O error); 2 usage error (unknown command or option,\n" \
    "missing or malformed option value, options that do not go together).\n"

static const char usage_text[] =
    "Usage: " PROG " [--keys PATH] COMMAND [OPTIONS]\n"
    "       " PROG " COMMAND --help | " PROG " help COMMAND | " PROG " --version\n"
    "\n"
    "Manage the API keys that pyexec accepts.  The keys file holds only SHA-256\n"
    "hashes: a key is shown once, when it is added, and cannot be shown again.\n"
    "\n"
    "Commands:\n"
    "  add                    create a key; print it alone on stdout (or --json)\n"
    "  set KEY_OR_ID          change a key's name, description, limits or scopes\n"
    "  list                   show all keys and their limits (never a key or its hash)\n"
    "  revoke KEY_OR_ID       revoke a key, given the key itself or its id\n"
    "  usage                  show what every key, revoked ones too, has used\n"
    "  export                 write the keys file with its SHA-256, for other hosts\n"
    "  import FILE            check an export, then replace the keys file with it\n"
    "  export-haproxy-limits  write HAProxy's map of per-key rate limits\n"
    "  help [COMMAND]         show this help, or a command's\n"
    "\n"
    "Options of every command:\n"
    COMMON_HELP
    "  --version         print the version and exit\n"
    "\n"
    "Every command that reads the keys file warns on stderr when group or others\n"
    "may read or write it (it should be mode 0600); list and usage warn when it,\n"
    "or the state directory, does not exist, and show no keys or zeros.\n"
    "\n"
    EXIT_HELP;

static const char add_help[] =
    "Usage: " PROG " [--keys PATH] add --name NAME --env test|prod\n"
    "           [--description TEXT] [--rate N/UNIT] [--concurrency N]\n"
    "           [--scope SCOPES] [--json]\n"
    "\n"
    "Create a key and print it alone on stdout, once: the keys file keeps only its\n"
    "SHA-256.  Without limits and scopes of its own, the key gets its environment's\n"
    "limits and may execute only.\n"
    "\n"
    "Options:\n"
    "  --name NAME       who the key is for (required)\n"
    "  --description TEXT\n"
    "                    free text\n"
    "  --env test|prod   the environment, whose limits apply (required)\n"
    LIMITS_HELP
    "  --json            print one line of JSON instead: the id, the key and the\n"
    "                    key's settings, as list --json shows them\n"
    COMMON_HELP
    "\n" EXIT_HELP;

static const char set_help[] =
    "Usage: " PROG " [--keys PATH] set KEY_OR_ID [--name NAME] [--description TEXT]\n"
    "           [--rate N/UNIT|default] [--concurrency N|default]\n"
    "           [--scope SCOPES|default]\n"
    "\n"
    "Change a key, given the key itself or its id; at least one option.\n"
    "\n"
    "Options:\n"
    "  --name NAME, --description TEXT\n"
    "                    the key's new name or description\n"
    LIMITS_HELP
    "  default           in place of a value: drop the key's own setting so that\n"
    "                    the default applies again\n"
    COMMON_HELP
    "\n" EXIT_HELP;

static const char list_help[] =
    "Usage: " PROG " [--keys PATH] list [--json]\n"
    "\n"
    "Show all keys and their limits, never a key or its hash.\n"
    "\n"
    "Options:\n"
    "  --json            print JSON instead of a table\n"
    COMMON_HELP
    "\n" EXIT_HELP;

static const char revoke_help[] =
    "Usage: " PROG " [--keys PATH] revoke KEY_OR_ID\n"
    "\n"
    "Revoke a key, given the key itself or its id.  The entry stays in the file.\n"
    "\n"
    "Options:\n"
    COMMON_HELP
    "\n" EXIT_HELP;

static const char usage_help[] =
    "Usage: " PROG " [--keys PATH] usage [--json] [--state DIR]\n"
    "\n"
    "Show, per key (revoked ones too), the requests admitted and how they ended\n"
    "(successes, user errors, timeouts, memory errors, output limits, internal\n"
    "errors, refused before execution, client gone; these sum to the requests),\n"
    "the requests refused by the rate or the concurrency limit, and CPU\n"
    "and wall-clock seconds.  A key that never made a request shows zeros.\n"
    "\n"
    "Options:\n"
    "  --json            print JSON instead of a table\n"
    "  --state DIR       pyexec's state directory (default: $PYEXEC_STATE if set,\n"
    "                    else " STATE_DEFAULT_DIR ")\n"
    COMMON_HELP
    "\n" EXIT_HELP;

static const char export_help[] =
    "Usage: " PROG " [--keys PATH] export [--out FILE]\n"
    "\n"
    "Write the keys file with its SHA-256, for import on other hosts.\n"
    "\n"
    "Options:\n"
    "  --out FILE        write FILE (atomically; a new one gets mode 0600) instead\n"
    "                    of stdout\n"
    COMMON_HELP
    "\n" EXIT_HELP;

static const char import_help[] =
    "Usage: " PROG " [--keys PATH] import [--force] FILE\n"
    "\n"
    "Check an export's checksum and contents, then replace the keys file with it\n"
    "under the lock.  FILE - is stdin.\n"
    "\n"
    "Options:\n"
    "  --force           also when the export lacks keys this file has, or would\n"
    "                    bring a revoked key back (an older export?)\n"
    COMMON_HELP
    "\n" EXIT_HELP;

static const char limits_help[] =
    "Usage: " PROG " [--keys PATH] export-haproxy-limits [--out FILE] [--period S]\n"
    "           [--test-rate N/UNIT] [--prod-rate N/UNIT]\n"
    "\n"
    "Write HAProxy's map of per-key rate limits, one line per key: the SHA-256 of\n"
    "the key in hex, requests per period (0: revoked).\n"
    "\n"
    "Options:\n"
    "  --out FILE        write FILE (atomically) instead of stdout\n"
    "  --period S        the period in seconds of HAProxy's rate counter,\n"
    "                    gpc0_rate(S) (default 60); a key whose window differs is\n"
    "                    scaled to it, rounded up (warned)\n"
    "  --test-rate N/UNIT, --prod-rate N/UNIT\n"
    "                    the limit of keys without their own rate, as\n"
    "                    pyexec.conf's rate_limit per rate_window_s says (default\n"
    "                    60/min and 600/min, pyexec's defaults)\n"
    COMMON_HELP
    "\n" EXIT_HELP;

static const char help_help[] =
    "Usage: " PROG " help [COMMAND]\n"
    "\n"
    "Show the overview of " PROG ", or the help of COMMAND.\n";

/* The command that usage errors point to for help (NULL: the overview). */
static const char *hint_cmd;

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

/* Report a usage error in one line, with where to find help; returns -1 so
 * that parsers can return it. */
__attribute__((format(printf, 1, 2)))
static int usage_error(const char *fmt, ...)
{
    char msg[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    say("%s; see '" PROG "%s%s --help'", msg, hint_cmd != NULL ? " " : "",
        hint_cmd != NULL ? hint_cmd : "");
    return -1;
}

/* ---- arguments -------------------------------------------------------- */

/* Where the value of option arg goes, and how long its name is (arg may be
 * "--name=VALUE"); NULL for an option that takes no value or is unknown. */
static const char **value_slot(struct options *o, const char *arg, size_t *name_len)
{
    static const char *const names[] = {
        "--keys", "--name", "--description", "--env", "--rate", "--concurrency", "--scope",
        "--state", "--out", "--period", "--test-rate", "--prod-rate",
    };
    const char **slots[] = {
        &o->keys, &o->name, &o->description, &o->env, &o->rate, &o->concurrency, &o->scope,
        &o->state, &o->out, &o->period, &o->test_rate, &o->prod_rate,
    };

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
    if (strcmp(arg, "--force") == 0) {
        o->force = true;
        return 0;
    }
    if (strcmp(arg, "--version") == 0) {
        o->version = true;
        return 0;
    }
    slot = value_slot(o, arg, &n);
    if (slot == NULL)
        o->unknown = arg;
    else if (*slot != NULL)
        snprintf(o->error, sizeof o->error, "%.*s given twice", (int)n, arg);
    else if (arg[n] == '=')
        *slot = arg + n + 1;
    else if (*i + 1 < argc)
        *slot = argv[++*i];
    else
        snprintf(o->error, sizeof o->error, "%s needs a value", arg);
    return o->unknown != NULL || o->error[0] != '\0' ? -1 : 0;
}

/* Options may come before or after the command; "--" ends them.  After a
 * bad option, only the command is looked for, so that the error can point
 * to its help (report_parse_error). */
static int parse_args(int argc, char **argv, struct options *o)
{
    bool options_done = false, bad = false;

    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];

        if (!options_done && strcmp(arg, "--") == 0)
            options_done = true;
        else if (!options_done && arg[0] == '-' && arg[1] != '\0') {
            if (!bad && parse_option(o, argc, argv, &i) != 0)
                bad = true;
        } else if (o->command == NULL)
            o->command = arg;
        else if (o->extra++ == 0)
            o->arg = arg;
    }
    return bad ? -1 : 0;
}

static int report_parse_error(const struct options *o)
{
    size_t n = o->unknown != NULL ? strcspn(o->unknown, "=") : 0;

    if (o->unknown != NULL && hint_cmd != NULL)
        usage_error("unknown option '%.*s' for '%s'", (int)n, o->unknown, hint_cmd);
    else if (o->unknown != NULL)
        usage_error("unknown option '%.*s'", (int)n, o->unknown);
    else
        usage_error("%s", o->error);
    return EXIT_USAGE;
}

/* Each option belongs to some commands (--keys and --help to all). */
static int check_args(const struct options *o)
{
    bool is_add = strcmp(o->command, "add") == 0;
    bool is_set = strcmp(o->command, "set") == 0;
    bool is_usage = strcmp(o->command, "usage") == 0;
    bool is_import = strcmp(o->command, "import") == 0;
    bool is_limits = strcmp(o->command, "export-haproxy-limits") == 0;
    bool takes_key = is_set || strcmp(o->command, "revoke") == 0;
    bool changes = o->name != NULL || o->description != NULL || o->rate != NULL ||
                   o->concurrency != NULL || o->scope != NULL;

    if (o->keys != NULL && o->keys[0] == '\0')
        return usage_error("--keys needs a non-empty path");
    if (o->state != NULL && o->state[0] == '\0')
        return usage_error("--state needs a non-empty path");
    if (o->out != NULL && o->out[0] == '\0')
        return usage_error("--out needs a non-empty path");
    if (!is_add && o->env != NULL)
        return usage_error("--env goes with add only");
    if (!is_add && !is_set && changes)
        return usage_error("--name, --description, --rate, --concurrency and --scope go "
                           "with add and set only");
    if (o->json && !is_add && !is_usage && strcmp(o->command, "list") != 0)
        return usage_error("--json goes with add, list and usage only");
    if (o->state != NULL && !is_usage)
        return usage_error("--state goes with usage only");
    if (o->out != NULL && !is_limits && strcmp(o->command, "export") != 0)
        return usage_error("--out goes with export and export-haproxy-limits only");
    if (o->force && !is_import)
        return usage_error("--force goes with import only");
    if ((o->period != NULL || o->test_rate != NULL || o->prod_rate != NULL) && !is_limits)
        return usage_error("--period, --test-rate and --prod-rate go with "
                           "export-haproxy-limits only");
    if (takes_key && o->extra != 1)
        return usage_error("%s needs exactly one KEY_OR_ID", o->command);
    if (is_import && o->extra != 1)
        return usage_error("import needs exactly one FILE (- for stdin)");
    if (!takes_key && !is_import && o->extra != 0)
        return usage_error("%s takes no arguments", o->command);
    if (is_set && !changes)
        return usage_error("set needs at least one of --name, --description, --rate, "
                           "--concurrency and --scope");
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

/* ---- limits and scopes ------------------------------------------------ */

static bool is_default(const char *s)
{
    return strcmp(s, DEFAULT_WORD) == 0;
}

/* "120/min" as pyexec reads it; a sign or a space before the number, which
 * strtol would let through, is refused too. */
static bool valid_rate(const char *s)
{
    long limit, window_s;

    return s[0] >= '0' && s[0] <= '9' && keys_parse_rate(s, &limit, &window_s) == 0;
}

/* An integer 1..MAX_CONCURRENCY in plain digits, or -1. */
static long parse_concurrency(const char *s)
{
    char *end;
    long n;

    if (s[0] < '0' || s[0] > '9')
        return -1;
    errno = 0;
    n = strtol(s, &end, 10);
    if (errno != 0 || *end != '\0' || n < 1 || n > MAX_CONCURRENCY)
        return -1;
    return n;
}

/* The given --rate, --concurrency and --scope; with allow_default (set),
 * "default" too.  0, or -1 (reported). */
static int check_limits(const struct options *o, bool allow_default)
{
    const char *or_default = allow_default ? ", or " DEFAULT_WORD : "";

    if (o->rate != NULL && !(allow_default && is_default(o->rate)) && !valid_rate(o->rate))
        usage_error("--rate must be N/UNIT with N from 1 to 1000000 and UNIT s, min, h or day "
                    "(e.g. 120/min)%s, not \"%s\"", or_default, o->rate);
    else if (o->concurrency != NULL && !(allow_default && is_default(o->concurrency)) &&
             parse_concurrency(o->concurrency) < 0)
        usage_error("--concurrency must be an integer from 1 to %d%s, not \"%s\"",
                    MAX_CONCURRENCY, or_default, o->concurrency);
    else if (o->scope != NULL && !(allow_default && is_default(o->scope)) &&
             keys_parse_scopes(o->scope) == 0)
        usage_error("--scope must be execute, admin or both comma-separated "
                    "(e.g. admin,execute)%s, not \"%s\"", or_default, o->scope);
    else
        return 0;
    return -1;
}

/* The scopes as the file holds them: execute first, then admin. */
static cJSON *scope_json(unsigned scopes)
{
    cJSON *a = cJSON_CreateArray();

    if (a == NULL ||
        ((scopes & KEY_SCOPE_EXECUTE) && !cJSON_AddItemToArray(a, cJSON_CreateString("execute"))) ||
        ((scopes & KEY_SCOPE_ADMIN) && !cJSON_AddItemToArray(a, cJSON_CreateString("admin")))) {
        cJSON_Delete(a);
        return NULL;
    }
    return a;
}

static const char *scope_text(unsigned scopes)
{
    switch (scopes & (KEY_SCOPE_EXECUTE | KEY_SCOPE_ADMIN)) {
    case KEY_SCOPE_EXECUTE: return "execute";
    case KEY_SCOPE_ADMIN: return "admin";
    case KEY_SCOPE_EXECUTE | KEY_SCOPE_ADMIN: return "execute,admin";
    default: return "none";
    }
}

/* The key's own rate with the shortest name of its unit, or NULL when it
 * has none. */
static const char *rate_text(const struct key_entry *e, char buf[RATE_LEN])
{
    static const struct { long seconds; const char *unit; } units[] = {
        {1, "s"}, {60, "min"}, {3600, "h"}, {86400, "day"},
    };

    if (e->rate_limit <= 0)
        return NULL;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (units[i].seconds == e->rate_window_s) {
            snprintf(buf, RATE_LEN, "%ld/%s", e->rate_limit, units[i].unit);
            return buf;
        }
    }
    snprintf(buf, RATE_LEN, "%ld/%lds", e->rate_limit, e->rate_window_s);
    return buf;
}

/* The key's own concurrency, or NULL when it has none. */
static const char *concurrency_text(const struct key_entry *e, char buf[NUM_LEN])
{
    if (e->concurrency <= 0)
        return NULL;
    snprintf(buf, NUM_LEN, "%ld", e->concurrency);
    return buf;
}

/* ---- editing entries -------------------------------------------------- */

/* Put value under name in obj: in place of the first field of that name, so
 * that the order of fields is kept, else at the end; later fields of the same
 * name (a hand-edited file may have them) are dropped.  0, or -1 when value
 * is NULL (out of memory) or cannot be added.  value ends up in obj or freed. */
static int put_field(cJSON *obj, const char *name, cJSON *value)
{
    cJSON *next;

    if (obj == NULL || value == NULL) {
        cJSON_Delete(value);
        return -1;
    }
    if (cJSON_GetObjectItemCaseSensitive(obj, name) == NULL) {
        if (!cJSON_AddItemToObject(obj, name, value)) {
            cJSON_Delete(value);
            return -1;
        }
        return 0;
    }
    if (!cJSON_ReplaceItemInObjectCaseSensitive(obj, name, value)) {
        cJSON_Delete(value);
        return -1;
    }
    for (cJSON *c = value->next; c != NULL; c = next) {
        next = c->next;
        if (c->string != NULL && strcmp(c->string, name) == 0)
            cJSON_Delete(cJSON_DetachItemViaPointer(obj, c));
    }
    return 0;
}

/* Remove every field called name from obj. */
static void drop_field(cJSON *obj, const char *name)
{
    cJSON *item;

    while ((item = cJSON_GetObjectItemCaseSensitive(obj, name)) != NULL)
        cJSON_Delete(cJSON_DetachItemViaPointer(obj, item));
}

/* Write the given --rate, --concurrency and --scope into entry ("default":
 * drop the field).  The values were checked already.  0 or -1. */
static int put_limits(cJSON *entry, const struct options *o)
{
    int rc = 0;

    if (entry == NULL)
        return -1;
    if (o->rate != NULL && is_default(o->rate))
        drop_field(entry, "rate");
    else if (o->rate != NULL)
        rc |= put_field(entry, "rate", cJSON_CreateString(o->rate));
    if (o->concurrency != NULL && is_default(o->concurrency))
        drop_field(entry, "concurrency");
    else if (o->concurrency != NULL)
        rc |= put_field(entry, "concurrency",
                        cJSON_CreateNumber((double)parse_concurrency(o->concurrency)));
    if (o->scope != NULL && is_default(o->scope))
        drop_field(entry, "scope");
    else if (o->scope != NULL)
        rc |= put_field(entry, "scope", scope_json(keys_parse_scopes(o->scope)));
    return rc;
}

/* ---- output ----------------------------------------------------------- */

/* Text in columns: row 0 holds the headers; columns are padded to the widest
 * cell (numbers aligned right), except the last, free text. */
struct table {
    int ncols;
    size_t nrows;
    unsigned right;  /* bit c set: column c is aligned right */
    char **cells;    /* nrows * ncols, each owned by the table */
};

static int table_init(struct table *t, int ncols, size_t nrows, unsigned right)
{
    t->ncols = ncols;
    t->nrows = nrows;
    t->right = right;
    t->cells = calloc(nrows, (size_t)ncols * sizeof *t->cells);
    return t->cells != NULL ? 0 : -1;
}

/* Fill one cell; 0, or -1 when out of memory. */
__attribute__((format(printf, 4, 5)))
static int table_set(struct table *t, size_t row, int col, const char *fmt, ...)
{
    char **slot = &t->cells[row * (size_t)t->ncols + (size_t)col];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vasprintf(slot, fmt, ap);
    va_end(ap);
    if (n < 0) {
        *slot = NULL;
        return -1;
    }
    return 0;
}

/* Print a table whose every cell is set. */
static void table_print(const struct table *t)
{
    size_t width[MAX_COLS] = {0};
    int last = t->ncols - 1;

    for (size_t r = 0; r < t->nrows; r++)
        for (int c = 0; c < last; c++)
            if (strlen(t->cells[r * (size_t)t->ncols + (size_t)c]) > width[c])
                width[c] = strlen(t->cells[r * (size_t)t->ncols + (size_t)c]);
    for (size_t r = 0; r < t->nrows; r++) {
        char *const *row = &t->cells[r * (size_t)t->ncols];

        for (int c = 0; c < last; c++)  /* a negative width pads on the right */
            printf("%*s  ", (t->right >> c & 1u) ? (int)width[c] : -(int)width[c], row[c]);
        printf("%s\n", row[last]);
    }
}

static void table_free(struct table *t)
{
    for (size_t i = 0; t->cells != NULL && i < t->nrows * (size_t)t->ncols; i++)
        free(t->cells[i]);
    free(t->cells);
    t->cells = NULL;
}

/* Print the table if every cell was filled (bad == 0), free it, and give the
 * command's exit status. */
static int table_finish(struct table *t, int bad)
{
    if (bad == 0)
        table_print(t);
    else
        say("out of memory");
    table_free(t);
    return bad == 0 ? EXIT_OK : EXIT_FAIL;
}

/* Print a JSON array of n objects, object i made by item(ctx, i); an exit
 * status. */
static int print_json(size_t n, cJSON *(*item)(const void *ctx, size_t i), const void *ctx)
{
    cJSON *list = cJSON_CreateArray(), *obj;
    char *text = NULL;
    int rc = EXIT_FAIL;

    for (size_t i = 0; list != NULL && i < n; i++) {
        obj = item(ctx, i);
        if (obj == NULL || !cJSON_AddItemToArray(list, obj)) {
            cJSON_Delete(obj);
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

/* The keys file's entries, for reading only: no lock is needed since the
 * file is only ever replaced whole.  A missing file holds no keys.  0, or -1
 * (reported). */
static int load_ring(const char *path, struct keyring *ring)
{
    const char *why = NULL;
    enum keys_status st = keys_load(path, ring, &why);

    if (st == KEYS_MISSING)
        st = KEYS_OK;
    if (st != KEYS_OK) {
        say(st == KEYS_CORRUPT ? "%s is not a valid keys file: %s" : "%s: %s", path, why);
        return -1;
    }
    return 0;
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
        usage_error("add needs --name NAME (a non-empty name)");
    else if (!is_clean_text(o->name))
        usage_error("--name must be UTF-8 text without control characters");
    else if (o->description != NULL && !is_clean_text(o->description))
        usage_error("--description must be UTF-8 text without control characters");
    else if (o->env == NULL)
        usage_error("add needs --env test or --env prod");
    else if (strcmp(o->env, "test") != 0 && strcmp(o->env, "prod") != 0)
        usage_error("--env must be test or prod, not \"%s\"", o->env);
    else
        return check_limits(o, false);
    return -1;
}

static int new_id(char id[sizeof "key_" + 2 * ID_BYTES])
{
    unsigned char raw[ID_BYTES];

    if (crypto_random(raw, sizeof raw) != 0)
        return -1;
    memcpy(id, "key_", sizeof "key_");   /* crypto_hex then writes over the NUL */
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

/* The entry for the file, fields in the documented order; the limits and
 * scopes only when given, so that a key without them follows the defaults. */
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
        !cJSON_AddStringToObject(e, "hash", k->hash) || put_limits(e, o) != 0) {
        cJSON_Delete(e);
        return NULL;
    }
    return e;
}

static cJSON *listed_json(const void *ctx, size_t i);

/* add --json: the id, the key, then the entry as list --json shows it.  The
 * key is referenced, not copied, so that only the printed text holds it. */
static cJSON *added_json(const struct keyring *ring, const struct new_key *k)
{
    cJSON *out = cJSON_CreateObject(), *entry = NULL, *c;
    size_t i = 0;

    while (i < ring->count && strcmp(ring->entries[i].id, k->id) != 0)
        i++;
    if (out == NULL || i == ring->count || (entry = listed_json(ring, i)) == NULL ||
        !cJSON_AddStringToObject(out, "id", k->id) ||
        !cJSON_AddItemToObject(out, "key", cJSON_CreateStringReference(k->key))) {
        cJSON_Delete(entry);
        cJSON_Delete(out);
        return NULL;
    }
    drop_field(entry, "id");
    while ((c = entry->child) != NULL)   /* keeps each field's name */
        cJSON_AddItemToArray(out, cJSON_DetachItemViaPointer(entry, c));
    cJSON_Delete(entry);
    return out;
}

/* Add the key to the file under the lock, and with --json make *json from
 * the entry as stored; 0 or -1 (reported). */
static int store_key(const struct options *o, const char *path, struct new_key *k,
                     char **json)
{
    struct keystore ks;
    cJSON *e = NULL;
    int rc = -1;

    if (keystore_open(&ks, path) != 0)
        goto out;
    if (make_key(o->env, &ks.ring, k) != 0) {
        snprintf(ks.err, sizeof ks.err, "cannot generate a key (libsodium failed)");
        goto out;
    }
    e = entry_json(o, k);
    if (e == NULL || !cJSON_AddItemToArray(ks.keys, e)) {
        cJSON_Delete(e);
        snprintf(ks.err, sizeof ks.err, "out of memory");
        goto out;
    }
    rc = keystore_commit(&ks);
    if (rc == 0 && o->json) {
        cJSON *doc = added_json(&ks.ring, k);

        *json = doc != NULL ? cJSON_PrintUnformatted(doc) : NULL;
        cJSON_Delete(doc);
        if (*json == NULL)
            say("%s was added, but printing it as JSON ran out of memory; revoke it: " PROG
                " revoke %s", k->id, k->id);
    }
out:
    if (rc != 0)
        say("%s", ks.err);
    keystore_close(&ks);
    return rc;
}

static int cmd_add(const struct options *o, const char *path)
{
    struct new_key k = {0};
    char *json = NULL;
    int rc = EXIT_FAIL;

    if (check_add_input(o) != 0)
        return EXIT_USAGE;
    if (store_key(o, path, &k, &json) != 0 || (o->json && json == NULL))
        goto out;
    /* The key goes out only once it is safely in the file. */
    if (printf("%s\n", json != NULL ? json : k.key) < 0 || fflush(stdout) != 0) {
        say("%s was added but could not be printed; revoke it: " PROG " revoke %s",
            k.id, k.id);
        goto out;
    }
    say("added %s (%s, %s) for \"%s\" to %s", k.id, k.prefix, o->env, o->name, path);
    rc = EXIT_OK;
out:
    if (json != NULL) {
        crypto_wipe(json, strlen(json));
        free(json);
    }
    crypto_wipe(&k, sizeof k);
    return rc;
}

/* ---- list ------------------------------------------------------------- */

enum {
    COL_ID, COL_NAME, COL_ENV, COL_CREATED, COL_REVOKED, COL_PREFIX, COL_RATE,
    COL_CONCURRENCY, COL_SCOPE, COL_DESC, NCOLS
};

static const char *const headers[NCOLS] = {
    "ID", "NAME", "ENV", "CREATED", "REVOKED", "PREFIX", "RATE", "CONCURRENCY", "SCOPE",
    "DESCRIPTION",
};

static const char *cell(const struct key_entry *e, int col, char buf[RATE_LEN])
{
    const char *s;

    switch (col) {
    case COL_ID: return e->id;
    case COL_NAME: return e->name;
    case COL_ENV: return e->env;
    case COL_CREATED: return e->created;
    case COL_REVOKED: return e->revoked_at != NULL ? e->revoked_at : "no";
    case COL_PREFIX: return e->prefix;
    case COL_RATE: return (s = rate_text(e, buf)) != NULL ? s : DEFAULT_WORD;
    case COL_CONCURRENCY: return (s = concurrency_text(e, buf)) != NULL ? s : DEFAULT_WORD;
    case COL_SCOPE: return scope_text(e->scopes);
    default: return e->description;
    }
}

static int print_table(const struct keyring *ring)
{
    char buf[RATE_LEN];
    struct table t;
    int bad = table_init(&t, NCOLS, ring->count + 1, 0);

    for (int c = 0; bad == 0 && c < NCOLS; c++)
        bad |= table_set(&t, 0, c, "%s", headers[c]);
    for (size_t i = 0; bad == 0 && i < ring->count; i++)
        for (int c = 0; c < NCOLS; c++)
            bad |= table_set(&t, i + 1, c, "%s", cell(&ring->entries[i], c, buf));
    return table_finish(&t, bad);
}

/* What list --json shows of one entry: everything but the hash.  A limit
 * the key does not set is null; scope is what the key may do. */
static cJSON *listed_json(const void *ctx, size_t i)
{
    const struct key_entry *e = &((const struct keyring *)ctx)->entries[i];
    char rate[RATE_LEN];
    const char *r = rate_text(e, rate);
    cJSON *o = cJSON_CreateObject();

    if (o == NULL || !cJSON_AddStringToObject(o, "id", e->id) ||
        !cJSON_AddStringToObject(o, "name", e->name) ||
        !cJSON_AddStringToObject(o, "description", e->description) ||
        !cJSON_AddStringToObject(o, "env", e->env) ||
        !cJSON_AddStringToObject(o, "created", e->created) ||
        !cJSON_AddBoolToObject(o, "revoked", e->revoked_at != NULL) ||
        !(e->revoked_at != NULL ? cJSON_AddStringToObject(o, "revoked_at", e->revoked_at)
                                : cJSON_AddNullToObject(o, "revoked_at")) ||
        !cJSON_AddStringToObject(o, "prefix", e->prefix) ||
        !(r != NULL ? cJSON_AddStringToObject(o, "rate", r) : cJSON_AddNullToObject(o, "rate")) ||
        !(e->concurrency > 0 ? cJSON_AddNumberToObject(o, "concurrency", (double)e->concurrency)
                             : cJSON_AddNullToObject(o, "concurrency")) ||
        put_field(o, "scope", scope_json(e->scopes)) != 0) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

static int cmd_list(const struct options *o, const char *path)
{
    struct keyring ring;
    int rc;

    if (load_ring(path, &ring) != 0)
        return EXIT_FAIL;
    rc = o->json ? print_json(ring.count, listed_json, &ring) : print_table(&ring);
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

/* find_entry for a command: 0 with *idx, or -1 after saying why. */
static int locate_entry(const struct keystore *ks, const char *target, size_t *idx)
{
    int found = find_entry(&ks->ring, target, idx);

    if (found < 0)
        say("cannot hash the key (libsodium failed)");
    else if (found == 0)
        say("no key in %s has that id or key", ks->path);
    return found > 0 ? 0 : -1;
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

    if (locate_entry(ks, target, &idx) != 0)
        return EXIT_FAIL;
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

/* ---- set -------------------------------------------------------------- */

static int check_set_input(const struct options *o)
{
    if (o->name != NULL && o->name[0] == '\0')
        usage_error("--name must not be empty");
    else if (o->name != NULL && !is_clean_text(o->name))
        usage_error("--name must be UTF-8 text without control characters");
    else if (o->description != NULL && !is_clean_text(o->description))
        usage_error("--description must be UTF-8 text without control characters");
    else
        return check_limits(o, true);
    return -1;
}

/* Change entry idx in the document as the options say; 0 or -1. */
static int change_entry(struct keystore *ks, size_t idx, const struct options *o)
{
    cJSON *entry = cJSON_GetArrayItem(ks->keys, (int)idx);

    if (entry == NULL)
        return -1;
    if (o->name != NULL && put_field(entry, "name", cJSON_CreateString(o->name)) != 0)
        return -1;
    if (o->description != NULL &&
        put_field(entry, "description", cJSON_CreateString(o->description)) != 0)
        return -1;
    return put_limits(entry, o);
}

static int set_entry(struct keystore *ks, const struct options *o)
{
    char rate[RATE_LEN], conc[NUM_LEN];
    const char *r, *c;
    const struct key_entry *e;
    size_t idx = 0;

    if (locate_entry(ks, o->arg, &idx) != 0)
        return EXIT_FAIL;
    if (change_entry(ks, idx, o) != 0) {
        say("cannot change %s: out of memory", ks->ring.entries[idx].id);
        return EXIT_FAIL;
    }
    if (keystore_commit(ks) != 0) {
        say("%s", ks->err);
        return EXIT_FAIL;
    }
    /* keystore_commit refreshed the ring, so look the entry up again. */
    e = &ks->ring.entries[idx];
    r = rate_text(e, rate);
    c = concurrency_text(e, conc);
    say("changed %s (\"%s\"%s): rate %s, concurrency %s, scope %s", e->id, e->name,
        e->revoked_at != NULL ? ", revoked" : "", r != NULL ? r : DEFAULT_WORD,
        c != NULL ? c : DEFAULT_WORD, scope_text(e->scopes));
    return EXIT_OK;
}

static int cmd_set(const struct options *o, const char *path)
{
    struct keystore ks;
    int rc = EXIT_FAIL;

    if (check_set_input(o) != 0)
        return EXIT_USAGE;
    if (keystore_open(&ks, path) != 0)
        say("%s", ks.err);
    else
        rc = set_entry(&ks, o);
    keystore_close(&ks);
    return rc;
}

/* ---- usage ------------------------------------------------------------ */

/* The counters pyexec keeps per key (struct usage in state.h). */
static const struct counter {
    const char *name;    /* in usage --json */
    const char *header;  /* in the table */
    size_t offset;       /* of the uint64_t in struct usage */
    bool ms;             /* milliseconds, shown as seconds */
} counters[] = {
#define COUNTER(field, name, header, help, ms) { name, header, offsetof(struct usage, field), ms },
    USAGE_COUNTERS(COUNTER)
#undef COUNTER
};
#define NCOUNTERS ((int)(sizeof counters / sizeof counters[0]))

/* Columns of the usage table: the counters sit between REVOKED and NAME,
 * which comes last since it is free text. */
enum { UCOL_ID, UCOL_ENV, UCOL_REVOKED, UCOL_COUNTERS, UCOLS = UCOL_COUNTERS + NCOUNTERS + 1 };

_Static_assert(UCOLS <= MAX_COLS, "the usage table is too wide for table_print");

/* Counter c of u as text: a count, or milliseconds as seconds with three
 * decimals (exact, no floating point). */
static const char *counter_text(const struct usage *u, const struct counter *c,
                                char buf[NUM_LEN])
{
    uint64_t v;

    memcpy(&v, (const char *)u + c->offset, sizeof v);
    if (c->ms)
        snprintf(buf, NUM_LEN, "%" PRIu64 ".%03" PRIu64, v / 1000, v % 1000);
    else
        snprintf(buf, NUM_LEN, "%" PRIu64, v);
    return buf;
}

/* Every key's counters, in the ring's order.  A key that never made a
 * request has no file, or no state directory exists yet: zeros.  0, or -1
 * (reported). */
static int read_usages(const struct keyring *ring, const char *dir, struct usage *u)
{
    for (size_t i = 0; i < ring->count; i++) {
        int e;

        if (state_read_usage(dir, ring->entries[i].id, &u[i]) == 0)
            continue;
        e = errno;
        if (e != ENOENT) {
            say("cannot read the usage of %s in %s: %s", ring->entries[i].id, dir, strerror(e));
            return -1;
        }
        memset(&u[i], 0, sizeof u[i]);
    }
    return 0;
}

struct usage_report {
    const struct keyring *ring;
    const struct usage *u;   /* one per entry */
};

static int print_usage_table(const struct usage_report *rep)
{
    static const char *const fixed[] = {"ID", "ENV", "REVOKED"};
    char num[NUM_LEN];
    struct table t;
    int bad = table_init(&t, UCOLS, rep->ring->count + 1,
                         ((1u << NCOUNTERS) - 1) << UCOL_COUNTERS);

    for (int c = 0; bad == 0 && c < UCOL_COUNTERS; c++)
        bad |= table_set(&t, 0, c, "%s", fixed[c]);
    for (int c = 0; bad == 0 && c < NCOUNTERS; c++)
        bad |= table_set(&t, 0, UCOL_COUNTERS + c, "%s", counters[c].header);
    if (bad == 0)
        bad |= table_set(&t, 0, UCOLS - 1, "NAME");
    for (size_t i = 0; bad == 0 && i < rep->ring->count; i++) {
        const struct key_entry *e = &rep->ring->entries[i];

        bad |= table_set(&t, i + 1, UCOL_ID, "%s", e->id);
        bad |= table_set(&t, i + 1, UCOL_ENV, "%s", e->env);
        bad |= table_set(&t, i + 1, UCOL_REVOKED, "%s", e->revoked_at != NULL ? "yes" : "no");
        for (int c = 0; c < NCOUNTERS; c++)
            bad |= table_set(&t, i + 1, UCOL_COUNTERS + c, "%s",
                             counter_text(&rep->u[i], &counters[c], num));
        bad |= table_set(&t, i + 1, UCOLS - 1, "%s", e->name);
    }
    return table_finish(&t, bad);
}

/* One key in usage --json: who it is, then the counters as exact numbers. */
static cJSON *usage_json(const void *ctx, size_t i)
{
    const struct usage_report *rep = ctx;
    const struct key_entry *e = &rep->ring->entries[i];
    char num[NUM_LEN];
    cJSON *o = cJSON_CreateObject();
    bool ok = o != NULL && cJSON_AddStringToObject(o, "id", e->id) &&
              cJSON_AddStringToObject(o, "name", e->name) &&
              cJSON_AddStringToObject(o, "env", e->env) &&
              cJSON_AddBoolToObject(o, "revoked", e->revoked_at != NULL);

    /* Raw: a uint64_t would lose digits as a double, and seconds keep
     * their three decimals. */
    for (int c = 0; ok && c < NCOUNTERS; c++)
        ok = cJSON_AddRawToObject(o, counters[c].name,
                                  counter_text(&rep->u[i], &counters[c], num)) != NULL;
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

/* Reads pyexec's counters without changing them (under their read lock). */
static int cmd_usage(const struct options *o, const char *path)
{
    const char *dir = o->state != NULL ? o->state : state_dir();
    struct keyring ring;
    struct usage_report rep = {&ring, NULL};
    struct usage *u;
    int rc = EXIT_FAIL;

    if (load_ring(path, &ring) != 0)
        return EXIT_FAIL;
    if (access(dir, F_OK) != 0 && errno == ENOENT)
        say("warning: state directory %s does not exist: no usage was counted there", dir);
    u = calloc(ring.count > 0 ? ring.count : 1, sizeof *u);
    if (u == NULL)
        say("out of memory");
    else if (read_usages(&ring, dir, u) == 0) {
        rep.u = u;
        rc = o->json ? print_json(ring.count, usage_json, &rep) : print_usage_table(&rep);
    }
    free(u);
    keys_free(&ring);
    return rc;
}

/* ---- export and import ------------------------------------------------ */

/* Keys on many hosts: `export` wraps the keys file in an envelope that
 * carries its SHA-256,
 *
 *     {"format": "pyexec-keys-export", "version": 1, "exported_at": "...",
 *      "keys": N, "sha256": "<hex of content>", "content": "<the keys file>"}
 *
 * and `import` checks the checksum and the content (exactly as pyexec reads
 * it) before it replaces the local file under the lock, atomically.  The
 * content is the document as manage-keys writes it (cJSON_Print plus a
 * newline), so importing it writes those very bytes, and an export of any
 * host that imported it carries the same checksum. */

#define EXPORT_FORMAT  "pyexec-keys-export"
#define EXPORT_VERSION 1
#define EXPORT_MAX     (4u * KEYS_MAX_SIZE)  /* escaping makes the envelope larger */
#define MAX_PERIOD     86400

/* Lower-case hex of SHA-256(data) into out; 0 or -1. */
static int sha256_hex(const char *data, size_t len, char out[2 * SHA256_LEN + 1])
{
    unsigned char digest[SHA256_LEN];

    if (crypto_sha256(data, len, digest) != 0)
        return -1;
    crypto_hex(digest, sizeof digest, out);
    return 0;
}

/* Write text to path atomically: a temporary file in the same directory,
 * fsync, rename, fsync of the directory.  A new file gets mode new_mode, an
 * existing one keeps its mode.  0, or -1 (reported). */
static int write_file_atomic(const char *path, const char *text, size_t len, mode_t new_mode)
{
    const char *slash = strrchr(path, '/');
    char *tmp = NULL, *dir = NULL;
    struct stat st;
    mode_t mode = stat(path, &st) == 0 ? st.st_mode & 07777 : new_mode;
    int fd = -1, dfd, rc = -1;
    FILE *f = NULL;

    if (asprintf(&tmp, "%s.tmp.XXXXXX", path) < 0) {
        tmp = NULL;
        say("out of memory");
        goto out;
    }
    fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        say("cannot create a temporary file next to %s: %s", path, strerror(errno));
        free(tmp);
        tmp = NULL;
        goto out;
    }
    f = fdopen(fd, "w");
    if (f == NULL || fchmod(fd, mode) != 0 || fwrite(text, 1, len, f) != len ||
        fflush(f) != 0 || fsync(fd) != 0) {
        say("cannot write %s: %s", tmp, strerror(errno));
        goto out;
    }
    if (fclose(f) != 0) {
        f = NULL;
        say("cannot write %s: %s", tmp, strerror(errno));
        goto out;
    }
    f = NULL;
    fd = -1;
    if (rename(tmp, path) != 0) {
        say("cannot rename %s to %s: %s", tmp, path, strerror(errno));
        goto out;
    }
    free(tmp);
    tmp = NULL;
    dir = slash == NULL ? strdup(".") : slash == path ? strdup("/")
                                                      : strndup(path, (size_t)(slash - path));
    dfd = dir != NULL ? open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
    if (dfd < 0 || fsync(dfd) != 0)
        say("%s was written, but syncing its directory failed: it may not survive a crash",
            path);
    if (dfd >= 0)
        close(dfd);
    rc = 0;
out:
    if (f != NULL)
        fclose(f);
    else if (fd >= 0)
        close(fd);
    if (tmp != NULL) {
        unlink(tmp);
        free(tmp);
    }
    free(dir);
    return rc;
}

/* text to --out FILE (new: mode new_mode), or to stdout; 0 or -1 (reported). */
static int emit(const struct options *o, const char *text, mode_t new_mode)
{
    if (o->out != NULL)
        return write_file_atomic(o->out, text, strlen(text), new_mode);
    return fputs(text, stdout) < 0 ? -1 : 0;
}

/* The keys file as manage-keys writes it, with its parsed entries: the file
 * must exist and be valid.  *text is malloc'd; 0, or -1 (reported). */
static int load_normalised(const char *path, char **text, struct keyring *ring)
{
    const char *why = NULL;
    char *raw = NULL, *body = NULL;
    size_t len = 0;
    cJSON *doc = NULL;
    enum keys_status st = keys_read_file(path, &raw, &len, &why);

    *text = NULL;
    ring->entries = NULL;
    ring->count = 0;
    if (st == KEYS_OK)
        st = keys_parse(raw, len, ring, &why);
    if (st != KEYS_OK) {
        say(st == KEYS_CORRUPT ? "%s is not a valid keys file: %s" : "%s: %s", path, why);
        free(raw);
        return -1;
    }
    doc = cJSON_ParseWithLength(raw, len);
    body = doc != NULL ? cJSON_Print(doc) : NULL;
    if (body == NULL || asprintf(text, "%s\n", body) < 0) {
        *text = NULL;
        say("out of memory");
    }
    free(body);
    cJSON_Delete(doc);
    free(raw);
    if (*text == NULL) {
        keys_free(ring);
        return -1;
    }
    return 0;
}

static int cmd_export(const struct options *o, const char *path)
{
    char sum[2 * SHA256_LEN + 1], now[TIME_LEN];
    char *content = NULL, *text = NULL;
    struct keyring ring;
    cJSON *env = NULL;
    int rc = EXIT_FAIL;

    if (load_normalised(path, &content, &ring) != 0)
        return EXIT_FAIL;
    env = cJSON_CreateObject();
    if (sha256_hex(content, strlen(content), sum) != 0 || utc_now(now) != 0 || env == NULL ||
        !cJSON_AddStringToObject(env, "format", EXPORT_FORMAT) ||
        !cJSON_AddNumberToObject(env, "version", EXPORT_VERSION) ||
        !cJSON_AddStringToObject(env, "exported_at", now) ||
        !cJSON_AddNumberToObject(env, "keys", (double)ring.count) ||
        !cJSON_AddStringToObject(env, "sha256", sum) ||
        !cJSON_AddStringToObject(env, "content", content) ||
        (text = cJSON_Print(env)) == NULL) {
        say("out of memory, or hashing or the clock failed");
        goto out;
    }
    {
        char *line = NULL;

        if (asprintf(&line, "%s\n", text) < 0) {
            say("out of memory");
            goto out;
        }
        /* Names and descriptions: private, like the keys file. */
        rc = emit(o, line, 0600) == 0 ? EXIT_OK : EXIT_FAIL;
        free(line);
    }
    if (rc == EXIT_OK)
        say("exported %zu keys from %s%s%s, sha256 %s", ring.count, path,
            o->out != NULL ? " to " : "", o->out != NULL ? o->out : "", sum);
out:
    free(text);
    cJSON_Delete(env);
    free(content);
    keys_free(&ring);
    return rc;
}

/* Read all of path ("-": stdin), at most EXPORT_MAX bytes; malloc'd and
 * NUL-terminated, or NULL (reported). */
static char *read_input(const char *path, size_t *len)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "re");
    size_t cap = 65536, got = 0;
    char *buf, *p;

    if (f == NULL) {
        say("cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    buf = malloc(cap);
    if (buf == NULL) {
        say("out of memory");
        goto fail;
    }
    for (;;) {
        size_t n;

        if (got + 1 >= cap) {
            cap *= 2;
            if (cap > EXPORT_MAX + 1) {
                say("%s is larger than an export can be", path);
                goto fail;
            }
            if ((p = realloc(buf, cap)) == NULL) {
                say("out of memory");
                goto fail;
            }
            buf = p;
        }
        n = fread(buf + got, 1, cap - got - 1, f);
        got += n;
        if (n == 0)
            break;
    }
    if (ferror(f)) {
        say("cannot read %s: %s", path, strerror(errno));
        goto fail;
    }
    if (f != stdin)
        fclose(f);
    buf[got] = '\0';
    *len = got;
    return buf;
fail:
    if (f != stdin)
        fclose(f);
    free(buf);
    return NULL;
}

/* The content of an export, checked: its envelope, its checksum, and the
 * keys file it holds, as pyexec would read it (*ring).  *sum is the checksum.
 * Returns the content (owned by *env), or NULL (reported). */
static const char *open_export(const char *file, cJSON **env, struct keyring *ring,
                               char sum[2 * SHA256_LEN + 1])
{
    const cJSON *format, *version, *want, *content;
    const char *why = NULL;
    size_t len = 0;
    char *text = read_input(file, &len);
    enum keys_status st;

    *env = NULL;
    ring->entries = NULL;
    ring->count = 0;
    if (text == NULL)
        return NULL;
    *env = cJSON_ParseWithLength(text, len);
    free(text);
    if (*env == NULL || !cJSON_IsObject(*env)) {
        say("%s is not an export of manage-keys: not a JSON object (truncated or corrupt?)",
            file);
        return NULL;
    }
    format = cJSON_GetObjectItemCaseSensitive(*env, "format");
    version = cJSON_GetObjectItemCaseSensitive(*env, "version");
    want = cJSON_GetObjectItemCaseSensitive(*env, "sha256");
    content = cJSON_GetObjectItemCaseSensitive(*env, "content");
    if (!cJSON_IsString(format) || strcmp(format->valuestring, EXPORT_FORMAT) != 0 ||
        !cJSON_IsNumber(version) || !cJSON_IsString(want) || !cJSON_IsString(content)) {
        say("%s is not an export of manage-keys (format \"" EXPORT_FORMAT "\" with sha256 "
            "and content)", file);
        return NULL;
    }
    if (version->valuedouble != EXPORT_VERSION) {
        say("%s is an export of version %g; this manage-keys reads version %d only", file,
            version->valuedouble, EXPORT_VERSION);
        return NULL;
    }
    if (sha256_hex(content->valuestring, strlen(content->valuestring), sum) != 0) {
        say("cannot hash the export (libsodium failed)");
        return NULL;
    }
    if (strcmp(sum, want->valuestring) != 0) {
        say("%s: checksum mismatch: the content hashes to %s, the export says %s; it was "
            "damaged or altered: nothing imported", file, sum, want->valuestring);
        return NULL;
    }
    st = keys_parse(content->valuestring, strlen(content->valuestring), ring, &why);
    if (st != KEYS_OK) {
        say("%s holds no valid keys file (%s): nothing imported", file,
            st == KEYS_NOMEM ? "out of memory" : why);
        return NULL;
    }
    return content->valuestring;
}

static const struct key_entry *entry_by_id(const struct keyring *ring, const char *id)
{
    for (size_t i = 0; i < ring->count; i++)
        if (strcmp(ring->entries[i].id, id) == 0)
            return &ring->entries[i];
    return NULL;
}

/* What importing `in` over `cur` would do.  Returns how many entries of cur
 * it would lose or bring back from revocation (refused without --force),
 * each reported. */
static size_t compare_rings(const struct keyring *cur, const struct keyring *in,
                            size_t *added, size_t *revoked)
{
    size_t lost = 0;

    *added = *revoked = 0;
    for (size_t i = 0; i < cur->count; i++) {
        const struct key_entry *c = &cur->entries[i];
        const struct key_entry *n = entry_by_id(in, c->id);

        if (n == NULL) {
            say("%s (\"%s\") is here but not in the export", c->id, c->name);
            lost++;
        } else if (!crypto_equal(c->hash, n->hash, SHA256_LEN)) {
            say("%s (\"%s\") stands for another key in the export", c->id, c->name);
            lost++;
        } else if (c->revoked_at != NULL && n->revoked_at == NULL) {
            say("%s (\"%s\") is revoked here but not in the export", c->id, c->name);
            lost++;
        } else if (c->revoked_at == NULL && n->revoked_at != NULL) {
            (*revoked)++;
        }
    }
    for (size_t i = 0; i < in->count; i++)
        if (entry_by_id(cur, in->entries[i].id) == NULL)
            (*added)++;
    return lost;
}

static int import_into(struct keystore *ks, const struct options *o, const char *content,
                       const struct keyring *in, const char *sum)
{
    size_t added, revoked, lost = compare_rings(&ks->ring, in, &added, &revoked);
    cJSON *doc;

    if (lost > 0 && !o->force) {
        say("refusing to import %s over %s: %zu key(s) would be dropped or come back from "
            "revocation (an older export, or another cluster's?); nothing changed.  "
            "--force imports it anyway", o->arg, ks->path, lost);
        return EXIT_FAIL;
    }
    doc = cJSON_Parse(content);
    if (doc == NULL) {
        say("out of memory");
        return EXIT_FAIL;
    }
    cJSON_Delete(ks->doc);
    ks->doc = doc;
    ks->keys = cJSON_GetObjectItemCaseSensitive(doc, "keys");
    if (keystore_commit(ks) != 0) {
        say("%s", ks->err);
        return EXIT_FAIL;
    }
    say("imported %zu keys (sha256 %s) into %s: %zu new, %zu newly revoked%s", in->count,
        sum, ks->path, added, revoked, lost > 0 ? ", forced over the differences above" : "");
    return EXIT_OK;
}

static int cmd_import(const struct options *o, const char *path)
{
    char sum[2 * SHA256_LEN + 1];
    struct keyring in;
    struct keystore ks;
    cJSON *env = NULL;
    const char *content = open_export(o->arg, &env, &in, sum);
    int rc = EXIT_FAIL;

    if (content == NULL) {
        keys_free(&in);
        cJSON_Delete(env);
        return EXIT_FAIL;
    }
    if (keystore_open(&ks, path) != 0)
        say("%s", ks.err);
    else
        rc = import_into(&ks, o, content, &in, sum);
    keystore_close(&ks);
    keys_free(&in);
    cJSON_Delete(env);
    return rc;
}

/* ---- export-haproxy-limits -------------------------------------------- */

/* HAProxy limits each client by a stick table keyed on the key's SHA-256
 * (req.fhdr(x-api-key),sha2(256),hex,lower: the hash the keys file stores)
 * and a map from that hash to the key's limit per the table's period (see
 * deploy/haproxy/haproxy.cfg).  A revoked key maps to 0, which the HAProxy
 * configuration refuses outright. */

/* limit per window_s as a count per period, rounded up (at least 1). */
static long scale_rate(long limit, long window_s, long period)
{
    long long n;

    if (window_s == period)
        return limit;
    n = ((long long)limit * period + window_s - 1) / window_s;
    return n < 1 ? 1 : n > 1000000000 ? 1000000000 : (long)n;
}

struct env_rates {
    long limit[2], window[2];   /* test, prod */
};

static int parse_limits_options(const struct options *o, long *period, struct env_rates *d)
{
    const char *rates[2] = {o->test_rate != NULL ? o->test_rate : "60/min",
                            o->prod_rate != NULL ? o->prod_rate : "600/min"};
    char *end = NULL;

    *period = 60;
    if (o->period != NULL) {
        errno = 0;
        *period = strtol(o->period, &end, 10);
        if (o->period[0] < '0' || o->period[0] > '9' || errno != 0 || *end != '\0' ||
            *period < 1 || *period > MAX_PERIOD) {
            usage_error("--period must be a number of seconds from 1 to %d, not \"%s\"",
                        MAX_PERIOD, o->period);
            return -1;
        }
    }
    for (int i = 0; i < 2; i++) {
        if (!valid_rate(rates[i]) || keys_parse_rate(rates[i], &d->limit[i], &d->window[i]) != 0) {
            usage_error("--%s-rate must be N/UNIT with N from 1 to 1000000 and UNIT s, min, "
                        "h or day, not \"%s\"", i == 0 ? "test" : "prod", rates[i]);
            return -1;
        }
    }
    return 0;
}

/* One map line per key into *out (an open memstream). */
static void write_limits(FILE *out, const struct keyring *ring, long period,
                         const struct env_rates *d, const char *path, const char *sum)
{
    size_t revoked = 0, scaled = 0;

    fprintf(out,
            "# pyexec: per-key rate limits for HAProxy, from %s (sha256 %s)\n"
            "# by manage-keys export-haproxy-limits; period %ld s, as in the stick table's\n"
            "# gpc0_rate(%lds).  <SHA-256 of the API key, hex> <requests per period>;\n"
            "# 0: the key is revoked, deny it.  Keys not listed are not tracked per key.\n",
            path, sum, period, period);
    for (size_t i = 0; i < ring->count; i++) {
        const struct key_entry *e = &ring->entries[i];
        int env = strcmp(e->env, "prod") == 0;
        long limit = e->rate_limit > 0 ? e->rate_limit : d->limit[env];
        long window = e->rate_limit > 0 ? e->rate_window_s : d->window[env];
        char hex[2 * SHA256_LEN + 1];
        long n = scale_rate(limit, window, period);

        crypto_hex(e->hash, SHA256_LEN, hex);
        if (e->revoked_at != NULL) {
            n = 0;
            revoked++;
        } else if (window != period) {
            say("%s (\"%s\"): %ld per %ld s is %ld per %ld s for HAProxy (rounded up)", e->id,
                e->name, limit, window, n, period);
            scaled++;
        }
        fprintf(out, "%s %ld\n", hex, n);
    }
    say("%zu keys: %zu revoked (limit 0), %zu scaled to the period", ring->count, revoked, scaled);
}

static int cmd_export_limits(const struct options *o, const char *path)
{
    struct env_rates d;
    struct keyring ring;
    char sum[2 * SHA256_LEN + 1];
    char *content = NULL, *text = NULL;
    size_t len = 0;
    long period;
    FILE *out;
    int rc = EXIT_FAIL;

    if (parse_limits_options(o, &period, &d) != 0)
        return EXIT_USAGE;
    if (load_normalised(path, &content, &ring) != 0)
        return EXIT_FAIL;
    if (sha256_hex(content, strlen(content), sum) != 0) {
        say("cannot hash the keys file (libsodium failed)");
        goto out;
    }
    out = open_memstream(&text, &len);
    if (out == NULL) {
        say("out of memory");
        goto out;
    }
    write_limits(out, &ring, period, &d, path, sum);
    if (fclose(out) != 0 || text == NULL) {
        say("out of memory");
        goto out;
    }
    /* Hashes of random 192-bit keys and numbers: HAProxy may read it. */
    rc = emit(o, text, 0644) == 0 ? EXIT_OK : EXIT_FAIL;
out:
    free(text);
    free(content);
    keys_free(&ring);
    return rc;
}

/* ---- main ------------------------------------------------------------- */

static const struct command {
    const char *name;
    int (*run)(const struct options *o, const char *path);  /* NULL: help */
    const char *help;
} commands[] = {
    {"add", cmd_add, add_help},
    {"export", cmd_export, export_help},
    {"export-haproxy-limits", cmd_export_limits, limits_help},
    {"help", NULL, help_help},
    {"import", cmd_import, import_help},
    {"list", cmd_list, list_help},
    {"revoke", cmd_revoke, revoke_help},
    {"set", cmd_set, set_help},
    {"usage", cmd_usage, usage_help},
};

static const struct command *find_command(const char *name)
{
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

/* Text on stdout, for --help and --version; an exit status. */
static int print_out(const char *text)
{
    fputs(text, stdout);
    return fflush(stdout) == 0 && !ferror(stdout) ? EXIT_OK : EXIT_FAIL;
}

/* --help: cmd's own help, or the overview; help COMMAND: COMMAND's. */
static int print_help(const struct options *o, const struct command *cmd)
{
    const struct command *about = cmd;

    if (cmd != NULL && cmd->run == NULL && !o->help) {
        hint_cmd = NULL;   /* the overview lists the commands */
        if (o->extra > 1) {
            usage_error("help takes at most one COMMAND");
            return EXIT_USAGE;
        }
        about = o->arg != NULL ? find_command(o->arg) : NULL;
        if (o->arg != NULL && about == NULL) {
            usage_error("unknown command '%s'", o->arg);
            return EXIT_USAGE;
        }
    }
    return print_out(about != NULL ? about->help : usage_text);
}

/* Warn (once, before the command) about a keys file that group or others
 * may read or write: it names every client.  list and usage show a missing
 * file as no keys; say so, in case the path is wrong. */
static void check_keys_file(const struct command *cmd, const char *path)
{
    struct stat st;
    mode_t m;

    if (stat(path, &st) != 0) {
        if (errno == ENOENT && (cmd->run == cmd_list || cmd->run == cmd_usage))
            say("warning: keys file %s does not exist", path);
        return;
    }
    m = st.st_mode & 077;
    if (S_ISREG(st.st_mode) && m != 0)
        say("warning: keys file %s is %s by others (mode %04o); run chmod 600 %s", path,
            (m & 044) && (m & 022) ? "readable and writable" : (m & 044) ? "readable" : "writable",
            (unsigned)(st.st_mode & 07777), path);
}

int main(int argc, char **argv)
{
    struct options o = {0};
    int bad = parse_args(argc, argv, &o);
    const struct command *cmd = o.command != NULL ? find_command(o.command) : NULL;
    const char *path;
    int rc;

    hint_cmd = cmd != NULL ? cmd->name : NULL;
    if (bad != 0)
        return report_parse_error(&o);
    if (o.version)
        return print_out(PROG " " PYEXEC_VERSION "\n");
    if (o.command != NULL && cmd == NULL) {
        usage_error("unknown command '%s'", o.command);
        return EXIT_USAGE;
    }
    if (o.help || (cmd != NULL && cmd->run == NULL))
        return print_help(&o, cmd);
    if (cmd == NULL) {
        usage_error("no command given");
        return EXIT_USAGE;
    }
    if (check_args(&o) != 0)
        return EXIT_USAGE;
    path = keys_path(o.keys);
    check_keys_file(cmd, path);
    rc = cmd->run(&o, path);
    /* A full disk or closed pipe on stdout must not pass for success. */
    if (fflush(stdout) != 0 || ferror(stdout)) {
        say("cannot write to standard output");
        rc = EXIT_FAIL;
    }
    return rc;
}

/* The one request this process serves, travelling through every stage. */
#ifndef PYEXEC_REQUEST_H
#define PYEXEC_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <time.h>

#include "config.h"
#include "report.h"
#include "state.h"

#define HEAD_MAX      8192   /* request line + headers */
#define HEADERS_MAX   100
#define REQUEST_ID_MAX 64

struct header {
    const char *name;    /* NUL-terminated, as sent */
    const char *value;   /* NUL-terminated, surrounding whitespace trimmed */
};

/* One way to fail: an HTTP status, a machine-readable type, a message. */
struct failure {
    int status;              /* 0 while nothing failed */
    const char *type;        /* e.g. "InvalidJSON"; static string */
    char message[512];
    const char *allow;       /* Allow header for 405 */
};

/* What the worker reported, for the response and the log. */
struct outcome {
    bool ran;                /* a worker was started */
    bool success;
    const char *kind;        /* log outcome: ok, user_error, timeout, memory, ... */
    char err_type[64];
    char err_message[1024];
    size_t err_message_len;  /* bytes of err_message: a snippet's may hold U+0000 */
    bool err_message_truncated;
    int err_line;            /* 0 when unknown */
    char *result_json;       /* owned; serialised result on success */
    char *output;            /* owned; printed text (valid UTF-8) */
    size_t output_len;
    bool output_truncated;
    long wall_ms, cpu_ms, max_rss_kib;
    bool sandboxed;          /* a sandbox was set up (worker or /health's check) */
    unsigned layers_missing; /* its layers that were missing (LAYER_BITs) */
};

/* Points in the supervisor's handling, for the timing breakdown. */
enum mark { MARK_START, MARK_HEAD, MARK_AUTH, MARK_BODY, MARK_PARSED, MARK_WAITED,
            MARK_REPLIED, MARK_COUNT };

struct request {
    struct timespec started;
    long deadline_ms;         /* for reading the whole request, from started */

    char head[HEAD_MAX + 1];  /* raw bytes read so far (head, then maybe body start) */
    size_t head_read;         /* bytes in head[] */
    size_t head_len;          /* bytes of the header block including its blank line */

    const char *method, *path, *version;
    struct header headers[HEADERS_MAX];
    size_t header_count;

    const char *api_key;
    long content_length;      /* -1 when absent */
    bool expect_continue;     /* Expect: 100-continue, 100 not yet sent */
    char request_id[REQUEST_ID_MAX + 1];

    char *body;               /* owned, NUL-terminated */
    size_t body_len;
    size_t bytes_in, bytes_out;

    /* Set by authentication. */
    char client_id[64];
    int env;                  /* enum env_id, -1 before auth */
    unsigned scopes;          /* KEY_SCOPE_* of the key */
    struct limits limits;     /* the env's limits, tightened by the request */
    long rate_limit, rate_window_s, concurrency;   /* the key's, or the env's */

    /* Set by admission (ratelimit.c). */
    struct client_state usage;
    int global_slot, client_slot;   /* held slot locks, -1 when none */
    char rate_headers[256];         /* RateLimit-* lines, CRLF-terminated */
    long retry_after;               /* seconds, for 429/503; 0 = none */

    struct failure fail;
    struct outcome out;
    pid_t worker_pid;         /* a worker still to reap, 0 when none */
    long worker_deadline_us;  /* when it must be gone (CLOCK_MONOTONIC) */
    char *text;               /* owned; a non-JSON-outcome body (health, metrics) */
    const char *text_type;

    long mark_us[MARK_COUNT];         /* supervisor stages (CLOCK_MONOTONIC) */
    long stage_us[STAGE_COUNT];       /* worker stages, from its report */
};

/* Record a failure (first one wins) and return -1, for "return fail(...)". */
int fail(struct request *req, int status, const char *type, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Stamp the current time for a supervisor stage. */
void request_mark(struct request *req, enum mark m);

/* Milliseconds since the request started. */
long request_elapsed_ms(const struct request *req);

/* The header's value (case-insensitive name), or NULL. */
const char *request_header(const struct request *req, const char *name);

#endif

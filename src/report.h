/* What the worker tells the supervisor, through one shared anonymous mapping
 * made before the fork: it survives the worker being killed at any moment,
 * and costs no system call to write. */
#ifndef PYEXEC_REPORT_H
#define PYEXEC_REPORT_H

#include <stddef.h>

enum report_state {
    REPORT_NONE = 0,         /* worker never got as far as a verdict */
    REPORT_OK,               /* result[] holds the JSON result */
    REPORT_ERROR,            /* err_* describe the snippet's exception */
    REPORT_OUTPUT_LIMIT,     /* printing past the output cap */
    REPORT_RESULT_TOO_LARGE,
    REPORT_NOT_SERIALIZABLE, /* err_message says why */
    REPORT_INTERNAL,         /* err_message says what broke */
};

/* Points in the worker's life, for the per-stage timing breakdown. */
enum report_stage {
    STAGE_FORKED, STAGE_SANDBOXED, STAGE_EXECED, STAGE_PY_STARTED, STAGE_POLICY_IMPORTED,
    STAGE_LOCKED, STAGE_COMPILED, STAGE_RAN, STAGE_SERIALISED, STAGE_COUNT
};

struct report {
    volatile int state;
    int err_line;
    size_t output_len, output_cap;
    size_t result_len, result_cap;
    int output_truncated;
    char err_type[64];
    /* The snippet's message: err_message_len bytes of UTF-8 (U+0000 may be
     * among them), cut on a character boundary and then NUL-terminated;
     * err_message_truncated says it was cut. */
    char err_message[1024];
    size_t err_message_len;
    int err_message_truncated;
    long stage_us[STAGE_COUNT];   /* CLOCK_MONOTONIC microseconds */
    long cpu_ms, max_rss_kib;     /* the worker's own rusage when it reports done */
    unsigned layers_missing;      /* LAYER_BITs applied without (allowed) */
    int layer_failed;             /* 1 + the layer that could not be applied; 0: none */
    int layer_errno;              /* and why */
    char area[];                  /* output_cap bytes, then result_cap bytes */
};

static inline char *report_output(struct report *r) { return r->area; }
static inline char *report_result(struct report *r) { return r->area + r->output_cap; }

/* Stamp the current time for a stage. */
void report_stage(struct report *r, enum report_stage s);

/* Worker program only (reportmsg.c).  Set the error message to s[0..n),
 * valid UTF-8 that may hold U+0000, cut on a character boundary to what
 * err_message holds; a cut sets err_message_truncated. */
void report_message(struct report *r, const char *s, size_t n);
/* The same with printf formatting. */
void report_messagef(struct report *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif

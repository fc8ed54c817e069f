/* What the supervisor hands the worker program across execve: one memfd
 * (SANDBOX_JOB_FD) that both map shared.  It holds the job (limits and the
 * request body, already validated) and the report the worker writes back,
 * which survives the worker being killed at any moment. */
#ifndef PYEXEC_HANDOFF_H
#define PYEXEC_HANDOFF_H

#include <stddef.h>

#include "config.h"
#include "report.h"

#define WORKER_PROGRAM "pyexec-worker"
#define HANDOFF_MAGIC 0x70796578656331ULL   /* "pyexec1": same build on both sides */

struct handoff {
    unsigned long long magic;
    struct limits lim;          /* the request's effective limits */
    size_t report_off;          /* struct report, then its output and result areas */
    size_t body_off, body_len;  /* the request body */
    size_t total;               /* bytes in the mapping */
    unsigned allow_missing_layers;   /* LAYER_BITs the worker may go without */
};

static inline struct report *handoff_report(struct handoff *h)
{
    return (struct report *)((char *)h + h->report_off);
}

static inline const char *handoff_body(const struct handoff *h)
{
    return (const char *)h + h->body_off;
}

#endif

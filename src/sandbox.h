/* The worker's OS sandbox: the walls beneath RestrictedPython. */
#ifndef PYEXEC_SANDBOX_H
#define PYEXEC_SANDBOX_H

#include <sys/types.h>

#include "config.h"
#include "report.h"

struct sandbox_ids {
    int have;      /* started as root and the user exists */
    uid_t uid;
    gid_t gid;
    unsigned allow_missing;   /* allow_missing_layers (LAYER_BITs) */
};

/* How applying the layers went (layers.h). */
struct sandbox_layers {
    unsigned allow;     /* LAYER_BITs that may be missing */
    unsigned missing;   /* allowed ones that could not be applied */
    int failed;         /* the layer that could not be applied and is not allowed; -1 */
    int err;            /* its errno */
};

void sandbox_layers_init(struct sandbox_layers *L, unsigned allow);

/* Into the report for the supervisor: missing layers, and the failed one. */
void sandbox_layers_report(const struct sandbox_layers *L, struct report *r);

/* In the supervisor, while still privileged: resolve the worker's user. */
int sandbox_lookup_user(const char *name, struct sandbox_ids *ids);

#define SANDBOX_DONE_FD 3   /* the worker's "report written" pipe */
#define SANDBOX_JOB_FD  4   /* the worker's job and report (a memfd) */
#define SANDBOX_EXEC_FD 5   /* the worker program, for fexecve (close-on-exec) */

/* In the forked worker, before it executes the worker program: fresh
 * namespaces (when root), rlimits, the unprivileged user, no capabilities,
 * no_new_privs, only fds 0-2 (all on /dev/null), done_fd moved to
 * SANDBOX_DONE_FD and job_fd to SANDBOX_JOB_FD (-1: none), both kept across
 * execve, and exec_fd (the worker program, opened while still privileged:
 * the unprivileged user may not be able to reach its path) to
 * SANDBOX_EXEC_FD, close-on-exec (-1: none).  0, or -1 with a message in
 * why (L->failed >= 0 when a layer could not be applied: why is then its
 * refusal). */
int sandbox_prepare(const struct sandbox_ids *ids, const struct limits *lim, int done_fd,
                    int job_fd, int exec_fd, struct sandbox_layers *L, char *why,
                    size_t whylen);

/* In the worker program, first thing (execve resets them): not dumpable,
 * the CPU-time timer (SIGXCPU) and the wall-clock timer (SIGKILL). */
int sandbox_after_exec(const struct limits *lim, struct sandbox_layers *L);

/* In the worker, after Python and the policy are loaded, before user code:
 * Landlock (read-only Python library dirs) and the seccomp allow-list.  0, or
 * -1 with the refusal in why and L->failed set. */
int sandbox_lock_down(struct sandbox_layers *L, char *why, size_t whylen);

/* For /health: a short-lived child takes every layer the way a worker does
 * (up to seccomp; no Python) and reports back.  L is filled as if by a
 * worker; -1 when the check itself could not run (why says). */
int sandbox_check(const struct sandbox_ids *ids, const struct limits *lim,
                  struct sandbox_layers *L, char *why, size_t whylen);

#endif

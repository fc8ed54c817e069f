/* The worker's OS sandbox: the walls beneath RestrictedPython. */
#ifndef PYEXEC_SANDBOX_H
#define PYEXEC_SANDBOX_H

#include <sys/types.h>

#include "config.h"

struct sandbox_ids {
    int have;      /* started as root and the user exists */
    uid_t uid;
    gid_t gid;
};

/* In the supervisor, while still privileged: resolve the worker's user. */
int sandbox_lookup_user(const char *name, struct sandbox_ids *ids);

#define SANDBOX_DONE_FD 3   /* the worker's "report written" pipe */
#define SANDBOX_JOB_FD  4   /* the worker's job and report (a memfd) */
#define SANDBOX_EXEC_FD 5   /* the worker program, for fexecve (close-on-exec) */

/* In the forked worker, before it executes the worker program: fresh
 * namespaces (when root), rlimits, the unprivileged user, no capabilities,
 * no_new_privs, only fds 0-2 (0 and 1 on /dev/null), done_fd moved to
 * SANDBOX_DONE_FD and job_fd to SANDBOX_JOB_FD (-1: none), both kept across
 * execve, and exec_fd (the worker program, opened while still privileged:
 * the unprivileged user may not be able to reach its path) to
 * SANDBOX_EXEC_FD, close-on-exec (-1: none).  0, or -1 with an
 * errno-style message in why. */
int sandbox_prepare(const struct sandbox_ids *ids, const struct limits *lim, int done_fd,
                    int job_fd, int exec_fd, char *why, size_t whylen);

/* In the worker program, first thing (execve resets them): not dumpable,
 * the CPU-time timer (SIGXCPU) and the wall-clock timer (SIGKILL). */
int sandbox_after_exec(const struct limits *lim);

/* In the worker, after Python and the policy are loaded, before user code:
 * Landlock (read-only Python library dirs, where the kernel has it) and the
 * seccomp allow-list.  0, or -1 with why. */
int sandbox_lock_down(char *why, size_t whylen);

#endif

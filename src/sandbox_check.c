/* /health's check of the OS sandbox.  A layer can go missing on a host
 * that served fine yesterday (a new container runtime, a kernel without
 * Landlock), so each check takes them all afresh in a short-lived child,
 * the same functions a worker uses, in the same order: namespaces, rlimits,
 * identity, capabilities, no_new_privs, timers, Landlock, seccomp.  No
 * Python is started.  The child reports through a shared mapping, which it
 * can write after seccomp closed the last door (no system call). */
#include "sandbox.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

struct check_result {
    volatile int done;   /* the child got as far as reporting */
    struct sandbox_layers layers;
    char why[256];
};

static void check_child(const struct sandbox_ids *ids, const struct limits *lim,
                        struct check_result *res)
{
    struct sandbox_layers L = res->layers;
    char why[256] = "";
    if (sandbox_prepare(ids, lim, -1, -1, -1, &L, why, sizeof(why)) == 0 &&
        sandbox_after_exec(lim, &L) == 0)
        (void)sandbox_lock_down(&L, why, sizeof(why));
    res->layers = L;
    memcpy(res->why, why, sizeof(why));
    res->done = 1;
    _exit(0);
}

int sandbox_check(const struct sandbox_ids *ids, const struct limits *lim,
                  struct sandbox_layers *L, char *why, size_t whylen)
{
    struct check_result *res = mmap(NULL, sizeof(*res), PROT_READ | PROT_WRITE,
                                    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (res == MAP_FAILED) {
        snprintf(why, whylen, "cannot map the sandbox check: %s", strerror(errno));
        return -1;
    }
    res->layers = *L;
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0)
        check_child(ids, lim, res);
    int status = 0, rc = -1;
    if (pid < 0)
        snprintf(why, whylen, "cannot fork the sandbox check: %s", strerror(errno));
    while (pid > 0 && waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (pid > 0 && !res->done)
        snprintf(why, whylen, "the sandbox check ended without a verdict (status %d)", status);
    else if (pid > 0 && res->layers.failed < 0 && res->why[0])
        snprintf(why, whylen, "the sandbox check failed: %.200s", res->why);
    else if (pid > 0)
        rc = 0;
    if (rc == 0)
        *L = res->layers;
    munmap(res, sizeof(*res));
    return rc;
}

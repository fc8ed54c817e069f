/* TEST-ONLY: runs UNRESTRICTED Python (argv[1]) inside exactly the worker's
 * sandbox, to prove the OS walls hold on their own, without RestrictedPython.
 * Built by `make test` as build/sandbox-probe; never installed, never linked
 * into pyexec, never reachable by a request.  Output goes to stderr (the
 * sandbox puts stdin and stdout on /dev/null); the exit status is Python's. */
#include <Python.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config.h"
#include "layers.h"
#include "pyrun.h"
#include "report.h"
#include "sandbox.h"

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: sandbox-probe PYTHON-SOURCE   (test-only)\n");
        return 2;
    }
    struct config cfg;
    char why[512];
    if (config_load(&cfg, why, sizeof(why)) < 0) {
        fprintf(stderr, "sandbox-probe: %s\n", why);
        return 2;
    }
    const struct limits *lim = &cfg.env[ENV_TEST];
    struct sandbox_ids ids;
    if (sandbox_lookup_user(cfg.user, &ids) < 0) {
        fprintf(stderr, "sandbox-probe: no user %s\n", cfg.user);
        return 2;
    }
    size_t size = sizeof(struct report) + 4096;
    struct report *r = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (r == MAP_FAILED)
        return 2;
    r->output_cap = 4096;
    why[0] = '\0';
    /* For profiling under valgrind only (which must write its output file):
     * PROBE_NO_LOCKDOWN=1 leaves Landlock and seccomp off. */
    const char *no_lock = getenv("PROBE_NO_LOCKDOWN");
    int lock = !(no_lock && strcmp(no_lock, "1") == 0);
    /* As a worker: allow_missing_layers from the config applies.  The
     * sandbox puts stderr on /dev/null as for the worker; the probe keeps
     * its own through it as the done descriptor, then takes it back. */
    struct sandbox_layers layers;
    sandbox_layers_init(&layers, cfg.allow_missing_layers);
    int out = dup(2);
    if (out < 0 || sandbox_prepare(&ids, lim, out, -1, -1, &layers, why, sizeof(why)) < 0 ||
        dup2(SANDBOX_DONE_FD, 2) < 0 || close(SANDBOX_DONE_FD) < 0 ||
        sandbox_after_exec(lim, &layers) < 0 || pyrun_start(r, lim) < 0 ||
        (lock && sandbox_lock_down(&layers, why, sizeof(why)) < 0)) {
        if (layers.failed >= 0)
            layers_refusal(why, sizeof(why), layers.failed, layers.err);
        fprintf(stderr, "sandbox-probe: setup failed: %s %s\n", why, r->err_message);
        return 2;
    }
    char missing[160] = "";
    if (layers.missing) {
        char list[140];
        layers_format(layers.missing, list, sizeof(list));
        snprintf(missing, sizeof(missing), " (layers %s)", list);
    }
    fprintf(stderr, "sandbox-probe: sandbox %s%s, running unrestricted code\n",
            lock ? "closed" : "NOT locked down (profiling)", missing);
    int rc = PyRun_SimpleString(argv[1]);
    fflush(stderr);
    _exit(rc == 0 ? 0 : 1);
}

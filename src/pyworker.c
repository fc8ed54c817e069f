/* pyexec-worker: the program a sandboxed worker executes (never started by
 * hand).  The supervisor's forked child has already taken the namespaces,
 * rlimits, the unprivileged identity and no_new_privs; this program re-arms
 * what execve resets, starts the embedded interpreter, shuts the last doors
 * (Landlock, seccomp) and runs the snippet once.
 *
 * Why a program of its own rather than a library loaded into the forked
 * supervisor: it links libpython statically into a position-dependent
 * executable, as Debian's own /usr/bin/python3 is built, which starts and
 * imports ~15% faster than the shared, position-independent libpython.  The
 * supervisor, which parses hostile HTTP, stays position-independent. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "handoff.h"
#include "jsonext.h"
#include "layers.h"
#include "pyrun.h"
#include "sandbox.h"

/* What applying the layers gave, for the supervisor (through the report). */
static struct sandbox_layers layers;
static struct report *the_report;

/* Landlock and seccomp, after Python is up.  A refusal goes into the report;
 * the interpreter then stops before user code. */
static int lock_down(char *why, size_t whylen)
{
    int rc = sandbox_lock_down(&layers, why, whylen);
    sandbox_layers_report(&layers, the_report);
    return rc;
}

static long tv_ms(struct timeval tv)
{
    return tv.tv_sec * 1000L + tv.tv_usec / 1000;
}

static int internal(struct report *r, int status, const char *what)
{
    r->state = REPORT_INTERNAL;
    snprintf(r->err_type, sizeof(r->err_type), "InternalError");
    report_messagef(r, "%s", what);
    return status;
}

/* Tell the supervisor the report is complete, with our own rusage, so it
 * can answer while this process is still being torn down. */
static void report_done(struct report *r)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0) {
        r->cpu_ms = tv_ms(ru.ru_utime) + tv_ms(ru.ru_stime);
        r->max_rss_kib = ru.ru_maxrss;
    }
    (void)!write(SANDBOX_DONE_FD, "d", 1);
}

static struct handoff *map_job(void)
{
    struct stat st;
    if (fstat(SANDBOX_JOB_FD, &st) < 0 || (size_t)st.st_size < sizeof(struct handoff))
        return NULL;
    struct handoff *h = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED,
                             SANDBOX_JOB_FD, 0);
    if (h == MAP_FAILED)
        return NULL;
    if (h->magic != HANDOFF_MAGIC || h->total != (size_t)st.st_size ||
        h->report_off > h->total || h->body_off > h->total ||
        h->body_len > h->total - h->body_off)
        return NULL;
    close(SANDBOX_JOB_FD);
    return h;
}

/* The body was validated by the supervisor; only code and data are taken. */
static int run(struct handoff *h)
{
    struct report *r = handoff_report(h);
    const char *err = NULL;
    cJSON *root = jsonext_parse(handoff_body(h), h->body_len, &err);
    const cJSON *code = root ? cJSON_GetObjectItemCaseSensitive(root, "code") : NULL;
    if (!code || !cJSON_IsString(code) || !code->valuestring) {
        cJSON_Delete(root);
        return internal(r, 7, "the worker cannot read the request body again");
    }
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(root, "data");
    if (!data)
        data = cJSON_CreateObject();   /* absent: {} */
    if (!data) {
        cJSON_Delete(root);
        return internal(r, 7, "out of memory");
    }
    int status = pyexec_python_main(r, &h->lim, code->valuestring, strlen(code->valuestring),
                                    data, lock_down);
    if (status == 0)
        report_done(r);
    /* No interpreter finalisation, no frees: the process ends here and the
     * kernel reclaims everything at once. */
    return status;
}

int main(void)
{
    /* Executed through its descriptor (fexecve): kernels before 6.14 name
     * the process after the descriptor's number ("5"); ps shows this. */
    prctl(PR_SET_NAME, WORKER_PROGRAM, 0, 0, 0);
    struct handoff *h = map_job();
    if (!h) {
        fprintf(stderr, "pyexec-worker: no job on descriptor %d (started by hand? it is "
                        "started by pyexec only): %s\n", SANDBOX_JOB_FD, strerror(errno));
        return 2;
    }
    struct report *r = handoff_report(h);
    report_stage(r, STAGE_EXECED);
    the_report = r;
    sandbox_layers_init(&layers, h->allow_missing_layers);
    if (sandbox_after_exec(&h->lim, &layers) < 0) {
        char why[160];
        layers_refusal(why, sizeof(why), layers.failed, layers.err);
        sandbox_layers_report(&layers, r);
        _exit(internal(r, 3, why));
    }
    sandbox_layers_report(&layers, r);
    _exit(run(h));
}

/* Supervisor and worker.  The supervisor never runs user code: it forks a
 * worker that sandboxes itself, starts Python and runs the snippet, and waits
 * for it on a pidfd with the wall-clock limit.  The worker reports through a
 * shared mapping, so a worker killed by the timer, SIGXCPU or the OOM killer
 * still leaves its printed output and the supervisor still answers. */
#include "worker.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "pyrun.h"

static long now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000L + ts.tv_nsec / 1000;
}

static struct report *report_map(const struct limits *lim, size_t *size)
{
    *size = sizeof(struct report) + (size_t)lim->output_bytes + (size_t)lim->result_bytes;
    struct report *r = mmap(NULL, *size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (r == MAP_FAILED)
        return NULL;
    r->output_cap = (size_t)lim->output_bytes;
    r->result_cap = (size_t)lim->result_bytes;
    return r;
}

/* The Python side lives in pyexec-python.so, loaded only here, in the worker:
 * the supervisor never maps libpython, so requests that need no Python
 * (health, bad keys, malformed HTTP) do not pay its ~4 ms of loading.  It is
 * looked for next to the executable (the build tree), then in
 * ../lib/pyexec/ (an installed tree). */
static pyexec_python_fn load_python(struct report *r)
{
    char exe[PATH_MAX], path[PATH_MAX + 64];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n <= 0) {
        snprintf(r->err_message, sizeof(r->err_message), "cannot find the executable's directory");
        return NULL;
    }
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    *slash = '\0';
    static const char *const WHERE[] = { "/", "/../lib/pyexec/" };
    for (size_t i = 0; i < sizeof(WHERE) / sizeof(WHERE[0]); i++) {
        snprintf(path, sizeof(path), "%s%s%s", exe, WHERE[i], PYTHON_SO);
        if (access(path, R_OK) != 0)
            continue;
        void *so = dlopen(path, RTLD_NOW | RTLD_LOCAL);
        void *fn = so ? dlsym(so, PYEXEC_PYTHON_ENTRY) : NULL;
        if (fn)
            return (pyexec_python_fn)fn;
        snprintf(r->err_message, sizeof(r->err_message), "cannot load %.300s: %.600s", path, dlerror());
        return NULL;
    }
    snprintf(r->err_message, sizeof(r->err_message), "%s not found next to %.800s", PYTHON_SO, exe);
    return NULL;
}

/* The worker: never returns. */
static long tv_ms(struct timeval tv)
{
    return tv.tv_sec * 1000L + tv.tv_usec / 1000;
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

static void worker_main(struct report *r, const struct sandbox_ids *ids, int done_fd,
                        const char *code, size_t code_len, const cJSON *data,
                        const struct limits *lim)
{
    char why[256];
    report_stage(r, STAGE_FORKED);
    pid_t supervisor = getppid();
    if (sandbox_prepare(ids, lim, done_fd, why, sizeof(why)) < 0) {
        r->state = REPORT_INTERNAL;
        snprintf(r->err_message, sizeof(r->err_message), "sandbox: %s", why);
        _exit(3);
    }
    /* If the supervisor dies, so does the worker: nobody would read it.  Set
     * after the identity change, which clears it. */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != supervisor)
        _exit(6);
    report_stage(r, STAGE_SANDBOXED);
    pyexec_python_fn python = load_python(r);
    if (!python) {
        r->state = REPORT_INTERNAL;
        _exit(4);
    }
    int status = python(r, lim, code, code_len, data, sandbox_lock_down);
    if (status == 0)
        report_done(r);
    /* No interpreter finalisation: the process ends here and the kernel
     * reclaims everything at once. */
    _exit(status);
}

#define BACKSTOP_MS 250   /* the worker's own SIGKILL timer should fire first */

/* Wait until the worker reports done (then it is reaped later, after the
 * answer is sent) or ends.  It kills itself at the wall limit; only if it is
 * still there BACKSTOP_MS later does the supervisor signal it, through its
 * pidfd (the unit denies kill() to keep siblings apart).  Returns 1 when the
 * worker said done and has not been reaped yet. */
static int wait_worker(pid_t pid, int done_fd, long wall_ms, int *status, struct rusage *ru)
{
    int pfd = (int)syscall(SYS_pidfd_open, pid, 0);
    long deadline = now_us() + (wall_ms + BACKSTOP_MS) * 1000;
    int done = 0;
    while (pfd >= 0) {
        long left = (deadline - now_us()) / 1000;
        if (left <= 0) {
            log_error("worker %d outlived its wall timer; killing it", (int)pid);
            if (syscall(SYS_pidfd_send_signal, pfd, SIGKILL, NULL, 0) < 0)
                kill(pid, SIGKILL);
            break;
        }
        struct pollfd p[2] = { { .fd = pfd, .events = POLLIN },
                               { .fd = done_fd, .events = POLLIN } };
        int n = poll(p, 2, (int)left + 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 || p[0].revents)
            break;
        char c;
        if (p[1].revents && read(done_fd, &c, 1) == 1) {
            done = 1;
            break;
        }
        if (p[1].revents)
            done_fd = -1;   /* EOF without "done": keep waiting on the pidfd */
    }
    if (pfd >= 0)
        close(pfd);
    else
        kill(pid, SIGKILL);   /* no pidfd: never wait unbounded */
    if (done)
        return 1;
    while (wait4(pid, status, 0, ru) < 0 && errno == EINTR)
        ;
    return 0;
}

void worker_reap(struct request *req)
{
    if (req->worker_pid <= 0)
        return;
    while (waitpid(req->worker_pid, NULL, 0) < 0 && errno == EINTR)
        ;
    req->worker_pid = 0;
}

static void set_error(struct outcome *o, const char *kind, const char *type, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void set_error(struct outcome *o, const char *kind, const char *type, const char *fmt, ...)
{
    o->success = false;
    o->kind = kind;
    snprintf(o->err_type, sizeof(o->err_type), "%s", type);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(o->err_message, sizeof(o->err_message), fmt, ap);
    va_end(ap);
}

/* What the worker reported, if it lived to report it. */
static void take_report(struct outcome *o, struct report *r, const struct limits *lim)
{
    switch (r->state) {
    case REPORT_OK:
        o->success = true;
        o->kind = "ok";
        o->result_json = strndup(report_result(r), r->result_len);
        if (!o->result_json)
            set_error(o, "internal", "InternalError", "out of memory copying the result");
        return;
    case REPORT_ERROR:
        set_error(o, strcmp(r->err_type, "MemoryError") == 0 ? "memory" : "user_error",
                  r->err_type, "%s", r->err_message);
        o->err_line = r->err_line;
        return;
    case REPORT_OUTPUT_LIMIT:
        set_error(o, "output_limit", "OutputLimitExceeded",
                  "printed output exceeds the limit of %ld bytes", lim->output_bytes);
        return;
    case REPORT_RESULT_TOO_LARGE:
    case REPORT_NOT_SERIALIZABLE:
        set_error(o, "result_error", r->err_type, "%s", r->err_message);
        return;
    default:
        set_error(o, "internal", "InternalError", "%s",
                  r->err_message[0] ? r->err_message : "the worker ended without a result");
        return;
    }
}

/* Judge the worker's end: killed for time or memory, crashed, or reported. */
static void judge(struct outcome *o, struct report *r, int status, const struct limits *lim)
{
    int timed_out = WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL &&
                    o->wall_ms >= lim->wall_ms;
    if (r->state == REPORT_OUTPUT_LIMIT) {
        take_report(o, r, lim);
    } else if (timed_out) {
        set_error(o, "timeout", "TimeoutError", "wall time limit of %ld ms exceeded", lim->wall_ms);
    } else if (WIFSIGNALED(status) && (WTERMSIG(status) == SIGXCPU ||
                                        o->cpu_ms >= lim->cpu_ms)) {
        set_error(o, "timeout", "TimeoutError", "CPU time limit of %ld ms exceeded", lim->cpu_ms);
    } else if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) {
        set_error(o, "memory", "MemoryError", "the worker was killed (out of memory)");
    } else if (WIFSIGNALED(status) && (WTERMSIG(status) == SIGSEGV || WTERMSIG(status) == SIGBUS) &&
               r->stage_us[STAGE_LOCKED] && !r->stage_us[STAGE_SERIALISED]) {
        /* Inside the snippet: CPython's C stack overflowed (iterators or
         * generators chained hundreds of thousands deep). */
        set_error(o, "user_error", "RecursionError",
                  "the code nests too deeply for the interpreter's C stack (signal %d)",
                  WTERMSIG(status));
    } else if (WIFSIGNALED(status)) {
        set_error(o, "crash", "InternalError", "the worker died from signal %d", WTERMSIG(status));
        log_error("worker died from signal %d", WTERMSIG(status));
    } else if (r->state == REPORT_NONE || r->state == REPORT_INTERNAL) {
        take_report(o, r, lim);
        log_error("worker failed: %s (exit %d)", o->err_message,
                  WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    } else {
        take_report(o, r, lim);
    }
    o->output_truncated = r->output_truncated;
    o->output_len = r->output_len;
    o->output = malloc(r->output_len + 1);
    if (o->output) {
        memcpy(o->output, report_output(r), r->output_len);
        o->output[r->output_len] = '\0';
    } else {
        o->output_len = 0;
    }
}

int worker_run(struct request *req, const struct sandbox_ids *ids, const char *code,
               size_t code_len, const cJSON *data)
{
    size_t size;
    struct report *r = report_map(&req->limits, &size);
    if (!r)
        return fail(req, 503, "ServiceUnavailable", "cannot map the worker report: %s",
                    strerror(errno));
    int done[2];
    if (pipe2(done, O_CLOEXEC) < 0) {
        munmap(r, size);
        return fail(req, 503, "ServiceUnavailable", "cannot make a pipe: %s", strerror(errno));
    }
    long start = now_us();
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        munmap(r, size);
        close(done[0]);
        close(done[1]);
        return fail(req, 503, "ServiceUnavailable", "cannot start a worker: %s", strerror(errno));
    }
    if (pid == 0) {
        close(done[0]);
        worker_main(r, ids, done[1], code, code_len, data, &req->limits);
    }
    close(done[1]);

    int status = 0;
    struct rusage ru;
    memset(&ru, 0, sizeof(ru));
    int early = wait_worker(pid, done[0], req->limits.wall_ms, &status, &ru);
    close(done[0]);
    struct outcome *o = &req->out;
    o->ran = true;
    o->wall_ms = (now_us() - start) / 1000;
    if (early) {
        req->worker_pid = pid;   /* reaped after the answer is sent */
        o->cpu_ms = r->cpu_ms;
        o->max_rss_kib = r->max_rss_kib;
    } else {
        o->cpu_ms = tv_ms(ru.ru_utime) + tv_ms(ru.ru_stime);
        o->max_rss_kib = ru.ru_maxrss;
    }
    judge(o, r, status, &req->limits);
    memcpy(req->stage_us, r->stage_us, sizeof(req->stage_us));
    munmap(r, size);
    return 0;
}

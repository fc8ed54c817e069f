/* Supervisor and worker.  The supervisor never runs user code: it forks a
 * worker that sandboxes itself and executes the worker program
 * (pyexec-worker), which starts Python and runs the snippet; the supervisor
 * waits for it on a pidfd with the wall-clock limit.  The worker reports
 * through a shared memfd, so a worker killed by the timer, SIGXCPU or the
 * OOM killer still leaves its printed output and the supervisor still
 * answers.  The supervisor itself never maps libpython: requests that need
 * no Python (health, bad keys, malformed HTTP) do not pay for it. */
#include "worker.h"

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

#include "handoff.h"
#include "layers.h"
#include "log.h"

static long now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000L + ts.tv_nsec / 1000;
}

static long tv_ms(struct timeval tv)
{
    return tv.tv_sec * 1000L + tv.tv_usec / 1000;
}

/* The job for the worker program, in a memfd that survives its execve:
 * limits, the body, and room for the report with its output and result. */
static struct handoff *handoff_create(const struct request *req, int *fd)
{
    const struct limits *lim = &req->limits;
    size_t report_off = (sizeof(struct handoff) + 63) & ~(size_t)63;
    /* The result area holds result_bytes and the converter's terminator:
     * a result of exactly the limit is allowed. */
    size_t report_size = sizeof(struct report) + (size_t)lim->output_bytes +
                         (size_t)lim->result_bytes + 1;
    size_t body_off = report_off + report_size;
    size_t total = body_off + req->body_len;
    *fd = memfd_create("pyexec-job", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (*fd < 0)
        return NULL;
    /* Sealed at its size: the worker cannot shrink it under the
     * supervisor's mapping (which would then fault on reading the report). */
    struct handoff *h = MAP_FAILED;
    if (ftruncate(*fd, (off_t)total) == 0 &&
        fcntl(*fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) == 0)
        h = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_SHARED, *fd, 0);
    if (h == MAP_FAILED) {
        int e = errno;
        close(*fd);
        errno = e;
        return NULL;
    }
    h->magic = HANDOFF_MAGIC;
    h->lim = *lim;
    h->report_off = report_off;
    h->body_off = body_off;
    h->body_len = req->body_len;
    h->total = total;
    memcpy((char *)h + body_off, req->body, req->body_len);
    struct report *r = handoff_report(h);
    r->output_cap = (size_t)lim->output_bytes;
    r->result_cap = (size_t)lim->result_bytes;
    return h;
}

/* The worker program (pyexec-worker) is looked for next to the executable
 * (the build tree), then in ../lib/pyexec/ (an installed tree), and opened
 * here, while still privileged: the worker's user need not be able to reach
 * its path (a checkout under /root, mode 0700), and what is executed is
 * what was found, whatever happens to the path afterwards.  Returns the
 * descriptor (close-on-exec: the program is an ELF, not a script). */
static int open_worker_program(char *path, size_t len, struct report *r)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n <= 0) {
        snprintf(r->err_message, sizeof(r->err_message), "cannot find the executable's directory");
        return -1;
    }
    exe[n] = '\0';
    *strrchr(exe, '/') = '\0';
    static const char *const WHERE[] = { "/", "/../lib/pyexec/" };
    for (size_t i = 0; i < sizeof(WHERE) / sizeof(WHERE[0]); i++) {
        snprintf(path, len, "%s%s%s", exe, WHERE[i], WORKER_PROGRAM);
        int fd = access(path, X_OK) == 0 ? open(path, O_PATH | O_CLOEXEC) : -1;
        if (fd >= 0)
            return fd;
    }
    snprintf(r->err_message, sizeof(r->err_message), "%s not found next to %.800s",
             WORKER_PROGRAM, exe);
    return -1;
}

/* The worker program gets no environment but the sanitizers' settings. */
static void worker_env(char **env, size_t n)
{
    static const char *const KEEP[] = { "ASAN_OPTIONS=", "UBSAN_OPTIONS=", "LSAN_OPTIONS=" };
    size_t k = 0;
    for (char **e = environ; *e && k + 1 < n; e++)
        for (size_t i = 0; i < sizeof(KEEP) / sizeof(KEEP[0]); i++)
            if (strncmp(*e, KEEP[i], strlen(KEEP[i])) == 0)
                env[k++] = *e;
    env[k] = NULL;
}

/* The forked child: sandbox itself, then become the worker program.  Never
 * returns. */
static void worker_child(struct report *r, const struct sandbox_ids *ids, int done_fd,
                         int job_fd, const struct limits *lim)
{
    char why[256], path[PATH_MAX + 64];
    report_stage(r, STAGE_FORKED);
    pid_t supervisor = getppid();
    int prog = open_worker_program(path, sizeof(path), r);
    if (prog < 0) {
        r->state = REPORT_INTERNAL;
        _exit(4);
    }
    struct sandbox_layers layers;
    sandbox_layers_init(&layers, ids->allow_missing);
    int prepared = sandbox_prepare(ids, lim, done_fd, job_fd, prog, &layers, why, sizeof(why));
    sandbox_layers_report(&layers, r);
    if (prepared < 0) {
        r->state = REPORT_INTERNAL;
        snprintf(r->err_message, sizeof(r->err_message), "sandbox: %s", why);
        _exit(3);
    }
    /* If the supervisor dies, so does the worker: nobody would read it.  Set
     * after the identity change, which clears it; execve keeps it. */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != supervisor)
        _exit(6);
    report_stage(r, STAGE_SANDBOXED);
    signal(SIGPIPE, SIG_DFL);   /* an ignored disposition would survive execve */
    char *argv[] = { (char *)WORKER_PROGRAM, NULL }, *env[8];
    worker_env(env, sizeof(env) / sizeof(env[0]));
    fexecve(SANDBOX_EXEC_FD, argv, env);
    r->state = REPORT_INTERNAL;
    snprintf(r->err_message, sizeof(r->err_message), "cannot execute %.800s: %s", path,
             strerror(errno));
    _exit(4);
}

#define BACKSTOP_MS 250   /* the worker's own SIGKILL timer should fire first */

/* Wait until the worker reports done (then it is reaped later, after the
 * answer is sent) or ends.  It kills itself at the wall limit; only if it is
 * still there BACKSTOP_MS later does the supervisor signal it, through its
 * pidfd (the unit denies kill() to keep siblings apart).  A client that
 * hangs up meanwhile (fd 0) gets its worker killed at once: nobody would
 * read the answer.  Returns 1 when the worker said done and has not been
 * reaped yet. */
static int wait_worker(pid_t pid, int done_fd, long wall_ms, int *status, struct rusage *ru,
                       bool *gone)
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
        struct pollfd p[3] = { { .fd = pfd, .events = POLLIN },
                               { .fd = done_fd, .events = POLLIN },
                               { .fd = 0, .events = POLLRDHUP } };
        int n = poll(p, 3, (int)left + 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 || p[0].revents)
            break;
        if (p[2].revents & (POLLRDHUP | POLLHUP | POLLERR)) {
            *gone = true;
            syscall(SYS_pidfd_send_signal, pfd, SIGKILL, NULL, 0);
            break;
        }
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

/* A worker that said "done" ends within moments (its teardown), and its
 * own wall timer ends it anyway; whatever it does, the supervisor waits no
 * longer than that timer plus BACKSTOP_MS, then kills it. */
void worker_reap(struct request *req)
{
    if (req->worker_pid <= 0)
        return;
    int pfd = (int)syscall(SYS_pidfd_open, req->worker_pid, 0);
    while (pfd >= 0) {
        long left = (req->worker_deadline_us - now_us()) / 1000;
        struct pollfd p = { .fd = pfd, .events = POLLIN };
        int n = left > 0 ? poll(&p, 1, (int)left + 1) : 0;
        if (n < 0 && errno == EINTR)
            continue;
        if (n == 0) {
            log_error("worker %d outlived its wall timer after reporting; killing it",
                      (int)req->worker_pid);
            syscall(SYS_pidfd_send_signal, pfd, SIGKILL, NULL, 0);
        }
        break;
    }
    if (pfd >= 0)
        close(pfd);
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
    o->err_message_len = strlen(o->err_message);
}

/* A snippet's message from the report: by its (clamped) length, not as a C
 * string, since it may hold U+0000. */
static void set_snippet_error(struct outcome *o, const char *kind, const struct report *r)
{
    set_error(o, kind, r->err_type, "%s", "");
    memcpy(o->err_message, r->err_message, r->err_message_len);
    o->err_message[r->err_message_len] = '\0';
    o->err_message_len = r->err_message_len;
    o->err_message_truncated = r->err_message_truncated != 0;
}

/* The report lives in memory the worker can write, and a worker that said
 * "done" may still be running: after user code, nothing in it is trusted
 * and nothing is read twice.  One copy of the header is taken; the areas'
 * sizes come from the supervisor's own limits, lengths are clamped to them
 * and strings terminated, so even a worker taken over entirely cannot make
 * the supervisor read outside the mapping. */
struct verdict {
    struct report hdr;      /* the copy (no area: it has no size here) */
    const char *output;     /* output_len bytes in the mapping */
    const char *result;     /* result_len bytes in the mapping */
};

static void read_report(struct verdict *v, struct report *r, const struct limits *lim)
{
    memcpy(&v->hdr, r, sizeof(v->hdr));
    struct report *h = &v->hdr;
    h->output_cap = (size_t)lim->output_bytes;
    h->result_cap = (size_t)lim->result_bytes;
    if (h->output_len > h->output_cap)
        h->output_len = h->output_cap;
    if (h->result_len > h->result_cap)
        h->result_len = h->result_cap;
    h->err_type[sizeof(h->err_type) - 1] = '\0';
    h->err_message[sizeof(h->err_message) - 1] = '\0';
    if (h->err_message_len > sizeof(h->err_message) - 1)
        h->err_message_len = sizeof(h->err_message) - 1;
    /* An error type is a Python class name: anything else is not ours. */
    size_t tn = strlen(h->err_type);
    if (tn && strspn(h->err_type, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                  "0123456789_") != tn)
        snprintf(h->err_type, sizeof(h->err_type), "InternalError");
    if (h->cpu_ms < 0)   /* figures that feed the usage counters */
        h->cpu_ms = 0;
    if (h->max_rss_kib < 0)
        h->max_rss_kib = 0;
    v->output = r->area;
    v->result = r->area + h->output_cap;
}

/* What the worker reported, if it lived to report it. */
static void take_report(struct outcome *o, const struct verdict *v, const struct limits *lim)
{
    const struct report *r = &v->hdr;
    switch (r->state) {
    case REPORT_OK:
        o->success = true;
        o->kind = "ok";
        o->result_json = strndup(v->result, r->result_len);
        if (!o->result_json)
            set_error(o, "internal", "InternalError", "out of memory copying the result");
        return;
    case REPORT_ERROR:
        set_snippet_error(o, strcmp(r->err_type, "MemoryError") == 0 ? "memory" : "user_error", r);
        o->err_line = r->err_line;
        return;
    case REPORT_OUTPUT_LIMIT:
        set_error(o, "output_limit", "OutputLimitExceeded",
                  "printed output exceeds the limit of %ld bytes", lim->output_bytes);
        return;
    case REPORT_RESULT_TOO_LARGE:
    case REPORT_NOT_SERIALIZABLE:
        set_snippet_error(o, "result_error", r);
        return;
    default:
        set_error(o, "internal", "InternalError", "%s",
                  r->err_message[0] ? r->err_message : "the worker ended without a result");
        return;
    }
}

/* A layer the worker could not apply and the operator did not allow
 * missing: it stopped before user code, and the host cannot serve.  (A
 * worker taken over could claim this too; it only refuses its own request.) */
static int layer_refused(struct request *req, const struct report *r)
{
    int which = r->layer_failed - 1, e = r->layer_errno;
    if (which < 0 || which >= LAYER_COUNT)
        return 0;
    if (e <= 0 || e > 4095)
        e = EIO;
    char msg[160];
    layers_refusal(msg, sizeof(msg), which, e);
    log_prio(3, "%s errno=%d", msg, e);
    set_error(&req->out, "internal", "ServiceUnavailable", "%s", msg);
    req->out.layers_missing |= LAYER_BIT(which);
    fail(req, 503, "ServiceUnavailable", "%s", msg);
    return 1;
}

/* Judge the worker's end: killed for time or memory, crashed, or reported. */
static void judge(struct outcome *o, const struct verdict *v, int status, const struct limits *lim)
{
    const struct report *r = &v->hdr;
    int timed_out = WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL &&
                    o->wall_ms >= lim->wall_ms;
    if (r->state == REPORT_OUTPUT_LIMIT) {
        take_report(o, v, lim);
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
        take_report(o, v, lim);
        log_error("worker failed: %s (exit %d)", o->err_message,
                  WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    } else {
        take_report(o, v, lim);
    }
    o->output_truncated = r->output_truncated != 0;
    o->output_len = r->output_len;
    o->output = malloc(r->output_len + 1);
    if (o->output) {
        memcpy(o->output, v->output, r->output_len);
        o->output[r->output_len] = '\0';
    } else {
        o->output_len = 0;
    }
}

/* CPU and memory: the kernel's figures for a reaped worker, else the
 * report's own (read_report clamped them). */
static void take_usage(struct outcome *o, const struct verdict *v, int early,
                       const struct rusage *ru)
{
    if (early) {
        o->cpu_ms = v->hdr.cpu_ms;
        o->max_rss_kib = v->hdr.max_rss_kib;
    } else {
        o->cpu_ms = tv_ms(ru->ru_utime) + tv_ms(ru->ru_stime);
        o->max_rss_kib = ru->ru_maxrss;
    }
}

int worker_run(struct request *req, const struct sandbox_ids *ids)
{
    int job_fd;
    struct handoff *h = handoff_create(req, &job_fd);
    if (!h)
        return fail(req, 503, "ServiceUnavailable", "cannot map the worker's job: %s",
                    strerror(errno));
    h->allow_missing_layers = ids->allow_missing;
    struct report *r = handoff_report(h);
    size_t size = h->total;
    int done[2];
    if (pipe2(done, O_CLOEXEC) < 0) {
        munmap(h, size);
        close(job_fd);
        return fail(req, 503, "ServiceUnavailable", "cannot make a pipe: %s", strerror(errno));
    }
    long start = now_us();
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        munmap(h, size);
        close(job_fd);
        close(done[0]);
        close(done[1]);
        return fail(req, 503, "ServiceUnavailable", "cannot start a worker: %s", strerror(errno));
    }
    if (pid == 0) {
        close(done[0]);
        worker_child(r, ids, done[1], job_fd, &req->limits);
    }
    close(done[1]);
    close(job_fd);

    int status = 0;
    struct rusage ru;
    memset(&ru, 0, sizeof(ru));
    bool gone = false;
    int early = wait_worker(pid, done[0], req->limits.wall_ms, &status, &ru, &gone);
    close(done[0]);
    struct outcome *o = &req->out;
    o->ran = true;
    o->wall_ms = (now_us() - start) / 1000;
    struct verdict v;
    read_report(&v, r, &req->limits);
    if (early) {
        req->worker_pid = pid;   /* reaped after the answer is sent */
        req->worker_deadline_us = start + (req->limits.wall_ms + BACKSTOP_MS) * 1000;
    }
    take_usage(o, &v, early, &ru);
    o->sandboxed = true;
    o->layers_missing = v.hdr.layers_missing & ids->allow_missing;
    if (!layer_refused(req, &v.hdr))
        judge(o, &v, status, &req->limits);
    if (gone)
        set_error(o, "client_gone", "ClientGone", "the client closed the connection");
    memcpy(req->stage_us, v.hdr.stage_us, sizeof(req->stage_us));
    munmap(h, size);
    return 0;
}

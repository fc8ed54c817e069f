/* Layers, in the order they are applied in the worker:
 *   namespaces (net, ipc, uts, mount) when root: escaped code has no network;
 *   rlimits: CPU seconds, no files written, no core dumps, few descriptors;
 *   user switch and capability clearing with libcap-ng, then no_new_privs;
 *   (execve of the worker program, which re-arms what execve resets:)
 *   CPU and wall timers, not dumpable;
 *   after the interpreter is up: Landlock and a seccomp allow-list.
 * Each is a named layer (layers.h): one that cannot be applied ends the
 * worker before user code, unless allow_missing_layers names it; then it is
 * recorded as missing and the next layer is applied. */
#include "sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/landlock.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <time.h>
#include <seccomp.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cap-ng.h>

#include "config.h"
#include "layers.h"

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif

#define AS_SLACK_MB 512   /* address space beyond the Python heap: libraries, stacks */

void sandbox_layers_init(struct sandbox_layers *L, unsigned allow)
{
    L->allow = allow;
    L->missing = 0;
    L->failed = -1;
    L->err = 0;
}

void sandbox_layers_report(const struct sandbox_layers *L, struct report *r)
{
    r->layers_missing |= L->missing;
    if (L->failed >= 0) {
        r->layer_errno = L->err;
        r->layer_failed = L->failed + 1;
    }
}

/* The outcome of applying one layer (rc 0: applied, else errno says why):
 * missing and tolerated when allowed, otherwise the end (-1). */
static int layer(struct sandbox_layers *L, enum layer which, int rc)
{
    if (rc == 0)
        return 0;
    int e = errno ? errno : EPERM;
    if (L->allow & LAYER_BIT(which)) {
        L->missing |= LAYER_BIT(which);
        return 0;
    }
    if (L->failed < 0) {
        L->failed = (int)which;
        L->err = e;
    }
    return -1;
}

int sandbox_lookup_user(const char *name, struct sandbox_ids *ids)
{
    ids->have = 0;
    if (geteuid() != 0)
        return 0;
    struct passwd *pw = getpwnam(name);
    if (!pw)
        return -1;
    ids->uid = pw->pw_uid;
    ids->gid = pw->pw_gid;
    ids->have = 1;
    return 0;
}

/* Lowering a limit needs no privilege; one already tighter (the unit's
 * Limit*=) is never raised.  A refusal (a system call filter) is accepted
 * only when the limit in force is already at least as tight: RLIMIT_AS,
 * which nothing else sets, is never silently skipped. */
static int set_limit(int resource, rlim_t soft, rlim_t hard)
{
    struct rlimit cur;
    if (getrlimit(resource, &cur) < 0)
        return -1;
    if (hard > cur.rlim_max)
        hard = cur.rlim_max;
    if (soft > hard)
        soft = hard;
    struct rlimit rl = { soft, hard };
    if (setrlimit(resource, &rl) == 0)
        return 0;
    return errno == EPERM && cur.rlim_cur <= soft && cur.rlim_max <= hard ? 0 : -1;
}

/* A one-shot timer that sends signo to this process after ms on clock.
 * The worker ends itself on time, so the supervisor rarely needs kill(),
 * which the unit's system call filter denies (sibling isolation). */
static int arm_timer(clockid_t clock, long ms, int signo)
{
    struct sigevent ev = { .sigev_notify = SIGEV_SIGNAL, .sigev_signo = signo };
    timer_t t;
    if (timer_create(clock, &ev, &t) < 0)
        return -1;
    struct itimerspec its = { .it_value = { ms / 1000, (ms % 1000) * 1000000L } };
    return timer_settime(t, 0, &its, NULL);
}

/* CPU: a millisecond CPU-time timer raising SIGXCPU (default action:
 * terminate), with RLIMIT_CPU in whole seconds as a backstop.  Wall time: a
 * monotonic timer sending SIGKILL, which nothing can catch.  POSIX timers do
 * not survive execve, and execve makes the process dumpable again, so the
 * worker program does both itself, first thing. */
int sandbox_after_exec(const struct limits *lim, struct sandbox_layers *L)
{
    errno = 0;
    if (layer(L, LAYER_DUMPABLE, prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)) < 0)
        return -1;
    int rc = arm_timer(CLOCK_PROCESS_CPUTIME_ID, lim->cpu_ms, SIGXCPU) < 0 ||
             arm_timer(CLOCK_MONOTONIC, lim->wall_ms, SIGKILL) < 0 ? -1 : 0;
    return layer(L, LAYER_TIMERS, rc);
}

/* rlimits survive execve: set before it, they bound the worker program. */
static int apply_limits(const struct limits *lim)
{
    rlim_t cpu = (rlim_t)((lim->cpu_ms + 999) / 1000 + 1);
    if (set_limit(RLIMIT_CPU, cpu, cpu + 1) < 0 ||
        set_limit(RLIMIT_CORE, 0, 0) < 0 ||
        set_limit(RLIMIT_NOFILE, 32, 32) < 0 ||
        set_limit(RLIMIT_MEMLOCK, 0, 0) < 0 ||
        set_limit(RLIMIT_MSGQUEUE, 0, 0) < 0)
        return -1;
#ifndef UNDER_ASAN
    /* Backstop for memory outside Python's allocator (ASan reserves
     * terabytes of shadow, so this stays off in the sanitizer build). */
    rlim_t as = (rlim_t)(lim->memory_mb + AS_SLACK_MB) << 20;
    if (set_limit(RLIMIT_AS, as, as) < 0)
        return -1;
#endif
    return 0;
}

/* What the worker keeps, and why; everything else is closed:
 *   0, 1  /dev/null: never the client's socket (the supervisor answers it);
 *   2     /dev/null too, never the supervisor's log: CPython and escaped
 *         code would write there (forged lines, unbounded volume) and could
 *         lseek or set O_NONBLOCK on the shared file description.  Failures
 *         before user code travel in the report instead;
 *   3     SANDBOX_DONE_FD, the write end of the "report written" pipe;
 *   4     SANDBOX_JOB_FD, the job memfd (closed once mapped, before Python);
 *   5     SANDBOX_EXEC_FD, the worker program opened while still root (its
 *         path may be out of nobody's reach), close-on-exec: gone at fexecve.
 * done_fd and job_fd are kept across execve. */
static int keep_fd(int fd, int target)
{
    if (fd != target)
        return dup2(fd, target) < 0 ? -1 : 0;   /* dup2 clears FD_CLOEXEC */
    return fcntl(fd, F_SETFD, 0);
}

static int isolate_fds(int done_fd, int job_fd, int exec_fd)
{
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0 || dup2(null, 2) < 0)
        return -1;
    if (null > 2 && null != done_fd && null != job_fd && null != exec_fd)
        close(null);
    /* exec_fd out of the way of the two moves below; it goes last. */
    if (exec_fd >= 0 && exec_fd < 10 && (exec_fd = fcntl(exec_fd, F_DUPFD_CLOEXEC, 10)) < 0)
        return -1;
    int first = 3;
    if (done_fd >= 0) {
        /* job_fd may sit on SANDBOX_DONE_FD: move it out of the way first. */
        if (job_fd == SANDBOX_DONE_FD && (job_fd = fcntl(job_fd, F_DUPFD_CLOEXEC, 10)) < 0)
            return -1;
        if (keep_fd(done_fd, SANDBOX_DONE_FD) < 0)
            return -1;
        first = SANDBOX_DONE_FD + 1;
    }
    if (job_fd >= 0) {
        if (keep_fd(job_fd, SANDBOX_JOB_FD) < 0)
            return -1;
        first = SANDBOX_JOB_FD + 1;
    }
    if (exec_fd >= 0) {
        if (dup3(exec_fd, SANDBOX_EXEC_FD, O_CLOEXEC) < 0)
            return -1;
        for (int fd = first; fd < SANDBOX_EXEC_FD; fd++)
            close(fd);   /* a slot below it left unused (no done or job fd) */
        first = SANDBOX_EXEC_FD + 1;
    }
    return (int)syscall(SYS_close_range, first, ~0U, 0);
}

/* As root: the worker's user, no supplementary groups, no capabilities, an
 * empty bounding set. */
static int switch_user(const struct sandbox_ids *ids)
{
    if (!ids->have)
        return 0;
    capng_clear(CAPNG_SELECT_BOTH);
    return capng_change_id((int)ids->uid, (int)ids->gid,
                           CAPNG_DROP_SUPP_GRP | CAPNG_CLEAR_BOUNDING) == 0 ? 0 : -1;
}

/* Whatever capabilities are left (unprivileged in a hardened unit: none,
 * and capset itself may be filtered when there is nothing to drop). */
static int clear_capabilities(void)
{
    capng_get_caps_process();
    if (capng_have_capabilities(CAPNG_SELECT_CAPS) == CAPNG_NONE)
        return 0;
    capng_clear(CAPNG_SELECT_CAPS);
    return capng_apply(CAPNG_SELECT_CAPS) == 0 ? 0 : -1;
}

/* Not dumpable: no core dump ever (a piped core_pattern ignores
 * RLIMIT_CORE, and a crashing worker would stream its memory out), and no
 * ptrace or /proc/<pid>/mem access by anything running as this user. */
static int drop_identity(const struct sandbox_ids *ids, struct sandbox_layers *L)
{
    errno = 0;
    if (layer(L, LAYER_IDENTITY, switch_user(ids)) < 0)
        return -1;
    errno = 0;
    if (layer(L, LAYER_CAPABILITIES, clear_capabilities()) < 0 ||
        layer(L, LAYER_DUMPABLE, prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)) < 0)
        return -1;
    return layer(L, LAYER_NO_NEW_PRIVS, prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0));
}

/* As root, a namespace of each kind, one at a time so that a refusal names
 * the one refused (unprivileged, the unit's Private*= provide them). */
static int enter_namespaces(const struct sandbox_ids *ids, struct sandbox_layers *L)
{
    static const struct { enum layer layer; int flag; } NS[] = {
        { LAYER_NETNS, CLONE_NEWNET }, { LAYER_IPCNS, CLONE_NEWIPC },
        { LAYER_UTSNS, CLONE_NEWUTS }, { LAYER_MNTNS, CLONE_NEWNS },
    };
    for (size_t i = 0; ids->have && i < sizeof(NS) / sizeof(NS[0]); i++)
        if (layer(L, NS[i].layer, unshare(NS[i].flag)) < 0)
            return -1;
    return 0;
}

int sandbox_prepare(const struct sandbox_ids *ids, const struct limits *lim, int done_fd,
                    int job_fd, int exec_fd, struct sandbox_layers *L, char *why, size_t whylen)
{
    if (enter_namespaces(ids, L) < 0)
        goto refused;
    if (isolate_fds(done_fd, job_fd, exec_fd) < 0) {
        snprintf(why, whylen, "isolating descriptors: %s", strerror(errno));
        return -1;
    }
    if (layer(L, LAYER_RLIMITS, apply_limits(lim)) < 0 || drop_identity(ids, L) < 0)
        goto refused;
    return 0;
refused:
    layers_refusal(why, whylen, L->failed, L->err);
    return -1;
}

/* --- Landlock: reads only below the Python library directories ----------- */

static const char *const READABLE_DIRS[] = {
    "/usr/lib/python3", "/usr/lib/python3.11", "/usr/lib/python3.12", "/usr/lib/python3.13",
};

static int landlock_apply(void)
{
    int abi = (int)syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
    if (abi < 1)
        return -1;   /* refused (a container's filter) or not built in: errno says */
    struct landlock_ruleset_attr attr = {
        .handled_access_fs = LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE |
            LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR |
            LANDLOCK_ACCESS_FS_REMOVE_DIR | LANDLOCK_ACCESS_FS_REMOVE_FILE |
            LANDLOCK_ACCESS_FS_MAKE_CHAR | LANDLOCK_ACCESS_FS_MAKE_DIR |
            LANDLOCK_ACCESS_FS_MAKE_REG | LANDLOCK_ACCESS_FS_MAKE_SOCK |
            LANDLOCK_ACCESS_FS_MAKE_FIFO | LANDLOCK_ACCESS_FS_MAKE_BLOCK |
            LANDLOCK_ACCESS_FS_MAKE_SYM,
    };
#ifdef LANDLOCK_ACCESS_FS_REFER
    if (abi >= 2)
        attr.handled_access_fs |= LANDLOCK_ACCESS_FS_REFER;
#endif
#ifdef LANDLOCK_ACCESS_FS_TRUNCATE
    if (abi >= 3)
        attr.handled_access_fs |= LANDLOCK_ACCESS_FS_TRUNCATE;
#endif
    int rs = (int)syscall(SYS_landlock_create_ruleset, &attr, sizeof(attr), 0);
    if (rs < 0)
        return -1;
    for (size_t i = 0; i < sizeof(READABLE_DIRS) / sizeof(READABLE_DIRS[0]); i++) {
        int dir = open(READABLE_DIRS[i], O_PATH | O_CLOEXEC);
        if (dir < 0)
            continue;
        struct landlock_path_beneath_attr rule = {
            .allowed_access = LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR,
            .parent_fd = dir,
        };
        int rc = (int)syscall(SYS_landlock_add_rule, rs, LANDLOCK_RULE_PATH_BENEATH, &rule, 0);
        close(dir);
        if (rc < 0) {
            close(rs);
            return -1;
        }
    }
    int rc = (int)syscall(SYS_landlock_restrict_self, rs, 0);
    close(rs);
    return rc;
}

/* --- seccomp: what a running interpreter needs, and nothing else --------- */

static const int ALLOWED_SYSCALLS[] = {
    SCMP_SYS(read), SCMP_SYS(pread64), SCMP_SYS(readv), SCMP_SYS(write), SCMP_SYS(writev),
    SCMP_SYS(close), SCMP_SYS(lseek), SCMP_SYS(fstat), SCMP_SYS(newfstatat), SCMP_SYS(statx),
    SCMP_SYS(stat), SCMP_SYS(lstat), SCMP_SYS(getdents64), SCMP_SYS(readlink),
    SCMP_SYS(readlinkat), SCMP_SYS(getcwd),
    SCMP_SYS(mmap), SCMP_SYS(munmap), SCMP_SYS(mremap), SCMP_SYS(brk), SCMP_SYS(madvise),
    SCMP_SYS(mprotect), SCMP_SYS(rt_sigaction), SCMP_SYS(rt_sigprocmask),
    SCMP_SYS(rt_sigreturn), SCMP_SYS(sigaltstack), SCMP_SYS(futex), SCMP_SYS(getrandom),
    SCMP_SYS(clock_gettime), SCMP_SYS(clock_getres), SCMP_SYS(gettimeofday), SCMP_SYS(time),
    SCMP_SYS(clock_nanosleep), SCMP_SYS(nanosleep), SCMP_SYS(sched_yield),
    SCMP_SYS(getpid), SCMP_SYS(getppid), SCMP_SYS(gettid), SCMP_SYS(getuid), SCMP_SYS(geteuid),
    SCMP_SYS(getgid), SCMP_SYS(getegid), SCMP_SYS(getrusage), SCMP_SYS(sysinfo),
    SCMP_SYS(uname), SCMP_SYS(exit), SCMP_SYS(exit_group), SCMP_SYS(set_robust_list),
    SCMP_SYS(rseq), SCMP_SYS(restart_syscall), SCMP_SYS(sched_getaffinity),
};

/* fcntl only with the commands the interpreter uses on its own descriptors
 * (strace: F_GETFD; os.dup and open() want the rest).  Nothing that makes
 * the kernel signal or notify anyone (F_SETOWN, F_SETOWN_EX, F_SETSIG,
 * F_SETLEASE, F_NOTIFY, F_SETFL with O_ASYNC), no locks, no seals, no pipe
 * resizing.  F_SETFL is refused whole: the interpreter never needs it.  (x86_64
 * has no fcntl64.) */
static int allow_fcntl(scmp_filter_ctx ctx)
{
    static const int CMDS[] = { F_GETFD, F_SETFD, F_GETFL, F_DUPFD, F_DUPFD_CLOEXEC };
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < sizeof(CMDS) / sizeof(CMDS[0]); i++)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(fcntl), 1,
                              SCMP_A1(SCMP_CMP_EQ, (scmp_datum_t)CMDS[i]));
    return rc;
}

/* Failing calls get EPERM rather than a kill, so Python raises a clean
 * OSError instead of dying mid-way; the dangerous ones are simply absent:
 * socket, connect, execve, fork/clone, kill, ptrace, mount, bpf, ... */
static int seccomp_apply(void)
{
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ERRNO(EPERM));
    if (!ctx)
        return -ENOMEM;
    /* The kernel's own errno on failure, not libseccomp's ECANCELED. */
    int rc = seccomp_attr_set(ctx, SCMP_FLTATR_API_SYSRAWRC, 1);
    for (size_t i = 0; rc == 0 && i < sizeof(ALLOWED_SYSCALLS) / sizeof(ALLOWED_SYSCALLS[0]); i++)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, ALLOWED_SYSCALLS[i], 0);
    /* open only for reading: no O_WRONLY, O_RDWR, O_CREAT or O_TRUNC. */
    const scmp_datum_t wmask = O_WRONLY | O_RDWR | O_CREAT | O_TRUNC | O_APPEND;
    if (rc == 0)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(openat), 1,
                              SCMP_A2(SCMP_CMP_MASKED_EQ, wmask, 0));
    if (rc == 0)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(open), 1,
                              SCMP_A1(SCMP_CMP_MASKED_EQ, wmask, 0));
    if (rc == 0)
        rc = allow_fcntl(ctx);
    /* ioctl only as isatty() asks it: no TIOCSTI into a terminal on stderr. */
    if (rc == 0)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
                              SCMP_A1(SCMP_CMP_EQ, (scmp_datum_t)TCGETS));
    /* Signals only to itself (abort()), never to a sibling. */
    pid_t self = getpid();
    if (rc == 0)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(tgkill), 1,
                              SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)self));
    /* prlimit64 only to read limits (new_limit == NULL). */
    if (rc == 0)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(prlimit64), 1,
                              SCMP_A2(SCMP_CMP_EQ, 0));
    if (rc == 0) {
        /* libseccomp 2.5 answers EFAULT when its prctl fallback is refused;
         * errno still holds the kernel's reason. */
        errno = 0;
        rc = seccomp_load(ctx);
        if (rc < 0 && errno)
            rc = -errno;
    }
    seccomp_release(ctx);
    return rc;
}

int sandbox_lock_down(struct sandbox_layers *L, char *why, size_t whylen)
{
    errno = 0;
    if (layer(L, LAYER_LANDLOCK, landlock_apply()) < 0)
        goto refused;
    int rc = seccomp_apply();
    errno = -rc;
    if (layer(L, LAYER_SECCOMP, rc < 0 ? -1 : 0) < 0)
        goto refused;
    return 0;
refused:
    layers_refusal(why, whylen, L->failed, L->err);
    return -1;
}

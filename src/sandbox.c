/* Layers, in the order they are applied in the worker:
 *   namespaces (net, ipc, uts, mount) when root: escaped code has no network;
 *   rlimits: CPU seconds, no files written, no core dumps, few descriptors;
 *   user switch and capability clearing with libcap-ng, then no_new_privs;
 *   (execve of the worker program, which re-arms what execve resets:)
 *   CPU and wall timers, not dumpable;
 *   after the interpreter is up: Landlock and a seccomp allow-list. */
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

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif

#define AS_SLACK_MB 512   /* address space beyond the Python heap: libraries, stacks */

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

/* Lowering a limit needs no privilege, so EPERM means a system call filter
 * (the unit's, which then sets Limit*= itself): go on without. */
static int set_limit(int resource, rlim_t soft, rlim_t hard)
{
    struct rlimit rl = { soft, hard };
    if (setrlimit(resource, &rl) == 0 || (errno == EPERM && geteuid() != 0))
        return 0;
    return -1;
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
int sandbox_after_exec(const struct limits *lim)
{
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0 ||
        arm_timer(CLOCK_PROCESS_CPUTIME_ID, lim->cpu_ms, SIGXCPU) < 0 ||
        arm_timer(CLOCK_MONOTONIC, lim->wall_ms, SIGKILL) < 0)
        return -1;
    return 0;
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

/* Standard input and output become /dev/null: the worker never holds the
 * client's socket.  done_fd and job_fd move to SANDBOX_DONE_FD and
 * SANDBOX_JOB_FD, kept across execve, exec_fd to SANDBOX_EXEC_FD,
 * close-on-exec; every other descriptor but stderr is closed. */
static int keep_fd(int fd, int target)
{
    if (fd != target)
        return dup2(fd, target) < 0 ? -1 : 0;   /* dup2 clears FD_CLOEXEC */
    return fcntl(fd, F_SETFD, 0);
}

static int isolate_fds(int done_fd, int job_fd, int exec_fd)
{
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0)
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

static int drop_identity(const struct sandbox_ids *ids)
{
    if (ids->have) {
        capng_clear(CAPNG_SELECT_BOTH);
        if (capng_change_id((int)ids->uid, (int)ids->gid,
                            CAPNG_DROP_SUPP_GRP | CAPNG_CLEAR_BOUNDING) != 0)
            return -1;
    } else {
        /* Unprivileged (a hardened unit): only drop what is left, if any;
         * capset itself may be filtered when there is nothing to drop. */
        capng_get_caps_process();
        if (capng_have_capabilities(CAPNG_SELECT_CAPS) != CAPNG_NONE) {
            capng_clear(CAPNG_SELECT_CAPS);
            if (capng_apply(CAPNG_SELECT_CAPS) != 0)
                return -1;
        }
    }
    /* Not dumpable: no core dump ever (a piped core_pattern ignores
     * RLIMIT_CORE, and a crashing worker would stream its memory out), and
     * no ptrace or /proc/<pid>/mem access by anything running as this user. */
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
        return -1;
    return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
}

int sandbox_prepare(const struct sandbox_ids *ids, const struct limits *lim, int done_fd,
                    int job_fd, int exec_fd, char *why, size_t whylen)
{
    if (ids->have && unshare(CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWNS) < 0) {
        snprintf(why, whylen, "unshare namespaces: %s", strerror(errno));
        return -1;
    }
    if (isolate_fds(done_fd, job_fd, exec_fd) < 0) {
        snprintf(why, whylen, "isolating descriptors: %s", strerror(errno));
        return -1;
    }
    if (apply_limits(lim) < 0) {
        snprintf(why, whylen, "setrlimit: %s", strerror(errno));
        return -1;
    }
    if (drop_identity(ids) < 0) {
        snprintf(why, whylen, "dropping privileges: %s", strerror(errno));
        return -1;
    }
    return 0;
}

/* --- Landlock: reads only below the Python library directories ----------- */

static const char *const READABLE_DIRS[] = {
    "/usr/lib/python3", "/usr/lib/python3.11", "/usr/lib/python3.12", "/usr/lib/python3.13",
};

static int landlock_apply(void)
{
    int abi = (int)syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
    if (abi < 1)
        return 0;   /* kernel without Landlock: seccomp and the unit still hold */
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
    SCMP_SYS(readlinkat), SCMP_SYS(getcwd), SCMP_SYS(fcntl),
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

/* Failing calls get EPERM rather than a kill, so Python raises a clean
 * OSError instead of dying mid-way; the dangerous ones are simply absent:
 * socket, connect, execve, fork/clone, kill, ptrace, mount, bpf, ... */
static int seccomp_apply(void)
{
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ERRNO(EPERM));
    if (!ctx)
        return -1;
    int rc = 0;
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
    if (rc == 0)
        rc = seccomp_load(ctx);
    seccomp_release(ctx);
    return rc;
}

int sandbox_lock_down(char *why, size_t whylen)
{
    if (landlock_apply() < 0) {
        snprintf(why, whylen, "landlock: %s", strerror(errno));
        return -1;
    }
    int rc = seccomp_apply();
    if (rc < 0) {
        snprintf(why, whylen, "seccomp: %s", strerror(-rc));
        return -1;
    }
    return 0;
}

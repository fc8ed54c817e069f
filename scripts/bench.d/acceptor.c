/* acceptor: a measurement stand-in for `scripts/bench --systemd-breakdown`
 * (never installed).  The ExecStart of a candidate unit with Accept=no: one
 * long-lived service, sandboxed by systemd once, that accepts connections on
 * the socket systemd passes (fd 3, LISTEN_FDS=1) and runs, for every
 * connection, a fresh process of PROGRAM with the connection as its standard
 * input and output, exactly as systemd's Accept=yes would (inetd style).
 *
 *   acceptor MAX_CHILDREN PROGRAM [ARGS...]
 *
 * It answers the question: what does a connection cost when the unit's
 * sandbox is set up once per service instead of once per connection?  At
 * most MAX_CHILDREN connections are served at once (like MaxConnections=,
 * further connections wait in the backlog).  It uses no kill(): a child that
 * overruns is pyexec's own business (its timers), as under Accept=yes. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t children;

/* Reap at once, so that a child's CPU time reaches this process's own
 * accounting (cutime, cstime) as soon as the child has ended. */
static void on_child(int sig)
{
    (void)sig;
    int saved = errno;
    while (waitpid(-1, NULL, WNOHANG) > 0)
        children--;
    errno = saved;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: acceptor MAX_CHILDREN PROGRAM [ARGS...]\n");
        return 2;
    }
    int max = atoi(argv[1]);
    const char *fds = getenv("LISTEN_FDS");
    if (max < 1 || !fds || atoi(fds) != 1) {
        fprintf(stderr, "acceptor: needs MAX_CHILDREN >= 1 and exactly one socket (LISTEN_FDS=1)\n");
        return 2;
    }
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDNAMES");
    struct sigaction sa = { .sa_handler = on_child, .sa_flags = SA_RESTART | SA_NOCLDSTOP };
    sigemptyset(&sa.sa_mask);
    sigaction(SIGCHLD, &sa, NULL);
    sigset_t chld, old;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    for (;;) {
        sigprocmask(SIG_BLOCK, &chld, &old);
        while (children >= max)     /* at the cap: wait for one to end */
            sigsuspend(&old);
        sigprocmask(SIG_SETMASK, &old, NULL);
        int c = accept4(3, NULL, NULL, SOCK_CLOEXEC);
        if (c < 0) {
            if (errno == EINTR || errno == ECONNABORTED || errno == EMFILE || errno == ENFILE)
                continue;
            perror("acceptor: accept4");
            return 1;
        }
        sigprocmask(SIG_BLOCK, &chld, &old);
        pid_t pid = fork();
        if (pid == 0) {
            sigprocmask(SIG_SETMASK, &old, NULL);
            signal(SIGCHLD, SIG_DFL);
            if (dup2(c, 0) < 0 || dup2(c, 1) < 0)
                _exit(127);
            syscall(SYS_close_range, 3, ~0U, 0);
            execv(argv[2], argv + 2);
            _exit(127);
        }
        if (pid > 0)
            children++;
        sigprocmask(SIG_SETMASK, &old, NULL);
        close(c);
        if (pid < 0)
            perror("acceptor: fork");
    }
}

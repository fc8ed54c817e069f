#include "state.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SLOT_BASE 1048576   /* slot bytes live here, far from the record */

const char *state_dir(void)
{
    const char *d = getenv("PYEXEC_STATE");
    return d && *d ? d : STATE_DEFAULT_DIR;
}

static int ofd_lock(int fd, short type, off_t start, off_t len, int wait)
{
    struct flock fl = { .l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = len };
    for (;;) {
        if (fcntl(fd, wait ? F_OFD_SETLKW : F_OFD_SETLK, &fl) == 0)
            return 0;
        if (errno != EINTR)
            return -1;
    }
}

int state_take_slot(const char *path, long n, int *fd)
{
    *fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (*fd < 0)
        return -1;
    for (long i = 0; i < n; i++) {
        if (ofd_lock(*fd, F_WRLCK, SLOT_BASE + i, 1, 0) == 0)
            return 1;
        if (errno != EAGAIN && errno != EACCES) {
            int e = errno;
            close(*fd);
            *fd = -1;
            errno = e;
            return -1;
        }
    }
    close(*fd);
    *fd = -1;
    return 0;
}

static int client_path(char *buf, size_t len, const char *dir, const char *id)
{
    int n = snprintf(buf, len, "%s/clients/%s.usage", dir, id);
    return n > 0 && (size_t)n < len ? 0 : -1;
}

int state_open_client(struct client_state *cs, const char *id)
{
    char path[PATH_MAX];
    const char *dir = state_dir();
    cs->fd = -1;
    if (client_path(path, sizeof(path), dir, id) < 0) {
        errno = ENAMETOOLONG;
        return -1;
    }
    cs->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (cs->fd < 0 && errno == ENOENT) {
        char sub[PATH_MAX];
        snprintf(sub, sizeof(sub), "%s/clients", dir);
        if (mkdir(sub, 0700) < 0 && errno == ENOENT && mkdir(dir, 0700) == 0)
            (void)mkdir(sub, 0700);
        if (access(sub, W_OK) < 0)
            return -1;
        cs->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    }
    return cs->fd < 0 ? -1 : 0;
}

/* Read the record (a new or foreign file reads as zeroes). */
static int load(struct client_state *cs)
{
    memset(&cs->u, 0, sizeof(cs->u));
    ssize_t r = pread(cs->fd, &cs->u, sizeof(cs->u), 0);
    if (r < 0)
        return -1;
    if (((size_t)r != sizeof(cs->u) && (size_t)r != USAGE_V1_SIZE) || cs->u.magic != USAGE_MAGIC || cs->u.version != USAGE_VERSION) {
        memset(&cs->u, 0, sizeof(cs->u));
        cs->u.magic = USAGE_MAGIC;
        cs->u.version = USAGE_VERSION;
    }
    return 0;
}

/* One pwrite of a record smaller than a page: the old record or the new. */
static int store(struct client_state *cs)
{
    ssize_t w = pwrite(cs->fd, &cs->u, sizeof(cs->u), 0);
    if (w == (ssize_t)sizeof(cs->u))
        return 0;
    if (w >= 0)
        errno = ENOSPC;
    return -1;
}

static int locked_update(struct client_state *cs, int (*fn)(struct client_state *, void *),
                         void *arg)
{
    if (ofd_lock(cs->fd, F_WRLCK, 0, (off_t)USAGE_V1_SIZE, 1) < 0)
        return -1;
    int rc = load(cs);
    if (rc == 0)
        rc = fn(cs, arg);
    int e = errno;
    ofd_lock(cs->fd, F_UNLCK, 0, (off_t)USAGE_V1_SIZE, 1);
    errno = e;
    return rc;
}

struct rate_args {
    long limit, window_s, remaining, reset_s;
    int admitted;
};

static int rate_step(struct client_state *cs, void *arg)
{
    struct rate_args *a = arg;
    int64_t now = (int64_t)time(NULL);
    struct usage *u = &cs->u;
    if (u->window_start == 0 || now >= u->window_start + a->window_s || now < u->window_start) {
        u->window_start = now;   /* a window opens with its first request */
        u->window_count = 0;
    }
    a->reset_s = (long)(u->window_start + a->window_s - now);
    a->admitted = u->window_count < (uint64_t)a->limit;
    if (a->admitted) {
        u->window_count++;
        u->requests++;
    } else
        u->rate_limited++;
    a->remaining = a->limit - (long)u->window_count;
    return store(cs);
}

int state_rate_admit(struct client_state *cs, long limit, long window_s, long *remaining,
                     long *reset_s)
{
    struct rate_args a = { limit, window_s, 0, window_s, 0 };
    int rc = locked_update(cs, rate_step, &a);
    *remaining = a.remaining < 0 ? 0 : a.remaining;
    *reset_s = a.reset_s;
    return rc < 0 ? -1 : a.admitted;
}

struct count_args {
    size_t field;
    long cpu_ms, wall_ms;
    size_t from;   /* a counter to take the count from, 0 for none */
};

static int count_step(struct client_state *cs, void *arg)
{
    struct count_args *a = arg;
    uint64_t *counter = (uint64_t *)((char *)&cs->u + a->field);
    (*counter)++;
    uint64_t *old = a->from ? (uint64_t *)((char *)&cs->u + a->from) : NULL;
    if (old && *old)
        (*old)--;
    cs->u.cpu_ms += (uint64_t)(a->cpu_ms > 0 ? a->cpu_ms : 0);
    cs->u.wall_ms += (uint64_t)(a->wall_ms > 0 ? a->wall_ms : 0);
    return store(cs);
}

int state_count(struct client_state *cs, size_t field, long cpu_ms, long wall_ms)
{
    if (cs->fd < 0 || field + sizeof(uint64_t) > sizeof(struct usage) ||
        field < offsetof(struct usage, requests)) {
        errno = EINVAL;
        return -1;
    }
    struct count_args a = { field, cpu_ms, wall_ms, 0 };
    return locked_update(cs, count_step, &a);
}

int state_move(struct client_state *cs, size_t from, size_t to)
{
    if (cs->fd < 0 || from + sizeof(uint64_t) > sizeof(struct usage) ||
        from < offsetof(struct usage, requests) || to + sizeof(uint64_t) > sizeof(struct usage) ||
        to < offsetof(struct usage, requests)) {
        errno = EINVAL;
        return -1;
    }
    struct count_args a = { to, 0, 0, from };
    return locked_update(cs, count_step, &a);
}

void state_close_client(struct client_state *cs)
{
    if (cs->fd >= 0)
        close(cs->fd);
    cs->fd = -1;
}

int state_read_usage(const char *dir, const char *id, struct usage *u)
{
    char path[PATH_MAX];
    if (client_path(path, sizeof(path), dir, id) < 0) {
        errno = ENAMETOOLONG;
        return -1;
    }
    struct client_state cs = { .fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW) };
    if (cs.fd < 0)
        return -1;
    int rc = ofd_lock(cs.fd, F_RDLCK, 0, (off_t)USAGE_V1_SIZE, 1) == 0 ? load(&cs) : -1;
    *u = cs.u;
    close(cs.fd);
    return rc;
}

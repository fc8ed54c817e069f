/* loadgen: the load generator of scripts/bench (compiled on the fly).
 *
 *   loadgen HOST PORT CONCURRENCY REQUESTS REQUEST_FILE EXPECT_STATUS [EXPECT_SUBSTRING]
 *
 * Sends the bytes of REQUEST_FILE, as is, on REQUESTS fresh TCP connections,
 * CONCURRENCY of them in flight at any time (one blocking thread each).  The
 * latency of a request runs from before connect() to the moment its response
 * is complete: the head plus Content-Length bytes of body (or EOF when there
 * is no Content-Length).  A process that answers and then takes its time to
 * exit is not charged for it, whichever server it is.
 *
 * Output (stdout): one line per request, "latency_us status ok" (ok is 1 when
 * the status is EXPECT_STATUS and the response contains EXPECT_SUBSTRING, if
 * given), then "wall_us N" for the whole run.  Why not ab: its per-request
 * times (-g) have 1 ms resolution, which is the whole cost of a rejected
 * request, and it does not tell a 401 from a 503. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define RESP_MAX 65536

static struct sockaddr_in addr;
static char *req;
static size_t req_len;
static int expect_status;
static const char *expect_sub;
static long total;
static atomic_long next_index;
static long *lat_us;
static int *status_of;
static char *ok_of;

static long now_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000000L + t.tv_nsec / 1000;
}

/* Response complete?  Head ended and Content-Length bytes of body arrived. */
static int complete(const char *buf, size_t n)
{
    const char *end = memmem(buf, n, "\r\n\r\n", 4);
    if (!end)
        return 0;
    size_t head = (size_t)(end - buf) + 4;
    for (const char *p = buf; p < end; p++) {
        if ((p == buf || p[-1] == '\n') && strncasecmp(p, "Content-Length:", 15) == 0) {
            long cl = strtol(p + 15, NULL, 10);
            return cl >= 0 && n >= head + (size_t)cl;
        }
    }
    return 0;   /* no Content-Length: the response ends at EOF */
}

static void one(long i, char *buf)
{
    long t0 = now_us();
    int status = 0, ok = 0;
    size_t n = 0;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct timeval tmo = { .tv_sec = 30 };
    if (fd < 0)
        goto out;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tmo, sizeof(tmo));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tmo, sizeof(tmo));
    if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0)
        goto out;
    for (size_t off = 0; off < req_len;) {
        ssize_t w = write(fd, req + off, req_len - off);
        if (w <= 0) {
            if (w < 0 && errno == EINTR)
                continue;
            break;   /* the server may answer early (e.g. 401) and close */
        }
        off += (size_t)w;
    }
    while (n < RESP_MAX - 1) {
        ssize_t r = read(fd, buf + n, RESP_MAX - 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        n += (size_t)r;
        if (complete(buf, n))
            break;
    }
out:;
    long t1 = now_us();
    if (fd >= 0)
        close(fd);
    buf[n] = '\0';
    if (n > 12 && strncmp(buf, "HTTP/1.", 7) == 0)
        status = atoi(buf + 9);
    ok = status == expect_status && (!expect_sub || strstr(buf, expect_sub));
    lat_us[i] = t1 - t0;
    status_of[i] = status;
    ok_of[i] = (char)ok;
}

static void *worker(void *arg)
{
    (void)arg;
    char *buf = malloc(RESP_MAX);
    if (!buf)
        return NULL;
    for (;;) {
        long i = atomic_fetch_add(&next_index, 1);
        if (i >= total)
            break;
        one(i, buf);
    }
    free(buf);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 7 || argc > 8) {
        fprintf(stderr, "usage: loadgen HOST PORT CONCURRENCY REQUESTS REQUEST_FILE "
                        "EXPECT_STATUS [EXPECT_SUBSTRING]\n");
        return 2;
    }
    addr.sin_family = AF_INET;
    addr.sin_port = htons((unsigned short)atoi(argv[2]));
    if (inet_pton(AF_INET, argv[1], &addr.sin_addr) != 1) {
        fprintf(stderr, "loadgen: bad address %s\n", argv[1]);
        return 2;
    }
    int conc = atoi(argv[3]);
    total = atol(argv[4]);
    expect_status = atoi(argv[6]);
    expect_sub = argc == 8 ? argv[7] : NULL;
    if (conc < 1 || conc > 256 || total < 1) {
        fprintf(stderr, "loadgen: bad concurrency or request count\n");
        return 2;
    }
    FILE *f = fopen(argv[5], "rb");
    if (!f) {
        perror(argv[5]);
        return 2;
    }
    req = malloc(RESP_MAX);
    req_len = fread(req, 1, RESP_MAX, f);
    fclose(f);
    lat_us = calloc((size_t)total, sizeof(*lat_us));
    status_of = calloc((size_t)total, sizeof(*status_of));
    ok_of = calloc((size_t)total, 1);
    pthread_t th[256];
    long t0 = now_us();
    for (int i = 0; i < conc; i++)
        if (pthread_create(&th[i], NULL, worker, NULL) != 0) {
            fprintf(stderr, "loadgen: pthread_create failed\n");
            return 1;
        }
    for (int i = 0; i < conc; i++)
        pthread_join(th[i], NULL);
    long wall = now_us() - t0;
    for (long i = 0; i < total; i++)
        printf("%ld %d %d\n", lat_us[i], status_of[i], ok_of[i]);
    printf("wall_us %ld\n", wall);
    return 0;
}

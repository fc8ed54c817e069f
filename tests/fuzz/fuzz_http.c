/* libFuzzer harness: the HTTP request reader (src/http.c).
 *
 * Input: one control byte, then what the client sends on the connection.
 * The bytes are written into one end of a fresh socketpair, whose write side
 * is then shut down (the client stops sending), and http_read_head() +
 * http_read_body() read them from the other end exactly as src/main.c does
 * for fd 0, with the test environment's 1 MiB body limit.
 *
 * The control byte says how the bytes arrive: 0 = as the kernel has them (all
 * at once), N = at most N bytes per read().  The harness is linked with
 * -Wl,--wrap=read, so the reader's read() calls come to __wrap_read() below,
 * which caps them: a head or a "\r\n\r\n" split across reads is reached
 * deterministically, with no writer thread.
 *
 * Checked beyond the sanitizers: every failure has a 4xx/5xx status and a
 * type, and is never a 408 before the deadline (the whole input is there,
 * then EOF); the head ends exactly after the first blank line in the first
 * HEAD_MAX bytes (found here independently), else the request fails with 431
 * or 400; a success leaves a method, target, path and version; the body,
 * when read, has the announced length, is NUL-terminated and is exactly the
 * input's bytes after the head; and reading in capped pieces gives the same
 * verdict, message, head and body as reading all at once. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "http.h"
#include "request.h"

#define INPUT_MAX  (64 * 1024)        /* fits one socket buffer: no writer thread */
#define BODY_LIMIT (1L << 20)         /* the default body_bytes of both envs */

static struct request req;            /* large (HEAD_MAX and more): static, as in main.c */
static int conn_fd = -1;              /* the reader's end while a test runs */
static size_t read_cap;               /* 0: no cap */

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "check failed: %s (%s:%d)\n", \
                                          #c, __FILE__, __LINE__); __builtin_trap(); } } while (0)

ssize_t __real_read(int fd, void *buf, size_t len);

/* Every read() of the program comes here (libFuzzer's own too): only the
 * connection's are capped. */
ssize_t __wrap_read(int fd, void *buf, size_t len)
{
    if (fd == conn_fd && read_cap && len > read_cap)
        len = read_cap;
    return __real_read(fd, buf, len);
}

static int feed(const uint8_t *data, size_t size)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
        perror("socketpair");
        abort();
    }
    int buf = 2 * INPUT_MAX;
    (void)setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf));
    (void)setsockopt(sv[0], SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
    size_t off = 0;
    while (off < size) {
        ssize_t w = write(sv[1], data + off, size - off);
        if (w <= 0) {
            perror("write to socketpair");
            abort();
        }
        off += (size_t)w;
    }
    shutdown(sv[1], SHUT_WR);
    close(sv[1]);
    return sv[0];
}

/* End of the header block in the first HEAD_MAX bytes, found independently
 * of http.c: just after the first "\n\n" or "\n\r\n"; 0 when there is none. */
static size_t expected_head_end(const uint8_t *d, size_t n)
{
    if (n > HEAD_MAX)
        n = HEAD_MAX;
    for (size_t i = 0; i + 1 < n; i++) {
        if (d[i] != '\n')
            continue;
        if (d[i + 1] == '\n')
            return i + 2;
        if (i + 2 < n && d[i + 1] == '\r' && d[i + 2] == '\n')
            return i + 3;
    }
    return 0;
}

/* What one reading of the request came to, for comparing two of them. */
struct result {
    int head_rc, body_rc;      /* body_rc 1 when not tried */
    int status;
    char message[sizeof(((struct failure *)0)->message)];
    size_t head_len;
    long content_length;
    char *body;                /* owned */
    size_t body_len;
};

static void read_request(const uint8_t *data, size_t size, size_t cap, struct result *res)
{
    int fd = feed(data, size);
    conn_fd = fd;
    read_cap = cap;

    memset(&req, 0, sizeof(req));
    clock_gettime(CLOCK_MONOTONIC, &req.started);
    request_mark(&req, MARK_START);
    req.deadline_ms = 1000;
    req.env = -1;
    req.content_length = -1;
    req.usage.fd = req.global_slot = req.client_slot = -1;

    memset(res, 0, sizeof(*res));
    res->body_rc = 1;
    res->head_rc = http_read_head(&req, fd);
    size_t want_end = expected_head_end(data, size);
    if (res->head_rc == 0) {
        CHECK(req.fail.status == 0);
        CHECK(req.method && req.path && req.version);
        CHECK(req.head_len > 0 && req.head_len <= req.head_read && req.head_read <= HEAD_MAX);
        CHECK(req.header_count <= HEADERS_MAX);
        CHECK(req.path[0] == '/');
        CHECK(strcmp(req.version, "HTTP/1.1") == 0 || strcmp(req.version, "HTTP/1.0") == 0);
        CHECK(req.content_length >= -1);
        for (size_t i = 0; i < req.header_count; i++)
            CHECK(req.headers[i].name[0] && req.headers[i].value);
        /* What main.c would look at next. */
        (void)request_header(&req, "Content-Type");
        (void)request_header(&req, "X-Request-Id");
        res->body_rc = http_read_body(&req, fd, BODY_LIMIT);
        if (res->body_rc == 0) {
            CHECK(req.body && (long)req.body_len == req.content_length);
            CHECK(req.body[req.body_len] == '\0');
            /* Every body byte came from the input, after the head. */
            CHECK(req.head_len + req.body_len <= size);
            CHECK(memcmp(req.body, data + req.head_len, req.body_len) == 0);
        } else {
            CHECK(req.fail.status >= 400 && req.fail.type);
        }
    } else {
        CHECK(req.fail.status >= 400 && req.fail.status <= 599 && req.fail.type);
        /* The whole input is there, then EOF: a timeout before the deadline
         * would be a reader that waits for nothing. */
        CHECK(req.fail.status != 408 || request_elapsed_ms(&req) >= req.deadline_ms);
        if (!want_end)
            CHECK(req.fail.status == (size >= HEAD_MAX ? 431 : 400) || req.fail.status == 408);
    }
    /* The head ends exactly where it does, however the reads split it. */
    if (req.fail.status != 408)
        CHECK(req.head_len == want_end);
    CHECK(req.bytes_in <= size);

    res->status = req.fail.status;
    memcpy(res->message, req.fail.message, sizeof(res->message));
    res->head_len = req.head_len;
    res->content_length = req.content_length;
    res->body = req.body;
    res->body_len = req.body_len;
    req.body = NULL;
    conn_fd = -1;
    close(fd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > INPUT_MAX + 1)
        return -1;   /* not added to the corpus */
    size_t cap = data[0];
    data++;
    size--;

    struct result split, whole;
    read_request(data, size, cap, &split);
    if (cap) {
        /* The same bytes all at once must be read the same way. */
        read_request(data, size, 0, &whole);
        if (split.status != 408 && whole.status != 408) {
            CHECK(split.head_rc == whole.head_rc && split.body_rc == whole.body_rc);
            CHECK(split.status == whole.status);
            CHECK(strcmp(split.message, whole.message) == 0);
            CHECK(split.head_len == whole.head_len);
            CHECK(split.content_length == whole.content_length);
            CHECK(split.body_len == whole.body_len);
            CHECK(!split.body == !whole.body);
            CHECK(!split.body || memcmp(split.body, whole.body, split.body_len) == 0);
        }
        free(whole.body);
    }
    free(split.body);
    return 0;
}

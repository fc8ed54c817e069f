/* HTTP/1.x request reader.  Strict where leniency enables request smuggling
 * (Content-Length, Transfer-Encoding, folding), bounded everywhere else. */
#include "http.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define LINGER_MS     1000
#define LINGER_BYTES  (1 << 20)

/* Wait until fd is readable or the request deadline passes; 1, 0 (timeout), -1. */
static int wait_readable(struct request *req, int fd)
{
    for (;;) {
        long left = req->deadline_ms - request_elapsed_ms(req);
        if (left <= 0)
            return 0;
        struct pollfd p = { .fd = fd, .events = POLLIN };
        int n = poll(&p, 1, (int)left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0)
            return 0;
        return 1;
    }
}

/* read() at most len bytes before the deadline: >0 bytes, 0 EOF, -1 failure set. */
static ssize_t read_some(struct request *req, int fd, char *buf, size_t len)
{
    for (;;) {
        int w = wait_readable(req, fd);
        if (w == 0)
            return fail(req, 408, "RequestTimeout",
                        "request not received within %ld ms", req->deadline_ms);
        if (w < 0)
            return fail(req, 400, "BadRequest", "connection error: %s", strerror(errno));
        ssize_t r = read(fd, buf, len);
        if (r < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (r < 0)
            return fail(req, 400, "BadRequest", "connection error: %s", strerror(errno));
        req->bytes_in += (size_t)r;
        return r;
    }
}

/* End of the header block ("\r\n\r\n", or bare "\n\n"), or 0 when not yet seen. */
static size_t find_head_end(const char *buf, size_t len)
{
    for (size_t i = 0; i + 1 < len; i++) {
        if (buf[i] != '\n')
            continue;
        if (buf[i + 1] == '\n')
            return i + 2;
        if (buf[i + 1] == '\r' && i + 2 < len && buf[i + 2] == '\n')
            return i + 3;
    }
    return 0;
}

static bool is_tchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* Next line in [*p, end): NUL-terminated in place, CR stripped. */
static char *next_line(char **p, char *end)
{
    char *s = *p;
    char *nl = memchr(s, '\n', (size_t)(end - s));
    if (!nl)
        return NULL;
    *nl = '\0';
    if (nl > s && nl[-1] == '\r')
        nl[-1] = '\0';
    *p = nl + 1;
    return s;
}

static int parse_request_line(struct request *req, char *line)
{
    char *sp1 = strchr(line, ' ');
    if (!sp1 || sp1 == line)
        return fail(req, 400, "BadRequest", "malformed request line");
    *sp1 = '\0';
    for (char *c = line; *c; c++)
        if (!is_tchar((unsigned char)*c))
            return fail(req, 400, "BadRequest", "malformed method");
    char *target = sp1 + 1;
    char *sp2 = strchr(target, ' ');
    if (!sp2)
        return fail(req, 400, "BadRequest", "missing HTTP version (HTTP/0.9 is not supported)");
    *sp2 = '\0';
    char *version = sp2 + 1;
    if (strncmp(version, "HTTP/", 5) != 0 || strchr(version, ' '))
        return fail(req, 400, "BadRequest", "malformed HTTP version");
    if (strcmp(version, "HTTP/1.1") != 0 && strcmp(version, "HTTP/1.0") != 0)
        return fail(req, 505, "HTTPVersionNotSupported", "only HTTP/1.0 and HTTP/1.1 are supported");
    if (*target != '/')
        return fail(req, 400, "BadRequest", "request target must be a path starting with /");
    for (char *c = target; *c; c++)
        if ((unsigned char)*c <= ' ' || (unsigned char)*c >= 0x7f)
            return fail(req, 400, "BadRequest", "invalid character in request target");
    req->method = line;
    req->version = version;
    /* Route on the path alone: the query string is cut off in place. */
    target[strcspn(target, "?#")] = '\0';
    req->path = target;
    return 0;
}

static int parse_header(struct request *req, char *line)
{
    if (*line == ' ' || *line == '\t')
        return fail(req, 400, "BadRequest", "obsolete header line folding is not accepted");
    char *colon = strchr(line, ':');
    if (!colon || colon == line)
        return fail(req, 400, "BadRequest", "header line without a name and colon");
    for (char *c = line; c < colon; c++)
        if (!is_tchar((unsigned char)*c))
            return fail(req, 400, "BadRequest", "invalid character in header name");
    if (req->header_count == HEADERS_MAX)
        return fail(req, 431, "HeadersTooLarge", "more than %d headers", HEADERS_MAX);
    *colon = '\0';
    char *v = colon + 1;
    while (*v == ' ' || *v == '\t')
        v++;
    char *e = v + strlen(v);
    while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
        *--e = '\0';
    for (char *c = v; *c; c++)
        if (((unsigned char)*c < ' ' && *c != '\t') || *c == 0x7f)
            return fail(req, 400, "BadRequest", "control character in header %s", line);
    req->headers[req->header_count].name = line;
    req->headers[req->header_count].value = v;
    req->header_count++;
    return 0;
}

/* Content-Length: only digits, at most one, no overflow. */
static int parse_content_length(struct request *req)
{
    const char *cl = NULL;
    for (size_t i = 0; i < req->header_count; i++) {
        if (strcasecmp(req->headers[i].name, "Content-Length") != 0)
            continue;
        if (cl)
            return fail(req, 400, "BadRequest", "duplicate Content-Length header");
        cl = req->headers[i].value;
    }
    req->content_length = -1;
    if (!cl)
        return 0;
    size_t n = strlen(cl);
    if (n == 0 || n > 15 || strspn(cl, "0123456789") != n)
        return fail(req, 400, "BadRequest", "Content-Length must be a decimal number");
    req->content_length = strtol(cl, NULL, 10);
    return 0;
}

static int check_framing(struct request *req)
{
    if (parse_content_length(req) < 0)
        return -1;
    if (request_header(req, "Transfer-Encoding")) {
        if (req->content_length >= 0)
            return fail(req, 400, "BadRequest",
                        "both Content-Length and Transfer-Encoding sent");
        return fail(req, 501, "NotImplemented",
                    "Transfer-Encoding is not supported; send Content-Length");
    }
    if (strcmp(req->version, "HTTP/1.1") == 0 && !request_header(req, "Host"))
        return fail(req, 400, "BadRequest", "HTTP/1.1 request without Host header");
    return 0;
}

static size_t count_header(const struct request *req, const char *name)
{
    size_t n = 0;
    for (size_t i = 0; i < req->header_count; i++)
        n += strcasecmp(req->headers[i].name, name) == 0;
    return n;
}

/* Expect: only 100-continue is understood (RFC 9110 10.1.1); the 100 is
 * sent later, once the request is admitted, so a refused body is never sent. */
static int check_expect(struct request *req)
{
    const char *e = request_header(req, "Expect");
    if (!e)
        return 0;
    if (count_header(req, "Expect") > 1 || strcasecmp(e, "100-continue") != 0)
        return fail(req, 417, "ExpectationFailed", "only \"Expect: 100-continue\" is understood");
    req->expect_continue = strcmp(req->version, "HTTP/1.1") == 0;
    return 0;
}

static int parse_head(struct request *req)
{
    char *p = req->head, *end = req->head + req->head_len;
    if (memchr(p, '\0', req->head_len))
        return fail(req, 400, "BadRequest", "NUL byte in request head");
    char *line = next_line(&p, end);
    if (!line || parse_request_line(req, line) < 0)
        return req->fail.status ? -1 : fail(req, 400, "BadRequest", "malformed request line");
    while ((line = next_line(&p, end)) && *line)
        if (parse_header(req, line) < 0)
            return -1;
    req->api_key = request_header(req, "X-API-Key");
    if (count_header(req, "X-API-Key") > 1)
        return fail(req, 400, "BadRequest", "more than one X-API-Key header");
    if (count_header(req, "Authorization") > 1)
        return fail(req, 400, "BadRequest", "more than one Authorization header");
    if (count_header(req, "Host") > 1)
        return fail(req, 400, "BadRequest", "more than one Host header");
    if (check_expect(req) < 0)
        return -1;
    return check_framing(req);
}

int http_read_head(struct request *req, int fd)
{
    int flags = fcntl(fd, F_GETFL);
    if (flags >= 0)
        (void)fcntl(fd, F_SETFL, flags | O_NONBLOCK);
    while (!req->head_len) {
        if (req->head_read == HEAD_MAX)
            return fail(req, 431, "HeadersTooLarge",
                        "request line and headers exceed %d bytes", HEAD_MAX);
        ssize_t r = read_some(req, fd, req->head + req->head_read, HEAD_MAX - req->head_read);
        if (r < 0)
            return -1;
        if (r == 0)
            return fail(req, 400, "BadRequest", req->head_read ?
                        "connection closed inside the request head" : "empty request");
        size_t from = req->head_read > 3 ? req->head_read - 3 : 0;
        req->head_read += (size_t)r;
        size_t e = find_head_end(req->head + from, req->head_read - from);
        if (e)
            req->head_len = from + e;
    }
    req->head[req->head_read] = '\0';
    return parse_head(req);
}

static int check_length(struct request *req, long max_bytes)
{
    if (req->content_length < 0)
        return fail(req, 411, "LengthRequired", "POST requires a Content-Length header");
    if (req->content_length > max_bytes)
        return fail(req, 413, "PayloadTooLarge",
                    "body of %ld bytes exceeds the limit of %ld bytes",
                    req->content_length, max_bytes);
    return 0;
}

int http_continue(struct request *req, int out_fd, long max_bytes)
{
    if (!req->expect_continue)
        return 0;
    if (check_length(req, max_bytes) < 0)
        return -1;
    req->expect_continue = false;
    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
    size_t off = 0;
    while (off < sizeof(cont) - 1) {
        ssize_t w = write(out_fd, cont + off, sizeof(cont) - 1 - off);
        if (w < 0 && (errno == EINTR || errno == EAGAIN))
            continue;   /* 25 bytes on a fresh socket: EAGAIN is not expected */
        if (w <= 0)
            return fail(req, 400, "BadRequest", "connection lost sending 100 Continue");
        off += (size_t)w;
    }
    req->bytes_out += off;
    return 0;
}

int http_read_body(struct request *req, int fd, long max_bytes)
{
    if (check_length(req, max_bytes) < 0)
        return -1;
    size_t want = (size_t)req->content_length;
    req->body = malloc(want + 1);
    if (!req->body)
        return fail(req, 503, "ServiceUnavailable", "out of memory for the request body");
    size_t have = req->head_read - req->head_len;
    if (have > want)
        have = want;   /* bytes past the body (pipelining) are ignored */
    memcpy(req->body, req->head + req->head_len, have);
    while (have < want) {
        ssize_t r = read_some(req, fd, req->body + have, want - have);
        if (r < 0)
            return -1;
        if (r == 0)
            return fail(req, 400, "BadRequest",
                        "body ended after %zu of %zu bytes announced by Content-Length",
                        have, want);
        have += (size_t)r;
    }
    req->body[want] = '\0';
    req->body_len = want;
    return 0;
}

void http_linger(int fd)
{
    if (shutdown(fd, SHUT_WR) < 0)
        return;   /* not a socket (pipe in tests) or already gone */
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    char buf[4096];
    size_t drained = 0;
    while (drained < LINGER_BYTES) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        long spent = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
        if (spent >= LINGER_MS)
            return;
        struct pollfd p = { .fd = fd, .events = POLLIN };
        if (poll(&p, 1, (int)(LINGER_MS - spent)) <= 0)
            return;
        ssize_t r = read(fd, buf, sizeof(buf));
        if (r <= 0 && !(r < 0 && (errno == EINTR || errno == EAGAIN)))
            return;
        if (r > 0)
            drained += (size_t)r;
    }
}

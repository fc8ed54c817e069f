#include "log.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "layers.h"

/* Values we log are ours or were validated (request id); quote when needed. */
static void put_value(char *buf, size_t len, const char *v)
{
    if (v && *v && !strpbrk(v, " \"=\\"))
        snprintf(buf, len, "%s", v);
    else
        snprintf(buf, len, "\"%s\"", v ? v : "");
}

/* The client's address on fd 0: 192.0.2.1:54321, [2001:db8::1]:54321 (an
 * IPv4-mapped IPv6 address as IPv4), or - when it is no IP socket. */
static void peer_address(char *buf, size_t len)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    socklen_t sl = sizeof(ss);
    char ip[INET6_ADDRSTRLEN];
    snprintf(buf, len, "-");
    if (getpeername(0, (struct sockaddr *)&ss, &sl) < 0)
        return;
    if (ss.ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)&ss;
        if (inet_ntop(AF_INET, &a->sin_addr, ip, sizeof(ip)))
            snprintf(buf, len, "%s:%u", ip, ntohs(a->sin_port));
    } else if (ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&ss;
        int mapped = IN6_IS_ADDR_V4MAPPED(&a->sin6_addr);
        if (mapped && inet_ntop(AF_INET, &a->sin6_addr.s6_addr[12], ip, sizeof(ip)))
            snprintf(buf, len, "%s:%u", ip, ntohs(a->sin6_port));
        else if (!mapped && inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof(ip)))
            snprintf(buf, len, "[%s]:%u", ip, ntohs(a->sin6_port));
    }
}

/* The sd-daemon priority prefix of a request line: <3> for a fault of the
 * service, <4> for a client that left or hit a limit, <6> otherwise. */
static const char *request_priority(int status, const char *kind)
{
    if (status >= 500 || (kind && strcmp(kind, "crash") == 0))
        return "<3>";
    if (status == 429 || (kind && strcmp(kind, "client_gone") == 0))
        return "<4>";
    return "<6>";
}

/* Per-stage durations in microseconds, for finding where the time goes. */
static void stage_times(const struct request *req, char *buf, size_t len)
{
    const long *m = req->mark_us, *w = req->stage_us;
    long fork_at = m[MARK_PARSED];
#define SPAN(a, b) ((a) && (b) && (b) >= (a) ? (b) - (a) : 0)
    snprintf(buf, len,
             "head:%ld,auth:%ld,body:%ld,parse:%ld,fork:%ld,sandbox:%ld,exec:%ld,pyinit:%ld,"
             "import:%ld,lockdown:%ld,compile:%ld,run:%ld,serialise:%ld,exit:%ld,reply:%ld",
             SPAN(m[MARK_START], m[MARK_HEAD]), SPAN(m[MARK_HEAD], m[MARK_AUTH]),
             SPAN(m[MARK_AUTH], m[MARK_BODY]), SPAN(m[MARK_BODY], m[MARK_PARSED]),
             SPAN(fork_at, w[STAGE_FORKED]), SPAN(w[STAGE_FORKED], w[STAGE_SANDBOXED]),
             SPAN(w[STAGE_SANDBOXED], w[STAGE_EXECED]), SPAN(w[STAGE_EXECED], w[STAGE_PY_STARTED]),
             SPAN(w[STAGE_PY_STARTED], w[STAGE_POLICY_IMPORTED]),
             SPAN(w[STAGE_POLICY_IMPORTED], w[STAGE_LOCKED]),
             SPAN(w[STAGE_LOCKED], w[STAGE_COMPILED]), SPAN(w[STAGE_COMPILED], w[STAGE_RAN]),
             SPAN(w[STAGE_RAN], w[STAGE_SERIALISED]), SPAN(w[STAGE_SERIALISED], m[MARK_WAITED]),
             SPAN(m[MARK_WAITED], m[MARK_REPLIED]));
#undef SPAN
}

void log_request(const struct request *req, int status)
{
    char ts[32], client[80], outcome[80], path[96], stages[400], layers[160] = "-";
    char peer[INET6_ADDRSTRLEN + 16];
    struct timespec now;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
    put_value(client, sizeof(client), req->client_id[0] ? req->client_id : "-");
    const char *kind = req->fail.status ? req->fail.type : req->out.kind;
    if (req->out.kind && strcmp(req->out.kind, "client_gone") == 0)
        kind = req->out.kind;   /* whatever the answer was, it was not delivered */
    put_value(outcome, sizeof(outcome), kind ? kind : "ok");
    snprintf(path, sizeof(path), "%.80s", req->path ? req->path : "-");
    stage_times(req, stages, sizeof(stages));
    if (req->out.sandboxed)
        layers_format(req->out.layers_missing, layers, sizeof(layers));
    peer_address(peer, sizeof(peer));
    fprintf(stderr,
            "%spyexec: request_id=%s time=%s peer=%s client=%s env=%s method=%s path=%s status=%d "
            "outcome=%s error_type=%s wall_ms=%ld cpu_ms=%ld max_rss_kib=%ld "
            "total_ms=%ld bytes_in=%zu bytes_out=%zu stages_us=%s layers=%s\n",
            request_priority(status, kind), req->request_id, ts, peer, client,
            req->env >= 0 ? config_env_name(req->env) : "-",
            req->method ? req->method : "-", path, status, outcome,
            req->out.ran && !req->out.success ? req->out.err_type : "-",
            req->out.wall_ms, req->out.cpu_ms, req->out.max_rss_kib,
            request_elapsed_ms(req), req->bytes_in, req->bytes_out, stages, layers);
}

/* One line per error, whatever the message holds (a path from the
 * environment, text from a worker): control characters become '?', so no
 * message can forge a log line of its own. */
static void log_v(const char *prefix, const char *fmt, va_list ap)
{
    char msg[2048];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    for (char *c = msg; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            *c = '?';
    fprintf(stderr, "%spyexec: error: %s\n", prefix, msg);
}

void log_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_v("<3>", fmt, ap);
    va_end(ap);
}

void log_prio(int prio, const char *fmt, ...)
{
    char prefix[8];
    snprintf(prefix, sizeof(prefix), "<%d>", prio & 7);
    va_list ap;
    va_start(ap, fmt);
    log_v(prefix, fmt, ap);
    va_end(ap);
}

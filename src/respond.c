/* Responses: always JSON, always Connection: close, always X-Request-Id. */
#include "respond.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cJSON.h>

#include "jsonext.h"
#include "layers.h"

#define WRITE_TIMEOUT_MS 10000

static const char *reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 415: return "Unsupported Media Type";
    case 417: return "Expectation Failed";
    case 422: return "Unprocessable Content";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default:  return "Error";
    }
}

/* Write all of iov[0..n) with as few system calls (and TCP segments) as the
 * socket allows, waiting for a slow reader at most WRITE_TIMEOUT_MS in all. */
static int write_all(int fd, struct iovec *iov, int n, size_t *sent)
{
    int waited = 0;
    while (n > 0) {
        ssize_t w = writev(fd, iov, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno == EAGAIN && waited < WRITE_TIMEOUT_MS) {
            struct pollfd p = { .fd = fd, .events = POLLOUT };
            if (poll(&p, 1, 100) < 0 && errno != EINTR)
                return -1;
            waited += 100;
            continue;
        }
        if (w <= 0)
            return -1;
        *sent += (size_t)w;
        while (n > 0 && (size_t)w >= iov->iov_len) {   /* drop what was written */
            w -= (ssize_t)iov->iov_len;
            iov++;
            n--;
        }
        if (n > 0) {
            iov->iov_base = (char *)iov->iov_base + w;
            iov->iov_len -= (size_t)w;
        }
    }
    return 0;
}

static int send_response(struct request *req, int fd, int status, const char *body,
                         const char *content_type)
{
    char head[1024], retry[48] = "";
    size_t blen = strlen(body);
    if (req->retry_after > 0 && (status == 429 || status == 503))
        snprintf(retry, sizeof(retry), "Retry-After: %ld\r\n", req->retry_after);
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d %s\r\n"
                     "Content-Type: %s\r\n"
                     "Content-Length: %zu\r\n"
                     "Connection: close\r\n"
                     "Cache-Control: no-store\r\n"
                     "X-Content-Type-Options: nosniff\r\n"
                     "X-Request-Id: %s\r\n"
                     "%s%s%s%s%s"
                     "\r\n",
                     status, reason(status), content_type, blen + 1, req->request_id,
                     req->rate_headers, retry,
                     req->fail.allow ? "Allow: " : "",
                     req->fail.allow ? req->fail.allow : "",
                     req->fail.allow ? "\r\n" : "");
    if (n < 0 || (size_t)n >= sizeof(head))
        return -1;
    struct iovec iov[3] = {
        { head, (size_t)n }, { (void *)body, blen }, { (void *)"\n", 1 },
    };
    /* HEAD: the same head, Content-Length of the body it would get, no body. */
    bool head_only = req->method && strcmp(req->method, "HEAD") == 0;
    return write_all(fd, iov, head_only ? 1 : 3, &req->bytes_out);
}

static cJSON *error_object(const char *type, const char *message, size_t len, int line)
{
    cJSON *e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "type", type);
    cJSON_AddItemToObject(e, "message", jsonext_string(message, len));
    if (line > 0)
        cJSON_AddNumberToObject(e, "line", line);
    return e;
}

static void add_stats(cJSON *root, const struct outcome *o)
{
    cJSON *s = cJSON_AddObjectToObject(root, "stats");
    cJSON_AddNumberToObject(s, "wall_ms", (double)o->wall_ms);
    cJSON_AddNumberToObject(s, "cpu_ms", (double)o->cpu_ms);
    cJSON_AddNumberToObject(s, "max_rss_kib", (double)o->max_rss_kib);
}

/* {"missing": ["landlock", ...]}: the layers the sandbox ran without. */
static cJSON *sandbox_member(unsigned missing)
{
    cJSON *sb = cJSON_CreateObject();
    cJSON *list = cJSON_AddArrayToObject(sb, "missing");
    for (int i = 0; i < LAYER_COUNT; i++)
        if (missing & LAYER_BIT(i))
            cJSON_AddItemToArray(list, cJSON_CreateString(layer_name(i)));
    return sb;
}

static cJSON *outcome_body(const struct outcome *o)
{
    cJSON *root = cJSON_CreateObject();
    cJSON_AddBoolToObject(root, "success", o->success);
    if (o->success) {
        cJSON_AddItemToObject(root, "result", cJSON_CreateRaw(o->result_json ? o->result_json : "null"));
    } else {
        cJSON *e = error_object(o->err_type, o->err_message, o->err_message_len, o->err_line);
        if (o->err_message_truncated)   /* cut, as output_truncated marks output */
            cJSON_AddBoolToObject(e, "message_truncated", true);
        cJSON_AddItemToObject(root, "error", e);
    }
    cJSON_AddItemToObject(root, "output", jsonext_string(o->output ? o->output : "", o->output_len));
    cJSON_AddBoolToObject(root, "output_truncated", o->output_truncated);
    add_stats(root, o);
    if (o->layers_missing)
        cJSON_AddItemToObject(root, "sandbox", sandbox_member(o->layers_missing));
    return root;
}

static int outcome_status(const struct outcome *o)
{
    return strcmp(o->err_type, "InternalError") == 0 && !o->success ? 500 : 200;
}

int respond(struct request *req, int fd)
{
    int status;
    cJSON *root;
    if (req->fail.status) {
        status = req->fail.status;
        root = cJSON_CreateObject();
        cJSON_AddBoolToObject(root, "success", false);
        cJSON_AddItemToObject(root, "error", error_object(req->fail.type, req->fail.message,
                                                          strlen(req->fail.message), 0));
    } else {
        status = outcome_status(&req->out);
        root = outcome_body(&req->out);
    }
    char *body = root ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    if (!body) {
        status = 500;
        body = strdup("{\"success\":false,\"error\":{\"type\":\"InternalError\","
                      "\"message\":\"out of memory building the response\"}}");
        if (!body)
            return status;
    }
    if (send_response(req, fd, status, body, "application/json") < 0 &&
        (!req->out.kind || errno == EPIPE || errno == ECONNRESET))
        req->out.kind = "client_gone";
    free(body);
    return status;
}

char *respond_health_body(unsigned missing)
{
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "status", "ok");
    if (missing)
        cJSON_AddItemToObject(root, "sandbox", sandbox_member(missing));
    char *text = root ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    return text;
}

int respond_text(struct request *req, int fd, const char *text, const char *content_type)
{
    (void)send_response(req, fd, 200, text, content_type);
    return 200;
}

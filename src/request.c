#include "request.h"

#include <stdarg.h>
#include <stdio.h>
#include <strings.h>

int fail(struct request *req, int status, const char *type, const char *fmt, ...)
{
    if (req->fail.status)
        return -1;
    req->fail.status = status;
    req->fail.type = type;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(req->fail.message, sizeof(req->fail.message), fmt, ap);
    va_end(ap);
    return -1;
}

long request_elapsed_ms(const struct request *req)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (now.tv_sec - req->started.tv_sec) * 1000 +
           (now.tv_nsec - req->started.tv_nsec) / 1000000;
}

const char *request_header(const struct request *req, const char *name)
{
    for (size_t i = 0; i < req->header_count; i++)
        if (strcasecmp(req->headers[i].name, name) == 0)
            return req->headers[i].value;
    return NULL;
}

void request_mark(struct request *req, enum mark m)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    req->mark_us[m] = now.tv_sec * 1000000L + now.tv_nsec / 1000;
}

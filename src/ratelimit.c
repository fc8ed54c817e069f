#include "ratelimit.h"

#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "state.h"

static int unavailable(struct request *req, const char *what)
{
    log_error("usage state %s: %s: %s", state_dir(), what, strerror(errno));
    return fail(req, 503, "ServiceUnavailable", "usage accounting is unavailable; see the server log");
}

static int take_global_slot(struct request *req, const struct config *cfg)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/global.slots", state_dir());
    int rc = state_take_slot(path, cfg->max_concurrent, &req->global_slot);
    if (rc < 0 && errno == ENOENT && mkdir(state_dir(), 0700) == 0)
        rc = state_take_slot(path, cfg->max_concurrent, &req->global_slot);
    if (rc < 0)
        return unavailable(req, "global slots");
    if (rc == 0) {
        req->retry_after = 1;
        return fail(req, 503, "ServiceUnavailable",
                    "server busy: %ld executions running; retry shortly", cfg->max_concurrent);
    }
    return 0;
}

static int take_client_slot(struct request *req)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/clients/%s.slots", state_dir(), req->client_id);
    int rc = state_take_slot(path, req->concurrency, &req->client_slot);
    if (rc < 0)
        return unavailable(req, "client slots");
    if (rc == 0) {
        state_count(&req->usage, offsetof(struct usage, concurrency_limited), 0, 0);
        req->retry_after = 1;
        return fail(req, 429, "TooManyRequests",
                    "concurrency limit: at most %ld executions at once for this key",
                    req->concurrency);
    }
    return 0;
}

static int admit_rate(struct request *req)
{
    long remaining, reset;
    int rc = state_rate_admit(&req->usage, req->rate_limit, req->rate_window_s, &remaining, &reset);
    if (rc < 0)
        return unavailable(req, "rate window");
    snprintf(req->rate_headers, sizeof(req->rate_headers),
             "RateLimit-Limit: %ld\r\nRateLimit-Remaining: %ld\r\nRateLimit-Reset: %ld\r\n"
             "RateLimit-Policy: %ld;w=%ld\r\n",
             req->rate_limit, remaining, reset, req->rate_limit, req->rate_window_s);
    if (rc == 0) {
        req->retry_after = reset > 0 ? reset : 1;
        return fail(req, 429, "TooManyRequests",
                    "rate limit: %ld requests per %ld s for this key", req->rate_limit,
                    req->rate_window_s);
    }
    return 0;
}

int ratelimit_admit(struct request *req, const struct config *cfg)
{
    if (take_global_slot(req, cfg) < 0)
        return -1;
    if (state_open_client(&req->usage, req->client_id) < 0)
        return unavailable(req, "client record");
    if (take_client_slot(req) < 0)
        return -1;
    return admit_rate(req);
}

/* Which counter an outcome goes to. */
static size_t outcome_field(const struct outcome *o)
{
    if (o->kind && strcmp(o->kind, "client_gone") == 0)
        return offsetof(struct usage, client_gone);
    if (o->success)
        return offsetof(struct usage, successes);
    if (!o->kind || strcmp(o->kind, "internal") == 0 || strcmp(o->kind, "crash") == 0)
        return offsetof(struct usage, internal_errors);
    if (strcmp(o->kind, "timeout") == 0)
        return offsetof(struct usage, timeouts);
    if (strcmp(o->kind, "memory") == 0)
        return offsetof(struct usage, memory_errors);
    if (strcmp(o->kind, "output_limit") == 0)
        return offsetof(struct usage, output_limits);
    return offsetof(struct usage, user_errors);
}

/* The counter this request's outcome went to, 0 when none (one request per
 * process), so that an undelivered answer can be moved to client_gone. */
static size_t counted;

/* Admitted past the rate window (counted in requests): every such request
 * lands in exactly one outcome counter, so they sum to requests. */
static size_t admitted_field(const struct request *req)
{
    if (req->out.ran)
        return outcome_field(&req->out);
    if (req->fail.status >= 500)
        return offsetof(struct usage, internal_errors);
    return offsetof(struct usage, refused);
}

void ratelimit_record(struct request *req)
{
    int admitted = req->usage.fd >= 0 && req->rate_headers[0] && req->fail.status != 429;
    size_t field = admitted ? admitted_field(req) : 0;
    if (field && state_count(&req->usage, field, req->out.cpu_ms, req->out.wall_ms) < 0)
        log_error("usage state %s: counting %s: %s", state_dir(), req->client_id, strerror(errno));
    else
        counted = field;
}

void ratelimit_gone(struct request *req)
{
    size_t gone = offsetof(struct usage, client_gone);
    if (counted && counted != gone && req->out.kind && strcmp(req->out.kind, "client_gone") == 0 &&
        state_move(&req->usage, counted, gone) < 0)
        log_error("usage state %s: counting %s: %s", state_dir(), req->client_id, strerror(errno));
}

void ratelimit_release(struct request *req)
{
    state_close_client(&req->usage);
    /* Slots are released by closing, and by the kernel if we die first. */
    if (req->client_slot >= 0)
        close(req->client_slot);
    if (req->global_slot >= 0)
        close(req->global_slot);
    req->client_slot = req->global_slot = -1;
}

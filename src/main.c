/* pyexec: serve one HTTP request on fd 0/1 (inetd style, as systemd's
 * Accept=yes provides), then exit.  The whole life of a connection: */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <unistd.h>

#include "body.h"
#include "config.h"
#include "crypto.h"
#include "http.h"
#include "keys.h"
#include "layers.h"
#include "log.h"
#include "metrics.h"
#include "ratelimit.h"
#include "request.h"
#include "respond.h"
#include "sandbox.h"
#include "version.h"
#include "worker.h"

#define CONN_IN  0
#define CONN_OUT 1

static struct config cfg;
static struct request req;   /* static: large, and there is exactly one */

/* Keep the client's X-Request-Id when it is sane, else make one. */
static void assign_request_id(struct request *r)
{
    const char *id = request_header(r, "X-Request-Id");
    size_t n = id ? strlen(id) : 0;
    if (n && n <= REQUEST_ID_MAX &&
        strspn(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:") == n) {
        memcpy(r->request_id, id, n + 1);
        return;
    }
    unsigned char raw[12];
    if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw))
        memset(raw, 0, sizeof(raw));
    crypto_hex(raw, sizeof(raw), r->request_id);
}

/* The key as presented: X-API-Key, or Authorization: Bearer (RFC 6750),
 * equal ways; both may be sent only if they agree.  NULL with fail set. */
static const char *presented_key(struct request *r)
{
    const char *auth = request_header(r, "Authorization");
    if (!auth)
        return r->api_key;
    if (strncasecmp(auth, "Bearer", 6) != 0 || (auth[6] != ' ' && auth[6] != '\t')) {
        fail(r, 401, "Unauthorized",
             "only the Bearer scheme of Authorization is understood (or send X-API-Key)");
        return NULL;
    }
    const char *token = auth + 6 + strspn(auth + 6, " \t");
    if (r->api_key && strcmp(r->api_key, token) != 0) {
        fail(r, 400, "BadRequest", "X-API-Key and Authorization: Bearer carry different keys");
        return NULL;
    }
    return token;
}

/* The presented key against the keys file (kept in *ring for the caller, which
 * frees it before any worker starts).  Picks the env, its limits, and the
 * key's own overrides; refuses a key without the needed scope. */
static int authenticate(struct request *r, unsigned scope, struct keyring *ring)
{
    const char *key = presented_key(r);
    if (r->fail.status)
        return -1;
    if (!key || !*key)
        return fail(r, 401, "Unauthorized", "missing, unknown or revoked API key");
    const char *why = NULL;
    const char *path = keys_path(NULL);
    enum keys_status st = keys_load(path, ring, &why);
    if (st != KEYS_OK) {
        log_error("keys file %s: %s", path, why ? why : "cannot be loaded");
        return fail(r, 503, "ServiceUnavailable", "API keys are unavailable; see the server log");
    }
    const struct key_entry *k = keys_authenticate(ring, key, strlen(key));
    int env = k ? config_env_id(k->env) : -1;
    if (!k || env < 0)
        return fail(r, 401, "Unauthorized", "missing, unknown or revoked API key");
    snprintf(r->client_id, sizeof(r->client_id), "%s", k->id);
    r->env = env;
    r->scopes = k->scopes;
    r->limits = cfg.env[env];
    r->rate_limit = k->rate_limit ? k->rate_limit : r->limits.rate_limit;
    r->rate_window_s = k->rate_limit ? k->rate_window_s : r->limits.rate_window_s;
    r->concurrency = k->concurrency ? k->concurrency : r->limits.concurrency;
    if (!(k->scopes & scope))
        return fail(r, 403, "Forbidden", "this key does not have the \"%s\" scope",
                    scope == KEY_SCOPE_ADMIN ? "admin" : "execute");
    return 0;
}

static int check_content_type(struct request *r)
{
    const char *ct = request_header(r, "Content-Type");
    if (!ct || strncasecmp(ct, "application/json", 16) == 0)
        if (!ct || ct[16] == '\0' || ct[16] == ';' || ct[16] == ' ')
            return 0;
    return fail(r, 415, "UnsupportedMediaType", "Content-Type must be application/json");
}

static void execute(struct request *r)
{
    struct keyring ring = { 0 };
    int rc = authenticate(r, KEY_SCOPE_EXECUTE, &ring);
    keys_free(&ring);   /* nothing of the keys file survives into the worker */
    if (rc < 0)
        return;
    request_mark(r, MARK_AUTH);
    if (ratelimit_admit(r, &cfg) < 0 || check_content_type(r) < 0 ||
        http_continue(r, CONN_OUT, r->limits.body_bytes) < 0 ||
        http_read_body(r, CONN_IN, r->limits.body_bytes) < 0)
        return;
    request_mark(r, MARK_BODY);
    struct exec_body b;
    struct sandbox_ids ids;
    int valid = body_parse(r, &b) == 0;
    body_free(&b);   /* validated; the worker program parses its own copy */
    if (valid) {
        request_mark(r, MARK_PARSED);
        /* The user is looked up only now: NSS costs ~0.3 ms that requests
         * refused earlier (bad key, malformed) should not pay. */
        if (sandbox_lookup_user(cfg.user, &ids) < 0) {
            log_error("worker user \"%s\" does not exist", cfg.user);
            fail(r, 503, "ServiceUnavailable", "server configuration is invalid; see the server log");
        } else {
            ids.allow_missing = cfg.allow_missing_layers;
            worker_run(r, &ids);
        }
        request_mark(r, MARK_WAITED);
    }
}

/* The sandbox's layers, taken in a short-lived child (no Python): a host
 * that cannot apply one it must is not ready. */
static int health_sandbox(struct request *r)
{
    struct sandbox_ids ids;
    struct sandbox_layers L;
    char why[300];
    if (sandbox_lookup_user(cfg.user, &ids) < 0) {
        log_error("health: worker user \"%s\" does not exist", cfg.user);
        return fail(r, 503, "ServiceUnavailable", "not ready: the worker's user does not exist");
    }
    sandbox_layers_init(&L, cfg.allow_missing_layers);
    if (sandbox_check(&ids, &cfg.env[ENV_TEST], &L, why, sizeof(why)) < 0) {
        log_error("health: %s", why);
        return fail(r, 503, "ServiceUnavailable", "not ready: the sandbox cannot be checked");
    }
    r->out.sandboxed = true;
    r->out.layers_missing = L.missing;
    if (L.failed < 0)
        return 0;
    layers_refusal(why, sizeof(why), L.failed, L.err);
    log_prio(3, "health: %s errno=%d", why, L.err);
    r->out.layers_missing |= LAYER_BIT(L.failed);
    return fail(r, 503, "ServiceUnavailable", "%s", why);
}

/* Ready to serve: the keys file loads, the state directory is writable and
 * every sandbox layer applies (the config was read already).  A load
 * balancer takes a host that fails this out of rotation; no Python is
 * started. */
static void health(struct request *r)
{
    struct keyring ring = { 0 };
    const char *why = NULL;
    if (keys_load(keys_path(NULL), &ring, &why) != KEYS_OK) {
        log_error("health: keys file %s: %s", keys_path(NULL), why ? why : "cannot be loaded");
        fail(r, 503, "ServiceUnavailable", "not ready: API keys are unavailable");
    } else if (access(state_dir(), W_OK) != 0) {
        log_error("health: state directory %s: %s", state_dir(), strerror(errno));
        fail(r, 503, "ServiceUnavailable", "not ready: usage state is unavailable");
    } else if (health_sandbox(r) == 0) {
        r->text = respond_health_body(r->out.layers_missing);
        r->text_type = "application/json";
        if (!r->text)
            fail(r, 503, "ServiceUnavailable", "out of memory");
    }
    keys_free(&ring);
}

static void metrics(struct request *r)
{
    struct keyring ring = { 0 };
    if (authenticate(r, KEY_SCOPE_ADMIN, &ring) == 0) {
        r->text = metrics_render(&ring);
        r->text_type = "text/plain; version=0.0.4; charset=utf-8";
        if (!r->text)
            fail(r, 503, "ServiceUnavailable", "out of memory rendering metrics");
    }
    keys_free(&ring);
}

/* Route on path, then method.  HEAD runs as GET; respond() drops the body. */
static void route(struct request *r)
{
    if (strcmp(r->path, "/health") == 0 || strcmp(r->path, "/metrics") == 0) {
        if (strcmp(r->method, "GET") != 0 && strcmp(r->method, "HEAD") != 0) {
            r->fail.allow = "GET, HEAD";
            fail(r, 405, "MethodNotAllowed", "use GET for %s", r->path);
        } else if (strcmp(r->path, "/health") == 0) {
            health(r);
        } else {
            metrics(r);
        }
        return;
    }
    if (strcmp(r->path, "/execute") == 0) {
        if (strcmp(r->method, "POST") != 0) {
            r->fail.allow = "POST";
            fail(r, 405, "MethodNotAllowed", "use POST for /execute");
            return;
        }
        execute(r);
        return;
    }
    fail(r, 404, "NotFound", "no such endpoint; try POST /execute or GET /health");
}

static void serve(struct request *r)
{
    char err[512];
    if (config_load(&cfg, err, sizeof(err)) < 0) {
        log_error("%s", err);
        fail(r, 503, "ServiceUnavailable", "server configuration is invalid; see the server log");
    }
    r->deadline_ms = cfg.request_timeout_ms ? cfg.request_timeout_ms : 5000;
    if (!r->fail.status && http_read_head(r, CONN_IN) == 0) {
        request_mark(r, MARK_HEAD);
        assign_request_id(r);
        route(r);
    }
    if (!r->request_id[0])
        assign_request_id(r);
    ratelimit_record(r);
    int status = !r->fail.status && r->text ? respond_text(r, CONN_OUT, r->text, r->text_type)
                                            : respond(r, CONN_OUT);
    request_mark(r, MARK_REPLIED);
    ratelimit_gone(r);
    log_request(r, status);
    http_linger(CONN_OUT);
    worker_reap(r);
    ratelimit_release(r);
}

int main(int argc, char **argv)
{
    /* Before anything touches fd 0, which systemd makes the connection. */
    if (argc == 2 && strcmp(argv[1], "--version") == 0) {
        fputs("pyexec " PYEXEC_VERSION "\n", stdout);
        return fflush(stdout) == 0 ? 0 : 1;
    }
    if (argc > 1) {
        fprintf(stderr, "usage: pyexec  (serves one HTTP request on stdin/stdout, "
                        "as started by systemd socket activation)\n");
        return 2;
    }
    /* A client gone before its answer is written must be logged and
     * counted (EPIPE), not kill the process silently. */
    signal(SIGPIPE, SIG_IGN);
    clock_gettime(CLOCK_MONOTONIC, &req.started);
    request_mark(&req, MARK_START);
    req.env = -1;
    req.content_length = -1;
    req.usage.fd = req.global_slot = req.client_slot = -1;
    serve(&req);
    free(req.body);
    free(req.out.result_json);
    free(req.out.output);
    free(req.text);
    return 0;
}

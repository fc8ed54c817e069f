/* The config file: "[global]", "[test]" and "[prod]" sections of
 * "name = integer" lines (and "user = name", "allow_missing_layers = a, b" in
 * [global]); '#' starts a comment. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "layers.h"

#define CONFIG_MAX_BYTES 65536

static const struct limits DEFAULT_TEST = {
    .wall_ms = 2000, .cpu_ms = 2000, .memory_mb = 128,
    .output_bytes = 65536, .result_bytes = 1 << 20, .body_bytes = 1 << 20,
    .rate_limit = 60, .rate_window_s = 60, .concurrency = 2,
};
static const struct limits DEFAULT_PROD = {
    .wall_ms = 5000, .cpu_ms = 5000, .memory_mb = 256,
    .output_bytes = 65536, .result_bytes = 1 << 20, .body_bytes = 1 << 20,
    .rate_limit = 600, .rate_window_s = 60, .concurrency = 4,
};

/* Each limit's name, field, and the range a sane operator could want. */
struct limit_field {
    const char *name;
    size_t offset;
    long min, max;
};
static const struct limit_field LIMIT_FIELDS[] = {
    { "timeout_ms",   offsetof(struct limits, wall_ms),      10, 600000 },
    { "cpu_ms",       offsetof(struct limits, cpu_ms),       10, 600000 },
    { "memory_mb",    offsetof(struct limits, memory_mb),    16, 65536 },
    { "output_bytes", offsetof(struct limits, output_bytes), 0,  64L << 20 },
    { "result_bytes", offsetof(struct limits, result_bytes), 16, 256L << 20 },
    { "body_bytes",   offsetof(struct limits, body_bytes),   64, 256L << 20 },
    { "rate_limit",   offsetof(struct limits, rate_limit),   1,  1000000 },
    { "rate_window_s", offsetof(struct limits, rate_window_s), 1, 86400 },
    { "concurrency",  offsetof(struct limits, concurrency),  1,  10000 },
};

int config_env_id(const char *name)
{
    if (strcmp(name, "test") == 0)
        return ENV_TEST;
    if (strcmp(name, "prod") == 0)
        return ENV_PROD;
    return -1;
}

const char *config_env_name(int id)
{
    return id == ENV_PROD ? "prod" : "test";
}

static void config_defaults(struct config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->request_timeout_ms = 5000;
    snprintf(cfg->user, sizeof(cfg->user), "nobody");
    cfg->max_concurrent = 16;
    cfg->env[ENV_TEST] = DEFAULT_TEST;
    cfg->env[ENV_PROD] = DEFAULT_PROD;
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    char *e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
        *--e = '\0';
    return s;
}

static int parse_long(const char *s, long min, long max, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max || *s == '+' || *s == ' ')
        return -1;
    *out = v;
    return 0;
}

/* One "name = value" line inside section sect (-1 global, else an env id). */
static int config_set(struct config *cfg, int sect, const char *key, const char *val,
                      char *why, size_t whylen)
{
    if (sect < 0) {
        if (strcmp(key, "user") == 0) {
            if (!*val || strlen(val) >= sizeof(cfg->user)) {
                snprintf(why, whylen, "bad user name");
                return -1;
            }
            snprintf(cfg->user, sizeof(cfg->user), "%s", val);
            return 0;
        }
        /* Off by default: a layer that cannot be applied refuses requests. */
        if (strcmp(key, "allow_missing_layers") == 0)
            return layers_parse(val, &cfg->allow_missing_layers, why, whylen);
        if (strcmp(key, "request_timeout_ms") == 0) {
            if (parse_long(val, 100, 600000, &cfg->request_timeout_ms) == 0)
                return 0;
            snprintf(why, whylen, "request_timeout_ms must be an integer in 100..600000");
            return -1;
        }
        if (strcmp(key, "max_concurrent") == 0) {
            if (parse_long(val, 1, 100000, &cfg->max_concurrent) == 0)
                return 0;
            snprintf(why, whylen, "max_concurrent must be an integer in 1..100000");
            return -1;
        }
        snprintf(why, whylen, "unknown setting \"%s\" in [global]", key);
        return -1;
    }
    for (size_t i = 0; i < sizeof(LIMIT_FIELDS) / sizeof(LIMIT_FIELDS[0]); i++) {
        const struct limit_field *f = &LIMIT_FIELDS[i];
        if (strcmp(key, f->name) != 0)
            continue;
        long *dst = (long *)((char *)&cfg->env[sect] + f->offset);
        if (parse_long(val, f->min, f->max, dst) == 0)
            return 0;
        snprintf(why, whylen, "%s must be an integer in %ld..%ld", f->name, f->min, f->max);
        return -1;
    }
    snprintf(why, whylen, "unknown setting \"%s\"", key);
    return -1;
}

static int config_line(struct config *cfg, int *sect, char *line, char *why, size_t whylen)
{
    char *hash = strchr(line, '#');
    if (hash)
        *hash = '\0';
    char *s = trim(line);
    if (!*s)
        return 0;
    if (*s == '[') {
        char *close = strchr(s, ']');
        if (!close || close[1]) {
            snprintf(why, whylen, "malformed section header");
            return -1;
        }
        *close = '\0';
        if (strcmp(s + 1, "global") == 0) {
            *sect = -1;
            return 0;
        }
        *sect = config_env_id(s + 1);
        if (*sect >= 0)
            return 0;
        snprintf(why, whylen, "unknown section [%s] (expected global, test or prod)", s + 1);
        return -1;
    }
    char *eq = strchr(s, '=');
    if (!eq) {
        snprintf(why, whylen, "expected \"name = value\"");
        return -1;
    }
    *eq = '\0';
    return config_set(cfg, *sect, trim(s), trim(eq + 1), why, whylen);
}

int config_parse(struct config *cfg, const char *name, const char *text, size_t len,
                 char *err, size_t errlen)
{
    int sect = -1, lineno = 0;
    const char *p = text, *end = text + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        char line[512], why[160];
        lineno++;
        if (n >= sizeof(line) || memchr(p, '\0', n)) {
            snprintf(err, errlen, "%s:%d: line too long or contains NUL", name, lineno);
            return -1;
        }
        memcpy(line, p, n);
        line[n] = '\0';
        if (config_line(cfg, &sect, line, why, sizeof(why)) < 0) {
            snprintf(err, errlen, "%s:%d: %s", name, lineno, why);
            return -1;
        }
        p += n + (nl != NULL);
    }
    return 0;
}

int config_load(struct config *cfg, char *err, size_t errlen)
{
    config_defaults(cfg);
    const char *path = getenv("PYEXEC_CONFIG");
    int explicit_path = path && *path;
    if (!explicit_path)
        path = CONFIG_DEFAULT_PATH;

    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT && !explicit_path)
            return 0;
        snprintf(err, errlen, "cannot open config %s: %s", path, strerror(errno));
        return -1;
    }
    char buf[CONFIG_MAX_BYTES];
    size_t len = 0;
    for (;;) {
        ssize_t r = read(fd, buf + len, sizeof(buf) - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            snprintf(err, errlen, "cannot read config %s: %s", path, strerror(errno));
            close(fd);
            return -1;
        }
        if (r == 0)
            break;
        len += (size_t)r;
        if (len == sizeof(buf)) {
            snprintf(err, errlen, "config %s is larger than %d bytes", path, CONFIG_MAX_BYTES);
            close(fd);
            return -1;
        }
    }
    close(fd);
    return config_parse(cfg, path, buf, len, err, errlen);
}

/* Limits and paths, read once at start from one small INI-style file. */
#ifndef PYEXEC_CONFIG_H
#define PYEXEC_CONFIG_H

#include <stddef.h>
#include <sys/types.h>

#define CONFIG_DEFAULT_PATH "/etc/pyexec/pyexec.conf"

/* What one environment (a key's "env") may use. */
struct limits {
    long wall_ms;        /* whole execution, wall clock */
    long cpu_ms;         /* CPU time of the worker */
    long memory_mb;      /* Python heap of the worker */
    long output_bytes;   /* printed text kept */
    long result_bytes;   /* serialised result */
    long body_bytes;     /* request body */
    long rate_limit;     /* requests per client per window (a key may override) */
    long rate_window_s;
    long concurrency;    /* executions at once per client (a key may override) */
};

enum env_id { ENV_TEST = 0, ENV_PROD = 1, ENV_COUNT };

struct config {
    long request_timeout_ms;   /* reading the whole request */
    char user[64];             /* unprivileged user for the worker when started as root */
    long max_concurrent;       /* executions at once on this server, all clients */
    unsigned allow_missing_layers;   /* LAYER_BITs the sandbox may run without */
    struct limits env[ENV_COUNT];
};

/* Fill cfg with defaults, then apply the file at $PYEXEC_CONFIG or the default
 * path (absence of the default file is fine; of an explicit one it is not).
 * On error, writes a message naming the file and line to err and returns -1. */
int config_load(struct config *cfg, char *err, size_t errlen);

/* Parse config text (len bytes) over cfg; name is used in messages. */
int config_parse(struct config *cfg, const char *name, const char *text, size_t len,
                 char *err, size_t errlen);

/* "test" / "prod" to an env id; -1 when unknown. */
int config_env_id(const char *name);
const char *config_env_name(int id);

#endif

/* GET /metrics: per-client usage in the Prometheus text exposition format. */
#ifndef PYEXEC_METRICS_H
#define PYEXEC_METRICS_H

#include "keys.h"

/* The exposition text for every key in ring (malloc'd), or NULL. */
char *metrics_render(const struct keyring *ring);

#endif

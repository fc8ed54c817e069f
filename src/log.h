/* One structured key=value line per request on stderr (journald-friendly). */
#ifndef PYEXEC_LOG_H
#define PYEXEC_LOG_H

#include "request.h"

/* The request line: id, client, env, status, outcome, timings, sizes.
 * Never the key, the code or the data. */
void log_request(const struct request *req, int status);

/* A plain diagnostic line, e.g. a bad config or keys file. */
void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif

/* One structured key=value line per request on stderr (journald-friendly). */
#ifndef PYEXEC_LOG_H
#define PYEXEC_LOG_H

#include "request.h"

/* The request line: id, client, env, status, outcome, timings, sizes.
 * Never the key, the code or the data. */
void log_request(const struct request *req, int status);

/* A plain diagnostic line, e.g. a bad config or keys file. */
void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The same, with the sd-daemon priority prefix ("<3>": error) that the
 * journal files it under. */
void log_prio(int prio, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif

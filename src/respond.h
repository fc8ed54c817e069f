/* Turning the request's failure or outcome into the one HTTP response. */
#ifndef PYEXEC_RESPOND_H
#define PYEXEC_RESPOND_H

#include "request.h"

/* Write the response for req to fd: its failure if one is set, else its
 * execution outcome.  Returns the HTTP status sent. */
int respond(struct request *req, int fd);

/* Write a 200 with the given body (e.g. /health, /metrics). */
int respond_text(struct request *req, int fd, const char *text, const char *content_type);

/* /health's body when ready: {"status":"ok"}, with "sandbox": {"missing":
 * [...]} when allowed layers are missing.  Owned by the caller; NULL: OOM. */
char *respond_health_body(unsigned missing);

#endif

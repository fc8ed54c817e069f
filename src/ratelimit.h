/* Admission control for one execution: the server-wide cap, the client's
 * concurrency cap and the client's rate window, all before Python starts;
 * and the client's usage counters afterwards. */
#ifndef PYEXEC_RATELIMIT_H
#define PYEXEC_RATELIMIT_H

#include "config.h"
#include "request.h"

/* 0 admitted, or -1 with req->fail set: 503 (server busy, or state
 * unavailable), 429 (client concurrency or rate).  Sets the rate headers. */
int ratelimit_admit(struct request *req, const struct config *cfg);

/* Count the outcome in the client's usage record (before the answer, so a
 * client that reads its usage next sees it); never fails the request. */
void ratelimit_record(struct request *req);

/* After the answer: one that could not be delivered moves its count to
 * client_gone. */
void ratelimit_gone(struct request *req);

/* Give back the slots (after the worker is reaped: they cover its whole life). */
void ratelimit_release(struct request *req);

#endif

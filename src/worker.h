/* The supervisor side of one execution: fork the worker, time it, read its
 * report, and turn whatever happened to it into req->out. */
#ifndef PYEXEC_WORKER_H
#define PYEXEC_WORKER_H

#include "request.h"
#include "sandbox.h"

/* Run the request's (validated) body in a sandboxed worker under
 * req->limits.  Always fills req->out (also when the worker is killed); -1
 * only when no worker could be started, with req->fail set. */
int worker_run(struct request *req, const struct sandbox_ids *ids);

/* Wait for a worker that reported done before it ended (no-op otherwise). */
void worker_reap(struct request *req);

#endif

/* The embedded interpreter: start it, load the policy, run one snippet. */
#ifndef PYEXEC_PYRUN_H
#define PYEXEC_PYRUN_H

#include <cJSON.h>

#include "config.h"
#include "report.h"

/* In the worker program, after sandbox_prepare and sandbox_after_exec: start
 * Python, call lock_down, run the snippet, fill r.  Returns the worker's exit
 * status. */
int pyexec_python_main(struct report *r, const struct limits *lim, const char *code,
                       size_t code_len, const cJSON *data,
                       int (*lock_down)(char *why, size_t whylen));

/* Start an isolated interpreter and import the policy (and with it
 * RestrictedPython).  Everything that opens files happens here, before the
 * sandbox closes.  0, or -1 with r filled with an InternalError. */
int pyrun_start(struct report *r, const struct limits *lim);

/* Convert data, compile code under the policy, run it, serialise `result`.
 * Fills r (state, error or result).  Runs inside the locked-down sandbox. */
void pyrun_execute(struct report *r, const char *code, size_t code_len, const cJSON *data,
                   const struct limits *lim);

#endif

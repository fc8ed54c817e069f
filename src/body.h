/* The POST /execute body: {"code": str, "data": any, "limits": {...}}. */
#ifndef PYEXEC_BODY_H
#define PYEXEC_BODY_H

#include <cJSON.h>

#include "request.h"

struct exec_body {
    cJSON *root;           /* owned */
    const char *code;      /* inside root */
    size_t code_len;
    const cJSON *data;     /* inside root, or the empty object below */
    cJSON *empty_data;     /* owned, when data was absent */
};

/* Parse and validate req->body; tighten req->limits by the request's own.
 * 0, or -1 with req->fail set (400 invalid JSON/UTF-8, 422 wrong shape). */
int body_parse(struct request *req, struct exec_body *b);

void body_free(struct exec_body *b);

#endif

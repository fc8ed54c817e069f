/* TEST-ONLY: stands in for pyexec-worker to play a worker that user code
 * has taken over entirely (tests/execute.bats builds it and puts it next to
 * a copy of pyexec).  What it does is chosen by a word in the request body:
 *   lengths  a report whose lengths, area sizes and strings point far
 *            outside the mapping, rewritten again and again after "done"
 *   linger   a valid report and "done", then it never ends
 *   shrink   a valid report, then it tries to shrink the shared memfd
 *            under the supervisor's mapping
 *   inject   a snippet error whose type carries line breaks and a forged
 *            log line
 *   injectmsg  an internal error whose message does the same
 * The supervisor must answer well-formed, read nothing outside the report,
 * and never wait for the worker past its wall limit. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "handoff.h"
#include "sandbox.h"

static void scramble(struct report *r)
{
    r->state = REPORT_OK;
    r->output_len = r->result_len = SIZE_MAX / 2;
    r->output_cap = r->result_cap = SIZE_MAX / 4;
    memset(r->err_type, 'T', sizeof(r->err_type));
    memset(r->err_message, 'M', sizeof(r->err_message));
}

int main(void)
{
    struct stat st;
    if (fstat(SANDBOX_JOB_FD, &st) < 0)
        return 2;
    struct handoff *h = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED,
                             SANDBOX_JOB_FD, 0);
    if (h == MAP_FAILED)
        return 2;
    struct report *r = handoff_report(h);
    const char *body = handoff_body(h);
    size_t n = h->body_len;
    if (memmem(body, n, "lengths", 7)) {
        /* Fill the areas the supervisor may read with no NUL anywhere. */
        memset(r->area, '1', (size_t)h->lim.output_bytes + (size_t)h->lim.result_bytes);
        scramble(r);
        (void)!write(SANDBOX_DONE_FD, "d", 1);
        for (;;)
            scramble(r);
    }
    static const char forged[] = "\npyexec: request_id=forged status=200 outcome=ok\n";
    if (memmem(body, n, "injectmsg", 9)) {
        snprintf(r->err_message, sizeof(r->err_message), "broken%s", forged);
        r->state = REPORT_INTERNAL;
        return 1;
    }
    if (memmem(body, n, "inject", 6)) {
        snprintf(r->err_type, sizeof(r->err_type), "X%s", forged);
        snprintf(r->err_message, sizeof(r->err_message), "raised");
        r->state = REPORT_ERROR;
        (void)!write(SANDBOX_DONE_FD, "d", 1);
        return 0;
    }
    memcpy(report_result(r), "42", 2);
    r->result_len = 2;
    r->state = REPORT_OK;
    if (memmem(body, n, "shrink", 6) && ftruncate(SANDBOX_JOB_FD, 0) == 0)
        return 3;   /* it worked: the supervisor will fault reading the report */
    (void)!write(SANDBOX_DONE_FD, "d", 1);
    for (;;)
        pause();
}

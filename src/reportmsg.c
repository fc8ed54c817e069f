/* The worker program's error messages in the report.  Lengths travel with
 * the bytes, so a message holding U+0000 arrives whole, and every cut falls
 * on a UTF-8 character boundary, so the answer stays strict JSON. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "report.h"
#include "utf8cut.h"

void report_message(struct report *r, const char *s, size_t n)
{
    size_t cap = sizeof(r->err_message) - 1;   /* the NUL the supervisor keeps */
    size_t fit = utf8cut(s, n, cap);
    memcpy(r->err_message, s, fit);
    r->err_message[fit] = '\0';
    r->err_message_len = fit;
    r->err_message_truncated = fit < n;
}

void report_messagef(struct report *r, const char *fmt, ...)
{
    char buf[sizeof(r->err_message) + 8];   /* longer than fits: a cut shows */
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    report_message(r, buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
}

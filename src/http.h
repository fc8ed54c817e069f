/* Reading one HTTP/1.x request from the connection, with hard bounds. */
#ifndef PYEXEC_HTTP_H
#define PYEXEC_HTTP_H

#include "request.h"

/* Read and parse the request line and headers from fd (deadline-bounded).
 * 0, or -1 with req->fail set (400, 408, 411, 431, 501, 505). */
int http_read_head(struct request *req, int fd);

/* When the client sent Expect: 100-continue: judge Content-Length (411,
 * 413) and write the interim 100 Continue to out_fd.  0, or -1 with fail. */
int http_continue(struct request *req, int out_fd, long max_bytes);

/* Read exactly Content-Length body bytes (at most max_bytes, else 413). */
int http_read_body(struct request *req, int fd, long max_bytes);

/* After the response: stop sending and let the client read it before the
 * close, draining what it still sends for a short, bounded time. */
void http_linger(int fd);

#endif

/* Cutting UTF-8 text to a byte budget without splitting a character (the
 * worker program's: printed output, error messages). */
#ifndef PYEXEC_UTF8CUT_H
#define PYEXEC_UTF8CUT_H

#include <stddef.h>

/* The length of the longest prefix of s[0..n) (UTF-8) that is at most cap
 * bytes and ends on a character boundary: n itself when n <= cap. */
size_t utf8cut(const char *s, size_t n, size_t cap);

#endif

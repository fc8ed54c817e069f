/* JSON <-> Python conversion in C: no detour through the json module. */
#ifndef PYEXEC_PYCONV_H
#define PYEXEC_PYCONV_H

#include <Python.h>
#include <cJSON.h>

#define PYCONV_MAX_DEPTH 1000
/* Integers in a result have at most this many digits: CPython's default
 * int/str limit, which Python's json module applies when reading (and
 * beyond which JavaScript reads Infinity long since). */
#define PYCONV_INT_DIGITS 4300

/* A new reference for node (from jsonext_parse: integers exact), or NULL
 * with a Python exception set. */
PyObject *pyconv_from_json(const cJSON *node);

enum pyconv_status { PYCONV_OK, PYCONV_UNSUPPORTED, PYCONV_TOO_LARGE, PYCONV_NOMEM };

/* Serialise obj as compact JSON into buf (cap bytes, NUL-terminated).
 * UNSUPPORTED (with why filled) for values JSON cannot hold exactly:
 * NaN/Infinity, integers of more than PYCONV_INT_DIGITS digits, non-string
 * dict keys, sets, objects, cycles.
 * TOO_LARGE when the text would not fit.  Never leaves a Python exception set. */
enum pyconv_status pyconv_to_json(PyObject *obj, char *buf, size_t cap, size_t *len,
                                  char *why, size_t whylen);

#endif

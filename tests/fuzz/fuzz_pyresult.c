/* libFuzzer harness: Python-to-JSON, the direction that carries a snippet's
 * `result` (pyconv_to_json in src/pyconv.c), from Python values that JSON
 * input cannot produce.
 *
 * Input: the source of a Python literal (ast.literal_eval: tuples, sets,
 * bytes, complex, floats such as 1e999, strings with U+0000 or lone
 * surrogates, ints in hex of any size, dicts with non-string keys ...).  A
 * serialisable value is serialised into 64 KiB, then into exactly its length
 * (must be TOO_LARGE: the NUL needs a byte too), its length + 1 (must be OK
 * and identical), half its length and 0 bytes (TOO_LARGE).
 *
 * Checked beyond the sanitizers:
 *  - pyconv_to_json never leaves a Python exception set and always
 *    NUL-terminates; a failure fills `why`;
 *  - the verdict is the one the README's rules give (computed here in Python
 *    independently): OK, or UNSUPPORTED for NaN/Infinity, non-string dict
 *    keys, values of other types, lone surrogates, nesting beyond 1000,
 *    integers of more than 4300 digits (JSON clients could not read them);
 *  - an OK output is valid JSON that Python's json.loads reads back to the
 *    same value (tuples as lists), with U+0000 intact.
 *
 * As in the worker's conversions (src/policy.py), int<->str conversion has no
 * digit limit. */
#include <Python.h>

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_python.h"
#include "pyconv.h"

#define OUT_CAP (64 * 1024)

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "check failed: %s (%s:%d)\n", \
                                          #c, __FILE__, __LINE__); __builtin_trap(); } } while (0)

static const char HELPERS_PY[] =
    "import ast, json, math, sys\n"
    "sys.set_int_max_str_digits(0)\n"   /* as src/policy.py does in the worker */
    "value = ast.literal_eval\n"
    "def expect(v):\n"
    "    # Must pyconv refuse v (README, 'JSON conversion')?\n"
    "    unsupported = False\n"
    "    stack = [(v, 0)]\n"
    "    while stack:\n"
    "        x, d = stack.pop()\n"
    "        t = type(x)\n"
    "        if d > 1000:\n"
    "            unsupported = True\n"
    "        elif x is None or x is True or x is False:\n"
    "            pass\n"
    "        elif t is int:\n"
    "            unsupported |= abs(x) >= 10**4300\n"   /* PYCONV_INT_DIGITS */
    "        elif t is str:\n"
    "            try:\n"
    "                x.encode('utf-8')\n"
    "            except UnicodeEncodeError:\n"
    "                unsupported = True\n"
    "        elif t is float:\n"
    "            unsupported |= not math.isfinite(x)\n"
    "        elif t is list or t is tuple:\n"
    "            stack.extend((y, d + 1) for y in x)\n"
    "        elif t is dict:\n"
    "            for k, y in x.items():\n"
    "                unsupported |= type(k) is not str\n"
    "                stack.append((k, d + 1))\n"
    "                stack.append((y, d + 1))\n"
    "        else:\n"
    "            unsupported = True\n"
    "    return unsupported\n"
    "def _plain(v):\n"
    "    if type(v) is tuple or type(v) is list:\n"
    "        return [_plain(y) for y in v]\n"
    "    if type(v) is dict:\n"
    "        return {k: _plain(y) for k, y in v.items()}\n"
    "    return v\n"
    "def same(text, v):\n"
    "    return json.loads(text) == _plain(v)\n";

static PyObject *fn_value, *fn_expect, *fn_same;
static char out[OUT_CAP], out2[OUT_CAP];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    static const char *const NAMES[] = { "value", "expect", "same" };
    PyObject *fns[3];
    fuzz_python_start("fuzz_pyresult", HELPERS_PY, NAMES, fns, 3);
    fn_value = fns[0];
    fn_expect = fns[1];
    fn_same = fns[2];
    return 0;
}

static enum pyconv_status to_json(PyObject *v, char *buf, size_t cap, size_t *len)
{
    char why[256];
    memset(why, 'x', sizeof(why));
    memset(buf, 'x', cap);
    *len = (size_t)-1;
    enum pyconv_status st = pyconv_to_json(v, buf, cap, len, why, sizeof(why));
    CHECK(!PyErr_Occurred());
    CHECK(memchr(why, '\0', sizeof(why)) != NULL);
    CHECK(cap == 0 || memchr(buf, '\0', cap) != NULL);
    if (st == PYCONV_OK) {
        CHECK(*len < cap && buf[*len] == '\0');
    } else {
        CHECK(st == PYCONV_UNSUPPORTED || st == PYCONV_TOO_LARGE || st == PYCONV_NOMEM);
        CHECK(why[0] != '\0');
    }
    return st;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return -1;
    PyObject *src = PyUnicode_DecodeUTF8((const char *)data, (Py_ssize_t)size, "strict");
    PyObject *v = src ? PyObject_CallOneArg(fn_value, src) : NULL;
    Py_XDECREF(src);
    if (!v) {
        PyErr_Clear();   /* not a literal (or too deep for the parser) */
        return 0;
    }
    PyObject *e = PyObject_CallOneArg(fn_expect, v);
    CHECK(e != NULL);
    bool unsupported = PyObject_IsTrue(e);

    size_t len;
    enum pyconv_status st = to_json(v, out, OUT_CAP, &len);
    if (!unsupported && st != PYCONV_TOO_LARGE) {
        if (st != PYCONV_OK) {
            PyObject_Print(v, stderr, 0);
            fprintf(stderr, "\nexpected OK, got status %d\n", (int)st);
            __builtin_trap();
        }
        PyObject *text = PyUnicode_DecodeUTF8(out, (Py_ssize_t)len, "strict");
        PyObject *same = text ? PyObject_CallFunctionObjArgs(fn_same, text, v, NULL) : NULL;
        if (!same || !PyObject_IsTrue(same)) {
            PyErr_Print();
            fprintf(stderr, "output does not read back to the value: %.*s\n", (int)len, out);
            __builtin_trap();
        }
        Py_DECREF(same);
        Py_DECREF(text);
        /* The size limit is exact: len bytes and the NUL. */
        size_t len2;
        CHECK(to_json(v, out2, len, &len2) == PYCONV_TOO_LARGE);
        CHECK(to_json(v, out2, len + 1, &len2) == PYCONV_OK);
        CHECK(len2 == len && memcmp(out, out2, len) == 0);
        CHECK(to_json(v, out2, len / 2, &len2) == PYCONV_TOO_LARGE);
        CHECK(to_json(v, out2, 0, &len2) == PYCONV_TOO_LARGE);
    } else if (unsupported) {
        CHECK(st == PYCONV_UNSUPPORTED || st == PYCONV_TOO_LARGE);
    }
    Py_DECREF(e);
    Py_DECREF(v);
    CHECK(!PyErr_Occurred());
    return 0;
}

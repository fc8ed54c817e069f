/* libFuzzer harness: JSON <-> Python conversion (src/pyconv.c over
 * src/jsonext.c), in an embedded CPython started once.
 *
 * Per input: jsonext_parse -> pyconv_from_json -> pyconv_to_json (64 KiB
 * buffer).  Checked beyond the sanitizers:
 *  - pyconv_to_json never leaves a Python exception set, and its output is
 *    NUL-terminated and as long as it says;
 *  - its output parses again with jsonext_parse and converts to an equal
 *    Python value;
 *  - converting that again gives byte-identical text (the round trip is a
 *    fixed point).  This is checked for every input whose numbers are all
 *    integers; inputs with floats get it too unless FUZZ_PYCONV_SKIP_FLOATS
 *    is defined (floats print as Python's shortest repr, which reads back
 *    to the same double, so the property holds for them as well);
 *  - differential against Python's own json.loads (on the input decoded as
 *    UTF-8): when both accept, the values are equal; when json.loads accepts,
 *    jsonext_parse and pyconv_from_json accept too, unless the value holds
 *    what the README says pyexec refuses (U+0000 or a lone surrogate in a
 *    string, a non-finite float, nesting near 1000 levels), also in a value
 *    that a later duplicate key shadows.  cJSON is laxer
 *    than json.loads in places (text after the top-level value, "1.", any
 *    byte <= 0x20 as whitespace): those are not checked.
 *
 * The interpreter uses the plain malloc allocator (PYTHONMALLOC=malloc) so
 * that ASan sees every Python object: a reference-count error in pyconv.c
 * becomes a use-after-free report instead of silent pymalloc reuse.  As in
 * the worker (src/policy.py), int<->str conversion has no digit limit. */
#include <Python.h>

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_python.h"
#include "jsonext.h"
#include "pyconv.h"

#define OUT_CAP (64 * 1024)

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "check failed: %s (%s:%d)\n", \
                                          #c, __FILE__, __LINE__); __builtin_trap(); } } while (0)

static PyObject *json_loads, *refusable;

/* What pyexec may refuse although json.loads accepts it (README, "JSON
 * conversion"): U+0000 (and lone surrogates, which UTF-8 cannot carry) in a
 * string, NaN/Infinity and floats beyond double range, nesting near the
 * 1000-level limit. */
static const char REFERENCE_PY[] =
    "import json, re, sys\n"
    "sys.set_int_max_str_digits(0)\n"   /* as src/policy.py does in the worker */
    "loads = json.loads\n"
    "_bad = re.compile('[\\x00\\ud800-\\udfff]')\n"
    "def _refusable(v):\n"
    "    stack = [(v, 0)]\n"
    "    while stack:\n"
    "        x, d = stack.pop()\n"
    "        if d > 990:\n"
    "            return True\n"
    "        t = type(x)\n"
    "        if t is str:\n"
    "            if _bad.search(x):\n"
    "                return True\n"
    "        elif t is float:\n"
    "            if x != x or x in (float('inf'), float('-inf')):\n"
    "                return True\n"
    "        elif t is list:\n"
    "            stack.extend((y, d + 1) for y in x)\n"
    "        elif t is tuple:\n"   /* a (key, value) pair: same level */
    "            stack.extend((y, d) for y in x)\n"
    "    return False\n"
    "def refusable(s):\n"
    "    # Objects as lists of pairs: a value shadowed by a later duplicate\n"
    "    # key is still converted (and may be refused).\n"
    "    return _refusable(json.loads(s, object_pairs_hook=list))\n";
static char out1[OUT_CAP], out2[OUT_CAP];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    static const char *const NAMES[] = { "refusable", "loads" };
    PyObject *fns[2];
    fuzz_python_start("fuzz_pyconv", REFERENCE_PY, NAMES, fns, 2);
    refusable = fns[0];
    json_loads = fns[1];
    return 0;
}

static bool has_float(const cJSON *node)
{
    for (; node; node = node->next) {
        if (cJSON_IsNumber(node) && !jsonext_is_integer(node))
            return true;
        if (node->child && has_float(node->child))
            return true;
    }
    return false;
}

static void check_to_json(PyObject *obj, char *buf, size_t *len, enum pyconv_status *st)
{
    char why[256];
    memset(why, 'x', sizeof(why));
    *len = (size_t)-1;
    *st = pyconv_to_json(obj, buf, OUT_CAP, len, why, sizeof(why));
    CHECK(!PyErr_Occurred());
    CHECK(memchr(why, '\0', sizeof(why)) != NULL);
    switch (*st) {
    case PYCONV_OK:
        CHECK(*len < OUT_CAP && buf[*len] == '\0' && strlen(buf) == *len);
        break;
    case PYCONV_UNSUPPORTED:
    case PYCONV_TOO_LARGE:
    case PYCONV_NOMEM:
        CHECK(why[0] != '\0');
        break;
    default:
        CHECK(!"unknown pyconv_status");
    }
}

/* The input as a str (NULL when it is not UTF-8): not bytes, since
 * json.loads would guess UTF-16/32 from NUL bytes, which cJSON takes for
 * whitespace. */
static PyObject *as_str(const uint8_t *data, size_t size)
{
    PyObject *str = PyUnicode_DecodeUTF8((const char *)data, (Py_ssize_t)size, "strict");
    if (!str)
        PyErr_Clear();
    return str;
}

/* Python's json.loads(str), or NULL when it refuses (error cleared). */
static PyObject *reference_loads(PyObject *str)
{
    PyObject *v = str ? PyObject_CallOneArg(json_loads, str) : NULL;
    if (!v)
        PyErr_Clear();
    return v;
}

/* a == b; also true when Python cannot tell (RecursionError comparing values
 * nested ~1000 deep): that is no fault of the code under test. */
static bool equal(PyObject *a, PyObject *b)
{
    int eq = PyObject_RichCompareBool(a, b, Py_EQ);
    if (eq < 0) {
        if (!PyErr_ExceptionMatches(PyExc_RecursionError)) {
            PyErr_Print();
            CHECK(!"comparison failed");
        }
        PyErr_Clear();
        return true;
    }
    return eq == 1;
}

/* Does the README let pyexec refuse this text that json.loads accepts? */
static bool may_refuse(PyObject *str)
{
    PyObject *r = PyObject_CallOneArg(refusable, str);
    CHECK(r != NULL);
    bool yes = PyObject_IsTrue(r);
    Py_DECREF(r);
    return yes;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size ? size : 1);   /* exactly size bytes: no NUL to lean on */
    if (!text)
        return 0;
    memcpy(text, data, size);

    /* The reference reading first: what Python's json module makes of it. */
    PyObject *str = as_str(data, size);
    PyObject *ref = reference_loads(str);
    const char *err = NULL;
    cJSON *root = jsonext_parse(text, size, &err);
    free(text);
    if (!root) {
        /* Refusing valid JSON is a bug unless the README says so. */
        if (ref && !may_refuse(str)) {
            fprintf(stderr, "jsonext_parse refused (%s) what json.loads accepts\n", err);
            __builtin_trap();
        }
        Py_XDECREF(ref);
        Py_XDECREF(str);
        return 0;
    }

    PyObject *obj = pyconv_from_json(root);
    if (!obj) {
        CHECK(PyErr_Occurred());
        PyObject *type, *value, *tb;
        PyErr_Fetch(&type, &value, &tb);
        if (ref && !may_refuse(str)) {
            PyErr_Restore(type, value, tb);
            PyErr_Print();
            fprintf(stderr, "pyconv_from_json refused what json.loads accepts\n");
            __builtin_trap();
        }
        Py_XDECREF(type);
        Py_XDECREF(value);
        Py_XDECREF(tb);
        cJSON_Delete(root);
        Py_XDECREF(ref);
        Py_XDECREF(str);
        return 0;
    }
    CHECK(!PyErr_Occurred());
    Py_XDECREF(str);
    bool floats = has_float(root);
    cJSON_Delete(root);

    /* Both accept: the values must be equal (no NaN can come from jsonext,
     * so == is a fair comparison). */
    if (ref) {
        if (!equal(obj, ref)) {
            fprintf(stderr, "pyconv and json.loads disagree\n");
            PyObject_Print(obj, stderr, 0);
            fputc('\n', stderr);
            PyObject_Print(ref, stderr, 0);
            fputc('\n', stderr);
            __builtin_trap();
        }
        Py_DECREF(ref);
    }

    size_t len1, len2;
    enum pyconv_status st;
    check_to_json(obj, out1, &len1, &st);
    if (st == PYCONV_OK) {
        cJSON *again = jsonext_parse(out1, len1, &err);
        if (!again) {
            fprintf(stderr, "output does not parse again (%s): %.*s\n", err, (int)len1, out1);
            __builtin_trap();
        }
        PyObject *obj2 = pyconv_from_json(again);
        cJSON_Delete(again);
        if (!obj2) {
            PyErr_Print();
            fprintf(stderr, "output does not convert again: %.*s\n", (int)len1, out1);
            __builtin_trap();
        }
        CHECK(equal(obj, obj2));
#ifdef FUZZ_PYCONV_SKIP_FLOATS
        if (!floats)
#else
        (void)floats;
#endif
        {
            check_to_json(obj2, out2, &len2, &st);
            CHECK(st == PYCONV_OK);
            if (len1 != len2 || memcmp(out1, out2, len1) != 0) {
                fprintf(stderr, "round trip differs:\n%.*s\n%.*s\n", (int)len1, out1,
                        (int)len2, out2);
                __builtin_trap();
            }
        }
        Py_DECREF(obj2);
    }
    Py_DECREF(obj);
    CHECK(!PyErr_Occurred());
    return 0;
}

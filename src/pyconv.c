/* Conversions.  Numbers are the delicate part: integers travel as their exact
 * decimal text in both directions, floats as Python's shortest repr. */
#include "pyconv.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "jsonext.h"

static PyObject *number_from_json(const cJSON *node)
{
    if (jsonext_is_integer(node))
        return PyLong_FromString(node->valuestring, NULL, 10);
    if (!node->valuestring)
        return PyFloat_FromDouble(node->valuedouble);
    double v = PyOS_string_to_double(node->valuestring, NULL, PyExc_OverflowError);
    if (v == -1.0 && PyErr_Occurred())
        return NULL;
    return PyFloat_FromDouble(v);
}

static PyObject *from_json(const cJSON *node, int depth);

static PyObject *array_from_json(const cJSON *node, int depth)
{
    PyObject *list = PyList_New(0);
    for (const cJSON *c = node->child; list && c; c = c->next) {
        PyObject *item = from_json(c, depth + 1);
        if (!item || PyList_Append(list, item) < 0) {
            Py_XDECREF(item);
            Py_CLEAR(list);
            break;
        }
        Py_DECREF(item);
    }
    return list;
}

static PyObject *object_from_json(const cJSON *node, int depth)
{
    PyObject *dict = PyDict_New();
    for (const cJSON *c = node->child; dict && c; c = c->next) {
        PyObject *item = from_json(c, depth + 1);
        PyObject *key = item ? PyUnicode_FromString(c->string) : NULL;
        if (!key || PyDict_SetItem(dict, key, item) < 0)
            Py_CLEAR(dict);
        Py_XDECREF(key);
        Py_XDECREF(item);
    }
    return dict;
}

static PyObject *from_json(const cJSON *node, int depth)
{
    if (depth > PYCONV_MAX_DEPTH) {
        PyErr_SetString(PyExc_ValueError, "data nests too deeply");
        return NULL;
    }
    if (cJSON_IsNull(node))
        Py_RETURN_NONE;
    if (cJSON_IsTrue(node))
        Py_RETURN_TRUE;
    if (cJSON_IsFalse(node))
        Py_RETURN_FALSE;
    if (cJSON_IsNumber(node))
        return number_from_json(node);
    if (cJSON_IsString(node))
        return PyUnicode_DecodeUTF8(node->valuestring, (Py_ssize_t)strlen(node->valuestring), "strict");
    if (cJSON_IsArray(node))
        return array_from_json(node, depth);
    if (cJSON_IsObject(node))
        return object_from_json(node, depth);
    PyErr_SetString(PyExc_ValueError, "unsupported JSON value");
    return NULL;
}

PyObject *pyconv_from_json(const cJSON *node)
{
    return from_json(node, 0);
}

/* --- Python to JSON ---------------------------------------------------- */

struct emitter {
    char *buf;
    size_t cap, len;
    char *why;
    size_t whylen;
    enum pyconv_status status;
};

static int emit_fail(struct emitter *e, enum pyconv_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int emit_fail(struct emitter *e, enum pyconv_status st, const char *fmt, ...)
{
    if (e->status == PYCONV_OK) {
        e->status = st;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->why, e->whylen, fmt, ap);
        va_end(ap);
    }
    PyErr_Clear();
    return -1;
}

static int emit(struct emitter *e, const char *s, size_t n)
{
    if (e->len + n + 1 > e->cap)
        return emit_fail(e, PYCONV_TOO_LARGE, "result exceeds %s", "the size limit");
    memcpy(e->buf + e->len, s, n);
    e->len += n;
    e->buf[e->len] = '\0';
    return 0;
}

static int emit_str(struct emitter *e, PyObject *s)
{
    Py_ssize_t n;
    const char *utf8 = PyUnicode_AsUTF8AndSize(s, &n);
    if (!utf8)
        return emit_fail(e, PYCONV_UNSUPPORTED, "%s", "string is not valid Unicode (lone surrogate)");
    if ((size_t)n > e->cap)   /* cheap bound before escaping a huge string */
        return emit_fail(e, PYCONV_TOO_LARGE, "result exceeds %s", "the size limit");
    cJSON *node = jsonext_string(utf8, (size_t)n);
    char *text = node ? cJSON_PrintUnformatted(node) : NULL;
    cJSON_Delete(node);
    if (!text)
        return emit_fail(e, PYCONV_NOMEM, "%s", "out of memory");
    int r = emit(e, text, strlen(text));
    cJSON_free(text);
    return r;
}

/* 1 when o (an exact int) has more than PYCONV_INT_DIGITS decimal digits,
 * 0 when not, -1 on error.  Judged from its bits, and against 10**limit only
 * in the narrow band where the bits cannot tell. */
static int too_many_digits(PyObject *o, size_t bits)
{
    if (bits <= (size_t)PYCONV_INT_DIGITS * 3321928 / 1000000)   /* below 10**limit */
        return 0;
    if (bits > (size_t)PYCONV_INT_DIGITS * 3321929 / 1000000 + 1)   /* at least 10**limit */
        return 1;
    static PyObject *limit;   /* 10**PYCONV_INT_DIGITS, made once */
    if (!limit) {
        PyObject *ten = PyLong_FromLong(10), *n = PyLong_FromLong(PYCONV_INT_DIGITS);
        limit = ten && n ? PyNumber_Power(ten, n, Py_None) : NULL;
        Py_XDECREF(ten);
        Py_XDECREF(n);
    }
    PyObject *a = limit ? PyNumber_Absolute(o) : NULL;
    int r = a ? PyObject_RichCompareBool(a, limit, Py_GE) : -1;
    Py_XDECREF(a);
    return r;
}

static int emit_int(struct emitter *e, PyObject *o)
{
    size_t bits = _PyLong_NumBits(o);
    int many = too_many_digits(o, bits);
    if (many < 0)
        return emit_fail(e, PYCONV_NOMEM, "%s", "out of memory");
    if (many)
        return emit_fail(e, PYCONV_UNSUPPORTED,
                         "an integer of more than %d digits, which JSON clients cannot "
                         "parse; return it as a string (str() works up to %d digits)",
                         PYCONV_INT_DIGITS, PYCONV_INT_DIGITS);
    /* Digits grow ~0.3 per bit: refuse early rather than build a huge string. */
    if (bits / 100000 * 30103 > e->cap)
        return emit_fail(e, PYCONV_TOO_LARGE, "result exceeds %s", "the size limit");
    PyObject *s = PyLong_Type.tp_repr(o);   /* exact digits, not a subclass's __repr__ */
    if (!s)
        return emit_fail(e, PYCONV_NOMEM, "%s", "cannot format integer");
    Py_ssize_t n;
    const char *d = PyUnicode_AsUTF8AndSize(s, &n);
    int r = d ? emit(e, d, (size_t)n) : emit_fail(e, PYCONV_NOMEM, "%s", "out of memory");
    Py_DECREF(s);
    return r;
}

static int emit_float(struct emitter *e, PyObject *o)
{
    double v = PyFloat_AS_DOUBLE(o);
    if (!Py_IS_FINITE(v))
        return emit_fail(e, PYCONV_UNSUPPORTED, "%s",
                         "NaN and Infinity are not valid JSON numbers");
    char *s = PyOS_double_to_string(v, 'r', 0, Py_DTSF_ADD_DOT_0, NULL);
    if (!s)
        return emit_fail(e, PYCONV_NOMEM, "%s", "out of memory");
    int r = emit(e, s, strlen(s));
    PyMem_Free(s);
    return r;
}

static int emit_value(struct emitter *e, PyObject *o, int depth);

static int emit_sequence(struct emitter *e, PyObject *seq, int depth)
{
    if (emit(e, "[", 1) < 0)
        return -1;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    PyObject **items = PySequence_Fast_ITEMS(seq);
    for (Py_ssize_t i = 0; i < n; i++) {
        if ((i && emit(e, ",", 1) < 0) || emit_value(e, items[i], depth + 1) < 0)
            return -1;
        /* A list may be mutated by nothing here: no user code runs. */
    }
    return emit(e, "]", 1);
}

static int emit_dict(struct emitter *e, PyObject *d, int depth)
{
    if (emit(e, "{", 1) < 0)
        return -1;
    Py_ssize_t pos = 0;
    PyObject *k, *v;
    int first = 1;
    while (PyDict_Next(d, &pos, &k, &v)) {
        if (!PyUnicode_CheckExact(k))
            return emit_fail(e, PYCONV_UNSUPPORTED,
                             "dict keys must be strings, found a key of type %s",
                             Py_TYPE(k)->tp_name);
        if ((!first && emit(e, ",", 1) < 0) || emit_str(e, k) < 0 || emit(e, ":", 1) < 0 ||
            emit_value(e, v, depth + 1) < 0)
            return -1;
        first = 0;
    }
    return emit(e, "}", 1);
}

static int emit_value(struct emitter *e, PyObject *o, int depth)
{
    if (depth > PYCONV_MAX_DEPTH)
        return emit_fail(e, PYCONV_UNSUPPORTED, "%s",
                         "result nests deeper than 1000 levels (or contains itself)");
    if (o == Py_None)
        return emit(e, "null", 4);
    if (o == Py_True)
        return emit(e, "true", 4);
    if (o == Py_False)
        return emit(e, "false", 5);
    /* Exact types only: subclasses could run user code while we serialise. */
    if (PyLong_CheckExact(o))
        return emit_int(e, o);
    if (PyFloat_CheckExact(o))
        return emit_float(e, o);
    if (PyUnicode_CheckExact(o))
        return emit_str(e, o);
    if (PyList_CheckExact(o) || PyTuple_CheckExact(o))
        return emit_sequence(e, o, depth);
    if (PyDict_CheckExact(o))
        return emit_dict(e, o, depth);
    return emit_fail(e, PYCONV_UNSUPPORTED, "values of type %s cannot be returned as JSON",
                     Py_TYPE(o)->tp_name);
}

enum pyconv_status pyconv_to_json(PyObject *obj, char *buf, size_t cap, size_t *len,
                                  char *why, size_t whylen)
{
    struct emitter e = { buf, cap, 0, why, whylen, PYCONV_OK };
    why[0] = '\0';
    if (cap)
        buf[0] = '\0';
    if (emit_value(&e, obj, 0) < 0) {
        PyErr_Clear();
        return e.status;
    }
    *len = e.len;
    return PYCONV_OK;
}

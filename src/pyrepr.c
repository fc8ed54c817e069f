/* CPython's default reprs print heap addresses ("<function f at
 * 0x7f...>"), which a snippet could return, print or raise: a gift to anyone
 * mapping the worker's memory, and noise in every answer.  These replace the
 * few type slots that print %p; everything else is CPython's own. */
#include "pyrepr.h"

#include <Python.h>

/* "<map object>", "<RestrictedPython.Guards.Wrapper object>" */
static PyObject *object_repr(PyObject *self)
{
    PyTypeObject *type = Py_TYPE(self);
    PyObject *mod = PyObject_GetAttrString((PyObject *)type, "__module__");
    PyObject *qual = mod ? PyType_GetQualName(type) : NULL;
    PyErr_Clear();
    PyObject *r;
    if (qual && PyUnicode_Check(mod) && PyUnicode_CompareWithASCIIString(mod, "builtins") != 0)
        r = PyUnicode_FromFormat("<%U.%U object>", mod, qual);
    else
        r = PyUnicode_FromFormat("<%s object>", type->tp_name);
    Py_XDECREF(qual);
    Py_XDECREF(mod);
    return r;
}

/* "<function f>", "<function <lambda>>" */
static PyObject *function_repr(PyObject *self)
{
    return PyUnicode_FromFormat("<function %U>", ((PyFunctionObject *)self)->func_qualname);
}

/* "<generator object <genexpr>>", and the same for coroutines and
 * asynchronous generators. */
static PyObject *generator_repr(PyObject *self)
{
    PyObject *qual = PyObject_GetAttrString(self, "__qualname__");
    if (!qual)
        return NULL;
    PyObject *r = PyUnicode_FromFormat("<%s object %S>", Py_TYPE(self)->tp_name, qual);
    Py_DECREF(qual);
    return r;
}

/* "<built-in function len>", "<built-in method get of dict object>" */
static PyObject *builtin_repr(PyObject *self)
{
    PyObject *bound = PyCFunction_GET_SELF(self);
    const char *name = ((PyCFunctionObject *)self)->m_ml->ml_name;
    if (!bound || PyModule_Check(bound))
        return PyUnicode_FromFormat("<built-in function %s>", name);
    return PyUnicode_FromFormat("<built-in method %s of %s object>", name,
                                Py_TYPE(bound)->tp_name);
}

void pyrepr_install(void)
{
    PyBaseObject_Type.tp_repr = object_repr;
    PyFunction_Type.tp_repr = function_repr;
    PyGen_Type.tp_repr = generator_repr;
    PyCoro_Type.tp_repr = generator_repr;
    PyAsyncGen_Type.tp_repr = generator_repr;
    PyCFunction_Type.tp_repr = builtin_repr;
}

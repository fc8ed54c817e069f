/* The interpreter of the Python-side fuzz harnesses: isolated, like the
 * worker's, with the malloc allocator so that ASan sees every object. */
#ifndef PYEXEC_FUZZ_PYTHON_H
#define PYEXEC_FUZZ_PYTHON_H

#include <Python.h>
#include <stdio.h>
#include <stdlib.h>

static void fuzz_python_die(const char *harness, const char *what, PyStatus st)
{
    fprintf(stderr, "%s: %s: %s\n", harness, what, st.err_msg ? st.err_msg : "failed");
    abort();
}

/* Start Python, run helpers_py, and return one new reference to each of the
 * n functions it defines under names[i] (in fns[i]); aborts on failure. */
static void fuzz_python_start(const char *harness, const char *helpers_py,
                              const char *const *names, PyObject **fns, size_t n)
{
    PyPreConfig pre;
    PyPreConfig_InitIsolatedConfig(&pre);
    pre.allocator = PYMEM_ALLOCATOR_MALLOC;
    PyStatus st = Py_PreInitialize(&pre);
    if (PyStatus_Exception(st))
        fuzz_python_die(harness, "Py_PreInitialize", st);
    PyConfig c;
    PyConfig_InitIsolatedConfig(&c);
    c.site_import = 0;
    c.write_bytecode = 0;
    c.install_signal_handlers = 0;
    c.parse_argv = 0;
    c.configure_c_stdio = 0;
    st = Py_InitializeFromConfig(&c);
    PyConfig_Clear(&c);
    if (PyStatus_Exception(st))
        fuzz_python_die(harness, "Py_InitializeFromConfig", st);
    PyObject *globals = PyDict_New();
    PyObject *done = globals ? PyRun_String(helpers_py, Py_file_input, globals, globals) : NULL;
    int ok = done != NULL;
    Py_XDECREF(done);
    for (size_t i = 0; i < n; i++) {
        fns[i] = ok ? PyDict_GetItemString(globals, names[i]) : NULL;
        Py_XINCREF(fns[i]);
        ok = ok && fns[i];
    }
    Py_XDECREF(globals);
    if (!ok) {
        fprintf(stderr, "%s: the helper functions did not load\n", harness);
        PyErr_Print();
        abort();
    }
}

#endif

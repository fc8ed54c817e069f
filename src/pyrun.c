/* The interpreter runs in the worker only.  Its configuration is isolated
 * (no site, no user site, no PYTHON* variables, no bytecode writing) and its
 * module path is exactly the system stdlib plus Debian's dist-packages. */
#include "pyrun.h"

#include <Python.h>
#include <limits.h>
#include <signal.h>
#include <marshal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "memlimit.h"
#include "pyconv.h"
#include "policy_py.h"
#include "pyrepr.h"
#include "utf8cut.h"

#define STR_(x) #x
#define STR(x) STR_(x)
#define PYVER STR(PY_MAJOR_VERSION) "." STR(PY_MINOR_VERSION)
#define MEMORY_REPORT_HEADROOM (8u << 20)

static const wchar_t *const SEARCH_PATH[] = {
    L"/usr/lib/python" PYVER,
    L"/usr/lib/python" PYVER "/lib-dynload",
    L"/usr/lib/python3/dist-packages",
};

static struct report *current;      /* for the print sink */
static PyObject *fn_compile, *fn_run, *fn_describe;

static void report_internal(struct report *r, const char *what)
{
    r->state = REPORT_INTERNAL;
    snprintf(r->err_type, sizeof(r->err_type), "InternalError");
    report_messagef(r, "%s", what);
}

/* _pyexec.write(text): append to the shared output; past the cap, keep what
 * fits and end the worker at once (no handler in the snippet can stop it). */
static PyObject *sink_write(PyObject *self, PyObject *arg)
{
    (void)self;
    Py_ssize_t n;
    const char *s = PyUnicode_AsUTF8AndSize(arg, &n);
    if (!s)
        return NULL;
    struct report *r = current;
    size_t room = r->output_cap - r->output_len;
    if ((size_t)n > room) {
        size_t fit = utf8cut(s, (size_t)n, room);
        memcpy(report_output(r) + r->output_len, s, fit);
        r->output_len += fit;
        r->output_truncated = 1;
        r->state = REPORT_OUTPUT_LIMIT;
        _exit(0);
    }
    memcpy(report_output(r) + r->output_len, s, (size_t)n);
    r->output_len += (size_t)n;
    Py_RETURN_NONE;
}

/* sys.unraisablehook: an exception nobody can catch (a generator whose
 * finally raises, a failing __del__) is dropped, never written out. */
static PyObject *sink_discard(PyObject *self, PyObject *arg)
{
    (void)self;
    (void)arg;
    Py_RETURN_NONE;
}

static PyMethodDef SINK_METHODS[] = {
    { "write", sink_write, METH_O, "Append printed text to the response." },
    { "discard", sink_discard, METH_O, "Drop an unraisable exception." },
    { NULL, NULL, 0, NULL },
};
static struct PyModuleDef SINK_MODULE = {
    PyModuleDef_HEAD_INIT, "_pyexec", NULL, -1, SINK_METHODS, NULL, NULL, NULL, NULL,
};

static PyObject *sink_init(void)
{
    return PyModule_Create(&SINK_MODULE);
}

static int configure(PyConfig *c)
{
    PyConfig_InitIsolatedConfig(c);
    c->site_import = 0;
    c->user_site_directory = 0;
    c->write_bytecode = 0;
    c->install_signal_handlers = 0;
    c->pathconfig_warnings = 0;
    c->parse_argv = 0;
    c->configure_c_stdio = 0;
    c->buffered_stdio = 0;
    /* Warnings (SyntaxWarning at compile, ...) would only cost time: the
     * worker's stderr is /dev/null. */
    if (PyStatus_Exception(PyWideStringList_Append(&c->warnoptions, L"ignore")))
        return -1;
    c->module_search_paths_set = 1;
    for (size_t i = 0; i < sizeof(SEARCH_PATH) / sizeof(SEARCH_PATH[0]); i++)
        if (PyStatus_Exception(PyWideStringList_Append(&c->module_search_paths, SEARCH_PATH[i])))
            return -1;
    return 0;
}

/* The policy's code object: the bytecode compiled at build time when this
 * interpreter has the same bytecode magic, else compiled from source now. */
static PyObject *policy_code(void)
{
    PyObject *magic = PyLong_FromLong(PyImport_GetMagicNumber());
    long m = magic ? PyLong_AsLong(magic) : -1;
    Py_XDECREF(magic);
    unsigned long u = (unsigned long)m;   /* the magic's 4 bytes, little-endian */
    unsigned char bytes[4] = { (unsigned char)u, (unsigned char)(u >> 8),
                               (unsigned char)(u >> 16), (unsigned char)(u >> 24) };
    if (m != -1 && memcmp(bytes, POLICY_MAGIC, sizeof(bytes)) == 0) {
        PyObject *code = PyMarshal_ReadObjectFromString((const char *)POLICY_CODE,
                                                        (Py_ssize_t)sizeof(POLICY_CODE));
        if (code && PyCode_Check(code))
            return code;
        Py_XDECREF(code);
    }
    PyErr_Clear();
    return Py_CompileString(POLICY_PY, "<pyexec-policy>", Py_file_input);
}

/* Run the embedded policy as module "pyexec_policy". */
static int load_policy(void)
{
    PyObject *code = policy_code();
    PyObject *mod = code ? PyImport_ExecCodeModule("pyexec_policy", code) : NULL;
    Py_XDECREF(code);
    if (!mod)
        return -1;
    fn_compile = PyObject_GetAttrString(mod, "compile_code");
    fn_run = PyObject_GetAttrString(mod, "run");
    fn_describe = PyObject_GetAttrString(mod, "describe");
    Py_DECREF(mod);
    return fn_compile && fn_run && fn_describe ? 0 : -1;
}

static int silence_unraisable(void)
{
    PyObject *m = PyImport_ImportModule("_pyexec");
    PyObject *hook = m ? PyObject_GetAttrString(m, "discard") : NULL;
    int rc = hook ? PySys_SetObject("unraisablehook", hook) : -1;
    Py_XDECREF(hook);
    Py_XDECREF(m);
    return rc;
}

/* Why the start failed, into the report (the supervisor logs it, escaped):
 * the worker has no stderr to print a traceback on. */
static void report_load_error(struct report *r)
{
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyObject *text = value ? PyObject_Str(value) : NULL;
    const char *msg = text ? PyUnicode_AsUTF8(text) : NULL;
    PyErr_Clear();
    report_internal(r, "");
    snprintf(r->err_message, sizeof(r->err_message),
             "cannot load the policy or RestrictedPython (python3-restrictedpython >= 8.3): %s: %s",
             type ? ((PyTypeObject *)type)->tp_name : "?", msg ? msg : "?");
    Py_XDECREF(text);
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(tb);
}

int pyrun_start(struct report *r, const struct limits *lim)
{
    current = r;
    memlimit_install((size_t)lim->memory_mb << 20);
    if (PyImport_AppendInittab("_pyexec", sink_init) < 0) {
        report_internal(r, "cannot register the output module");
        return -1;
    }
    pyrepr_install();
    PyConfig c;
    if (configure(&c) < 0 || PyStatus_Exception(Py_InitializeFromConfig(&c))) {
        PyConfig_Clear(&c);
        report_internal(r, "the Python interpreter failed to start");
        return -1;
    }
    PyConfig_Clear(&c);
    report_stage(r, STAGE_PY_STARTED);
    if (load_policy() < 0 || silence_unraisable() < 0) {
        report_load_error(r);
        return -1;
    }
    report_stage(r, STAGE_POLICY_IMPORTED);
    return 0;
}

/* describe()'s (type, message, line) into r.  The message is taken with its
 * length: it may hold U+0000. */
static void take_description(struct report *r, PyObject *d)
{
    if (!d || !PyTuple_Check(d) || PyTuple_GET_SIZE(d) != 3)
        return;
    const char *name = PyUnicode_AsUTF8(PyTuple_GET_ITEM(d, 0));
    Py_ssize_t n = 0;
    const char *msg = PyUnicode_AsUTF8AndSize(PyTuple_GET_ITEM(d, 1), &n);
    long line = PyLong_AsLong(PyTuple_GET_ITEM(d, 2));
    if (!name || !msg || (line == -1 && PyErr_Occurred()))
        return;
    snprintf(r->err_type, sizeof(r->err_type), "%s", name);
    report_message(r, msg, (size_t)n);
    r->err_line = line > 0 && line <= INT_MAX ? (int)line : 0;
}

/* Describe the pending exception into r, in the snippet's terms. */
static void report_exception(struct report *r, const struct limits *lim)
{
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    if (value && tb)
        PyException_SetTraceback(value, tb);
    int oom = type && PyErr_GivenExceptionMatches(type, PyExc_MemoryError);
    if (oom)
        memlimit_relax(MEMORY_REPORT_HEADROOM);   /* room to describe it */
    r->state = REPORT_ERROR;
    snprintf(r->err_type, sizeof(r->err_type), "%s",
             type ? ((PyTypeObject *)type)->tp_name : "InternalError");
    PyObject *d = value ? PyObject_CallOneArg(fn_describe, value) : NULL;
    take_description(r, d);
    PyErr_Clear();
    if (oom) {
        snprintf(r->err_type, sizeof(r->err_type), "MemoryError");
        /* The parser also raises MemoryError (nesting too deep) far below
         * the limit: only then keep Python's own wording. */
        if (memlimit_refused())
            report_messagef(r, "memory limit of %ld MiB exceeded", lim->memory_mb);
        else if (!r->err_message_len)
            report_messagef(r, "out of memory below the limit (the code may nest too deeply to parse)");
    }
    Py_XDECREF(d);
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(tb);
}

static void report_value(struct report *r, PyObject *result)
{
    char why[256];
    size_t len = 0;
    switch (pyconv_to_json(result, report_result(r), r->result_cap + 1, &len, why, sizeof(why))) {
    case PYCONV_OK:
        r->result_len = len;
        r->state = REPORT_OK;
        return;
    case PYCONV_TOO_LARGE:
        r->state = REPORT_RESULT_TOO_LARGE;
        snprintf(r->err_type, sizeof(r->err_type), "ResultTooLarge");
        report_messagef(r, "result exceeds the limit of %zu bytes as JSON", r->result_cap);
        return;
    case PYCONV_UNSUPPORTED:
        r->state = REPORT_NOT_SERIALIZABLE;
        snprintf(r->err_type, sizeof(r->err_type), "ResultNotSerializable");
        report_messagef(r, "result: %s", why);
        return;
    case PYCONV_NOMEM:
        r->state = REPORT_ERROR;
        snprintf(r->err_type, sizeof(r->err_type), "MemoryError");
        report_messagef(r, "out of memory serialising the result");
        return;
    }
}

void pyrun_execute(struct report *r, const char *code, size_t code_len, const cJSON *data,
                   const struct limits *lim)
{
    PyObject *src = PyUnicode_DecodeUTF8(code, (Py_ssize_t)code_len, "strict");
    PyObject *pydata = src ? pyconv_from_json(data) : NULL;
    PyObject *compiled = pydata ? PyObject_CallOneArg(fn_compile, src) : NULL;
    report_stage(r, STAGE_COMPILED);
    PyObject *result = compiled ? PyObject_CallFunctionObjArgs(fn_run, compiled, pydata, NULL) : NULL;
    report_stage(r, STAGE_RAN);
    if (result)
        report_value(r, result);
    else
        report_exception(r, lim);
    report_stage(r, STAGE_SERIALISED);
    Py_XDECREF(result);
    Py_XDECREF(compiled);
    Py_XDECREF(pydata);
    Py_XDECREF(src);
}

__attribute__((visibility("default")))
int pyexec_python_main(struct report *r, const struct limits *lim, const char *code,
                       size_t code_len, const cJSON *data,
                       int (*lock_down)(char *why, size_t whylen))
{
    if (pyrun_start(r, lim) < 0)
        return 4;
    char why[256];
    if (lock_down(why, sizeof(why)) < 0) {
        report_internal(r, why);
        return 5;
    }
    report_stage(r, STAGE_LOCKED);
    /* A snippet can overflow CPython's C stack (deeply chained iterators):
     * the worker then just dies of SIGSEGV and the supervisor reports it.
     * Without this, a sanitizer build would print its own crash report. */
    signal(SIGSEGV, SIG_DFL);
    signal(SIGBUS, SIG_DFL);
    pyrun_execute(r, code, code_len, data, lim);
    return 0;
}

/* Address-free reprs for the worker's interpreter. */
#ifndef PYEXEC_PYREPR_H
#define PYEXEC_PYREPR_H

/* Before Py_Initialize: give objects, functions, generators and built-in
 * methods reprs without their heap address ("<function f>", "<map object>"),
 * so that no answer (result, output, error message) shows one.  Types
 * readied during start-up inherit the object repr. */
void pyrepr_install(void);

#endif

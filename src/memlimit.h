/* A memory limit for the embedded interpreter, enforced inside its allocator
 * so that exceeding it is a clean MemoryError (and works under ASan, where
 * RLIMIT_AS cannot be used). */
#ifndef PYEXEC_MEMLIMIT_H
#define PYEXEC_MEMLIMIT_H

#include <stddef.h>

/* Install the counting allocators; call before the interpreter starts. */
void memlimit_install(size_t limit_bytes);

/* Raise the limit by extra bytes: room to report a MemoryError. */
void memlimit_relax(size_t extra);

/* Bytes currently held by Python, and the peak so far. */
size_t memlimit_used(void);
size_t memlimit_peak(void);

/* How many allocations the limit refused so far. */
size_t memlimit_refused(void);

#endif

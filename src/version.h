/* The version pyexec and manage-keys print (--version).  The Makefile
 * defines it (git describe, or its fixed fallback); this is for builds
 * without it. */
#ifndef PYEXEC_VERSION_H
#define PYEXEC_VERSION_H

#ifndef PYEXEC_VERSION
#define PYEXEC_VERSION "unknown"
#endif

#endif

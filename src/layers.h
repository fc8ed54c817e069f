/* The OS sandbox's layers by name: what allow_missing_layers may list, what
 * a refusal and the log name. */
#ifndef PYEXEC_LAYERS_H
#define PYEXEC_LAYERS_H

#include <stddef.h>

/* In the order they are applied.  The namespaces and the identity are
 * pyexec's only when it starts as root (the unit provides them otherwise). */
enum layer {
    LAYER_NETNS, LAYER_IPCNS, LAYER_UTSNS, LAYER_MNTNS, LAYER_RLIMITS, LAYER_IDENTITY,
    LAYER_CAPABILITIES, LAYER_NO_NEW_PRIVS, LAYER_DUMPABLE, LAYER_TIMERS, LAYER_LANDLOCK,
    LAYER_SECCOMP, LAYER_COUNT
};

#define LAYER_BIT(l) (1u << (l))
#define LAYERS_ALL   (LAYER_BIT(LAYER_COUNT) - 1)

/* "landlock", ... */
const char *layer_name(int layer);

/* A comma- and/or space-separated list of names to a mask of LAYER_BITs.
 * 0, or -1 with the offending name in why. */
int layers_parse(const char *list, unsigned *mask, char *why, size_t whylen);

/* "-netns,-landlock" (each missing layer with a minus), "all" when none. */
void layers_format(unsigned missing, char *buf, size_t len);

/* "sandbox layer unavailable: landlock (Function not implemented)". */
void layers_refusal(char *buf, size_t len, int layer, int err);

#endif

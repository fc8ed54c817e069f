#include "layers.h"

#include <stdio.h>
#include <string.h>

static const char *const NAMES[LAYER_COUNT] = {
    [LAYER_NETNS] = "netns", [LAYER_IPCNS] = "ipcns", [LAYER_UTSNS] = "utsns",
    [LAYER_MNTNS] = "mntns", [LAYER_RLIMITS] = "rlimits", [LAYER_IDENTITY] = "identity",
    [LAYER_CAPABILITIES] = "capabilities", [LAYER_NO_NEW_PRIVS] = "no_new_privs",
    [LAYER_DUMPABLE] = "dumpable", [LAYER_TIMERS] = "timers", [LAYER_LANDLOCK] = "landlock",
    [LAYER_SECCOMP] = "seccomp",
};

const char *layer_name(int layer)
{
    return layer >= 0 && layer < LAYER_COUNT ? NAMES[layer] : "unknown";
}

int layers_parse(const char *list, unsigned *mask, char *why, size_t whylen)
{
    *mask = 0;
    const char *p = list;
    for (;;) {
        p += strspn(p, ", \t");
        size_t n = strcspn(p, ", \t");
        if (n == 0)
            return 0;
        int found = -1;
        for (int i = 0; i < LAYER_COUNT && found < 0; i++)
            if (strlen(NAMES[i]) == n && memcmp(NAMES[i], p, n) == 0)
                found = i;
        if (found < 0) {
            snprintf(why, whylen, "unknown sandbox layer \"%.*s\" in allow_missing_layers",
                     (int)(n > 40 ? 40 : n), p);
            return -1;
        }
        *mask |= LAYER_BIT(found);
        p += n;
    }
}

void layers_format(unsigned missing, char *buf, size_t len)
{
    size_t at = 0;
    buf[0] = '\0';
    for (int i = 0; i < LAYER_COUNT; i++) {
        if (!(missing & LAYER_BIT(i)))
            continue;
        int n = snprintf(buf + at, len - at, "%s-%s", at ? "," : "", NAMES[i]);
        if (n < 0 || (size_t)n >= len - at)
            break;
        at += (size_t)n;
    }
    if (!at)
        snprintf(buf, len, "all");
}

void layers_refusal(char *buf, size_t len, int layer, int err)
{
    snprintf(buf, len, "sandbox layer unavailable: %s (%s)", layer_name(layer), strerror(err));
}

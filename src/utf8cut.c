#include "utf8cut.h"

size_t utf8cut(const char *s, size_t n, size_t cap)
{
    if (n <= cap)
        return n;
    /* s[cap] exists: step back over continuation bytes (at most three in
     * valid UTF-8) to the lead byte of the character the cut would split. */
    size_t i = cap;
    while (i > 0 && cap - i < 3 && ((unsigned char)s[i] & 0xC0) == 0x80)
        i--;
    return ((unsigned char)s[i] & 0xC0) == 0x80 ? cap : i;
}

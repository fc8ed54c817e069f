/* What cJSON does not do by itself: exact number literals and strings with NUL. */
#ifndef PYEXEC_JSONEXT_H
#define PYEXEC_JSONEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <cJSON.h>

/* Parse text (len bytes) with cJSON, then give each number node its literal
 * text in valuestring (freed by cJSON_Delete), so integers of any size stay
 * exact.  Rejects what cJSON would silently mangle: raw control characters
 * and \u0000 in strings.  NULL with *err set on failure. */
cJSON *jsonext_parse(const char *text, size_t len, const char **err);

/* A JSON string node for len bytes of UTF-8 that may contain NUL bytes
 * (cJSON's own strings stop at the first NUL).  NULL on allocation failure. */
cJSON *jsonext_string(const char *s, size_t len);

/* Set *dup to a member whose name repeats another in the same object,
 * anywhere in the tree under (and after) node.  0, or -1 out of memory. */
int jsonext_find_duplicate(const cJSON *node, const cJSON **dup);

/* How many bytes of s, at most max, to print ("%.*s") without splitting a
 * UTF-8 character. */
int jsonext_utf8_prefix(const char *s, size_t max);

/* Is the number literal of node (from jsonext_parse) an integer? */
bool jsonext_is_integer(const cJSON *node);

#endif

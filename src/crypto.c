/* Hashing, randomness and constant-time comparison: thin wrappers over
 * libsodium so that no primitive is hand-written here.  (libsodium rather
 * than libcrypto: it costs ~0.2 ms per process to load and initialise against
 * ~4 ms for OpenSSL's provider machinery, and every connection is a process.) */
#include "crypto.h"

#include <sodium.h>

static int ready(void)
{
    static int state;   /* 0 untried, 1 ready, -1 failed */
    if (state == 0)
        state = sodium_init() >= 0 ? 1 : -1;
    return state > 0;
}

int crypto_sha256(const void *data, size_t len, unsigned char out[SHA256_LEN])
{
    if (!ready() || (data == NULL && len > 0))
        return -1;
    return crypto_hash_sha256(out, len > 0 ? data : (const void *)"", len) == 0 ? 0 : -1;
}

int crypto_random(void *buf, size_t len)
{
    if (!ready())
        return -1;
    randombytes_buf(buf, len);
    return 0;
}

bool crypto_equal(const void *a, const void *b, size_t len)
{
    return sodium_memcmp(a, b, len) == 0;
}

void crypto_wipe(void *buf, size_t len)
{
    sodium_memzero(buf, len);
}

void crypto_hex(const unsigned char *in, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";

    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 0x0f];
    }
    out[2 * len] = '\0';
}

/* The value of one hex digit, or -1. */
static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int crypto_unhex(const char *hex, unsigned char *out, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        /* Stops at a NUL too, since '\0' is not a hex digit. */
        int hi = hex_value(hex[2 * i]);
        int lo = hi < 0 ? -1 : hex_value(hex[2 * i + 1]);

        if (lo < 0)
            return -1;
        out[i] = (unsigned char)(hi << 4 | lo);
    }
    return 0;
}

/* Hashing, randomness and constant-time comparison: thin wrappers over
 * libcrypto so that no primitive is hand-written here. */
#include "crypto.h"

#include <limits.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

int crypto_sha256(const void *data, size_t len, unsigned char out[SHA256_LEN])
{
    unsigned int out_len = 0;

    if (data == NULL && len > 0)
        return -1;
    /* EVP_Digest rejects a NULL pointer even for zero bytes. */
    if (!EVP_Digest(len > 0 ? data : "", len, out, &out_len, EVP_sha256(), NULL))
        return -1;
    return out_len == SHA256_LEN ? 0 : -1;
}

int crypto_random(void *buf, size_t len)
{
    if (len > INT_MAX)  /* RAND_bytes takes an int */
        return -1;
    return RAND_bytes(buf, (int)len) == 1 ? 0 : -1;
}

bool crypto_equal(const void *a, const void *b, size_t len)
{
    return CRYPTO_memcmp(a, b, len) == 0;
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

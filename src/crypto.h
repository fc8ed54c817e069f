/* Hashing, randomness and constant-time comparison, all from libsodium. */
#ifndef PYEXEC_CRYPTO_H
#define PYEXEC_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>

#define SHA256_LEN 32

/* SHA-256 of len bytes at data into out[SHA256_LEN]; 0 or -1. */
int crypto_sha256(const void *data, size_t len, unsigned char out[SHA256_LEN]);

/* Fill buf with len bytes from the OS random source; 0 or -1. */
int crypto_random(void *buf, size_t len);

/* True when the two len-byte buffers are equal; time does not depend on content. */
bool crypto_equal(const void *a, const void *b, size_t len);

/* Zero len bytes in a way the compiler cannot optimise away. */
void crypto_wipe(void *buf, size_t len);

/* Lower-case hex of len bytes into out (2*len+1 bytes, NUL-terminated). */
void crypto_hex(const unsigned char *in, size_t len, char *out);

/* Parse exactly 2*len hex digits; 0 or -1. */
int crypto_unhex(const char *hex, unsigned char *out, size_t len);

#endif

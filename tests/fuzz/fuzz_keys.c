/* libFuzzer harness: the API keys file parser (src/keys.c over src/crypto.c).
 *
 * Per input: keys_parse() on exactly the input's bytes (its contract: need
 * not be NUL-terminated), then keys_authenticate() with two fixed keys and
 * an empty one, then keys_free().  The seed corpus has files whose entries
 * hash FIXED_KEY (active) and FIXED_KEY_REVOKED (revoked), so the match path
 * is exercised from the start.
 *
 * Checked beyond the sanitizers: a refused file leaves an empty ring and a
 * message; an accepted one has every required field valid, unique ids and
 * hashes; authentication only ever returns an active entry of the ring whose
 * hash is SHA-256 of the key. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "keys.h"

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "check failed: %s (%s:%d)\n", \
                                          #c, __FILE__, __LINE__); __builtin_trap(); } } while (0)

/* The seeds' "hash" fields for these are computed by tests/fuzz/make_seeds.py. */
#define FIXED_KEY         "sk_test_000102030405060708090a0b0c0d0e0f1011121314151617"
#define FIXED_KEY_REVOKED "sk_prod_ffeeddccbbaa99887766554433221100ffeeddccbbaa9988"

static void check_auth(const struct keyring *ring, const char *key)
{
    const struct key_entry *k = keys_authenticate(ring, key, strlen(key));
    if (!k)
        return;
    CHECK(k >= ring->entries && k < ring->entries + ring->count);
    CHECK(k->revoked_at == NULL);
    unsigned char h[SHA256_LEN];
    CHECK(crypto_sha256(key, strlen(key), h) == 0);
    CHECK(memcmp(h, k->hash, SHA256_LEN) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size ? size : 1);
    if (!text)
        return 0;
    memcpy(text, data, size);

    struct keyring ring;
    memset(&ring, 0xA5, sizeof(ring));   /* keys_parse must initialise it */
    const char *err = NULL;
    enum keys_status st = keys_parse(text, size, &ring, &err);
    free(text);

    if (st != KEYS_OK) {
        CHECK(st == KEYS_CORRUPT || st == KEYS_NOMEM);
        CHECK(err && *err);
        CHECK(ring.entries == NULL && ring.count == 0);
    } else {
        CHECK(ring.count == 0 || ring.entries != NULL);
        for (size_t i = 0; i < ring.count; i++) {
            const struct key_entry *e = &ring.entries[i];
            CHECK(e->id && e->name && e->description && e->env && e->created && e->prefix);
            CHECK(strlen(e->id) == 20 && strncmp(e->id, "key_", 4) == 0);
            CHECK(strcmp(e->env, "test") == 0 || strcmp(e->env, "prod") == 0);
            CHECK(e->name[0] && e->created[0] && e->prefix[0]);
            CHECK(!e->revoked_at || e->revoked_at[0]);
            CHECK((e->scopes & ~(KEY_SCOPE_EXECUTE | KEY_SCOPE_ADMIN)) == 0);
            CHECK(e->concurrency >= 0 && e->concurrency <= 10000);
            CHECK(e->rate_limit == 0 || (e->rate_limit >= 1 && e->rate_window_s >= 1));
            for (size_t j = 0; j < i && ring.count <= 64; j++) {
                CHECK(strcmp(e->id, ring.entries[j].id) != 0);
                CHECK(memcmp(e->hash, ring.entries[j].hash, SHA256_LEN) != 0);
            }
        }
    }
    check_auth(&ring, FIXED_KEY);
    check_auth(&ring, FIXED_KEY_REVOKED);
    CHECK(keys_authenticate(&ring, "", 0) == NULL);
    keys_free(&ring);
    CHECK(ring.entries == NULL && ring.count == 0);
    /* keys_free on an empty ring, twice, is fine too. */
    keys_free(&ring);
    return 0;
}

/* Locked, atomic rewriting of the API keys file, for manage-keys only (pyexec
 * only ever reads the file, with keys_load).  One read-modify-write:
 *
 *     struct keystore ks;
 *     if (keystore_open(&ks, path) == 0) {
 *         ... change ks.keys (cJSON), using ks.ring to find entries ...
 *         keystore_commit(&ks);
 *     }
 *     ... report ks.err if either failed ...
 *     keystore_close(&ks);
 *
 * Concurrent writers are serialised by an exclusive flock on "<path>.lock",
 * held from keystore_open to keystore_close.  The file is replaced by
 * rename(2) from a fsync'd temporary file in the same directory, so a reader
 * or a crash sees the old file or the new one, never a mix. */
#ifndef PYEXEC_KEYSTORE_H
#define PYEXEC_KEYSTORE_H

#include <stdbool.h>
#include <sys/types.h>

#include <cJSON.h>

#include "keys.h"

struct keystore {
    char *path;            /* the keys file */
    int lock_fd;           /* holds the flock on "<path>.lock"; -1 if none */
    cJSON *doc;            /* the whole document: unknown fields survive */
    cJSON *keys;           /* doc's "keys" array, to be changed in place */
    struct keyring ring;   /* the same entries parsed and checked, same order */
    bool exists;           /* false: there was no file at open, doc started empty */
    mode_t mode;           /* mode, owner and group for the rewritten file */
    uid_t uid;
    gid_t gid;
    char err[1024];        /* why the last call failed */
};

/* Take the lock, then read and check the file (a missing file gives an empty
 * document).  A corrupt file is refused, never to be overwritten.  0, or -1
 * with ks->err set; call keystore_close either way. */
int keystore_open(struct keystore *ks, const char *path);

/* Check the changed document as pyexec would read it, then atomically
 * replace the file with it and refresh ks->ring.  0, or -1 with ks->err set
 * (the old file is then still in place, except where ks->err says so). */
int keystore_commit(struct keystore *ks);

/* Free everything and release the lock. */
void keystore_close(struct keystore *ks);

#endif

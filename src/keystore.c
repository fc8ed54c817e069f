/* Locked, atomic rewriting of the API keys file (see keystore.h).  The rule
 * that matters: the keys file is only ever replaced whole, by rename(2), and
 * only with a document that keys_parse accepts, so pyexec never reads a
 * half-written or invalid file whatever happens to manage-keys. */
#include "keystore.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define LOCK_SUFFIX ".lock"
#define TEMP_SUFFIX ".tmp."
#define TEMP_XS     "XXXXXX"
#define EMPTY_DOC   "{\"version\": 1, \"keys\": []}"

__attribute__((format(printf, 2, 3)))
static int set_err(struct keystore *ks, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(ks->err, sizeof ks->err, fmt, ap);
    va_end(ap);
    return -1;
}

/* path + suffix in a new string, or NULL. */
static char *concat(const char *path, const char *suffix)
{
    char *s;

    return asprintf(&s, "%s%s", path, suffix) < 0 ? NULL : s;
}

/* The directory holding path, as a new string, or NULL. */
static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');

    if (slash == NULL)
        return strdup(".");
    if (slash == path)
        return strdup("/");
    return strndup(path, (size_t)(slash - path));
}

/* ---- opening ---------------------------------------------------------- */

/* The lock lives in its own file, never renamed or deleted, so that every
 * writer locks the same inode even while the keys file itself is replaced. */
static int take_lock(struct keystore *ks)
{
    char *lock = concat(ks->path, LOCK_SUFFIX);
    int e;

    if (lock == NULL)
        return set_err(ks, "out of memory");
    ks->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (ks->lock_fd < 0) {
        e = errno;
        set_err(ks, "cannot open the lock file %s: %s", lock, strerror(e));
        free(lock);
        return -1;
    }
    while (flock(ks->lock_fd, LOCK_EX) != 0) {
        if (errno != EINTR) {
            e = errno;
            set_err(ks, "cannot lock %s: %s", lock, strerror(e));
            free(lock);
            return -1;
        }
    }
    free(lock);
    return 0;
}

/* Only a lock holder creates temporary files and we hold the lock, so any
 * left are from a writer that was killed: remove them.  Best effort: one
 * left behind is harmless, so failures here are ignored. */
static void remove_stale_temps(const struct keystore *ks)
{
    const char *slash = strrchr(ks->path, '/');
    char *dir = dir_of(ks->path);
    char *prefix = concat(slash != NULL ? slash + 1 : ks->path, TEMP_SUFFIX);
    DIR *d = dir != NULL ? opendir(dir) : NULL;
    const struct dirent *de;
    size_t plen = prefix != NULL ? strlen(prefix) : 0;

    while (d != NULL && prefix != NULL && (de = readdir(d)) != NULL) {
        if (strncmp(de->d_name, prefix, plen) == 0 &&
            strlen(de->d_name) == plen + strlen(TEMP_XS))
            unlinkat(dirfd(d), de->d_name, 0);
    }
    if (d != NULL)
        closedir(d);
    free(prefix);
    free(dir);
}

/* A symlink would be replaced by a plain file on rename: refuse instead of
 * silently changing how the deployment is laid out. */
static int check_not_symlink(struct keystore *ks)
{
    struct stat st;

    if (lstat(ks->path, &st) == 0 && S_ISLNK(st.st_mode))
        return set_err(ks, "%s is a symbolic link; give its target with --keys", ks->path);
    return 0;
}

static int start_empty(struct keystore *ks)
{
    ks->doc = cJSON_Parse(EMPTY_DOC);
    if (ks->doc == NULL)
        return set_err(ks, "out of memory");
    ks->keys = cJSON_GetObjectItemCaseSensitive(ks->doc, "keys");
    ks->exists = false;
    ks->mode = 0600;
    return 0;
}

/* Explain a file that cannot be used and how to get out of it. */
static int refuse(struct keystore *ks, enum keys_status st, const char *why)
{
    if (st == KEYS_CORRUPT)
        return set_err(ks,
                       "%s is not a valid keys file: %s\n"
                       "It was left unchanged.  Repair it by hand, restore it from a backup,\n"
                       "or move it aside (mv %s %s.bad) to start an empty one, which\n"
                       "disables every key it held.",
                       ks->path, why, ks->path, ks->path);
    if (st == KEYS_NOMEM)
        return set_err(ks, "out of memory");
    return set_err(ks, "%s: %s", ks->path, why);
}

/* The rewritten file keeps the current one's mode, owner and group, so that
 * pyexec's user can still read it after root runs manage-keys. */
static int remember_owner(struct keystore *ks)
{
    struct stat st;

    if (stat(ks->path, &st) != 0)
        return set_err(ks, "cannot stat %s: %s", ks->path, strerror(errno));
    ks->mode = st.st_mode & 07777;
    ks->uid = st.st_uid;
    ks->gid = st.st_gid;
    return 0;
}

/* Read and check the file, then keep its tree too.  It is parsed twice
 * (checked by keys_parse, kept by cJSON) so that the check is exactly the
 * one pyexec applies; only manage-keys pays for it. */
static int load(struct keystore *ks)
{
    const char *why = NULL;
    char *text;
    size_t len;
    enum keys_status st = keys_read_file(ks->path, &text, &len, &why);

    if (st == KEYS_MISSING)
        return start_empty(ks);
    if (st != KEYS_OK)
        return refuse(ks, st, why);
    st = keys_parse(text, len, &ks->ring, &why);
    if (st == KEYS_OK) {
        ks->doc = cJSON_ParseWithLength(text, len);
        if (ks->doc == NULL)
            st = KEYS_NOMEM;
    }
    free(text);
    if (st != KEYS_OK)
        return refuse(ks, st, why);
    ks->keys = cJSON_GetObjectItemCaseSensitive(ks->doc, "keys");
    ks->exists = true;
    return remember_owner(ks);
}

int keystore_open(struct keystore *ks, const char *path)
{
    memset(ks, 0, sizeof *ks);
    ks->lock_fd = -1;
    ks->path = strdup(path);
    if (ks->path == NULL)
        return set_err(ks, "out of memory");
    if (take_lock(ks) != 0)
        return -1;
    remove_stale_temps(ks);
    if (check_not_symlink(ks) != 0)
        return -1;
    return load(ks);
}

/* ---- committing ------------------------------------------------------- */

/* The document as text (with a final newline), checked exactly as pyexec
 * will check it; the parsed result replaces ks->ring. */
static char *render(struct keystore *ks, size_t *len)
{
    struct keyring check;
    const char *why = NULL;
    char *body = cJSON_Print(ks->doc), *text;
    enum keys_status st;

    text = body != NULL ? concat(body, "\n") : NULL;
    free(body);
    if (text == NULL) {
        set_err(ks, "out of memory");
        return NULL;
    }
    *len = strlen(text);
    st = keys_parse(text, *len, &check, &why);
    if (st != KEYS_OK || *len > KEYS_MAX_SIZE) {
        set_err(ks, "refusing to write an invalid keys file: %s",
                st != KEYS_OK ? why : "larger than 16 MiB");
        keys_free(&check);
        free(text);
        return NULL;
    }
    keys_free(&ks->ring);
    ks->ring = check;
    return text;
}

static int write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Owner first: chown may clear mode bits that chmod then sets. */
static int set_owner_and_mode(const struct keystore *ks, int fd)
{
    struct stat st;

    if (ks->exists) {
        if (fstat(fd, &st) != 0)
            return -1;
        if ((st.st_uid != ks->uid || st.st_gid != ks->gid) &&
            fchown(fd, ks->uid, ks->gid) != 0)
            return -1;
    }
    return fchmod(fd, ks->mode);
}

/* Write text to a new temporary file next to the keys file and make it
 * durable; on success *tmp names it, on failure nothing is left behind. */
static int write_temp(struct keystore *ks, const char *text, size_t len, char **tmp)
{
    int fd, e;

    *tmp = concat(ks->path, TEMP_SUFFIX TEMP_XS);
    if (*tmp == NULL)
        return set_err(ks, "out of memory");
    fd = mkostemp(*tmp, O_CLOEXEC);  /* mode 0600 until set_owner_and_mode */
    if (fd < 0) {
        e = errno;
        set_err(ks, "cannot create a temporary file %s: %s", *tmp, strerror(e));
        free(*tmp);
        *tmp = NULL;
        return -1;
    }
    if (set_owner_and_mode(ks, fd) != 0 || write_all(fd, text, len) != 0 || fsync(fd) != 0) {
        e = errno;
        close(fd);
    } else {
        e = close(fd) != 0 ? errno : 0;
    }
    if (e != 0) {
        set_err(ks, "cannot write %s: %s", *tmp, strerror(e));
        unlink(*tmp);
        free(*tmp);
        *tmp = NULL;
        return -1;
    }
    return 0;
}

/* Make the rename itself durable. */
static int sync_dir(struct keystore *ks)
{
    char *dir = dir_of(ks->path);
    int fd, e = 0;

    if (dir == NULL)
        return set_err(ks, "out of memory");
    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || fsync(fd) != 0)
        e = errno;
    if (fd >= 0)
        close(fd);
    if (e != 0)
        set_err(ks, "%s was replaced, but syncing %s failed (%s): the change may not "
                "survive a crash", ks->path, dir, strerror(e));
    free(dir);
    return e != 0 ? -1 : 0;
}

int keystore_commit(struct keystore *ks)
{
    size_t len;
    char *tmp = NULL, *text;

    if (ks->lock_fd < 0 || ks->doc == NULL)
        return set_err(ks, "keystore_commit without a successful keystore_open");
    text = render(ks, &len);
    if (text == NULL)
        return -1;
    if (write_temp(ks, text, len, &tmp) != 0) {
        free(text);
        return -1;
    }
    free(text);
    if (rename(tmp, ks->path) != 0) {
        int e = errno;

        set_err(ks, "cannot rename %s to %s: %s", tmp, ks->path, strerror(e));
        unlink(tmp);
        free(tmp);
        return -1;
    }
    free(tmp);
    return sync_dir(ks);
}

void keystore_close(struct keystore *ks)
{
    cJSON_Delete(ks->doc);
    ks->doc = NULL;
    ks->keys = NULL;
    keys_free(&ks->ring);
    free(ks->path);
    ks->path = NULL;
    if (ks->lock_fd >= 0)
        close(ks->lock_fd);  /* releases the flock */
    ks->lock_fd = -1;
}

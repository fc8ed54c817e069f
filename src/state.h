/* Shared state of many short-lived processes: per-client rate windows,
 * concurrency slots and usage counters, in the state directory.
 *
 * One file per client, <state>/clients/<key id>.usage, holds a fixed-size
 * record updated under an open-file-description (OFD) write lock, so
 * concurrent processes never lose a count.  Concurrency slots are OFD locks on
 * single bytes far past the record (<state>/global.slots for the server-wide
 * cap): the kernel releases them when the holder exits, however it exits, so
 * a killed process can never leak a slot. */
#ifndef PYEXEC_STATE_H
#define PYEXEC_STATE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define STATE_DEFAULT_DIR "/var/lib/pyexec"
#define USAGE_MAGIC   0x50594558u   /* "PYEX" */
#define USAGE_VERSION 1u

struct usage {
    uint32_t magic, version;
    int64_t window_start;      /* unix seconds; 0 = no window yet */
    uint64_t window_count;
    uint64_t requests;         /* admitted to execution */
    uint64_t successes;
    uint64_t user_errors;      /* the snippet raised, or its result was refused */
    uint64_t timeouts;
    uint64_t memory_errors;
    uint64_t output_limits;
    uint64_t internal_errors;
    uint64_t rate_limited;     /* 429 for the rate */
    uint64_t concurrency_limited;
    uint64_t cpu_ms, wall_ms;
    /* Added later: a record written before them is shorter, and reads as
     * zeroes here.  With the outcome counters above they sum to requests. */
    uint64_t refused;          /* 4xx after admission: bad body, content type... */
    uint64_t client_gone;      /* the client left before its answer was written */
};

/* The size of a record written before refused and client_gone existed. */
#define USAGE_V1_SIZE offsetof(struct usage, refused)

/* $PYEXEC_STATE or the default. */
const char *state_dir(void);

/* Take one of n slots of the file at path (created if needed); the slot is
 * held until *fd is closed or the process ends.  1 taken, 0 all busy, -1
 * error (errno). */
int state_take_slot(const char *path, long n, int *fd);

struct client_state {
    int fd;                    /* the client's usage file, -1 when closed */
    struct usage u;            /* as of the last read */
};

/* Open (creating) the client's usage file. 0 or -1 (errno). */
int state_open_client(struct client_state *cs, const char *id);

/* Count one request in the client's rate window.  1 admitted, 0 over the
 * limit (counted as rate_limited), -1 error.  *remaining and *reset_s are set
 * for the rate-limit headers either way. */
int state_rate_admit(struct client_state *cs, long limit, long window_s, long *remaining,
                     long *reset_s);

/* Add to the counters under the lock: field is the offset of one uint64_t
 * counter in struct usage; cpu_ms and wall_ms are added too. */
int state_count(struct client_state *cs, size_t field, long cpu_ms, long wall_ms);

/* Move one count from one counter to another (offsets as for state_count),
 * e.g. when the answer to a counted outcome could not be delivered. */
int state_move(struct client_state *cs, size_t from, size_t to);

void state_close_client(struct client_state *cs);

/* Read a client's record without changing it (for usage reports). 0, or -1
 * (errno; ENOENT when the client never made a request). */
int state_read_usage(const char *dir, const char *id, struct usage *u);

#endif

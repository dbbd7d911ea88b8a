/* queue_spool: the durable accept path (design.md §4 "Durability").
 *
 *   queue_spool_open    create <data_dir>/spool/tmp/<id>.tmp           (worker thread)
 *   queue_spool_write   append bytes                                   (worker thread)
 *   queue_spool_commit  fsync file, rename into blobs/, fsync the directory, then ONE transaction
 *                       inserting the blob, message and queue_rcpt rows (worker thread)
 *   queue_spool_abort   close and unlink the temporary file
 *
 * The SMTP server answers 250 only after queue_spool_commit returned QUEUE_COMMIT_OK. Any failure
 * removes the partial message (tmp file or renamed blob) and is answered with a 451. */
#ifndef GANNET_QUEUE_SPOOL_H
#define GANNET_QUEUE_SPOOL_H
#include <limits.h>
#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "policy/policy.h"
#include "queue/queue.h"

struct queue_spool_file {
    char id[QUEUE_ID_MAX];
    char tmp_path[PATH_MAX];
    int fd;
    uint64_t written;
};

struct queue_envelope {
    const char *sender; /* "" = null sender */
    const struct policy_recipient *rcpts;
    size_t rcpts_count;
    const char *client_ip;
    const char *helo;
    const char *auth_user; /* "" when not authenticated */
    time_t received_at;
};

enum queue_commit_result {
    QUEUE_COMMIT_OK = 0,
    QUEUE_COMMIT_SPOOL_FAILED, /* bytes could not be made durable: 451 Rejected - No data saved. */
    QUEUE_COMMIT_DB_FAILED,    /* 451 Your message was received but it could not be saved... */
};

/* id must already be set (queue_id_new) so the Received header can name it. fd = -1 on error. */
int queue_spool_open(const char *data_dir, struct queue_spool_file *f, const char **err_r);
int queue_spool_write(struct queue_spool_file *f, const void *p, size_t n, const char **err_r);
void queue_spool_abort(struct queue_spool_file *f);
enum queue_commit_result queue_spool_commit(sqlite3 *db, const char *data_dir,
                                            struct queue_spool_file *f,
                                            const struct queue_envelope *env,
                                            int64_t *message_id_r, const char **err_r);

/* Group commit (design.md §4: several sessions share one barrier, none is answered before its own
 * bytes are covered):
 *   queue_spool_seal          per message, on any worker: fsync the file, rename it into
 *                             blobs/XX/ (blob_path receives the final path; PATH_MAX bytes)
 *   queue_spool_commit_batch  once for many messages, on one worker: messages held in memory
 *                             (item.data) are appended to the active segment together and
 *                             covered by one fdatasync (queue_segment.h); sealed files get one
 *                             fsync per blobs/XX directory; then one transaction with every
 *                             message's rows (a message whose rows fail is rolled back alone);
 *                             with `delivery`, the simple local recipients of each message are
 *                             delivered in the same transaction (queue_deliver_in_tx), so one
 *                             commit makes a message both durable and delivered; each item gets
 *                             its own result; files of failed items are removed. */
int queue_spool_seal(const char *data_dir, struct queue_spool_file *f, char *blob_path,
                     const char **err_r);

/* Optional: local delivery inside the batch's transaction (queue_deliver_in_tx). */
struct queue_batch_delivery {
    struct dir *dir;
    const struct queue_deliver_env *env;
};

struct queue_spool_batch_item {
    struct queue_spool_file *file; /* id always; a sealed file unless data is set */
    const char *data;              /* the whole message in memory (file->written = len) */
    size_t len;
    const struct queue_envelope *env;
    char blob_path[PATH_MAX];
    enum queue_commit_result result;
    char blob_id[QUEUE_BLOB_ID_MAX]; /* set by queue_spool_batch_make_durable */
    uint32_t segment;                /* 0 = a file blob */
    int64_t message_id;
    bool local_pending;  /* local recipients still queued: run queue_deliver_message */
    bool remote_pending; /* remote recipients queued: wake the outbound scheduler */
    char err[300];       /* why it failed */
};
void queue_spool_commit_batch(sqlite3 *db, const char *data_dir,
                              const struct queue_batch_delivery *delivery,
                              struct queue_spool_batch_item *items, size_t n);
/* The two halves of queue_spool_commit_batch, for a committer that overlaps them (the bytes of
 * one batch become durable while the rows of the previous one are committed): */
void queue_spool_batch_make_durable(const char *data_dir, struct queue_spool_batch_item *items,
                                    size_t n);
void queue_spool_batch_commit_rows(sqlite3 *db, const struct queue_batch_delivery *delivery,
                                   struct queue_spool_batch_item *items, size_t n);

#endif

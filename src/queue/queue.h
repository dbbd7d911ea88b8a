/* queue: durable accept (blobs + queue rows), local delivery and queue inspection.
 *
 * Blob store (queue_blob.c, queue_segment.c): every message body is immutable and lives either
 *   - in an append-only segment file <data_dir>/blobs/seg/<n> (messages accepted over SMTP that
 *     fit in memory: a group-commit batch is appended and covered by one fdatasync), or
 *   - in a file of its own <data_dir>/blobs/<first 2 chars of id>/<id> (large messages, bounces),
 *     written through <data_dir>/spool/tmp/<id>.tmp, fsync'ed, renamed, directory fsync'ed,
 * and is then made deliverable by one committed transaction (the `blob`, `message` and
 * `queue_rcpt` rows). Only then does the SMTP server answer 250 (design.md §4, "Durability").
 * A blob is released when no `message` and no `mail` row references it. Readers use
 * queue_blob_open/queue_blob_read, which handle both kinds.
 *
 * Local delivery (queue_deliver.c): for each queued recipient of kind 'local', store the message
 * in the account's INBOX (store.h), honouring account forwarding (§4.5), mark it delivered; a
 * message whose recipients are all done (delivered/failed) is removed from the queue and its blob
 * unreferenced. Remote recipients stay 'queued' for outbound delivery. */
#ifndef GANNET_QUEUE_QUEUE_H
#define GANNET_QUEUE_QUEUE_H
#include <limits.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "dir/dir.h"

#define QUEUE_ID_MAX 32
#define QUEUE_BLOB_ID_MAX 64

/* ---- blobs (queue_blob.c) ---- */
void queue_blob_path(const char *data_dir, const char *blob_id, char out[PATH_MAX]);
void queue_blob_tmp_path(const char *data_dir, const char *blob_id, char out[PATH_MAX]);
/* Create <data_dir>/blobs and <data_dir>/spool/tmp. */
int queue_dirs_create(const char *data_dir, const char **err_r);
/* A new unique id (time + counter + random; [0-9A-F]). Also used as the queue id. */
void queue_id_new(char out[QUEUE_ID_MAX]);
/* Inside the caller's transaction: if nothing references blob_id any more, delete its row and
 * set *unlink_r so the caller calls queue_blob_remove after COMMIT (never before). */
int queue_blob_release(sqlite3 *db, const char *blob_id, bool *unlink_r);
/* After the COMMIT that released it: unlink a file blob, or punch a segment blob out of its
 * segment and remove the segment when no row names it any more (db may be NULL: no removal). */
void queue_blob_remove(sqlite3 *db, const char *data_dir, const char *blob_id);

/* Reading a blob, whichever kind it is. */
struct queue_blob_reader {
    int fd;
    uint64_t base; /* where the blob starts in the file */
    uint64_t size;
};
int queue_blob_open(const char *data_dir, const char *blob_id, struct queue_blob_reader *r,
                    const char **err_r);
/* Up to n bytes from position pos of the blob: bytes read, 0 at the end, -1 on error. */
long queue_blob_pread(const struct queue_blob_reader *r, void *p, size_t n, uint64_t pos);
void queue_blob_close(struct queue_blob_reader *r);
/* The whole blob into a malloc'ed buffer (NUL-terminated; *len_r bytes). */
int queue_blob_read_all(const char *data_dir, const char *blob_id, char **data_r, size_t *len_r,
                        const char **err_r);
/* At start: remove spool/tmp leftovers and blob files that have no committed row; logs each. */
int queue_recover(sqlite3 *db, const char *data_dir, unsigned *removed_r);

/* ---- local delivery (queue_deliver.c) ---- */
struct queue_deliver_env {
    const char *data_dir;
    const char *hostname;  /* for bounces (mailer-daemon@hostname); NULL = no bounces */
    bool add_delivered_to; /* [smtp] add_delivered_to */
};
/* Deliver every queued local recipient of one message. Returns 0, or -1 on a database error
 * (nothing half-done: each recipient is delivered in its own transaction). */
int queue_deliver_message(sqlite3 *db, struct dir *dir, const struct queue_deliver_env *env,
                          int64_t message_id, const char **err_r);
/* Inside the caller's transaction (the group commit that just inserted the message): deliver
 * the local recipients that need nothing but a mailbox row — account found and enabled, no
 * forwarding, within quota — and remove the message when nothing else is pending. Anything
 * else stays queued (*local_pending_r = true) for queue_deliver_message, which also makes the
 * bounces. Returns 0, or -1 on a database error (the caller rolls back to its savepoint). */
int queue_deliver_in_tx(sqlite3 *db, struct dir *dir, const struct queue_deliver_env *env,
                        int64_t message_id, bool *local_pending_r, const char **err_r);
/* Deliver every message that has queued local recipients (start-up recovery). */
int queue_deliver_pending(sqlite3 *db, struct dir *dir, const struct queue_deliver_env *env,
                          unsigned *delivered_r, const char **err_r);

/* Remove a message whose recipients are all delivered or failed (and release its blob, unlinking
 * the file after COMMIT); does nothing while any recipient is queued or held. */
int queue_message_finish(sqlite3 *db, const char *data_dir, int64_t message_id,
                         const char **err_r);

#endif

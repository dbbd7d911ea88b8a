/* queue_segment: append-only segment files for message blobs (design.md §4 "Message blobs").
 *
 * Messages accepted over SMTP that fit in memory (smtp_data.c) are not written one file each:
 * the group committer (queue_commit.c) appends a whole batch of them to the active segment
 *   <data_dir>/blobs/seg/<8 hex digits>
 * with one pwritev and covers them with one fdatasync, before the batch's database transaction.
 * Every blob starts on a 4 KiB boundary, so releasing it can punch its blocks out of the file
 * (FALLOC_FL_PUNCH_HOLE) and give the space back at once. A segment file is removed when no
 * blob row names it any more and it is not the active one (queue_blob_remove), or at start when
 * nothing references it (queue_recover). A new segment is started past QUEUE_SEGMENT_MAX bytes
 * and at every start of the server.
 *
 * A segment blob's id carries its location, so readers need no database lookup:
 *   <queue id>.<segment, 8 hex>.<offset, hex>.<length, hex>
 * File blobs keep plain ids (the queue id). queue_blob_open (queue.h) reads both kinds.
 *
 * Appends are serialised by a mutex (the committer runs one batch at a time anyway); any thread
 * may call queue_segment_append. Bytes of a failed append are never referenced by a row and go
 * with their segment. */
#ifndef GANNET_QUEUE_SEGMENT_H
#define GANNET_QUEUE_SEGMENT_H
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "queue/queue.h"

#define QUEUE_SEGMENT_MAX (64u << 20) /* start a new segment once the active one is this big */
#define QUEUE_SEGMENT_ALIGN 4096u     /* every blob starts at a multiple of this */

struct queue_segment_piece {
    const void *data;
    size_t len;
    const char *queue_id;                /* names the blob (first part of blob_id) */
    char blob_id[QUEUE_BLOB_ID_MAX];     /* out */
    uint32_t segment;                    /* out */
};

/* Append every piece to the active segment and fdatasync it. Returns 0 when all of them are
 * durable, or -1 with *err_r (none of them may be acknowledged). */
int queue_segment_append(const char *data_dir, struct queue_segment_piece *pieces, size_t n,
                         const char **err_r);

/* The segment currently appended to (0 = none yet). */
uint32_t queue_segment_active(void);

/* Forget the active segment (tests; the next append starts a new one). */
void queue_segment_reset(void);

void queue_segment_path(const char *data_dir, uint32_t segment, char out[PATH_MAX]);

/* Parse a segment blob id. false for a file blob id (or anything malformed). */
bool queue_segment_locate(const char *blob_id, uint32_t *segment, uint64_t *offset,
                          uint64_t *length);

/* Give a released blob's blocks back to the filesystem (best effort, logged). */
void queue_segment_punch(const char *data_dir, uint32_t segment, uint64_t offset, uint64_t length);

#endif

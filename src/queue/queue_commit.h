/* queue_commit: group commit on the accept path (issue 5; design.md §4 "Durability").
 *
 * Sessions hand finished messages to the committer on the event-loop thread: most are still in
 * memory (appended to a segment by the batch, one fdatasync for all), large ones are sealed
 * files (queue_spool_seal: fsynced and renamed). While one batch is being committed on a worker
 * (the segment append, one fsync per blob directory, one database transaction), new requests
 * wait; when it
 * finishes, every waiting request goes out as the next batch. Under load, N sessions finishing
 * DATA together pay for about one barrier instead of N; a lone message pays what it paid
 * before. Local recipients that need only a mailbox row are delivered in the same transaction
 * (item.local_pending says whether the full delivery path still has work). Each request's done
 * callback runs on the loop thread only after its own rows are committed (or failed): 250 is
 * never sent before the message is durable. */
#ifndef GANNET_QUEUE_COMMIT_H
#define GANNET_QUEUE_COMMIT_H

#include "queue/queue_spool.h"

struct pool;
struct queue_committer;

struct queue_commit_req {
    struct queue_spool_batch_item item; /* file, env and blob_path set by the caller */
    void (*done)(struct queue_commit_req *r);
    struct queue_commit_req *next;
};

/* env: where blobs live, and how local delivery inside a batch is done (queue_deliver_in_tx). */
struct queue_committer *queue_committer_new(struct pool *pool, const struct queue_deliver_env *env);
void queue_committer_submit(struct queue_committer *c, struct queue_commit_req *r);
void queue_committer_free(struct queue_committer **c);

#endif

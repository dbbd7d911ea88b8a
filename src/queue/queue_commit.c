/* queue_commit: batches finished messages into shared durability barriers (see queue_commit.h).
 *
 * Two stages, each with at most one batch in flight, so that they overlap:
 *   bytes  the batch's messages are appended to the segment (one fdatasync) or their files'
 *          directories fsync'ed (queue_spool_batch_make_durable)
 *   rows   one transaction with every message's rows and simple local deliveries
 *          (queue_spool_batch_commit_rows)
 * While batch k commits its rows, batch k+1 makes its bytes durable; a batch goes to the rows
 * stage only after its own bytes are durable, and answers go out only after its rows are
 * committed. At most QUEUE_COMMIT_BATCH_MAX messages per batch. */
#include "queue/queue_commit.h"

#include <stdlib.h>
#include <string.h>

#include "lib/xalloc.h"
#include "net/pool.h"

#define QUEUE_COMMIT_BATCH_MAX 64

struct queue_commit_batch {
    struct queue_committer *c;
    struct queue_commit_req *reqs[QUEUE_COMMIT_BATCH_MAX];
    struct queue_spool_batch_item items[QUEUE_COMMIT_BATCH_MAX];
    size_t n;
};

struct queue_committer {
    struct pool *pool;
    char *data_dir;
    char *hostname;
    struct queue_deliver_env env;         /* local delivery inside the batch */
    struct queue_commit_req *head, *tail; /* waiting */
    bool bytes_busy;                      /* a batch in the bytes stage */
    bool rows_busy;                       /* a batch in the rows stage */
    struct queue_commit_batch *ready;     /* bytes durable, waiting for the rows stage */
};

static void bytes_start(struct queue_committer *c);
static void rows_start(struct queue_committer *c, struct queue_commit_batch *b);

static void rows_work(void *arg)
{
    struct queue_commit_batch *b = arg;
    const char *err = NULL;
    sqlite3 *db = pool_worker_db(&err);
    struct queue_batch_delivery delivery = {.dir = pool_worker_dir(&err), .env = &b->c->env};
    queue_spool_batch_commit_rows(db, &delivery, b->items, b->n);
}

static void rows_done(void *arg)
{
    struct queue_commit_batch *b = arg;
    struct queue_committer *c = b->c;
    c->rows_busy = false;
    for (size_t i = 0; i < b->n; i++) {
        struct queue_commit_req *r = b->reqs[i];
        r->item.result = b->items[i].result;
        r->item.message_id = b->items[i].message_id;
        r->item.local_pending = b->items[i].local_pending;
        r->item.remote_pending = b->items[i].remote_pending;
        memcpy(r->item.err, b->items[i].err, sizeof(r->item.err));
        r->done(r);
    }
    free(b);
    if (c->ready) {
        struct queue_commit_batch *next = c->ready;
        c->ready = NULL;
        rows_start(c, next);
    }
    bytes_start(c);
}

static void rows_start(struct queue_committer *c, struct queue_commit_batch *b)
{
    c->rows_busy = true;
    pool_submit(c->pool, b, rows_work, rows_done);
}

static void bytes_work(void *arg)
{
    struct queue_commit_batch *b = arg;
    queue_spool_batch_make_durable(b->c->data_dir, b->items, b->n);
}

static void bytes_done(void *arg)
{
    struct queue_commit_batch *b = arg;
    struct queue_committer *c = b->c;
    c->bytes_busy = false;
    if (c->rows_busy)
        c->ready = b;
    else
        rows_start(c, b);
    bytes_start(c);
}

/* The waiting messages become the next batch, when the bytes stage is free and no durable batch
 * is still waiting for the rows stage. */
static void bytes_start(struct queue_committer *c)
{
    if (!c->head || c->bytes_busy || c->ready)
        return;
    struct queue_commit_batch *b = xcalloc(1, sizeof(*b));
    b->c = c;
    while (c->head && b->n < QUEUE_COMMIT_BATCH_MAX) {
        struct queue_commit_req *r = c->head;
        c->head = r->next;
        if (!c->head)
            c->tail = NULL;
        b->reqs[b->n] = r;
        b->items[b->n] = r->item;
        b->n++;
    }
    c->bytes_busy = true;
    pool_submit(c->pool, b, bytes_work, bytes_done);
}

struct queue_committer *queue_committer_new(struct pool *pool, const struct queue_deliver_env *env)
{
    struct queue_committer *c = xcalloc(1, sizeof(*c));
    c->pool = pool;
    c->data_dir = xstrdup(env->data_dir);
    c->hostname = env->hostname ? xstrdup(env->hostname) : NULL;
    c->env = (struct queue_deliver_env){.data_dir = c->data_dir,
                                        .hostname = c->hostname,
                                        .add_delivered_to = env->add_delivered_to};
    return c;
}

void queue_committer_submit(struct queue_committer *c, struct queue_commit_req *r)
{
    r->next = NULL;
    if (c->tail)
        c->tail->next = r;
    else
        c->head = r;
    c->tail = r;
    bytes_start(c);
}

void queue_committer_free(struct queue_committer **cp)
{
    if (*cp) {
        free((*cp)->data_dir);
        free((*cp)->hostname);
    }
    free(*cp);
    *cp = NULL;
}

/* queue_commit: batches sealed messages into shared durability barriers (see queue_commit.h).
 * At most one batch is in flight; at most QUEUE_COMMIT_BATCH_MAX messages per batch. */
#include "queue/queue_commit.h"

#include <stdlib.h>
#include <string.h>

#include "lib/xalloc.h"
#include "net/pool.h"

#define QUEUE_COMMIT_BATCH_MAX 64

struct queue_committer {
    struct pool *pool;
    char *data_dir;
    char *hostname;
    struct queue_deliver_env env; /* local delivery inside the batch */
    struct queue_commit_req *head, *tail; /* waiting */
    bool busy;
};

struct queue_commit_batch {
    struct queue_committer *c;
    struct queue_commit_req *reqs[QUEUE_COMMIT_BATCH_MAX];
    struct queue_spool_batch_item items[QUEUE_COMMIT_BATCH_MAX];
    size_t n;
};

static void commit_start(struct queue_committer *c);

static void commit_work(void *arg)
{
    struct queue_commit_batch *b = arg;
    const char *err = NULL;
    sqlite3 *db = pool_worker_db(&err);
    struct queue_batch_delivery delivery = {.dir = pool_worker_dir(&err), .env = &b->c->env};
    queue_spool_commit_batch(db, b->c->data_dir, &delivery, b->items, b->n);
}

static void commit_done(void *arg)
{
    struct queue_commit_batch *b = arg;
    struct queue_committer *c = b->c;
    c->busy = false;
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
    if (c->head)
        commit_start(c);
}

static void commit_start(struct queue_committer *c)
{
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
    c->busy = true;
    pool_submit(c->pool, b, commit_work, commit_done);
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
    if (!c->busy)
        commit_start(c);
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

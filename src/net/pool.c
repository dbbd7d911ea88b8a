/* pool: fixed set of worker threads with one FIFO job queue; completions are handed back to the
 * event loop through an eventfd watched by a libevent event, and `done` callbacks run there in
 * completion order. Each worker lazily opens its own SQLite handle (SQLite handles are not shared
 * between threads) and a struct dir over it. Allocation never fails; a database that cannot be
 * opened is reported to the job through pool_worker_db() returning NULL. */
#include "net/pool.h"

#include <event2/event.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "dir/dir.h"
#include "dir/dir_db.h"
#include "dir/dir_cache.h"
#include "dir/dir_sqlite.h"
#include "lib/log.h"
#include "lib/xalloc.h"

struct pool_job {
    void *job;
    pool_fn *work;
    pool_fn *done;
    struct pool_job *next;
};

struct pool {
    struct event_base *base;
    char *database_path;
    pthread_t *threads;
    unsigned nthreads;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct pool_job *queue_head, *queue_tail;
    struct pool_job *done_head, *done_tail;
    bool stopping;
    size_t pending;
    int efd;
    struct event *ev;
};

static __thread struct pool *worker_pool;
static __thread sqlite3 *worker_db;
static __thread struct dir *worker_dir;     /* the cache over worker_sql_dir, or worker_sql_dir */
static __thread struct dir *worker_sql_dir;
static __thread const char *worker_db_err;

sqlite3 *pool_worker_db(const char **err_r)
{
    if (!worker_db && worker_pool) {
        const char *err = NULL;
        worker_db = dir_db_open(worker_pool->database_path, false, &err);
        if (!worker_db) {
            worker_db_err = err;
            log_error("worker: %s", err);
        }
    }
    if (!worker_db && err_r)
        *err_r = worker_db_err ? worker_db_err : "no database";
    return worker_db;
}

struct dir *pool_worker_dir(const char **err_r)
{
    if (!worker_dir) {
        sqlite3 *db = pool_worker_db(err_r);
        if (!db)
            return NULL;
        worker_sql_dir = dir_sqlite_new(db);
        struct dir_cache_store *cache = dir_cache_global();
        worker_dir = cache ? dir_cache_new(cache, worker_sql_dir) : worker_sql_dir;
    }
    return worker_dir;
}

static void *pool_thread(void *arg)
{
    struct pool *p = arg;
    worker_pool = p;
    pthread_mutex_lock(&p->lock);
    for (;;) {
        while (!p->queue_head && !p->stopping)
            pthread_cond_wait(&p->cond, &p->lock);
        struct pool_job *j = p->queue_head;
        if (!j)
            break; /* stopping and the queue is empty */
        p->queue_head = j->next;
        if (!p->queue_head)
            p->queue_tail = NULL;
        pthread_mutex_unlock(&p->lock);

        j->work(j->job);

        pthread_mutex_lock(&p->lock);
        j->next = NULL;
        if (p->done_tail)
            p->done_tail->next = j;
        else
            p->done_head = j;
        p->done_tail = j;
        uint64_t one = 1;
        ssize_t w = write(p->efd, &one, sizeof(one));
        (void)w;
    }
    pthread_mutex_unlock(&p->lock);
    if (worker_dir != worker_sql_dir)
        dir_close(&worker_dir);
    dir_close(&worker_sql_dir);
    worker_dir = NULL;
    dir_db_close(&worker_db);
    return NULL;
}

static void pool_run_done(struct pool *p)
{
    pthread_mutex_lock(&p->lock);
    struct pool_job *list = p->done_head;
    p->done_head = p->done_tail = NULL;
    pthread_mutex_unlock(&p->lock);
    while (list) {
        struct pool_job *j = list;
        list = j->next;
        p->pending--;
        if (j->done)
            j->done(j->job);
        free(j);
    }
}

static void pool_on_event(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    uint64_t n;
    ssize_t r = read(fd, &n, sizeof(n));
    (void)r;
    pool_run_done(arg);
}

struct pool *pool_new(struct event_base *base, unsigned threads, const char *database_path)
{
    struct pool *p = xcalloc(1, sizeof(*p));
    p->base = base;
    p->database_path = xstrdup(database_path);
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->cond, NULL);
    p->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (p->efd < 0) {
        log_error("eventfd: cannot create");
        abort();
    }
    p->ev = event_new(base, p->efd, EV_READ | EV_PERSIST, pool_on_event, p);
    event_add(p->ev, NULL);
    p->nthreads = threads ? threads : 1;
    p->threads = xcalloc(p->nthreads, sizeof(pthread_t));
    for (unsigned i = 0; i < p->nthreads; i++)
        if (pthread_create(&p->threads[i], NULL, pool_thread, p) != 0) {
            log_error("cannot start worker thread");
            abort();
        }
    return p;
}

void pool_submit(struct pool *p, void *job, pool_fn *work, pool_fn *done)
{
    struct pool_job *j = xcalloc(1, sizeof(*j));
    j->job = job;
    j->work = work;
    j->done = done;
    pthread_mutex_lock(&p->lock);
    if (p->queue_tail)
        p->queue_tail->next = j;
    else
        p->queue_head = j;
    p->queue_tail = j;
    p->pending++;
    pthread_cond_signal(&p->cond);
    pthread_mutex_unlock(&p->lock);
}

size_t pool_pending(const struct pool *p)
{
    return p->pending;
}

void pool_free(struct pool **pp)
{
    struct pool *p = *pp;
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    p->stopping = true;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->lock);
    for (unsigned i = 0; i < p->nthreads; i++)
        pthread_join(p->threads[i], NULL);
    /* done callbacks may submit follow-up jobs (e.g. deliver a bounce): with the threads gone,
     * run those here until nothing is left, so no job is ever dropped. */
    pool_run_done(p);
    while (p->queue_head) {
        struct pool_job *j = p->queue_head;
        p->queue_head = j->next;
        if (!p->queue_head)
            p->queue_tail = NULL;
        j->work(j->job);
        j->next = NULL;
        p->done_head = p->done_tail = j;
        pool_run_done(p);
    }
    event_free(p->ev);
    close(p->efd);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->cond);
    free(p->threads);
    free(p->database_path);
    free(p);
    *pp = NULL;
}

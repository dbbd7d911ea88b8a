/* pool: the worker pool for blocking work (database, fsync, password hashing).
 *
 * pool_submit() queues a job; `work` runs on a worker thread, then `done` runs on the event-loop
 * thread with the same job pointer. A job that refers to a session carries the session's 64-bit
 * id, never a raw pointer (the session may be gone when `done` runs). Each worker thread has its
 * own database handle and directory (pool_worker_db / pool_worker_dir), opened lazily. */
#ifndef GANNET_NET_POOL_H
#define GANNET_NET_POOL_H
#include <sqlite3.h>
#include <stddef.h>

struct event_base;
struct dir;
struct pool;

typedef void pool_fn(void *job);

struct pool *pool_new(struct event_base *base, unsigned threads, const char *database_path);
/* Stop accepting jobs, let queued jobs finish (their `done` callbacks run), join the threads. */
void pool_free(struct pool **pool);
void pool_submit(struct pool *pool, void *job, pool_fn *work, pool_fn *done);
/* Jobs submitted and not yet completed (done callback not yet run). */
size_t pool_pending(const struct pool *pool);

/* On a worker thread: this thread's database handle (NULL if it cannot be opened; *err_r says
 * why) and a directory over it. */
sqlite3 *pool_worker_db(const char **err_r);
struct dir *pool_worker_dir(const char **err_r);

#endif

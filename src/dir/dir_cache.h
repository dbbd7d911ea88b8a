/* dir_cache: directory lookups cached in memory, invalidated on change (issue 5).
 *
 * One store per process holds the answers (DIR_OK and DIR_NOTFOUND only — failures are never
 * remembered) of every struct dir operation, keyed by operation and arguments (ASCII
 * case-folded: the SQL backend compares names case-insensitively). A `struct dir` made by
 * dir_cache_new() answers from the store:
 *   - with a backing directory (worker threads): a miss is looked up there and remembered;
 *   - without one (the event-loop thread): a miss answers DIR_TEMPFAIL and sets a flag
 *     (dir_cache_take_miss), so the caller discards the result and asks a worker instead. A
 *     policy decision that needed nothing uncached is thus made without leaving the loop.
 *
 * Invalidation: every change to the directory bumps a 64-bit generation counter kept in the
 * file <data_dir>/directory.gen, which the server maps into memory (MAP_SHARED). The admin CLI
 * (any process) bumps it after each change it commits (dir_cache_bump_file); the server bumps
 * it for its own changes (auto-ban, dir_cache_note_change). Every lookup compares the mapped
 * counter with the store's: on a difference the whole store is dropped, so a change is seen by
 * the very next lookup — no polling, no system call. Changes made behind Gannet's back (sqlite3
 * by hand) are seen when entries expire (ttl_s) or at SIGHUP (docs/configuration.md, [server]
 * directory_cache). The store is dropped whole when it reaches max_entries. Thread-safe (one
 * mutex). */
#ifndef GANNET_DIR_DIR_CACHE_H
#define GANNET_DIR_DIR_CACHE_H
#include <sqlite3.h>
#include <stdbool.h>

#include "dir/dir.h"

struct dir_cache_store;

/* gen_path: the generation file (created when missing). NULL with *err_r when it cannot be
 * created or mapped (the server then runs without a cache). ttl_s = 0: entries never expire. */
struct dir_cache_store *dir_cache_store_new(const char *gen_path, unsigned max_entries,
                                            unsigned ttl_s, const char **err_r);
void dir_cache_store_free(struct dir_cache_store **s);

/* The process's store, used by pool_worker_dir() and the SMTP fast paths (NULL = none). */
void dir_cache_global_set(struct dir_cache_store *s);
struct dir_cache_store *dir_cache_global(void);

/* This process changed the directory: drop the store and bump the shared generation. */
void dir_cache_note_change(void);

/* <data_dir>/directory.gen */
void dir_cache_gen_path(const char *data_dir, char out[4096]);

/* Another process (the CLI) changed the directory: bump the generation in gen_path. A missing
 * file is not an error (no server has run here yet). */
int dir_cache_bump_file(const char *gen_path, const char **err_r);

/* For the CLI, before closing its handle: when this connection changed any row, bump the
 * generation of data_dir's cache (a warning is printed when that fails). */
void dir_cache_bump_if_changed(sqlite3 *db, const char *data_dir);

/* A directory over the store; backing may be NULL (cache only). The backing directory stays
 * owned by the caller. Free with dir_close(). */
struct dir *dir_cache_new(struct dir_cache_store *s, struct dir *backing);

/* Cache-only directories: did a lookup miss since the last call? (resets the flag) */
bool dir_cache_take_miss(struct dir *d);

/* Counters for logs and tests. */
struct dir_cache_stats {
    unsigned long hits, misses, flushes, entries;
};
void dir_cache_stats(struct dir_cache_store *s, struct dir_cache_stats *out);

#endif

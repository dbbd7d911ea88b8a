/* queue_spool: the durable accept path (see queue_spool.h). The rule, in order (for a batch, step 2
 * is one fsync per directory and step 3 one transaction for all of its messages):
 *   1. write the bytes to spool/tmp/<id>.tmp and fsync the file;
 *   2. rename it to blobs/<xx>/<id> and fsync that directory (the name is durable);
 *   3. commit one transaction with the blob, message and recipient rows (synchronous=FULL).
 * Only then may the caller answer 250. A crash between 2 and 3 leaves a blob without a row:
 * queue_recover() removes it at the next start (the client got no 250, so it retries). */
#include "queue/queue_spool.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dir/dir_db.h"
#include "lib/log.h"
#include "lib/xalloc.h"
#include "queue/queue_segment.h"

static __thread char spool_err[512];

static const char *spool_errno(const char *what, const char *path)
{
    snprintf(spool_err, sizeof(spool_err), "%s %s: %s", what, path, strerror(errno));
    return spool_err;
}

int queue_spool_open(const char *data_dir, struct queue_spool_file *f, const char **err_r)
{
    queue_blob_tmp_path(data_dir, f->id, f->tmp_path);
    f->written = 0;
    f->fd = open(f->tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
    if (f->fd < 0) {
        *err_r = spool_errno("cannot create", f->tmp_path);
        return -1;
    }
    return 0;
}

int queue_spool_write(struct queue_spool_file *f, const void *p, size_t n, const char **err_r)
{
    const char *s = p;
    while (n > 0) {
        ssize_t w = write(f->fd, s, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            *err_r = spool_errno("cannot write", f->tmp_path);
            return -1;
        }
        s += w;
        n -= (size_t)w;
        f->written += (uint64_t)w;
    }
    return 0;
}

void queue_spool_abort(struct queue_spool_file *f)
{
    if (f->fd >= 0) {
        close(f->fd);
        f->fd = -1;
    }
    if (f->tmp_path[0])
        unlink(f->tmp_path);
    f->tmp_path[0] = '\0';
}

static int fsync_dir(const char *dir, const char **err_r)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        *err_r = spool_errno("cannot open directory", dir);
        return -1;
    }
    int r = fsync(fd);
    if (r < 0)
        *err_r = spool_errno("cannot fsync directory", dir);
    close(fd);
    return r;
}

int queue_spool_seal(const char *data_dir, struct queue_spool_file *f, char *blob_path,
                     const char **err_r)
{
    if (fsync(f->fd) < 0) {
        *err_r = spool_errno("cannot fsync", f->tmp_path);
        return -1;
    }
    if (close(f->fd) < 0) {
        f->fd = -1;
        *err_r = spool_errno("cannot close", f->tmp_path);
        return -1;
    }
    f->fd = -1;
    queue_blob_path(data_dir, f->id, blob_path);
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s", blob_path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    if (mkdir(dir, 0750) == 0) {
        /* A new fan-out directory: its own entry in blobs/ must be durable too. */
        char parent[PATH_MAX];
        snprintf(parent, sizeof(parent), "%s", dir);
        char *ps = strrchr(parent, '/');
        if (ps)
            *ps = '\0';
        if (fsync_dir(parent, err_r) < 0)
            return -1;
    } else if (errno != EEXIST) {
        *err_r = spool_errno("cannot create", dir);
        return -1;
    }
    /* Never replace an existing blob (an id collision must fail, not overwrite a message). */
    int rr = renameat2(AT_FDCWD, f->tmp_path, AT_FDCWD, blob_path, RENAME_NOREPLACE);
    if (rr < 0 && (errno == EINVAL || errno == ENOSYS)) /* filesystem without the flag */
        rr = link(f->tmp_path, blob_path) == 0 ? unlink(f->tmp_path) : -1;
    if (rr < 0) {
        *err_r = spool_errno("cannot rename into", blob_path);
        return -1;
    }
    f->tmp_path[0] = '\0';
    return 0;
}

static void blob_dir_of(const char *blob_path, char dir[PATH_MAX])
{
    snprintf(dir, PATH_MAX, "%s", blob_path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
}

static int make_durable(const char *data_dir, struct queue_spool_file *f, char *blob_path,
                        const char **err_r)
{
    if (queue_spool_seal(data_dir, f, blob_path, err_r) < 0)
        return -1;
    char dir[PATH_MAX];
    blob_dir_of(blob_path, dir);
    if (fsync_dir(dir, err_r) < 0) {
        unlink(blob_path);
        return -1;
    }
    return 0;
}

/* The rows of one message, inside the caller's transaction. blob_id is the queue id for a file
 * blob; segment is 0 for a file blob. */
static int insert_rows_tx(sqlite3 *db, const struct queue_spool_file *f, const char *blob_id,
                          uint32_t segment, const struct queue_envelope *env, int64_t *message_id_r)
{
    sqlite3_stmt *st = NULL;
    int rc = dir_db_prepare(db, "INSERT INTO blob (id, size, created, segment) VALUES (?, ?, ?, ?)",
                            &st);
    if (rc != SQLITE_OK)
        goto fail;
    sqlite3_bind_text(st, 1, blob_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)f->written);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)env->received_at);
    if (segment)
        sqlite3_bind_int64(st, 4, segment);
    else
        sqlite3_bind_null(st, 4);
    rc = sqlite3_step(st);
    dir_db_finish(st);
    st = NULL;
    if (rc != SQLITE_DONE)
        goto fail;
    rc = dir_db_prepare(db,
                        "INSERT INTO message (queue_id, blob_id, sender, size, received_at, "
                        "client_ip, helo, auth_user) VALUES (?1, ?8, ?2, ?3, ?4, ?5, ?6, ?7)",
                        &st);
    if (rc != SQLITE_OK)
        goto fail;
    sqlite3_bind_text(st, 1, f->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 8, blob_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, env->sender, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)f->written);
    sqlite3_bind_int64(st, 4, (sqlite3_int64)env->received_at);
    sqlite3_bind_text(st, 5, env->client_ip ? env->client_ip : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, env->helo ? env->helo : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 7, env->auth_user ? env->auth_user : "", -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    dir_db_finish(st);
    st = NULL;
    if (rc != SQLITE_DONE)
        goto fail;
    int64_t message_id = sqlite3_last_insert_rowid(db);
    rc = dir_db_prepare(db,
                        "INSERT INTO queue_rcpt (message_id, address, original, kind, "
                        "route_id) VALUES (?, ?, ?, ?, ?)",
                        &st);
    if (rc != SQLITE_OK)
        goto fail;
    for (size_t i = 0; i < env->rcpts_count; i++) {
        const struct policy_recipient *r = &env->rcpts[i];
        sqlite3_reset(st);
        sqlite3_bind_int64(st, 1, message_id);
        sqlite3_bind_text(st, 2, r->address, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, r->original, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, r->local ? "local" : "remote", -1, SQLITE_STATIC);
        if (r->route_id)
            sqlite3_bind_int64(st, 5, r->route_id);
        else
            sqlite3_bind_null(st, 5);
        if (sqlite3_step(st) != SQLITE_DONE)
            goto fail;
    }
    dir_db_finish(st);
    *message_id_r = message_id;
    return 0;
fail:
    snprintf(spool_err, sizeof(spool_err), "database: %s", sqlite3_errmsg(db));
    dir_db_finish(st);
    return -1;
}

static int insert_rows(sqlite3 *db, struct queue_spool_file *f, const struct queue_envelope *env,
                       int64_t *message_id_r)
{
    if (dir_db_exec(db, "BEGIN IMMEDIATE") != SQLITE_OK) {
        snprintf(spool_err, sizeof(spool_err), "database: %s", sqlite3_errmsg(db));
        return -1;
    }
    if (insert_rows_tx(db, f, f->id, 0, env, message_id_r) < 0 ||
        dir_db_exec(db, "COMMIT") != SQLITE_OK) {
        if (!spool_err[0])
            snprintf(spool_err, sizeof(spool_err), "database: %s", sqlite3_errmsg(db));
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        return -1;
    }
    return 0;
}

/* Messages held in memory: one append to the active segment, one fdatasync. */
static void append_to_segment(const char *data_dir, struct queue_spool_batch_item *items, size_t n)
{
    struct queue_segment_piece stack_pieces[64];
    struct queue_segment_piece *pieces =
        n <= 64 ? stack_pieces : xmalloc(n * sizeof(struct queue_segment_piece));
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (items[i].data)
            pieces[k++] = (struct queue_segment_piece){
                .data = items[i].data, .len = items[i].len, .queue_id = items[i].file->id};
    const char *err = NULL;
    bool ok = k == 0 || queue_segment_append(data_dir, pieces, k, &err) == 0;
    for (size_t i = 0, j = 0; i < n; i++) {
        struct queue_spool_batch_item *it = &items[i];
        if (!it->data) {
            snprintf(it->blob_id, sizeof(it->blob_id), "%s", it->file->id);
            it->segment = 0;
        } else if (ok) {
            snprintf(it->blob_id, sizeof(it->blob_id), "%s", pieces[j].blob_id);
            it->segment = pieces[j++].segment;
        } else {
            it->result = QUEUE_COMMIT_SPOOL_FAILED;
            snprintf(it->err, sizeof(it->err), "%s", err);
        }
    }
    if (pieces != stack_pieces)
        free(pieces);
}

/* Inside the message's savepoint: local delivery of what is simple; a failure there leaves the
 * message queued for the full delivery path, never fails the accept. */
static void deliver_in_batch(sqlite3 *db, const struct queue_batch_delivery *delivery,
                             struct queue_spool_batch_item *it)
{
    it->local_pending = false;
    it->remote_pending = false;
    for (size_t i = 0; i < it->env->rcpts_count; i++) {
        if (it->env->rcpts[i].local)
            it->local_pending = true;
        else
            it->remote_pending = true;
    }
    if (!delivery || !delivery->dir || !it->local_pending)
        return;
    const char *err = NULL;
    bool pending = true;
    if (dir_db_exec(db, "SAVEPOINT dlv") != SQLITE_OK)
        return;
    if (queue_deliver_in_tx(db, delivery->dir, delivery->env, it->message_id, &pending, &err) < 0) {
        log_warn("%s: local delivery deferred: %s", it->file->id, err ? err : "?");
        dir_db_exec(db, "ROLLBACK TO dlv");
        pending = true;
    }
    dir_db_exec(db, "RELEASE dlv");
    it->local_pending = pending;
}

void queue_spool_batch_make_durable(const char *data_dir, struct queue_spool_batch_item *items,
                                    size_t n)
{
    for (size_t i = 0; i < n; i++)
        items[i].result = QUEUE_COMMIT_OK;
    append_to_segment(data_dir, items, n);
    /* 1. One fsync per blobs/XX directory touched by the batch: the renames become durable. */
    char done_dirs[16][PATH_MAX];
    size_t ndone = 0;
    for (size_t i = 0; i < n; i++) {
        struct queue_spool_batch_item *it = &items[i];
        if (it->data || it->result != QUEUE_COMMIT_OK)
            continue;
        char dir[PATH_MAX];
        blob_dir_of(it->blob_path, dir);
        bool seen = false;
        for (size_t k = 0; k < ndone && !seen; k++)
            seen = strcmp(done_dirs[k], dir) == 0;
        if (seen)
            continue;
        const char *derr = NULL;
        if (fsync_dir(dir, &derr) < 0) {
            /* Every item in this directory fails (their entries may not be durable). */
            for (size_t k = i; k < n; k++) {
                if (items[k].data)
                    continue;
                char d2[PATH_MAX];
                blob_dir_of(items[k].blob_path, d2);
                if (strcmp(d2, dir) == 0) {
                    items[k].result = QUEUE_COMMIT_SPOOL_FAILED;
                    snprintf(items[k].err, sizeof(items[k].err), "%s", derr);
                }
            }
            continue;
        }
        if (ndone < sizeof(done_dirs) / sizeof(done_dirs[0]))
            snprintf(done_dirs[ndone++], PATH_MAX, "%s", dir);
    }
}

void queue_spool_batch_commit_rows(sqlite3 *db, const struct queue_batch_delivery *delivery,
                                   struct queue_spool_batch_item *items, size_t n)
{
    /* 2. One transaction for every message; a message whose rows fail is rolled back alone. */
    bool tx = db && dir_db_exec(db, "BEGIN IMMEDIATE") == SQLITE_OK;
    for (size_t i = 0; i < n; i++) {
        struct queue_spool_batch_item *it = &items[i];
        if (it->result != QUEUE_COMMIT_OK)
            continue;
        spool_err[0] = '\0';
        if (!tx || dir_db_exec(db, "SAVEPOINT msg") != SQLITE_OK ||
            insert_rows_tx(db, it->file, it->blob_id, it->segment, it->env, &it->message_id) < 0) {
            it->result = QUEUE_COMMIT_DB_FAILED;
            snprintf(it->err, sizeof(it->err), "%s",
                     !db            ? "no database"
                     : spool_err[0] ? spool_err
                                    : sqlite3_errmsg(db));
            if (tx)
                sqlite3_exec(db, "ROLLBACK TO msg; RELEASE msg", NULL, NULL, NULL);
            continue;
        }
        deliver_in_batch(db, delivery, it);
        dir_db_exec(db, "RELEASE msg");
    }
    if (tx && dir_db_exec(db, "COMMIT") != SQLITE_OK) {
        snprintf(spool_err, sizeof(spool_err), "database: %s", sqlite3_errmsg(db));
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        for (size_t i = 0; i < n; i++)
            if (items[i].result == QUEUE_COMMIT_OK) {
                items[i].result = QUEUE_COMMIT_DB_FAILED;
                snprintf(items[i].err, sizeof(items[i].err), "%s", spool_err);
            }
    }
    /* 3. Nothing that was not committed stays behind (segment bytes no row names go with their
     * segment). */
    for (size_t i = 0; i < n; i++)
        if (items[i].result != QUEUE_COMMIT_OK && !items[i].data)
            unlink(items[i].blob_path);
}

void queue_spool_commit_batch(sqlite3 *db, const char *data_dir,
                              const struct queue_batch_delivery *delivery,
                              struct queue_spool_batch_item *items, size_t n)
{
    queue_spool_batch_make_durable(data_dir, items, n);
    queue_spool_batch_commit_rows(db, delivery, items, n);
}

enum queue_commit_result queue_spool_commit(sqlite3 *db, const char *data_dir,
                                            struct queue_spool_file *f,
                                            const struct queue_envelope *env, int64_t *message_id_r,
                                            const char **err_r)
{
    char blob_path[PATH_MAX];
    if (make_durable(data_dir, f, blob_path, err_r) < 0) {
        queue_spool_abort(f);
        return QUEUE_COMMIT_SPOOL_FAILED;
    }
    if (!db || insert_rows(db, f, env, message_id_r) < 0) {
        *err_r = db ? spool_err : "no database";
        unlink(blob_path);
        return QUEUE_COMMIT_DB_FAILED;
    }
    return QUEUE_COMMIT_OK;
}

/* queue_spool: the durable accept path (see queue_spool.h). The rule, in order:
 *   1. write the bytes to spool/tmp/<id>.tmp and fsync the file;
 *   2. rename it to blobs/<xx>/<id> and fsync that directory (the name is durable);
 *   3. commit one transaction with the blob, message and recipient rows (synchronous=FULL).
 * Only then may the caller answer 250. A crash between 2 and 3 leaves a blob without a row:
 * queue_recover() removes it at the next start (the client got no 250, so it retries). */
#include "queue/queue_spool.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/log.h"

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

static int make_durable(const char *data_dir, struct queue_spool_file *f, char *blob_path,
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
    if (fsync_dir(dir, err_r) < 0) {
        unlink(blob_path);
        return -1;
    }
    return 0;
}

static int insert_rows(sqlite3 *db, struct queue_spool_file *f, const struct queue_envelope *env,
                       int64_t *message_id_r)
{
    sqlite3_stmt *st = NULL;
    int rc;
    if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        return -1;
    rc = sqlite3_prepare_v2(db, "INSERT INTO blob (id, size, created) VALUES (?, ?, ?)", -1, &st,
                            NULL);
    if (rc != SQLITE_OK)
        goto fail;
    sqlite3_bind_text(st, 1, f->id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)f->written);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)env->received_at);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    st = NULL;
    if (rc != SQLITE_DONE)
        goto fail;
    rc = sqlite3_prepare_v2(db,
                            "INSERT INTO message (queue_id, blob_id, sender, size, received_at, "
                            "client_ip, helo, auth_user) VALUES (?1, ?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                            -1, &st, NULL);
    if (rc != SQLITE_OK)
        goto fail;
    sqlite3_bind_text(st, 1, f->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, env->sender, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)f->written);
    sqlite3_bind_int64(st, 4, (sqlite3_int64)env->received_at);
    sqlite3_bind_text(st, 5, env->client_ip ? env->client_ip : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, env->helo ? env->helo : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 7, env->auth_user ? env->auth_user : "", -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    st = NULL;
    if (rc != SQLITE_DONE)
        goto fail;
    int64_t message_id = sqlite3_last_insert_rowid(db);
    rc = sqlite3_prepare_v2(db,
                            "INSERT INTO queue_rcpt (message_id, address, original, kind, "
                            "route_id) VALUES (?, ?, ?, ?, ?)",
                            -1, &st, NULL);
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
    sqlite3_finalize(st);
    st = NULL;
    if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        goto fail;
    *message_id_r = message_id;
    return 0;
fail:
    snprintf(spool_err, sizeof(spool_err), "database: %s", sqlite3_errmsg(db));
    sqlite3_finalize(st);
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return -1;
}

enum queue_commit_result queue_spool_commit(sqlite3 *db, const char *data_dir,
                                            struct queue_spool_file *f,
                                            const struct queue_envelope *env,
                                            int64_t *message_id_r, const char **err_r)
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

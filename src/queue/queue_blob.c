/* queue_blob: the blob store's common side (queue.h) — where blob files live, unique ids, reading
 * a blob of either kind (own file or segment, queue_segment.h), releasing a blob when its last
 * reference goes, and start-up recovery (design.md §4).
 *
 *   queue_blob_path, queue_blob_tmp_path  <data_dir>/blobs/XX/<id>, <data_dir>/spool/tmp/<id>.tmp
 *   queue_dirs_create     data_dir, blobs/ with its 256 fan-out dirs 00..FF, spool/tmp
 *   queue_id_new          18 upper-case hex digits: 10 of the low 40 bits of the microsecond
 *                         clock, 4 of a per-process counter (random start), 4 random
 *   queue_blob_release    drop the blob row when nothing references it (inside a transaction)
 *   queue_blob_remove     after COMMIT: unlink the file, or punch the blob out of its segment
 *                         and remove the segment once no row names it
 *   queue_blob_open/pread/read_all   read either kind of blob
 *   queue_recover         at start: remove spool/tmp leftovers, blob files without a committed
 *                         row (logged as "removed partial spool file") and segments nothing
 *                         references; first drops blob rows nothing references any more (left
 *                         by deleting accounts or domains with their mailboxes), so their files
 *                         go too. This relies on every writer inserting a blob row in the same
 *                         transaction as its first reference.
 *
 * The clock bits come first so that the two-character fan-out directory changes about every 71
 * minutes and spreads files over all 256 directories. Failures return -1 with a message. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "dir/dir_db.h"
#include "lib/log.h"
#include "lib/xalloc.h"
#include "queue/queue.h"
#include "queue/queue_segment.h"

void queue_blob_path(const char *data_dir, const char *blob_id, char out[PATH_MAX])
{
    char fan[3] = {blob_id[0] ? blob_id[0] : '_', blob_id[0] && blob_id[1] ? blob_id[1] : '_', 0};
    snprintf(out, PATH_MAX, "%s/blobs/%s/%s", data_dir, fan, blob_id);
}

void queue_blob_tmp_path(const char *data_dir, const char *blob_id, char out[PATH_MAX])
{
    snprintf(out, PATH_MAX, "%s/spool/tmp/%s.tmp", data_dir, blob_id);
}

/* mkdir that accepts an existing directory. */
static int mkdir_one(const char *path, const char **err_r)
{
    if (mkdir(path, 0750) == 0)
        return 0;
    struct stat st;
    if (errno == EEXIST && stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        return 0;
    static __thread char msg[PATH_MAX + 64];
    snprintf(msg, sizeof(msg), "cannot create directory %s: %s", path, strerror(errno));
    *err_r = msg;
    return -1;
}

/* mkdir -p */
static int mkdir_parents(const char *path, const char **err_r)
{
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof(tmp), "%s", path) >= (int)sizeof(tmp)) {
        *err_r = "data directory path too long";
        return -1;
    }
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir_one(tmp, err_r) < 0)
            return -1;
        *p = '/';
    }
    return mkdir_one(tmp, err_r);
}

int queue_dirs_create(const char *data_dir, const char **err_r)
{
    char path[PATH_MAX];
    if (mkdir_parents(data_dir, err_r) < 0)
        return -1;
    snprintf(path, sizeof(path), "%s/blobs", data_dir);
    if (mkdir_one(path, err_r) < 0)
        return -1;
    static const char hex[] = "0123456789ABCDEF";
    for (int i = 0; i < 256; i++) {
        snprintf(path, sizeof(path), "%s/blobs/%c%c", data_dir, hex[i >> 4], hex[i & 15]);
        if (mkdir_one(path, err_r) < 0)
            return -1;
    }
    snprintf(path, sizeof(path), "%s/spool", data_dir);
    if (mkdir_one(path, err_r) < 0)
        return -1;
    snprintf(path, sizeof(path), "%s/spool/tmp", data_dir);
    return mkdir_one(path, err_r);
}

static uint16_t random16(void)
{
    uint16_t v = 0;
    if (getrandom(&v, sizeof(v), 0) != (ssize_t)sizeof(v)) {
        /* getrandom cannot fail for 2 bytes once the pool is initialised; fall back anyway. */
        struct timeval tv;
        gettimeofday(&tv, NULL);
        v = (uint16_t)((unsigned)tv.tv_usec ^ ((unsigned)getpid() << 3));
    }
    return v;
}

void queue_id_new(char out[QUEUE_ID_MAX])
{
    static atomic_uint counter;
    static atomic_bool seeded;
    if (!atomic_exchange(&seeded, true))
        atomic_fetch_add(&counter, random16());
    unsigned n = atomic_fetch_add(&counter, 1) & 0xFFFFu;
    struct timeval tv;
    gettimeofday(&tv, NULL);
    uint64_t usec = (uint64_t)tv.tv_sec * 1000000u + (uint64_t)tv.tv_usec;
    snprintf(out, QUEUE_ID_MAX, "%010llX%04X%04X", (unsigned long long)(usec & 0xFFFFFFFFFFull), n,
             (unsigned)random16());
}

static int db_fail(sqlite3 *db, const char *what, const char **err_r)
{
    static __thread char msg[512];
    snprintf(msg, sizeof(msg), "%s: %s", what, sqlite3_errmsg(db));
    if (err_r)
        *err_r = msg;
    return -1;
}

int queue_blob_release(sqlite3 *db, const char *blob_id, bool *unlink_r)
{
    *unlink_r = false;
    sqlite3_stmt *st = NULL;
    if (dir_db_prepare(db,
                       "SELECT EXISTS (SELECT 1 FROM message WHERE blob_id = ?1)"
                       "    OR EXISTS (SELECT 1 FROM mail WHERE blob_id = ?1)",
                       &st) != SQLITE_OK) {
        log_error("blob %s: %s", blob_id, sqlite3_errmsg(db));
        return -1;
    }
    sqlite3_bind_text(st, 1, blob_id, -1, SQLITE_TRANSIENT);
    if (sqlite3_step(st) != SQLITE_ROW) {
        log_error("blob %s: %s", blob_id, sqlite3_errmsg(db));
        dir_db_finish(st);
        return -1;
    }
    bool used = sqlite3_column_int(st, 0) != 0;
    dir_db_finish(st);
    if (used)
        return 0;
    if (dir_db_prepare(db, "DELETE FROM blob WHERE id = ?1", &st) != SQLITE_OK) {
        log_error("blob %s: %s", blob_id, sqlite3_errmsg(db));
        return -1;
    }
    sqlite3_bind_text(st, 1, blob_id, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st);
    dir_db_finish(st);
    if (rc != SQLITE_DONE) {
        log_error("blob %s: %s", blob_id, sqlite3_errmsg(db));
        return -1;
    }
    *unlink_r = true;
    return 0;
}

/* 1 when a blob row names the segment, 0 when none, -1 on a database error. */
static int segment_in_use(sqlite3 *db, uint32_t seg)
{
    sqlite3_stmt *st = NULL;
    int r = -1;
    if (dir_db_prepare(db, "SELECT EXISTS (SELECT 1 FROM blob WHERE segment = ?1)", &st) ==
        SQLITE_OK) {
        sqlite3_bind_int64(st, 1, seg);
        if (sqlite3_step(st) == SQLITE_ROW)
            r = sqlite3_column_int(st, 0) != 0;
    }
    dir_db_finish(st);
    return r;
}

void queue_blob_remove(sqlite3 *db, const char *data_dir, const char *blob_id)
{
    uint32_t seg;
    uint64_t off, len;
    char path[PATH_MAX];
    if (!queue_segment_locate(blob_id, &seg, &off, &len)) {
        queue_blob_path(data_dir, blob_id, path);
        if (remove(path) < 0 && errno != ENOENT)
            log_error("cannot remove %s: %s", path, strerror(errno));
        return;
    }
    queue_segment_punch(data_dir, seg, off, len);
    /* The active segment still grows; an older one goes with its last blob. */
    if (!db || seg == queue_segment_active())
        return;
    if (segment_in_use(db, seg) != 0) /* in use, or unknown: keep it */
        return;
    queue_segment_path(data_dir, seg, path);
    if (remove(path) == 0)
        log_info("message segment %s removed: no message in it is referenced any more", path);
    else if (errno != ENOENT)
        log_error("cannot remove %s: %s", path, strerror(errno));
}

/* ---- reading ---- */

int queue_blob_open(const char *data_dir, const char *blob_id, struct queue_blob_reader *r,
                    const char **err_r)
{
    static __thread char msg[PATH_MAX + 128];
    char path[PATH_MAX];
    uint32_t seg;
    bool in_segment = queue_segment_locate(blob_id, &seg, &r->base, &r->size);
    if (in_segment)
        queue_segment_path(data_dir, seg, path);
    else
        queue_blob_path(data_dir, blob_id, path);
    r->fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (r->fd < 0 || fstat(r->fd, &st) < 0) {
        snprintf(msg, sizeof(msg), "cannot open message file %s: %s", path, strerror(errno));
        queue_blob_close(r);
        *err_r = msg;
        return -1;
    }
    if (!in_segment) {
        r->base = 0;
        r->size = (uint64_t)st.st_size;
    } else if (r->size > 0 &&
               (r->base > (uint64_t)st.st_size || r->size > (uint64_t)st.st_size - r->base)) {
        snprintf(msg, sizeof(msg), "message %s: segment %s is too short", blob_id, path);
        queue_blob_close(r);
        *err_r = msg;
        return -1;
    }
    return 0;
}

long queue_blob_pread(const struct queue_blob_reader *r, void *p, size_t n, uint64_t pos)
{
    if (pos >= r->size)
        return 0;
    if (n > r->size - pos)
        n = (size_t)(r->size - pos);
    for (;;) {
        ssize_t got = pread(r->fd, p, n, (off_t)(r->base + pos));
        if (got < 0 && errno == EINTR)
            continue;
        return (long)got;
    }
}

void queue_blob_close(struct queue_blob_reader *r)
{
    if (r->fd >= 0)
        close(r->fd);
    r->fd = -1;
}

int queue_blob_read_all(const char *data_dir, const char *blob_id, char **data_r, size_t *len_r,
                        const char **err_r)
{
    static __thread char msg[QUEUE_BLOB_ID_MAX + 128];
    struct queue_blob_reader r;
    *data_r = NULL;
    *len_r = 0;
    if (queue_blob_open(data_dir, blob_id, &r, err_r) < 0)
        return -1;
    char *data = xmalloc((size_t)r.size + 1);
    size_t got = 0;
    while (got < r.size) {
        long n = queue_blob_pread(&r, data + got, (size_t)r.size - got, got);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    queue_blob_close(&r);
    if (got != r.size) {
        snprintf(msg, sizeof(msg), "cannot read message %s: %s", blob_id,
                 errno ? strerror(errno) : "short read");
        free(data);
        *err_r = msg;
        return -1;
    }
    data[got] = '\0';
    *data_r = data;
    *len_r = got;
    return 0;
}

/* ---- recovery ---- */

struct recover {
    sqlite3 *db;
    sqlite3_stmt *has_row;
    const char *data_dir;
    unsigned removed;
};

static void remove_partial(struct recover *rc, const char *path)
{
    if (unlink(path) == 0 || errno == ENOENT) {
        log_warn("removed partial spool file %s", path);
        rc->removed++;
    } else {
        log_error("cannot remove partial spool file %s: %s", path, strerror(errno));
    }
}

/* Does a committed blob row name this file, at its canonical path? -1 on a database error. */
static int blob_is_committed(struct recover *rc, const char *name, const char *path)
{
    char want[PATH_MAX];
    queue_blob_path(rc->data_dir, name, want);
    if (strcmp(want, path) != 0)
        return 0;
    sqlite3_reset(rc->has_row);
    sqlite3_bind_text(rc->has_row, 1, name, -1, SQLITE_TRANSIENT);
    int r = sqlite3_step(rc->has_row);
    if (r == SQLITE_ROW)
        return 1;
    if (r == SQLITE_DONE)
        return 0;
    return db_fail(rc->db, "queue recovery", NULL);
}

/* Walk one directory: every regular file is checked (check_rows) or removed outright; sub
 * directories are walked when depth allows. */
static int recover_dir(struct recover *rc, const char *dir, bool check_rows, int depth)
{
    DIR *d = opendir(dir);
    if (!d) {
        if (errno == ENOENT)
            return 0;
        log_error("queue recovery: cannot open %s: %s", dir, strerror(errno));
        return -1;
    }
    int ret = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char path[PATH_MAX];
        if (snprintf(path, sizeof(path), "%s/%s", dir, e->d_name) >= (int)sizeof(path))
            continue;
        struct stat st;
        if (lstat(path, &st) < 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            if (strcmp(e->d_name, "seg") == 0)
                continue; /* segments: recover_segments */
            if (depth > 0 && recover_dir(rc, path, check_rows, depth - 1) < 0)
                ret = -1;
            continue;
        }
        if (check_rows) {
            int c = blob_is_committed(rc, e->d_name, path);
            if (c < 0) {
                ret = -1;
                break;
            }
            if (c > 0)
                continue;
        }
        remove_partial(rc, path);
    }
    closedir(d);
    return ret;
}

/* Segment files that no blob row names (every segment is inactive at start). */
static int recover_segments(struct recover *rc)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s/blobs/seg", rc->data_dir);
    DIR *d = opendir(dir);
    if (!d)
        return errno == ENOENT ? 0 : -1;
    int ret = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        char *end = NULL;
        unsigned long long v = strtoull(e->d_name, &end, 16);
        if (e->d_name[0] == '.' || !end || *end || v == 0 || v > UINT32_MAX)
            continue;
        int used = segment_in_use(rc->db, (uint32_t)v);
        if (used < 0) {
            ret = db_fail(rc->db, "queue recovery", NULL);
            break;
        }
        if (used)
            continue;
        char path[PATH_MAX];
        queue_segment_path(rc->data_dir, (uint32_t)v, path);
        if (unlink(path) == 0) {
            log_info("queue recovery: removed message segment %s (nothing in it is referenced)",
                     path);
            rc->removed++;
        }
    }
    closedir(d);
    return ret;
}

int queue_recover(sqlite3 *db, const char *data_dir, unsigned *removed_r)
{
    struct recover rc = {.db = db, .data_dir = data_dir};
    *removed_r = 0;
    if (sqlite3_prepare_v2(db, "SELECT 1 FROM blob WHERE id = ?1", -1, &rc.has_row, NULL) !=
        SQLITE_OK) {
        log_error("queue recovery: %s", sqlite3_errmsg(db));
        return -1;
    }
    int ret = 0;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db,
                           "DELETE FROM blob WHERE NOT EXISTS (SELECT 1 FROM message"
                           "   WHERE message.blob_id = blob.id)"
                           " AND NOT EXISTS (SELECT 1 FROM mail WHERE mail.blob_id = blob.id)"
                           " RETURNING id",
                           -1, &st, NULL) != SQLITE_OK) {
        log_error("queue recovery: %s", sqlite3_errmsg(db));
        ret = -1;
    } else {
        int r;
        while ((r = sqlite3_step(st)) == SQLITE_ROW) {
            const char *id = (const char *)sqlite3_column_text(st, 0);
            uint32_t seg;
            uint64_t off, len;
            log_info("queue recovery: blob %s is no longer referenced", id);
            if (queue_segment_locate(id, &seg, &off, &len))
                queue_segment_punch(data_dir, seg, off, len);
        }
        if (r != SQLITE_DONE) {
            log_error("queue recovery: %s", sqlite3_errmsg(db));
            ret = -1;
        }
    }
    sqlite3_finalize(st);
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/spool/tmp", data_dir);
    if (recover_dir(&rc, path, false, 0) < 0)
        ret = -1;
    snprintf(path, sizeof(path), "%s/blobs", data_dir);
    if (recover_dir(&rc, path, true, 1) < 0)
        ret = -1;
    if (recover_segments(&rc) < 0)
        ret = -1;
    sqlite3_finalize(rc.has_row);
    *removed_r = rc.removed;
    return ret;
}

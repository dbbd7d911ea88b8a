/* store: the mailbox store (store.h) — folders with UIDVALIDITY/UIDNEXT/HIGHESTMODSEQ and message
 * rows that reference blobs (RFC 9051 §2.3.1.1 UIDs, RFC 7162 §3.1 mod-sequences).
 *
 *   store_folder_ensure   find or create a folder; a new folder's UIDVALIDITY is the current unix
 *                         time, or one more than the largest UIDVALIDITY in use if that is not
 *                         larger, so a re-created folder never reuses a value
 *   store_append          inside the caller's transaction: uid = uidnext, bump uidnext and
 *                         highest_modseq, insert the row with modseq = the new highest_modseq
 *   store_account_size    sum of message sizes of an account (quota)
 *   store_message_read    the message as a client reads it: prepended lines + blob bytes
 *   store_folder_get, store_mail_get, store_mail_list, store_prefix_format, store_mail_read
 *   store_blob_header_section, store_header_value   From/Subject for listings (RFC 5322 §2.2.3)
 *
 * A mailbox copy reads as "Return-Path: <sender>\r\n" ["Delivered-To: rcpt\r\n"] + blob; the two
 * lines are kept in the row (return_path, delivered_to), never written into the shared blob.
 * Every function returns -1 with a message in *err_r on failure. */
#include "store/store.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dir/dir_db.h"
#include "lib/str.h"
#include "lib/xalloc.h"
#include "queue/queue.h"

static int db_fail(sqlite3 *db, const char *what, const char **err_r)
{
    static __thread char msg[512];
    snprintf(msg, sizeof(msg), "%s: %s", what, sqlite3_errmsg(db));
    *err_r = msg;
    return -1;
}

static void copy_text(char *dst, size_t size, const unsigned char *src)
{
    snprintf(dst, size, "%s", src ? (const char *)src : "");
}

int store_folder_get(sqlite3 *db, int64_t account_id, const char *name, struct store_folder *out,
                     const char **err_r)
{
    sqlite3_stmt *st = NULL;
    if (dir_db_prepare(db,
                       "SELECT id, name, uidvalidity, uidnext, highest_modseq FROM folder"
                       " WHERE account_id = ?1 AND name = ?2",
                       &st) != SQLITE_OK)
        return db_fail(db, "folder lookup", err_r);
    sqlite3_bind_int64(st, 1, account_id);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st);
    int ret = 0;
    if (rc == SQLITE_ROW) {
        memset(out, 0, sizeof(*out));
        out->id = sqlite3_column_int64(st, 0);
        out->account_id = account_id;
        copy_text(out->name, sizeof(out->name), sqlite3_column_text(st, 1));
        out->uidvalidity = (uint32_t)sqlite3_column_int64(st, 2);
        out->uidnext = (uint32_t)sqlite3_column_int64(st, 3);
        out->highest_modseq = (uint64_t)sqlite3_column_int64(st, 4);
        ret = 1;
    } else if (rc != SQLITE_DONE) {
        ret = db_fail(db, "folder lookup", err_r);
    }
    dir_db_finish(st);
    return ret;
}

int store_folder_ensure(sqlite3 *db, int64_t account_id, const char *name, int64_t *folder_id_r,
                        const char **err_r)
{
    struct store_folder f;
    int r = store_folder_get(db, account_id, name, &f, err_r);
    if (r < 0)
        return -1;
    if (r == 0) {
        /* ON CONFLICT: another process may create the same folder at the same time. */
        sqlite3_stmt *st = NULL;
        if (dir_db_prepare(
                db,
                "INSERT INTO folder (account_id, name, uidvalidity, uidnext, highest_modseq)"
                " VALUES (?1, ?2, MAX(?3, COALESCE((SELECT MAX(uidvalidity) FROM folder), 0) + 1),"
                " 1, 1) ON CONFLICT (account_id, name) DO NOTHING",
                &st) != SQLITE_OK)
            return db_fail(db, "folder create", err_r);
        sqlite3_bind_int64(st, 1, account_id);
        sqlite3_bind_text(st, 2, name, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 3, (sqlite3_int64)time(NULL));
        int rc = sqlite3_step(st);
        dir_db_finish(st);
        if (rc != SQLITE_DONE)
            return db_fail(db, "folder create", err_r);
        r = store_folder_get(db, account_id, name, &f, err_r);
        if (r < 0)
            return -1;
        if (r == 0) {
            *err_r = "folder create: folder vanished";
            return -1;
        }
    }
    *folder_id_r = f.id;
    return 0;
}

int store_prefix_format(const char *return_path, const char *delivered_to, struct buf *out)
{
    size_t before = out->len;
    if (buf_printf(out, "Return-Path: <%s>\r\n", return_path ? return_path : "") < 0)
        return -1;
    if (delivered_to && *delivered_to &&
        buf_printf(out, "Delivered-To: %s\r\n", delivered_to) < 0) {
        out->len = before;
        out->data[before] = '\0';
        return -1;
    }
    return (int)(out->len - before);
}

static bool has_crlf(const char *s)
{
    return s && strpbrk(s, "\r\n") != NULL;
}

int store_append(sqlite3 *db, int64_t folder_id, const char *blob_id, uint64_t blob_size,
                 const char *return_path, const char *delivered_to, time_t internal_date,
                 uint32_t flags, uint32_t *uid_r, const char **err_r)
{
    if (!return_path)
        return_path = "";
    if (!delivered_to)
        delivered_to = "";
    if (has_crlf(return_path) || has_crlf(delivered_to)) {
        *err_r = "store append: line break in Return-Path or Delivered-To";
        return -1;
    }
    struct buf prefix;
    buf_init(&prefix, 0);
    int plen = store_prefix_format(return_path, delivered_to, &prefix);
    buf_free(&prefix);
    if (plen < 0) {
        *err_r = "store append: header too long";
        return -1;
    }

    sqlite3_stmt *st = NULL;
    if (dir_db_prepare(db,
                       "UPDATE folder SET uidnext = uidnext + 1,"
                       " highest_modseq = highest_modseq + 1"
                       " WHERE id = ?1 RETURNING uidnext - 1, highest_modseq",
                       &st) != SQLITE_OK)
        return db_fail(db, "store append", err_r);
    sqlite3_bind_int64(st, 1, folder_id);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        if (rc == SQLITE_DONE)
            *err_r = "store append: no such folder";
        else
            db_fail(db, "store append", err_r);
        dir_db_finish(st);
        return -1;
    }
    sqlite3_int64 uid = sqlite3_column_int64(st, 0);
    sqlite3_int64 modseq = sqlite3_column_int64(st, 1);
    /* Finish the UPDATE ... RETURNING statement before the next one runs. */
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        ;
    dir_db_finish(st);
    if (rc != SQLITE_DONE)
        return db_fail(db, "store append", err_r);
    if (uid < 1 || uid > (sqlite3_int64)UINT32_MAX - 1) {
        *err_r = "store append: folder has run out of UIDs";
        return -1;
    }

    if (dir_db_prepare(db,
                       "INSERT INTO mail (folder_id, uid, blob_id, size, internal_date, flags,"
                       " modseq, return_path, delivered_to)"
                       " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                       &st) != SQLITE_OK)
        return db_fail(db, "store append", err_r);
    sqlite3_bind_int64(st, 1, folder_id);
    sqlite3_bind_int64(st, 2, uid);
    sqlite3_bind_text(st, 3, blob_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 4, (sqlite3_int64)(blob_size + (uint64_t)plen));
    sqlite3_bind_int64(st, 5, (sqlite3_int64)internal_date);
    sqlite3_bind_int64(st, 6, flags);
    sqlite3_bind_int64(st, 7, modseq);
    sqlite3_bind_text(st, 8, return_path, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 9, delivered_to, -1, SQLITE_TRANSIENT);
    rc = sqlite3_step(st);
    dir_db_finish(st);
    if (rc != SQLITE_DONE)
        return db_fail(db, "store append", err_r);
    *uid_r = (uint32_t)uid;
    return 0;
}

int store_account_size(sqlite3 *db, int64_t account_id, uint64_t *size_r, const char **err_r)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db,
                           "SELECT COALESCE(SUM(m.size), 0) FROM mail m"
                           " JOIN folder f ON m.folder_id = f.id WHERE f.account_id = ?1",
                           -1, &st, NULL) != SQLITE_OK)
        return db_fail(db, "account size", err_r);
    sqlite3_bind_int64(st, 1, account_id);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        db_fail(db, "account size", err_r);
        sqlite3_finalize(st);
        return -1;
    }
    *size_r = (uint64_t)sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return 0;
}

#define MAIL_COLUMNS                                                                               \
    "id, folder_id, uid, blob_id, size, internal_date, flags, modseq, return_path, delivered_to"

static void mail_from_row(sqlite3_stmt *st, struct store_mail *m)
{
    memset(m, 0, sizeof(*m));
    m->id = sqlite3_column_int64(st, 0);
    m->folder_id = sqlite3_column_int64(st, 1);
    m->uid = (uint32_t)sqlite3_column_int64(st, 2);
    copy_text(m->blob_id, sizeof(m->blob_id), sqlite3_column_text(st, 3));
    m->size = (uint64_t)sqlite3_column_int64(st, 4);
    m->internal_date = (time_t)sqlite3_column_int64(st, 5);
    m->flags = (uint32_t)sqlite3_column_int64(st, 6);
    m->modseq = (uint64_t)sqlite3_column_int64(st, 7);
    copy_text(m->return_path, sizeof(m->return_path), sqlite3_column_text(st, 8));
    copy_text(m->delivered_to, sizeof(m->delivered_to), sqlite3_column_text(st, 9));
}

int store_mail_get(sqlite3 *db, int64_t folder_id, uint32_t uid, struct store_mail *out,
                   const char **err_r)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db,
                           "SELECT " MAIL_COLUMNS " FROM mail WHERE folder_id = ?1 AND uid = ?2",
                           -1, &st, NULL) != SQLITE_OK)
        return db_fail(db, "message lookup", err_r);
    sqlite3_bind_int64(st, 1, folder_id);
    sqlite3_bind_int64(st, 2, uid);
    int rc = sqlite3_step(st);
    int ret = 0;
    if (rc == SQLITE_ROW) {
        mail_from_row(st, out);
        ret = 1;
    } else if (rc != SQLITE_DONE) {
        ret = db_fail(db, "message lookup", err_r);
    }
    sqlite3_finalize(st);
    return ret;
}

int store_mail_list(sqlite3 *db, int64_t folder_id,
                    int (*fn)(void *ctx, const struct store_mail *mail), void *ctx,
                    const char **err_r)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db,
                           "SELECT " MAIL_COLUMNS " FROM mail WHERE folder_id = ?1 ORDER BY uid",
                           -1, &st, NULL) != SQLITE_OK)
        return db_fail(db, "message list", err_r);
    sqlite3_bind_int64(st, 1, folder_id);
    int count = 0, rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct store_mail m;
        mail_from_row(st, &m);
        count++;
        if (fn(ctx, &m) != 0) {
            rc = SQLITE_DONE;
            break;
        }
    }
    if (rc != SQLITE_DONE)
        count = db_fail(db, "message list", err_r);
    sqlite3_finalize(st);
    return count;
}

int store_mail_read(const char *data_dir, const struct store_mail *mail, struct buf *out,
                    const char **err_r)
{
    size_t start = out->len;
    if (store_prefix_format(mail->return_path, mail->delivered_to, out) < 0) {
        *err_r = "message too large for buffer";
        return -1;
    }
    char *data = NULL;
    size_t len = 0;
    if (queue_blob_read_all(data_dir, mail->blob_id, &data, &len, err_r) < 0 ||
        buf_append(out, data, len) < 0) {
        if (data)
            *err_r = "message too large for buffer";
        free(data);
        out->len = start;
        if (out->data)
            out->data[start] = '\0';
        return -1;
    }
    free(data);
    return 0;
}

int store_message_read(sqlite3 *db, const char *data_dir, int64_t account_id, const char *folder,
                       uint32_t uid, struct buf *out, const char **err_r)
{
    struct store_folder f;
    int r = store_folder_get(db, account_id, folder, &f, err_r);
    if (r < 0)
        return -1;
    if (r == 0) {
        *err_r = "no such folder";
        return -1;
    }
    struct store_mail m;
    r = store_mail_get(db, f.id, uid, &m, err_r);
    if (r < 0)
        return -1;
    if (r == 0) {
        *err_r = "no such message";
        return -1;
    }
    return store_mail_read(data_dir, &m, out, err_r);
}

int store_blob_header_section(const char *data_dir, const char *blob_id, size_t max,
                              struct buf *out, const char **err_r)
{
    static __thread char msg[QUEUE_BLOB_ID_MAX + 128];
    struct queue_blob_reader r;
    if (queue_blob_open(data_dir, blob_id, &r, err_r) < 0)
        return -1;
    uint64_t pos = 0;
    size_t start = out->len;
    char chunk[16384];
    int ret = 0;
    for (;;) {
        size_t want = sizeof(chunk);
        if (max && out->len - start + want > max)
            want = max - (out->len - start);
        if (want == 0)
            break;
        long n = queue_blob_pread(&r, chunk, want, pos);
        if (n < 0) {
            snprintf(msg, sizeof(msg), "cannot read message %s: %s", blob_id, strerror(errno));
            *err_r = msg;
            ret = -1;
            break;
        }
        if (n == 0)
            break;
        pos += (uint64_t)n;
        size_t scan = out->len > start + 2 ? out->len - 2 : start;
        if (buf_append(out, chunk, (size_t)n) < 0) {
            *err_r = "message header too large for buffer";
            ret = -1;
            break;
        }
        /* Stop after the empty line that ends the header section. */
        const char *h = out->data + start, *e = out->data + out->len;
        const char *end = NULL;
        if (out->len - start >= 2 && h[0] == '\r' && h[1] == '\n')
            end = h + 2;
        else if (out->len - start >= 1 && h[0] == '\n')
            end = h + 1;
        for (const char *p = out->data + scan; !end && p < e; p++) {
            if (*p != '\n')
                continue;
            if (p + 1 < e && p[1] == '\n')
                end = p + 2;
            else if (p + 2 < e && p[1] == '\r' && p[2] == '\n')
                end = p + 3;
        }
        if (end) {
            out->len = (size_t)(end - out->data);
            out->data[out->len] = '\0';
            break;
        }
    }
    queue_blob_close(&r);
    if (ret < 0 && out->data) {
        out->len = start;
        out->data[start] = '\0';
    }
    return ret;
}

char *store_header_value(const char *hdr, size_t len, const char *name)
{
    size_t nlen = strlen(name);
    const char *p = hdr, *end = hdr + len;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol)
            eol = end;
        size_t llen = (size_t)(eol - p);
        if (llen == 0 || (llen == 1 && *p == '\r'))
            break; /* the empty line ending the header section */
        if (llen > nlen && p[nlen] == ':' && str_istarts(p, name)) {
            struct buf v;
            buf_init(&v, 0);
            buf_append(&v, "", 0);
            const char *s = p + nlen + 1;
            for (;;) {
                for (; s < eol; s++) {
                    unsigned char ch = (unsigned char)*s;
                    if (ch == '\r')
                        continue;
                    char o = (ch < 0x20 || ch == 0x7f) ? ' ' : (char)ch;
                    buf_append(&v, &o, 1);
                }
                /* A line starting with SP or HTAB continues the field (folding). */
                if (eol + 1 < end && (eol[1] == ' ' || eol[1] == '\t')) {
                    s = eol + 1;
                    eol = memchr(s, '\n', (size_t)(end - s));
                    if (!eol)
                        eol = end;
                    continue;
                }
                break;
            }
            char *r = xstrdup(str_trim(v.data));
            buf_free(&v);
            return r;
        }
        p = eol < end ? eol + 1 : end;
    }
    return NULL;
}

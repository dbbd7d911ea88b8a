/* queue_deliver: local delivery of queued messages into account mailboxes (queue.h), with account
 * forwarding and quota (hmailserver-behaviour.md §4.5) and the Return-Path/Delivered-To lines of
 * §9 (kept in the mailbox row, see store.h).
 *
 *   queue_deliver_message   deliver every queued local recipient of one message, including the
 *                           local recipients that forwarding adds on the way; then remove the
 *                           message when no recipient is queued or held any more
 *   queue_deliver_pending   the same for every message with queued local recipients, plus
 *                           clean-up of messages left finished by a crash; *delivered_r counts
 *                           the messages processed
 *
 * Each recipient is one transaction (new forwarding rows + mailbox row + state change), so a
 * crash may deliver a copy twice but never loses one. The blob file is unlinked only after the
 * COMMIT that dropped its last reference. Recipient outcomes:
 *   no such account          -> failed, "Unknown user"
 *   account disabled         -> failed, "Account is not active"
 *   over quota               -> failed, "Inbox is full"
 *   forwarded (no keep copy) -> delivered, nothing stored in the account
 * Forwarding that cannot be done (hop limit of 25 reached, target rejected or empty) is logged
 * and the message is stored in the account instead, so it is never lost. A directory failure
 * leaves the recipient queued and returns -1. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dir/dir_db.h"
#include "lib/log.h"
#include "lib/str.h"
#include "lib/xalloc.h"
#include "policy/policy.h"
#include "queue/queue.h"
#include "queue/queue_bounce.h"
#include "store/store.h"

struct msg_row {
    int64_t id;
    char queue_id[QUEUE_ID_MAX];
    char blob_id[QUEUE_ID_MAX * 2];
    char sender[ADDR_MAX];
    uint64_t blob_size;
    time_t received_at;
};

struct rcpt_row {
    int64_t id;
    char address[ADDR_MAX];
    char original[ADDR_MAX];
    int hops;
};

static int db_fail(sqlite3 *db, const char *what, const char **err_r)
{
    static __thread char msg[512];
    snprintf(msg, sizeof(msg), "%s: %s", what, sqlite3_errmsg(db));
    *err_r = msg;
    return -1;
}

static void copy_col(char *dst, size_t size, sqlite3_stmt *st, int col)
{
    const unsigned char *s = sqlite3_column_text(st, col);
    snprintf(dst, size, "%s", s ? (const char *)s : "");
}

static int exec(sqlite3 *db, const char *sql, const char **err_r)
{
    if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
        return db_fail(db, sql, err_r);
    return 0;
}

static void rollback(sqlite3 *db)
{
    if (!sqlite3_get_autocommit(db))
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
}

/* 1 found, 0 gone, -1 error */
static int msg_load(sqlite3 *db, int64_t message_id, struct msg_row *m, const char **err_r)
{
    sqlite3_stmt *st = NULL;
    if (dir_db_prepare(db,
                       "SELECT m.queue_id, m.blob_id, m.sender, b.size, m.received_at"
                       " FROM message m JOIN blob b ON b.id = m.blob_id WHERE m.id = ?1",
                       &st) != SQLITE_OK)
        return db_fail(db, "load message", err_r);
    sqlite3_bind_int64(st, 1, message_id);
    int rc = sqlite3_step(st), ret = 0;
    if (rc == SQLITE_ROW) {
        memset(m, 0, sizeof(*m));
        m->id = message_id;
        copy_col(m->queue_id, sizeof(m->queue_id), st, 0);
        copy_col(m->blob_id, sizeof(m->blob_id), st, 1);
        copy_col(m->sender, sizeof(m->sender), st, 2);
        m->blob_size = (uint64_t)sqlite3_column_int64(st, 3);
        m->received_at = (time_t)sqlite3_column_int64(st, 4);
        ret = 1;
    } else if (rc != SQLITE_DONE) {
        ret = db_fail(db, "load message", err_r);
    }
    dir_db_finish(st);
    return ret;
}

/* The oldest queued local recipient of the message: 1 found, 0 none, -1 error. */
static int next_local(sqlite3 *db, int64_t message_id, struct rcpt_row *r, const char **err_r)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db,
                           "SELECT id, address, original, hops FROM queue_rcpt"
                           " WHERE message_id = ?1 AND kind = 'local' AND state = 'queued'"
                           " ORDER BY id LIMIT 1",
                           -1, &st, NULL) != SQLITE_OK)
        return db_fail(db, "next recipient", err_r);
    sqlite3_bind_int64(st, 1, message_id);
    int rc = sqlite3_step(st), ret = 0;
    if (rc == SQLITE_ROW) {
        r->id = sqlite3_column_int64(st, 0);
        copy_col(r->address, sizeof(r->address), st, 1);
        copy_col(r->original, sizeof(r->original), st, 2);
        r->hops = sqlite3_column_int(st, 3);
        ret = 1;
    } else if (rc != SQLITE_DONE) {
        ret = db_fail(db, "next recipient", err_r);
    }
    sqlite3_finalize(st);
    return ret;
}

/* 1 when the recipient row still exists in state 'queued', 0 when not, -1 on error. */
static int rcpt_is_queued(sqlite3 *db, int64_t rcpt_id, const char **err_r)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, "SELECT state = 'queued' FROM queue_rcpt WHERE id = ?1", -1, &st,
                           NULL) != SQLITE_OK)
        return db_fail(db, "recipient state", err_r);
    sqlite3_bind_int64(st, 1, rcpt_id);
    int rc = sqlite3_step(st), ret = 0;
    if (rc == SQLITE_ROW)
        ret = sqlite3_column_int(st, 0) ? 1 : 0;
    else if (rc != SQLITE_DONE)
        ret = db_fail(db, "recipient state", err_r);
    sqlite3_finalize(st);
    return ret;
}

/* Set a recipient's final or temporary state (inside or outside a transaction). */
static int rcpt_set_state(sqlite3 *db, int64_t rcpt_id, const char *state, const char *error,
                          const char **err_r)
{
    sqlite3_stmt *st = NULL;
    if (dir_db_prepare(db,
                       "UPDATE queue_rcpt SET state = ?2, last_error = ?3,"
                       " attempts = attempts + 1 WHERE id = ?1 AND state = 'queued'",
                       &st) != SQLITE_OK)
        return db_fail(db, "update recipient", err_r);
    sqlite3_bind_int64(st, 1, rcpt_id);
    sqlite3_bind_text(st, 2, state, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, error, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st);
    dir_db_finish(st);
    if (rc != SQLITE_DONE)
        return db_fail(db, "update recipient", err_r);
    return 0;
}

static int rcpt_insert(sqlite3 *db, int64_t message_id, const struct policy_recipient *p,
                       const char *original, int hops, const char **err_r)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db,
                           "INSERT INTO queue_rcpt (message_id, address, original, kind, route_id,"
                           " state, hops) VALUES (?1, ?2, ?3, ?4, ?5, 'queued', ?6)",
                           -1, &st, NULL) != SQLITE_OK)
        return db_fail(db, "forward recipient", err_r);
    sqlite3_bind_int64(st, 1, message_id);
    sqlite3_bind_text(st, 2, p->address, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 3, original, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 4, p->local ? "local" : "remote", -1, SQLITE_STATIC);
    if (!p->local && p->route_id > 0)
        sqlite3_bind_int64(st, 5, p->route_id);
    else
        sqlite3_bind_null(st, 5);
    sqlite3_bind_int(st, 6, hops);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return db_fail(db, "forward recipient", err_r);
    return 0;
}

/* Mark a recipient failed in its own transaction. */
static int rcpt_fail(sqlite3 *db, const struct msg_row *m, const struct rcpt_row *r,
                     const char *why, const char **err_r)
{
    if (rcpt_set_state(db, r->id, "failed", why, err_r) < 0)
        return -1;
    log_info("%s: to=<%s>, relay=local, status=failed (%s)", m->queue_id, r->address, why);
    return 0;
}

/* A directory problem: the recipient stays queued; the caller retries later. */
static int rcpt_tempfail(sqlite3 *db, const struct msg_row *m, const struct rcpt_row *r,
                         const char *why, const char **err_r)
{
    static __thread char msg[ADDR_MAX + 128];
    snprintf(msg, sizeof(msg), "%s: %s", r->address, why);
    const char *ignored;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, "UPDATE queue_rcpt SET last_error = ?2 WHERE id = ?1", -1, &st,
                           NULL) == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, r->id);
        sqlite3_bind_text(st, 2, why, -1, SQLITE_TRANSIENT);
        if (sqlite3_step(st) != SQLITE_DONE)
            db_fail(db, "update recipient", &ignored);
    }
    sqlite3_finalize(st);
    log_warn("%s: to=<%s>, relay=local, status=deferred (%s)", m->queue_id, r->address, why);
    *err_r = msg;
    return -1;
}

/* Inside the caller's transaction: append the message to the account's INBOX. Returns 1 when
 * stored (*uid_r), 0 when the quota does not allow it, -1 on a database error. */
static int store_in_inbox(sqlite3 *db, const struct queue_deliver_env *env, const struct msg_row *m,
                          const struct rcpt_row *r, const struct dir_account *acct, uint32_t *uid_r,
                          const char **err_r)
{
    int64_t folder_id;
    if (store_folder_ensure(db, acct->id, "INBOX", &folder_id, err_r) < 0)
        return -1;
    const char *dt = env->add_delivered_to ? r->original : NULL;
    if (acct->quota_mb > 0) {
        struct buf prefix;
        buf_init(&prefix, 0);
        int plen = store_prefix_format(m->sender, dt, &prefix);
        buf_free(&prefix);
        uint64_t used = 0;
        if (store_account_size(db, acct->id, &used, err_r) < 0)
            return -1;
        if (used + m->blob_size + (uint64_t)(plen > 0 ? plen : 0) > acct->quota_mb * 1024 * 1024)
            return 0;
    }
    if (store_append(db, folder_id, m->blob_id, m->blob_size, m->sender, dt, m->received_at, 0,
                     uid_r, err_r) < 0)
        return -1;
    return 1;
}

/* Deliver one queued local recipient. Returns 0 (delivered, forwarded or failed) or -1. */
static int deliver_one(sqlite3 *db, struct dir *dir, const struct queue_deliver_env *env,
                       const struct msg_row *m, const struct rcpt_row *r, const char **err_r)
{
    struct dir_account acct;
    enum dir_result dr = dir_account_get(dir, r->address, &acct);
    if (dr == DIR_NOTFOUND)
        return rcpt_fail(db, m, r, "Unknown user", err_r);
    if (dr != DIR_OK)
        return rcpt_tempfail(db, m, r, "Temporary lookup failure", err_r);
    if (!acct.enabled)
        return rcpt_fail(db, m, r, "Account is not active", err_r);

    /* Forwarding (§4.5): resolved before the transaction (the directory may be another handle
     * on the same database). */
    bool store_here = true;
    struct policy_rcpt_result res;
    memset(&res, 0, sizeof(res));
    bool forwarding = acct.forward[0] && !str_ieq(acct.forward, acct.address);
    int new_hops = r->hops + 1;
    if (forwarding && new_hops > POLICY_MAX_HOPS) {
        log_warn("%s: forwarding of %s to %s stopped after %d hops; stored in the account",
                 m->queue_id, acct.address, acct.forward, r->hops);
        forwarding = false;
    }
    if (forwarding) {
        /* Checked as if the account itself sent it, unauthenticated (§4.5). */
        policy_expand_address(dir, acct.address, acct.forward, new_hops, &res);
        if (res.verdict == POLICY_TEMPFAIL) {
            policy_rcpt_result_free(&res);
            return rcpt_tempfail(db, m, r, "Temporary lookup failure while forwarding", err_r);
        }
        if (res.verdict != POLICY_ACCEPT || res.recipients_count == 0) {
            char why[256];
            reply_format(res.reply, NULL, why, sizeof(why));
            log_warn("%s: forwarding of %s to %s failed (%s); stored in the account", m->queue_id,
                     acct.address, acct.forward,
                     res.verdict == POLICY_ACCEPT ? "no recipients" : why);
            forwarding = false;
        } else {
            store_here = acct.keep_copy;
        }
    }

    if (exec(db, "BEGIN IMMEDIATE", err_r) < 0) {
        policy_rcpt_result_free(&res);
        return -1;
    }
    /* Holding the write lock: is the recipient still ours to deliver (not delivered by another
     * worker, not deleted by `gannet queue del` since it was picked)? */
    int still = rcpt_is_queued(db, r->id, err_r);
    if (still <= 0) {
        rollback(db);
        policy_rcpt_result_free(&res);
        return still;
    }
    unsigned forwarded = 0;
    for (size_t i = 0; forwarding && i < res.recipients_count; i++) {
        const struct policy_recipient *p = &res.recipients[i];
        if (p->local && str_ieq(p->address, acct.address)) {
            store_here = true; /* forwarded back to itself: keep it here, once */
            continue;
        }
        if (rcpt_insert(db, m->id, p, acct.address, new_hops, err_r) < 0)
            goto fail;
        log_info("%s: forwarded %s -> %s (%s)", m->queue_id, acct.address, p->address,
                 p->local ? "local" : "remote");
        forwarded++;
    }

    const char *state = "delivered", *why = "";
    uint32_t uid = 0;
    if (store_here) {
        int q = store_in_inbox(db, env, m, r, &acct, &uid, err_r);
        if (q < 0)
            goto fail;
        if (q == 0) {
            state = "failed";
            why = "Inbox is full";
        }
    }
    if (rcpt_set_state(db, r->id, state, why, err_r) < 0)
        goto fail;
    if (exec(db, "COMMIT", err_r) < 0)
        goto fail;
    policy_rcpt_result_free(&res);
    if (uid)
        log_info("%s: to=<%s>, relay=local, status=delivered (uid %u)", m->queue_id, r->address,
                 uid);
    else if (*why)
        log_info("%s: to=<%s>, relay=local, status=failed (%s)", m->queue_id, r->address, why);
    else
        log_info("%s: to=<%s>, relay=local, status=forwarded (%u recipient%s)", m->queue_id,
                 r->address, forwarded, forwarded == 1 ? "" : "s");
    return 0;
fail:
    rollback(db);
    policy_rcpt_result_free(&res);
    return -1;
}

/* Inside the caller's transaction: when nothing is queued or held any more, delete the message
 * and release its blob. 1 = removed (*unlink_r: call queue_blob_remove after COMMIT), 0 = still
 * pending, -1 = error. */
static int msg_finish_tx(sqlite3 *db, const struct msg_row *m, bool *unlink_r, const char **err_r)
{
    *unlink_r = false;
    sqlite3_stmt *st = NULL;
    if (dir_db_prepare(db,
                       "SELECT COUNT(*) FROM queue_rcpt WHERE message_id = ?1"
                       " AND state IN ('queued', 'held')",
                       &st) != SQLITE_OK)
        goto dbfail;
    sqlite3_bind_int64(st, 1, m->id);
    if (sqlite3_step(st) != SQLITE_ROW)
        goto dbfail;
    int pending = sqlite3_column_int(st, 0);
    dir_db_finish(st);
    st = NULL;
    if (pending > 0)
        return 0;
    if (dir_db_prepare(db, "DELETE FROM message WHERE id = ?1", &st) != SQLITE_OK)
        goto dbfail;
    sqlite3_bind_int64(st, 1, m->id);
    if (sqlite3_step(st) != SQLITE_DONE)
        goto dbfail;
    dir_db_finish(st);
    if (queue_blob_release(db, m->blob_id, unlink_r) < 0) {
        *err_r = "cannot release message blob";
        return -1;
    }
    return 1;
dbfail:
    db_fail(db, "finish message", err_r);
    dir_db_finish(st);
    return -1;
}

/* When nothing is queued or held any more, delete the message and release its blob. */
static int msg_finish(sqlite3 *db, const char *data_dir, const struct msg_row *m,
                      const char **err_r)
{
    if (exec(db, "BEGIN IMMEDIATE", err_r) < 0)
        return -1;
    bool unlink_blob = false;
    int r = msg_finish_tx(db, m, &unlink_blob, err_r);
    if (r <= 0) {
        rollback(db);
        return r;
    }
    if (exec(db, "COMMIT", err_r) < 0) {
        rollback(db);
        return -1;
    }
    log_info("%s: removed from the queue", m->queue_id);
    if (unlink_blob)
        queue_blob_remove(db, data_dir, m->blob_id);
    return 0;
}

/* Recipients that failed at local delivery (quota, account gone or disabled) get one bounce to
 * the sender (hmailserver-behaviour.md §4.5), queued like any message; a local sender receives
 * it right away. A crash between queuing the bounce and marking the rows may bounce twice. */
static void bounce_local_failures(sqlite3 *db, struct dir *dir, const struct queue_deliver_env *env,
                                  const struct msg_row *m)
{
    sqlite3_stmt *st = NULL;
    if (!env->hostname ||
        sqlite3_prepare_v2(db,
                           "SELECT id, address, original, last_error FROM queue_rcpt WHERE"
                           " message_id = ?1 AND kind = 'local' AND state = 'failed' AND"
                           " bounced = 0",
                           -1, &st, NULL) != SQLITE_OK)
        return;
    sqlite3_bind_int64(st, 1, m->id);
    struct queue_bounce_rcpt br[64];
    char addrs[64][ADDR_MAX];
    char errs[64][600];
    int64_t ids[64];
    size_t n = 0;
    while (n < 64 && sqlite3_step(st) == SQLITE_ROW) {
        ids[n] = sqlite3_column_int64(st, 0);
        const unsigned char *orig = sqlite3_column_text(st, 2);
        const unsigned char *addr = sqlite3_column_text(st, 1);
        const unsigned char *why = sqlite3_column_text(st, 3);
        snprintf(addrs[n], sizeof(addrs[n]), "%s",
                 orig && *orig ? (const char *)orig : (const char *)addr);
        if (why && strcmp((const char *)why, "Inbox is full") == 0)
            queue_bounce_error_quota(errs[n], sizeof(errs[n]));
        else
            queue_bounce_error_text(why ? (const char *)why : "Delivery failed", errs[n],
                                    sizeof(errs[n]));
        br[n] = (struct queue_bounce_rcpt){
            .address = addrs[n], .error = errs[n], .status = "5.2.2", .permanent = true};
        if (!why || strcmp((const char *)why, "Inbox is full") != 0)
            br[n].status = "5.1.1";
        n++;
    }
    sqlite3_finalize(st);
    if (n == 0)
        return;
    const char *err = NULL;
    struct buf hdr, out;
    buf_init(&hdr, 0);
    buf_init(&out, 0);
    if (store_blob_header_section(env->data_dir, m->blob_id, QUEUE_BOUNCE_HEADER_MAX, &hdr, &err) <
        0)
        buf_reset(&hdr);
    buf_append(&hdr, "", 0);
    int64_t bounce_id = 0;
    if (queue_bounce_wanted(m->sender, hdr.data)) {
        if (queue_bounce_build(env->hostname, m->sender, hdr.data, br, n, 0, time(NULL), &out,
                               &err) < 0 ||
            queue_bounce_enqueue(db, dir, env->data_dir, m->sender, &out, &bounce_id, &err) < 0)
            log_error("%s: cannot queue a bounce to <%s>: %s", m->queue_id, m->sender,
                      err ? err : "?");
        else
            log_info("%s: bounce sent to <%s>", m->queue_id, m->sender);
    }
    buf_free(&hdr);
    buf_free(&out);
    for (size_t i = 0; i < n; i++) {
        if (sqlite3_prepare_v2(db, "UPDATE queue_rcpt SET bounced = 1 WHERE id = ?1", -1, &st,
                               NULL) == SQLITE_OK) {
            sqlite3_bind_int64(st, 1, ids[i]);
            sqlite3_step(st);
        }
        sqlite3_finalize(st);
        st = NULL;
    }
    if (bounce_id && queue_deliver_message(db, dir, env, bounce_id, &err) < 0)
        log_error("bounce delivery: %s", err);
}

int queue_deliver_message(sqlite3 *db, struct dir *dir, const struct queue_deliver_env *env,
                          int64_t message_id, const char **err_r)
{
    struct msg_row m;
    int r = msg_load(db, message_id, &m, err_r);
    if (r <= 0)
        return r; /* 0: already gone */
    struct queue_blob_reader blob;
    if (queue_blob_open(env->data_dir, m.blob_id, &blob, err_r) < 0)
        return -1; /* never fail recipients for this: a wrong data_dir must not empty the queue */
    queue_blob_close(&blob);
    /* Forwarding adds local rows as it goes; each pass takes the oldest queued one. Every pass
     * moves one row out of 'queued' and hop limits bound what forwarding can add. */
    struct rcpt_row rc;
    while ((r = next_local(db, message_id, &rc, err_r)) > 0)
        if (deliver_one(db, dir, env, &m, &rc, err_r) < 0)
            return -1;
    if (r < 0)
        return -1;
    bounce_local_failures(db, dir, env, &m);
    return msg_finish(db, env->data_dir, &m, err_r);
}

/* The simple case of local delivery, done inside the group commit's transaction (see queue.h):
 * 1 stored, 0 left for queue_deliver_message, -1 database error. */
static int deliver_simple_tx(sqlite3 *db, struct dir *dir, const struct queue_deliver_env *env,
                             const struct msg_row *m, const struct rcpt_row *r, uint32_t *uid_r,
                             const char **err_r)
{
    struct dir_account acct;
    if (dir_account_get(dir, r->address, &acct) != DIR_OK || !acct.enabled ||
        (acct.forward[0] && !str_ieq(acct.forward, acct.address)))
        return 0;
    int q = store_in_inbox(db, env, m, r, &acct, uid_r, err_r);
    if (q <= 0)
        return q; /* over quota: the bounce is built by the full path */
    if (rcpt_set_state(db, r->id, "delivered", "", err_r) < 0)
        return -1;
    return 1;
}

int queue_deliver_in_tx(sqlite3 *db, struct dir *dir, const struct queue_deliver_env *env,
                        int64_t message_id, bool *local_pending_r, const char **err_r)
{
    *local_pending_r = false;
    struct msg_row m;
    int r = msg_load(db, message_id, &m, err_r);
    if (r <= 0)
        return r;
    sqlite3_stmt *st = NULL;
    if (dir_db_prepare(db,
                       "SELECT id, address, original, hops FROM queue_rcpt"
                       " WHERE message_id = ?1 AND kind = 'local' AND state = 'queued'"
                       " ORDER BY id",
                       &st) != SQLITE_OK)
        return db_fail(db, "local recipients", err_r);
    sqlite3_bind_int64(st, 1, message_id);
    struct rcpt_row rows[8];
    size_t n = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == sizeof(rows) / sizeof(rows[0])) {
            *local_pending_r = true; /* many recipients: the rest take the full path */
            break;
        }
        struct rcpt_row *row = &rows[n++];
        row->id = sqlite3_column_int64(st, 0);
        copy_col(row->address, sizeof(row->address), st, 1);
        copy_col(row->original, sizeof(row->original), st, 2);
        row->hops = sqlite3_column_int(st, 3);
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        dir_db_finish(st);
        return db_fail(db, "local recipients", err_r);
    }
    dir_db_finish(st);
    uint32_t uids[8];
    for (size_t i = 0; i < n; i++) {
        int d = deliver_simple_tx(db, dir, env, &m, &rows[i], &uids[i], err_r);
        if (d < 0)
            return -1;
        if (d == 0) {
            *local_pending_r = true;
            uids[i] = 0;
        }
    }
    bool unlink_blob = false;
    int finished = msg_finish_tx(db, &m, &unlink_blob, err_r);
    if (finished < 0)
        return -1;
    /* unlink_blob stays false: the mailbox rows just written reference the blob. */
    for (size_t i = 0; i < n; i++)
        if (uids[i])
            log_info("%s: to=<%s>, relay=local, status=delivered (uid %u)", m.queue_id,
                     rows[i].address, uids[i]);
    if (finished)
        log_info("%s: removed from the queue", m.queue_id);
    return 0;
}

int queue_deliver_pending(sqlite3 *db, struct dir *dir, const struct queue_deliver_env *env,
                          unsigned *delivered_r, const char **err_r)
{
    *delivered_r = 0;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(
            db,
            "SELECT m.id FROM message m WHERE EXISTS (SELECT 1 FROM queue_rcpt r"
            "   WHERE r.message_id = m.id AND r.kind = 'local' AND r.state = 'queued')"
            " OR NOT EXISTS (SELECT 1 FROM queue_rcpt r"
            "   WHERE r.message_id = m.id AND r.state IN ('queued', 'held'))"
            " ORDER BY m.id",
            -1, &st, NULL) != SQLITE_OK)
        return db_fail(db, "pending messages", err_r);
    int64_t *ids = NULL;
    size_t n = 0, cap = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            ids = xrealloc(ids, cap * sizeof(*ids));
        }
        ids[n++] = sqlite3_column_int64(st, 0);
    }
    int ret = 0;
    if (rc != SQLITE_DONE)
        ret = db_fail(db, "pending messages", err_r);
    sqlite3_finalize(st);
    for (size_t i = 0; ret == 0 && i < n; i++) {
        if (queue_deliver_message(db, dir, env, ids[i], err_r) < 0)
            ret = -1;
        else
            (*delivered_r)++;
    }
    free(ids);
    return ret;
}

int queue_message_finish(sqlite3 *db, const char *data_dir, int64_t message_id, const char **err_r)
{
    struct msg_row m;
    int r = msg_load(db, message_id, &m, err_r);
    if (r <= 0)
        return r;
    return msg_finish(db, data_dir, &m, err_r);
}

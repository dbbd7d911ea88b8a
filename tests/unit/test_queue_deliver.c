/* test_queue_deliver: local delivery (queue_deliver.c) and the blob helpers (queue_blob.c) on a
 * real SQLite database and data directory (mkdtemp), with the SQLite directory backend over the
 * same database: single and shared-blob delivery, forwarding (keep copy or not, to a remote
 * address, loops), quota, missing/disabled accounts, remote recipients keeping the message,
 * directory failures, pending-delivery recovery, queue ids and start-up recovery of spool files. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dir/dir_db.h"
#include "dir/dir_mem.h"
#include "dir/dir_sqlite.h"
#include "lib/log.h"
#include "queue/queue.h"
#include "store/store.h"

#define BODY "Received: from x\r\nFrom: s@remote.test\r\nSubject: test\r\n\r\nhello\r\n"

struct fx {
    char dir[64];
    sqlite3 *db;
    struct dir *dir_api;
    struct queue_deliver_env env;
};

static void exec_ok(sqlite3 *db, const char *sql)
{
    char *emsg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &emsg) != SQLITE_OK)
        fail_msg("%s: %s", sql, emsg ? emsg : "?");
}

static void execf(sqlite3 *db, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *sql = sqlite3_vmprintf(fmt, ap);
    va_end(ap);
    exec_ok(db, sql);
    sqlite3_free(sql);
}

static int64_t query_int(sqlite3 *db, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *sql = sqlite3_vmprintf(fmt, ap);
    va_end(ap);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        fail_msg("%s: %s", sql, sqlite3_errmsg(db));
    sqlite3_free(sql);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

/* One text value (caller frees), or NULL when there is no row. */
static char *query_text(sqlite3 *db, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *sql = sqlite3_vmprintf(fmt, ap);
    va_end(ap);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        fail_msg("%s: %s", sql, sqlite3_errmsg(db));
    sqlite3_free(sql);
    char *r = NULL;
    if (sqlite3_step(st) == SQLITE_ROW)
        r = strdup((const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    return r;
}

static void add_account(struct fx *f, const char *addr, int enabled, int quota_mb,
                        const char *forward, int keep_copy)
{
    execf(f->db,
          "INSERT INTO account (domain_id, address, enabled, quota_mb, forward, keep_copy)"
          " VALUES (1, %Q, %d, %d, %Q, %d)",
          addr, enabled, quota_mb, forward, keep_copy);
}

static int64_t account_id(struct fx *f, const char *addr)
{
    return query_int(f->db, "SELECT id FROM account WHERE address = %Q", addr);
}

static int64_t mails_of(struct fx *f, const char *addr)
{
    return query_int(f->db,
                     "SELECT COUNT(*) FROM mail m JOIN folder fo ON fo.id = m.folder_id"
                     " JOIN account a ON a.id = fo.account_id WHERE a.address = %Q",
                     addr);
}

static bool blob_file_exists(struct fx *f, const char *blob_id)
{
    char path[PATH_MAX];
    queue_blob_path(f->dir, blob_id, path);
    return access(path, F_OK) == 0;
}

/* Accept a message the way queue_spool does: blob file, then blob + message + rcpt rows.
 * rcpts: "local:addr" or "remote:addr". Returns the message id; blob id in blob_r. */
static int64_t enqueue(struct fx *f, const char *sender, const char *const *rcpts, size_t n,
                       char blob_r[QUEUE_ID_MAX])
{
    queue_id_new(blob_r);
    char path[PATH_MAX];
    queue_blob_path(f->dir, blob_r, path);
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    fputs(BODY, fp);
    fclose(fp);
    exec_ok(f->db, "BEGIN");
    execf(f->db, "INSERT INTO blob (id, size, created) VALUES (%Q, %d, 0)", blob_r,
          (int)strlen(BODY));
    execf(f->db,
          "INSERT INTO message (queue_id, blob_id, sender, size, received_at)"
          " VALUES (%Q, %Q, %Q, %d, 1700000000)",
          blob_r, blob_r, sender, (int)strlen(BODY));
    int64_t id = sqlite3_last_insert_rowid(f->db);
    for (size_t i = 0; i < n; i++) {
        bool local = strncmp(rcpts[i], "local:", 6) == 0;
        const char *addr = strchr(rcpts[i], ':') + 1;
        execf(f->db,
              "INSERT INTO queue_rcpt (message_id, address, original, kind)"
              " VALUES (%lld, %Q, %Q, %Q)",
              (long long)id, addr, addr, local ? "local" : "remote");
    }
    exec_ok(f->db, "COMMIT");
    return id;
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/gannet-deliver-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    const char *err = NULL;
    assert_int_equal(queue_dirs_create(f->dir, &err), 0);
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/gannet.db", f->dir);
    f->db = dir_db_open(path, true, &err);
    assert_non_null(f->db);
    assert_int_equal(dir_db_migrate(f->db, &err), 0);
    exec_ok(f->db, "INSERT INTO domain (name) VALUES ('example.test')");
    f->dir_api = dir_sqlite_new(f->db);
    assert_non_null(f->dir_api);
    f->env.data_dir = f->dir;
    f->env.add_delivered_to = true;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    dir_close(&f->dir_api);
    dir_db_close(&f->db);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static void deliver_ok(struct fx *f, int64_t msg)
{
    const char *err = NULL;
    if (queue_deliver_message(f->db, f->dir_api, &f->env, msg, &err) != 0)
        fail_msg("delivery failed: %s", err ? err : "?");
}

/* ---- tests ---- */

static void test_single_local(void **state)
{
    struct fx *f = *state;
    add_account(f, "a@example.test", 1, 0, "", 0);
    const char *r[] = {"local:a@example.test"};
    char blob[QUEUE_ID_MAX];
    int64_t msg = enqueue(f, "s@remote.test", r, 1, blob);
    deliver_ok(f, msg);

    assert_int_equal(query_int(f->db, "SELECT COUNT(*) FROM message"), 0);
    assert_int_equal(query_int(f->db, "SELECT COUNT(*) FROM queue_rcpt"), 0);
    assert_int_equal(mails_of(f, "a@example.test"), 1);
    assert_true(blob_file_exists(f, blob)); /* still referenced by the mailbox */
    assert_int_equal(query_int(f->db, "SELECT COUNT(*) FROM blob"), 1);

    struct buf out;
    buf_init(&out, 0);
    const char *err = NULL;
    assert_int_equal(
        store_message_read(f->db, f->dir, account_id(f, "a@example.test"), "INBOX", 1, &out, &err),
        0);
    assert_string_equal(out.data, "Return-Path: <s@remote.test>\r\n"
                                  "Delivered-To: a@example.test\r\n" BODY);
    buf_free(&out);
    /* internal date = time the message was received */
    assert_int_equal(query_int(f->db, "SELECT internal_date FROM mail"), 1700000000);

    /* Without Delivered-To, and the null sender. */
    f->env.add_delivered_to = false;
    msg = enqueue(f, "", r, 1, blob);
    deliver_ok(f, msg);
    buf_init(&out, 0);
    assert_int_equal(
        store_message_read(f->db, f->dir, account_id(f, "a@example.test"), "INBOX", 2, &out, &err),
        0);
    assert_string_equal(out.data, "Return-Path: <>\r\n" BODY);
    buf_free(&out);

    /* Delivering a message that is gone is a no-op. */
    assert_int_equal(queue_deliver_message(f->db, f->dir_api, &f->env, msg, &err), 0);
}

static void test_shared_blob(void **state)
{
    struct fx *f = *state;
    add_account(f, "a@example.test", 1, 0, "", 0);
    add_account(f, "b@example.test", 1, 0, "", 0);
    const char *r[] = {"local:a@example.test", "local:b@example.test"};
    char blob[QUEUE_ID_MAX];
    int64_t msg = enqueue(f, "s@remote.test", r, 2, blob);
    deliver_ok(f, msg);
    assert_int_equal(mails_of(f, "a@example.test"), 1);
    assert_int_equal(mails_of(f, "b@example.test"), 1);
    assert_int_equal(query_int(f->db, "SELECT COUNT(DISTINCT blob_id) FROM mail"), 1);
    assert_int_equal(query_int(f->db, "SELECT COUNT(*) FROM blob"), 1);
    assert_int_equal(query_int(f->db, "SELECT COUNT(*) FROM message"), 0);
    assert_true(blob_file_exists(f, blob));

    /* The blob goes only with its last reference. */
    bool unlink_blob = true;
    execf(f->db,
          "DELETE FROM mail WHERE folder_id IN (SELECT id FROM folder WHERE account_id=%lld)",
          (long long)account_id(f, "a@example.test"));
    assert_int_equal(queue_blob_release(f->db, blob, &unlink_blob), 0);
    assert_false(unlink_blob);
    assert_int_equal(query_int(f->db, "SELECT COUNT(*) FROM blob"), 1);
    exec_ok(f->db, "DELETE FROM mail");
    assert_int_equal(queue_blob_release(f->db, blob, &unlink_blob), 0);
    assert_true(unlink_blob);
    assert_int_equal(query_int(f->db, "SELECT COUNT(*) FROM blob"), 0);
}

static void test_all_failed_releases_blob(void **state)
{
    struct fx *f = *state;
    add_account(f, "off@example.test", 0, 0, "", 0);
    const char *r[] = {"local:off@example.test", "local:gone@example.test"};
    char blob[QUEUE_ID_MAX];
    int64_t msg = enqueue(f, "s@remote.test", r, 2, blob);
    /* Look at the states before the message is removed: keep it with a held rcpt. */
    execf(f->db,
          "INSERT INTO queue_rcpt (message_id, address, original, kind, state)"
          " VALUES (%lld, 'h@remote.test', 'h@remote.test', 'remote', 'held')",
          (long long)msg);
    deliver_ok(f, msg);
    char *s = query_text(f->db, "SELECT state || '/' || last_error FROM queue_rcpt"
                                " WHERE address = 'off@example.test'");
    assert_string_equal(s, "failed/Account is not active");
    free(s);
    s = query_text(f->db, "SELECT state || '/' || last_error FROM queue_rcpt"
                          " WHERE address = 'gone@example.test'");
    assert_string_equal(s, "failed/Unknown user");
    free(s);
    assert_int_equal(query_int(f->db, "SELECT COUNT(*) FROM message"), 1);
    assert_true(blob_file_exists(f, blob));

    /* The held recipient goes: now nothing references the blob; file unlinked after commit. */
    exec_ok(f->db, "UPDATE queue_rcpt SET state = 'failed' WHERE state = 'held'");
    deliver_ok(f, msg);
    assert_int_equal(query_int(f->db, "SELECT COUNT(*) FROM message"), 0);
    assert_int_equal(query_int(f->db, "SELECT COUNT(*) FROM queue_rcpt"), 0);
    assert_int_equal(query_int(f->db, "SELECT COUNT(*) FROM blob"), 0);
    assert_false(blob_file_exists(f, blob));
}

static void test_forward(void **state)
{
    struct fx *f = *state;
    static const struct {
        int keep_copy;
        int64_t want_a, want_b;
    } cases[] = {{0, 0, 1}, {1, 1, 1}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        exec_ok(f->db, "DELETE FROM account; DELETE FROM mail;");
        add_account(f, "a@example.test", 1, 0, "b@example.test", cases[i].keep_copy);
        add_account(f, "b@example.test", 1, 0, "", 0);
        const char *r[] = {"local:a@example.test", "remote:keep@remote.test"};
        char blob[QUEUE_ID_MAX];
        int64_t msg = enqueue(f, "s@remote.test", r, 2, blob);
        deliver_ok(f, msg);
        assert_int_equal(mails_of(f, "a@example.test"), cases[i].want_a);
        assert_int_equal(mails_of(f, "b@example.test"), cases[i].want_b);
        /* The forwarded row: original = the forwarding account, one hop, delivered. */
        char *s = query_text(f->db,
                             "SELECT kind || '/' || state || '/' || original || '/' || hops"
                             " FROM queue_rcpt WHERE message_id = %lld AND address = %Q",
                             (long long)msg, "b@example.test");
        assert_non_null(s);
        assert_string_equal(s, "local/delivered/a@example.test/1");
        free(s);
        s = query_text(f->db,
                       "SELECT state FROM queue_rcpt WHERE address = 'a@example.test'"
                       " AND message_id = %lld",
                       (long long)msg);
        assert_string_equal(s, "delivered");
        free(s);
        /* Delivered-To in b's copy names a@ (the forwarding account); Return-Path unchanged. */
        s = query_text(f->db,
                       "SELECT m.return_path || '/' || m.delivered_to FROM mail m JOIN folder fo"
                       " ON fo.id = m.folder_id WHERE fo.account_id = %lld",
                       (long long)account_id(f, "b@example.test"));
        assert_string_equal(s, "s@remote.test/a@example.test");
        free(s);
        assert_int_equal(query_int(f->db,
                                   "SELECT COUNT(*) FROM queue_rcpt WHERE"
                                   " message_id = %lld AND state = 'queued'",
                                   (long long)msg),
                         1); /* only the remote one */
    }
}

static void test_forward_remote(void **state)
{
    struct fx *f = *state;
    add_account(f, "a@example.test", 1, 0, "away@elsewhere.test", 0);
    const char *r[] = {"local:a@example.test"};
    char blob[QUEUE_ID_MAX];
    int64_t msg = enqueue(f, "s@remote.test", r, 1, blob);
    deliver_ok(f, msg);
    assert_int_equal(mails_of(f, "a@example.test"), 0);
    char *s = query_text(f->db, "SELECT kind || '/' || state || '/' || original || '/' || hops"
                                " FROM queue_rcpt WHERE address = 'away@elsewhere.test'");
    assert_non_null(s);
    assert_string_equal(s, "remote/queued/a@example.test/1");
    free(s);
    /* The message stays for outbound delivery, with its blob. */
    assert_int_equal(
        query_int(f->db, "SELECT COUNT(*) FROM message WHERE id = %lld", (long long)msg), 1);
    assert_true(blob_file_exists(f, blob));
}

static void test_forward_loop(void **state)
{
    struct fx *f = *state;
    add_account(f, "a@example.test", 1, 0, "b@example.test", 0);
    add_account(f, "b@example.test", 1, 0, "a@example.test", 0);
    const char *r[] = {"local:a@example.test", "remote:keep@remote.test"};
    char blob[QUEUE_ID_MAX];
    int64_t msg = enqueue(f, "s@remote.test", r, 2, blob);
    deliver_ok(f, msg);
    /* The loop stops at the hop limit and the message is kept exactly once. */
    assert_int_equal(mails_of(f, "a@example.test"), 0);
    assert_int_equal(mails_of(f, "b@example.test"), 1); /* hops 25 is b's turn */
    assert_int_equal(query_int(f->db, "SELECT MAX(hops) FROM queue_rcpt"), 25);
    assert_int_equal(query_int(f->db, "SELECT COUNT(*) FROM queue_rcpt WHERE kind = 'local'"), 26);
    assert_int_equal(query_int(f->db, "SELECT COUNT(*) FROM queue_rcpt WHERE kind = 'local'"
                                      " AND state <> 'delivered'"),
                     0);
}

static void test_forward_to_self_via_alias(void **state)
{
    struct fx *f = *state;
    add_account(f, "a@example.test", 1, 0, "me@example.test", 0);
    exec_ok(f->db, "INSERT INTO alias (domain_id, address, target)"
                   " VALUES (1, 'me@example.test', 'a@example.test')");
    const char *r[] = {"local:a@example.test"};
    char blob[QUEUE_ID_MAX];
    int64_t msg = enqueue(f, "s@remote.test", r, 1, blob);
    deliver_ok(f, msg);
    assert_int_equal(mails_of(f, "a@example.test"), 1);
}

static void test_forward_unknown_target_keeps(void **state)
{
    struct fx *f = *state;
    add_account(f, "a@example.test", 1, 0, "nobody@example.test", 0);
    const char *r[] = {"local:a@example.test"};
    char blob[QUEUE_ID_MAX];
    int64_t msg = enqueue(f, "s@remote.test", r, 1, blob);
    deliver_ok(f, msg);
    assert_int_equal(mails_of(f, "a@example.test"), 1); /* failure only logged, message kept */
}

static void test_quota(void **state)
{
    struct fx *f = *state;
    add_account(f, "full@example.test", 1, 1, "", 0);
    add_account(f, "fits@example.test", 1, 1, "", 0);
    const char *err = NULL;
    int64_t folder;
    /* 1 MB quota; full@ already holds 1 MB minus 10 bytes, fits@ 1 MB minus 1000. */
    char blob[QUEUE_ID_MAX];
    const char *none[] = {"remote:x@remote.test"};
    enqueue(f, "s@remote.test", none, 1, blob);
    struct {
        const char *addr;
        int used;
    } fill[] = {{"full@example.test", 1048576 - 10}, {"fits@example.test", 1048576 - 1000}};
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(
            store_folder_ensure(f->db, account_id(f, fill[i].addr), "INBOX", &folder, &err), 0);
        execf(f->db,
              "INSERT INTO mail (folder_id, uid, blob_id, size, internal_date, modseq)"
              " VALUES (%lld, 100, %Q, %d, 0, 1)",
              (long long)folder, blob, fill[i].used);
    }
    const char *r[] = {"local:full@example.test", "local:fits@example.test"};
    int64_t msg = enqueue(f, "s@remote.test", r, 2, blob);
    assert_true(strlen(BODY) + 60 < 1000);
    f->env.add_delivered_to = false;
    deliver_ok(f, msg);
    assert_int_equal(mails_of(f, "full@example.test"), 1); /* only the filler */
    assert_int_equal(mails_of(f, "fits@example.test"), 2);
    assert_int_equal(
        query_int(f->db, "SELECT COUNT(*) FROM message WHERE id = %lld", (long long)msg), 0);
}

static void test_quota_state(void **state)
{
    struct fx *f = *state;
    add_account(f, "full@example.test", 1, 1, "", 0);
    const char *err = NULL;
    int64_t folder;
    char blob[QUEUE_ID_MAX];
    const char *r[] = {"local:full@example.test", "remote:x@remote.test"};
    int64_t msg = enqueue(f, "s@remote.test", r, 2, blob);
    assert_int_equal(
        store_folder_ensure(f->db, account_id(f, "full@example.test"), "INBOX", &folder, &err), 0);
    execf(f->db,
          "INSERT INTO mail (folder_id, uid, blob_id, size, internal_date, modseq)"
          " VALUES (%lld, 100, %Q, %d, 0, 1)",
          (long long)folder, blob, 1048576);
    deliver_ok(f, msg);
    char *s = query_text(f->db, "SELECT state || '/' || last_error || '/' || attempts"
                                " FROM queue_rcpt WHERE address = 'full@example.test'");
    assert_string_equal(s, "failed/Inbox is full/1");
    free(s);
}

static void test_remote_keeps_message(void **state)
{
    struct fx *f = *state;
    add_account(f, "a@example.test", 1, 0, "", 0);
    const char *r[] = {"remote:x@remote.test", "local:a@example.test"};
    char blob[QUEUE_ID_MAX];
    int64_t msg = enqueue(f, "s@remote.test", r, 2, blob);
    deliver_ok(f, msg);
    assert_int_equal(mails_of(f, "a@example.test"), 1);
    char *s = query_text(f->db, "SELECT state FROM queue_rcpt WHERE address = 'x@remote.test'");
    assert_string_equal(s, "queued");
    free(s);
    assert_int_equal(
        query_int(f->db, "SELECT COUNT(*) FROM message WHERE id = %lld", (long long)msg), 1);
    assert_true(blob_file_exists(f, blob));
    /* Once the remote recipient is done elsewhere, the next pass removes the message but the
     * blob stays for the mailbox copy. */
    exec_ok(f->db, "UPDATE queue_rcpt SET state = 'delivered' WHERE kind = 'remote'");
    deliver_ok(f, msg);
    assert_int_equal(query_int(f->db, "SELECT COUNT(*) FROM message"), 0);
    assert_true(blob_file_exists(f, blob));
    assert_int_equal(query_int(f->db, "SELECT COUNT(*) FROM blob"), 1);
}

static void test_directory_failure(void **state)
{
    struct fx *f = *state;
    add_account(f, "a@example.test", 1, 0, "", 0);
    const char *r[] = {"local:a@example.test"};
    char blob[QUEUE_ID_MAX];
    int64_t msg = enqueue(f, "s@remote.test", r, 1, blob);
    struct dir *mem = dir_mem_new();
    dir_mem_fail_all(mem, DIR_TEMPFAIL);
    const char *err = NULL;
    assert_int_equal(queue_deliver_message(f->db, mem, &f->env, msg, &err), -1);
    assert_non_null(err);
    dir_close(&mem);
    char *s = query_text(f->db, "SELECT state FROM queue_rcpt");
    assert_string_equal(s, "queued"); /* never "Unknown user" for an outage */
    free(s);
    assert_int_equal(mails_of(f, "a@example.test"), 0);
    /* Retried with a working directory. */
    deliver_ok(f, msg);
    assert_int_equal(mails_of(f, "a@example.test"), 1);
}

static void test_missing_blob_file(void **state)
{
    struct fx *f = *state;
    add_account(f, "a@example.test", 1, 0, "", 0);
    const char *r[] = {"local:a@example.test"};
    char blob[QUEUE_ID_MAX];
    int64_t msg = enqueue(f, "s@remote.test", r, 1, blob);
    struct queue_deliver_env wrong = {.data_dir = "/nonexistent/gannet", .add_delivered_to = 0};
    const char *err = NULL;
    assert_int_equal(queue_deliver_message(f->db, f->dir_api, &wrong, msg, &err), -1);
    assert_int_equal(query_int(f->db, "SELECT COUNT(*) FROM queue_rcpt WHERE state = 'queued'"), 1);
}

static void test_pending(void **state)
{
    struct fx *f = *state;
    add_account(f, "a@example.test", 1, 0, "", 0);
    const char *r[] = {"local:a@example.test"};
    const char *remote[] = {"remote:x@remote.test"};
    char blob[QUEUE_ID_MAX], blob_done[QUEUE_ID_MAX], blob_remote[QUEUE_ID_MAX];
    enqueue(f, "s@remote.test", r, 1, blob);
    enqueue(f, "s@remote.test", r, 1, blob);
    enqueue(f, "s@remote.test", remote, 1, blob_remote);
    /* A message finished before a crash but not yet removed. */
    int64_t done = enqueue(f, "s@remote.test", remote, 1, blob_done);
    execf(f->db, "UPDATE queue_rcpt SET state = 'failed' WHERE message_id = %lld", (long long)done);
    unsigned n = 0;
    const char *err = NULL;
    assert_int_equal(queue_deliver_pending(f->db, f->dir_api, &f->env, &n, &err), 0);
    assert_int_equal(n, 3);
    assert_int_equal(mails_of(f, "a@example.test"), 2);
    assert_int_equal(query_int(f->db, "SELECT COUNT(*) FROM message"), 1); /* the remote one */
    assert_false(blob_file_exists(f, blob_done));
    assert_true(blob_file_exists(f, blob_remote));
    assert_int_equal(queue_deliver_pending(f->db, f->dir_api, &f->env, &n, &err), 0);
    assert_int_equal(n, 0);
}

static int cmp_id(const void *a, const void *b)
{
    return strcmp(a, b);
}

static void test_queue_id(void **state)
{
    (void)state;
    enum { N = 20000 };
    char(*ids)[QUEUE_ID_MAX] = calloc(N, QUEUE_ID_MAX);
    for (int i = 0; i < N; i++) {
        queue_id_new(ids[i]);
        assert_int_equal(strlen(ids[i]), 18);
        assert_int_equal(strspn(ids[i], "0123456789ABCDEF"), 18);
    }
    qsort(ids, N, QUEUE_ID_MAX, cmp_id);
    for (int i = 1; i < N; i++)
        assert_string_not_equal(ids[i - 1], ids[i]);
    free(ids);
}

static void test_paths(void **state)
{
    (void)state;
    char p[PATH_MAX];
    queue_blob_path("/var/g", "ABCDEF0123", p);
    assert_string_equal(p, "/var/g/blobs/AB/ABCDEF0123");
    queue_blob_tmp_path("/var/g", "ABCDEF0123", p);
    assert_string_equal(p, "/var/g/spool/tmp/ABCDEF0123.tmp");
}

static void write_file(const char *path)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    fputs("partial", fp);
    fclose(fp);
}

static void test_recover(void **state)
{
    struct fx *f = *state;
    add_account(f, "a@example.test", 1, 0, "", 0);
    const char *r[] = {"remote:x@remote.test"};
    char committed[QUEUE_ID_MAX], orphan[QUEUE_ID_MAX], tmp[QUEUE_ID_MAX];
    enqueue(f, "s@remote.test", r, 1, committed);
    char path[PATH_MAX];
    queue_id_new(orphan);
    queue_blob_path(f->dir, orphan, path);
    write_file(path); /* renamed into place, but the transaction never committed */
    queue_id_new(tmp);
    queue_blob_tmp_path(f->dir, tmp, path);
    write_file(path); /* still being written when the server stopped */
    snprintf(path, sizeof(path), "%s/spool/tmp/other", f->dir);
    write_file(path);
    /* A file named like a committed blob but in the wrong fan-out directory is not it. */
    snprintf(path, sizeof(path), "%s/blobs/00/%s", f->dir, committed);
    if (strncmp(committed, "00", 2) != 0)
        write_file(path);

    unsigned removed = 0;
    assert_int_equal(queue_recover(f->db, f->dir, &removed), 0);
    assert_int_equal(removed, strncmp(committed, "00", 2) != 0 ? 4 : 3);
    assert_true(blob_file_exists(f, committed));
    assert_false(blob_file_exists(f, orphan));
    queue_blob_tmp_path(f->dir, tmp, path);
    assert_int_not_equal(access(path, F_OK), 0);
    /* The directories themselves stay. */
    struct stat st;
    snprintf(path, sizeof(path), "%s/spool/tmp", f->dir);
    assert_int_equal(stat(path, &st), 0);
    snprintf(path, sizeof(path), "%s/blobs/FF", f->dir);
    assert_int_equal(stat(path, &st), 0);
    /* Idempotent. */
    assert_int_equal(queue_recover(f->db, f->dir, &removed), 0);
    assert_int_equal(removed, 0);

    /* A mailbox deleted with its account leaves a blob nothing references: its row and file go;
     * a blob still in a mailbox stays. */
    add_account(f, "b@example.test", 1, 0, "", 0);
    const char *two[] = {"local:a@example.test", "local:b@example.test"};
    char shared[QUEUE_ID_MAX], only_a[QUEUE_ID_MAX];
    deliver_ok(f, enqueue(f, "s@remote.test", two, 2, shared));
    const char *to_a[] = {"local:a@example.test"};
    deliver_ok(f, enqueue(f, "s@remote.test", to_a, 1, only_a));
    exec_ok(f->db, "DELETE FROM account WHERE address = 'a@example.test'");
    assert_int_equal(queue_recover(f->db, f->dir, &removed), 0);
    assert_int_equal(removed, 1);
    assert_false(blob_file_exists(f, only_a));
    assert_true(blob_file_exists(f, shared));
    assert_true(blob_file_exists(f, committed)); /* still queued */
    assert_int_equal(query_int(f->db, "SELECT COUNT(*) FROM blob"), 2);
}

static void test_dirs_create(void **state)
{
    struct fx *f = *state;
    char sub[PATH_MAX];
    snprintf(sub, sizeof(sub), "%s/nested/data", f->dir);
    const char *err = NULL;
    assert_int_equal(queue_dirs_create(sub, &err), 0);
    assert_int_equal(queue_dirs_create(sub, &err), 0); /* idempotent */
    char p[PATH_MAX + 32];
    struct stat st;
    snprintf(p, sizeof(p), "%s/blobs/A0", sub);
    assert_int_equal(stat(p, &st), 0);
    snprintf(p, sizeof(p), "%s/spool/tmp", sub);
    assert_int_equal(stat(p, &st), 0);
    /* A file in the way is an error with a message. */
    snprintf(p, sizeof(p), "%s/file", f->dir);
    write_file(p);
    err = NULL;
    assert_int_equal(queue_dirs_create(p, &err), -1);
    assert_non_null(err);
}

/* ---- local delivery inside the group commit's transaction (queue_deliver_in_tx) ---- */

static void deliver_in_tx(struct fx *f, int64_t msg, bool *pending)
{
    const char *err = NULL;
    exec_ok(f->db, "BEGIN IMMEDIATE");
    if (queue_deliver_in_tx(f->db, f->dir_api, &f->env, msg, pending, &err) != 0)
        fail_msg("in-transaction delivery failed: %s", err ? err : "?");
    exec_ok(f->db, "COMMIT");
}

static const char *rcpt_state(struct fx *f, int64_t msg, const char *addr, char *buf, size_t n)
{
    char *v =
        query_text(f->db, "SELECT state FROM queue_rcpt WHERE message_id = %lld AND address = %Q",
                   (long long)msg, addr);
    snprintf(buf, n, "%s", v ? v : "(gone)");
    free(v);
    return buf;
}

/* Simple local recipients only: stored, and the message leaves the queue in the same
 * transaction; the blob stays (the mailbox references it). */
static void test_in_tx_simple(void **state)
{
    struct fx *f = *state;
    add_account(f, "a@example.test", 1, 0, "", 0);
    add_account(f, "b@example.test", 1, 100, "", 0); /* a quota with room */
    const char *r[] = {"local:a@example.test", "local:b@example.test"};
    char blob[QUEUE_ID_MAX];
    int64_t msg = enqueue(f, "s@remote.test", r, 2, blob);
    bool pending = true;
    deliver_in_tx(f, msg, &pending);
    assert_false(pending);
    assert_int_equal(mails_of(f, "a@example.test"), 1);
    assert_int_equal(mails_of(f, "b@example.test"), 1);
    assert_int_equal(query_int(f->db, "SELECT COUNT(*) FROM message"), 0);
    assert_int_equal(query_int(f->db, "SELECT COUNT(*) FROM queue_rcpt"), 0);
    assert_int_equal(query_int(f->db, "SELECT COUNT(*) FROM blob WHERE id = %Q", blob), 1);
    assert_true(blob_file_exists(f, blob));
}

/* Everything that is not simple stays queued for queue_deliver_message (which also bounces):
 * unknown, disabled, forwarding and over-quota accounts; remote recipients are never touched. */
static void test_in_tx_leaves_the_rest(void **state)
{
    struct fx *f = *state;
    add_account(f, "ok@example.test", 1, 0, "", 0);
    add_account(f, "off@example.test", 0, 0, "", 0);
    add_account(f, "fwd@example.test", 1, 0, "ok@example.test", 1);
    add_account(f, "full@example.test", 1, 1, "", 0);
    const char *err = NULL;
    int64_t folder;
    char filler[QUEUE_ID_MAX];
    const char *none[] = {"remote:x@remote.test"};
    enqueue(f, "s@remote.test", none, 1, filler);
    assert_int_equal(
        store_folder_ensure(f->db, account_id(f, "full@example.test"), "INBOX", &folder, &err), 0);
    execf(f->db,
          "INSERT INTO mail (folder_id, uid, blob_id, size, internal_date, modseq)"
          " VALUES (%lld, 100, %Q, %d, 0, 1)",
          (long long)folder, filler, 1048576 - 10);
    const char *r[] = {"local:ok@example.test",   "local:nobody@example.test",
                       "local:off@example.test",  "local:fwd@example.test",
                       "local:full@example.test", "remote:r@remote.test"};
    char blob[QUEUE_ID_MAX];
    int64_t msg = enqueue(f, "s@remote.test", r, 6, blob);
    bool pending = false;
    deliver_in_tx(f, msg, &pending);
    assert_true(pending);
    char st[32];
    assert_string_equal(rcpt_state(f, msg, "ok@example.test", st, sizeof(st)), "delivered");
    assert_int_equal(mails_of(f, "ok@example.test"), 1);
    const char *left[] = {"nobody@example.test", "off@example.test", "fwd@example.test",
                          "full@example.test", "r@remote.test"};
    for (size_t i = 0; i < sizeof(left) / sizeof(left[0]); i++)
        assert_string_equal(rcpt_state(f, msg, left[i], st, sizeof(st)), "queued");
    assert_int_equal(mails_of(f, "fwd@example.test"), 0);
    assert_int_equal(mails_of(f, "full@example.test"), 1); /* only the filler */
    assert_int_equal(
        query_int(f->db, "SELECT COUNT(*) FROM message WHERE id = %lld", (long long)msg), 1);
    /* The full path finishes the job: forwarding, failures (and their bounce). */
    f->env.hostname = "mx.example.test";
    deliver_ok(f, msg);
    assert_string_equal(rcpt_state(f, msg, "fwd@example.test", st, sizeof(st)), "delivered");
    assert_string_equal(rcpt_state(f, msg, "full@example.test", st, sizeof(st)), "failed");
    assert_int_equal(mails_of(f, "ok@example.test"), 2); /* the forwarded copy */
}

int main(void)
{
    /* GANNET_TEST_LOG=1 shows the delivery log lines. */
    log_init("test_queue_deliver", getenv("GANNET_TEST_LOG") ? LOG_LEVEL_DEBUG : LOG_LEVEL_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_single_local, setup, teardown),
        cmocka_unit_test_setup_teardown(test_in_tx_simple, setup, teardown),
        cmocka_unit_test_setup_teardown(test_in_tx_leaves_the_rest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shared_blob, setup, teardown),
        cmocka_unit_test_setup_teardown(test_all_failed_releases_blob, setup, teardown),
        cmocka_unit_test_setup_teardown(test_forward, setup, teardown),
        cmocka_unit_test_setup_teardown(test_forward_remote, setup, teardown),
        cmocka_unit_test_setup_teardown(test_forward_loop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_forward_to_self_via_alias, setup, teardown),
        cmocka_unit_test_setup_teardown(test_forward_unknown_target_keeps, setup, teardown),
        cmocka_unit_test_setup_teardown(test_quota, setup, teardown),
        cmocka_unit_test_setup_teardown(test_quota_state, setup, teardown),
        cmocka_unit_test_setup_teardown(test_remote_keeps_message, setup, teardown),
        cmocka_unit_test_setup_teardown(test_directory_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_blob_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pending, setup, teardown),
        cmocka_unit_test(test_queue_id),
        cmocka_unit_test(test_paths),
        cmocka_unit_test_setup_teardown(test_recover, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dirs_create, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

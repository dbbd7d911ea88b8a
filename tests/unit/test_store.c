/* test_store: the mailbox store (store.h) on a real SQLite database in a temporary directory —
 * UID allocation, UIDVALIDITY, mod-sequences, sizes, byte-for-byte read-back with and without
 * Delivered-To, header-section reading and header-field unfolding. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dir/dir_db.h"
#include "queue/queue.h"
#include "store/store.h"

struct fx {
    char dir[64];
    sqlite3 *db;
    int64_t acct_a, acct_b;
};

static void exec_ok(sqlite3 *db, const char *sql)
{
    char *emsg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &emsg);
    if (rc != SQLITE_OK)
        fail_msg("%s: %s", sql, emsg ? emsg : "?");
}

static int64_t query_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

/* Write a blob file and its row, as the accept path would. */
static void put_blob(struct fx *f, const char *id, const char *bytes)
{
    char path[PATH_MAX];
    queue_blob_path(f->dir, id, path);
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(bytes, 1, strlen(bytes), fp), strlen(bytes));
    fclose(fp);
    char *sql = sqlite3_mprintf("INSERT INTO blob (id, size, created) VALUES (%Q, %d, 0)", id,
                                (int)strlen(bytes));
    exec_ok(f->db, sql);
    sqlite3_free(sql);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/gannet-store-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    const char *err = NULL;
    assert_int_equal(queue_dirs_create(f->dir, &err), 0);
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/gannet.db", f->dir);
    f->db = dir_db_open(path, true, &err);
    assert_non_null(f->db);
    assert_int_equal(dir_db_migrate(f->db, &err), 0);
    exec_ok(f->db, "INSERT INTO domain (name) VALUES ('example.test');"
                   "INSERT INTO account (domain_id, address) VALUES (1, 'a@example.test');"
                   "INSERT INTO account (domain_id, address) VALUES (1, 'b@example.test');");
    f->acct_a = 1;
    f->acct_b = 2;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    dir_db_close(&f->db);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static void test_uid_allocation_and_modseq(void **state)
{
    struct fx *f = *state;
    const char *err = NULL;
    put_blob(f, "B1", "Subject: x\r\n\r\nbody\r\n");
    int64_t inbox, again;
    assert_int_equal(store_folder_ensure(f->db, f->acct_a, "INBOX", &inbox, &err), 0);
    assert_int_equal(store_folder_ensure(f->db, f->acct_a, "inbox", &again, &err), 0);
    assert_int_equal(inbox, again); /* INBOX is one folder whatever the case */

    struct store_folder fo;
    assert_int_equal(store_folder_get(f->db, f->acct_a, "INBOX", &fo, &err), 1);
    assert_int_equal(fo.uidnext, 1);
    assert_int_equal(fo.highest_modseq, 1);

    for (uint32_t i = 1; i <= 3; i++) {
        uint32_t uid = 0;
        assert_int_equal(store_append(f->db, inbox, "B1", 20, "s@x.test", NULL, 1000 + i,
                                      STORE_FLAG_SEEN, &uid, &err),
                         0);
        assert_int_equal(uid, i);
        struct store_mail m;
        assert_int_equal(store_mail_get(f->db, inbox, uid, &m, &err), 1);
        assert_int_equal(m.modseq, 1 + i);
        assert_int_equal(m.internal_date, 1000 + i);
        assert_int_equal(m.flags, STORE_FLAG_SEEN);
        assert_string_equal(m.blob_id, "B1");
    }
    assert_int_equal(store_folder_get(f->db, f->acct_a, "INBOX", &fo, &err), 1);
    assert_int_equal(fo.uidnext, 4);
    assert_int_equal(fo.highest_modseq, 4);

    /* UIDs are never reused after a message goes. */
    exec_ok(f->db, "DELETE FROM mail WHERE uid = 3");
    uint32_t uid = 0;
    assert_int_equal(store_append(f->db, inbox, "B1", 20, "s@x.test", NULL, 0, 0, &uid, &err), 0);
    assert_int_equal(uid, 4);

    /* Another folder counts on its own. */
    int64_t other;
    assert_int_equal(store_folder_ensure(f->db, f->acct_a, "Archive", &other, &err), 0);
    assert_int_not_equal(other, inbox);
    assert_int_equal(store_append(f->db, other, "B1", 20, "", NULL, 0, 0, &uid, &err), 0);
    assert_int_equal(uid, 1);
}

static int count_cb(void *ctx, const struct store_mail *m)
{
    uint32_t *last = ctx;
    assert_true(m->uid > *last); /* UID order */
    *last = m->uid;
    return 0;
}

static int stop_cb(void *ctx, const struct store_mail *m)
{
    (void)ctx;
    (void)m;
    return 1;
}

static void test_list(void **state)
{
    struct fx *f = *state;
    const char *err = NULL;
    put_blob(f, "B1", "x");
    int64_t inbox;
    uint32_t uid;
    assert_int_equal(store_folder_ensure(f->db, f->acct_a, "INBOX", &inbox, &err), 0);
    for (int i = 0; i < 5; i++)
        assert_int_equal(store_append(f->db, inbox, "B1", 1, "", NULL, 0, 0, &uid, &err), 0);
    uint32_t last = 0;
    assert_int_equal(store_mail_list(f->db, inbox, count_cb, &last, &err), 5);
    assert_int_equal(last, 5);
    assert_int_equal(store_mail_list(f->db, inbox, stop_cb, NULL, &err), 1);
    struct store_mail m;
    assert_int_equal(store_mail_get(f->db, inbox, 99, &m, &err), 0);
    struct store_folder fo;
    assert_int_equal(store_folder_get(f->db, f->acct_a, "Nope", &fo, &err), 0);
}

static void test_uidvalidity(void **state)
{
    struct fx *f = *state;
    const char *err = NULL;
    time_t before = time(NULL);
    int64_t a, b;
    assert_int_equal(store_folder_ensure(f->db, f->acct_a, "INBOX", &a, &err), 0);
    assert_int_equal(store_folder_ensure(f->db, f->acct_b, "INBOX", &b, &err), 0);
    struct store_folder fa, fb;
    assert_int_equal(store_folder_get(f->db, f->acct_a, "INBOX", &fa, &err), 1);
    assert_int_equal(store_folder_get(f->db, f->acct_b, "INBOX", &fb, &err), 1);
    assert_true(fa.uidvalidity >= (uint32_t)before);
    assert_true(fa.uidvalidity <= (uint32_t)time(NULL) + 1);
    assert_true(fb.uidvalidity > fa.uidvalidity); /* distinct even within one second */

    /* A folder deleted and created again gets a new UIDVALIDITY (RFC 9051 §2.3.1.1). */
    exec_ok(f->db, "DELETE FROM folder WHERE name = 'INBOX' AND account_id = 1");
    assert_int_equal(store_folder_ensure(f->db, f->acct_a, "INBOX", &a, &err), 0);
    struct store_folder fa2;
    assert_int_equal(store_folder_get(f->db, f->acct_a, "INBOX", &fa2, &err), 1);
    assert_true(fa2.uidvalidity > fa.uidvalidity);
    assert_true(fa2.uidvalidity > fb.uidvalidity);
    assert_int_equal(fa2.uidnext, 1);
}

static void test_sizes(void **state)
{
    struct fx *f = *state;
    const char *err = NULL;
    const char *body = "From: x@y.test\r\n\r\nhello\r\n";
    put_blob(f, "B1", body);
    uint64_t blob_size = strlen(body);
    int64_t ia, ib;
    uint32_t uid;
    assert_int_equal(store_folder_ensure(f->db, f->acct_a, "INBOX", &ia, &err), 0);
    assert_int_equal(store_folder_ensure(f->db, f->acct_b, "INBOX", &ib, &err), 0);

    uint64_t size = 99;
    assert_int_equal(store_account_size(f->db, f->acct_a, &size, &err), 0);
    assert_int_equal(size, 0);

    struct {
        const char *return_path, *delivered_to;
        const char *prefix;
    } cases[] = {
        {"s@x.test", NULL, "Return-Path: <s@x.test>\r\n"},
        {"s@x.test", "", "Return-Path: <s@x.test>\r\n"},
        {"", NULL, "Return-Path: <>\r\n"},
        {"s@x.test", "a@example.test",
         "Return-Path: <s@x.test>\r\nDelivered-To: a@example.test\r\n"},
    };
    uint64_t total = 0;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(store_append(f->db, ia, "B1", blob_size, cases[i].return_path,
                                      cases[i].delivered_to, 0, 0, &uid, &err),
                         0);
        struct store_mail m;
        assert_int_equal(store_mail_get(f->db, ia, uid, &m, &err), 1);
        assert_int_equal(m.size, strlen(cases[i].prefix) + blob_size);
        total += m.size;

        /* Read back byte for byte, through both read functions. */
        struct buf out;
        buf_init(&out, 0);
        assert_int_equal(store_message_read(f->db, f->dir, f->acct_a, "INBOX", uid, &out, &err), 0);
        assert_int_equal(out.len, m.size);
        assert_memory_equal(out.data, cases[i].prefix, strlen(cases[i].prefix));
        assert_memory_equal(out.data + strlen(cases[i].prefix), body, blob_size);
        buf_free(&out);
    }
    assert_int_equal(store_account_size(f->db, f->acct_a, &size, &err), 0);
    assert_int_equal(size, total);
    assert_int_equal(store_account_size(f->db, f->acct_b, &size, &err), 0);
    assert_int_equal(size, 0);

    /* Folders other than INBOX count towards the account too. */
    int64_t other;
    assert_int_equal(store_folder_ensure(f->db, f->acct_a, "Sent", &other, &err), 0);
    assert_int_equal(store_append(f->db, other, "B1", blob_size, "", NULL, 0, 0, &uid, &err), 0);
    assert_int_equal(store_account_size(f->db, f->acct_a, &size, &err), 0);
    assert_int_equal(size, total + strlen("Return-Path: <>\r\n") + blob_size);
}

static void test_errors(void **state)
{
    struct fx *f = *state;
    const char *err = NULL;
    put_blob(f, "B1", "x");
    int64_t inbox;
    uint32_t uid;
    assert_int_equal(store_folder_ensure(f->db, f->acct_a, "INBOX", &inbox, &err), 0);
    struct buf out;
    buf_init(&out, 0);
    err = NULL;
    assert_int_equal(store_message_read(f->db, f->dir, f->acct_a, "INBOX", 1, &out, &err), -1);
    assert_non_null(err);
    assert_int_equal(store_message_read(f->db, f->dir, f->acct_a, "Nope", 1, &out, &err), -1);
    /* Header injection is refused. */
    assert_int_equal(store_append(f->db, inbox, "B1", 1, "a@b\r\nX: y", NULL, 0, 0, &uid, &err),
                     -1);
    assert_int_equal(store_append(f->db, inbox, "B1", 1, "a@b", "c@d\n", 0, 0, &uid, &err), -1);
    assert_int_equal(query_int(f->db, "SELECT COUNT(*) FROM mail"), 0);
    /* No such folder. */
    assert_int_equal(store_append(f->db, 999, "B1", 1, "a@b", NULL, 0, 0, &uid, &err), -1);
    /* A missing blob file is an error, and out is left as it was. */
    assert_int_equal(store_append(f->db, inbox, "B1", 1, "a@b", NULL, 0, 0, &uid, &err), 0);
    char path[PATH_MAX];
    queue_blob_path(f->dir, "B1", path);
    assert_int_equal(unlink(path), 0);
    buf_append_str(&out, "keep");
    assert_int_equal(store_message_read(f->db, f->dir, f->acct_a, "INBOX", uid, &out, &err), -1);
    assert_string_equal(out.data, "keep");
    /* A buffer too small for the message. */
    put_blob(f, "B2", "0123456789");
    assert_int_equal(store_append(f->db, inbox, "B2", 10, "", NULL, 0, 0, &uid, &err), 0);
    struct buf small;
    buf_init(&small, 20);
    assert_int_equal(store_message_read(f->db, f->dir, f->acct_a, "INBOX", uid, &small, &err), -1);
    assert_int_equal(small.len, 0);
    buf_free(&small);
    buf_free(&out);
}

static void test_header_value(void **state)
{
    (void)state;
    static const struct {
        const char *hdr, *name, *want; /* want NULL = absent */
    } cases[] = {
        {"From: a@b\r\nSubject: hi\r\n\r\nbody", "From", "a@b"},
        {"From: a@b\r\nSubject: hi\r\n\r\nbody", "Subject", "hi"},
        {"from: a@b\r\n\r\n", "From", "a@b"},
        {"SUBJECT:x\r\n\r\n", "Subject", "x"},
        {"Subject: one\r\n two\r\n\tthree\r\nX: y\r\n\r\n", "Subject", "one two three"},
        {"Subject: lf only\n folded\n\n", "Subject", "lf only folded"},
        {"Subject:   padded   \r\n\r\n", "Subject", "padded"},
        {"Subject: a\tb\r\n\r\n", "Subject", "a b"},
        {"Subject:\r\n\r\n", "Subject", ""},
        {"X-Subject: no\r\n\r\n", "Subject", NULL},
        {"Subjects: no\r\n\r\n", "Subject", NULL},
        {"To: x\r\n\r\nSubject: in body\r\n", "Subject", NULL},
        {"\r\nSubject: in body\r\n", "Subject", NULL},
        {"Subject: first\r\nSubject: second\r\n\r\n", "Subject", "first"},
        {"Subject: no end", "Subject", "no end"},
        {"", "Subject", NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *v = store_header_value(cases[i].hdr, strlen(cases[i].hdr), cases[i].name);
        if (!cases[i].want) {
            if (v)
                fail_msg("case %zu: expected absent, got \"%s\"", i, v);
        } else {
            if (!v)
                fail_msg("case %zu: expected \"%s\", got absent", i, cases[i].want);
            assert_string_equal(v, cases[i].want);
        }
        free(v);
    }
}

static void test_header_section(void **state)
{
    struct fx *f = *state;
    const char *err = NULL;
    static const struct {
        const char *blob;
        size_t max;
        const char *want;
    } cases[] = {
        {"A: 1\r\nB: 2\r\n\r\nbody\r\n\r\nmore", 0, "A: 1\r\nB: 2\r\n\r\n"},
        {"A: 1\n\nbody", 0, "A: 1\n\n"},
        {"A: 1\r\nno body", 0, "A: 1\r\nno body"},
        {"\r\nbody", 0, "\r\n"},
        {"A: 1\r\nB: 2\r\n\r\nbody", 6, "A: 1\r\n"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char id[16];
        snprintf(id, sizeof(id), "0A%zu", i);
        put_blob(f, id, cases[i].blob);
        struct buf out;
        buf_init(&out, 0);
        assert_int_equal(store_blob_header_section(f->dir, id, cases[i].max, &out, &err), 0);
        assert_string_equal(out.data, cases[i].want);
        buf_free(&out);
    }
    /* The empty line split across the 16 KB read chunks at every offset around the boundary. */
    for (size_t len = 16380; len <= 16386; len++) {
        struct buf b;
        buf_init(&b, 0);
        buf_append_str(&b, "X: ");
        for (size_t k = 0; k < len - 5; k++)
            buf_append(&b, "a", 1);
        buf_append_str(&b, "\r\n\r\nbody\r\n\r\n");
        char id[16];
        snprintf(id, sizeof(id), "0B%zu", len);
        put_blob(f, id, b.data);
        struct buf out;
        buf_init(&out, 0);
        assert_int_equal(store_blob_header_section(f->dir, id, 0, &out, &err), 0);
        assert_int_equal(out.len, len + 2);
        assert_memory_equal(out.data, b.data, len + 2);
        buf_free(&out);
        buf_free(&b);
    }
    /* A large header section over several read chunks. */
    struct buf big;
    buf_init(&big, 0);
    for (int i = 0; i < 3000; i++)
        buf_printf(&big, "X-Long-%04d: %s\r\n", i, "abcdefghij");
    size_t hlen = big.len + 2;
    buf_append_str(&big, "\r\nbody\r\n");
    put_blob(f, "0CBIG", big.data);
    struct buf out;
    buf_init(&out, 0);
    assert_int_equal(store_blob_header_section(f->dir, "0CBIG", 0, &out, &err), 0);
    assert_int_equal(out.len, hlen);
    assert_memory_equal(out.data, big.data, hlen);
    buf_free(&out);
    buf_free(&big);
    assert_int_equal(store_blob_header_section(f->dir, "MISSING", 0, &out, &err), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_uid_allocation_and_modseq, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_uidvalidity, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sizes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
        cmocka_unit_test(test_header_value),
        cmocka_unit_test_setup_teardown(test_header_section, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_queue_spool: the durable accept path — single commit and group commit (queue_spool.h):
 * rows and files after success, a failing message rolled back alone inside a batch, files of
 * failed messages removed. Runs against a real SQLite database in a temporary data dir. */
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
#include "queue/queue_spool.h"

struct fixture {
    char dir[PATH_MAX];
    sqlite3 *db;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/gannet-spool-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    const char *err = NULL;
    assert_int_equal(queue_dirs_create(f->dir, &err), 0);
    char dbpath[PATH_MAX + 16];
    snprintf(dbpath, sizeof(dbpath), "%s/gannet.db", f->dir);
    f->db = dir_db_open(dbpath, true, &err);
    assert_non_null(f->db);
    assert_int_equal(dir_db_migrate(f->db, &err), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    dir_db_close(&f->db);
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static int count(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int n = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return n;
}

static bool exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}

static struct queue_spool_file *spool(struct fixture *f, const char *body)
{
    struct queue_spool_file *sf = calloc(1, sizeof(*sf));
    const char *err = NULL;
    queue_id_new(sf->id);
    assert_int_equal(queue_spool_open(f->dir, sf, &err), 0);
    assert_int_equal(queue_spool_write(sf, body, strlen(body), &err), 0);
    return sf;
}

static const struct policy_recipient rcpt = {.address = "user@example.test",
                                             .original = "user@example.test",
                                             .local = true};

static void test_single_commit(void **state)
{
    struct fixture *f = *state;
    struct queue_spool_file *sf = spool(f, "Subject: one\r\n\r\nbody\r\n");
    struct queue_envelope env = {.sender = "a@b.test", .rcpts = &rcpt, .rcpts_count = 1};
    int64_t id = 0;
    const char *err = NULL;
    assert_int_equal(queue_spool_commit(f->db, f->dir, sf, &env, &id, &err), QUEUE_COMMIT_OK);
    assert_true(id > 0);
    char path[PATH_MAX];
    queue_blob_path(f->dir, sf->id, path);
    assert_true(exists(path));
    assert_false(exists(sf->tmp_path[0] ? sf->tmp_path : "/nonexistent"));
    assert_int_equal(count(f->db, "SELECT COUNT(*) FROM message"), 1);
    assert_int_equal(count(f->db, "SELECT COUNT(*) FROM queue_rcpt"), 1);
    free(sf);
}

static void test_batch_commit_isolates_a_failing_message(void **state)
{
    struct fixture *f = *state;
    enum { N = 5 };
    struct queue_spool_file *files[N];
    struct queue_envelope envs[N];
    struct queue_spool_batch_item items[N];
    /* Message 2 has a recipient row that violates NOT NULL: only it may fail. */
    struct policy_recipient bad = rcpt;
    memset(&items, 0, sizeof(items));
    for (int i = 0; i < N; i++) {
        char body[64];
        snprintf(body, sizeof(body), "Subject: m%d\r\n\r\nbody %d\r\n", i, i);
        files[i] = spool(f, body);
        envs[i] = (struct queue_envelope){.sender = i == 2 ? NULL : "a@b.test",
                                          .rcpts = i == 2 ? &bad : &rcpt,
                                          .rcpts_count = 1};
        const char *err = NULL;
        assert_int_equal(queue_spool_seal(f->dir, files[i], items[i].blob_path, &err), 0);
        assert_true(exists(items[i].blob_path)); /* renamed, not yet committed */
        items[i].file = files[i];
        items[i].env = &envs[i];
    }
    queue_spool_commit_batch(f->db, f->dir, NULL, items, N);
    for (int i = 0; i < N; i++) {
        if (i == 2) {
            assert_int_equal(items[i].result, QUEUE_COMMIT_DB_FAILED);
            assert_true(items[i].err[0] != '\0');
            assert_false(exists(items[i].blob_path)); /* no orphan file */
        } else {
            assert_int_equal(items[i].result, QUEUE_COMMIT_OK);
            assert_true(items[i].message_id > 0);
            assert_true(exists(items[i].blob_path));
        }
        free(files[i]);
    }
    assert_int_equal(count(f->db, "SELECT COUNT(*) FROM message"), N - 1);
    assert_int_equal(count(f->db, "SELECT COUNT(*) FROM blob"), N - 1);
    assert_int_equal(count(f->db, "SELECT COUNT(*) FROM queue_rcpt"), N - 1);
}

static void test_batch_without_database_fails_everything_cleanly(void **state)
{
    struct fixture *f = *state;
    struct queue_spool_file *sf = spool(f, "x\r\n");
    struct queue_envelope env = {.sender = "a@b.test", .rcpts = &rcpt, .rcpts_count = 1};
    struct queue_spool_batch_item item = {.file = sf, .env = &env};
    const char *err = NULL;
    assert_int_equal(queue_spool_seal(f->dir, sf, item.blob_path, &err), 0);
    queue_spool_commit_batch(NULL, f->dir, NULL, &item, 1);
    assert_int_equal(item.result, QUEUE_COMMIT_DB_FAILED);
    assert_false(exists(item.blob_path));
    assert_int_equal(count(f->db, "SELECT COUNT(*) FROM message"), 0);
    free(sf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_single_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch_commit_isolates_a_failing_message, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_batch_without_database_fails_everything_cleanly,
                                        setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

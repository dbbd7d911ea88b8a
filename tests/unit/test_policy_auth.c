/* test_policy_auth: credential checking and auto-ban (src/policy/policy_auth.c,
 * src/policy/policy_autoban.c; hmailserver-behaviour.md §3.3-§3.5) against a temporary SQLite
 * database (WAL, every migration) filled through dir_admin_*, looked up through dir_sqlite.
 *
 * Login: success (also case-insensitive and through a domain alias), every failure reason,
 * imported legacy hashes ($6$, $2b$, $2y$, hMailServer SHA-256) that verify and are replaced by
 * yescrypt, a directory failure (TEMPFAIL, nothing recorded). Auto-ban: the failure that reaches
 * the limit bans (the iprange row, its name, priority, flags, expiry, and dir_iprange_match),
 * failures outside the window do not count, other addresses are unaffected and get a unique
 * range name, disabled and ban = 0, expired bans are replaced, hostile user names. Re-validation:
 * every change that ends a session. After every call no transaction is left open, also when the
 * database is locked by another connection. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dir/dir_admin.h"
#include "dir/dir_db.h"
#include "dir/dir_password.h"
#include "dir/dir_sqlite.h"
#include "lib/log.h"
#include "policy/policy_auth.h"
#include "policy/policy_autoban.h"

#define KEEP DIR_ADMIN_KEEP
#define PW "secret"
#define USER "user@example.test"

/* Made with `openssl passwd -6 -salt abc secret`. */
#define HASH_SHA512                                                                                \
    "$6$abc$IdWKNKTJEb8LxY7CGg8YBXlvtfZzFw7Mp/r6niK9YB2mdvgY..TKjv1T..8RadRt2qvUHYRLr/"            \
    "TsVArtr91iR1"
/* The Openwall crypt_blowfish test vector for password "U*U" (same for $2a$, $2b$, $2y$). */
#define HASH_BCRYPT_B "$2b$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"
#define HASH_BCRYPT_Y "$2y$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"
/* hMailServer: salt "a1b2c3" + hex SHA-256("a1b2c3secret") (Python hashlib). */
#define HASH_HMAIL "a1b2c3ff913cf667513b753e458709f781b7dbb41db0e77727643cd704f29d9eb27dfb"
#define HASH_HMAIL_UPPER "a1b2c3FF913CF667513B753E458709F781B7DBB41DB0E77727643CD704F29D9EB27DFB"

struct fx {
    char dir[64];
    char path[96];
    sqlite3 *db;
    struct dir *d;
    struct ipaddr ip, ip2, ip6;
    struct policy_autoban_conf ab;
};

static void ok(int r, const char *err)
{
    if (r != 0)
        fail_msg("admin call failed: %s", err ? err : "?");
}

static void add_domain(sqlite3 *db, const char *name, int enabled)
{
    struct dir_admin_domain o = {enabled, KEEP, NULL, NULL};
    const char *err = NULL;
    ok(dir_admin_domain_add(db, name, &o, &err), err);
}

static void add_account(sqlite3 *db, const char *addr, const char *pw)
{
    struct dir_admin_account o = {pw, KEEP, KEEP, NULL, KEEP};
    const char *err = NULL;
    ok(dir_admin_account_add(db, addr, &o, &err), err);
}

static void set_account(sqlite3 *db, const char *addr, const char *pw, int enabled)
{
    struct dir_admin_account o = {pw, enabled, KEEP, NULL, KEEP};
    const char *err = NULL;
    ok(dir_admin_account_set(db, addr, &o, &err), err);
}

static void set_domain_enabled(sqlite3 *db, const char *name, int enabled)
{
    struct dir_admin_domain o = {enabled, KEEP, NULL, NULL};
    const char *err = NULL;
    ok(dir_admin_domain_set(db, name, &o, &err), err);
}

static void set_hash(sqlite3 *db, const char *addr, const char *hash)
{
    struct dir_admin_account o = {NULL, KEEP, KEEP, NULL, KEEP};
    const char *err = NULL;
    ok(dir_admin_account_set_hashed(db, addr, &o, hash, &err), err);
}

static void stored_hash(struct fx *f, const char *addr, char *out)
{
    struct dir_account a;
    assert_int_equal(dir_account_get(f->d, addr, &a), DIR_OK);
    strcpy(out, a.password_hash);
}

/* First column of the first row of sql as an integer. */
static int64_t sql_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static void no_open_transaction(struct fx *f)
{
    assert_true(sqlite3_get_autocommit(f->db) != 0);
}

static enum policy_auth_status login(struct fx *f, const char *user, const char *pw,
                                     const struct ipaddr *ip, time_t now,
                                     struct policy_auth_outcome *out)
{
    struct policy_auth_outcome tmp;
    if (!out)
        out = &tmp;
    memset(out, 0x55, sizeof(*out));
    policy_auth_login(f->db, f->d, user, pw, ip, &f->ab, now, out);
    no_open_transaction(f);
    if (out->status != POLICY_AUTH_OK) {
        assert_string_equal(out->account, "");
        assert_string_equal(out->hash, "");
    }
    return out->status;
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    strcpy(f->dir, "/tmp/test_policy_auth_XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof(f->path), "%s/gannet.db", f->dir);
    const char *err = NULL;
    f->db = dir_db_open(f->path, true, &err);
    assert_non_null(f->db);
    assert_int_equal(dir_db_migrate(f->db, &err), 0);
    f->d = dir_sqlite_new(f->db);
    add_domain(f->db, "example.test", KEEP);
    add_domain(f->db, "off.test", 0);
    const char *e2 = NULL;
    ok(dir_admin_domain_alias_add(f->db, "alias.test", "example.test", &e2), e2);
    add_account(f->db, USER, PW);
    add_account(f->db, "off@off.test", PW);
    int created = 0;
    ok(dir_admin_iprange_defaults(f->db, &created, &e2), e2);
    assert_int_equal(ipaddr_parse("192.0.2.7", &f->ip), 0);
    assert_int_equal(ipaddr_parse("192.0.2.8", &f->ip2), 0);
    assert_int_equal(ipaddr_parse("2001:db8::7", &f->ip6), 0);
    f->ab = (struct policy_autoban_conf){
        .enabled = true, .max_attempts = 3, .window_s = 1800, .ban_s = 3600};
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    dir_close(&f->d);
    dir_db_close(&f->db);
    char p[128];
    static const char *const suffixes[] = {"", "-wal", "-shm", "-journal"};
    for (size_t i = 0; i < 4; i++) {
        snprintf(p, sizeof(p), "%s%s", f->path, suffixes[i]);
        unlink(p);
    }
    assert_int_equal(rmdir(f->dir), 0);
    free(f);
    return 0;
}

/* ---- login ---- */

static void test_login_ok(void **state)
{
    struct fx *f = *state;
    char hash[DIR_PASSWORD_HASH_MAX];
    stored_hash(f, USER, hash);
    assert_memory_equal(hash, "$y$", 3);
    static const char *const users[] = {USER, "User@Example.TEST", "user@alias.test",
                                        "USER@ALIAS.test"};
    for (size_t i = 0; i < sizeof(users) / sizeof(users[0]); i++) {
        struct policy_auth_outcome out;
        assert_int_equal(login(f, users[i], PW, &f->ip, time(NULL), &out), POLICY_AUTH_OK);
        assert_string_equal(out.account, USER); /* the stored account, not the alias form */
        assert_string_equal(out.hash, hash);    /* yescrypt: not replaced */
        assert_int_equal(policy_auth_still_valid(f->d, out.account, out.hash), DIR_OK);
    }
    stored_hash(f, USER, hash);
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM auth_failure"), 0);
}

static void test_login_failures(void **state)
{
    struct fx *f = *state;
    f->ab.max_attempts = 1000; /* count, never ban */
    static const struct {
        const char *user, *pw;
    } cases[] = {
        {USER, "wrong"},               /* wrong password */
        {USER, "Secret"},              /* case matters */
        {USER, "secret "},             /* so does a trailing blank */
        {USER, ""},                    /* empty password */
        {USER, NULL},                  /* no password at all */
        {"nobody@example.test", PW},   /* unknown user */
        {"user@nowhere.test", PW},     /* unknown domain */
        {"user", PW},                  /* no domain */
        {"user@", PW},                 /* empty domain */
        {"@example.test", PW},         /* empty local part */
        {"", PW},                      /* empty user */
        {NULL, PW},                    /* no user at all */
        {"off@off.test", PW},          /* disabled domain (the account itself is enabled) */
        {"user@example.test\r\n", PW}, /* not the same name */
    };
    size_t n = sizeof(cases) / sizeof(cases[0]);
    for (size_t i = 0; i < n; i++) {
        if (login(f, cases[i].user, cases[i].pw, &f->ip, time(NULL), NULL) != POLICY_AUTH_FAILED)
            fail_msg("case %zu (%s / %s) did not fail", i, cases[i].user ? cases[i].user : "NULL",
                     cases[i].pw ? cases[i].pw : "NULL");
    }
    /* every failure was recorded for auto-ban */
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM auth_failure WHERE ip = '192.0.2.7'"),
                     (int64_t)n);
    /* disabled account */
    set_account(f->db, USER, NULL, 0);
    assert_int_equal(login(f, USER, PW, &f->ip, time(NULL), NULL), POLICY_AUTH_FAILED);
    set_account(f->db, USER, NULL, 1);
    assert_int_equal(login(f, USER, PW, &f->ip, time(NULL), NULL), POLICY_AUTH_OK);
    /* disabled domain, also through its alias */
    set_domain_enabled(f->db, "example.test", 0);
    assert_int_equal(login(f, USER, PW, &f->ip, time(NULL), NULL), POLICY_AUTH_FAILED);
    assert_int_equal(login(f, "user@alias.test", PW, &f->ip, time(NULL), NULL), POLICY_AUTH_FAILED);
    set_domain_enabled(f->db, "example.test", 1);
    assert_int_equal(login(f, "user@alias.test", PW, &f->ip, time(NULL), NULL), POLICY_AUTH_OK);
    /* an account without a password cannot log in */
    assert_int_equal(sqlite3_exec(f->db, "UPDATE account SET password_hash = ''", NULL, NULL, NULL),
                     SQLITE_OK);
    assert_int_equal(login(f, USER, PW, &f->ip, time(NULL), NULL), POLICY_AUTH_FAILED);
    assert_int_equal(login(f, USER, "", &f->ip, time(NULL), NULL), POLICY_AUTH_FAILED);
}

static void test_legacy_hashes(void **state)
{
    struct fx *f = *state;
    static const struct {
        const char *hash, *pw;
    } cases[] = {
        {HASH_SHA512, "secret"}, {HASH_BCRYPT_B, "U*U"},       {HASH_BCRYPT_Y, "U*U"},
        {HASH_HMAIL, "secret"},  {HASH_HMAIL_UPPER, "secret"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        set_hash(f->db, USER, cases[i].hash);
        char before[DIR_PASSWORD_HASH_MAX], after[DIR_PASSWORD_HASH_MAX];
        stored_hash(f, USER, before);
        assert_string_equal(before, cases[i].hash);
        assert_true(dir_password_is_legacy(before));
        /* a wrong password leaves the hash alone */
        assert_int_equal(login(f, USER, "wrong", &f->ip2, time(NULL), NULL), POLICY_AUTH_FAILED);
        assert_int_equal(login(f, USER, "", &f->ip2, time(NULL), NULL), POLICY_AUTH_FAILED);
        stored_hash(f, USER, after);
        assert_string_equal(after, cases[i].hash);
        sqlite3_exec(f->db, "DELETE FROM auth_failure", NULL, NULL, NULL);
        /* the right one logs in and upgrades it */
        struct policy_auth_outcome out;
        assert_int_equal(login(f, USER, cases[i].pw, &f->ip, time(NULL), &out), POLICY_AUTH_OK);
        stored_hash(f, USER, after);
        if (strncmp(after, "$y$", 3) != 0)
            fail_msg("case %zu: hash not replaced: %s", i, after);
        assert_false(dir_password_is_legacy(after));
        assert_string_equal(out.hash, after);
        assert_string_equal(out.account, USER);
        assert_true(dir_password_verify(after, cases[i].pw));
        assert_int_equal(policy_auth_still_valid(f->d, USER, out.hash), DIR_OK);
        assert_int_equal(policy_auth_still_valid(f->d, USER, cases[i].hash), DIR_NOTFOUND);
        /* and it keeps working, without another change */
        assert_int_equal(login(f, USER, cases[i].pw, &f->ip, time(NULL), &out), POLICY_AUTH_OK);
        assert_string_equal(out.hash, after);
        assert_int_equal(login(f, USER, "wrong", &f->ip, time(NULL), NULL), POLICY_AUTH_FAILED);
        sqlite3_exec(f->db, "DELETE FROM auth_failure", NULL, NULL, NULL);
    }
}

/* Another connection holds the write lock: failures cannot be recorded and the legacy hash
 * cannot be replaced, but logins still work and no transaction stays open. */
static void test_locked_database(void **state)
{
    struct fx *f = *state;
    set_hash(f->db, USER, HASH_HMAIL);
    sqlite3 *other = NULL;
    const char *err = NULL;
    assert_non_null(other = dir_db_open(f->path, false, &err));
    sqlite3_busy_timeout(f->db, 0);
    assert_int_equal(sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    for (int i = 0; i < 5; i++)
        assert_int_equal(login(f, USER, "wrong", &f->ip, time(NULL), NULL), POLICY_AUTH_FAILED);
    struct policy_auth_outcome out;
    assert_int_equal(login(f, USER, PW, &f->ip, time(NULL), &out), POLICY_AUTH_OK);
    assert_string_equal(out.hash, HASH_HMAIL); /* not upgraded: still the valid hash */
    assert_int_equal(policy_auth_still_valid(f->d, USER, out.hash), DIR_OK);
    assert_int_equal(sqlite3_exec(other, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    dir_db_close(&other);
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM auth_failure"), 0);
    /* unlocked: the next login upgrades */
    assert_int_equal(login(f, USER, PW, &f->ip, time(NULL), &out), POLICY_AUTH_OK);
    assert_memory_equal(out.hash, "$y$", 3);
    sqlite3_busy_timeout(f->db, 5000);
}

/* A directory that cannot be read: TEMPFAIL, and nothing counts towards a ban. */
static enum dir_result broken_domain_get(struct dir *d, const char *name, struct dir_domain *out)
{
    (void)d, (void)name, (void)out;
    return DIR_TEMPFAIL;
}

static void test_tempfail(void **state)
{
    struct fx *f = *state;
    static struct dir_ops ops; /* every lookup unset but domain_get: login must not reach them */
    ops.domain_get = broken_domain_get;
    struct dir broken = {&ops};
    struct dir *saved = f->d;
    f->d = &broken;
    for (int i = 0; i < 5; i++)
        assert_int_equal(login(f, USER, "wrong", &f->ip, time(NULL), NULL), POLICY_AUTH_TEMPFAIL);
    assert_int_equal(login(f, USER, PW, &f->ip, time(NULL), NULL), POLICY_AUTH_TEMPFAIL);
    f->d = saved;
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM auth_failure"), 0);
}

/* ---- auto-ban ---- */

struct range_row {
    char name[DIR_NAME_MAX];
    int64_t priority, flags, expires, family;
    int64_t count;
};

/* The auto-ban range(s) whose name starts with prefix. */
static void ban_row(struct fx *f, const char *name_like, struct range_row *r)
{
    memset(r, 0, sizeof(*r));
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(f->db,
                                        "SELECT name, priority, flags, expires, family, "
                                        "(SELECT count(*) FROM iprange WHERE name LIKE ?1) "
                                        "FROM iprange WHERE name LIKE ?1 ORDER BY id",
                                        -1, &st, NULL),
                     SQLITE_OK);
    sqlite3_bind_text(st, 1, name_like, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW) {
        strcpy(r->name, (const char *)sqlite3_column_text(st, 0));
        r->priority = sqlite3_column_int64(st, 1);
        r->flags = sqlite3_column_int64(st, 2);
        r->expires = sqlite3_column_int64(st, 3);
        r->family = sqlite3_column_int64(st, 4);
        r->count = sqlite3_column_int64(st, 5);
    }
    sqlite3_finalize(st);
}

static void test_autoban(void **state)
{
    struct fx *f = *state;
    time_t now = time(NULL);
    struct dir_iprange ipr;
    assert_int_equal(dir_iprange_match(f->d, &f->ip, &ipr), DIR_OK);
    assert_string_equal(ipr.name, "Internet");

    assert_int_equal(login(f, USER, "wrong1", &f->ip, now, NULL), POLICY_AUTH_FAILED);
    assert_int_equal(login(f, "nobody@example.test", PW, &f->ip, now + 1, NULL),
                     POLICY_AUTH_FAILED);
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM auth_failure WHERE ip = '192.0.2.7'"), 2);
    /* a success in between neither bans nor resets the count */
    assert_int_equal(login(f, USER, PW, &f->ip, now + 2, NULL), POLICY_AUTH_OK);
    assert_int_equal(login(f, USER, "wrong3", &f->ip, now + 3, NULL), POLICY_AUTH_BANNED);

    struct range_row r;
    ban_row(f, "Auto-ban:%", &r);
    assert_int_equal(r.count, 1);
    assert_string_equal(r.name, "Auto-ban: " USER);
    assert_int_equal(r.priority, 100);
    assert_int_equal(r.flags, 0);
    assert_int_equal(r.expires, (int64_t)now + 3 + 3600 + 1);
    assert_int_equal(r.family, 4);
    /* the server's connection check now finds the ban for that address only */
    assert_int_equal(dir_iprange_match(f->d, &f->ip, &ipr), DIR_OK);
    assert_string_equal(ipr.name, "Auto-ban: " USER);
    assert_int_equal(ipr.priority, 100);
    assert_int_equal(ipr.flags, 0);
    assert_int_equal(ipaddr_cmp(&ipr.from, &f->ip), 0);
    assert_int_equal(ipaddr_cmp(&ipr.to, &f->ip), 0);
    assert_int_equal(dir_iprange_match(f->d, &f->ip2, &ipr), DIR_OK);
    assert_string_equal(ipr.name, "Internet");
    /* the address's failures were cleared: counting starts again */
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM auth_failure"), 0);
    assert_int_equal(login(f, USER, "wrong4", &f->ip, now + 4, NULL), POLICY_AUTH_FAILED);
    /* the CLI sees and removes it like any range */
    const char *err = NULL;
    ok(dir_admin_iprange_del(f->db, "Auto-ban: " USER, &err), err);
    assert_int_equal(dir_iprange_match(f->d, &f->ip, &ipr), DIR_OK);
    assert_string_equal(ipr.name, "Internet");
}

static void test_autoban_window(void **state)
{
    struct fx *f = *state;
    time_t t0 = time(NULL) - 100000;
    assert_int_equal(login(f, USER, "x", &f->ip, t0, NULL), POLICY_AUTH_FAILED);
    assert_int_equal(login(f, USER, "x", &f->ip, t0 + 10, NULL), POLICY_AUTH_FAILED);
    /* exactly window seconds after the second failure, it no longer counts */
    assert_int_equal(login(f, USER, "x", &f->ip, t0 + 10 + 1800, NULL), POLICY_AUTH_FAILED);
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM auth_failure"), 1); /* old: pruned */
    assert_int_equal(login(f, USER, "x", &f->ip, t0 + 10 + 1801, NULL), POLICY_AUTH_FAILED);
    assert_int_equal(login(f, USER, "x", &f->ip, t0 + 10 + 1802, NULL), POLICY_AUTH_BANNED);
    struct range_row r;
    ban_row(f, "Auto-ban:%", &r);
    assert_int_equal(r.expires, (int64_t)t0 + 10 + 1802 + 3600 + 1);
    /* a ban that ran out no longer matches */
    struct dir_iprange ipr;
    assert_int_equal(dir_iprange_match(f->d, &f->ip, &ipr), DIR_OK);
    assert_string_equal(ipr.name, "Internet");
}

static void test_autoban_other_addresses(void **state)
{
    struct fx *f = *state;
    time_t now = time(NULL);
    /* interleaved failures from three addresses, same user */
    for (int i = 0; i < 2; i++) {
        assert_int_equal(login(f, USER, "x", &f->ip, now, NULL), POLICY_AUTH_FAILED);
        assert_int_equal(login(f, USER, "x", &f->ip2, now, NULL), POLICY_AUTH_FAILED);
        assert_int_equal(login(f, USER, "x", &f->ip6, now, NULL), POLICY_AUTH_FAILED);
    }
    assert_int_equal(login(f, USER, "x", &f->ip, now, NULL), POLICY_AUTH_BANNED);
    /* the others are unaffected, and may still log in */
    struct dir_iprange ipr;
    assert_int_equal(dir_iprange_match(f->d, &f->ip2, &ipr), DIR_OK);
    assert_string_equal(ipr.name, "Internet");
    assert_int_equal(dir_iprange_match(f->d, &f->ip6, &ipr), DIR_OK);
    assert_string_equal(ipr.name, "Internet (IPv6)");
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM auth_failure"), 4);
    /* their third failures ban them too, under unique names */
    assert_int_equal(login(f, USER, "x", &f->ip2, now, NULL), POLICY_AUTH_BANNED);
    assert_int_equal(login(f, USER, "x", &f->ip6, now, NULL), POLICY_AUTH_BANNED);
    assert_int_equal(dir_iprange_match(f->d, &f->ip, &ipr), DIR_OK);
    assert_string_equal(ipr.name, "Auto-ban: " USER);
    assert_int_equal(dir_iprange_match(f->d, &f->ip2, &ipr), DIR_OK);
    assert_string_equal(ipr.name, "Auto-ban: " USER " (192.0.2.8)");
    assert_int_equal(dir_iprange_match(f->d, &f->ip6, &ipr), DIR_OK);
    assert_string_equal(ipr.name, "Auto-ban: " USER " (2001:db8::7)");
    assert_int_equal(ipr.priority, 100);
    assert_int_equal(ipr.flags, 0);
    assert_int_equal(ipaddr_cmp(&ipr.from, &f->ip6), 0);
    assert_int_equal(ipaddr_cmp(&ipr.to, &f->ip6), 0);
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM auth_failure"), 0);
}

static void test_autoban_off(void **state)
{
    struct fx *f = *state;
    f->ab.enabled = false;
    for (int i = 0; i < 10; i++)
        assert_int_equal(login(f, USER, "x", &f->ip, time(NULL), NULL), POLICY_AUTH_FAILED);
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM auth_failure"), 0);
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM iprange WHERE priority = 100"), 0);
    /* no auto-ban configuration at all is the same */
    struct policy_auth_outcome out;
    policy_auth_login(f->db, f->d, USER, "x", &f->ip, NULL, time(NULL), &out);
    assert_int_equal(out.status, POLICY_AUTH_FAILED);
    /* ban = 0: the limit closes the session but creates no range */
    f->ab.enabled = true;
    f->ab.ban_s = 0;
    f->ab.max_attempts = 2;
    assert_int_equal(login(f, USER, "x", &f->ip, time(NULL), NULL), POLICY_AUTH_FAILED);
    assert_int_equal(login(f, USER, "x", &f->ip, time(NULL), NULL), POLICY_AUTH_BANNED);
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM iprange WHERE priority = 100"), 0);
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM auth_failure"), 0);
    /* max_attempts = 1: the first failure bans */
    f->ab.ban_s = 60;
    f->ab.max_attempts = 1;
    assert_int_equal(login(f, "a@b.test", "x", &f->ip, time(NULL), NULL), POLICY_AUTH_BANNED);
    assert_int_equal(
        sql_int(f->db, "SELECT count(*) FROM iprange WHERE name = 'Auto-ban: a@b.test'"), 1);
}

/* A ban that expired is replaced by the next one of the same name; expired ranges of other
 * names are left alone. */
static void test_autoban_expired(void **state)
{
    struct fx *f = *state;
    time_t now = time(NULL);
    f->ab.max_attempts = 1;
    assert_int_equal(login(f, USER, "x", &f->ip, now - 7200, NULL), POLICY_AUTH_BANNED);
    const char *err = NULL;
    struct dir_admin_iprange o = {
        .from = "198.51.100.1", .has_expires = true, .expires = (int64_t)now - 10};
    ok(dir_admin_iprange_add(f->db, "manual", &o, &err), err);
    assert_int_equal(login(f, USER, "x", &f->ip2, now, NULL), POLICY_AUTH_BANNED);
    struct range_row r;
    ban_row(f, "Auto-ban:%", &r);
    assert_int_equal(r.count, 1);
    assert_string_equal(r.name, "Auto-ban: " USER);
    assert_int_equal(r.expires, (int64_t)now + 3600 + 1);
    struct dir_iprange ipr;
    assert_int_equal(dir_iprange_match(f->d, &f->ip2, &ipr), DIR_OK);
    assert_string_equal(ipr.name, "Auto-ban: " USER);
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM iprange WHERE name = 'manual'"), 1);
    /* the prune job does the same for failures and bans */
    f->ab.max_attempts = 3;
    assert_int_equal(login(f, USER, "x", &f->ip, now, NULL), POLICY_AUTH_FAILED);
    assert_int_equal(policy_autoban_prune(f->db, &f->ab, now + 1800, &err), 1);
    assert_int_equal(policy_autoban_prune(f->db, &f->ab, now + 3600, &err), 0);
    assert_int_equal(policy_autoban_prune(f->db, &f->ab, now + 3601, &err), 1);
    assert_int_equal(policy_autoban_prune(f->db, &f->ab, now + 3601, &err), 0);
    no_open_transaction(f);
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM iprange"), 5); /* 4 defaults + manual */
}

/* User names come from the network: the range name stays printable and within 100 characters,
 * without a broken UTF-8 sequence. */
static void test_autoban_hostile_names(void **state)
{
    struct fx *f = *state;
    f->ab.max_attempts = 1;
    char longname[400];
    memset(longname, 'a', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    char utf8[200];
    /* 89 ASCII bytes, then 'é' (2 bytes) straddles the cut at 90 characters after the prefix */
    memset(utf8, 'b', 89);
    strcpy(utf8 + 89, "\xc3\xa9zzz");
    static const char *const expect_prefix[] = {"Auto-ban: aaaa", "Auto-ban: x??y?z",
                                                "Auto-ban: (empty)", "Auto-ban: bbbb"};
    const char *users[] = {longname, "x\r\ny\tz", "", utf8};
    struct ipaddr ip;
    for (size_t i = 0; i < 4; i++) {
        char ipstr[32];
        snprintf(ipstr, sizeof(ipstr), "203.0.113.%zu", i + 1);
        assert_int_equal(ipaddr_parse(ipstr, &ip), 0);
        assert_int_equal(login(f, users[i], "x", &ip, time(NULL), NULL), POLICY_AUTH_BANNED);
        struct dir_iprange ipr;
        assert_int_equal(dir_iprange_match(f->d, &ip, &ipr), DIR_OK);
        assert_int_equal(strncmp(ipr.name, expect_prefix[i], strlen(expect_prefix[i])), 0);
        assert_true(strlen(ipr.name) <= DIR_IPRANGE_NAME_MAX);
        for (const char *p = ipr.name; *p; p++)
            assert_true((unsigned char)*p >= 0x20 && *p != 0x7f);
    }
    struct dir_iprange ipr;
    assert_int_equal(dir_iprange_match(f->d, &ip, &ipr), DIR_OK);
    assert_int_equal(strlen(ipr.name), 10 + 89); /* the partial 'é' was dropped */
    /* the stored user name of a failure is bounded too */
    f->ab.max_attempts = 5;
    assert_int_equal(login(f, longname, "x", &f->ip, time(NULL), NULL), POLICY_AUTH_FAILED);
    assert_int_equal(sql_int(f->db, "SELECT max(length(user)) FROM auth_failure"), 255);
}

static void test_printable(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        size_t size;
        const char *out;
    } cases[] = {
        {"plain", 64, "plain"},
        {"a\tb\nc\x7f", 64, "a?b?c?"},
        {"abcdef", 4, "abc"},
        {"ab\xc3\xa9", 4, "ab"},                     /* 'é' would be cut: dropped */
        {"ab\xc3\xa9", 5, "ab\xc3\xa9"},             /* fits */
        {"a\xe2\x82\xac", 3, "a"},                   /* '€' cut after 1 of 3 bytes */
        {"a\xe2\x82\xac", 4, "a"},                   /* cut after 2 of 3 bytes */
        {"a\xe2\x82\xac!", 5, "a\xe2\x82\xac"},      /* the cut is between characters */
        {"\x80\x80\x80\x80\x80", 4, "\x80\x80\x80"}, /* not UTF-8: cut as bytes */
        {"", 1, ""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char out[64];
        policy_autoban_printable(cases[i].in, out, cases[i].size);
        if (strcmp(out, cases[i].out) != 0)
            fail_msg("case %zu: got \"%s\"", i, out);
    }
}

/* ---- re-validation ---- */

static void test_still_valid(void **state)
{
    struct fx *f = *state;
    struct policy_auth_outcome out;
    assert_int_equal(login(f, USER, PW, &f->ip, time(NULL), &out), POLICY_AUTH_OK);
    assert_int_equal(policy_auth_still_valid(f->d, out.account, out.hash), DIR_OK);
    assert_int_equal(policy_auth_still_valid(f->d, "USER@example.TEST", out.hash), DIR_OK);
    /* the same password set again is a new hash (new salt): the session ends */
    set_account(f->db, USER, PW, KEEP);
    assert_int_equal(policy_auth_still_valid(f->d, out.account, out.hash), DIR_NOTFOUND);
    assert_int_equal(login(f, USER, PW, &f->ip, time(NULL), &out), POLICY_AUTH_OK);
    assert_int_equal(policy_auth_still_valid(f->d, out.account, out.hash), DIR_OK);
    /* other account changes do not matter */
    struct dir_admin_account q = {NULL, KEEP, 100, "fwd@remote.test", 1};
    const char *err = NULL;
    ok(dir_admin_account_set(f->db, USER, &q, &err), err);
    assert_int_equal(policy_auth_still_valid(f->d, out.account, out.hash), DIR_OK);
    /* account disabled, then enabled again */
    set_account(f->db, USER, NULL, 0);
    assert_int_equal(policy_auth_still_valid(f->d, out.account, out.hash), DIR_NOTFOUND);
    set_account(f->db, USER, NULL, 1);
    assert_int_equal(policy_auth_still_valid(f->d, out.account, out.hash), DIR_OK);
    /* domain disabled, then enabled again */
    set_domain_enabled(f->db, "example.test", 0);
    assert_int_equal(policy_auth_still_valid(f->d, out.account, out.hash), DIR_NOTFOUND);
    set_domain_enabled(f->db, "example.test", 1);
    assert_int_equal(policy_auth_still_valid(f->d, out.account, out.hash), DIR_OK);
    /* a different hash, an empty one, none */
    assert_int_equal(policy_auth_still_valid(f->d, out.account, HASH_SHA512), DIR_NOTFOUND);
    assert_int_equal(policy_auth_still_valid(f->d, out.account, ""), DIR_NOTFOUND);
    assert_int_equal(policy_auth_still_valid(f->d, out.account, NULL), DIR_NOTFOUND);
    /* account deleted */
    ok(dir_admin_account_del(f->db, USER, &err), err);
    assert_int_equal(policy_auth_still_valid(f->d, out.account, out.hash), DIR_NOTFOUND);
    no_open_transaction(f);
}

static enum dir_result broken_account_get(struct dir *d, const char *a, struct dir_account *out)
{
    (void)d, (void)a, (void)out;
    return DIR_TEMPFAIL;
}

/* A lookup failure is passed on, not taken as "changed". */
static void test_still_valid_tempfail(void **state)
{
    (void)state;
    static struct dir_ops ops;
    ops.account_get = broken_account_get;
    struct dir broken = {&ops};
    assert_int_equal(policy_auth_still_valid(&broken, USER, "$y$x"), DIR_TEMPFAIL);
}

int main(void)
{
    log_init("test_policy_auth", LOG_LEVEL_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_login_ok, setup, teardown),
        cmocka_unit_test_setup_teardown(test_login_failures, setup, teardown),
        cmocka_unit_test_setup_teardown(test_legacy_hashes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_locked_database, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tempfail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_autoban, setup, teardown),
        cmocka_unit_test_setup_teardown(test_autoban_window, setup, teardown),
        cmocka_unit_test_setup_teardown(test_autoban_other_addresses, setup, teardown),
        cmocka_unit_test_setup_teardown(test_autoban_off, setup, teardown),
        cmocka_unit_test_setup_teardown(test_autoban_expired, setup, teardown),
        cmocka_unit_test_setup_teardown(test_autoban_hostile_names, setup, teardown),
        cmocka_unit_test(test_printable),
        cmocka_unit_test_setup_teardown(test_still_valid, setup, teardown),
        cmocka_unit_test(test_still_valid_tempfail),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

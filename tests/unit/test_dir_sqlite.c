/* test_dir_sqlite: the SQLite directory backend (src/dir/dir_sqlite.c), the admin layer that
 * fills it (src/dir/dir_admin*.c) and password hashing (src/dir/dir_password.c).
 *
 * Each test gets a fresh in-memory database with every migration applied, filled through
 * dir_admin_* (so the admin functions are exercised as the CLI uses them), then checks every
 * lookup of struct dir_ops: found, NOTFOUND, case-insensitivity, iprange matching (priority,
 * family, expiry, boundaries), route wildcards and order, list member order (also with a
 * callback that re-enters the directory), TEMPFAIL on a locked database and PERMFAIL on a
 * database without the schema; then the admin validation errors, table-driven. */
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
#include "lib/ipaddr.h"

#define KEEP DIR_ADMIN_KEEP

struct fx {
    sqlite3 *db;
    struct dir *dir;
};

static void ok(int r, const char *err)
{
    if (r != 0)
        fail_msg("admin call failed: %s", err ? err : "?");
}

static void add_domain(sqlite3 *db, const char *name, int enabled, int64_t max_kb,
                       const char *catch_all, const char *plus)
{
    struct dir_admin_domain o = {enabled, max_kb, catch_all, plus};
    const char *err = NULL;
    ok(dir_admin_domain_add(db, name, &o, &err), err);
}

static void add_account(sqlite3 *db, const char *addr, const char *pw)
{
    struct dir_admin_account o = {pw, KEEP, KEEP, NULL, KEEP};
    const char *err = NULL;
    ok(dir_admin_account_add(db, addr, &o, &err), err);
}

static void add_iprange(sqlite3 *db, const char *name, const char *from, const char *to, int prio,
                        int64_t expires)
{
    struct dir_admin_iprange o = {.from = from,
                                  .to = to,
                                  .has_priority = true,
                                  .priority = prio,
                                  .has_expires = expires != 0,
                                  .expires = expires};
    const char *err = NULL;
    ok(dir_admin_iprange_add(db, name, &o, &err), err);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    const char *err = NULL;
    f->db = dir_db_open(":memory:", true, &err);
    assert_non_null(f->db);
    assert_int_equal(dir_db_migrate(f->db, &err), 0);
    f->dir = dir_sqlite_new(f->db);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    dir_close(&f->dir);
    assert_null(f->dir);
    dir_db_close(&f->db);
    free(f);
    return 0;
}

/* ---- domains and domain aliases ---- */

static void test_domain(void **state)
{
    struct fx *f = *state;
    add_domain(f->db, "Example.TEST", KEEP, 2048, "postmaster@example.test", "+");
    add_domain(f->db, "off.test", 0, KEEP, NULL, NULL);
    struct dir_domain d;
    static const char *const names[] = {"example.test", "EXAMPLE.test", "Example.TEST"};
    for (size_t i = 0; i < 3; i++) {
        memset(&d, 0x55, sizeof(d));
        assert_int_equal(dir_domain_get(f->dir, names[i], &d), DIR_OK);
        assert_string_equal(d.name, "Example.TEST"); /* stored as entered */
        assert_true(d.enabled);
        assert_int_equal(d.max_message_kb, 2048);
        assert_string_equal(d.catch_all, "postmaster@example.test");
        assert_int_equal(d.plus_char, '+');
        assert_true(d.id > 0);
    }
    assert_int_equal(dir_domain_get(f->dir, "off.test", &d), DIR_OK);
    assert_false(d.enabled);
    assert_int_equal(d.max_message_kb, 0);
    assert_string_equal(d.catch_all, "");
    assert_int_equal(d.plus_char, '\0');
    assert_int_equal(dir_domain_get(f->dir, "example.tes", &d), DIR_NOTFOUND);
    assert_int_equal(dir_domain_get(f->dir, "xexample.test", &d), DIR_NOTFOUND);
    assert_int_equal(dir_domain_get(f->dir, "", &d), DIR_NOTFOUND);
}

static void test_domain_set_keeps_fields(void **state)
{
    struct fx *f = *state;
    add_domain(f->db, "example.test", KEEP, 100, "a@example.test", "-");
    struct dir_admin_domain o = {0, KEEP, NULL, NULL};
    const char *err = NULL;
    ok(dir_admin_domain_set(f->db, "EXAMPLE.TEST", &o, &err), err);
    struct dir_domain d;
    assert_int_equal(dir_domain_get(f->dir, "example.test", &d), DIR_OK);
    assert_false(d.enabled);
    assert_int_equal(d.max_message_kb, 100);
    assert_string_equal(d.catch_all, "a@example.test");
    assert_int_equal(d.plus_char, '-');
    struct dir_admin_domain o2 = {1, 0, "", ""}; /* "none" for catch-all and plus */
    ok(dir_admin_domain_set(f->db, "example.test", &o2, &err), err);
    assert_int_equal(dir_domain_get(f->dir, "example.test", &d), DIR_OK);
    assert_true(d.enabled);
    assert_int_equal(d.max_message_kb, 0);
    assert_string_equal(d.catch_all, "");
    assert_int_equal(d.plus_char, '\0');
}

static void test_domain_alias(void **state)
{
    struct fx *f = *state;
    add_domain(f->db, "example.test", KEEP, KEEP, NULL, NULL);
    const char *err = NULL;
    ok(dir_admin_domain_alias_add(f->db, "Alias.TEST", "EXAMPLE.test", &err), err);
    char primary[DIR_NAME_MAX];
    assert_int_equal(dir_domain_alias_get(f->dir, "alias.test", primary), DIR_OK);
    assert_string_equal(primary, "example.test");
    assert_int_equal(dir_domain_alias_get(f->dir, "example.test", primary), DIR_NOTFOUND);
    struct dir_domain d;
    assert_int_equal(dir_domain_resolve(f->dir, "ALIAS.test", &d), DIR_OK);
    assert_string_equal(d.name, "example.test");
    assert_int_equal(dir_domain_resolve(f->dir, "example.test", &d), DIR_OK);
    assert_int_equal(dir_domain_resolve(f->dir, "other.test", &d), DIR_NOTFOUND);
    /* Deleting the domain deletes its aliases. */
    ok(dir_admin_domain_del(f->db, "example.test", &err), err);
    assert_int_equal(dir_domain_alias_get(f->dir, "alias.test", primary), DIR_NOTFOUND);
}

/* ---- accounts, aliases, lists ---- */

static void test_account(void **state)
{
    struct fx *f = *state;
    add_domain(f->db, "example.test", KEEP, KEEP, NULL, NULL);
    add_account(f->db, "John.Doe@Example.test", "s3cret pw");
    struct dir_account a;
    assert_int_equal(dir_account_get(f->dir, "john.doe@EXAMPLE.TEST", &a), DIR_OK);
    assert_string_equal(a.address, "John.Doe@Example.test");
    assert_true(a.enabled);
    assert_int_equal(a.quota_mb, 0);
    assert_string_equal(a.forward, "");
    assert_false(a.keep_copy);
    assert_true(strncmp(a.password_hash, "$y$", 3) == 0);
    assert_true(dir_password_verify(a.password_hash, "s3cret pw"));
    assert_false(dir_password_verify(a.password_hash, "S3cret pw"));
    int64_t domain_id = a.domain_id;
    struct dir_domain d;
    assert_int_equal(dir_domain_get(f->dir, "example.test", &d), DIR_OK);
    assert_int_equal(domain_id, d.id);

    struct dir_admin_account o = {"new pw", 0, 50, "elsewhere@remote.test", 1};
    const char *err = NULL;
    ok(dir_admin_account_set(f->db, "JOHN.doe@example.test", &o, &err), err);
    assert_int_equal(dir_account_get(f->dir, "john.doe@example.test", &a), DIR_OK);
    assert_false(a.enabled);
    assert_int_equal(a.quota_mb, 50);
    assert_string_equal(a.forward, "elsewhere@remote.test");
    assert_true(a.keep_copy);
    assert_true(dir_password_verify(a.password_hash, "new pw"));
    assert_false(dir_password_verify(a.password_hash, "s3cret pw"));
    /* set without a password keeps the hash */
    char hash[256];
    strcpy(hash, a.password_hash);
    struct dir_admin_account o2 = {NULL, 1, KEEP, "", KEEP};
    ok(dir_admin_account_set(f->db, "john.doe@example.test", &o2, &err), err);
    assert_int_equal(dir_account_get(f->dir, "john.doe@example.test", &a), DIR_OK);
    assert_string_equal(a.password_hash, hash);
    assert_true(a.enabled);
    assert_string_equal(a.forward, "");
    assert_int_equal(a.quota_mb, 50);

    assert_int_equal(dir_account_get(f->dir, "john@example.test", &a), DIR_NOTFOUND);
    ok(dir_admin_account_del(f->db, "John.Doe@example.TEST", &err), err);
    assert_int_equal(dir_account_get(f->dir, "john.doe@example.test", &a), DIR_NOTFOUND);
}

static void test_alias_and_list(void **state)
{
    struct fx *f = *state;
    add_domain(f->db, "example.test", KEEP, KEEP, NULL, NULL);
    const char *err = NULL;
    struct dir_admin_alias ao = {"Target@Remote.test", KEEP};
    ok(dir_admin_alias_add(f->db, "Info@example.test", &ao, &err), err);
    struct dir_alias al;
    assert_int_equal(dir_alias_get(f->dir, "INFO@example.test", &al), DIR_OK);
    assert_string_equal(al.address, "Info@example.test");
    assert_string_equal(al.target, "Target@Remote.test");
    assert_true(al.enabled);
    struct dir_admin_alias ao2 = {NULL, 0};
    ok(dir_admin_alias_set(f->db, "info@example.test", &ao2, &err), err);
    assert_int_equal(dir_alias_get(f->dir, "info@example.test", &al), DIR_OK);
    assert_false(al.enabled);
    assert_string_equal(al.target, "Target@Remote.test");
    assert_int_equal(dir_alias_get(f->dir, "nobody@example.test", &al), DIR_NOTFOUND);

    struct dir_admin_list lo = {"announce", "Boss@example.test", 1, KEEP};
    ok(dir_admin_list_add(f->db, "News@example.test", &lo, &err), err);
    struct dir_list l;
    assert_int_equal(dir_list_get(f->dir, "news@EXAMPLE.test", &l), DIR_OK);
    assert_string_equal(l.address, "News@example.test");
    assert_int_equal(l.mode, DIR_LIST_ANNOUNCE);
    assert_string_equal(l.announcer, "Boss@example.test");
    assert_true(l.require_auth);
    assert_true(l.enabled);
    struct dir_admin_list lo2 = {"MEMBERS", "", 0, 0};
    ok(dir_admin_list_set(f->db, "news@example.test", &lo2, &err), err);
    assert_int_equal(dir_list_get(f->dir, "news@example.test", &l), DIR_OK);
    assert_int_equal(l.mode, DIR_LIST_MEMBERS);
    assert_string_equal(l.announcer, "");
    assert_false(l.require_auth);
    assert_false(l.enabled);
    assert_int_equal(dir_list_get(f->dir, "info@example.test", &l), DIR_NOTFOUND);
}

struct members {
    char got[8][DIR_ADDR_MAX];
    int n;
    struct dir *dir; /* for the re-entrant callback */
    int64_t nested_list;
};

static void collect(void *ctx, const char *address)
{
    struct members *m = ctx;
    assert_true(m->n < 8);
    strcpy(m->got[m->n++], address);
}

/* Expands a nested list while the outer iteration is still running. */
static void collect_nested(void *ctx, const char *address)
{
    struct members *m = ctx;
    collect(m, address);
    struct dir_list l;
    if (dir_list_get(m->dir, address, &l) == DIR_OK)
        assert_int_equal(dir_list_members(m->dir, l.id, collect, m), DIR_OK);
}

static void test_list_members(void **state)
{
    struct fx *f = *state;
    add_domain(f->db, "example.test", KEEP, KEEP, NULL, NULL);
    const char *err = NULL;
    struct dir_admin_list lo = {NULL, NULL, KEEP, KEEP};
    ok(dir_admin_list_add(f->db, "all@example.test", &lo, &err), err);
    ok(dir_admin_list_add(f->db, "team@example.test", &lo, &err), err);
    ok(dir_admin_list_add(f->db, "empty@example.test", &lo, &err), err);
    /* insertion order, deliberately not alphabetical */
    static const char *const all[] = {"zed@example.test", "team@example.test", "amy@remote.test"};
    for (int i = 0; i < 3; i++)
        ok(dir_admin_list_member_add(f->db, "ALL@example.test", all[i], &err), err);
    ok(dir_admin_list_member_add(f->db, "team@example.test", "bob@example.test", &err), err);
    ok(dir_admin_list_member_add(f->db, "team@example.test", "carl@example.test", &err), err);

    struct dir_list l;
    struct members m = {.n = 0};
    assert_int_equal(dir_list_get(f->dir, "all@example.test", &l), DIR_OK);
    assert_int_equal(dir_list_members(f->dir, l.id, collect, &m), DIR_OK);
    assert_int_equal(m.n, 3);
    for (int i = 0; i < 3; i++)
        assert_string_equal(m.got[i], all[i]);

    memset(&m, 0, sizeof(m));
    m.dir = f->dir;
    assert_int_equal(dir_list_members(f->dir, l.id, collect_nested, &m), DIR_OK);
    static const char *const expanded[] = {"zed@example.test", "team@example.test",
                                           "bob@example.test", "carl@example.test",
                                           "amy@remote.test"};
    assert_int_equal(m.n, 5);
    for (int i = 0; i < 5; i++)
        assert_string_equal(m.got[i], expanded[i]);

    memset(&m, 0, sizeof(m));
    assert_int_equal(dir_list_get(f->dir, "empty@example.test", &l), DIR_OK);
    assert_int_equal(dir_list_members(f->dir, l.id, collect, &m), DIR_OK);
    assert_int_equal(m.n, 0);

    /* member del, case-insensitively; a missing member is an error */
    ok(dir_admin_list_member_del(f->db, "all@example.test", "TEAM@example.test", &err), err);
    assert_int_equal(
        dir_admin_list_member_del(f->db, "all@example.test", "team@example.test", &err), -1);
    assert_string_equal(err, "team@example.test is not a member of list all@example.test");
    memset(&m, 0, sizeof(m));
    assert_int_equal(dir_list_get(f->dir, "all@example.test", &l), DIR_OK);
    assert_int_equal(dir_list_members(f->dir, l.id, collect, &m), DIR_OK);
    assert_int_equal(m.n, 2);
    assert_string_equal(m.got[0], "zed@example.test");
    assert_string_equal(m.got[1], "amy@remote.test");
}

/* ---- routes ---- */

static void add_route(sqlite3 *db, const char *pattern, const char *host, const char *const *addrs,
                      size_t n)
{
    struct dir_admin_route o = {.host = host,
                                .port = KEEP,
                                .addresses = addrs,
                                .addresses_count = n,
                                .local_recipient = KEEP,
                                .local_sender = KEEP};
    const char *err = NULL;
    ok(dir_admin_route_add(db, pattern, &o, &err), err);
}

static void test_route(void **state)
{
    struct fx *f = *state;
    static const char *const only[] = {"Alice@Partner.test", "bob@partner.test"};
    add_route(f->db, "partner.test", "mx.partner.test", only, 2);
    add_route(f->db, "*.Branch.test", "10.0.0.5", NULL, 0);
    add_route(f->db, "deep.branch.test", "never.test", NULL, 0); /* shadowed by the one above */
    add_route(f->db, "host?.test", "relay.test|backup.test", NULL, 0);
    add_route(f->db, "*", "smarthost.test", NULL, 0);

    static const struct {
        const char *domain, *pattern;
    } cases[] = {
        {"partner.test", "partner.test"},
        {"PARTNER.TEST", "partner.test"},
        {"a.branch.test", "*.Branch.test"},
        {"deep.branch.test", "*.Branch.test"}, /* first in creation order wins */
        {"X.Y.BRANCH.test", "*.Branch.test"},
        {"host1.test", "host?.test"},
        {"host12.test", "*"},
        {"branch.test", "*"},
        {"anything.example", "*"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct dir_route r;
        assert_int_equal(dir_route_find(f->dir, cases[i].domain, &r), DIR_OK);
        if (strcmp(r.pattern, cases[i].pattern) != 0)
            fail_msg("%s matched %s, want %s", cases[i].domain, r.pattern, cases[i].pattern);
    }
    struct dir_route r;
    assert_int_equal(dir_route_find(f->dir, "partner.test", &r), DIR_OK);
    assert_string_equal(r.host, "mx.partner.test");
    assert_int_equal(r.port, 25);
    assert_false(r.all_addresses);
    assert_int_equal(r.security, DIR_SECURITY_NONE);
    assert_int_equal(dir_route_has_address(f->dir, r.id, "alice@partner.test"), DIR_OK);
    assert_int_equal(dir_route_has_address(f->dir, r.id, "BOB@PARTNER.TEST"), DIR_OK);
    assert_int_equal(dir_route_has_address(f->dir, r.id, "carol@partner.test"), DIR_NOTFOUND);
    int64_t partner_id = r.id;

    /* set: new options, address list replaced, then back to all addresses */
    static const char *const carol[] = {"carol@partner.test"};
    struct dir_admin_route o = {.port = 2525,
                                .addresses = carol,
                                .addresses_count = 1,
                                .local_recipient = 1,
                                .local_sender = 1,
                                .auth_user = "user",
                                .auth_password = "pw",
                                .security = "STARTTLS"};
    const char *err = NULL;
    ok(dir_admin_route_set(f->db, "Partner.Test", &o, &err), err);
    assert_int_equal(dir_route_find(f->dir, "partner.test", &r), DIR_OK);
    assert_int_equal(r.id, partner_id);
    assert_string_equal(r.host, "mx.partner.test");
    assert_int_equal(r.port, 2525);
    assert_true(r.local_recipient);
    assert_true(r.local_sender);
    assert_string_equal(r.auth_user, "user");
    assert_string_equal(r.auth_password, "pw");
    assert_int_equal(r.security, DIR_SECURITY_STARTTLS);
    assert_int_equal(dir_route_has_address(f->dir, r.id, "alice@partner.test"), DIR_NOTFOUND);
    assert_int_equal(dir_route_has_address(f->dir, r.id, "carol@partner.test"), DIR_OK);
    struct dir_admin_route o2 = {.port = KEEP,
                                 .all_addresses = true,
                                 .local_recipient = KEEP,
                                 .local_sender = KEEP,
                                 .auth_user = ""};
    ok(dir_admin_route_set(f->db, "partner.test", &o2, &err), err);
    assert_int_equal(dir_route_find(f->dir, "partner.test", &r), DIR_OK);
    assert_true(r.all_addresses);
    assert_string_equal(r.auth_user, "");
    assert_string_equal(r.auth_password, "");
    assert_int_equal(dir_route_has_address(f->dir, r.id, "carol@partner.test"), DIR_NOTFOUND);

    ok(dir_admin_route_del(f->db, "*", &err), err);
    assert_int_equal(dir_route_find(f->dir, "anything.example", &r), DIR_NOTFOUND);
    assert_int_equal(dir_route_find(f->dir, "host12.test", &r), DIR_NOTFOUND);
}

/* ---- IP ranges ---- */

/* design.md §5: hMailServer's 71627 and 96203 (behaviour §2.2) without anti-virus (4096), and
 * "Internet" with TLS required for AUTH. */
#define MY_COMPUTER 67531u /* 1+2+8 + 64+128+256+512 + 1024 + 65536 */
#define INTERNET 223179u   /* 1+2+8 + 64+128+256+512 + 1024 + 8192+16384+65536 + 131072 */

static void test_iprange_defaults(void **state)
{
    struct fx *f = *state;
    const char *err = NULL;
    int created = -1;
    ok(dir_admin_iprange_defaults(f->db, &created, &err), err);
    assert_int_equal(created, 4);
    ok(dir_admin_iprange_defaults(f->db, &created, &err), err);
    assert_int_equal(created, 0); /* idempotent */

    static const struct {
        const char *ip, *range;
        uint32_t flags;
    } cases[] = {
        {"127.0.0.1", "My computer", MY_COMPUTER},
        {"127.0.0.2", "Internet", INTERNET},
        {"0.0.0.0", "Internet", 0},
        {"255.255.255.255", "Internet", 0},
        {"192.0.2.1", "Internet", 0},
        {"::1", "My computer (IPv6)", MY_COMPUTER},
        {"::", "Internet (IPv6)", 0},
        {"::2", "Internet (IPv6)", INTERNET},
        {"2001:db8::1", "Internet (IPv6)", 0},
        {"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "Internet (IPv6)", 0},
        {"::ffff:127.0.0.1", "Internet (IPv6)", 0}, /* written as IPv6: the IPv6 family */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct ipaddr ip;
        struct dir_iprange r;
        assert_int_equal(ipaddr_parse(cases[i].ip, &ip), 0);
        assert_int_equal(dir_iprange_match(f->dir, &ip, &r), DIR_OK);
        if (strcmp(r.name, cases[i].range) != 0)
            fail_msg("%s matched %s, want %s", cases[i].ip, r.name, cases[i].range);
        if (cases[i].flags && r.flags != cases[i].flags)
            fail_msg("%s: flags %#x, want %#x", cases[i].ip, r.flags, cases[i].flags);
        assert_int_equal(r.from.family, ip.family);
        assert_int_equal(r.expires, 0);
    }
    /* "My computer": 127.0.0.1 only, priority 30; "Internet": TLS for AUTH, priority 10 */
    struct ipaddr ip;
    struct dir_iprange r;
    ipaddr_parse("127.0.0.1", &ip);
    assert_int_equal(dir_iprange_match(f->dir, &ip, &r), DIR_OK);
    assert_int_equal(r.priority, 30);
    assert_int_equal(ipaddr_cmp(&r.from, &ip), 0);
    assert_int_equal(ipaddr_cmp(&r.to, &ip), 0);
    assert_false(r.flags & DIR_IPR_TLS_FOR_AUTH);
    ipaddr_parse("203.0.113.9", &ip);
    assert_int_equal(dir_iprange_match(f->dir, &ip, &r), DIR_OK);
    assert_int_equal(r.priority, 10);
    assert_true(r.flags & DIR_IPR_TLS_FOR_AUTH);
    assert_false(r.flags & DIR_IPR_AUTH_EL);
    /* one deleted default stays deleted: the table is not empty */
    ok(dir_admin_iprange_del(f->db, "my COMPUTER", &err), err);
    ok(dir_admin_iprange_defaults(f->db, &created, &err), err);
    assert_int_equal(created, 0);
    ipaddr_parse("127.0.0.1", &ip);
    assert_int_equal(dir_iprange_match(f->dir, &ip, &r), DIR_OK);
    assert_string_equal(r.name, "Internet");
}

static void test_iprange_match(void **state)
{
    struct fx *f = *state;
    int64_t now = (int64_t)time(NULL);
    add_iprange(f->db, "net10", "10.0.0.0", "10.255.255.255", 10, 0);
    add_iprange(f->db, "office", "10.1.0.0", "10.1.0.255", 20, 0);
    add_iprange(f->db, "office tie", "10.1.0.0", "10.1.0.255", 20, 0); /* same prio: older wins */
    add_iprange(f->db, "banned", "10.1.0.66", "10.1.0.66", 100, now - 5); /* expired */
    add_iprange(f->db, "ban live", "10.1.0.77", "10.1.0.77", 100, now + 3600);
    add_iprange(f->db, "low", "10.1.0.0", "10.1.0.255", -5, 0);
    add_iprange(f->db, "v6 mapped", "::ffff:0.0.0.0", "::ffff:255.255.255.255", 500, 0);
    add_iprange(f->db, "v6 doc", "2001:db8::", "2001:db8::ffff", 10, 0);

    static const struct {
        const char *ip, *range; /* NULL = no range */
    } cases[] = {
        {"10.0.0.0", "net10"},
        {"10.255.255.255", "net10"},
        {"9.255.255.255", NULL},
        {"11.0.0.0", NULL},
        {"10.0.255.255", "net10"},
        {"10.1.0.0", "office"},
        {"10.1.0.255", "office"},
        {"10.1.1.0", "net10"},
        {"10.1.0.66", "office"}, /* the ban expired */
        {"10.1.0.77", "ban live"},
        {"::ffff:10.1.0.1", "v6 mapped"}, /* IPv6 family only */
        {"2001:db8::", "v6 doc"},
        {"2001:db8::ffff", "v6 doc"},
        {"2001:db8::1:0", NULL},
        {"2001:db7:ffff:ffff:ffff:ffff:ffff:ffff", NULL},
        {"::1", NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct ipaddr ip;
        struct dir_iprange r;
        assert_int_equal(ipaddr_parse(cases[i].ip, &ip), 0);
        enum dir_result res = dir_iprange_match(f->dir, &ip, &r);
        if (!cases[i].range) {
            if (res != DIR_NOTFOUND)
                fail_msg("%s: want NOTFOUND, got %s (%s)", cases[i].ip, dir_result_name(res),
                         r.name);
            continue;
        }
        if (res != DIR_OK || strcmp(r.name, cases[i].range) != 0)
            fail_msg("%s: want %s, got %s %s", cases[i].ip, cases[i].range, dir_result_name(res),
                     res == DIR_OK ? r.name : "");
    }
    /* expires is reported; set can clear it and change the bounds */
    struct ipaddr ip;
    struct dir_iprange r;
    ipaddr_parse("10.1.0.77", &ip);
    assert_int_equal(dir_iprange_match(f->dir, &ip, &r), DIR_OK);
    assert_int_equal(r.expires, now + 3600);
    struct dir_admin_iprange o = {.has_expires = true, .expires = 0, .to = "10.1.0.78"};
    const char *err = NULL;
    ok(dir_admin_iprange_set(f->db, "ban live", &o, &err), err);
    ipaddr_parse("10.1.0.78", &ip);
    assert_int_equal(dir_iprange_match(f->dir, &ip, &r), DIR_OK);
    assert_string_equal(r.name, "ban live");
    assert_int_equal(r.expires, 0);
    /* flags under the mask change, the rest stay */
    uint32_t before = r.flags;
    struct dir_admin_iprange o2 = {.flags = DIR_IPR_POP3, .flags_mask = DIR_IPR_ALLOW_MASK};
    ok(dir_admin_iprange_set(f->db, "ban live", &o2, &err), err);
    assert_int_equal(dir_iprange_match(f->dir, &ip, &r), DIR_OK);
    assert_int_equal(r.flags, (before & ~(uint32_t)DIR_IPR_ALLOW_MASK) | DIR_IPR_POP3);
}

/* ---- failures ---- */

static void test_result_mapping(void **state)
{
    (void)state;
    static const struct {
        int rc;
        enum dir_result r;
    } cases[] = {
        {SQLITE_OK, DIR_OK},
        {SQLITE_ROW, DIR_OK},
        {SQLITE_DONE, DIR_NOTFOUND},
        {SQLITE_BUSY, DIR_TEMPFAIL},
        {SQLITE_BUSY_SNAPSHOT, DIR_TEMPFAIL},
        {SQLITE_LOCKED, DIR_TEMPFAIL},
        {SQLITE_IOERR, DIR_TEMPFAIL},
        {SQLITE_IOERR_READ, DIR_TEMPFAIL},
        {SQLITE_FULL, DIR_TEMPFAIL},
        {SQLITE_NOMEM, DIR_TEMPFAIL},
        {SQLITE_CANTOPEN, DIR_TEMPFAIL},
        {SQLITE_ERROR, DIR_PERMFAIL},
        {SQLITE_CORRUPT, DIR_PERMFAIL},
        {SQLITE_NOTADB, DIR_PERMFAIL},
        {SQLITE_MISMATCH, DIR_PERMFAIL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        if (dir_sqlite_result(cases[i].rc) != cases[i].r)
            fail_msg("rc %d -> %s", cases[i].rc, dir_result_name(dir_sqlite_result(cases[i].rc)));
}

static void test_permfail_without_schema(void **state)
{
    (void)state;
    const char *err = NULL;
    sqlite3 *db = dir_db_open(":memory:", true, &err);
    assert_non_null(db);
    struct dir *d = dir_sqlite_new(db);
    struct dir_domain dom;
    struct dir_iprange r;
    struct ipaddr ip;
    ipaddr_parse("127.0.0.1", &ip);
    assert_int_equal(dir_domain_get(d, "example.test", &dom), DIR_PERMFAIL);
    assert_int_equal(dir_iprange_match(d, &ip, &r), DIR_PERMFAIL);
    /* the failed prepare is not cached: after migrating, the same handle works */
    assert_int_equal(dir_db_migrate(db, &err), 0);
    assert_int_equal(dir_domain_get(d, "example.test", &dom), DIR_NOTFOUND);
    dir_close(&d);
    dir_db_close(&db);
}

static void test_tempfail_when_locked(void **state)
{
    (void)state;
    char path[] = "/tmp/test_dir_sqlite_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    /* A rollback-journal database (not WAL), so an exclusive lock blocks readers. */
    sqlite3 *a = NULL, *b = NULL;
    assert_int_equal(sqlite3_open(path, &a), SQLITE_OK);
    assert_int_equal(sqlite3_open(path, &b), SQLITE_OK);
    const char *err = NULL;
    assert_int_equal(dir_db_migrate(a, &err), 0);
    add_domain(a, "example.test", KEEP, KEEP, NULL, NULL);
    struct dir *d = dir_sqlite_new(a);
    struct dir_domain dom;
    assert_int_equal(dir_domain_get(d, "example.test", &dom), DIR_OK);
    sqlite3_busy_timeout(a, 0);
    assert_int_equal(sqlite3_exec(b, "BEGIN EXCLUSIVE", NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_exec(b, "UPDATE domain SET enabled = 0", NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(dir_domain_get(d, "example.test", &dom), DIR_TEMPFAIL);
    struct dir_account acc;
    assert_int_equal(dir_account_get(d, "x@example.test", &acc), DIR_TEMPFAIL);
    assert_int_equal(sqlite3_exec(b, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    /* and recovers once the lock is gone, with the committed value */
    assert_int_equal(dir_domain_get(d, "example.test", &dom), DIR_OK);
    assert_false(dom.enabled);
    dir_close(&d);
    sqlite3_close(b);
    sqlite3_close(a);
    unlink(path);
}

/* ---- passwords ---- */

static void test_password(void **state)
{
    (void)state;
    char h1[DIR_PASSWORD_HASH_MAX], h2[DIR_PASSWORD_HASH_MAX];
    const char *err = NULL;
    assert_int_equal(dir_password_hash("correct horse", h1, sizeof(h1), &err), 0);
    assert_int_equal(dir_password_hash("correct horse", h2, sizeof(h2), &err), 0);
    assert_true(strncmp(h1, "$y$", 3) == 0);
    assert_string_not_equal(h1, h2); /* fresh salt each time */
    assert_true(dir_password_verify(h1, "correct horse"));
    assert_true(dir_password_verify(h2, "correct horse"));
    assert_false(dir_password_verify(h1, "correct horsE"));
    assert_false(dir_password_verify(h1, "correct hors"));
    assert_false(dir_password_verify(h1, ""));
    assert_false(dir_password_verify("", "correct horse"));
    assert_false(dir_password_verify("*0", "correct horse"));
    assert_false(dir_password_verify("garbage", "correct horse"));
    assert_int_equal(dir_password_hash("", h1, sizeof(h1), &err), -1);
    assert_string_equal(err, "empty password");
    assert_int_equal(dir_password_hash("x", h1, 10, &err), -1);
    /* imported SHA-crypt hashes (SHA-crypt specification vectors, as `openssl passwd -5/-6`) */
    assert_true(dir_password_verify("$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5",
                                    "Hello world!"));
    assert_true(dir_password_verify("$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3u"
                                    "BnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1",
                                    "Hello world!"));
    assert_false(dir_password_verify("$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3u"
                                     "BnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1",
                                     "Hello world?"));
}

/* ---- admin validation ---- */

enum op {
    DOMAIN_ADD,
    DOMAIN_SET,
    DOMAIN_DEL,
    DALIAS_ADD,
    DALIAS_DEL,
    ACCOUNT_ADD,
    ACCOUNT_SET,
    ACCOUNT_DEL,
    ALIAS_ADD,
    ALIAS_DEL,
    LIST_ADD,
    LIST_SET,
    MEMBER_ADD,
    ROUTE_ADD,
    ROUTE_SET,
    ROUTE_DEL,
    IPR_ADD,
    IPR_SET,
    IPR_DEL,
};

struct vcase {
    enum op op;
    const char *a, *b; /* name/address, and target/domain/host/second value */
    const char *c;     /* catch-all, forward, announcer, mode... per op (see run_case) */
    const char *want;  /* expected *err_r */
};

static int run_case(sqlite3 *db, const struct vcase *c, const char **err)
{
    switch (c->op) {
    case DOMAIN_ADD: {
        struct dir_admin_domain o = {KEEP, KEEP, c->b, c->c};
        return dir_admin_domain_add(db, c->a, &o, err);
    }
    case DOMAIN_SET: {
        struct dir_admin_domain o = {KEEP, c->b ? atoll(c->b) : KEEP, NULL, c->c};
        return dir_admin_domain_set(db, c->a, &o, err);
    }
    case DOMAIN_DEL:
        return dir_admin_domain_del(db, c->a, err);
    case DALIAS_ADD:
        return dir_admin_domain_alias_add(db, c->a, c->b, err);
    case DALIAS_DEL:
        return dir_admin_domain_alias_del(db, c->a, c->b, err);
    case ACCOUNT_ADD: {
        struct dir_admin_account o = {c->b, KEEP, KEEP, c->c, KEEP};
        return dir_admin_account_add(db, c->a, &o, err);
    }
    case ACCOUNT_SET: {
        struct dir_admin_account o = {c->b, KEEP, KEEP, c->c, KEEP};
        return dir_admin_account_set(db, c->a, &o, err);
    }
    case ACCOUNT_DEL:
        return dir_admin_account_del(db, c->a, err);
    case ALIAS_ADD: {
        struct dir_admin_alias o = {c->b, KEEP};
        return dir_admin_alias_add(db, c->a, &o, err);
    }
    case ALIAS_DEL:
        return dir_admin_alias_del(db, c->a, err);
    case LIST_ADD: {
        struct dir_admin_list o = {c->c, c->b, KEEP, KEEP};
        return dir_admin_list_add(db, c->a, &o, err);
    }
    case LIST_SET: {
        struct dir_admin_list o = {c->c, c->b, KEEP, KEEP};
        return dir_admin_list_set(db, c->a, &o, err);
    }
    case MEMBER_ADD:
        return dir_admin_list_member_add(db, c->a, c->b, err);
    case ROUTE_ADD: {
        const char *addrs[] = {c->c};
        struct dir_admin_route o = {.host = c->b,
                                    .port = KEEP,
                                    .addresses = addrs,
                                    .addresses_count = c->c ? 1 : 0,
                                    .local_recipient = KEEP,
                                    .local_sender = KEEP};
        return dir_admin_route_add(db, c->a, &o, err);
    }
    case ROUTE_SET: {
        struct dir_admin_route o = {.port = c->b ? atoll(c->b) : KEEP,
                                    .local_recipient = KEEP,
                                    .local_sender = KEEP,
                                    .security = c->c};
        return dir_admin_route_set(db, c->a, &o, err);
    }
    case ROUTE_DEL:
        return dir_admin_route_del(db, c->a, err);
    case IPR_ADD: {
        struct dir_admin_iprange o = {.from = c->b, .to = c->c};
        return dir_admin_iprange_add(db, c->a, &o, err);
    }
    case IPR_SET: {
        struct dir_admin_iprange o = {.from = c->b, .to = c->c};
        return dir_admin_iprange_set(db, c->a, &o, err);
    }
    case IPR_DEL:
        return dir_admin_iprange_del(db, c->a, err);
    }
    return 0;
}

static void test_admin_validation(void **state)
{
    struct fx *f = *state;
    const char *err = NULL;
    add_domain(f->db, "example.test", KEEP, KEEP, NULL, NULL);
    ok(dir_admin_domain_alias_add(f->db, "alias.test", "example.test", &err), err);
    add_account(f->db, "john@example.test", "pw");
    struct dir_admin_alias ao = {"john@example.test", KEEP};
    ok(dir_admin_alias_add(f->db, "info@example.test", &ao, &err), err);
    struct dir_admin_list lo = {NULL, NULL, KEEP, KEEP};
    ok(dir_admin_list_add(f->db, "team@example.test", &lo, &err), err);
    ok(dir_admin_list_member_add(f->db, "team@example.test", "john@example.test", &err), err);
    add_route(f->db, "partner.test", "mx.partner.test", NULL, 0);
    add_iprange(f->db, "office", "10.0.0.1", "10.0.0.9", 20, 0);

    static const struct vcase cases[] = {
        {DOMAIN_ADD, "Example.TEST", NULL, NULL, "domain Example.TEST already exists"},
        {DOMAIN_ADD, "ALIAS.test", NULL, NULL, "ALIAS.test already exists as a domain alias"},
        {DOMAIN_ADD, "bad..test", NULL, NULL, "invalid domain \"bad..test\""},
        {DOMAIN_ADD, "", NULL, NULL, "invalid domain \"\""},
        {DOMAIN_ADD, "-x.test", NULL, NULL, "invalid domain \"-x.test\""},
        {DOMAIN_ADD, "new.test", "a@@b", NULL, "invalid address \"a@@b\""},
        {DOMAIN_ADD, "new.test", NULL, "++",
         "invalid plus character \"++\" (one of + - _ . = or none)"},
        {DOMAIN_ADD, "new.test", NULL, "#",
         "invalid plus character \"#\" (one of + - _ . = or none)"},
        {DOMAIN_SET, "x.test", NULL, "+", "no such domain x.test"},
        {DOMAIN_SET, "example.test", "-5", NULL, "invalid maximum message size -5 KB (0..4194304)"},
        {DOMAIN_DEL, "x.test", NULL, NULL, "no such domain x.test"},
        {DOMAIN_DEL, "alias.test", NULL, NULL, "no such domain alias.test"},
        {DALIAS_ADD, "alias.test", "example.test", NULL, "domain alias alias.test already exists"},
        {DALIAS_ADD, "example.test", "example.test", NULL, "a domain cannot be an alias of itself"},
        {DALIAS_ADD, "other.test", "nowhere.test", NULL, "domain nowhere.test does not exist"},
        {DALIAS_ADD, "EXAMPLE.test", "alias.test", NULL,
         "alias.test is a domain alias of example.test; use the primary domain"},
        {DALIAS_ADD, "bad_alias!", "example.test", NULL, "invalid domain \"bad_alias!\""},
        {DALIAS_DEL, "nope.test", NULL, NULL, "no such domain alias nope.test"},
        {DALIAS_DEL, "alias.test", "other.test", NULL,
         "no such domain alias alias.test for other.test"},
        {ACCOUNT_ADD, "a@@b", "pw", NULL, "invalid address \"a@@b\""},
        {ACCOUNT_ADD, "nodomain", "pw", NULL, "invalid address \"nodomain\""},
        {ACCOUNT_ADD, "x@nowhere.test", "pw", NULL, "domain nowhere.test does not exist"},
        {ACCOUNT_ADD, "x@alias.test", "pw", NULL,
         "alias.test is a domain alias of example.test; use the primary domain"},
        {ACCOUNT_ADD, "JOHN@example.test", "pw", NULL, "account JOHN@example.test already exists"},
        {ACCOUNT_ADD, "info@example.test", "pw", NULL,
         "info@example.test already exists as an alias"},
        {ACCOUNT_ADD, "team@EXAMPLE.test", "pw", NULL,
         "team@EXAMPLE.test already exists as a list"},
        {ACCOUNT_ADD, "new@example.test", NULL, NULL, "missing password"},
        {ACCOUNT_ADD, "new@example.test", "", NULL, "empty password"},
        {ACCOUNT_ADD, "new@example.test", "a\nb", NULL, "invalid password (line break)"},
        {ACCOUNT_ADD, "new@example.test", "pw", "x@", "invalid address \"x@\""},
        {ACCOUNT_ADD, "new@example.test", "pw", "NEW@example.test",
         "account new@example.test cannot forward to itself"},
        {ACCOUNT_SET, "nobody@example.test", "pw", NULL, "no such account nobody@example.test"},
        {ACCOUNT_DEL, "nobody@example.test", NULL, NULL, "no such account nobody@example.test"},
        {ALIAS_ADD, "x@nowhere.test", "john@example.test", NULL,
         "domain nowhere.test does not exist"},
        {ALIAS_ADD, "john@example.test", "a@b.test", NULL,
         "john@example.test already exists as an account"},
        {ALIAS_ADD, "Info@example.test", "a@b.test", NULL,
         "alias Info@example.test already exists"},
        {ALIAS_ADD, "loop@example.test", "LOOP@example.test", NULL,
         "alias loop@example.test cannot point to itself"},
        {ALIAS_ADD, "new@example.test", NULL, NULL, "missing alias target"},
        {ALIAS_ADD, "new@example.test", "bad target", NULL, "invalid address \"bad target\""},
        {ALIAS_DEL, "john@example.test", NULL, NULL, "no such alias john@example.test"},
        {LIST_ADD, "info@example.test", NULL, NULL, "info@example.test already exists as an alias"},
        {LIST_ADD, "l@nowhere.test", NULL, NULL, "domain nowhere.test does not exist"},
        {LIST_ADD, "l@example.test", NULL, "open",
         "invalid list mode \"open\" (public, members or announce)"},
        {LIST_ADD, "l@example.test", NULL, "announce",
         "list l@example.test: announce mode needs an announcer address"},
        {LIST_ADD, "l@example.test", "@x", NULL, "invalid address \"@x\""},
        {LIST_SET, "team@example.test", NULL, "announce",
         "list team@example.test: announce mode needs an announcer address"},
        {LIST_SET, "none@example.test", NULL, "public", "no such list none@example.test"},
        {MEMBER_ADD, "team@example.test", "JOHN@example.test", NULL,
         "JOHN@example.test is already a member of list team@example.test"},
        {MEMBER_ADD, "nolist@example.test", "a@b.test", NULL, "no such list nolist@example.test"},
        {MEMBER_ADD, "team@example.test", "a b@c", NULL, "invalid address \"a b@c\""},
        {ROUTE_ADD, "PARTNER.test", "h.test", NULL, "route PARTNER.test already exists"},
        {ROUTE_ADD, "new.test", NULL, NULL, "missing route host"},
        {ROUTE_ADD, "bad domain", "h.test", NULL,
         "invalid route domain \"bad domain\" (a domain, '*' and '?' allowed)"},
        {ROUTE_ADD, "new.test", "bad host!", NULL, "invalid route host \"bad host!\""},
        {ROUTE_ADD, "new.test", "a.test||b.test", NULL, "invalid route host \"a.test||b.test\""},
        {ROUTE_ADD, "new.test", "h.test", "not an address", "invalid address \"not an address\""},
        {ROUTE_SET, "partner.test", "0", NULL, "invalid port 0 (1..65535)"},
        {ROUTE_SET, "partner.test", "65536", NULL, "invalid port 65536 (1..65535)"},
        {ROUTE_SET, "partner.test", NULL, "ssl",
         "invalid security \"ssl\" (none, starttls or tls)"},
        {ROUTE_SET, "nope.test", "25", NULL, "no such route nope.test"},
        {ROUTE_DEL, "nope.test", NULL, NULL, "no such route nope.test"},
        {IPR_ADD, "OFFICE", "1.2.3.4", NULL, "IP range \"OFFICE\" already exists"},
        {IPR_ADD, "new", NULL, NULL, "missing IP range start address (--from)"},
        {IPR_ADD, "new", "1.2.3", NULL, "invalid IP address \"1.2.3\""},
        {IPR_ADD, "new", "1.2.3.4", "::1",
         "IP range \"new\": from and to must both be IPv4 or both IPv6"},
        {IPR_ADD, "new", "1.2.3.4", "1.2.3.3",
         "IP range \"new\": from 1.2.3.4 is above to 1.2.3.3"},
        {IPR_ADD, "new", "::2", "::1", "IP range \"new\": from ::2 is above to ::1"},
        {IPR_ADD, "", "1.2.3.4", NULL, "invalid IP range name \"\" (1..100 characters)"},
        {IPR_ADD, "tab\there", "1.2.3.4", NULL,
         "invalid IP range name \"tab\there\" (1..100 characters)"},
        {IPR_SET, "office", "10.0.0.10", NULL,
         "IP range \"office\": from 10.0.0.10 is above to 10.0.0.9"},
        {IPR_SET, "office", NULL, "::9",
         "IP range \"office\": from and to must both be IPv4 or both IPv6"},
        {IPR_SET, "nope", "1.2.3.4", NULL, "no such IP range \"nope\""},
        {IPR_DEL, "nope", NULL, NULL, "no such IP range \"nope\""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        err = NULL;
        int r = run_case(f->db, &cases[i], &err);
        if (r != -1 || !err || strcmp(err, cases[i].want) != 0)
            fail_msg("case %zu (%s): got %d \"%s\", want \"%s\"", i, cases[i].a, r,
                     err ? err : "(null)", cases[i].want);
    }
    /* the failed changes left everything as it was (transactions rolled back) */
    int64_t n = 0;
    sqlite3_stmt *st = NULL;
    sqlite3_prepare_v2(f->db,
                       "SELECT (SELECT count(*) FROM domain) * 1000000 + (SELECT count(*) FROM "
                       "account) * 10000 + (SELECT count(*) FROM alias) * 1000 + (SELECT "
                       "count(*) FROM list) * 100 + (SELECT count(*) FROM route) * 10 + "
                       "(SELECT count(*) FROM iprange)",
                       -1, &st, NULL);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    assert_int_equal(n, 1011111);
    assert_int_equal(sqlite3_get_autocommit(f->db), 1); /* no transaction left open */
}

static void test_flag_lists(void **state)
{
    (void)state;
    static const struct {
        int kind; /* 0 allow, 1 deliver, 2 require-auth */
        const char *in;
        int ok;
        uint32_t flags;
        const char *out;
    } cases[] = {
        {0, "smtp,pop3,imap", 1, DIR_IPR_SMTP | DIR_IPR_POP3 | DIR_IPR_IMAP, "smtp,pop3,imap"},
        {0, "IMAP,smtp", 1, DIR_IPR_SMTP | DIR_IPR_IMAP, "smtp,imap"},
        {0, "none", 1, 0, "none"},
        {0, "smtp,smtp", 1, DIR_IPR_SMTP, "smtp"},
        {0, "smtp,", 0, 0, NULL},
        {0, "", 0, 0, NULL},
        {0, "http", 0, 0, NULL},
        {0, "ll", 0, 0, NULL},
        {1, "ll,le,el,ee", 1, DIR_IPR_DELIVER_MASK, "ll,le,el,ee"},
        {1, "ee", 1, DIR_IPR_DELIVER_EE, "ee"},
        {1, "el,ll", 1, DIR_IPR_DELIVER_EL | DIR_IPR_DELIVER_LL, "ll,el"},
        {1, "lx", 0, 0, NULL},
        {2, "ll,le,ee", 1, DIR_IPR_AUTH_LL | DIR_IPR_AUTH_LE | DIR_IPR_AUTH_EE, "ll,le,ee"},
        {2, "None", 1, 0, "none"},
        {2, "smtp", 0, 0, NULL},
    };
    int (*parse[])(const char *, uint32_t *, const char **) = {
        dir_admin_parse_allow, dir_admin_parse_deliver, dir_admin_parse_require_auth};
    void (*format[])(uint32_t, char *, size_t) = {dir_admin_format_allow, dir_admin_format_deliver,
                                                  dir_admin_format_require_auth};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint32_t flags = 0xdead;
        const char *err = NULL;
        int r = parse[cases[i].kind](cases[i].in, &flags, &err);
        if (!cases[i].ok) {
            if (r != -1 || !err)
                fail_msg("\"%s\" should be refused", cases[i].in);
            continue;
        }
        if (r != 0 || flags != cases[i].flags)
            fail_msg("\"%s\": got %d %#x", cases[i].in, r, flags);
        char out[64];
        format[cases[i].kind](flags | DIR_IPR_ANTISPAM, out, sizeof(out));
        assert_string_equal(out, cases[i].out);
    }
}

/* Listings come back in their documented order. */
static void name_cb(void *ctx, const struct dir_domain *d)
{
    strcat(ctx, d->name);
    strcat(ctx, " ");
}

static void account_cb(void *ctx, const struct dir_account *a)
{
    strcat(ctx, a->address);
    strcat(ctx, " ");
}

static void iprange_cb(void *ctx, const struct dir_iprange *r)
{
    strcat(ctx, r->name);
    strcat(ctx, "|");
}

static void test_admin_lists(void **state)
{
    struct fx *f = *state;
    add_domain(f->db, "b.test", KEEP, KEEP, NULL, NULL);
    add_domain(f->db, "C.test", KEEP, KEEP, NULL, NULL);
    add_domain(f->db, "a.test", KEEP, KEEP, NULL, NULL);
    add_account(f->db, "z@a.test", "pw");
    add_account(f->db, "y@b.test", "pw");
    add_account(f->db, "x@a.test", "pw");
    char out[512] = "";
    const char *err = NULL;
    ok(dir_admin_domain_list(f->db, name_cb, out, &err), err);
    assert_string_equal(out, "a.test b.test C.test ");
    out[0] = '\0';
    ok(dir_admin_account_list(f->db, NULL, account_cb, out, &err), err);
    assert_string_equal(out, "x@a.test y@b.test z@a.test ");
    out[0] = '\0';
    ok(dir_admin_account_list(f->db, "A.TEST", account_cb, out, &err), err);
    assert_string_equal(out, "x@a.test z@a.test ");
    assert_int_equal(dir_admin_account_list(f->db, "none.test", account_cb, out, &err), -1);
    assert_string_equal(err, "no such domain none.test");
    /* deleting a domain deletes its accounts */
    ok(dir_admin_domain_del(f->db, "A.test", &err), err);
    out[0] = '\0';
    ok(dir_admin_account_list(f->db, NULL, account_cb, out, &err), err);
    assert_string_equal(out, "y@b.test ");

    int created;
    ok(dir_admin_iprange_defaults(f->db, &created, &err), err);
    add_iprange(f->db, "mid", "10.0.0.0", "10.0.0.1", 20, 0);
    out[0] = '\0';
    ok(dir_admin_iprange_list(f->db, iprange_cb, out, &err), err);
    assert_string_equal(out, "My computer|My computer (IPv6)|mid|Internet|Internet (IPv6)|");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_domain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_domain_set_keeps_fields, setup, teardown),
        cmocka_unit_test_setup_teardown(test_domain_alias, setup, teardown),
        cmocka_unit_test_setup_teardown(test_account, setup, teardown),
        cmocka_unit_test_setup_teardown(test_alias_and_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_members, setup, teardown),
        cmocka_unit_test_setup_teardown(test_route, setup, teardown),
        cmocka_unit_test_setup_teardown(test_iprange_defaults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_iprange_match, setup, teardown),
        cmocka_unit_test(test_result_mapping),
        cmocka_unit_test(test_permfail_without_schema),
        cmocka_unit_test(test_tempfail_when_locked),
        cmocka_unit_test(test_password),
        cmocka_unit_test_setup_teardown(test_admin_validation, setup, teardown),
        cmocka_unit_test(test_flag_lists),
        cmocka_unit_test_setup_teardown(test_admin_lists, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
